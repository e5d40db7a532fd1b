"""The benchmark: every task through the whole pipeline, each planner, with all baselines.

Per task: collect exploration data, pretrain the encoder, train the predictor, and evaluate each
planner under the protocol (3 seeds x 50 episodes per goal mode) beside the true-simulator
oracle (same planner and budget), random and do-nothing rows. Pushing tasks run the pushing
presets of ``wm demo`` (``push`` for cpu, ``push-gpu`` for gpu: demonstrations, a longer predictor
run, moved goals). ``--recipe joint`` trains the end-to-end world model (``wm train-joint``)
instead of pretraining an encoder and training the predictor on its frozen features. Writes ``<out>/<task>/...``
(datasets, models, per-planner eval directories), ``<out>/benchmark.json`` (every row, the
commit and the hardware) and ``<out>/benchmark.md``; ``--readme README.md`` also writes the table
into the README between its benchmark markers. ``--report-only`` rebuilds both from
``benchmark.json`` without running anything.

    python experiments/benchmark.py --preset cpu --readme README.md     # every task (hours on 2 cores)
    python experiments/benchmark.py --preset cpu --tasks pointmass --seeds 0
    python experiments/benchmark.py --preset cpu --planners cem policy   # CEM beside the amortised planner
    python experiments/benchmark.py --preset tiny --tasks pointmass --out runs/bench-tiny   # a smoke run
    python experiments/benchmark.py --report-only --readme README.md    # the table again, from benchmark.json
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import tyro

from planners.registry import PlannerName
from worldmodel.eval.protocol import EvalConfig, GoalMode, percent
from worldmodel.eval.report import commit, hardware, markdown_table, publish_table
from worldmodel.pipeline import PRESETS, DemoPreset, JointPreset, run_pipeline
from worldmodel.train.predictor import TrainACConfig

#: CPU preset: the demo's sizes with the budgets every task needs (the demo's point mass is the
#: easiest task; the reacher needs the longer pretraining and predictor run), each plan executed
#: whole before re-planning
CPU = replace(PRESETS["cpu"], episodes=400, pretrain_steps=600, ac_steps=2_500, execute=None, shrink=False,
              readout_steps=TrainACConfig.readout_steps)  # fmt: skip
#: GPU preset: the CPU preset's data and encoder, and the GPU spent on the predictor (the stage
#: that limits planning): twice the width at 4x the batch
GPU = replace(CPU, predictor="cpu", ac_steps=6_500, ac_batch=256)
#: pushing tasks under the cpu and gpu presets
PUSH = {"cpu": PRESETS["push"], "gpu": PRESETS["push-gpu"]}
#: --recipe joint: the end-to-end recipe's settings (docs/RESULTS.md, the refined recipe), batch 32 on CPU
JOINT = JointPreset(embed_dim=32, frames=6, rollout_steps=5, sigreg=0.02)
BEGIN, END = "<!-- benchmark:begin -->", "<!-- benchmark:end -->"


@dataclass(frozen=True)
class BenchmarkConfig:
    """Every task through the whole pipeline; a results table with the oracle and baseline rows."""

    preset: Literal["cpu", "gpu", "tiny"] = "cpu"
    """sizes and budgets (cpu: the demo's sizes with longer training; gpu spends a GPU on a wider
    predictor; tiny: the demo's smoke preset)"""
    tasks: tuple[str, ...] = ("pointmass", "reacher", "umaze", "pusht")
    """task ids or short names"""
    recipe: Literal["frozen", "joint"] = "frozen"
    """frozen: pretrain the encoder, then the predictor on its frozen features; joint: encoder and
    predictor trained together (wm train-joint), with the latent-alone row beside the read-out one"""
    planners: tuple[PlannerName, ...] = ("cem", "cmaes")
    """planners of the world-model rows (policy, policy-cem: the world model's goal-conditioned policy,
    trained into its run first; their rows have no oracle beside them)"""
    seeds: tuple[int, ...] = (0, 1, 2)
    goals: tuple[GoalMode, ...] = ("dataset", "moved", "random")
    """goal modes (see wm eval --goals); moved: dataset goals that doing nothing does not reach"""
    episodes: int = 0
    """episodes per seed (0: the preset's)"""
    ac_steps: int = 0
    """predictor training steps (0: the preset's)"""
    readout_steps: int = 0
    """the MLP goal read-out's fit steps (0: the preset's)"""
    latent_row: bool = False
    """also plan with the latent distance alone"""
    workers: int = 2
    """processes for collection and evaluation"""
    out: Path = Path("runs/benchmark")
    readme: Path | None = None
    """write the table into this Markdown file between the benchmark markers"""
    report_only: bool = False
    """rebuild benchmark.md (and --readme) from <out>/benchmark.json; run nothing"""


def preset_for(cfg: BenchmarkConfig, task_id: str = "") -> DemoPreset:
    """The preset a task runs under (pushing tasks: the pushing presets), with the flags' overrides."""
    from envs.registration import is_pushing

    if is_pushing(task_id) and cfg.preset in PUSH:
        preset = PUSH[cfg.preset]
    else:
        tiny = replace(PRESETS["tiny"], execute=None, shrink=False)
        preset = {"cpu": CPU, "gpu": GPU, "tiny": tiny}[cfg.preset]
    if cfg.episodes:
        preset = replace(preset, eval_episodes=cfg.episodes)
    if cfg.ac_steps:
        preset = replace(preset, ac_steps=cfg.ac_steps)
    if cfg.recipe == "joint":
        preset = replace(preset, joint=JOINT, ac_batch=32 if cfg.preset == "cpu" else preset.ac_batch,
                         model_rows=("model", "model-latent"))  # fmt: skip
    if cfg.readout_steps:
        preset = replace(preset, readout_steps=cfg.readout_steps)
    return preset


def describe(p: dict, seeds: list[int]) -> str:
    """One sentence: how a task's world model was made and planned with (a preset as stored)."""
    policy = p.get("policy", "auto")  # presets stored before collection policies were recorded: auto
    data = (
        f"{p['episodes']} {policy} episodes collected ({p['codec']})"
        if policy != "auto"
        else f"{p['episodes']} episodes collected"
    )
    if p.get("joint"):
        j = p["joint"]
        made = (f"{data}, encoder `{p['encoder']}` and predictor `{p['predictor']}` trained end to end "
                f"{p['ac_steps']} steps at batch {p['ac_batch']} ({j['embed_dim']}-d embedding, {j['frames']}-frame "
                f"clips, {j['rollout_steps']}-step rollout loss)")  # fmt: skip
    else:
        made = (f"{data}, encoder `{p['encoder']}` pretrained {p['pretrain_steps']} steps, predictor "
                f"`{p['predictor']}` {p['ac_steps']} steps")  # fmt: skip
    replan = f", re-planning every {p['execute']} model steps" if p.get("execute") else ""
    return (f"{made}, then {len(seeds)} seeds x {p['eval_episodes']} episodes per goal mode, {EvalConfig.budget}-step "
            f"budget, {p['samples']} samples x {p['iterations']} iterations ({p['elites']} elites){replan}.")  # fmt: skip


def report(bench: dict) -> str:
    """The Markdown table (and the line below it saying how it was made) of a benchmark.json."""
    label = {"model": "world model", "model-latent": "world model, latent distance alone", "oracle": "oracle",
             "random": "random actions", "do-nothing": "do nothing"}  # fmt: skip
    rows = []
    for s in bench["rows"]:
        lo, hi = s["success_ci95"]
        planner = s["planner"] if s["row"] in ("model", "model-latent", "oracle") else "-"
        timing = f"{s['plan_seconds']:.2f}" if s["evaluations"] else "-"
        rows.append([s["task"], s["mode"], label[s["row"]], planner, str(s["episodes"]),
                     f"{100 * s['success']:.1f}% [{100 * lo:.0f}, {100 * hi:.0f}]", percent(s.get("success_any")),
                     f"{s['final_distance']:.3f}", timing, f"{s['evaluations']:.0f}"])  # fmt: skip
    table = markdown_table(["task", "goals", "row", "planner", "episodes", "success [95% CI]", "any-step success",
                            "final distance", "s / re-plan", "model evals / re-plan"], rows)  # fmt: skip
    p = bench["preset"]
    minutes = ", ".join(f"{t.split('/')[-1]} {m:.0f}" for t, m in bench["minutes"].items())
    own = {t: q for t, q in bench.get("presets", {}).items() if q != p}  # tasks under a preset of their own
    others = "".join(f" {t.split('/')[-1]}: {describe(q, bench['seeds'])}" for t, q in own.items())
    note = (f"Commit `{bench['commit']}`, {bench['date']}, {bench['hardware']}; `python experiments/benchmark.py "
            f"{bench['command']}`. Per task{' (but those named after)' if own else ''}: "
            f"{describe(p, bench['seeds'])}{others} Wall-clock per task (min): {minutes}.")  # fmt: skip
    return table + "\n\n" + note + "\n"


def main(cfg: BenchmarkConfig, argv: list[str] | None = None) -> dict:
    from envs.registration import resolve_task

    store = cfg.out / "benchmark.json"
    if cfg.report_only:
        if not store.exists():
            raise FileNotFoundError(f"{store} missing: run the benchmark first")
        bench = json.loads(store.read_text())
    else:
        task_ids = [resolve_task(t) for t in cfg.tasks]  # unknown names raise before any work
        presets = {t: preset_for(cfg, t) for t in task_ids}
        bench = {"commit": commit(), "date": time.strftime("%Y-%m-%d"), "hardware": hardware(cfg.workers),
                 "command": " ".join(argv) if argv is not None else "", "preset": asdict(preset_for(cfg)),
                 "presets": {t: asdict(q) for t, q in presets.items()}, "seeds": list(cfg.seeds), "rows": [],
                 "minutes": {}}  # fmt: skip
        for task_id in task_ids:
            t0 = time.perf_counter()
            res = run_pipeline(task_id, presets[task_id], cfg.out / task_id.split("/")[-1], workers=cfg.workers,
                               planners=cfg.planners, seeds=cfg.seeds, goals=cfg.goals,
                               label=f"benchmark preset {cfg.preset}", latent_row=cfg.latent_row)  # fmt: skip
            bench["minutes"][task_id] = (time.perf_counter() - t0) / 60
            order = {"model": 0, "model-latent": 1, "oracle": 2, "random": 3, "do-nothing": 4}
            keep = ("task", "row", "planner", "mode", "episodes", "success", "success_ci95", "success_any",
                    "final_distance", "plan_seconds", "evaluations")  # fmt: skip
            summary = sorted(res["summary"], key=lambda s: (s["mode"], order[s["row"]]))
            bench["rows"] += [{k: s[k] for k in keep} for s in summary]
            store.parent.mkdir(parents=True, exist_ok=True)
            store.write_text(json.dumps(bench, indent=1))  # after each task: a stopped run keeps its rows
    publish_table(report(bench), cfg.out / "benchmark.md", cfg.readme, (BEGIN, END))
    return bench


if __name__ == "__main__":
    import sys

    main(tyro.cli(BenchmarkConfig), argv=sys.argv[1:])
