"""Render + physics throughput of each task, per core (the task-suite benchmark).

Measures, for each task in one run, pinned to one CPU core (Linux): MuJoCo physics alone
(one env step = 5 sub-steps), rendering alone, and a full ``env.step`` (physics, render,
proprio, info), at the given frame size, with and without multi-sample anti-aliasing.

    python experiments/bench_render.py                    # 64x64, all tasks
    python experiments/bench_render.py --size 128 --steps 500
    python experiments/bench_render.py --tasks wm/PointMass-v0 wm/Reacher-v0 --no-pin
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass

import envs  # first: selects headless rendering before mujoco is imported

# isort: split
import gymnasium as gym
import mujoco
import numpy as np
import tyro


@dataclass(frozen=True)
class BenchRenderConfig:
    """Render + physics throughput of each task, per core (the task-suite benchmark)."""

    size: int = 64
    """frame size in pixels (square)"""
    steps: int = 1000
    """env steps timed per measurement (after 20 warm-up steps)"""
    tasks: tuple[str, ...] = tuple(envs.TASKS)
    """task ids to time, each with MSAA 4 and without"""
    pin: bool = True
    """pin the process to one CPU core (Linux); --no-pin leaves it on all cores"""


def bench(task_id: str, size: int, msaa: int, steps: int) -> dict[str, float]:
    env = gym.make(task_id, image_size=size, msaa_samples=msaa).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    for a in actions[:20]:  # warm-up: GL context, caches
        env.step(a)

    env.reset(seed=0)
    t = time.perf_counter()
    for a in actions:
        env.step(a)
    full = steps / (time.perf_counter() - t)

    t = time.perf_counter()
    for a in actions:
        env.data.ctrl[:] = a
        for _ in range(env.frame_skip):
            mujoco.mj_step(env.model, env.data)
    physics = steps / (time.perf_counter() - t)

    t = time.perf_counter()
    for _ in range(steps):
        env._frames.render(env.data)
    render = steps / (time.perf_counter() - t)
    env.close()
    return {"env_step_per_s": full, "physics_step_per_s": physics, "render_fps": render}


def main(cfg: BenchRenderConfig) -> None:
    if cfg.pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"# {cfg.size}x{cfg.size}, {cfg.steps} steps, {cores} core(s), MUJOCO_GL={os.environ.get('MUJOCO_GL')}, "
        f"mujoco {mujoco.__version__}, {platform.processor() or platform.machine()}"
    )
    print("| task | MSAA | env.step/s (physics+render+info) | physics steps/s | render fps |")
    print("|---|---|---|---|---|")
    for task_id in cfg.tasks:
        for msaa in (4, 0):
            r = bench(task_id, cfg.size, msaa, cfg.steps)
            print(
                f"| {task_id} | {msaa} | {r['env_step_per_s']:.0f} | {r['physics_step_per_s']:.0f} | "
                f"{r['render_fps']:.0f} |"
            )


if __name__ == "__main__":
    main(tyro.cli(BenchRenderConfig))
