"""Gradient descent on action sequences through a differentiable cost (Adam, random restarts).

Shapes: ``R`` restarts (the batch the cost sees, its ``S``), ``L`` horizon, ``A`` action dim
(legend in :mod:`planners.base`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import CostFn, PlanResult, check_bounds, evaluate


@dataclass(frozen=True)
class GDConfig:
    horizon: int = 5  # L, model steps per plan
    restarts: int = 16  # R, sequences optimised together in one batch
    iterations: int = 100  # cost evaluations per restart (iterations - 1 Adam steps)
    lr: float = 0.1  # Adam learning rate, in units of the half-width (high - low) / 2

    def __post_init__(self):
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.restarts < 1:
            raise ValueError(f"restarts must be >= 1, got {self.restarts}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @classmethod
    def tiny(cls) -> GDConfig:
        """For tests: a few milliseconds on CPU with a cheap cost."""
        return cls(horizon=3, restarts=8, iterations=60)

    @property
    def evaluations(self) -> int:
        return self.restarts * self.iterations


def plan_gd(
    cost_fn: CostFn,
    low: Tensor,
    high: Tensor,
    cfg: GDConfig,
    *,
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Minimise a differentiable ``cost_fn`` over sequences (L, A) in the box [low, high].

    R sequences (R, L, A) descend together: restart 0 starts at ``init_mean`` (L, A) (or the box
    centre), the others uniformly in the box (from ``generator``). Adam runs in the normalised
    coordinates ``z = (x - centre) / half_width``, and each step is projected back onto the box
    (clamp). Gradients are taken with ``torch.autograd.grad`` with respect to the actions only,
    so a model's parameters' ``.grad`` stay untouched. Returns the cheapest sequence ever
    evaluated. Raises ValueError if the cost is not differentiable.
    """
    check_bounds(low, high, cfg.horizon, init_mean)
    L, A = cfg.horizon, low.numel()
    centre, half = (low + high) / 2, (high - low) / 2  # (A,)
    device = generator.device if generator is not None else low.device
    u = torch.rand((cfg.restarts, L, A), generator=generator, device=device, dtype=low.dtype)
    z = (2 * u - 1).to(low.device)  # (R, L, A) in [-1, 1]
    z[0] = 0.0 if init_mean is None else (init_mean.detach().to(low) - centre) / half.clamp_min(1e-12)
    z = z.clamp(-1, 1).requires_grad_(True)
    m, v = torch.zeros_like(z), torch.zeros_like(z)  # Adam moments (written out: no optimiser state)
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    best_actions, best_cost = centre.expand(L, A).clone(), float("inf")
    history = torch.empty(cfg.iterations, dtype=torch.float64)
    for it in range(cfg.iterations):
        x = centre + half * z  # (R, L, A)
        cost = evaluate(cost_fn, x, grad=True)  # (R,)
        if not cost.requires_grad:
            raise ValueError("plan_gd needs a differentiable cost_fn (its output has no grad_fn)")
        with torch.no_grad():
            i = int(torch.argmin(cost))
            if cost[i].item() < best_cost:
                best_cost, best_actions = cost[i].item(), x[i].detach().clone()
        history[it] = best_cost
        if it == cfg.iterations - 1:
            break
        finite = torch.isfinite(cost)
        (grad,) = torch.autograd.grad(cost[finite].sum(), z, allow_unused=True)
        g = torch.zeros_like(z) if grad is None else torch.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        with torch.no_grad():
            m.mul_(beta1).add_(g, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            step = (m / (1 - beta1 ** (it + 1))) / ((v / (1 - beta2 ** (it + 1))).sqrt() + eps)
            z.sub_(cfg.lr * step).clamp_(-1, 1)  # Adam step, then projection onto the box
    return PlanResult(best_actions, best_cost, history, cfg.restarts * cfg.iterations)
