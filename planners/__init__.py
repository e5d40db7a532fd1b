"""Planners: minimise a batched cost over action sequences within bounds; MPC; the oracle.

Shape legend: ``S`` sampled candidates, ``L`` plan horizon, ``A`` action dim (of one model step).

Every planner has one signature (:class:`planners.base.PlanFn`)::

    plan(cost_fn, low (A,), high (A,), cfg, *, init_mean=None (L, A), generator=None) -> PlanResult

with ``cost_fn: actions (S, L, A) -> cost (S,)``, lower is better. ``run_mpc`` runs any of them in
an env; ``make_oracle_cost`` scores plans in the true simulator (the upper bound; imported on
first use, since it needs the MuJoCo tasks of ``envs``); ``make_planner`` picks one by name; ``plan_policy`` executes (or refines with CEM) a
learned policy's proposal carried by the cost.
"""

from planners.base import CostFn, PlanFn, PlanResult
from planners.baselines import BaselineConfig, plan_do_nothing, plan_random
from planners.cem import CEMConfig, plan_cem
from planners.cmaes import CMAESConfig, plan_cmaes
from planners.gradient import GDConfig, plan_gd
from planners.mpc import EpisodeRecord, run_mpc
from planners.mppi import MPPIConfig, plan_mppi
from planners.policy import PolicyPlanConfig, plan_policy
from planners.registry import PLANNERS, make_planner

_ORACLE = ("make_oracle_cost", "make_oracle_rollout")


def __getattr__(name: str):
    if name in _ORACLE:  # the oracle imports envs and mujoco: only when asked for
        from planners import oracle

        return getattr(oracle, name)
    raise AttributeError(f"module 'planners' has no attribute {name!r}")


__all__ = [
    "PLANNERS",
    "BaselineConfig",
    "CEMConfig",
    "CMAESConfig",
    "CostFn",
    "EpisodeRecord",
    "GDConfig",
    "MPPIConfig",
    "PlanFn",
    "PlanResult",
    "PolicyPlanConfig",
    "make_oracle_cost",
    "make_oracle_rollout",
    "make_planner",
    "plan_cem",
    "plan_cmaes",
    "plan_do_nothing",
    "plan_gd",
    "plan_mppi",
    "plan_policy",
    "plan_random",
    "run_mpc",
]
