"""The ``wm`` command line: ``wm <command> --help`` for each command's options."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    import tyro

    from worldmodel.commands import collect, compare, demo, evaluate, import_official, pretrain, train_ac

    commands = {
        "demo": (demo.DemoConfig, demo.main),
        "collect": (collect.CollectConfig, collect.main),
        "pretrain": (pretrain.PretrainConfig, pretrain.main),
        "train-ac": (train_ac.TrainACConfig, train_ac.main),
        "eval": (evaluate.EvalConfig, evaluate.main),
        "compare": (compare.CompareConfig, compare.main),
        "import-official": (import_official.ImportOfficialConfig, import_official.main),
    }
    cfg = tyro.extras.subcommand_cli_from_dict(
        {name: cls for name, (cls, _) in commands.items()},
        args=sys.argv[1:] if argv is None else argv,
        prog="wm",
        description="Video world models in the V-JEPA family, used for planning.",
    )
    for cls, fn in commands.values():
        if isinstance(cfg, cls):
            fn(cfg)
            return


if __name__ == "__main__":
    main()
