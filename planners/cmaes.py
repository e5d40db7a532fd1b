"""CMA-ES through the ``cma`` package's ask/tell, one batched cost call per generation.

Shapes: ``S`` population, ``L`` horizon, ``A`` action dim (legend in :mod:`planners.base`).
The search runs in a normalised space: ``z`` in [-1, 1]^(L*A) maps to ``low + (z + 1) * (high -
low) / 2``. Asked solutions outside the box are evaluated clipped onto it and told back with a
penalty, ``cost + w * |z - clip(z)|^2``, ``w`` the generation's cost std (1 if flat): on our tests
this converged faster than ``cma``'s ``BoundTransform``, and unlike ``cma``'s ``BoundPenalty`` it
survives a flat first generation (a pusher that touches nothing).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cma
import numpy as np
import torch
from torch import Tensor

from planners.base import CostFn, PlanResult, check_bounds, evaluate, seed_from


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence ``cma``'s warnings (flat fitness etc.): a planner does not print or warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True)
class CMAESConfig:
    horizon: int = 5  # L, model steps per plan
    population: int = 300  # S, candidates per generation (cma's popsize)
    iterations: int = 30  # generations
    sigma0: float = 0.5  # initial step size, in units of the half-width (high - low) / 2
    diagonal: bool = False  # diagonal covariance (cma's CMA_diagonal): linear cost in L*A

    def __post_init__(self):
        if self.horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        if self.population < 2:
            raise ValueError(f"population must be >= 2, got {self.population}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if not 0 < self.sigma0 <= 2:
            raise ValueError(f"sigma0 must be in (0, 2] (units of the half-width), got {self.sigma0}")

    @classmethod
    def tiny(cls) -> CMAESConfig:
        """For tests: a few tens of milliseconds on CPU with a cheap cost."""
        return cls(horizon=3, population=24, iterations=40)

    @property
    def evaluations(self) -> int:
        return self.population * self.iterations


def plan_cmaes(
    cost_fn: CostFn,
    low: Tensor,
    high: Tensor,
    cfg: CMAESConfig,
    *,
    init_mean: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> PlanResult:
    """Minimise ``cost_fn`` over sequences (L, A) in the box [low, high] (each (A,)) with CMA-ES.

    Each generation is asked from ``cma`` as S flat vectors, evaluated in one call as (S, L, A),
    and told back. Starts at ``init_mean`` (L, A) or the box centre. ``cma``'s sampling draws from
    a numpy generator seeded from ``generator`` (torch's global RNG if None): the same seed gives
    bit-identical results, and numpy's global RNG is neither used nor touched. Returns the
    cheapest sequence ever evaluated. Inputs are not modified.
    """
    check_bounds(low, high, cfg.horizon, init_mean)
    L, A = cfg.horizon, low.numel()
    lo, hi = low.detach().cpu().double().numpy(), high.detach().cpu().double().numpy()
    half = np.maximum((hi - lo) / 2, 1e-12)  # (A,); a degenerate box stays a point
    z0 = np.zeros((L, A))
    if init_mean is not None:
        z0 = np.clip((init_mean.detach().cpu().double().numpy() - lo) / half - 1, -1, 1)

    rng = np.random.default_rng(seed_from(generator))
    opts = {
        "popsize": cfg.population,
        "CMA_diagonal": cfg.diagonal,
        "seed": np.nan,  # cma must not reseed numpy's global RNG ...
        "randn": lambda *shape: rng.standard_normal(shape),  # ... it samples from ours
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
        "tolfun": 0,
        "tolx": 0,
        "tolflatfitness": np.inf,
        "tolstagnation": np.inf,
        "maxiter": np.inf,
    }
    with _quiet():
        es = cma.CMAEvolutionStrategy(z0.reshape(-1), cfg.sigma0, opts)
    best_actions, best_cost = None, float("inf")
    history = torch.empty(cfg.iterations, dtype=torch.float64)
    for it in range(cfg.iterations):
        with _quiet():
            z = np.asarray(es.ask())  # (S, L*A), may leave [-1, 1]
        x = np.clip(lo + (z.reshape(-1, L, A) + 1) * half, lo, hi)  # (S, L, A)
        candidates = torch.as_tensor(x).to(low)
        cost = evaluate(cost_fn, candidates).detach().double().cpu()  # (S,)
        i = int(torch.argmin(cost))
        if cost[i].item() < best_cost:
            best_cost, best_actions = cost[i].item(), candidates[i].clone()
        history[it] = best_cost
        f = cost.numpy()
        finite = np.isfinite(f)
        w = float(f[finite].std()) if finite.sum() > 1 else 0.0
        outside = ((z - np.clip(z, -1, 1)) ** 2).sum(axis=1)  # (S,)
        told = np.where(finite, f, np.finfo(np.float64).max / 4) + (w if w > 0 else 1.0) * outside
        with _quiet():
            es.tell(list(z), told.tolist())
    if best_actions is None:  # every cost was inf: return the start
        best_actions = torch.as_tensor(np.clip(lo + (z0 + 1) * half, lo, hi)).to(low)
    return PlanResult(best_actions, best_cost, history, cfg.population * cfg.iterations)
