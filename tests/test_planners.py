"""Planners on known functions: minima, global optima, bounds, determinism, no side effects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import Tensor

from planners import (
    BaselineConfig,
    CEMConfig,
    CMAESConfig,
    GDConfig,
    MPPIConfig,
    plan_cem,
    plan_cmaes,
    plan_do_nothing,
    plan_gd,
    plan_mppi,
    plan_random,
)

PLANNERS = [
    pytest.param(plan_cem, CEMConfig.tiny(), id="cem"),
    pytest.param(plan_cmaes, CMAESConfig.tiny(), id="cmaes"),
    pytest.param(plan_cmaes, dataclasses.replace(CMAESConfig.tiny(), diagonal=True), id="cmaes-diag"),
    pytest.param(plan_mppi, MPPIConfig.tiny(), id="mppi"),
    pytest.param(plan_gd, GDConfig.tiny(), id="gd"),
]
STOCHASTIC = [*PLANNERS, pytest.param(plan_random, BaselineConfig(horizon=3), id="random")]
TARGET = torch.tensor([0.3, -0.5])
LOW, HIGH = -torch.ones(2), torch.ones(2)


def quadratic(target: Tensor):
    def cost(actions: Tensor) -> Tensor:  # (S, L, A) -> (S,)
        return ((actions - target) ** 2).sum(dim=(-2, -1))

    return cost


def rastrigin(actions: Tensor) -> Tensor:
    """(S, L, A) -> (S,): global minimum 0 at TARGET; local minima every 0.5 (cost >= 0.25)."""
    d = actions - TARGET
    return (d**2 + 0.3 * (1 - torch.cos(4 * torch.pi * d))).sum(dim=(-2, -1))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("plan, cfg", PLANNERS)
def test_planner_finds_quadratic_minimum(plan, cfg):
    cost = quadratic(TARGET)
    res = plan(cost, LOW, HIGH, cfg, generator=gen())
    assert res.actions.shape == (cfg.horizon, 2)
    assert res.actions.dtype == LOW.dtype
    torch.testing.assert_close(res.actions, TARGET.expand(cfg.horizon, 2), atol=0.05, rtol=0)
    assert res.cost_history.shape == (cfg.iterations,)
    assert torch.all(res.cost_history[1:] <= res.cost_history[:-1])  # best so far: non-increasing
    assert res.cost == res.cost_history[-1].item()
    assert res.cost == pytest.approx(cost(res.actions[None]).item(), rel=1e-5, abs=1e-6)
    assert res.evaluations == cfg.evaluations


@pytest.mark.parametrize(
    "plan, cfg",
    [
        pytest.param(plan_cem, CEMConfig(horizon=1, samples=64, elites=8, iterations=15), id="cem"),
        pytest.param(plan_cmaes, CMAESConfig(horizon=1, population=24, iterations=30), id="cmaes"),
        pytest.param(plan_mppi, MPPIConfig(horizon=1, samples=64, elites=16, iterations=15), id="mppi"),
        pytest.param(plan_gd, GDConfig(horizon=1, restarts=32, iterations=60, lr=0.05), id="gd-restarts"),
    ],
)
def test_planner_finds_global_optimum_of_non_convex_function(plan, cfg):
    # from the box centre, plain descent falls into a local minimum; restarts/sampling must not
    res = plan(rastrigin, LOW, HIGH, cfg, generator=gen())
    assert res.cost < 0.01, f"stuck in a local minimum: cost {res.cost:.3f}, actions {res.actions.tolist()}"
    torch.testing.assert_close(res.actions, TARGET.expand(1, 2), atol=0.03, rtol=0)


def test_gradient_descent_without_restarts_gets_stuck():
    """The non-convex test above is not trivial: a single descent from the centre fails."""
    res = plan_gd(rastrigin, LOW, HIGH, GDConfig(horizon=1, restarts=1, iterations=60), generator=gen())
    assert res.cost > 0.2


@pytest.mark.parametrize("plan, cfg", PLANNERS)
def test_optimum_outside_bounds_comes_back_clipped(plan, cfg):
    low, high = torch.tensor([-1.0, -0.5]), torch.tensor([0.5, 1.0])
    seen = []

    def cost(actions: Tensor) -> Tensor:
        seen.append(actions.clone())
        return quadratic(torch.tensor([2.0, -2.0]))(actions)

    res = plan(cost, low, high, cfg, generator=gen())
    candidates = torch.cat(seen)
    assert torch.all(candidates >= low) and torch.all(candidates <= high)  # every candidate inside
    assert torch.all(res.actions >= low) and torch.all(res.actions <= high)
    torch.testing.assert_close(
        res.actions, torch.tensor([0.5, -0.5]).expand(cfg.horizon, 2), atol=1e-3, rtol=0
    )


@pytest.mark.parametrize("plan, cfg", STOCHASTIC)
def test_same_seed_bit_identical_other_seed_differs(plan, cfg):
    cost = quadratic(TARGET)
    a = plan(cost, LOW, HIGH, cfg, generator=gen(3))
    np.random.seed(1)  # numpy's global RNG must play no part (cma is given its own generator)
    b = plan(cost, LOW, HIGH, cfg, generator=gen(3))
    c = plan(cost, LOW, HIGH, cfg, generator=gen(4))
    assert torch.equal(a.actions, b.actions)
    assert torch.equal(a.cost_history, b.cost_history)
    assert not torch.equal(a.actions, c.actions)


def test_cmaes_leaves_numpy_global_rng_alone():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    plan_cmaes(quadratic(TARGET), LOW, HIGH, CMAESConfig.tiny(), generator=gen())
    assert np.random.rand() == expected


@pytest.mark.parametrize("plan, cfg", PLANNERS)
def test_cost_fn_sees_batches_and_inputs_stay_unchanged(plan, cfg):
    calls = []
    model = torch.nn.Linear(2, 1)  # a stand-in for a world model inside the cost

    def cost(actions: Tensor) -> Tensor:
        calls.append((tuple(actions.shape), actions.dtype))
        return quadratic(TARGET)(actions) + 0.0 * model(actions).sum(dim=(-2, -1))

    low, high = LOW.clone(), HIGH.clone()
    init = torch.full((cfg.horizon, 2), 0.1)
    res = plan(cost, low, high, cfg, init_mean=init, generator=gen())
    assert len(calls) == cfg.iterations  # one batched call per iteration
    batch = calls[0][0][0]
    assert all(shape == (batch, cfg.horizon, 2) and dtype == torch.float32 for shape, dtype in calls)
    assert batch * len(calls) == res.evaluations
    assert torch.equal(low, LOW) and torch.equal(high, HIGH)
    assert torch.equal(init, torch.full((cfg.horizon, 2), 0.1))
    assert all(p.grad is None for p in model.parameters())  # no gradients leak into a model
    assert res.actions.data_ptr() != init.data_ptr()


@pytest.mark.parametrize("plan, cfg", PLANNERS)
def test_warm_start_at_the_optimum_helps(plan, cfg):
    cfg = dataclasses.replace(cfg, iterations=1)
    cost = quadratic(TARGET)
    cold = plan(cost, LOW, HIGH, cfg, generator=gen())
    warm = plan(cost, LOW, HIGH, cfg, init_mean=TARGET.expand(cfg.horizon, 2), generator=gen())
    assert warm.cost < cold.cost


@pytest.mark.parametrize("plan, cfg", PLANNERS)
def test_nan_costs_are_ignored(plan, cfg):
    def cost(actions: Tensor) -> Tensor:
        c = quadratic(TARGET)(actions)
        return torch.where(actions[:, 0, 0] > 0.6, torch.nan, c)  # NaN for part of the box

    res = plan(cost, LOW, HIGH, cfg, generator=gen())
    assert np.isfinite(res.cost)
    assert torch.isfinite(res.actions).all()


@pytest.mark.parametrize("plan, cfg", PLANNERS)
def test_flat_cost_is_survived(plan, cfg):
    """A cost that cannot tell candidates apart (e.g. a pusher that touches nothing) is no error."""

    def cost(actions: Tensor) -> Tensor:
        return torch.ones(actions.shape[0]) + 0.0 * actions.sum(dim=(-2, -1))

    res = plan(cost, LOW, HIGH, cfg, generator=gen())
    assert res.cost == 1.0
    assert torch.all(res.actions >= LOW) and torch.all(res.actions <= HIGH)


@pytest.mark.parametrize("plan, cfg", PLANNERS)
def test_bad_inputs_raise(plan, cfg):
    cost = quadratic(TARGET)
    with pytest.raises(ValueError, match="low and high"):
        plan(cost, LOW, torch.ones(3), cfg)
    with pytest.raises(ValueError, match="low must be <= high"):
        plan(cost, HIGH, LOW, cfg)
    with pytest.raises(ValueError, match="init_mean"):
        plan(cost, LOW, HIGH, cfg, init_mean=torch.zeros(cfg.horizon + 1, 2))
    with pytest.raises(ValueError, match="shape \\(S,\\)"):
        plan(lambda a: a.sum(-1), LOW, HIGH, cfg)


def test_gradient_descent_needs_a_differentiable_cost():
    def cost(actions: Tensor) -> Tensor:
        return quadratic(TARGET)(actions.detach())

    with pytest.raises(ValueError, match="differentiable"):
        plan_gd(cost, LOW, HIGH, GDConfig.tiny())


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (CEMConfig, {"horizon": 0}, "horizon"),
        (CEMConfig, {"elites": 500}, "elites"),
        (CEMConfig, {"samples": 1}, "samples"),
        (CEMConfig, {"iterations": 0}, "iterations"),
        (CEMConfig, {"init_std": 0.0}, "init_std"),
        (CEMConfig, {"min_std": 2.0}, "min_std"),
        (CEMConfig, {"momentum": 1.0}, "momentum"),
        (CMAESConfig, {"population": 1}, "population"),
        (CMAESConfig, {"sigma0": 0.0}, "sigma0"),
        (CMAESConfig, {"iterations": 0}, "iterations"),
        (MPPIConfig, {"temperature": 0.0}, "temperature"),
        (MPPIConfig, {"elites": 0}, "elites"),
        (MPPIConfig, {"noise_std": -1.0}, "noise_std"),
        (GDConfig, {"lr": 0.0}, "lr"),
        (GDConfig, {"restarts": 0}, "restarts"),
        (BaselineConfig, {"horizon": 0}, "horizon"),
    ],
)
def test_bad_config_raises(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CEMConfig().samples = 10  # type: ignore[misc]


def test_cem_momentum_slows_the_refit():
    cost = quadratic(torch.tensor([0.9, 0.9]))
    cfg = dataclasses.replace(CEMConfig.tiny(), iterations=3)
    fast = plan_cem(cost, LOW, HIGH, cfg, generator=gen())
    slow = plan_cem(cost, LOW, HIGH, dataclasses.replace(cfg, momentum=0.9), generator=gen())
    assert fast.cost < slow.cost


def test_baselines_ignore_the_cost():
    def cost(actions: Tensor) -> Tensor:
        raise AssertionError("a baseline must not evaluate the cost")

    low, high = torch.tensor([-1.0, 0.0]), torch.tensor([0.5, 1.0])
    cfg = BaselineConfig(horizon=4)
    rand = plan_random(cost, low, high, cfg, generator=gen())
    assert rand.actions.shape == (4, 2) and rand.evaluations == 0 and rand.cost_history.numel() == 0
    assert torch.all(rand.actions >= low) and torch.all(rand.actions <= high)
    still = plan_do_nothing(cost, low, high, cfg)
    assert torch.equal(still.actions, torch.tensor([-0.25, 0.5]).expand(4, 2))
