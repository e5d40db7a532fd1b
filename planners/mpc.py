"""Receding-horizon MPC: plan, execute the first ``execute`` model steps, re-plan, until the budget.

Conventions of the evaluation protocol: one model step is ``action_block`` env steps, and its
action is those env actions concatenated, so the planner searches (L, action_block * A) in the
env's action box tiled ``action_block`` times. The executed part is cut off the plan and the rest,
padded with the box centre, warm-starts the next plan. With ``shrink`` no plan reaches past the
episode's budget: near the end the horizon shortens, so each of the last plans ends where the
episode does (with ``execute=1``, the last re-plan looks one model step ahead). Success is read
from the simulator only after the episode (and, for the report only, after every env step:
``success_any``); the planner and the cost never see it.
Shapes: ``L`` horizon, ``A`` env action dim (legend in :mod:`planners.base`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from planners.base import CostFn, PlanFn


@dataclass(frozen=True)
class EpisodeRecord:
    success: bool  # the task's success test, read once after the episode
    success_any: bool  # the success test passed after some env step (LeWM's rule; report only)
    final_distance: float  # the task's goal distance after the episode (task units)
    env_steps: int
    plan_seconds: list[float]  # wall-clock per re-plan (cost construction + planning)
    evaluations: list[int]  # candidate sequences evaluated per re-plan
    cost_histories: list[Tensor]  # per re-plan: (iterations,) best cost so far
    actions: np.ndarray  # (env_steps, A) the env actions executed
    plan_costs: list[float]  # per re-plan: the cost of the plan chosen (its predicted cost)
    plan_steps: list[int]  # per re-plan: env steps of its plan executed
    observations: list[Any] | None = None  # with record=True: the observation after each env step


def with_horizon(cfg: Any, horizon: int) -> Any:
    """A planner config planning ``horizon`` steps: its ``horizon`` and that of every config nested in
    it (a policy planner's CEM refinement) replaced."""
    nested = {f.name: with_horizon(v, horizon) for f in fields(cfg)
              if is_dataclass(v := getattr(cfg, f.name)) and hasattr(v, "horizon")}  # fmt: skip
    return replace(cfg, horizon=horizon, **nested)


def run_mpc(
    env: gym.Env,
    make_cost: Callable[[gym.Env], CostFn],
    plan_fn: PlanFn,
    cfg: Any,
    *,
    budget_steps: int = 50,
    execute: int | None = None,
    action_block: int = 5,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    record: bool = False,
    shrink: bool = False,
) -> EpisodeRecord:
    """Run one episode from the env's current state (reset it first: that sets the goal).

    Each re-plan calls ``make_cost(env)`` then ``plan_fn(cost, low, high, cfg, init_mean=...)``,
    executes ``execute`` model steps of the plan (default: all ``cfg.horizon``), and stops after
    exactly ``budget_steps`` env steps (or earlier if the env terminates or truncates). The
    bounds, and so the planner's candidates, live on ``device`` (where a world-model cost runs;
    ``generator`` may live there or on the CPU). ``record`` keeps every observation (for videos).
    ``shrink`` plans ``min(cfg.horizon, model steps left in the budget)`` steps (``cfg`` must then
    be a dataclass with a ``horizon`` field, as every planner's config is).
    """
    horizon = cfg.horizon
    execute = horizon if execute is None else execute
    if not 1 <= execute <= horizon:
        raise ValueError(f"execute must be in [1, horizon={horizon}], got {execute}")
    if budget_steps < 1 or action_block < 1:
        raise ValueError(f"budget_steps and action_block must be >= 1, got {budget_steps}, {action_block}")
    space = env.action_space
    low = torch.as_tensor(np.tile(space.low, action_block), dtype=torch.float32, device=device)  # (k*A,)
    high = torch.as_tensor(np.tile(space.high, action_block), dtype=torch.float32, device=device)
    centre = ((low + high) / 2).expand(horizon, -1).cpu()  # (L, k*A)

    task = env.unwrapped
    init, seconds, evals, histories, done, costs, executed = None, [], [], [], [], [], []
    ever = False  # success after some env step: reported beside the end-of-episode test, never planned on
    observations: list[Any] | None = [] if record else None
    while len(done) < budget_steps:
        step_cfg, n_exec = cfg, execute
        left = -(-(budget_steps - len(done)) // action_block)  # model steps left in the budget
        if shrink and left < horizon:
            step_cfg, n_exec = with_horizon(cfg, left), min(execute, left)
            init = None if init is None else init[:left]
        t0 = time.perf_counter()
        res = plan_fn(make_cost(env), low, high, step_cfg, init_mean=init, generator=generator)
        seconds.append(time.perf_counter() - t0)
        evals.append(res.evaluations)
        histories.append(res.cost_history)
        costs.append(float(res.cost))
        plan = res.actions.detach().cpu()  # (L, k*A)
        before = len(done)
        for a in plan[:n_exec].reshape(n_exec * action_block, -1).numpy():  # (execute*k, A)
            obs, _, terminated, truncated, info = env.step(a)
            done.append(a)
            ever = ever or info["is_success"]
            if observations is not None:
                observations.append(obs)
            if terminated or truncated or len(done) == budget_steps:
                break
        executed.append(len(done) - before)
        if terminated or truncated:
            break
        init = torch.cat([plan[n_exec:], centre[:n_exec]]).to(device)  # shifted warm start, (L, k*A)

    return EpisodeRecord(
        success=bool(task.is_success()),
        success_any=ever,
        final_distance=float(task.goal_distance()),
        env_steps=len(done),
        plan_seconds=seconds,
        evaluations=evals,
        cost_histories=histories,
        actions=np.stack(done),
        plan_costs=costs,
        plan_steps=executed,
        observations=observations,
    )
