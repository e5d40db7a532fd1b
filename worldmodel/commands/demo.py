"""``wm demo``: run the task suite end to end with the baselines that exist so far.

For each task: episodes from random starts toward random goals under the evaluation budget
(50 env steps), with smooth random actions and with do-nothing; success read from the simulator
after each episode. Writes, in the run directory: ``results.md`` and ``results.json`` (a table per
task and policy with success rate and 95% Wilson interval, final distance, env steps per second),
one goal image per task, and one video per task (observation | human view with the target
marker | goal image).

    wm demo                          # all tasks, 8 episodes each
    wm demo --tasks pointmass --episodes 20 --out runs/pm
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodel.commands.report import wilson_interval


@dataclass(frozen=True)
class DemoConfig:
    tasks: tuple[str, ...] = ("pointmass", "reacher", "umaze", "pusht")
    """tasks to run (short names or ids)"""
    episodes: int = 8
    """episodes per task and policy"""
    steps: int = 50
    """env steps per episode (the evaluation budget)"""
    image_size: int = 64
    """observation size in pixels"""
    seed: int = 0
    """base seed: episode i uses seed + i"""
    out: Path | None = None
    """run directory (default runs/demo-<time>)"""
    video_scale: int = 4
    """upscaling of the saved videos for viewing"""
    policies: tuple[str, ...] = field(default=("random", "do-nothing"))
    """baseline policies to run"""


def _upscale(img: np.ndarray, k: int) -> np.ndarray:
    return img.repeat(k, axis=0).repeat(k, axis=1)


def run_episode(env, policy: str, seed: int, steps: int, record: bool):
    """One episode -> (success, final distance, initial distance, frames or None, seconds)."""
    from envs.policies import SmoothRandomPolicy

    obs, _ = env.reset(seed=seed)
    base = env.unwrapped
    act = SmoothRandomPolicy(env.action_space.shape[0], np.random.default_rng(seed))
    zero = np.zeros(env.action_space.shape, np.float32)
    goal_img = base.goal_image()
    frames = []
    t0 = time.perf_counter()
    for _ in range(steps):
        if record:
            frames.append(np.concatenate([obs["pixels"], env.render(), goal_img], axis=1))
        obs, *_ = env.step(act() if policy == "random" else zero)
    seconds = time.perf_counter() - t0
    if record:
        frames.append(np.concatenate([obs["pixels"], env.render(), goal_img], axis=1))
    # success is read from the simulator only after the episode
    return base.is_success(), base.goal_distance(), frames if record else None, seconds


def main(cfg: DemoConfig) -> dict:
    import gymnasium as gym
    from PIL import Image

    from envs.registration import resolve_task
    from worldmodel.video import write_video

    task_ids = [resolve_task(t) for t in cfg.tasks]  # validate before writing anything
    if cfg.episodes < 1 or cfg.steps < 1:
        raise ValueError(f"episodes and steps must be >= 1, got {cfg.episodes} and {cfg.steps}")
    out = cfg.out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), default=str, indent=2))
    print(f"[demo] {len(task_ids)} tasks x {len(cfg.policies)} policies x {cfg.episodes} episodes -> {out}")
    results = []
    for task_id in task_ids:
        env = gym.make(task_id, image_size=cfg.image_size)
        name = task_id.split("/")[-1]
        for policy in cfg.policies:
            succ, dist, secs = [], [], 0.0
            for ep in tqdm(range(cfg.episodes), desc=f"{name:10s} {policy:10s}", unit="ep"):
                record = ep == 0 and policy == cfg.policies[0]
                ok, d, frames, s = run_episode(env, policy, cfg.seed + ep, cfg.steps, record)
                succ.append(ok)
                dist.append(d)
                secs += s
                if record:
                    Image.fromarray(env.unwrapped.goal_image()).save(out / f"goal_{name}.png")
                    write_video(
                        out / f"episode_{name}.mp4", (_upscale(f, cfg.video_scale) for f in frames), fps=10
                    )
            lo, hi = wilson_interval(sum(succ), len(succ))
            results.append(
                {
                    "task": task_id,
                    "policy": policy,
                    "episodes": len(succ),
                    "success": sum(succ) / len(succ),
                    "success_ci95": [lo, hi],
                    "final_distance": float(np.mean(dist)),
                    "env_steps_per_s": cfg.episodes * cfg.steps / secs,
                }
            )
        env.close()
    table = format_table(results)
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(table)
    print(f"[demo] goal images, videos and the table are in {out}")
    return {"results": results, "out": str(out)}


def format_table(results: list[dict]) -> str:
    rows = [
        "| task | policy | episodes | success | 95% CI | final distance | env steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lo, hi = r["success_ci95"]
        rows.append(
            f"| {r['task']} | {r['policy']} | {r['episodes']} | {100 * r['success']:.0f}% | "
            f"[{100 * lo:.0f}, {100 * hi:.0f}] | {r['final_distance']:.3f} | {r['env_steps_per_s']:.0f} |"
        )
    return "\n".join(rows)
