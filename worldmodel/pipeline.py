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

Pushing has presets of its own (``wm demo --task pushtstate --preset push``): pushing
demonstrations (``wm collect --policy demo``) recorded losslessly, a longer predictor run, and
moved goals, on which doing nothing scores 0 by construction, with the read-out and latent-alone
rows; ``push-small`` shows the trend in less time and ``push-gpu`` spends a GPU on more data, a
wider predictor and larger batches. A preset with ``joint`` set trains the end-to-end recipe
instead (``wm train-joint``; stages collect, train-joint, eval), as the benchmark's
``--recipe joint`` does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from worldmodel.train.config import LoopConfig, OptimConfig, load_config_dict


@dataclass(frozen=True)
class JointPreset:
    """The end-to-end recipe's own knobs (``wm train-joint``); the preset's encoder, predictor,
    ``ac_steps`` and ``ac_batch`` give its sizes and budget."""

    embed_dim: int  # per-frame embedding width
    frames: int  # frames per training clip
    rollout_steps: int  # steps of the rolled-out loss
    sigreg: float  # weight of SIGReg x batch size


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
    policy: str = "auto"  # collection policy, as wm collect --policy
    codec: str = "h264"  # collection video codec, as wm collect --codec
    joint: JointPreset | None = None  # the end-to-end recipe (None: frozen encoder + train-ac)
    goals: tuple[str, ...] = ("dataset",)  # goal modes of the evaluation, as wm eval --goals
    model_rows: tuple[str, ...] = ("model",)  # world-model rows, as wm eval --rows
    policy_steps: int = 3000  # fit steps of the policy planners' policy (wm train-policy --steps)


#: pushing: demonstrations recorded losslessly, re-planning every action block, moved goals, the
#: read-out and latent-alone rows
_PUSH = dict(steps=100, encoder="cpu-small", pretrain_batch=32, predictor="cpu-small", ac_batch=64, pool=2,
             eval_episodes=50, samples=100, elites=10, iterations=10, execute=1, shrink=True, policy="demo",
             codec="h264-lossless", goals=("moved",), model_rows=("model", "model-latent"))  # fmt: skip
PRESETS = {
    "cpu": DemoPreset(episodes=300, steps=100, encoder="cpu-small", pretrain_steps=100, pretrain_batch=32,
                      predictor="cpu-small", ac_steps=1000, ac_batch=64, pool=2, eval_episodes=50,
                      samples=100, elites=10, iterations=10, readout_steps=1000, execute=1, shrink=True),
    "tiny": DemoPreset(episodes=8, steps=40, encoder="tiny", pretrain_steps=4, pretrain_batch=4,
                       predictor="tiny", ac_steps=6, ac_batch=4, pool=0, eval_episodes=2,
                       samples=16, elites=4, iterations=2, readout_steps=50, execute=1, shrink=True,
                       policy_steps=50),
    "push": DemoPreset(episodes=2000, pretrain_steps=600, ac_steps=15_000, readout_steps=3000, **_PUSH),
    "push-small": DemoPreset(episodes=1000, pretrain_steps=300, ac_steps=2500, readout_steps=1000, **_PUSH),
    "push-gpu": DemoPreset(episodes=4000, pretrain_steps=2000, ac_steps=30_000, readout_steps=6000,
                           **{**_PUSH, "predictor": "cpu", "ac_batch": 256, "pretrain_batch": 64}),
}  # fmt: skip
PUSH_PRESETS = ("push", "push-small", "push-gpu")

# seconds per unit measured on 2 CPU cores, for the ETA: per 100-step episode collected, per
# pretraining step, per predictor step, per collected episode for the features and the state
# read-out, per clip frame of an end-to-end training batch, per evaluated episode and per re-plan in it
_COST = {"collect": 0.13, "pretrain": 0.36, "train-ac": 0.1, "features": 0.4, "train-joint": 0.004, "eval": 0.3,
         "replan": 0.3, "train-policy": 0.3}  # fmt: skip
#: the policy those planners get: an inverse-dynamics model one model step ahead, on the proprio
#: state and the read-out's goal state when the world model has a read-out (else on its latents)
POLICY_MAX_GAP = 1


@dataclass(frozen=True)
class DemoConfig:
    """The whole pipeline on one task: collect, pretrain, train the predictor, plan, report."""

    task: str = "pointmass"
    """task id or short name"""
    preset: Literal["cpu", "tiny", "push", "push-small", "push-gpu"] = "cpu"
    """sizes and budgets; tiny runs the same pipeline in about a minute; push (pushing tasks):
    demonstrations, a longer predictor run and moved goals; push-small the same shorter, push-gpu
    more data, a wider predictor and larger batches for a GPU"""
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
    from envs.registration import is_pushing, resolve_task

    task_id = resolve_task(cfg.task)
    if cfg.preset in PUSH_PRESETS and not is_pushing(task_id):
        raise ValueError(f"preset {cfg.preset!r} collects pushing demonstrations: it needs a pushing task "
                         f"(pusht, pushtstate, pushbox), not {task_id}")  # fmt: skip
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
    planners: tuple[str, ...] = ("cem",), seeds: tuple[int, ...] | None = None, goals: tuple[str, ...] | None = None,
    label: str = "", latent_row: bool = False,
) -> dict:  # fmt: skip
    """Collect, train the world model (pretrain + train-ac, or train-joint), evaluate each planner on
    ``goals`` (default: the preset's); finished stages are kept."""
    from envs.collect import CollectConfig, collect
    from planners.registry import POLICY_PLANNERS
    from worldmodel.eval.protocol import EvalConfig, evaluate

    out.mkdir(parents=True, exist_ok=True)
    data, ev = out / "data", out / "eval"
    goals = goals or p.goals
    episodes = p.eval_episodes * len(planners) * len(seeds or (seed,)) * len(goals)
    plan = {"collect": _COST["collect"] * p.episodes * p.steps / 100}
    if p.joint is None:
        plan["pretrain"] = _COST["pretrain"] * p.pretrain_steps
        plan["train-ac"] = _COST["train-ac"] * p.ac_steps + _COST["features"] * p.episodes
    else:
        plan["train-joint"] = _COST["train-joint"] * p.ac_steps * p.ac_batch * p.joint.frames
    if set(planners) & set(POLICY_PLANNERS):
        plan["train-policy"] = _COST["train-policy"] * p.episodes
    plan["eval"] = (_COST["eval"] + _COST["replan"] * _replans(p)) * episodes
    stages = Stages(plan)
    print(f"[demo] {task_id}, {label}: run directory {out}")
    t0 = time.perf_counter()

    stages.start("collect")
    info = data / "meta" / "info.json"
    have = json.loads(info.read_text())["total_episodes"] if info.exists() else 0
    if have < p.episodes:
        collect(CollectConfig(task=task_id, out=data, episodes=p.episodes, steps=p.steps, seed=seed,
                              workers=workers, policy=p.policy, codec=p.codec,
                              mode="resume" if data.exists() else "new"))  # fmt: skip
    stages.finish("collect")

    loop = dict(seed=seed, threads=threads)
    model = (
        _train_frozen(p, data, out, stages, loop)
        if p.joint is None
        else _train_joint(p, data, out, stages, loop)
    )

    if "train-policy" in plan:
        _train_policy(model, p.policy_steps, seed, stages)
    stages.start("eval")
    summary, tables = [], []
    for planner in planners:
        ev_dir = ev if len(planners) == 1 else ev / planner
        # the oracle row plans with the same planner: not with the world model's policy
        oracle = () if planner in POLICY_PLANNERS else ("oracle",)
        rows = (*p.model_rows, *oracle, *(("random", "do-nothing") if planner == planners[0] else ()))
        if latent_row and planner == planners[0] and "model-latent" not in rows:
            rows = (*rows[: len(p.model_rows)], "model-latent", *rows[len(p.model_rows) :])
        result = evaluate(EvalConfig(task=task_id, model=model, goals=goals, rows=rows, planner=planner,
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


def _train_frozen(p: DemoPreset, data: Path, out: Path, stages: Stages, loop: dict) -> Path:
    """The frozen-encoder recipe: pretrain the encoder, then the predictor on its features."""
    from worldmodel.train.predictor import TrainACConfig, train_ac
    from worldmodel.train.pretrain import PretrainConfig, pretrain

    enc, ac = out / "encoder", out / "predictor"
    stages.start("pretrain")
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
    return ac


def _train_policy(model: Path, steps: int, seed: int, stages: Stages) -> None:
    """The amortised planner for the policy planners, written into the world-model run (kept when there)."""
    from worldmodel.train.policy import TrainPolicyConfig, train_policy
    from worldmodel.world_model import POLICY_FILES, READOUT_FILE

    stages.start("train-policy")
    if not all((model / f).exists() for f in POLICY_FILES):
        read = (model / READOUT_FILE).exists()
        train_policy(TrainPolicyConfig(model=model, steps=steps, max_gap=POLICY_MAX_GAP, goal_state=read,
                                       use_latent=not read, seed=seed))  # fmt: skip
    stages.finish("train-policy")


def _train_joint(p: DemoPreset, data: Path, out: Path, stages: Stages, loop: dict) -> Path:
    """The end-to-end recipe: encoder and predictor trained together from pixels."""
    from worldmodel.jepa.joint import JointLossConfig
    from worldmodel.train.joint import TrainJointConfig, train_joint

    run, j = out / "joint", p.joint
    stages.start("train-joint")
    if not _finished(run, "world_model.json", p.ac_steps):
        train_joint(TrainJointConfig(data=data, out=run, preset=p.encoder, predictor=p.predictor,
                                     embed_dim=j.embed_dim, frames=j.frames, readout_steps=p.readout_steps,
                                     loss=JointLossConfig(rollout_steps=j.rollout_steps, sigreg=j.sigreg),
                                     loop=LoopConfig(steps=p.ac_steps, batch_size=p.ac_batch, eval_every=10**9,
                                                     **loop)))  # fmt: skip
    stages.finish("train-joint")
    return run
