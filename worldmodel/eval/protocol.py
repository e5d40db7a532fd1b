"""``wm eval``: benchmark planning with a world model against the baselines and the oracle.

    wm eval --task pointmass --model runs/ac-pm                      # the default protocol
    wm eval --task pointmass --rows oracle random do-nothing --data data/pointmass --episodes 20
    wm eval --task reacher --model runs/ac-re --planner cmaes --goals dataset random --ray

The protocol of DESIGN.md by default: ``episodes`` x ``seeds`` episodes per row and goal mode;
``dataset`` goals start from a state of a held-out recorded episode with the goal ``goal_offset``
(25) env steps later in the same episode; ``moved`` goals are dataset goals that the task's own
success test fails at the start and at every step of doing nothing from it (on pushing: the block
has to be moved), so the do-nothing row scores 0 on them by construction; ``random`` goals are drawn by the task; a 50-env-step
budget, action block 5, horizon 5 (the whole plan executed, then re-plan; ``execute`` executes fewer
model steps per plan, ``shrink`` ends the last plans at the budget), CEM 300/30/30.
Every row (world model, true-simulator oracle, random, do-nothing) runs on the same starts and
goals. Success is read from the simulator after each episode, never by a planner.

The run directory gets ``results.json``, ``results.md`` (success with 95% Wilson interval, final
distance, planning seconds and model evaluations per re-plan, success at any step of the episode
(LeWM's rule, beside ours at the episode's end), and for the model rows the pair
order: the share of random candidate pairs at the episode's start that the model's cost orders
as the true simulator does, ``worldmodel.eval.landscape``), one video per episode
(observation beside the goal, captioned with the plan's predicted cost), and
``cost_history.png`` (mean best cost per planner iteration). Episodes run in parallel over
processes, or over a Ray cluster with ``--ray``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from planners.cem import CEMConfig
from planners.registry import POLICY_PLANNERS, PlannerName
from worldmodel.eval.executors import run_jobs
from worldmodel.eval.report import episode_frames, markdown_table, plot_cost_histories
from worldmodel.eval.stats import wilson_interval

GoalMode = Literal["dataset", "moved", "random"]
ProtocolName = Literal["ours", "lewm"]
#: the published protocols by name: the settings each fixes (ours: the defaults below). LeWM's as
#: published: 50 episodes, seed 42, dataset goals 25 steps ahead, a 50-step budget, CEM 300 x 30
#: with the top 30, horizon 5, action block 5, success counted if reached at any step (the
#: any-step column; the end-of-episode one beside it)
PROTOCOLS: dict[str, dict] = {
    "ours": {},
    "lewm": {"episodes": 50, "seeds": (42,), "goals": ("dataset",), "goal_offset": 25, "budget": 50,
             "samples": 300, "iterations": 30, "elites": 30, "horizon": 5, "action_block": 5, "execute": None,
             "shrink": False, "history": 1},
}  # fmt: skip
RECORDED_GOALS = ("dataset", "moved")  # goal modes drawn from recorded episodes
MOVED_DRAWS = 1000  # moved goals: draws per episode before giving up
Row = Literal["model", "model-latent", "oracle", "random", "do-nothing"]


@dataclass(frozen=True)
class EvalConfig:
    """Benchmark planning with a world model against random, do-nothing and the true-simulator oracle."""

    task: str = "pointmass"
    """task id or short name (ours, or a benchmark adapter such as wm/dmc-reacher-easy-v0)"""
    protocol: ProtocolName = "ours"
    """ours: the settings below; lewm: LeWM's published protocol (50 episodes, seed 42, dataset
    goals 25 steps ahead, budget 50, CEM 300 x 30 top 30, horizon 5, action block 5); the flags it
    fixes may be left out or given its values"""
    model: Path | None = None
    """train-ac run directory (the world model); without it only oracle and baselines run"""
    data: Path | None = None
    """dataset for dataset goals (default: the world model's training dataset)"""
    goals: tuple[GoalMode, ...] = ("dataset",)
    """dataset: start and goal from a held-out recorded episode; moved: dataset goals that the task's
    success test fails at the start and at every step of doing nothing; random: drawn by the task"""
    rows: tuple[Row, ...] = ("model", "model-latent", "oracle", "random", "do-nothing")
    """model: latent + proprio cost (see --goal-state); model-latent: the latent distance alone"""
    planner: PlannerName = "cem"
    """policy: the world model's goal-conditioned policy (wm train-policy) rolled through its
    predictor, one candidate per re-plan; policy-cem: CEM at this budget started from it"""
    samples: int = CEMConfig.samples
    """candidates per iteration (CMA-ES population, GD restarts)"""
    elites: int = CEMConfig.elites
    iterations: int = CEMConfig.iterations
    horizon: int = CEMConfig.horizon
    """model steps per plan"""
    action_block: int = 5
    """env steps per model step"""
    execute: int | None = None
    """model steps of each plan executed before re-planning (default: the whole horizon)"""
    history: int = 1
    """context frames the world model sees at each re-plan: the current frame and those observed
    one model step (action block) apart before it in the episode, with the actions executed
    between them (1: the current frame alone)"""
    shrink: bool = False
    """plan no further than the episode's budget: the last plans are shorter and end where the
    episode ends (with --execute 1 the last re-plan looks one model step ahead)"""
    budget: int = 50
    """env steps per episode"""
    goal_offset: int = 25
    """dataset goals: env steps between start and goal frame"""
    episodes: int = 50
    """episodes per seed, row and goal mode"""
    seeds: tuple[int, ...] = (0, 1, 2)
    metric: Literal["l1", "l2"] = "l2"
    """latent distance of the world-model cost"""
    cost_steps: Literal["final", "all"] = "final"
    """which predicted steps the world-model cost scores: the plan's final one, or the mean over
    all of its steps (reach the goal early and stay)"""
    goal_state: Literal["decoded", "recorded", "none"] = "decoded"
    """goal proprio for the model row: decoded from the goal image by the model's learned read-out
    (image-only planning); recorded with a dataset goal frame, scored on the same dims the read-out
    can read (what a perfect read-out would give; all dims without a read-out); none (latent
    distance only)"""
    state_weight: float = 3.0
    """weight of the proprio term in the model row's cost"""
    goal_dims: tuple[str, ...] = ()
    """state dims the proprio term scores, by the task's state names (e.g. block_x block_y
    block_angle on wm/PushTState-v0, whose success ignores the pusher); empty: every dim the
    read-out can read"""
    pair_candidates: int = 64
    """random candidate plans per model-row episode scored by the model's cost and by the true
    simulator at the start: the share of pairs ordered alike is the pair-order column (0: off)"""
    workers: int = 2
    """processes (0: in this process)"""
    device: str = "cpu"
    """where the world model plans: cpu, cuda or auto (each worker process holds its own copy)"""
    compile: bool = False
    """compile the predictor's rollout with ``torch.compile`` in each worker: a one-off compilation
    (tens of seconds per planning shape: candidates, horizon, context frames) for faster
    re-plans, which pays at large budgets such as CEM 300 x 30"""
    ray: bool = False
    """distribute episodes with Ray (pip install '.[ray]')"""
    videos: int = -1
    """videos per row and goal mode (first seed); -1: one video for every episode"""
    out: Path | None = None
    """run directory (default runs/eval-<task>-<time>)"""
    progress: bool = True


# -- one episode (runs in a worker) -------------------------------------------------------------

_CACHE: dict = {}


def _planner(cfg: EvalConfig, row: str):
    from planners.registry import BASELINES, make_planner

    name = row if row in BASELINES else cfg.planner
    return make_planner(name, cfg.horizon, cfg.samples, cfg.elites, cfg.iterations)


def _resources(cfg: EvalConfig):
    """Per process: the env, the world model, and the dataset goal pool (built once)."""
    # the run's files' times: a run retrained (or given a policy) in this process is loaded again
    files = sorted(Path(cfg.model).glob("*.safetensors")) if cfg.model else []
    stamp = tuple(f.stat().st_mtime_ns for f in files)
    key = (cfg.task, str(cfg.model), str(cfg.data), cfg.compile, stamp)
    if key not in _CACHE:
        import torch

        from worldmodel.data import LeRobotDataset

        torch.set_num_threads(1)
        wm = None
        if cfg.model is not None:
            from worldmodel.train.runtime import resolve_device
            from worldmodel.world_model import WorldModel

            wm = WorldModel.load(cfg.model, resolve_device(cfg.device))
            if cfg.compile:
                wm.predictor.rollout = torch.compile(wm.predictor.rollout, dynamic=False)
        data, held = goal_source(cfg.model, cfg.data)
        ds = LeRobotDataset(data, episodes=held, check_videos=False) if data is not None else None
        size = ds.features[ds.video_keys[0]]["shape"][0] if ds is not None else (
            wm.encoder.cfg.image_size if wm is not None else 64)  # fmt: skip
        env = task_env(cfg.task, int(size), () if wm is None else wm.image_keys)
        _CACHE[key] = (env, wm, ds)
    return _CACHE[key]


def task_env(task: str, image_size: int, image_keys: tuple[str, ...] = ()):
    """The task's env rendering the cameras a world model sees: ``image_keys`` are its dataset's
    camera features (``observation.images.<camera>``, in the model's order; empty: the task's
    default camera). A model of other cameras raises, naming them and the task's."""
    import gymnasium as gym

    from envs.registration import resolve_task

    task_id = resolve_task(task)
    env = gym.make(task_id, image_size=image_size)
    if not image_keys:
        return env
    prefix = "observation.images."
    names = tuple(k[len(prefix) :] for k in image_keys if k.startswith(prefix))
    if len(names) < len(image_keys):
        env.close()
        raise ValueError(f"the world model sees cameras {list(image_keys)}, which a task does not render "
                         f"({prefix}<camera> keys only): judge it on recorded episodes with wm eval-offline")  # fmt: skip
    if names == env.unwrapped.camera_names:
        return env
    env.close()
    try:
        return gym.make(task_id, image_size=image_size, camera=names if len(names) > 1 else names[0])
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"the world model sees cameras {list(names)}, which {task_id} cannot render ({e})"
        ) from e


def goal_source(model: Path | None, data: Path | None) -> tuple[Path | None, list[int] | None]:
    """The dataset of dataset goals and its held-out episodes (never trained on): ``data``, or the
    world-model run ``model``'s training dataset; a run's own held-out episodes on its own dataset,
    else the dataset's held-out split."""
    from worldmodel.data import LeRobotDataset
    from worldmodel.data.splits import HELD_OUT, split_episodes
    from worldmodel.train.config import load_config_dict

    if model is not None:
        saved = load_config_dict(model)
        source = Path(data or saved["run"]["data"])
        if Path(saved["run"]["data"]).resolve() == source.resolve():
            return source, [int(e) for e in saved["held_out_episodes"]]
    if data is None:
        return None, None
    full = LeRobotDataset(data, check_videos=False)
    return Path(data), split_episodes(full.episode_index, HELD_OUT, seed=0)[1]


def _dataset_start(ds, cfg: EvalConfig, seed: int, i: int, env=None):
    """(start physics state, goal physics state, goal proprio, (recorded episode index, start frame))
    for dataset-goal episode i. With ``env`` (moved goals) the draw is repeated until the goal
    ``_needs_acting`` in it; the first draw is the plain dataset goal's."""
    rng = np.random.default_rng([seed, i, 17])
    ok = [p for p in range(ds.num_episodes) if ds.lengths[p] > cfg.goal_offset]
    if not ok:
        raise ValueError(f"no held-out episode is longer than goal_offset={cfg.goal_offset} steps")
    for _ in range(MOVED_DRAWS if env is not None else 1):
        pos = ok[rng.integers(len(ok))]
        t = int(rng.integers(0, int(ds.lengths[pos]) - cfg.goal_offset))
        rows = ds.episode_rows(pos)
        phys = ds.columns["observation.environment_state"][rows]
        start, goal = phys[t], phys[t + cfg.goal_offset]
        if env is None or _needs_acting(env, start, goal, cfg.budget):
            states = ds.columns["observation.state"][rows]
            return start, goal, states[t + cfg.goal_offset], (int(ds.episode_index[pos]), t)
    raise ValueError(f"moved goals: {MOVED_DRAWS} draws from the held-out episodes found no start from which "
                     f"doing nothing fails the success test for the goal {cfg.goal_offset} steps later")  # fmt: skip


def _needs_acting(env, start: np.ndarray, goal_state: np.ndarray, budget: int) -> bool:
    """Whether the task's success test for the goal fails at the start and after every env step of
    doing nothing (the action box's centre) for ``budget`` steps from it: the scene coasting or
    settling into the goal (a block still sliding after a push) is not a moved goal."""
    from planners import make_oracle_rollout

    task = env.unwrapped
    goal = task.goal_from_state(goal_state)
    if task.is_success(state=start, goal=goal):
        return False
    low, high = env.action_space.low, env.action_space.high
    still = np.broadcast_to((low + high) / 2, (1, budget, low.size))  # (S=1, budget env steps, A)
    before = task.get_state()
    task.set_state(start)
    try:
        states = make_oracle_rollout(env, action_block=1)(still)[0]  # (budget, state_size)
    finally:
        task.set_state(before)
    return not any(task.is_success(state=s, goal=goal) for s in states)


class StepHistory(gym.Wrapper):
    """Keeps an episode's observations and actions from the wrapped env's current state on, for
    the world model's context frames at each re-plan (``context``)."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observations: list[dict] = [env.unwrapped.observe()]  # the first: the state it starts from
        self.actions: list[np.ndarray] = []

    def step(self, action):
        out = self.env.step(action)
        self.observations.append(out[0])
        self.actions.append(np.asarray(action, np.float32))
        return out

    def context(self, frames: int, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The last ``frames`` observations ``block`` env steps apart (fewer early in the episode)
        -> pixels (C, H, W, 3K) for K cameras, states (C, P), actions executed between them (C-1, block*A)."""
        now = len(self.actions)
        idx = [now - k * block for k in reversed(range(frames)) if now - k * block >= 0]
        obs = [self.observations[t] for t in idx]
        past = [np.concatenate(self.actions[t : t + block]) for t in idx[:-1]]
        width = block * self.env.action_space.shape[0]
        return (np.stack([o["pixels"] for o in obs]), np.stack([o["state"] for o in obs]),
                np.stack(past) if past else np.zeros((0, width), np.float32))  # fmt: skip


def run_episode(cfg: EvalConfig, row: str, mode: str, seed: int, i: int, video: Path | None = None) -> dict:
    import torch

    from planners import make_oracle_cost, run_mpc
    from worldmodel.world_model import make_latent_goal_cost

    env, wm, ds = _resources(cfg)
    task = env.unwrapped
    goal_state, origin = None, None
    if mode in RECORDED_GOALS:
        start, goal_phys, goal_state, origin = _dataset_start(
            ds, cfg, seed, i, env if mode == "moved" else None
        )
        env.reset(seed=seed * 100_003 + i, options={"state": start, "goal_state": goal_phys})
    else:
        env.reset(seed=seed * 100_003 + i)
    goal_img = task.goal_image()
    plan_fn, pcfg = _planner(cfg, row)
    if row in ("model", "model-latent"):
        if wm is None:
            raise ValueError(f"the {row} row needs --model (a train-ac run)")
        z_goal = wm.encode(goal_img[None])[0]
        term = "none" if row == "model-latent" else cfg.goal_state
        gs, dims, weight = goal_term(wm, goal_img, goal_state, term, cfg, task.state_names)
        policy_gs = None  # a policy trained with goal states: the read-out's, on the model row (evaluate
        # refuses such a policy on model-latent)
        if (
            row == "model"
            and wm.policy is not None
            and wm.policy.cfg.goal_state
            and cfg.planner in POLICY_PLANNERS
        ):
            policy_gs = wm.read_state(goal_img[None])[0][0]

        env = StepHistory(env)

        def make_cost(env):
            frames, states, past = env.context(cfg.history, cfg.action_block)
            z0 = wm.encode(frames)  # (C, N, D)
            s0 = torch.as_tensor(states, dtype=torch.float32)
            past = torch.as_tensor(past, dtype=torch.float32) if len(past) else None
            return make_latent_goal_cost(wm, z0, s0, z_goal, metric=cfg.metric, goal_state=gs, state_weight=weight,
                                         state_dims=dims, steps=cfg.cost_steps, policy_goal_state=policy_gs,
                                         past_actions=past)  # fmt: skip
    elif row == "oracle":
        oracle = make_oracle_cost(env, cfg.action_block)

        def make_cost(env):
            return oracle
    else:

        def make_cost(env):
            return None

    order = float("nan")
    if row in ("model", "model-latent") and cfg.pair_candidates > 0:
        from worldmodel.eval.landscape import candidate_order, random_candidates

        g = torch.Generator().manual_seed(seed * 1_000_003 + i + 7)  # not the planner's stream
        cands = random_candidates(cfg.pair_candidates, cfg.horizon, wm.action_dim, g)
        order = candidate_order(make_cost(env), make_oracle_cost(env, cfg.action_block), cands)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + i)
    rec = run_mpc(env, make_cost, plan_fn, pcfg, budget_steps=cfg.budget, execute=cfg.execute, action_block=cfg.action_block,
                  generator=gen, record=video is not None, shrink=cfg.shrink)  # fmt: skip
    hist = [h.numpy() for h in rec.cost_histories if len(h)]
    out = {
        "row": row, "mode": mode, "seed": seed, "episode": i, "success": rec.success, "success_any": rec.success_any,
        "final_distance": rec.final_distance, "plan_seconds": float(np.mean(rec.plan_seconds)), "replans": len(rec.plan_steps),
        "evaluations": float(np.mean(rec.evaluations)), "pair_order": order,
        "cost_history": np.mean(hist, axis=0).tolist() if hist else [],
        "start": list(origin) if origin else None,  # dataset goals: (recorded episode, start frame)
    }  # fmt: skip
    if video is not None:  # written here, in the worker: frames never cross processes
        from worldmodel.data.video import write_video

        pixels = [o["pixels"] for o in rec.observations]
        frames = episode_frames(pixels, goal_img, rec.plan_costs, rec.plan_steps)
        write_video(video, frames, fps=10)
        out["video"] = video.name
    return out


def _job(args):
    cfg, row, mode, seed, i, video = args
    return run_episode(cfg, row, mode, seed, i, video)


# -- the evaluation -----------------------------------------------------------------------------


def goal_term(wm, goal_img, goal_state, mode: str, cfg: EvalConfig, state_names: tuple[str, ...] = ()):
    """The model row's proprio goal: (goal state (P,) or None, per-dim weights (P,) or None: all,
    state weight). ``mode`` decoded: read from the goal image by the learned read-out, scored on
    the dims it can read; recorded: the dataset goal's recorded state, scored on the same dims
    (all without a read-out), so only the goal values differ; none: no proprio term. With
    ``cfg.goal_dims`` only the state dims of those names (``state_names``: the task's) are scored."""
    import torch

    if mode == "decoded":
        goal, dims = wm.read_state(goal_img[None])
        goal = goal[0]
    elif mode == "recorded":
        if goal_state is None:
            raise ValueError("--goal-state recorded needs dataset goals (their recorded proprio)")
        goal, dims = torch.as_tensor(goal_state, dtype=torch.float32), wm.readout_trust
    else:
        return None, None, 0.0
    if cfg.goal_dims:
        mask = torch.as_tensor(goal_dim_mask(state_names, cfg.goal_dims), dtype=torch.float32)
        dims = mask if dims is None else dims * mask
    return goal, dims, cfg.state_weight


def goal_dim_mask(state_names: tuple[str, ...], goal_dims: tuple[str, ...]) -> list[float]:
    """1 for the state dims named in ``goal_dims``, 0 for the others; unknown names raise."""
    unknown = sorted(set(goal_dims) - set(state_names))
    if unknown:
        raise ValueError(f"--goal-dims {unknown} are not state dims of this task; it has {list(state_names)}")
    return [float(n in goal_dims) for n in state_names]


def with_protocol(cfg: EvalConfig) -> EvalConfig:
    """``cfg`` with its named protocol's settings; a flag set to another value than both the
    default and the protocol's raises (a run must not silently leave the protocol it names)."""
    from dataclasses import fields, replace

    fixed = PROTOCOLS[cfg.protocol]
    defaults = {f.name: f.default for f in fields(EvalConfig)}
    clash = [f"--{k.replace('_', '-')} {getattr(cfg, k)} (the protocol's is {v})" for k, v in fixed.items()
             if getattr(cfg, k) not in (v, defaults[k])]  # fmt: skip
    if clash:
        raise ValueError(
            f"--protocol {cfg.protocol} fixes {', '.join(clash)}: drop the flag, or use --protocol ours"
        )
    return replace(cfg, **fixed)


def evaluate(cfg: EvalConfig) -> dict:
    from envs.registration import BENCHMARKS, TASKS, resolve_task, task_state_names
    from worldmodel.train.config import save_config

    cfg = with_protocol(cfg)
    task_id = resolve_task(cfg.task)
    if task_id not in TASKS and task_id not in BENCHMARKS:
        raise ValueError(f"wm eval needs a task with goals and a success test: {task_id} is a plain gymnasium env; "
                         f"use one of ours or a benchmark adapter ({', '.join(BENCHMARKS)})")  # fmt: skip
    goal_dim_mask(task_state_names(task_id), cfg.goal_dims)  # bad names raise before any work
    if {"model", "model-latent"} & set(cfg.rows) and cfg.model is None:
        raise ValueError("the 'model' rows need --model (a train-ac run); or drop them with --rows")
    if cfg.planner in POLICY_PLANNERS:
        if "oracle" in cfg.rows:
            raise ValueError(f"--planner {cfg.planner} plans with the world model's policy, which the oracle row "
                             "has not: drop oracle from --rows (or run it with another planner)")  # fmt: skip
        from worldmodel.world_model import POLICY_FILES

        if cfg.model is not None and not (Path(cfg.model) / POLICY_FILES[0]).exists():
            raise ValueError(f"--planner {cfg.planner}: {cfg.model} has no goal-conditioned policy; "
                             f"train one with wm train-policy --model {cfg.model}")  # fmt: skip
        spec = None if cfg.model is None else Path(cfg.model) / POLICY_FILES[1]
        if (
            "model-latent" in cfg.rows
            and spec is not None
            and spec.exists()
            and json.loads(spec.read_text())["policy"]["goal_state"]
        ):
            raise ValueError(f"{cfg.model}'s policy was trained with goal states (the read-out's): plan with it on "
                             "the model row, not model-latent (the latent alone)")  # fmt: skip
    if cfg.model is not None and (Path(cfg.model) / "world_model.json").exists():
        wm_spec = json.loads((Path(cfg.model) / "world_model.json").read_text())
        skip = wm_spec["frameskip"]
        task_env(cfg.task, 64, tuple(wm_spec.get("image_keys") or ())).close()  # cameras the task renders
        if skip != cfg.action_block:
            raise ValueError(f"{cfg.model} predicts {skip} env steps per model step; --action-block is "
                             f"{cfg.action_block}: set --action-block {skip}")  # fmt: skip
    recorded = sorted(set(RECORDED_GOALS) & set(cfg.goals))
    if recorded and goal_source(cfg.model, cfg.data)[0] is None:
        raise ValueError(
            f"{' and '.join(recorded)} goals need --data (or a --model whose run names its dataset)"
        )
    if cfg.episodes < 1 or not cfg.seeds:
        raise ValueError("need episodes >= 1 and at least one seed")
    if cfg.execute is not None and not 1 <= cfg.execute <= cfg.horizon:
        raise ValueError(f"--execute must be in [1, --horizon {cfg.horizon}], got {cfg.execute}")
    if cfg.history < 1:
        raise ValueError(f"--history must be >= 1 (context frames at each re-plan), got {cfg.history}")
    out = cfg.out or Path("runs") / time.strftime(f"eval-{task_id.split('/')[-1]}-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)

    def video_path(row: str, mode: str, seed: int, i: int) -> Path | None:
        keep = cfg.videos < 0 or (i < cfg.videos and seed == cfg.seeds[0])
        return out / f"{mode}_{row}_seed{seed}_ep{i}.mp4" if keep else None

    jobs = [(cfg, row, mode, seed, i, video_path(row, mode, seed, i))
            for mode in cfg.goals for row in cfg.rows for seed in cfg.seeds for i in range(cfg.episodes)]  # fmt: skip
    # expensive rows first, so the pool does not end waiting on one slow episode
    jobs.sort(key=lambda j: {"oracle": 0, "model": 1, "model-latent": 1}.get(j[1], 2))
    bar = tqdm(total=len(jobs), desc=f"eval {task_id}", unit="ep", disable=not cfg.progress)
    results = []
    for r in run_jobs(_job, jobs, cfg.workers, ray=cfg.ray):
        results.append(r)
        bar.update(1)
    bar.close()

    summary = summarize(cfg, task_id, results)
    (out / "results.json").write_text(json.dumps({"config": asdict(cfg) | {"model": str(cfg.model), "data": str(cfg.data), "out": str(out)},
                                                  "summary": summary, "episodes": results}, indent=1, default=str))  # fmt: skip
    table = format_summary(summary)
    (out / "results.md").write_text(table + "\n")
    curves = {f"{s['row']} ({s['mode']})": np.array(s["cost_history"]) for s in summary if s["cost_history"]}
    plot_cost_histories(out / "cost_history.png", curves, task_id)
    print(table)
    print(f"[eval] results, videos and plots in {out}")
    return {"summary": summary, "out": str(out)}


def summarize(cfg: EvalConfig, task_id: str, results: list[dict]) -> list[dict]:
    summary = []
    for mode in cfg.goals:
        for row in cfg.rows:
            rs = [r for r in results if r["row"] == row and r["mode"] == mode]
            n, k = len(rs), sum(r["success"] for r in rs)
            k_any = sum(r["success_any"] for r in rs)
            lo, hi = wilson_interval(k, n)
            hist = [r["cost_history"] for r in rs if r["cost_history"]]
            planner = cfg.planner if row in ("model", "model-latent", "oracle") else row
            summary.append({
                "task": task_id, "row": row, "planner": planner, "mode": mode, "episodes": n, "success": k / n,
                "success_ci95": [lo, hi], "success_any": k_any / n, "final_distance": float(np.mean([r["final_distance"] for r in rs])),
                "plan_seconds": float(np.mean([r["plan_seconds"] for r in rs])),
                "evaluations": float(np.mean([r["evaluations"] for r in rs])),
                "pair_order": _mean_finite([r.get("pair_order", float("nan")) for r in rs]),
                "per_seed_success": {str(s): float(np.mean([r["success"] for r in rs if r["seed"] == s])) for s in cfg.seeds},
                "cost_history": np.mean(hist, axis=0).tolist() if hist else [],
            })  # fmt: skip
    return summary


def _mean_finite(values: list[float]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def percent(x: float | None) -> str:
    """A share as a table cell (``-`` when a row predates the measure)."""
    return "-" if x is None else f"{100 * x:.1f}%"


def format_summary(summary: list[dict]) -> str:
    header = ["task", "goals", "row", "planner", "episodes", "success", "95% CI", "any-step success",
              "final distance", "s / re-plan", "model evals / re-plan", "pair order"]  # fmt: skip
    rows = []
    for s in summary:
        lo, hi = s["success_ci95"]
        order = s.get("pair_order", float("nan"))
        rows.append([s["task"], s["mode"], s["row"], s["planner"], str(s["episodes"]), percent(s["success"]),
                     f"[{100 * lo:.0f}, {100 * hi:.0f}]", percent(s.get("success_any")), f"{s['final_distance']:.3f}", f"{s['plan_seconds']:.3f}",
                     f"{s['evaluations']:.0f}", f"{order:.2f}" if np.isfinite(order) else "-"])  # fmt: skip
    return markdown_table(header, rows)
