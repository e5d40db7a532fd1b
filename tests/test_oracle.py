"""The true-simulator oracle and the MPC loop: exact dynamics, state restored, budget, success."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import torch

import envs
from envs.base import GoalTask
from planners import (
    BaselineConfig,
    CEMConfig,
    make_oracle_cost,
    make_oracle_rollout,
    plan_cem,
    plan_do_nothing,
    plan_random,
    run_mpc,
)
from planners.oracle import _positions

TASK_IDS = list(envs.TASKS)
STATE_SPEC = int(mujoco.mjtState.mjSTATE_INTEGRATION)  # the layout of GoalTask.get_state()
BLOCK = 5


@pytest.fixture
def make_env():
    made = []

    def make(task_id: str, seed: int = 0, warmup: int = 10) -> gym.Env:
        env = gym.make(task_id)
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        for _ in range(warmup):  # a moving start state, contacts likely on the push tasks
            env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


def candidate_actions(env: gym.Env, n: int, horizon: int, seed: int = 1) -> np.ndarray:
    """(n, horizon, BLOCK*A) float32, partly outside [-1, 1] (the env clips; so must the oracle)."""
    A = env.action_space.shape[0]
    return np.random.default_rng(seed).uniform(-1.3, 1.3, (n, horizon, BLOCK * A)).astype(np.float32)


def pressing_actions(env: gym.Env, horizon: int) -> np.ndarray:
    """(1, horizon, BLOCK*A): full throttle into something, so that contacts/limits engage: the
    pusher drives at the block, the reacher's elbow at its nearer limit, a ball at a wall."""
    task = env.unwrapped
    q = task.qpos_of(task.get_state())
    if task.goal_names[0] == "block_x":
        direction = q[2:4] - q[:2]
    elif task.goal_names[0] == "shoulder":
        direction = np.array([0.0, 1.0 if q[1] >= 0 else -1.0])
    else:
        direction = np.ones(2)
    a = direction / np.abs(direction).max()
    return np.tile(a, (1, horizon, BLOCK)).astype(np.float32)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_oracle_dynamics_match_env_step_exactly(task_id, make_env):
    env = make_env(task_id)
    task = env.unwrapped
    start = task.get_state()
    plans = np.concatenate([pressing_actions(env, 5), candidate_actions(env, n=2, horizon=5)])
    predicted = make_oracle_rollout(env, BLOCK)(plans.astype(np.float64))  # (3, 5, state_size)
    assert predicted.shape == (3, 5, start.size)
    # every entry of the physics state, bit for bit; mujoco.rollout does not report the solver's
    # warm start, so the batched engine leaves that one slice at the start's value
    warm = np.zeros(start.size, bool)
    if type(task)._apply_action is GoalTask._apply_action:  # the batched engine
        warm[_positions(task.model, int(mujoco.mjtState.mjSTATE_WARMSTART), STATE_SPEC)] = True
    constraints = 0
    for s, plan in enumerate(plans):
        task.set_state(start)
        for t, step in enumerate(plan):
            for a in step.reshape(BLOCK, -1):
                env.step(a)
                constraints = max(constraints, task.data.nefc)
            reached, pred = task.get_state(), predicted[s, t]
            np.testing.assert_array_equal(pred[~warm], reached[~warm])
            assert task.goal_distance(pred) == task.goal_distance(reached)
    assert constraints > 0, "the test should exercise the constraint solver (contacts, limits)"


def test_oracle_reproduces_the_umaze_velocity_clip(make_env):
    """A dash down the maze's 2-unit corridor passes the D4RL speed limit (5), so the per-action
    velocity clip changes the trajectory; the oracle must follow env.step through it."""
    env = make_env("wm/UMaze-v0", warmup=0)
    task = env.unwrapped
    start = task.get_state()
    start[1:3] = [1.0, 0.7]  # qpos: the corridor's end
    task.set_state(start)
    plan = np.tile(np.float32([0.0, 1.0]), (1, 3, BLOCK))  # full force along +y
    predicted = make_oracle_rollout(env, BLOCK)(plan.astype(np.float64))[0]  # (3, state_size)
    speeds = []
    for t, step in enumerate(plan[0]):
        for a in step.reshape(BLOCK, -1):
            env.step(a)
            speeds.append(np.abs(task.qvel_of(task.get_state())).max())
        np.testing.assert_array_equal(predicted[t], task.get_state())
    assert max(speeds) > 5.0  # the clip was active


@pytest.mark.parametrize("task_id", ["wm/PointMass-v0", "wm/PushT-v0"])
def test_oracle_threads_give_the_same_states(task_id, make_env):
    env = make_env(task_id)
    plans = candidate_actions(env, n=8, horizon=2).astype(np.float64)
    one = make_oracle_rollout(env, BLOCK, threads=1)(plans)
    two = make_oracle_rollout(env, BLOCK, threads=2)(plans)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_oracle_cost_restores_env_state_exactly(task_id, make_env):
    env = make_env(task_id)
    task = env.unwrapped
    state, xpos, goal = task.get_state(), task.data.xpos.copy(), task.goal
    cost = make_oracle_cost(env, BLOCK, running_weight=0.1)
    c = cost(torch.as_tensor(candidate_actions(env, n=4, horizon=2)))
    assert c.shape == (4,) and c.dtype == torch.float32 and torch.isfinite(c).all()
    np.testing.assert_array_equal(task.get_state(), state)
    np.testing.assert_array_equal(task.data.xpos, xpos)
    np.testing.assert_array_equal(task.goal, goal)


@pytest.mark.parametrize("task_id", ["wm/Reacher-v0", "wm/UMaze-v0"])
def test_oracle_cost_is_the_goal_distance_the_plan_reaches(task_id, make_env):
    env = make_env(task_id)
    task = env.unwrapped
    plans = candidate_actions(env, n=2, horizon=3)
    start = task.get_state()
    final = make_oracle_cost(env, BLOCK)(torch.as_tensor(plans)).double()
    running = make_oracle_cost(env, BLOCK, running_weight=0.5)(torch.as_tensor(plans)).double()
    for s, plan in enumerate(plans):
        task.set_state(start)
        d = []
        for step in plan:
            for a in step.reshape(BLOCK, -1):
                env.step(a)
            d.append(task.goal_distance())
        assert final[s].item() == pytest.approx(d[-1], rel=1e-6)
        assert running[s].item() == pytest.approx(d[-1] + 0.5 * np.mean(d), rel=1e-6)


def test_oracle_rejects_bad_inputs(make_env):
    env = make_env("wm/PointMass-v0", warmup=0)
    with pytest.raises(ValueError, match="action_block"):
        make_oracle_cost(env, 0)
    with pytest.raises(ValueError, match="running_weight"):
        make_oracle_cost(env, BLOCK, running_weight=-1.0)
    with pytest.raises(ValueError, match=r"\(S, L, action_block \* A\)"):
        make_oracle_cost(env, BLOCK)(torch.zeros(4, 2, 3))
    with pytest.raises(ValueError, match="benchmark adapters"):
        make_oracle_cost(gym.make("CartPole-v1"), BLOCK)


@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_cem_reaches_a_random_point_mass_goal(seed, make_env):
    env = make_env("wm/PointMass-v0", seed=seed, warmup=0)
    task = env.unwrapped
    start_distance = task.goal_distance()
    cfg = CEMConfig(samples=64, elites=8, iterations=6)
    rec = run_mpc(
        env,
        lambda e: make_oracle_cost(e, BLOCK),
        plan_cem,
        cfg,
        generator=torch.Generator().manual_seed(seed),
    )
    assert rec.env_steps == 50 and rec.actions.shape == (50, 2)
    assert rec.success, f"final distance {rec.final_distance:.3f} (from {start_distance:.3f})"
    assert rec.final_distance == task.goal_distance()
    assert len(rec.plan_seconds) == len(rec.evaluations) == len(rec.cost_histories) == 2
    assert rec.evaluations == [cfg.evaluations] * 2
    assert all(h.shape == (cfg.iterations,) for h in rec.cost_histories)


@pytest.mark.parametrize("budget, execute", [(50, None), (47, 2), (3, 1)])
def test_mpc_spends_exactly_the_budget(budget, execute, make_env):
    env = make_env("wm/Reacher-v0", warmup=0)
    t0 = env.unwrapped.data.time
    cfg = BaselineConfig(horizon=5)
    rec = run_mpc(
        env, lambda e: make_oracle_cost(e, BLOCK), plan_random, cfg, budget_steps=budget, execute=execute
    )
    steps_per_plan = BLOCK * (execute or 5)
    assert rec.env_steps == budget and rec.actions.shape == (budget, 2)
    assert len(rec.plan_seconds) == -(-budget // steps_per_plan)
    assert env.unwrapped.data.time == pytest.approx(t0 + budget * env.unwrapped.model.opt.timestep * 5)


def test_mpc_warm_starts_from_the_shifted_plan(make_env):
    env = make_env("wm/PointMass-v0", warmup=0)
    inits, plans = [], []

    def recording(cost_fn, low, high, cfg, *, init_mean=None, generator=None):
        inits.append(None if init_mean is None else init_mean.clone())
        res = plan_random(cost_fn, low, high, cfg, init_mean=init_mean, generator=generator)
        plans.append(res.actions)
        return res

    cfg = BaselineConfig(horizon=4)
    run_mpc(env, lambda e: make_oracle_cost(e, BLOCK), recording, cfg, budget_steps=30, execute=1)
    assert inits[0] is None and len(inits) == 6
    for prev, init in zip(plans[:-1], inits[1:]):
        assert torch.equal(init, torch.cat([prev[1:], torch.zeros(1, prev.shape[1])]))  # shift, pad centre


def test_mpc_shrink_ends_the_last_plans_at_the_budget(make_env):
    env = make_env("wm/PointMass-v0", warmup=0)
    inits, plans = [], []

    def recording(cost_fn, low, high, cfg, *, init_mean=None, generator=None):
        assert cfg.horizon == (4 if init_mean is None else init_mean.shape[0])
        inits.append(None if init_mean is None else init_mean.clone())
        res = plan_random(cost_fn, low, high, cfg, init_mean=init_mean, generator=generator)
        plans.append(res.actions)
        return res

    cfg = BaselineConfig(horizon=4)
    cost = lambda e: make_oracle_cost(e, BLOCK)  # noqa: E731
    rec = run_mpc(env, cost, recording, cfg, budget_steps=28, execute=1, shrink=True)
    # model steps left at each re-plan: 6, 5, 4, 3, 2, 1 (the last of 3 env steps)
    assert [p.shape[0] for p in plans] == [4, 4, 4, 3, 2, 1]
    assert rec.env_steps == 28 and rec.plan_steps == [5, 5, 5, 5, 5, 3] and cfg.horizon == 4
    for prev, init in zip(plans[:-1], inits[1:]):
        h = init.shape[0]
        assert torch.equal(init, torch.cat([prev[1:], torch.zeros(1, prev.shape[1])])[:h])
    whole = run_mpc(
        env, cost, recording, cfg, budget_steps=40, shrink=True
    )  # whole plans that fit: unchanged
    assert len(whole.plan_seconds) == 2 and plans[-1].shape[0] == 4


def test_with_horizon_shortens_a_policy_planners_cem_refinement_too():
    from planners.cem import CEMConfig
    from planners.mpc import with_horizon
    from planners.policy import PolicyPlanConfig

    cfg = PolicyPlanConfig(horizon=5, refine=CEMConfig(horizon=5, samples=20, elites=4))
    short = with_horizon(cfg, 2)  # replace(cfg, horizon=2) alone would fail its horizon check
    assert short.horizon == 2 and short.refine == CEMConfig(horizon=2, samples=20, elites=4)
    assert with_horizon(PolicyPlanConfig(horizon=5), 3) == PolicyPlanConfig(horizon=3)


@pytest.mark.parametrize("task_id", ["wm/PointMass-v0", "wm/UMaze-v0"])
def test_success_is_read_only_after_the_episode(task_id, make_env, monkeypatch):
    env = make_env(task_id, warmup=0)
    task = env.unwrapped
    real = task.is_success
    calls = []
    monkeypatch.setattr(task, "is_success", lambda *a, **k: calls.append(1) or real(*a, **k))
    cost = make_oracle_cost(env, BLOCK)

    def watched_cost(actions):
        before = len(calls)
        out = cost(actions)
        assert len(calls) == before, "the oracle cost read the success signal"
        return out

    rec = run_mpc(env, lambda e: watched_cost, plan_cem, CEMConfig.tiny(), budget_steps=10)
    assert rec.success == real()  # (env.step's info dict calls is_success too; that is the env's)


def test_do_nothing_keeps_a_resting_point_mass_in_place(make_env):
    env = make_env("wm/PointMass-v0", warmup=0)
    before = env.unwrapped.goal_distance()
    rec = run_mpc(env, lambda e: make_oracle_cost(e, BLOCK), plan_do_nothing, BaselineConfig())
    assert rec.final_distance == pytest.approx(before, abs=1e-9)
    assert not rec.success or before < 0.1
    assert np.all(rec.actions == 0)


def test_mpc_rejects_bad_arguments(make_env):
    env = make_env("wm/PointMass-v0", warmup=0)
    with pytest.raises(ValueError, match="execute"):
        run_mpc(env, lambda e: make_oracle_cost(e, BLOCK), plan_random, BaselineConfig(horizon=3), execute=4)
    with pytest.raises(ValueError, match="budget_steps"):
        run_mpc(env, lambda e: make_oracle_cost(e, BLOCK), plan_random, BaselineConfig(), budget_steps=0)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_oracle_reaches_easy_goals_in_every_task(task_id):
    """Easy episodes: the goal is where 15 steps of an exploration policy took the task from the
    start (feasible by construction, like dataset goals); for pushing, the pusher starts at a side
    of the block and pushes straight through it. The oracle must reach the goal in 50 steps."""
    import gymnasium as gym

    from envs.policies import PushScriptedPolicy, SmoothRandomPolicy
    from planners import CEMConfig, make_oracle_cost, plan_cem, run_mpc

    env = gym.make(task_id).unwrapped
    wins = 0
    for seed in range(2):
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        policy = PushScriptedPolicy(env, rng) if "Push" in task_id else SmoothRandomPolicy(2, rng)
        if "Push" in task_id:
            policy.start_pushing(15)
        start = env.get_state()
        for _ in range(15):
            env.step(policy())
        goal = env.get_state()
        assert env.goal_distance(start, env.goal_from_state(goal)) > 0.05  # the goal is not the start
        env.reset(seed=seed, options={"state": start, "goal_state": goal})
        cost = make_oracle_cost(env, action_block=5)
        rec = run_mpc(env, lambda e, c=cost: c, plan_cem, CEMConfig(samples=100, elites=10, iterations=10),
                      budget_steps=50, action_block=5, generator=torch.Generator().manual_seed(seed))  # fmt: skip
        wins += rec.success
    assert wins == 2, f"{task_id}: the oracle reached {wins} of 2 easy goals"
