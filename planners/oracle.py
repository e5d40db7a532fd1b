"""The true-simulator oracle: a cost that rolls candidate plans out in the task's own physics.

It is the upper bound a learned world model is measured against: the same planner, but each
candidate is scored by simulating it from the env's current full physics state
(``get_state()``) and reading the task's state-space goal distance. It never reads the success
signal. Shapes: ``S`` candidates, ``L`` horizon (model steps), ``A`` env action dim, ``k`` the
action block (env steps per model step); a plan's model-step action is its ``k`` env actions
concatenated, so the planner searches (S, L, k*A) (legend in :mod:`planners.base`).

Dynamics match ``env.step`` bit for bit (tested): each env action is clipped to [-1, 1], mapped
to controls, and held for the task's ``frame_skip`` MuJoCo steps. Two engines:

* tasks with the standard action map (``GoalTask._apply_action``: affine onto ``ctrlrange``)
  run all candidates in one ``mujoco.rollout`` call on private ``MjData`` (optionally on a
  thread pool); returned states are exact in time, qpos, qvel, act, mocap and ctrl, while their
  warm-start entries are the start's (no distance reads them);
* tasks that override the action map (the U-maze clips velocities before each action, as D4RL
  does) and the peers' benchmarks behind :class:`envs.adapters.base.BenchmarkTask` step the
  env's own simulation in a Python loop through its ``advance`` (one env step, no rendering),
  and restore the start state afterwards (``set_state``: exact).
"""

from __future__ import annotations

from collections.abc import Callable

from envs.base import GoalTask  # first: importing envs selects headless GL before mujoco loads

# isort: split
import gymnasium as gym
import mujoco
import numpy as np
import torch
from mujoco import rollout
from torch import Tensor

from planners.base import CostFn

RolloutFn = Callable[[np.ndarray], np.ndarray]  # actions (S, L, k*A) -> states (S, L, state_size)


def _positions(model: mujoco.MjModel, part: int, whole: int) -> np.ndarray:
    """Indices of the entries of state spec ``part`` inside a vector of spec ``whole``."""
    dst, index = 0, []
    for i in range(int(mujoco.mjtState.mjNSTATE)):
        bit = 1 << i
        n = mujoco.mj_stateSize(model, bit)
        if part & bit:
            index.append(np.arange(dst, dst + n))
        if whole & bit:
            dst += n
    return np.concatenate(index) if index else np.zeros(0, dtype=int)


def _check_actions(actions: np.ndarray, action_block: int, action_dim: int) -> np.ndarray:
    if actions.ndim != 3 or actions.shape[2] != action_block * action_dim:
        raise ValueError(
            f"actions must have shape (S, L, action_block * A) = (S, L, {action_block * action_dim}), "
            f"got {actions.shape}"
        )
    S, L, _ = actions.shape
    return np.clip(actions.reshape(S, L * action_block, action_dim), -1.0, 1.0)  # as env.step does


def _batched_rollout(task: GoalTask, action_block: int, threads: int) -> RolloutFn:
    model, skip, A = task.model, task.frame_skip, task.action_space.shape[0]
    integ, full = int(mujoco.mjtState.mjSTATE_INTEGRATION), int(mujoco.mjtState.mjSTATE_FULLPHYSICS)
    full_at = _positions(model, full, integ)  # FULLPHYSICS entries inside an integration state
    ctrl_at = _positions(model, int(mujoco.mjtState.mjSTATE_CTRL), integ)
    low, high = model.actuator_ctrlrange[:, 0].copy(), model.actuator_ctrlrange[:, 1].copy()
    datas = [mujoco.MjData(model) for _ in range(max(threads, 1))]
    runner = rollout.Rollout(nthread=threads if threads > 1 else 0)
    full0 = np.empty(mujoco.mj_stateSize(model, full))

    def run(actions: np.ndarray) -> np.ndarray:
        a = _check_actions(actions, action_block, A)  # (S, L*k, A)
        S, L = actions.shape[:2]
        ctrl = low + (a + 1.0) * 0.5 * (high - low)  # GoalTask._apply_action, vectorised
        start = task.get_state()
        for d in datas:  # applied forces, equality flags etc. as in the env
            mujoco.mj_setState(model, d, start, integ)
        mujoco.mj_getState(model, datas[0], full0, full)
        warm = datas[0].qacc_warmstart.copy()
        control = np.repeat(ctrl, skip, axis=1)  # (S, L*k*frame_skip, nu)
        states, _ = runner.rollout(model, datas, full0[None], control, initial_warmstart=warm[None])
        per_step = skip * action_block
        out = np.broadcast_to(start, (S, L, start.size)).copy()  # (S, L, state_size)
        out[..., full_at] = states[:, per_step - 1 :: per_step]  # (S, L, nfull)
        out[..., ctrl_at] = ctrl[:, action_block - 1 :: action_block]
        return out

    return run


def _stepwise_rollout(task, action_block: int) -> RolloutFn:
    A = task.action_space.shape[0]
    low, high = task.action_space.low, task.action_space.high

    def run(actions: np.ndarray) -> np.ndarray:
        a = np.clip(_check_actions(actions, action_block, A), low, high)  # (S, L*k, A), as env.step does
        S, L = actions.shape[:2]
        start = task.get_state()
        out = np.empty((S, L, start.size))
        try:
            for s in range(S):
                task.set_state(start)
                for t in range(L * action_block):
                    task.advance(a[s, t])  # the task's own action map (e.g. a velocity clip)
                    if (t + 1) % action_block == 0:
                        out[s, t // action_block] = task.get_state()
        finally:
            task.set_state(start)
        return out

    return run


def make_oracle_rollout(env: gym.Env, action_block: int = 5, *, threads: int = 1) -> RolloutFn:
    """A simulator of candidate plans from the env's current state (read at each call).

    actions (S, L, k*A) in [-1, 1] (numpy) -> physics states (S, L, state_size) reached at the end
    of each model step, in the layout of ``env.unwrapped.get_state()``. The env is left exactly
    as it was. ``threads`` > 1 runs ``mujoco.rollout`` on a thread pool (standard action map only).
    """
    task = env.unwrapped
    if not all(hasattr(task, m) for m in ("get_state", "set_state", "advance", "goal_distance")):
        raise ValueError(f"the oracle needs one of our tasks or benchmark adapters (get_state, set_state, advance, "
                         f"goal_distance), got {type(task).__name__}")  # fmt: skip
    if action_block < 1:
        raise ValueError(f"action_block must be >= 1, got {action_block}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if isinstance(task, GoalTask) and type(task)._apply_action is GoalTask._apply_action:
        return _batched_rollout(task, action_block, threads)
    return _stepwise_rollout(task, action_block)


def make_oracle_cost(
    env: gym.Env, action_block: int = 5, *, running_weight: float = 0.0, threads: int = 1
) -> CostFn:
    """The oracle cost: actions (S, L, k*A) -> cost (S,), lower is better.

    ``cost = d_L + running_weight * mean(d_1, ..., d_L)`` where ``d_l`` is the task's
    ``goal_distance`` (task units) after model step ``l`` of the candidate, simulated from the
    env's current physics state and goal (read at each call). The default (``running_weight=0``)
    scores the end of the plan only; a small running term prefers plans that get there early.
    Costs come back in the actions' dtype and device; the env is left exactly as it was.
    """
    if running_weight < 0:
        raise ValueError(f"running_weight must be >= 0, got {running_weight}")
    task = env.unwrapped
    simulate = make_oracle_rollout(env, action_block, threads=threads)

    def cost(actions: Tensor) -> Tensor:
        states = simulate(actions.detach().cpu().double().numpy())  # (S, L, state_size)
        goal = task.goal
        rows = states if running_weight else states[:, -1:]
        d = np.array([[task.goal_distance(st, goal) for st in row] for row in rows])  # (S, L or 1)
        c = d[:, -1] + running_weight * d.mean(axis=1) if running_weight else d[:, -1]
        return torch.as_tensor(c, dtype=actions.dtype, device=actions.device)

    return cost
