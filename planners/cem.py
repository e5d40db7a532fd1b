"""Cross-entropy method (CEM): Gaussian sampling, elites, mean/std refit, clipping to bounds.

Shapes: ``S`` samples, ``L`` horizon, ``A`` action dim (legend in :mod:`planners.base`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import CostFn, PlanResult, check_bounds, check_sampling, evaluate, sample_normal


@dataclass(frozen=True)
class CEMConfig:
    horizon: int = 5  # L, model steps per plan
    samples: int = 300  # S, candidate sequences per iteration
    elites: int = 30  # lowest-cost samples the Gaussian is refit to
    iterations: int = 30
    init_std: float = 1.0  # initial std, in units of the half-width (high - low) / 2
    min_std: float = 0.05  # floor on the std (same units), keeps sampling alive
    momentum: float = 0.0  # new mean/std = momentum * old + (1 - momentum) * elite fit

    def __post_init__(self):
        check_sampling(self.horizon, self.samples, self.elites, self.iterations)
        if self.init_std <= 0:
            raise ValueError(f"init_std must be > 0, got {self.init_std}")
        if not 0 <= self.min_std <= self.init_std:
            raise ValueError(f"min_std must be in [0, init_std={self.init_std}], got {self.min_std}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")

    @classmethod
    def tiny(cls) -> CEMConfig:
        """For tests: a few milliseconds on CPU with a cheap cost."""
        return cls(horizon=3, samples=64, elites=8, iterations=15, min_std=0.01)

    @property
    def evaluations(self) -> int:
        return self.samples * self.iterations


def plan_cem(
    cost_fn: CostFn,
    low: Tensor,
    high: Tensor,
    cfg: CEMConfig,
    *,
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Minimise ``cost_fn`` over sequences (L, A) in the box [low, high] (each (A,)).

    Each iteration draws S sequences (S, L, A) from a diagonal Gaussian, clips them to the box
    (sample 0 is the current mean itself), and refits mean and std to the ``elites`` cheapest.
    The mean starts at ``init_mean`` (L, A) (a warm start, e.g. the previous plan shifted) or
    the box centre. Returns the cheapest sequence ever evaluated. All randomness comes from
    ``generator`` (torch's global RNG if None). Inputs are not modified.
    """
    check_bounds(low, high, cfg.horizon, init_mean)
    L, A = cfg.horizon, low.numel()
    half = (high - low) / 2  # (A,)
    mean = ((low + high) / 2).expand(L, A).clone() if init_mean is None else init_mean.detach().clone()
    mean = mean.to(low).clamp(low, high)  # (L, A)
    std = (cfg.init_std * half).expand(L, A).clone()  # (L, A)
    min_std = cfg.min_std * half  # (A,)

    best_actions, best_cost = mean, float("inf")
    history = torch.empty(cfg.iterations, dtype=torch.float64)
    for it in range(cfg.iterations):
        noise = sample_normal((cfg.samples, L, A), low, generator)  # (S, L, A)
        samples = (mean + std * noise).clamp(low, high)
        samples[0] = mean
        cost = evaluate(cost_fn, samples).detach().to(low.dtype)  # (S,)
        elite_cost, idx = torch.topk(cost, cfg.elites, largest=False, sorted=True)
        elites = samples[idx]  # (elites, L, A)
        if elite_cost[0].item() < best_cost:
            best_cost, best_actions = elite_cost[0].item(), elites[0].clone()
        history[it] = best_cost
        new_mean, new_std = elites.mean(0), elites.std(0, unbiased=False)
        mean = cfg.momentum * mean + (1 - cfg.momentum) * new_mean
        std = torch.maximum(cfg.momentum * std + (1 - cfg.momentum) * new_std, min_std)
    return PlanResult(best_actions, best_cost, history, cfg.samples * cfg.iterations)
