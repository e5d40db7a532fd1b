"""The amortised planners: a learned policy's proposal, executed as it is or refined by CEM.

A cost may carry a proposal, ``cost_fn.proposal(L) -> (L, A)``: a guess of the cheapest plan
that costs next to nothing to make (a world model's goal-conditioned policy rolled through its
predictor: ``worldmodel.world_model.make_latent_goal_cost``). ``plan_policy`` clips it to the box
and scores it once (one evaluation); with ``refine`` it is CEM's starting mean instead of the
previous plan's shift (CEM scores its mean first and returns the cheapest plan it saw, so the
answer is never worse than the proposal under the cost).

Shapes: ``L`` horizon, ``A`` action dim (legend in :mod:`planners.base`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import CostFn, PlanResult, check_bounds, evaluate
from planners.cem import CEMConfig, plan_cem


@dataclass(frozen=True)
class PolicyPlanConfig:
    horizon: int = 5  # L
    refine: CEMConfig | None = None  # CEM started from the proposal (None: the proposal alone)

    def __post_init__(self):
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.refine is not None and self.refine.horizon != self.horizon:
            raise ValueError(f"refine.horizon {self.refine.horizon} != horizon {self.horizon}")


def plan_policy(
    cost_fn: CostFn,
    low: Tensor,
    high: Tensor,
    cfg: PolicyPlanConfig,
    *,
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """The cost's proposal (L, A) clipped to [low, high] (each (A,)), or CEM from it with
    ``cfg.refine``. ``init_mean`` (the previous plan's shift) is not used: the proposal replaces it."""
    check_bounds(low, high, cfg.horizon, init_mean)
    propose = getattr(cost_fn, "proposal", None)
    if propose is None:
        raise ValueError("the policy planners need a cost with a proposal: a world model with a "
                         "goal-conditioned policy (wm train-policy)")  # fmt: skip
    plan = propose(cfg.horizon).to(low.device, low.dtype)
    if tuple(plan.shape) != (cfg.horizon, low.numel()):
        raise ValueError(
            f"the proposal has shape {tuple(plan.shape)}, expected (L, A) = ({cfg.horizon}, {low.numel()})"
        )
    plan = torch.minimum(torch.maximum(plan, low), high)
    if cfg.refine is not None:  # CEM's first sample is its mean: the proposal is scored there
        return plan_cem(cost_fn, low, high, cfg.refine, init_mean=plan, generator=generator)
    cost = float(evaluate(cost_fn, plan[None])[0])
    return PlanResult(plan, cost, torch.tensor([cost]), 1)
