"""Render + physics throughput of each task, per core (the task-suite benchmark).

Measures, for each task in one run, pinned to one CPU core (Linux): MuJoCo physics alone
(one env step = 5 sub-steps), rendering alone, and a full ``env.step`` (physics, render,
proprio, info), at the given frame size, with and without multi-sample anti-aliasing.

    python experiments/bench_render.py                    # 64x64, all tasks
    python experiments/bench_render.py --size 128 --steps 500
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import envs  # first: selects headless rendering before mujoco is imported

# isort: split
import gymnasium as gym
import mujoco
import numpy as np


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
        env._render(env.data, env._opt_obs)
    render = steps / (time.perf_counter() - t)
    env.close()
    return {"env_step_per_s": full, "physics_step_per_s": physics, "render_fps": render}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--tasks", nargs="*", default=list(envs.TASKS))
    p.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    args = p.parse_args()
    if not args.no_pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"# {args.size}x{args.size}, {args.steps} steps, {cores} core(s), MUJOCO_GL={os.environ.get('MUJOCO_GL')}, "
        f"mujoco {mujoco.__version__}, {platform.processor() or platform.machine()}"
    )
    print("| task | MSAA | env.step/s (physics+render+info) | physics steps/s | render fps |")
    print("|---|---|---|---|---|")
    for task_id in args.tasks:
        for msaa in (4, 0):
            r = bench(task_id, args.size, msaa, args.steps)
            print(
                f"| {task_id} | {msaa} | {r['env_step_per_s']:.0f} | {r['physics_step_per_s']:.0f} | "
                f"{r['render_fps']:.0f} |"
            )


if __name__ == "__main__":
    main()
