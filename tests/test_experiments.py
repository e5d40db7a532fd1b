"""Every experiment script imports, takes a typed config like the ``wm`` command, and prints its help."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest
import tyro

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_has_a_typed_config_and_help(path, capsys):
    spec = importlib.util.spec_from_file_location(f"experiments_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # no work at import: nothing printed, nothing written
    assert capsys.readouterr().out == ""
    configs = [v for k, v in vars(module).items() if k.endswith("Config") and dataclasses.is_dataclass(v)
               and v.__module__ == module.__name__]  # fmt: skip
    assert len(configs) == 1 and configs[0].__dataclass_params__.frozen, path.name
    assert callable(module.main)
    with pytest.raises(SystemExit) as e:
        tyro.cli(configs[0], args=["--help"])
    assert e.value.code == 0 and "usage" in capsys.readouterr().out.lower()
