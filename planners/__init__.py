"""Planners: minimise a batched cost over action sequences within bounds; MPC; the oracle.

Shape legend: ``S`` sampled candidates, ``L`` plan horizon, ``A`` action dim (of one model step).

Every planner has one signature (:class:`planners.base.PlanFn`)::

    plan(cost_fn, low (A,), high (A,), cfg, *, init_mean=None (L, A), generator=None) -> PlanResult

with ``cost_fn: actions (S, L, A) -> cost (S,)``, lower is better. ``run_mpc`` runs any of them in
an env; ``make_oracle_cost`` scores plans in the true simulator (the upper bound).
"""

from planners.base import CostFn, PlanFn, PlanResult
from planners.baselines import BaselineConfig, plan_do_nothing, plan_random
from planners.cem import CEMConfig, plan_cem
from planners.cmaes import CMAESConfig, plan_cmaes
from planners.gradient import GDConfig, plan_gd
from planners.mpc import EpisodeRecord, run_mpc
from planners.mppi import MPPIConfig, plan_mppi
from planners.oracle import make_oracle_cost, make_oracle_rollout

__all__ = [
    "BaselineConfig",
    "CEMConfig",
    "CMAESConfig",
    "CostFn",
    "EpisodeRecord",
    "GDConfig",
    "MPPIConfig",
    "PlanFn",
    "PlanResult",
    "make_oracle_cost",
    "make_oracle_rollout",
    "plan_cem",
    "plan_cmaes",
    "plan_do_nothing",
    "plan_gd",
    "plan_mppi",
    "plan_random",
    "run_mpc",
]
