"""Data collection: exploration episodes in a task, written as a LeRobot v3.0 dataset.

    wm collect --task pointmass --episodes 1000 --steps 100 --out data/pointmass
    wm collect --task pusht --episodes 2000 --workers 2 --out data/pusht --codec av1
    wm collect --task pointmass --episodes 2000 --out data/pointmass --mode resume   # finish to 2000

Episodes run in a process pool (forkserver: safe after rendering) and come back in index order,
so the dataset is the same whatever the number of workers. Episode ``i`` is seeded from
``(seed, i)`` alone, so an interrupted collection resumed with ``--mode resume`` holds exactly the
episodes an uninterrupted one would. Ctrl-C or SIGTERM stops collection and keeps every finished
episode (the writer flushes); a SIGKILL keeps every episode flushed before it.

The dataset holds per frame: ``observation.images.<camera>`` (the exact pixels the agent saw),
``observation.state`` (proprio), ``action`` (applied after that frame; zero on the final frame,
which is not a transition), ``observation.environment_state`` (the full MuJoCo state, to restart
the simulator at any frame) and ``next.done``. ``meta/collection.json`` records the config and
the coverage of the state space; ``meta/coverage.png`` shows it when matplotlib is installed.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from envs.registration import is_pushing, resolve_task

FPS = 20  # our tasks' control rate: dt 0.01 x 5 sub-steps


@dataclass(frozen=True)
class CollectConfig:
    """Collect exploration episodes into a LeRobot v3.0 dataset."""

    task: str = "pointmass"
    """task id or short name (pointmass, reacher, umaze, pusht, pushbox)"""
    out: Path = Path("data/pointmass")
    """dataset directory"""
    episodes: int = 100
    """episodes to collect (with --mode append: to add)"""
    steps: int = 100
    """actions per episode (each episode has steps + 1 frames)"""
    policy: Literal["auto", "smooth", "push", "demo"] = "auto"
    """smooth: smooth random actions; push: scripted pushes at random sides of the block (push
    tasks); demo: pushing demonstrations toward sampled target poses, with noise, free motion and
    failures (push tasks); auto: push on push tasks, else smooth"""
    seed: int = 0
    """base seed; episode i is seeded from (seed, i)"""
    workers: int = 2
    """processes; 0 runs in this process"""
    image_size: int = 64
    """frame size in pixels"""
    cameras: tuple[str, ...] = ()
    """cameras to record, one video each (default: the task's top camera; our tasks also have
    ``side``, a view from 45 degrees above the floor)"""
    codec: Literal["h264", "av1", "h264-lossless"] = "h264"
    """video codec"""
    frames_per_file: int = 2000
    """frames per data/video file"""
    mode: Literal["new", "resume", "append"] = "new"
    """new dataset; resume an interrupted one up to --episodes; append --episodes more"""
    progress: bool = True
    """show a progress bar"""


# -- one episode (runs in a worker) -----------------------------------------------------------

_ENV_CACHE: dict = {}


def _env(task_id: str, image_size: int, cameras: tuple[str, ...]):
    from envs.registration import make_task

    key = (task_id, image_size, cameras)
    if key not in _ENV_CACHE:
        _ENV_CACHE[key] = make_task(task_id, image_size, cameras or None)
    return _ENV_CACHE[key]


def _close_at_exit() -> None:
    """Close the cached envs at exit before their GL display goes: atexit runs last-in first-out
    and the display's teardown was registered at the first frame, so register after it."""
    if not getattr(_close_at_exit, "done", False):
        import atexit

        atexit.register(lambda: [env.close() for env in _ENV_CACHE.values()])
        _close_at_exit.done = True


def env_fps(env) -> int:
    """Frames per second of a task's recording: its control rate (``metadata["render_fps"]``)."""
    return int(env.metadata.get("render_fps") or FPS)


def has_physics(env) -> bool:
    """Whether the env's full simulator state can be read (recorded as ``environment_state``)."""
    try:
        env.get_state()
    except (AttributeError, NotImplementedError):
        return False
    return True


def run_episode(
    task_id: str, image_size: int, cameras: tuple[str, ...], policy: str, steps: int, seed: int, index: int
):
    """Episode ``index`` -> (index, arrays for the dataset (frames, proprio, actions, physics
    states), the episode's metadata columns (its env seed, and a demonstrator's target counts))."""
    from envs.policies import PushDemoPolicy, PushScriptedPolicy, SmoothRandomPolicy

    env = _env(task_id, image_size, cameras)
    ss = np.random.SeedSequence([seed, index])
    env_seed, policy_rng = int(ss.generate_state(1)[0]), np.random.default_rng(ss.spawn(1)[0])
    obs, _ = env.reset(seed=env_seed)
    policies = {"push": PushScriptedPolicy, "demo": PushDemoPolicy}
    box = env.action_space
    if policy in policies:
        act = policies[policy](env, policy_rng)
    else:  # smooth noise in [-1, 1]^A mapped onto the env's own action box
        unit, centre, half = (
            SmoothRandomPolicy(box.shape[0], policy_rng),
            (box.high + box.low) / 2,
            (box.high - box.low) / 2,
        )

        def act():
            return (centre + half * unit()).astype(box.dtype)

    record = has_physics(env)
    _close_at_exit()
    frames, states, actions = [obs["pixels"]], [obs["state"]], []
    physics = [env.get_state()] if record else []
    for _ in range(steps):
        a = act()
        obs, *_ = env.step(a)
        actions.append(a)
        frames.append(obs["pixels"])
        states.append(obs["state"])
        if record:
            physics.append(env.get_state())
    actions.append(np.zeros_like(actions[0]))  # the final frame is not a transition
    done = np.zeros(steps + 1, bool)
    done[-1] = True
    extra = {"seed": env_seed}
    if policy == "demo":  # what the demonstrator tried and reached (targets still open at the end count)
        extra.update(targets=act.targets, targets_reached=act.reached)
    arrays = {"pixels": np.stack(frames), "observation.state": np.stack(states), "action": np.stack(actions),
              "next.done": done}  # fmt: skip
    if record:
        arrays["observation.environment_state"] = np.stack(physics)
    return index, arrays, extra


def _episode_job(args):
    return run_episode(*args)


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us


# -- the collection ---------------------------------------------------------------------------


def dataset_features(task_id: str, image_size: int, cameras: tuple[str, ...]) -> tuple[dict, list[str]]:
    """LeRobot features of a task's dataset, and the image feature keys (one per camera, in the
    order of the channels of the env's ``pixels``)."""
    env = _env(task_id, image_size, cameras)
    h, w = env.image_hw
    image_keys = [f"observation.images.{name}" for name in env.camera_names]
    action_dim = env.action_space.shape[0]
    video = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"]}
    features = {
        **{key: dict(video) for key in image_keys},
        "observation.state": {
            "dtype": "float32",
            "shape": [len(env.state_names)],
            "names": list(env.state_names),
        },
        "action": {
            "dtype": "float32",
            "shape": [action_dim],
            "names": [f"a{i}" for i in range(action_dim)],
        },
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
    }
    if has_physics(env):  # the full simulator state, to restart it at any frame
        features["observation.environment_state"] = {
            "dtype": "float64",
            "shape": [env.state_size],
            "names": None,
        }
    return features, image_keys


def collect(cfg: CollectConfig) -> dict:
    """Collect episodes into ``cfg.out``; returns a summary (episodes, frames, coverage)."""
    from worldmodel.data.writer import LeRobotWriter, atomic_write_text

    task_id = resolve_task(cfg.task)
    if cfg.episodes < 0 or cfg.steps < 1 or cfg.workers < 0:
        raise ValueError(
            f"need episodes >= 0, steps >= 1, workers >= 0; got {cfg.episodes}, {cfg.steps}, {cfg.workers}"
        )
    policy = cfg.policy if cfg.policy != "auto" else ("push" if is_pushing(task_id) else "smooth")
    if policy in ("push", "demo") and not is_pushing(task_id):
        raise ValueError(f"the {policy} policy needs a pushing task, not {task_id}")
    if cfg.mode == "new" and cfg.episodes < 1:
        raise ValueError(f"--episodes {cfg.episodes}: a new collection needs at least one episode")
    recipe = _recipe(cfg, task_id, policy)
    _check_out(cfg, recipe)
    features, image_keys = dataset_features(task_id, cfg.image_size, cfg.cameras)
    writer = LeRobotWriter(
        cfg.out,
        features,
        fps=env_fps(_env(task_id, cfg.image_size, cfg.cameras)),
        codec=cfg.codec,
        frames_per_file=cfg.frames_per_file,
        robot_type=task_id,
        append=cfg.mode != "new",
        episode_columns={"seed": "int64", **DEMO_COLUMNS} if policy == "demo" else {"seed": "int64"},
    )
    start = writer.total_episodes
    stop = start + cfg.episodes if cfg.mode == "append" else max(cfg.episodes, start)
    record = {**recipe, "episodes": start, "frames": writer.total_frames, "interrupted": True,
              "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}}  # fmt: skip
    (cfg.out / "meta").mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        cfg.out / "meta" / "collection.json", json.dumps(record, indent=2)
    )  # the recipe, before any episode
    task_text = f"{task_id}: {policy} exploration"
    jobs = [
        (task_id, cfg.image_size, cfg.cameras, policy, cfg.steps, cfg.seed, i) for i in range(start, stop)
    ]
    previous_term = signal.signal(signal.SIGTERM, _raise_interrupt)
    pool = None
    bar = tqdm(total=len(jobs), desc=f"collect {task_id}", unit="ep", disable=not cfg.progress)
    t0, frames0 = time.perf_counter(), writer.total_frames
    interrupted = False
    try:
        if cfg.workers == 0:
            results = map(_episode_job, jobs)
        else:
            pool = mp.get_context("forkserver").Pool(cfg.workers, initializer=_worker_init)
            results = pool.imap(_episode_job, jobs, chunksize=1)
        for index, ep, extra in results:
            pixels = ep.pop("pixels")  # (T, H, W, 3K): the cameras along the channels
            ep.update({key: pixels[..., 3 * c : 3 * c + 3] for c, key in enumerate(image_keys)})
            got = writer.add_episode(ep, task_text, extra)
            assert got == index, (got, index)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
        writer.close()  # flushes every finished episode
        signal.signal(signal.SIGTERM, previous_term)
    summary = {
        "task": task_id,
        "policy": policy,
        "episodes": writer.total_episodes,
        "frames": writer.total_frames,
        "interrupted": interrupted,
        "rate": _rate(writer.total_episodes - start, writer.total_frames - frames0, time.perf_counter() - t0),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
    }
    if writer.total_episodes and hasattr(_env(task_id, cfg.image_size, cfg.cameras), "coverage_coords"):
        summary["coverage"] = coverage_report(cfg.out)
    atomic_write_text(cfg.out / "meta" / "collection.json", json.dumps(summary, indent=2))
    if interrupted:
        raise KeyboardInterrupt(f"collection interrupted; {writer.total_episodes} episodes kept in {cfg.out}")
    return summary


#: per-episode columns of demonstrations in meta/episodes
DEMO_COLUMNS = {"targets": "int64", "targets_reached": "int64"}

#: the fields of a collection that decide what its episodes hold; resume and append must match them
RECIPE_FIELDS = ("task", "policy", "steps", "seed", "image_size", "cameras", "codec", "frames_per_file")


def _recipe(cfg: CollectConfig, task_id: str, policy: str) -> dict:
    plain = {**asdict(cfg), "cameras": list(cfg.cameras)}  # as collection.json records it
    return {"task": task_id, "policy": policy, **{k: plain[k] for k in RECIPE_FIELDS[2:]}}


def _check_out(cfg: CollectConfig, recipe: dict) -> None:
    """Refuse an output folder this collection would damage.

    ``new`` needs a new or empty folder. ``resume`` and ``append`` need a folder written by
    ``wm collect`` (its ``meta/collection.json``) with the same recipe: another seed, episode
    length or codec would mix episodes of two collections into one dataset."""
    out = cfg.out
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file, not a dataset directory")
    exists = (out / "meta" / "info.json").exists()
    empty = not out.exists() or not any(out.iterdir())
    if cfg.mode == "new":
        if exists:
            raise FileExistsError(
                f"{out} already holds a dataset: use --mode resume or --mode append, or a new --out"
            )
        if not empty:
            hint = (
                " (an interrupted collection: use --mode resume)"
                if (out / "meta" / "collection.json").exists()
                else ""
            )
            raise FileExistsError(f"{out} is not empty{hint}: wm collect writes a new dataset only into a new or empty folder")  # fmt: skip
        return
    if empty:
        return
    path = out / "meta" / "collection.json"
    if not path.exists():
        raise FileExistsError(
            f"{out} holds no {path.relative_to(out)}: it was not written by wm collect, so --mode {cfg.mode} "
            "cannot check that the new episodes match it; collect into a new --out"
        )
    try:
        old = json.loads(path.read_text())
        if "cameras" not in old["config"]:  # recorded before several cameras: one optional camera
            old["config"]["cameras"] = [c] if (c := old["config"].get("camera")) else []
        theirs = {
            "task": old["task"],
            "policy": old["policy"],
            **{k: old["config"][k] for k in RECIPE_FIELDS[2:]},
        }
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a collection record ({type(e).__name__}: {e})") from e
    diff = [
        f"{k}: recorded {theirs[k]!r}, asked {recipe[k]!r}" for k in RECIPE_FIELDS if theirs[k] != recipe[k]
    ]
    if diff:
        raise ValueError(f"{out} was collected with another recipe ({'; '.join(diff)}): --mode {cfg.mode} needs "
                         "the same one, or collect into a new --out")  # fmt: skip


def _rate(episodes: int, frames: int, seconds: float) -> dict:
    """The collection rate of this call (its episodes and frames over its wall-clock)."""
    return {"seconds": round(seconds, 2), "episodes_per_s": episodes / max(seconds, 1e-9),
            "frames_per_s": frames / max(seconds, 1e-9)}  # fmt: skip


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def coverage_report(root: Path, bins: int = 20) -> dict:
    """How much of the task's workspace the dataset visits (from the recorded physics states)."""
    import gymnasium as gym

    from worldmodel.data.reader import LeRobotDataset

    ds = LeRobotDataset(root, check_videos=False)
    env = gym.make(ds.info["robot_type"]).unwrapped  # our tasks and the adapters
    physics = ds.columns["observation.environment_state"]
    xy = env.coverage_coords(physics)  # (N, 2)
    (x0, y0), (x1, y1) = env.coverage_bounds()
    hist, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=bins, range=[[x0, x1], [y0, y1]])
    free = env.coverage_mask(bins)  # cells the object can occupy at all
    report = {
        "coords": env.coverage_names,
        "bins": bins,
        "visited_fraction": float((hist[free] > 0).mean()),
        "cells_with_10_visits_fraction": float((hist[free] >= 10).mean()),
    }
    if "Push" in ds.info["robot_type"]:
        moved = []
        for pos in range(ds.num_episodes):
            s = physics[ds.episode_rows(pos)]
            q0, q1 = env.qpos_of(s[0]), env.qpos_of(s[-1])
            moved.append(np.hypot(*(q1[2:4] - q0[2:4])) > 0.02 or abs(q1[4] - q0[4]) > 0.05)
        report["episodes_block_moved_fraction"] = float(np.mean(moved))
    targets, reached = ds.episode_column("targets"), ds.episode_column("targets_reached")
    if targets is not None and reached is not None:  # demonstrations
        report["demo_targets"], report["demo_targets_reached"] = int(targets.sum()), int(reached.sum())
        report["demo_reached_fraction"] = float(reached.sum() / max(targets.sum(), 1))
    with contextlib.suppress(ImportError):
        _plot_coverage(
            root / "meta" / "coverage.png", hist, (x0, x1, y0, y1), env.coverage_names, ds.info["robot_type"]
        )
    return report


def _plot_coverage(path: Path, hist: np.ndarray, extent, names, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3.6))
    im = ax.imshow(np.log1p(hist.T), origin="lower", extent=extent, cmap="viridis", aspect="auto")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(f"{title}: visits (log)")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
