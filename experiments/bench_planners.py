"""Planning seconds per re-plan for each planner: oracle cost on each task, and a synthetic cost.

The protocol's default budget: horizon 5 model steps x action block 5 (so (5, 5*A) plans), CEM
300 samples x 30 iterations; MPPI and CMA-ES get the same 9,000 evaluations per re-plan, gradient
descent 16 restarts x 100 steps (synthetic cost only: the oracle is not differentiable). Each
timed re-plan starts from a fresh episode's state and includes building the cost.

    python experiments/bench_planners.py                                # all tasks, all planners
    python experiments/bench_planners.py --tasks wm/PointMass-v0 --planners cem --threads 2
    python experiments/bench_planners.py --preset tiny                  # a smoke run
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass
from typing import Literal

import envs  # first: selects headless rendering before mujoco is imported

# isort: split
import gymnasium as gym
import mujoco
import numpy as np
import torch
import tyro
from torch import Tensor

from planners import (
    CEMConfig,
    CMAESConfig,
    CostFn,
    GDConfig,
    MPPIConfig,
    make_oracle_cost,
    plan_cem,
    plan_cmaes,
    plan_gd,
    plan_mppi,
)

PLANNERS = {"cem": plan_cem, "mppi": plan_mppi, "cmaes": plan_cmaes, "cmaes-diag": plan_cmaes, "gd": plan_gd}
Planner = Literal["cem", "mppi", "cmaes", "cmaes-diag", "gd"]


@dataclass(frozen=True)
class BenchPlannersConfig:
    """Planning seconds per re-plan for each planner: oracle cost on each task, and a synthetic cost."""

    tasks: tuple[str, ...] = tuple(envs.TASKS)
    """task ids timed with the oracle cost"""
    planners: tuple[Planner, ...] = tuple(PLANNERS)
    """planners to time (gd runs on the synthetic cost only)"""
    replans: int = 1
    """timed re-plans per (task, planner), each from a fresh episode (seed 0, 1, ...)"""
    horizon: int = 5
    """L, model steps per plan"""
    action_block: int = 5
    """env steps per model step"""
    threads: int = 1
    """mujoco.rollout threads of the oracle (tasks with the standard action map)"""
    torch_threads: int = 1
    """torch intra-op threads (they compete with the oracle's MuJoCo threads for the cores)"""
    preset: Literal["default", "tiny"] = "default"
    """default: the protocol's planner budgets; tiny: 32 samples x 3 iterations, for a smoke run"""
    seed: int = 0
    """torch seed; re-plan r resets the env with seed + r and seeds the planner with seed + r"""


def configs(cfg: BenchPlannersConfig) -> dict[str, object]:
    L = cfg.horizon
    out = {
        "cem": CEMConfig(horizon=L),
        "mppi": MPPIConfig(horizon=L),
        "cmaes": CMAESConfig(horizon=L),
        "cmaes-diag": CMAESConfig(horizon=L, diagonal=True),
        "gd": GDConfig(horizon=L),
    }
    if cfg.preset == "tiny":
        small = {"samples": 32, "elites": 4, "iterations": 3}
        out = {
            "cem": dataclasses.replace(out["cem"], **small),
            "mppi": dataclasses.replace(out["mppi"], **small),
            "cmaes": dataclasses.replace(out["cmaes"], population=32, iterations=3),
            "cmaes-diag": dataclasses.replace(out["cmaes-diag"], population=32, iterations=3),
            "gd": dataclasses.replace(out["gd"], restarts=4, iterations=5),
        }
    return {name: out[name] for name in cfg.planners}


def synthetic_cost(action_dim: int, dim: int = 64, seed: int = 0) -> CostFn:
    """A small differentiable stand-in for a world model: a tanh RNN over the plan, L2 to a goal."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(dim, dim, generator=g) / dim**0.5
    U = torch.randn(action_dim, dim, generator=g) / action_dim**0.5
    z0, goal = torch.randn(dim, generator=g), torch.randn(dim, generator=g)

    def cost(actions: Tensor) -> Tensor:  # (S, L, A) -> (S,)
        z = z0.expand(actions.shape[0], dim)  # (S, D)
        for a in actions.unbind(1):
            z = torch.tanh(z @ W + a @ U)
        return ((z - goal) ** 2).sum(-1)

    return cost


def time_replans(plan, pcfg, make_cost, low: Tensor, high: Tensor, reset, replans: int, seed: int):
    seconds, costs, evals = [], [], 0
    for r in range(replans):
        reset(r)
        t0 = time.perf_counter()
        res = plan(make_cost(), low, high, pcfg, generator=torch.Generator().manual_seed(seed + r))
        seconds.append(time.perf_counter() - t0)
        costs.append(res.cost)
        evals = res.evaluations
    return float(np.mean(seconds)), float(np.mean(costs)), evals


def main(cfg: BenchPlannersConfig) -> dict[str, float]:
    # -- setup
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.torch_threads)
    plans = configs(cfg)
    print(
        f"# horizon {cfg.horizon} x action block {cfg.action_block}, preset {cfg.preset}, oracle threads "
        f"{cfg.threads}, {os.cpu_count()} cpu(s), torch threads {torch.get_num_threads()}, mujoco "
        f"{mujoco.__version__}, {platform.processor() or platform.machine()}"
    )
    print("| cost | planner | evaluations/re-plan | seconds/re-plan | mean best cost |")
    print("|---|---|---|---|---|")
    results: dict[str, float] = {}

    def report(cost_name: str, name: str, seconds: float, cost: float, evals: int) -> None:
        results[f"{cost_name}/{name}"] = seconds
        print(f"| {cost_name} | {name} | {evals} | {seconds:.3f} | {cost:.4f} |", flush=True)

    # -- synthetic batched torch cost (planner overhead + a cheap model)
    A = 2 * cfg.action_block
    low, high = -torch.ones(A), torch.ones(A)
    for name, pcfg in plans.items():
        plan = PLANNERS[name]
        plan(synthetic_cost(A), low, high, dataclasses.replace(pcfg, iterations=1))  # warm-up
        sec, cost, evals = time_replans(
            plan, pcfg, lambda: synthetic_cost(A), low, high, lambda r: None, cfg.replans, cfg.seed
        )
        report("synthetic", name, sec, cost, evals)

    # -- the true-simulator oracle on each task
    for task_id in cfg.tasks:
        env = gym.make(task_id)
        A = env.action_space.shape[0] * cfg.action_block
        low = torch.as_tensor(np.tile(env.action_space.low, cfg.action_block))
        high = torch.as_tensor(np.tile(env.action_space.high, cfg.action_block))
        for name, pcfg in plans.items():
            if name == "gd":
                continue  # the oracle is not differentiable
            sec, cost, evals = time_replans(
                PLANNERS[name],
                pcfg,
                lambda env=env: make_oracle_cost(env, cfg.action_block, threads=cfg.threads),
                low,
                high,
                lambda r, env=env: env.reset(seed=cfg.seed + r),
                cfg.replans,
                cfg.seed,
            )
            report(task_id, name, sec, cost, evals)
        env.close()
    return results


if __name__ == "__main__":
    main(tyro.cli(BenchPlannersConfig))
