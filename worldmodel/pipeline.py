"""``wm demo``: the whole pipeline on one task, end to end, on a laptop CPU.

    wm demo                                  # point mass: collect, pretrain, train, plan, report
    wm demo --preset tiny                    # the same pipeline in about a minute (smoke test)
    wm demo --out runs/demo-pm               # rerun with the same --out: finished stages are kept

Stages (each skipped when its output already exists in the run directory):
1. collect exploration episodes (``data/``, a LeRobot v3.0 dataset);
2. pretrain the V-JEPA encoder (``encoder/``);
3. train the action-conditioned predictor on its frozen features (``predictor/``);
4. plan with CEM toward goal images of held-out episodes (dataset goals) and report the world
   model beside the random, do-nothing and true-simulator-oracle rows (``eval/``: results.md,
   results.json, videos, cost plot). The model re-plans after every action block (receding
   horizon, ``wm eval --execute 1``), the last plans ending at the budget (``--shrink``).

The ``cpu`` preset is sized for the demo's point mass; the other tasks need longer pretraining and
predictor runs (the benchmark's presets, ``experiments/benchmark.py``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from worldmodel.train.config import LoopConfig, OptimConfig, load_config_dict


@dataclass(frozen=True)
class DemoPreset:
    episodes: int  # collected episodes
    steps: int  # env steps per episode
    encoder: str  # encoder preset
    pretrain_steps: int
    pretrain_batch: int
    predictor: str  # predictor preset
    ac_steps: int
    ac_batch: int
    pool: int
    eval_episodes: int
    samples: int  # CEM budget
    elites: int
    iterations: int
    readout_steps: int  # MLP goal read-out fit
    loader_workers: int = 0  # DataLoader processes decoding video for pretraining
    execute: int | None = None  # model steps run per re-plan (None: the whole plan), as wm eval --execute
    shrink: bool = False  # the last plans end at the budget, as wm eval --shrink


PRESETS = {
    "cpu": DemoPreset(episodes=300, steps=100, encoder="cpu-small", pretrain_steps=100, pretrain_batch=32,
                      predictor="cpu-small", ac_steps=1000, ac_batch=64, pool=2, eval_episodes=50,
                      samples=100, elites=10, iterations=10, readout_steps=1000, execute=1, shrink=True),
    "tiny": DemoPreset(episodes=8, steps=40, encoder="tiny", pretrain_steps=4, pretrain_batch=4,
                       predictor="tiny", ac_steps=6, ac_batch=4, pool=0, eval_episodes=2,
                       samples=16, elites=4, iterations=2, readout_steps=50, execute=1, shrink=True),
}  # fmt: skip

# seconds per unit measured on 2 CPU cores, for the ETA: per 100-step episode collected, per
# pretraining step, per predictor step, per collected episode for the features and the state
# read-out, per evaluated episode and per re-plan in it
_COST = {"collect": 0.13, "pretrain": 0.36, "train-ac": 0.1, "features": 0.4, "eval": 0.3, "replan": 0.3}


@dataclass(frozen=True)
class DemoConfig:
    """The whole pipeline on one task: collect, pretrain, train the predictor, plan, report."""

    task: str = "pointmass"
    """task id or short name"""
    preset: Literal["cpu", "tiny"] = "cpu"
    """sizes and budgets; tiny runs the same pipeline in about a minute"""
    out: Path | None = None
    """run directory (default runs/demo-<task>-<time>); rerun it to finish or reuse stages"""
    workers: int = 2
    """processes for collection and evaluation"""
    seed: int = 0
    threads: int = 2
    """torch threads for training"""


class Stages:
    """Prints stage headers with elapsed time and an ETA for the rest."""

    def __init__(self, plan: dict[str, float]):
        self.plan, self.t0, self.done = plan, time.perf_counter(), set()

    def start(self, name: str) -> None:
        i = list(self.plan).index(name) + 1
        left = sum(v for k, v in self.plan.items() if k not in self.done)
        el = time.perf_counter() - self.t0
        print(
            f"\n[demo {i}/{len(self.plan)}] {name}  (elapsed {el / 60:.1f} min, about {left / 60:.1f} min left)",
            flush=True,
        )

    def finish(self, name: str) -> None:
        self.done.add(name)


def demo(cfg: DemoConfig) -> dict:
    """Run the whole pipeline on ``cfg.task`` (finished stages in ``cfg.out`` are kept)."""
    from envs.registration import resolve_task

    task_id = resolve_task(cfg.task)
    out = cfg.out or Path("runs") / time.strftime(f"demo-{task_id.split('/')[-1]}-%Y%m%d-%H%M%S")
    return run_pipeline(task_id, PRESETS[cfg.preset], out, workers=cfg.workers, seed=cfg.seed, threads=cfg.threads,
                        label=f"preset {cfg.preset}")  # fmt: skip


def _replans(p: DemoPreset) -> int:
    """Re-plans per evaluated episode under ``wm eval``'s default budget, horizon and block."""
    from worldmodel.eval.protocol import EvalConfig

    model_steps = EvalConfig.budget // EvalConfig.action_block
    return -(-model_steps // (p.execute or EvalConfig.horizon))


def _finished(run: Path, marker: str, steps: int) -> bool:
    """Whether ``run`` holds a finished training run of ``steps`` steps. A finished run of another
    length raises: reusing it would label its figures with the wrong budget."""
    if not (run / marker).exists():
        return False
    done = load_config_dict(run)["run"]["loop"]["steps"]
    if done != steps:
        raise ValueError(
            f"{run} holds a finished run of {done} steps but this pipeline asks for {steps}: "
            f"pass another --out, or remove {run} to train it again"
        )
    return True


def run_pipeline(
    task_id: str, p: DemoPreset, out: Path, *, workers: int = 2, seed: int = 0, threads: int = 2,
    planners: tuple[str, ...] = ("cem",), seeds: tuple[int, ...] | None = None, goals: tuple[str, ...] = ("dataset",),
    label: str = "", latent_row: bool = False,
) -> dict:  # fmt: skip
    """Collect, pretrain, train the predictor, evaluate each planner; finished stages are kept."""
    from envs.collect import CollectConfig, collect
    from worldmodel.eval.protocol import EvalConfig, evaluate
    from worldmodel.train.predictor import TrainACConfig, train_ac
    from worldmodel.train.pretrain import PretrainConfig, pretrain

    out.mkdir(parents=True, exist_ok=True)
    data, enc, ac, ev = out / "data", out / "encoder", out / "predictor", out / "eval"
    stages = Stages({
        "collect": _COST["collect"] * p.episodes * p.steps / 100,
        "pretrain": _COST["pretrain"] * p.pretrain_steps,
        "train-ac": _COST["train-ac"] * p.ac_steps + _COST["features"] * p.episodes,
        "eval": (_COST["eval"] + _COST["replan"] * _replans(p)) * p.eval_episodes * len(planners)
        * len(seeds or (seed,)) * len(goals),
    })  # fmt: skip
    print(f"[demo] {task_id}, {label}: run directory {out}")
    t0 = time.perf_counter()

    stages.start("collect")
    info = data / "meta" / "info.json"
    have = json.loads(info.read_text())["total_episodes"] if info.exists() else 0
    if have < p.episodes:
        collect(CollectConfig(task=task_id, out=data, episodes=p.episodes, steps=p.steps, seed=seed,
                              workers=workers, mode="resume" if data.exists() else "new"))  # fmt: skip
    stages.finish("collect")

    stages.start("pretrain")
    loop = dict(seed=seed, threads=threads)
    if not _finished(enc, "encoder.safetensors", p.pretrain_steps):
        pretrain(PretrainConfig(data=data, out=enc, preset=p.encoder,
                                loop=LoopConfig(steps=p.pretrain_steps, batch_size=p.pretrain_batch, eval_every=200,
                                                num_workers=p.loader_workers, **loop)))  # fmt: skip
    stages.finish("pretrain")

    stages.start("train-ac")
    if not _finished(ac, "world_model.json", p.ac_steps):
        train_ac(TrainACConfig(data=data, encoder=enc, out=ac, preset=p.predictor, pool=p.pool,
                               readout_steps=p.readout_steps,
                               loop=LoopConfig(steps=p.ac_steps, batch_size=p.ac_batch, eval_every=10**9, **loop),
                               optim=OptimConfig(lr=1e-3, weight_decay=0.01)))  # fmt: skip
    stages.finish("train-ac")

    stages.start("eval")
    summary, tables = [], []
    for planner in planners:
        ev_dir = ev if len(planners) == 1 else ev / planner
        rows = ("model", "oracle", "random", "do-nothing") if planner == planners[0] else ("model", "oracle")
        if latent_row and planner == planners[0]:
            rows = ("model", "model-latent", *rows[1:])
        result = evaluate(EvalConfig(task=task_id, model=ac, goals=goals, rows=rows, planner=planner,
                                     episodes=p.eval_episodes, seeds=seeds or (seed,), samples=p.samples,
                                     elites=p.elites, iterations=p.iterations, execute=p.execute, shrink=p.shrink,
                                     workers=workers, out=ev_dir, device="auto"))  # fmt: skip
        summary += result["summary"]
        tables.append((ev_dir / "results.md").read_text())
    stages.finish("eval")
    minutes = (time.perf_counter() - t0) / 60
    (out / "results.md").write_text("\n".join(tables) + f"\nwall-clock: {minutes:.1f} min\n")
    print(f"\n[demo] done in {minutes:.1f} min; table, videos and plots in {ev}")
    return {"summary": summary, "out": str(out), "minutes": minutes}
