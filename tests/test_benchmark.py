"""experiments/benchmark.py writes the README's results table from the runs' own figures."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from worldmodel.eval.report import write_readme

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "experiments" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def row(task, mode, name, planner, success, evaluations=1000.0):
    return {"task": task, "row": name, "planner": planner, "mode": mode, "episodes": 150, "success": success,
            "success_ci95": [max(success - 0.05, 0.0), min(success + 0.03, 1.0)], "final_distance": 0.1234,
            "plan_seconds": 0.357, "evaluations": evaluations}  # fmt: skip


def test_report_only_writes_the_table_between_the_readme_markers(tmp_path):
    bench_mod = load_benchmark()
    bench = {"commit": "abc1234", "date": "2026-12-02", "hardware": "x86_64 CPU, 2 threads, 2 planning processes",
             "command": "--preset cpu", "seeds": [0, 1, 2], "minutes": {"wm/PointMass-v0": 14.2},
             "preset": {"episodes": 400, "encoder": "cpu-small", "pretrain_steps": 600, "predictor": "cpu-small",
                        "ac_steps": 2500, "eval_episodes": 50, "samples": 100, "iterations": 10, "elites": 10},
             "rows": [row("wm/PointMass-v0", "dataset", "model", "cem", 0.98),
                      row("wm/PointMass-v0", "dataset", "oracle", "cem", 1.0),
                      row("wm/PointMass-v0", "dataset", "random", "random", 0.033, 0.0),
                      row("wm/PointMass-v0", "dataset", "do-nothing", "do-nothing", 0.087, 0.0)]}  # fmt: skip
    bench["rows"][0]["success_any"] = 0.99  # rows written before the any-step measure show "-"
    (tmp_path / "benchmark.json").write_text(json.dumps(bench))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\nbefore\n{bench_mod.BEGIN}\nstale table\n{bench_mod.END}\nafter\n")
    bench_mod.main(bench_mod.BenchmarkConfig(out=tmp_path, readme=readme, report_only=True))
    text = readme.read_text()
    assert "stale table" not in text and text.startswith("# x\nbefore\n") and text.endswith("after\n")
    table = text.split(bench_mod.BEGIN)[1].split(bench_mod.END)[0]
    assert (
        "| wm/PointMass-v0 | dataset | world model | cem | 150 | 98.0% [93, 100] | 99.0% | 0.123 | 0.36 | 1000 |"
        in table
    )
    assert (
        "| wm/PointMass-v0 | dataset | random actions | - | 150 | 3.3% [0, 6] | - | 0.123 | - | 0 |" in table
    )
    assert "Commit `abc1234`" in table and "x86_64 CPU" in table and "pointmass" not in table.split("|")[0]
    assert (tmp_path / "benchmark.md").read_text() in text


def test_benchmark_refuses_a_readme_without_markers_and_a_missing_run(tmp_path):
    bench_mod = load_benchmark()
    with pytest.raises(FileNotFoundError, match="run the benchmark first"):
        bench_mod.main(bench_mod.BenchmarkConfig(out=tmp_path, report_only=True))
    (tmp_path / "README.md").write_text("no markers\n")
    with pytest.raises(ValueError, match="no <!-- benchmark:begin -->"):
        write_readme(tmp_path / "README.md", "table", markers=(bench_mod.BEGIN, bench_mod.END))
    assert (tmp_path / "README.md").read_text() == "no markers\n"  # nothing written


def test_the_readme_table_came_from_the_benchmark():
    """The README's results table is exactly what benchmark.py wrote (nobody typed a figure)."""
    bench_mod = load_benchmark()
    text = (ROOT / "README.md").read_text()
    assert text.count(bench_mod.BEGIN) == 1 and text.count(bench_mod.END) == 1
    table = text.split(bench_mod.BEGIN)[1].split(bench_mod.END)[0].strip("\n")
    stored = ROOT / "docs" / "benchmark.json"
    assert stored.exists(), (
        "the README's table needs the benchmark.json it was made from (docs/benchmark.json)"
    )
    assert table == bench_mod.report(json.loads(stored.read_text())).strip("\n")


def test_the_commit_is_this_codes_whatever_the_working_directory(tmp_path, monkeypatch):
    import subprocess
    from pathlib import Path

    from worldmodel.eval.report import commit

    repo = Path(__file__).resolve().parents[1]
    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=repo
    ).stdout.strip()
    monkeypatch.chdir(tmp_path)  # not a git repository
    assert commit().split("+")[0] == (sha or "unknown")


def test_pushing_tasks_run_the_pushing_presets_and_the_note_says_so(tmp_path):
    from dataclasses import asdict

    bench_mod = load_benchmark()
    cfg = bench_mod.BenchmarkConfig(preset="cpu")
    push = bench_mod.preset_for(cfg, "wm/PushTState-v0")
    assert (push.policy, push.goals) == ("demo", ("moved",)) and push == bench_mod.PUSH["cpu"]
    assert bench_mod.preset_for(cfg, "wm/Reacher-v0") == bench_mod.preset_for(cfg) == bench_mod.CPU
    gpu = bench_mod.BenchmarkConfig(preset="gpu")
    assert bench_mod.preset_for(gpu, "wm/PushT-v0") == bench_mod.PUSH["gpu"]
    assert bench_mod.preset_for(replace(cfg, preset="tiny"), "wm/PushT-v0").policy == "auto"
    joint = bench_mod.preset_for(replace(cfg, recipe="joint"), "wm/Reacher-v0")
    assert (joint.joint, joint.ac_batch, joint.model_rows) == (bench_mod.JOINT, 32, ("model", "model-latent"))
    cpu = asdict(bench_mod.CPU)
    bench = {"commit": "abc1234", "date": "2026-12-07", "hardware": "x86_64 CPU", "command": "--preset cpu",
             "seeds": [0, 1, 2], "minutes": {"wm/PointMass-v0": 20.0, "wm/PushTState-v0": 80.0}, "preset": cpu,
             "presets": {"wm/PointMass-v0": cpu, "wm/PushTState-v0": asdict(push)},
             "rows": [row("wm/PushTState-v0", "moved", "model-latent", "cem", 0.5)]}  # fmt: skip
    note = bench_mod.report(bench).split("\n\n")[1]
    assert (
        "Per task (but those named after): 400 episodes collected, encoder `cpu-small` pretrained 600" in note
    )
    assert (f" PushTState-v0: {push.episodes} demo episodes collected (h264-lossless), encoder `cpu-small` "
            f"pretrained {push.pretrain_steps} steps, predictor `cpu-small` {push.ac_steps} steps" in note
            and "re-planning every 1 model steps" in note)  # fmt: skip
    bench["presets"]["wm/PushTState-v0"] = asdict(
        bench_mod.preset_for(replace(cfg, recipe="joint"), "wm/PushT-v0")
    )
    assert f"trained end to end {push.ac_steps} steps at batch 32 (32-d embedding" in bench_mod.report(bench)


def load_peers():
    spec = importlib.util.spec_from_file_location("peers", ROOT / "experiments" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_peers_table_came_from_peers_json():
    peers = load_peers()
    text = (ROOT / "README.md").read_text()
    table = text.split(peers.BEGIN)[1].split(peers.END)[0].strip("\n")
    assert table == peers.report(json.loads((ROOT / "docs" / "peers.json").read_text())).strip("\n")


def test_peers_rows_kept_from_an_earlier_run_keep_their_commit(tmp_path):
    peers = load_peers()

    def peer_row(task, commit, date):
        return {"task": task, "row": "oracle", "protocol": "ours", "episodes": 150, "success": 0.9,
                "success_ci95": [0.84, 0.94], "success_any": 1.0, "cem": "100 x 10", "mode": "dataset",
                "commit": commit, "date": date}  # fmt: skip

    bench = {"commit": "bbb2222", "date": "2026-12-07", "hardware": "x86_64 CPU",
             "rows": [peer_row("wm/dmc-reacher-pose-v0", "aaa1111", "2026-12-03"),
                      peer_row("wm/pointmaze-umaze-v0", "bbb2222", "2026-12-07"),
                      {**peer_row("wm/pointmaze-umaze-v0", "bbb2222", "2026-12-07"), "protocol": "ours, moved goals",
                       "mode": "moved", "success": 0.5}]}  # fmt: skip
    text = peers.report(bench)
    note = text.strip().splitlines()[-1]
    assert (
        "Commit `aaa1111`, 2026-12-03, x86_64 CPU (wm/dmc-reacher-pose-v0); commit `bbb2222`, 2026-12-07"
        in note
    )
    assert (
        "ours: 150 episodes, CEM 100 x 10, dataset goals; ours, moved goals: 150 episodes, CEM 100 x 10."
        in note
    )
    assert "| ours, moved goals: end | ours, moved goals: any step |" in text
    assert "| wm/pointmaze-umaze-v0 | oracle | 90.0% [84, 94] | 100.0% | 50.0% [84, 94] | 100.0% |" in text
    assert "| wm/dmc-reacher-pose-v0 | oracle | 90.0% [84, 94] | 100.0% | - | - |" in text
