"""The planner interface: a planner minimises a batched cost over action sequences in a box.

Shape legend: ``S`` sampled candidate sequences, ``L`` plan horizon (model steps), ``A`` action
dimension of one model step (with an action block of ``k`` env steps per model step, ``A`` is
``k`` times the env's action dimension).

A planner sees only a cost callable and the bounds, never a model, an env or a logger::

    res = plan_cem(cost_fn, low, high, CEMConfig(), generator=torch.Generator().manual_seed(0))
    res.actions  # (L, A), inside [low, high]

Every planner (``plan_cem``, ``plan_cmaes``, ``plan_mppi``, ``plan_gd`` and the baselines) has
the signature of :class:`PlanFn`, so tests and the MPC loop are parametrised over planners.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor

CostFn = Callable[[Tensor], Tensor]  # actions (S, L, A) -> cost (S,), lower is better


class PlanResult(NamedTuple):
    actions: Tensor  # (L, A) best sequence found, inside [low, high]
    cost: float  # its cost (nan when the planner evaluates nothing)
    cost_history: Tensor  # (iterations,) best cost so far after each iteration
    evaluations: int  # candidate sequences evaluated (sum of S over cost_fn calls)


class PlanFn(Protocol):
    """What every planner looks like; ``cfg`` is the planner's own config (it has ``horizon``)."""

    def __call__(
        self,
        cost_fn: CostFn,
        low: Tensor,
        high: Tensor,
        cfg: Any,
        *,
        init_mean: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> PlanResult: ...


def check_sampling(horizon: int, samples: int, elites: int, iterations: int) -> None:
    """Validation shared by the sampling planners' configs (CEM, MPPI)."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if samples < 2:
        raise ValueError(f"samples must be >= 2, got {samples}")
    if not 1 <= elites <= samples:
        raise ValueError(f"elites must be in [1, samples={samples}], got {elites}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")


def check_bounds(low: Tensor, high: Tensor, horizon: int, init_mean: Tensor | None) -> None:
    """Validate bounds (A,) and an optional warm start (L, A); raise ValueError if malformed."""
    if low.ndim != 1 or low.shape != high.shape:
        raise ValueError(
            f"low and high must both have shape (A,), got {tuple(low.shape)} and {tuple(high.shape)}"
        )
    if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise ValueError("low and high must be finite")
    if (low > high).any():
        raise ValueError(f"low must be <= high elementwise, got low={low.tolist()} high={high.tolist()}")
    if init_mean is not None and tuple(init_mean.shape) != (horizon, low.numel()):
        raise ValueError(
            f"init_mean must have shape (L, A) = ({horizon}, {low.numel()}), got {tuple(init_mean.shape)}"
        )


def evaluate(cost_fn: CostFn, actions: Tensor, *, grad: bool = False) -> Tensor:
    """Call ``cost_fn`` on actions (S, L, A) and check the answer: -> cost (S,) with NaN -> +inf.

    Without ``grad`` the call runs under ``torch.no_grad()`` (no autograd graph is built)."""
    with torch.set_grad_enabled(grad):
        cost = cost_fn(actions)
    if not isinstance(cost, Tensor) or tuple(cost.shape) != (actions.shape[0],):
        shape = tuple(cost.shape) if isinstance(cost, Tensor) else type(cost).__name__
        raise ValueError(f"cost_fn must return a tensor of shape (S,) = ({actions.shape[0]},), got {shape}")
    return torch.nan_to_num(cost, nan=float("inf"))


def sample_normal(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal noise of ``shape`` on the generator's device, moved to ``like``'s."""
    device = generator.device if generator is not None else like.device
    noise = torch.randn(shape, generator=generator, device=device, dtype=like.dtype)
    return noise.to(like.device)


def seed_from(generator: torch.Generator | None) -> int:
    """An int seed drawn from a torch generator (or torch's global RNG), for numpy-based code."""
    device = generator.device if generator is not None else None
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=device).item())
