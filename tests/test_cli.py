"""The ``wm`` command and the end-to-end demo on the tiny preset, run in-process."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from worldmodel.cli import main as wm
from worldmodel.commands.demo import PRESETS, DemoConfig, run_pipeline
from worldmodel.commands.demo import main as demo
from worldmodel.commands.report import wilson_interval


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)  # textbook value: [0.490, 0.943]
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(50, 50)[1] == 1.0


def test_demo_runs_the_whole_pipeline(tmp_path, capsys):
    out = demo(DemoConfig(preset="tiny", out=tmp_path / "d", workers=0, threads=1))
    rows = [(s["row"], s["mode"]) for s in out["summary"]]
    assert rows == [
        ("model", "dataset"),
        ("oracle", "dataset"),
        ("random", "dataset"),
        ("do-nothing", "dataset"),
    ]
    for f in ("data/meta/info.json", "encoder/encoder.safetensors", "predictor/world_model.json",
              "eval/results.md", "eval/results.json", "results.md"):  # fmt: skip
        assert (tmp_path / "d" / f).exists(), f
    assert list((tmp_path / "d" / "eval").glob("*.mp4"))
    printed = capsys.readouterr().out
    assert "[demo 1/4] collect" in printed and "[demo 4/4] eval" in printed and "min left" in printed
    # a rerun keeps the finished stages
    mtime = (tmp_path / "d" / "encoder" / "encoder.safetensors").stat().st_mtime_ns
    demo(DemoConfig(preset="tiny", out=tmp_path / "d", workers=0, threads=1))
    assert (tmp_path / "d" / "encoder" / "encoder.safetensors").stat().st_mtime_ns == mtime
    assert json.loads((tmp_path / "d" / "data" / "meta" / "info.json").read_text())["total_episodes"] == 8
    # ... but not one trained for another budget: its figures would carry the wrong label
    wm_json = tmp_path / "d" / "predictor" / "world_model.json"
    before = wm_json.stat().st_mtime_ns
    longer = replace(PRESETS["tiny"], ac_steps=PRESETS["tiny"].ac_steps + 1)
    with pytest.raises(ValueError, match="finished run of 6 steps but this pipeline asks for 7"):
        run_pipeline("wm/PointMass-v0", longer, tmp_path / "d", workers=0, threads=1)
    assert wm_json.stat().st_mtime_ns == before


def test_cli_dispatches_and_rejects_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        wm(["demo", "--task", "cartpole", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()  # validated before anything is written
    with pytest.raises(SystemExit):
        wm(["nonsense"])
