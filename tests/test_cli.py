"""The ``wm`` command and the end-to-end demo on the tiny preset, run in-process."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from worldmodel.cli import main as wm
from worldmodel.eval.stats import wilson_interval
from worldmodel.pipeline import PRESETS, DemoConfig, JointPreset, demo, run_pipeline


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
    ev = json.loads((tmp_path / "d" / "eval" / "config.json").read_text())
    assert (ev["execute"], ev["shrink"]) == (1, True)  # the demo re-plans after every action block
    printed = capsys.readouterr().out
    assert "[demo 1/4] collect" in printed and "[demo 4/4] eval" in printed and "min left" in printed
    # a rerun keeps the finished stages
    mtime = (tmp_path / "d" / "encoder" / "encoder.safetensors").stat().st_mtime_ns
    demo(DemoConfig(preset="tiny", out=tmp_path / "d", workers=0, threads=1))
    assert (tmp_path / "d" / "encoder" / "encoder.safetensors").stat().st_mtime_ns == mtime
    assert json.loads((tmp_path / "d" / "data" / "meta" / "info.json").read_text())["total_episodes"] == 8
    wm_json = tmp_path / "d" / "predictor" / "world_model.json"
    before = wm_json.stat().st_mtime_ns
    # the policy planners: the policy is trained into the world model first, and plans in one evaluation
    out = run_pipeline("wm/PointMass-v0", PRESETS["tiny"], tmp_path / "d", workers=0, threads=1,
                       planners=("cem", "policy"))  # fmt: skip
    assert (tmp_path / "d" / "predictor" / "policy.safetensors").exists()
    assert "train-policy" in capsys.readouterr().out
    policy_row = [s for s in out["summary"] if s["planner"] == "policy"]
    assert [s["row"] for s in policy_row] == ["model"] and policy_row[0]["evaluations"] == 1
    assert (tmp_path / "d" / "predictor" / "world_model.json").stat().st_mtime_ns == before
    # ... but not one trained for another budget: its figures would carry the wrong label
    longer = replace(PRESETS["tiny"], ac_steps=PRESETS["tiny"].ac_steps + 1)
    with pytest.raises(ValueError, match="finished run of 6 steps but this pipeline asks for 7"):
        run_pipeline("wm/PointMass-v0", longer, tmp_path / "d", workers=0, threads=1)
    assert wm_json.stat().st_mtime_ns == before


def test_a_joint_preset_trains_end_to_end_on_pushing_demonstrations(tmp_path, capsys):
    """A preset with ``joint`` set: train-joint instead of pretrain + train-ac (no encoder stage);
    the push presets' collection (lossless demonstrations), moved goals and both model rows."""
    push = replace(PRESETS["push-small"], episodes=10, steps=60, encoder="tiny", predictor="tiny", ac_steps=3,
                   ac_batch=4, readout_steps=20, eval_episodes=2, samples=8, elites=2, iterations=2,
                   joint=JointPreset(embed_dim=8, frames=3, rollout_steps=2, sigreg=0.02))  # fmt: skip
    out = run_pipeline("wm/PushTState-v0", push, tmp_path / "p", workers=0, threads=1)
    rows = [(s["row"], s["mode"]) for s in out["summary"]]
    assert rows == [(r, "moved") for r in ("model", "model-latent", "oracle", "random", "do-nothing")]
    assert all(s["success"] == 0 for s in out["summary"] if s["row"] == "do-nothing")  # moved by construction
    recipe = json.loads((tmp_path / "p" / "data" / "meta" / "collection.json").read_text())
    assert (recipe["policy"], recipe["config"]["codec"]) == ("demo", "h264-lossless")
    assert (tmp_path / "p" / "joint" / "world_model.json").exists() and not (
        tmp_path / "p" / "encoder"
    ).exists()
    run = json.loads((tmp_path / "p" / "joint" / "config.json").read_text())["run"]
    assert (run["embed_dim"], run["frames"], run["loss"]["rollout_steps"]) == (8, 3, 2)
    printed = capsys.readouterr().out
    assert "[demo 2/3] train-joint" in printed and "pretrain" not in printed
    with pytest.raises(ValueError, match="finished run of 3 steps but this pipeline asks for 4"):
        run_pipeline("wm/PushTState-v0", replace(push, ac_steps=4), tmp_path / "p", workers=0, threads=1)


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``wm argv``; it must exit with status 2 and print one line on stderr, no traceback."""
    with pytest.raises(SystemExit) as e:
        wm(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    err = one_line_error(capsys, ["demo", "--task", "cartpole", "--out", str(tmp_path / "x")])
    assert err.startswith("wm demo: error: unknown task 'cartpole'") and "pointmass" in err
    assert not (tmp_path / "x").exists()  # validated before anything is written
    err = one_line_error(capsys, ["demo", "--preset", "push", "--out", str(tmp_path / "x")])
    assert "needs a pushing task" in err and "PointMass" in err and not (tmp_path / "x").exists()
    err = one_line_error(capsys, ["eval", "--task", "nope"])
    assert err.startswith("wm eval: error: unknown task 'nope'")
    err = one_line_error(capsys, ["eval", "--model", str(tmp_path / "missing")])
    assert "no config.json" in err and "missing" in err  # a missing run is named
    (tmp_path / "notdata").mkdir()
    err = one_line_error(
        capsys, ["pretrain", "--data", str(tmp_path / "notdata"), "--out", str(tmp_path / "r")]
    )
    assert "notdata" in err  # a bad dataset is named
    err = one_line_error(capsys, ["eval", "--episodes", "abc"])
    assert "--episodes" in err and "abc" in err and "see wm eval --help" in err  # a bad flag value
    err = one_line_error(capsys, ["info", str(tmp_path / "notdata")])
    assert err.startswith("wm info: error:") and "notdata" in err
    err = one_line_error(capsys, ["train-policy", "--model", str(tmp_path / "missing")])
    assert err.startswith("wm train-policy: error:") and "missing" in err
    err = one_line_error(capsys, ["evall"])
    assert "evall" in err and "eval" in err.split("evall", 1)[1]  # the commands it knows


def test_debug_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown task"):
        wm(["eval", "--task", "nope", "--debug"])


def test_the_installed_command_prints_one_line():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "worldmodel.cli", "eval", "--task", "nope"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert res.returncode == 2 and res.stdout == ""
    assert (
        res.stderr.strip().startswith("wm eval: error: unknown task 'nope'")
        and len(res.stderr.splitlines()) == 1
    )


def test_info_summarises_a_dataset(tiny_pipeline, capsys):
    import numpy as np

    from worldmodel.data import LeRobotDataset

    wm(["info", str(tiny_pipeline["data"]), "--json"])
    summary = json.loads(capsys.readouterr().out)
    ds = LeRobotDataset(tiny_pipeline["data"])
    assert (summary["version"], summary["fps"], summary["episodes"], summary["frames"]) == (
        "v3.0",
        20.0,
        6,
        6 * 41,
    )
    assert summary["cameras"] == {"observation.images.top": {"height": 32, "width": 32, "codec": "h264",
                                                             "pix_fmt": "yuv420p"}}  # fmt: skip
    state = summary["features"]["observation.state"]
    assert state["names"] == ["x", "y", "vx", "vy"] and state["shape"] == [4]
    np.testing.assert_allclose(state["stats"]["mean"], ds.columns["observation.state"].mean(0), atol=1e-5)
    np.testing.assert_allclose(state["stats"]["max"], ds.columns["observation.state"].max(0), atol=1e-5)
    assert summary["defaults"] == {"camera": "observation.images.top", "state": "observation.state",
                                   "action": "action", "dataset_goals": True}  # fmt: skip
    wm(["info", str(tiny_pipeline["data"])])
    table = capsys.readouterr().out
    assert "6 episodes, 246 frames" in table and "observation.images.top" in table and "32x32  h264" in table
