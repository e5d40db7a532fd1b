"""The task suite: gymnasium compliance, determinism, state branching, goals, success tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.base import wrap_angle

TASK_IDS = list(envs.TASKS)


def make(task_id: str, **kwargs) -> gym.Env:
    return gym.make(task_id, **kwargs).unwrapped


def rollout(env, actions, seed=0, options=None):
    obs, _ = env.reset(seed=seed, options=options)
    frames, states = [obs["pixels"]], [obs["state"]]
    for a in actions:
        obs, *_ = env.step(a)
        frames.append(obs["pixels"])
        states.append(obs["state"])
    return np.stack(frames), np.stack(states)


def random_actions(env, n, seed=123):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *env.action_space.shape)).astype(np.float32)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_check_env(task_id, check_env_warnings):
    unexpected = check_env_warnings(make(task_id))
    assert not unexpected, unexpected


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_same_seed_same_rollout(task_id):
    a, b = make(task_id), make(task_id)
    actions = random_actions(a, 15)
    fa, sa = rollout(a, actions, seed=7)
    fb, sb = rollout(b, actions, seed=7)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(sa, sb)
    np.testing.assert_array_equal(a.goal, b.goal)
    np.testing.assert_array_equal(a.get_state(), b.get_state())


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_initial_state_and_goal_randomised_across_seeds(task_id):
    env = make(task_id)
    starts, goals = set(), set()
    for seed in range(5):
        _, info = env.reset(seed=seed)
        starts.add(tuple(np.round(env.get_state(), 6)))
        goals.add(tuple(np.round(info["goal"], 6)))
    assert len(starts) == 5 and len(goals) == 5


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_frames_do_not_share_memory(task_id):
    env = make(task_id)
    obs0, _ = env.reset(seed=0)
    obs1, *_ = env.step(np.ones(env.action_space.shape, np.float32))
    assert not np.shares_memory(obs0["pixels"], obs1["pixels"])
    assert not np.shares_memory(env.goal_image(), env.goal_image())
    assert obs0["pixels"].shape == (64, 64, 3) and obs0["pixels"].dtype == np.uint8
    assert obs0["state"].dtype == np.float32


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_state_round_trip_branches_exactly(task_id):
    env = make(task_id)
    env.reset(seed=3)
    for a in random_actions(env, 5, seed=1):
        env.step(a)
    saved = env.get_state()
    np.testing.assert_array_equal(env.qpos_of(saved), env.data.qpos)
    np.testing.assert_array_equal(env.qvel_of(saved), env.data.qvel)
    branch = random_actions(env, 10, seed=2)
    first = [env.step(a)[0] for a in branch]
    after_first = env.get_state()
    env.set_state(saved)
    np.testing.assert_array_equal(env.get_state(), saved)
    second = [env.step(a)[0] for a in branch]
    np.testing.assert_array_equal(env.get_state(), after_first)
    for o1, o2 in zip(first, second):
        np.testing.assert_array_equal(o1["pixels"], o2["pixels"])
        np.testing.assert_array_equal(o1["state"], o2["state"])


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reset_from_state_option(task_id):
    env = make(task_id)
    env.reset(seed=0)
    for a in random_actions(env, 4):
        env.step(a)
    state = env.get_state()
    pixels = env.step(np.zeros(env.action_space.shape, np.float32))[0]["pixels"]
    env.reset(seed=1, options={"state": state})
    # exact, the goal marker (mocap, part of the physics state) aside
    np.testing.assert_array_equal(env.data.qpos, env.qpos_of(state))
    np.testing.assert_array_equal(env.data.qvel, env.qvel_of(state))
    assert np.array_equal(env.step(np.zeros(env.action_space.shape, np.float32))[0]["pixels"], pixels)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_goal_image_is_the_goal_state_rendered_without_marker(task_id):
    env = make(task_id)
    env.reset(seed=4)
    for a in random_actions(env, 8, seed=5):
        obs, *_ = env.step(a)
    goal_state = env.get_state()
    # Dataset goal mode: the goal is a recorded state; its image is that frame, marker hidden.
    _, info = env.reset(seed=9, options={"goal_state": goal_state})
    np.testing.assert_array_equal(env.goal_image(), obs["pixels"])
    np.testing.assert_allclose(info["goal"], env.goal_from_state(goal_state))
    assert env.is_success(goal_state)
    # The same goal given as a vector renders the same configuration.
    env.reset(seed=9, options={"goal": env.goal_from_state(goal_state)})
    assert env.is_success(goal_state)
    # The human-facing render shows the marker; observations never do.
    obs, _ = env.reset(seed=2)
    assert not np.array_equal(env.render(), obs["pixels"])
    env.set_state(env.get_state())  # no-op restore keeps the observation identical
    np.testing.assert_array_equal(env._get_obs()["pixels"], obs["pixels"])


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_goal_sampler_gives_valid_goals(task_id):
    env = make(task_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        env._check_goal(env.sample_goal(rng))  # raises if out of bounds or unreachable


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_bad_options_raise_and_change_nothing(task_id):
    env = make(task_id)
    env.reset(seed=0)
    env.step(np.ones(env.action_space.shape, np.float32))
    before, goal_before = env.get_state(), env.goal
    low, high = env.goal_bounds()
    g = len(env.goal_names)
    bad = [
        ({"goal": np.zeros(g + 1)}, "shape"),
        ({"goal": high + 1.0}, "out of bounds"),
        ({"goal": np.full(g, np.nan)}, "out of bounds"),
        ({"state": np.zeros(3)}, "shape"),
        ({"goal_state": np.full(env.state_size, np.nan)}, "NaN"),
        ({"target": low}, "unknown reset option"),
        ({"goal": low, "goal_state": before}, "not both"),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            env.reset(seed=1, options=options)
        np.testing.assert_array_equal(env.get_state(), before)
        np.testing.assert_array_equal(env.goal, goal_before)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.full(env.action_space.shape, np.nan))
    np.testing.assert_array_equal(env.get_state(), before)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_image_size_and_camera_are_configurable(task_id):
    env = make(task_id, image_size=(48, 80))
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (48, 80, 3) and env.goal_image().shape == (48, 80, 3)
    assert env.observation_space["pixels"].shape == (48, 80, 3)
    with pytest.raises(ValueError, match="unknown camera"):
        make(task_id, camera="nope")
    free = make(task_id, camera=-1, image_size=32)  # MuJoCo's free camera
    assert free.reset(seed=0)[0]["pixels"].shape == (32, 32, 3)


def test_short_names_and_unknown_task():
    assert envs.registration.resolve_task("reacher") == "wm/Reacher-v0"
    with pytest.raises(ValueError, match="unknown task"):
        envs.make("cartpole")


# -- task-specific success tests ------------------------------------------------------------


def test_point_mass_success_radius():
    env = make("wm/PointMass-v0")
    env.reset(seed=0)
    state = env.get_state()
    xy = env.qpos_of(state)[:2]
    assert env.is_success(state, xy + np.array([0.099, 0.0]))
    assert not env.is_success(state, xy + np.array([0.101, 0.0]))


def test_reacher_success_is_per_joint_and_wrapped():
    env = make("wm/Reacher-v0")
    env.reset(seed=0, options={"goal": [np.pi - 0.01, 0.5]})
    state = env.get_state()
    q = env.qpos_of(state)
    q[:2] = [-np.pi + 0.02, 0.5]  # 0.03 rad from the goal across the wrap
    assert env.is_success(state)
    q[:2] = [np.pi - 0.01, 0.5 + 0.06]  # shoulder exact, elbow off by 0.06
    assert not env.is_success(state)
    assert env.goal_distance(state) == pytest.approx(0.06)
    q[:2] = [np.pi - 0.01 + 0.049, 0.5 - 0.049]  # both within 0.05
    assert env.is_success(state)
    assert abs(wrap_angle(np.pi + 0.1) - (-np.pi + 0.1)) < 1e-12


def test_push_success_tolerances_and_box_symmetry():
    env = make("wm/PushBox-v0")
    goal = np.array([0.2, -0.1, 0.3, -0.8, -0.8])
    env.reset(seed=0, options={"goal": goal})
    state = env.get_state()
    q = env.qpos_of(state)
    q[2:5] = [0.2 + 0.07, -0.1, 0.3 + np.pi / 2 + 0.3]  # a quarter turn is the same square
    assert env.is_success(state)
    q[4] = 0.3 + 0.4  # 0.4 rad > 20 degrees
    assert not env.is_success(state)
    t = make("wm/PushT-v0")
    t.reset(seed=0, options={"goal": goal})
    state = t.get_state()
    t.qpos_of(state)[2:5] = [0.2, -0.1, 0.3 + np.pi / 2]  # the T has no such symmetry
    assert not t.is_success(state)


def test_push_rejects_pusher_inside_block_goal():
    env = make("wm/PushT-v0")
    with pytest.raises(ValueError, match="overlaps"):
        env.reset(seed=0, options={"goal": [0.0, 0.0, 0.0, 0.0, 0.12]})


def test_pusher_moves_block():
    env = make("wm/PushBox-v0")
    # pusher left of the box, push right: the box must move right and stop after contact ends
    goal = np.array([0.5, 0.0, 0.0, 0.8, 0.8])
    env.reset(seed=0, options={"goal": goal})
    state = env.get_state()
    env.qpos_of(state)[:] = [-0.5, 0.0, 0.0, 0.0, 0.0]
    env.set_state(state)
    for _ in range(20):
        env.step(np.array([1.0, 0.0], np.float32))
    x_block = env.data.qpos[2]
    assert x_block > 0.3
    for _ in range(20):
        env.step(np.array([-1.0, 0.0], np.float32))
    assert abs(env.data.qpos[2] - x_block) < 0.05  # quasi-static: it stops when not pushed


def test_push_block_state_reports_the_block_pose_and_matches_pusht():
    """wm/PushTState-v0's state is PushT's proprio plus the block's pose from the physics, with the
    same episodes (pixels, goals) under the same seed, so datasets of the two share their frames."""
    plain, with_block = make("wm/PushT-v0"), make("wm/PushTState-v0")
    acts = random_actions(plain, 30)
    frames_a, states_a = rollout(plain, acts, seed=5)
    frames_b, states_b = rollout(with_block, acts, seed=5)
    np.testing.assert_array_equal(frames_a, frames_b)
    np.testing.assert_array_equal(states_a, states_b[:, :4])
    q = with_block.data.qpos
    np.testing.assert_allclose(states_b[-1, 4:], [q[2], q[3], wrap_angle(q[4])], atol=1e-6)
    state = with_block.get_state()
    with_block.qpos_of(state)[:] = [-0.8, -0.8, 0.3, -0.2, 1.5 * np.pi]  # yaw past pi: reported wrapped
    with_block.set_state(state)
    obs, *_ = with_block.step(np.zeros(2, np.float32))
    np.testing.assert_allclose(obs["state"][4:], [0.3, -0.2, -0.5 * np.pi], atol=1e-3)
    assert envs.registration.task_angle_dims("wm/PushTState-v0") == (6,)
    assert with_block.state_names[4:] == ("block_x", "block_y", "block_angle")


def test_umaze_d4rl_dynamics():
    env = make("wm/UMaze-v0")
    assert env.model.opt.timestep == pytest.approx(0.01) and env.frame_skip == 5
    assert env.model.actuator_gear[:, 0].tolist() == [100.0, 100.0]
    # inside a wall is rejected; the D4RL goal cell (1, 1) is free
    with pytest.raises(ValueError, match="wall"):
        env.reset(seed=0, options={"goal": [2.0, 1.5]})
    env.reset(seed=0, options={"goal": [1.0, 1.0]})
    # velocity is clipped to 5 before each action (D4RL's clip_velocity)
    state = env.get_state()
    env.qpos_of(state)[:2] = [3.0, 2.0]
    env.qvel_of(state)[:2] = [0.0, 20.0]
    env.set_state(state)
    env.step(np.zeros(2, np.float32))
    assert 4.5 < env.data.qvel[1] <= 5.0
    # walls stop the ball: pushing into the middle wall from (1, 2) never crosses x = 1.5
    state = env.get_state()
    env.qpos_of(state)[:2] = [1.0, 2.0]
    env.qvel_of(state)[:2] = 0.0
    env.set_state(state)
    for _ in range(30):
        env.step(np.array([1.0, 0.0], np.float32))
        assert env.data.qpos[0] < 1.5 - 0.1 + 0.01


def test_reacher_torques_move_the_arm():
    env = make("wm/Reacher-v0")
    env.reset(seed=0, options={"goal": [0.0, 0.0]})
    q0 = env.data.qpos.copy()
    for _ in range(10):
        env.step(np.array([1.0, -1.0], np.float32))
    dq = env.data.qpos - q0
    assert dq[0] > 0.2 and dq[1] < -0.2
