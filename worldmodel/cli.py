"""The ``wm`` command line: ``wm <command> --help`` for each command's options.

A user's mistake (an unknown task, a missing or unfinished run, a bad dataset, a bad flag value)
ends in one line on stderr and exit status 2; ``--debug`` anywhere on the line, or
``WM_DEBUG=1``, shows the traceback instead.
"""

from __future__ import annotations

import io
import os
import re
import sys
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: exceptions that report a user's mistake (bad input, files that are missing or inconsistent);
#: anything else is a bug and keeps its traceback
USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError)


@dataclass(frozen=True)
class ImportOfficialConfig:
    """Turn an official V-JEPA 2 encoder checkpoint (a local file) into one of our encoder runs.

    wm import-official --checkpoint vitg.pt --encoder vitg --out runs/enc-vitg
    wm train-ac --data data/my_robot --encoder runs/enc-vitg --out runs/ac-vitg --preset vjepa2-ac --pool 0
    """

    checkpoint: Path
    """official checkpoint file (.pt / .pth with encoder / target_encoder state dicts)"""
    encoder: Literal["vitl", "vith", "vitg", "vitg-384"]
    """which published encoder it holds"""
    out: Path
    """encoder run directory to write"""
    key: Literal["target_encoder", "encoder"] = "target_encoder"
    """which of its encoders to import (V-JEPA evaluates the target encoder)"""


def _collect(cfg) -> dict:
    import json

    from envs.collect import collect

    summary = collect(cfg)
    print(f"[collect] {summary['episodes']} episodes, {summary['frames']} frames in {cfg.out}")
    rate = summary["rate"]
    print(f"[collect] {rate['episodes_per_s']:.1f} episodes/s, {rate['frames_per_s']:.0f} frames/s "
          f"({rate['seconds']:.0f} s, {cfg.workers} workers)")  # fmt: skip
    print("[collect] coverage: " + json.dumps(summary.get("coverage", {})))
    return summary


def _trainer(name: str, fn):
    def run(cfg) -> dict:
        metrics = fn(cfg)
        if metrics:
            print(f"[{name}] " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        print(f"[{name}] run directory: {getattr(cfg, 'out', None) or cfg.model}")
        return metrics

    return run


def _import_official(cfg: ImportOfficialConfig) -> Path:
    from worldmodel.official import import_encoder

    out = import_encoder(cfg.checkpoint, cfg.encoder, cfg.out, cfg.key)
    print(f"[import-official] {cfg.encoder} from {cfg.checkpoint} -> {out}")
    return out


def commands() -> dict[str, tuple[type, object]]:
    """``wm`` sub-command -> (its config dataclass, the function that runs it)."""
    from envs.collect import CollectConfig
    from worldmodel.data.info import InfoConfig, info
    from worldmodel.eval.compare import CompareConfig, compare
    from worldmodel.eval.offline import EvalOfflineConfig, evaluate_offline
    from worldmodel.eval.protocol import EvalConfig, evaluate
    from worldmodel.pipeline import DemoConfig, demo
    from worldmodel.train.joint import TrainJointConfig, train_joint
    from worldmodel.train.policy import TrainPolicyConfig, train_policy
    from worldmodel.train.predictor import TrainACConfig, train_ac
    from worldmodel.train.pretrain import PretrainConfig, pretrain

    return {
        "demo": (DemoConfig, demo),
        "collect": (CollectConfig, _collect),
        "info": (InfoConfig, info),
        "pretrain": (PretrainConfig, _trainer("pretrain", pretrain)),
        "train-ac": (TrainACConfig, _trainer("train-ac", train_ac)),
        "train-joint": (TrainJointConfig, _trainer("train-joint", train_joint)),
        "train-policy": (TrainPolicyConfig, _trainer("train-policy", train_policy)),
        "eval": (EvalConfig, evaluate),
        "eval-offline": (EvalOfflineConfig, evaluate_offline),
        "compare": (CompareConfig, compare),
        "import-official": (ImportOfficialConfig, _import_official),
    }


def _one_line(box: str) -> str:
    """tyro's boxed parse error -> its message on one line (the help-text excerpt left out)."""
    lines = [re.sub(r"^[\s│╭╮╰╯─]+|[\s│╭╮╰╯─]+$", "", ln) for ln in box.splitlines()]
    sections, cur = [], []
    for raw, ln in zip(box.splitlines(), lines):
        if not ln or set(raw.strip()) <= set("│─╭╮╰╯ "):
            if cur:
                sections.append(" ".join(cur))
                cur = []
            continue
        cur.append(ln)
    if cur:
        sections.append(" ".join(cur))
    keep = [s for s in sections if not s.startswith(("Argument helptext", "For full helptext"))]
    keep = [s for s in keep if not s.startswith("--") or "Error" in s]
    return "; ".join(keep[:2]) if keep else box.strip()


def _fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    import tyro

    from worldmodel.data.video import VideoError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("WM_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    table = commands()
    prog = "wm" + (f" {args[0]}" if args and args[0] in table else "")
    captured = io.StringIO()
    try:
        with redirect_stderr(captured):
            cfg = tyro.extras.subcommand_cli_from_dict(
                {name: cls for name, (cls, _) in table.items()}, args=args, prog="wm",
                description="Video world models in the V-JEPA family, used for planning.",
            )  # fmt: skip
    except SystemExit as e:
        text = captured.getvalue()
        if e.code in (0, None) or debug:
            sys.stderr.write(text)
            raise
        _fail(prog, _one_line(text) + f" (see {prog} --help)")
    sys.stderr.write(captured.getvalue())
    for cls, fn in table.values():
        if isinstance(cfg, cls):
            try:
                fn(cfg)
            except (*USER_ERRORS, VideoError) as e:
                if debug:
                    raise
                msg = " ".join(str(e).split()) or type(e).__name__
                _fail(prog, f"{msg} (--debug shows the traceback)")
            return


if __name__ == "__main__":
    main()
