"""``wm compare``: the paired statistics, the pooling of runs, and the refusal of unpaired runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from worldmodel.eval.compare import CompareConfig, compare
from worldmodel.eval.stats import mcnemar_exact_p, paired_difference_interval, wilson_interval


def test_mcnemar_exact_p_is_the_two_sided_binomial_tail():
    # 12 vs 4 discordant: 2 * P(X <= 4), X ~ Binomial(16, 1/2) = 2 * 2517 / 65536
    assert mcnemar_exact_p(12, 4) == pytest.approx(2 * 2517 / 2**16)
    assert mcnemar_exact_p(4, 12) == mcnemar_exact_p(12, 4)
    assert mcnemar_exact_p(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(5, 5) == 1.0


def test_paired_interval_reduces_to_unpaired_newcombe_when_outcomes_are_uncorrelated():
    # 25/25/25/25: phi = 0, so the interval is the independent-samples Newcombe interval
    lo, hi = paired_difference_interval(25, 25, 25, 25)
    l1, u1 = wilson_interval(50, 100)
    assert lo == pytest.approx(-math.hypot(0.5 - l1, u1 - 0.5)) and hi == pytest.approx(-lo)


def test_paired_interval_contains_estimate_flips_with_the_sides_and_narrows_with_pairing():
    lo, hi = paired_difference_interval(134, 12, 4, 0)
    assert lo < 8 / 150 < hi
    assert paired_difference_interval(134, 4, 12, 0) == pytest.approx((-hi, -lo))
    # the same two success rates with positively correlated outcomes (each side fails mostly
    # where the other does too): narrower than the unpaired interval (phi = 0)
    lo, hi = paired_difference_interval(100, 12, 4, 34)
    l1, u1 = wilson_interval(112, 150)
    l2, u2 = wilson_interval(104, 150)
    assert 8 / 150 - lo < 0.8 * math.hypot(112 / 150 - l1, u2 - 104 / 150)
    assert paired_difference_interval(0, 0, 0, 0) == (-1.0, 1.0)


def test_paired_interval_covers_the_true_difference_95_percent_of_the_time():
    """Simulated evaluations with a known joint distribution of (A solved, B solved)."""
    rng = np.random.default_rng(0)
    probs = np.array([0.86, 0.08, 0.03, 0.03])  # both, only A, only B, neither: true difference +0.05
    covered = 0
    sims = 2000
    for counts in rng.multinomial(150, probs, size=sims):
        lo, hi = paired_difference_interval(*(int(c) for c in counts))
        covered += lo <= 0.05 <= hi
    assert 0.93 <= covered / sims <= 0.98


def _fake_run(path, successes, *, seeds=(0,), row="model", start=True, task="reacher", budget=50):
    """A results.json as `wm eval` writes it: successes[seed_pos][episode]."""
    episodes = [
        {"row": row, "mode": "dataset", "seed": s, "episode": i, "success": bool(ok),
         "start": [10 + i, 3] if start else None}
        for s, col in zip(seeds, successes) for i, ok in enumerate(col)
    ]  # fmt: skip
    path.mkdir(parents=True)
    cfg = {"task": task, "goal_offset": 25, "budget": budget}
    (path / "results.json").write_text(json.dumps({"config": cfg, "summary": [], "episodes": episodes}))
    return path


def test_compare_pools_runs_and_counts_the_split(tmp_path):
    a0 = _fake_run(tmp_path / "a0", [[1, 1, 1, 0]], seeds=(0,))
    a1 = _fake_run(tmp_path / "a1", [[1, 1, 0, 1]], seeds=(1,))
    b = _fake_run(tmp_path / "b", [[1, 0, 0, 0], [1, 1, 0, 0]], seeds=(0, 1), task="wm/Reacher-v0")
    res = compare(CompareConfig(a=(a0, a1), b=(b,), names=("x", "y"), out=tmp_path / "c"))
    (r,) = res["rows"]
    assert (r["episodes"], r["a_only"], r["b_only"], r["seeds"]) == (8, 3, 0, [0, 1])
    assert r["success_a"] == 6 / 8 and r["success_b"] == 3 / 8 and r["difference"] == 3 / 8
    assert r["mcnemar_p"] == pytest.approx(2 / 8)
    assert "| wm/Reacher-v0 | dataset | 8 | 75.0% [41, 93] | 37.5% [14, 69] | +37.5 pts |" in res["table"]
    saved = json.loads((tmp_path / "c" / "compare.json").read_text())
    assert saved["rows"][0]["a_only"] == 3 and (tmp_path / "c" / "compare.md").read_text().startswith(
        "| task"
    )


def test_compare_uses_only_shared_episodes_and_says_so(tmp_path, capsys):
    a = _fake_run(tmp_path / "a", [[1, 1, 1]], seeds=(0,))
    b = _fake_run(tmp_path / "b", [[0, 1], [1, 1]], seeds=(0, 1))
    (r,) = compare(CompareConfig(a=(a,), b=(b,)))["rows"]
    assert r["episodes"] == 2 and r["unpaired"] == {"a": 1, "b": 2}
    assert "left out 1 episodes only A played and 2 only B played" in capsys.readouterr().out
    data = json.loads((b / "results.json").read_text())
    data["episodes"].append(data["episodes"][0] | {"mode": "random", "start": None})
    (b / "results.json").write_text(json.dumps(data))
    assert len(compare(CompareConfig(a=(a,), b=(b,)))["rows"]) == 1
    assert "random goals: only one side played them, left out" in capsys.readouterr().out


def test_compare_refuses_runs_that_did_not_play_the_same_episodes(tmp_path):
    a = _fake_run(tmp_path / "a", [[1, 1]])
    with pytest.raises(ValueError, match="did not play the same episodes"):
        compare(CompareConfig(a=(a,), b=(_fake_run(tmp_path / "b", [[1, 1]], budget=80),)))
    with pytest.raises(ValueError, match="differs from the side's first run"):
        compare(CompareConfig(a=(a, _fake_run(tmp_path / "a2", [[1]], seeds=(5,), task="pointmass")), b=(a,)))
    other = _fake_run(tmp_path / "c", [[1, 1]])
    data = json.loads((other / "results.json").read_text())
    data["episodes"][1]["start"] = [99, 0]
    (other / "results.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"started from recorded frame \[11, 3\] in A but \[99, 0\] in B"):
        compare(CompareConfig(a=(a,), b=(other,)))
    with pytest.raises(ValueError, match="share no"):
        compare(CompareConfig(a=(a,), b=(_fake_run(tmp_path / "d", [[1]], seeds=(7,)),)))
    with pytest.raises(ValueError, match="already in an earlier run"):
        compare(CompareConfig(a=(a, a), b=(a,)))
    with pytest.raises(ValueError, match="has no 'oracle' row"):
        compare(CompareConfig(a=(a,), b=(a,), row_b="oracle"))
    with pytest.raises(FileNotFoundError, match=r"no results\.json"):
        compare(CompareConfig(a=(tmp_path / "missing",), b=(a,)))
    with pytest.raises(ValueError, match="at least one"):
        compare(CompareConfig(a=(), b=(a,)))


def test_compare_reads_real_eval_runs(tiny_pipeline, tmp_path):
    """Two rows of one real `wm eval` run, compared episode by episode."""
    from worldmodel.eval.protocol import EvalConfig, evaluate

    cfg = EvalConfig(task="pointmass", model=tiny_pipeline["ac"], goals=("dataset",), rows=("oracle", "do-nothing"),
                     episodes=3, seeds=(0,), samples=16, elites=4, iterations=2, workers=0, videos=0,
                     out=tmp_path / "e", progress=False, goal_offset=20)  # fmt: skip
    summary = {s["row"]: s for s in evaluate(cfg)["summary"]}
    episodes = json.loads((tmp_path / "e" / "results.json").read_text())["episodes"]
    assert all(len(e["start"]) == 2 for e in episodes)  # the recorded episode and frame each started from
    (r,) = compare(
        CompareConfig(a=(tmp_path / "e",), b=(tmp_path / "e",), row_a="oracle", row_b="do-nothing")
    )["rows"]
    assert r["episodes"] == 3
    assert (
        r["success_a"] == summary["oracle"]["success"] and r["success_b"] == summary["do-nothing"]["success"]
    )


def test_wm_compare_command_line(tmp_path, capsys):
    from worldmodel.cli import main as wm

    a = _fake_run(tmp_path / "a", [[1, 1, 0]])
    b = _fake_run(tmp_path / "b", [[1, 0, 0]])
    wm(["compare", "--a", str(a), "--b", str(b), "--names", "mine", "theirs", "--out", str(tmp_path / "c")])
    assert "| mine | theirs | mine - theirs |" in capsys.readouterr().out
    assert (tmp_path / "c" / "compare.md").exists()
