"""The layout keeps its promises: what a planning user imports stays light, and presets resolve."""

from __future__ import annotations

import json
import subprocess
import sys
import typing

import pytest


def modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statement``."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return set(json.loads(res.stdout.splitlines()[-1]))


def test_import_worldmodel_does_no_work():
    loaded = modules_after("import worldmodel")
    assert "torch" not in loaded and not any(m.startswith("worldmodel.") for m in loaded)


def test_planners_do_not_import_envs_or_mujoco():
    loaded = modules_after("import planners; from planners import make_planner, plan_cem, run_mpc")
    assert not {m for m in loaded if m == "envs" or m.startswith(("envs.", "mujoco", "worldmodel"))}


def test_a_planning_user_does_not_load_the_trainers():
    loaded = modules_after(
        "from worldmodel.world_model import WorldModel, make_latent_goal_cost\nimport planners"
    )
    heavy = {
        m for m in loaded if m.startswith(("worldmodel.train", "worldmodel.jepa", "worldmodel.eval", "envs"))
    }
    assert not heavy, sorted(heavy)


def test_every_preset_name_resolves():
    from worldmodel.encoder import EncoderConfig, EncoderPreset
    from worldmodel.train.predictor import PredictorPreset, PredictorSize

    for name in typing.get_args(EncoderPreset):
        assert isinstance(EncoderConfig.preset(name), EncoderConfig)
    for name in typing.get_args(PredictorPreset):
        assert isinstance(PredictorSize.preset(name), PredictorSize)
    with pytest.raises(ValueError, match="unknown encoder preset"):
        EncoderConfig.preset("vit-huge")
