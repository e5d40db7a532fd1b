"""Planners by name, for command lines and benchmark rows: one place maps a name and a budget to
a planner function and its config.

    plan, cfg = make_planner("cem", horizon=5, samples=100, elites=10, iterations=10)
    res = plan(cost_fn, low, high, cfg, generator=g)

The budget (samples, elites, iterations) means the same for every sampling planner: CMA-ES takes
``samples`` as its population (diagonal covariance: linear cost in the plan's length), gradient
descent as its restarts (at most 32). ``policy`` executes the cost's proposal (a world model's
goal-conditioned policy; no budget), ``policy-cem`` runs CEM at this budget with it as the starting mean (and first sample). The baselines (``random``, ``do-nothing``) take a horizon only.
"""

from __future__ import annotations

from typing import Literal

from planners.base import PlanFn
from planners.baselines import BaselineConfig, plan_do_nothing, plan_random
from planners.cem import CEMConfig, plan_cem
from planners.cmaes import CMAESConfig, plan_cmaes
from planners.gradient import GDConfig, plan_gd
from planners.mppi import MPPIConfig, plan_mppi
from planners.policy import PolicyPlanConfig, plan_policy

PlannerName = Literal["cem", "cmaes", "mppi", "gd", "policy", "policy-cem"]
PLANNERS: tuple[str, ...] = PlannerName.__args__
#: planners that plan with a world model's goal-conditioned policy (the cost's ``proposal``)
POLICY_PLANNERS = ("policy", "policy-cem")
BaselineName = Literal["random", "do-nothing"]
BASELINES: tuple[str, ...] = BaselineName.__args__
#: gradient descent's restarts are capped: each is a full differentiable rollout
MAX_GD_RESTARTS = 32


def make_planner(
    name: str, horizon: int = CEMConfig.horizon, samples: int = CEMConfig.samples,
    elites: int = CEMConfig.elites, iterations: int = CEMConfig.iterations,
) -> tuple[PlanFn, object]:  # fmt: skip
    """(planner function, its config) for a planner or baseline ``name`` at this budget."""
    if name == "random":
        return plan_random, BaselineConfig(horizon)
    if name == "do-nothing":
        return plan_do_nothing, BaselineConfig(horizon)
    if name == "cem":
        return plan_cem, CEMConfig(horizon=horizon, samples=samples, elites=elites, iterations=iterations)
    if name == "cmaes":
        return plan_cmaes, CMAESConfig(
            horizon=horizon, population=samples, iterations=iterations, diagonal=True
        )
    if name == "mppi":
        return plan_mppi, MPPIConfig(horizon=horizon, samples=samples, elites=elites, iterations=iterations)
    if name == "gd":
        return plan_gd, GDConfig(
            horizon=horizon, restarts=min(samples, MAX_GD_RESTARTS), iterations=iterations
        )
    if name == "policy":
        return plan_policy, PolicyPlanConfig(horizon)
    if name == "policy-cem":
        cem = CEMConfig(horizon=horizon, samples=samples, elites=elites, iterations=iterations)
        return plan_policy, PolicyPlanConfig(horizon, refine=cem)
    raise ValueError(f"unknown planner {name!r}; choose one of {[*PLANNERS, *BASELINES]}")
