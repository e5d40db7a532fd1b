"""``wm compare``: is world model A better than B at planning? A paired comparison of ``wm eval`` runs.

    wm compare --a runs/eval-sigreg --b runs/eval-random --names sigreg random
    wm compare --a runs/eval-s0-2 runs/eval-s3-9 --b runs/eval-rand-s0-2 runs/eval-rand-s3-9
    wm compare --a runs/eval-cem --b runs/eval-cmaes --out runs/cem-vs-cmaes

Every ``wm eval`` row plays episodes fixed by (goal mode, seed, episode): the same start and goal
for any model and planner. Comparing two runs episode by episode is then far more sensitive than
setting two success rates with their own intervals side by side: the episodes both solve, or
both fail, say nothing about which is better; only the ones that split them do.

For each goal mode the table gives both success rates (95% Wilson intervals) on the episodes the
two sides share, the difference A - B with its paired 95% interval (Newcombe's method 10), the
split (episodes only A solved / only B solved), and the exact McNemar p-value. Several run
directories per side are pooled (e.g. seeds run at different times). Runs of different tasks,
budgets or goal offsets are refused, and so are runs whose dataset-goal episodes started from
different recorded frames: they did not play the same episodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from worldmodel.eval.report import markdown_table
from worldmodel.eval.stats import mcnemar_exact_p, paired_difference_interval, wilson_interval

# protocol settings that fix which episodes were played; runs that differ in them are not paired
_SAME = ("task", "goal_offset", "budget")


@dataclass(frozen=True)
class CompareConfig:
    """Compare two sets of ``wm eval`` runs episode by episode (paired success difference)."""

    a: tuple[Path, ...] = ()
    """``wm eval`` run directories (or results.json files) of side A, pooled"""
    b: tuple[Path, ...] = ()
    """the same for side B"""
    names: tuple[str, str] = ("A", "B")
    """labels of the two sides in the table"""
    row_a: str = "model"
    """which row of A's runs (model, model-latent, oracle, random, do-nothing)"""
    row_b: str = "model"
    """which row of B's runs"""
    out: Path | None = None
    """directory for compare.md and compare.json (default: print only)"""


def _load(path: Path) -> dict:
    f = path / "results.json" if path.is_dir() else path
    if not f.is_file():
        raise FileNotFoundError(f"{path}: no results.json (not a `wm eval` run directory?)")
    return json.loads(f.read_text())


def pooled_episodes(paths: tuple[Path, ...], row: str) -> tuple[dict, dict]:
    """(protocol, {(mode, seed, episode): episode record}) of one side's runs for one row."""
    from envs.registration import resolve_task

    if not paths:
        raise ValueError("each side needs at least one `wm eval` run directory")
    protocol, episodes = None, {}
    for p in paths:
        res = _load(Path(p))
        here = {k: res["config"][k] for k in _SAME} | {"task": resolve_task(res["config"]["task"])}
        if protocol is None:
            protocol = here
        elif here != protocol:
            raise ValueError(f"{p}: protocol {here} differs from the side's first run {protocol}")
        rows = {e["row"] for e in res["episodes"]}
        if row not in rows:
            raise ValueError(f"{p}: has no {row!r} row (it has {sorted(rows)})")
        for e in res["episodes"]:
            if e["row"] != row:
                continue
            key = (e["mode"], e["seed"], e["episode"])
            if key in episodes:
                raise ValueError(f"{p}: episode {key} is already in an earlier run of this side")
            episodes[key] = e
    return protocol, episodes


def compare(cfg: CompareConfig) -> dict:
    """Paired comparison per goal mode; returns {"rows": [...], "table": markdown}."""
    proto_a, eps_a = pooled_episodes(cfg.a, cfg.row_a)
    proto_b, eps_b = pooled_episodes(cfg.b, cfg.row_b)
    if proto_a != proto_b:
        raise ValueError(f"the sides did not play the same episodes: A has {proto_a}, B has {proto_b}")
    shared = sorted(set(eps_a) & set(eps_b))
    if not shared:
        raise ValueError("the sides share no (goal mode, seed, episode): run them with the same --seeds")
    for key in shared:
        sa, sb = eps_a[key].get("start"), eps_b[key].get("start")
        if sa is not None and sb is not None and sa != sb:
            raise ValueError(f"episode {key} started from recorded frame {sa} in A but {sb} in B: "
                             "different datasets or held-out splits, not the same episodes")  # fmt: skip
    name_a, name_b = cfg.names
    rows = []
    for mode in sorted({k[0] for k in shared}):
        keys = [k for k in shared if k[0] == mode]
        pairs = [(bool(eps_a[k]["success"]), bool(eps_b[k]["success"])) for k in keys]
        both = sum(a and b for a, b in pairs)
        a_only = sum(a and not b for a, b in pairs)
        b_only = sum(b and not a for a, b in pairs)
        n = len(pairs)
        rows.append({
            "mode": mode, "episodes": n, "seeds": sorted({k[1] for k in keys}),
            "success_a": (both + a_only) / n, "ci_a": wilson_interval(both + a_only, n),
            "success_b": (both + b_only) / n, "ci_b": wilson_interval(both + b_only, n),
            "difference": (a_only - b_only) / n,
            "difference_ci95": paired_difference_interval(both, a_only, b_only, n - both - a_only - b_only),
            "a_only": a_only, "b_only": b_only, "mcnemar_p": mcnemar_exact_p(a_only, b_only),
            "unpaired": {"a": len([k for k in eps_a if k[0] == mode]) - n, "b": len([k for k in eps_b if k[0] == mode]) - n},
        })  # fmt: skip
    header = ["task", "goals", "paired episodes", name_a, name_b, f"{name_a} - {name_b}", "95% CI",
              f"only {name_a} / only {name_b}", "McNemar p"]  # fmt: skip

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    table = markdown_table(header, [
        [proto_a["task"], r["mode"], str(r["episodes"]),
         f"{pct(r['success_a'])} [{100 * r['ci_a'][0]:.0f}, {100 * r['ci_a'][1]:.0f}]",
         f"{pct(r['success_b'])} [{100 * r['ci_b'][0]:.0f}, {100 * r['ci_b'][1]:.0f}]",
         f"{100 * r['difference']:+.1f} pts",
         f"[{100 * r['difference_ci95'][0]:+.1f}, {100 * r['difference_ci95'][1]:+.1f}]",
         f"{r['a_only']} / {r['b_only']}", f"{r['mcnemar_p']:.3g}"]
        for r in rows])  # fmt: skip
    print(table)
    for mode in sorted({k[0] for k in eps_a} ^ {k[0] for k in eps_b}):
        print(f"[compare] {mode} goals: only one side played them, left out")
    for r in rows:
        if r["unpaired"]["a"] or r["unpaired"]["b"]:
            print(f"[compare] {r['mode']} goals: left out {r['unpaired']['a']} episodes only {name_a} played "
                  f"and {r['unpaired']['b']} only {name_b} played")  # fmt: skip
    if cfg.out is not None:
        cfg.out.mkdir(parents=True, exist_ok=True)
        (cfg.out / "compare.md").write_text(table + "\n")
        meta = {"a": [str(p) for p in cfg.a], "b": [str(p) for p in cfg.b], "names": list(cfg.names),
                "row_a": cfg.row_a, "row_b": cfg.row_b, "protocol": proto_a}  # fmt: skip
        (cfg.out / "compare.json").write_text(json.dumps(meta | {"rows": rows}, indent=1))
        print(f"[compare] written to {cfg.out}")
    return {"rows": rows, "table": table}
