"""The benchmark: every task through the whole pipeline, CEM and CMA-ES, with all baselines.

Per task: collect exploration data, pretrain the encoder, train the predictor, and evaluate CEM
and CMA-ES under the protocol (dataset and random goals, 3 seeds), with the oracle, random and
do-nothing rows. Writes ``<out>/<task>/...`` (datasets, models, per-planner eval directories) and
``<out>/benchmark.md``: task, planner, success with interval, oracle success, planning seconds
per re-plan, hardware, wall-clock and the commit.

    python experiments/benchmark.py --preset cpu                    # runs here (hours on 2 cores)
    python experiments/benchmark.py --preset cpu --tasks pointmass --seeds 0
    python experiments/benchmark.py --preset cpu --ac-steps 10000   # the predictor trained 4x longer
    python experiments/benchmark.py --preset gpu --workers 8        # on a GPU machine (H100: 14 min per task after pretraining)
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import torch

from envs.registration import resolve_task
from worldmodel.commands.demo import PRESETS, run_pipeline
from worldmodel.commands.report import markdown_table
from worldmodel.train_ac import TrainACConfig

#: GPU preset: the CPU preset's data and encoder (longer pretraining planned worse on point mass),
#: and the GPU spent on the predictor, the stage that limited planning: twice the width at 4x the
#: batch. 6,500 steps took 9.3 min on an H100 shared with three other runs (11.7 steps/s: the
#: small predictor's step is bound by Python and kernel launches, so the batch is nearly free).
#: Reacher, 3 x 50 dataset goals: CEM 80.7%, CMA-ES 84.7% (README)
GPU = replace(PRESETS["cpu"], predictor="cpu", ac_steps=6_500, ac_batch=256)
#: the goal read-out's MLP fit: train-ac's default (the demo fits it in half the steps to stay
#: inside its 15 minutes)
READOUT_STEPS = TrainACConfig.readout_steps


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=["cpu", "gpu", "tiny"], default="cpu")
    p.add_argument("--tasks", nargs="*", default=["pointmass", "reacher", "umaze", "pusht"])
    p.add_argument("--planners", nargs="*", default=["cem", "cmaes"])
    p.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    p.add_argument("--goals", nargs="*", default=["dataset", "random"])
    p.add_argument("--episodes", type=int, default=0, help="episodes per seed (default: the preset's, 50)")
    p.add_argument("--ac-steps", type=int, default=0,
                   help="predictor training steps (default: the preset's; 2,500 for cpu, 10,000 is wm train-ac's)")  # fmt: skip
    p.add_argument("--readout-steps", type=int, default=0,
                   help=f"the MLP goal read-out's fit steps (default: {READOUT_STEPS}, train-ac's; tiny: the preset's)")  # fmt: skip
    p.add_argument("--latent-row", action="store_true", help="also plan with the latent distance alone")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    args = p.parse_args()
    preset = GPU if args.preset == "gpu" else PRESETS[args.preset]
    if args.episodes:
        preset = replace(preset, eval_episodes=args.episodes)
    if args.ac_steps:
        preset = replace(preset, ac_steps=args.ac_steps)
    if args.readout_steps or args.preset != "tiny":
        preset = replace(preset, readout_steps=args.readout_steps or READOUT_STEPS)
    hardware = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    rows = []
    for task in args.tasks:
        task_id = resolve_task(task)
        t0 = time.perf_counter()
        res = run_pipeline(task_id, preset, args.out / task_id.split("/")[-1], workers=args.workers,
                           planners=tuple(args.planners), seeds=tuple(args.seeds), goals=tuple(args.goals),
                           label=f"benchmark preset {args.preset}", latent_row=args.latent_row)  # fmt: skip
        minutes = (time.perf_counter() - t0) / 60
        by = {(s["row"], s["planner"], s["mode"]): s for s in res["summary"]}
        for planner in args.planners:
            for mode in args.goals:
                m, o = by[("model", planner, mode)], by[("oracle", planner, mode)]
                lo, hi = m["success_ci95"]
                rows.append([task_id, planner, mode, f"{100 * m['success']:.1f}% [{100 * lo:.0f}, {100 * hi:.0f}]",
                             f"{100 * o['success']:.1f}%", f"{100 * by[('random', 'random', mode)]['success']:.1f}%",
                             f"{100 * by[('do-nothing', 'do-nothing', mode)]['success']:.1f}%",
                             f"{m['plan_seconds']:.2f}", hardware, f"{minutes:.0f} min", commit()])  # fmt: skip
    table = markdown_table(["task", "planner", "goals", "world model success [95% CI]", "oracle", "random",
                            "do-nothing", "s / re-plan", "hardware", "wall-clock", "commit"], rows)  # fmt: skip
    (args.out / "benchmark.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
