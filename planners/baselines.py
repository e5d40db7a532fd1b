"""Baseline "planners" with the planner signature, so the MPC loop runs them like any other.

``plan_random``: uniformly random actions in the box. ``plan_do_nothing``: the box centre (for
our tasks' [-1, 1] actions: zero force, torque or velocity target). Neither calls ``cost_fn``,
so each reports ``evaluations=0``, ``cost=nan`` and an empty ``cost_history``.
Shapes: ``L`` horizon, ``A`` action dim (legend in :mod:`planners.base`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import CostFn, PlanResult, check_bounds


@dataclass(frozen=True)
class BaselineConfig:
    horizon: int = 5  # L, model steps per plan

    def __post_init__(self):
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")


def _result(actions: Tensor) -> PlanResult:
    return PlanResult(actions, float("nan"), torch.empty(0, dtype=torch.float64), 0)


def plan_random(
    cost_fn: CostFn,
    low: Tensor,
    high: Tensor,
    cfg: BaselineConfig,
    *,
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Uniform random actions (L, A) in [low, high], from ``generator``; ignores the cost."""
    check_bounds(low, high, cfg.horizon, init_mean)
    device = generator.device if generator is not None else low.device
    u = torch.rand((cfg.horizon, low.numel()), generator=generator, device=device, dtype=low.dtype)
    return _result(low + u.to(low.device) * (high - low))


def plan_do_nothing(
    cost_fn: CostFn,
    low: Tensor,
    high: Tensor,
    cfg: BaselineConfig,
    *,
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """The box centre (L, A) at every step; ignores the cost."""
    check_bounds(low, high, cfg.horizon, init_mean)
    return _result(((low + high) / 2).expand(cfg.horizon, low.numel()).clone())
