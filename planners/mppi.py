"""MPPI: model-predictive path integral control (the TD-MPC2 variant with elites and std refit).

Shapes: ``S`` samples, ``L`` horizon, ``A`` action dim (legend in :mod:`planners.base`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from planners.base import CostFn, PlanResult, check_bounds, check_sampling, evaluate, sample_normal


@dataclass(frozen=True)
class MPPIConfig:
    horizon: int = 5  # L, model steps per plan
    samples: int = 300  # S, candidate sequences per iteration
    elites: int = 30  # cheapest samples that get a weight (= samples for classic MPPI)
    iterations: int = 30
    temperature: float = 0.5  # softmax temperature, relative to the elites' cost spread
    noise_std: float = 1.0  # initial sampling std, in units of the half-width (high - low) / 2
    min_std: float = 0.05  # floor on the refit std (same units)

    def __post_init__(self):
        check_sampling(self.horizon, self.samples, self.elites, self.iterations)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.noise_std <= 0:
            raise ValueError(f"noise_std must be > 0, got {self.noise_std}")
        if not 0 <= self.min_std <= self.noise_std:
            raise ValueError(f"min_std must be in [0, noise_std={self.noise_std}], got {self.min_std}")

    @classmethod
    def tiny(cls) -> MPPIConfig:
        """For tests: a few milliseconds on CPU with a cheap cost."""
        return cls(horizon=3, samples=64, elites=16, iterations=15, min_std=0.01)

    @property
    def evaluations(self) -> int:
        return self.samples * self.iterations


def plan_mppi(
    cost_fn: CostFn,
    low: Tensor,
    high: Tensor,
    cfg: MPPIConfig,
    *,
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Minimise ``cost_fn`` over sequences (L, A) in the box [low, high] (each (A,)).

    Each iteration draws S sequences (S, L, A) around the mean (clipped to the box; sample 0 is
    the mean), keeps the ``elites`` cheapest and weights them by
    ``softmax(-(c - c_min) / (temperature * (c_max - c_min)))``: the temperature is relative to
    the elites' cost spread, so one setting serves costs of any scale. Mean and std become the
    weighted mean and std of the elites. Starts at ``init_mean`` (L, A) or the box centre.
    Returns the cheapest sequence ever evaluated. All randomness comes from ``generator``
    (torch's global RNG if None). Inputs are not modified.
    """
    check_bounds(low, high, cfg.horizon, init_mean)
    L, A = cfg.horizon, low.numel()
    half = (high - low) / 2  # (A,)
    mean = ((low + high) / 2).expand(L, A).clone() if init_mean is None else init_mean.detach().clone()
    mean = mean.to(low).clamp(low, high)  # (L, A)
    std = (cfg.noise_std * half).expand(L, A).clone()  # (L, A)
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
        finite = torch.isfinite(elite_cost)
        if not finite.any():  # nothing usable to refit to: keep sampling around the same mean
            continue
        gap = torch.where(finite, elite_cost - elite_cost[0], torch.inf)  # (elites,)
        spread = gap[finite].max().clamp_min(torch.finfo(gap.dtype).tiny)
        w = torch.softmax(-gap / (cfg.temperature * spread), dim=0)[:, None, None]  # (elites, 1, 1)
        mean = (w * elites).sum(0)
        std = torch.maximum(((w * (elites - mean) ** 2).sum(0)).sqrt(), min_std)
    return PlanResult(best_actions, best_cost, history, cfg.samples * cfg.iterations)
