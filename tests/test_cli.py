"""The ``wm`` command and the demo pipeline, run in-process on a tiny budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from worldmodel.cli import main as wm
from worldmodel.commands.demo import DemoConfig
from worldmodel.commands.demo import main as demo
from worldmodel.commands.report import wilson_interval
from worldmodel.video import read_video


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)  # textbook value: [0.490, 0.943]
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == 1.0


def test_demo_writes_table_video_and_goal_image(tmp_path):
    out = demo(DemoConfig(tasks=("pointmass", "pushbox"), episodes=2, steps=6, out=tmp_path, video_scale=2))
    results = json.loads((tmp_path / "results.json").read_text())
    assert [(r["task"], r["policy"]) for r in results] == [
        ("wm/PointMass-v0", "random"),
        ("wm/PointMass-v0", "do-nothing"),
        ("wm/PushBox-v0", "random"),
        ("wm/PushBox-v0", "do-nothing"),
    ]
    assert out["results"] == results
    assert all(r["episodes"] == 2 and 0.0 <= r["success"] <= 1.0 for r in results)
    assert "| wm/PointMass-v0 | random | 2 |" in (tmp_path / "results.md").read_text()
    video = read_video(tmp_path / "episode_PointMass-v0.mp4")
    assert video.shape == (7, 128, 3 * 128, 3)  # 6 steps + final frame; obs | render | goal, x2
    assert (tmp_path / "goal_PushBox-v0.png").stat().st_size > 0
    assert all(np.isfinite(r["final_distance"]) and r["env_steps_per_s"] > 0 for r in results)


def test_cli_dispatches_and_rejects_unknown_task(tmp_path, capsys):
    wm(["demo", "--tasks", "reacher", "--episodes", "1", "--steps", "2", "--out", str(tmp_path)])
    assert "wm/Reacher-v0" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown task"):
        wm(["demo", "--tasks", "cartpole", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()  # validated before anything is written
