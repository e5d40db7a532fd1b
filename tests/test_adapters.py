"""The peers' benchmarks behind our planning-task API (dm_control, gymnasium-robotics PointMaze):
gymnasium compliance, determinism, exact branching, hidden goals, the benchmark's own success test,
and collection and evaluation end to end on a few steps."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the adapters, sets the headless GL backend)
from envs.registration import BENCHMARKS, make_task, resolve_task
from planners import make_oracle_rollout

REQUIRES = {
    "dmc": "dm_control",
    "pointmaze": "gymnasium_robotics",
    "ogbench": "ogbench",
    "pusht": "gym_pusht",
}
IDS = list(BENCHMARKS)


def make(task_id: str, **kwargs):
    pytest.importorskip(next(m for k, m in REQUIRES.items() if k in task_id))
    return gym.make(task_id, **kwargs).unwrapped


def actions(env, n, seed=3):
    box = env.action_space
    return np.random.default_rng(seed).uniform(box.low, box.high, (n, *box.shape)).astype(np.float32)


def played(env, seed: int, steps: int, action_seed: int) -> np.ndarray:
    """The physics state after ``steps`` random actions from ``reset(seed)``."""
    env.reset(seed=seed)
    for act in actions(env, steps, seed=action_seed):
        env.step(act)
    return env.get_state()


@pytest.mark.parametrize("task_id", IDS)
def test_check_env(task_id, check_env_warnings):
    unexpected = check_env_warnings(make(task_id))
    assert not unexpected, unexpected


@pytest.mark.parametrize("task_id", IDS)
def test_same_seed_same_episode_and_seeds_differ(task_id):
    a, b = make(task_id), make(task_id)
    acts = actions(a, 12)
    runs = []
    for env in (a, b):
        obs, info = env.reset(seed=5)
        frames, states = [obs["pixels"]], [obs["state"]]
        for act in acts:
            obs, *_ = env.step(act)
            frames.append(obs["pixels"])
            states.append(obs["state"])
        runs.append((np.stack(frames), np.stack(states), info["goal"], env.get_state()))
    for x, y in zip(*runs):
        np.testing.assert_array_equal(x, y)
    starts = {tuple(np.round(a.reset(seed=s)[0]["state"], 6)) for s in range(4)}
    assert len(starts) == 4


@pytest.mark.parametrize("task_id", IDS)
def test_restore_is_exact_and_the_oracle_matches_step(task_id):
    env = make(task_id)
    start, plan = played(env, seed=1, steps=5, action_seed=1), actions(env, 6, seed=2)
    truth = []
    for act in plan:
        env.step(act)
        truth.append(env.get_state())
    env.set_state(start)
    np.testing.assert_array_equal(env.get_state(), start)
    again = [env.step(act)[0] and env.get_state() for act in plan]
    np.testing.assert_array_equal(np.stack(again), np.stack(truth))
    env.set_state(start)
    k = 2  # the oracle's states after each block of 2 env steps, from the same start
    sim = make_oracle_rollout(env, action_block=k)(plan.reshape(1, 3, k * plan.shape[1]).astype(np.float64))
    np.testing.assert_array_equal(sim[0], np.stack(truth)[k - 1 :: k])
    np.testing.assert_array_equal(env.get_state(), start)  # the oracle left the env as it was


@pytest.mark.parametrize("task_id", IDS)
def test_dataset_goal_hides_the_target_and_uses_the_benchmarks_success_test(task_id):
    env = make(task_id)
    goal_state, goal_frame = played(env, seed=2, steps=20, action_seed=4), env.observe()["pixels"]
    env.reset(seed=3)
    start = env.get_state()
    obs, info = env.reset(seed=3, options={"state": start, "goal_state": goal_state})
    np.testing.assert_array_equal(env.goal_image(), goal_frame)  # the goal frame as recorded
    assert info["goal"].shape == (len(env.goal_names),)
    assert env.is_success(state=goal_state) and not env.is_success(state=start)
    assert env.goal_distance(state=goal_state) == pytest.approx(0.0, abs=1e-9)
    # the target is drawn for people only, and the proprio does not depend on where it is
    assert not np.array_equal(env.render(), obs["pixels"])
    other = env.reset(seed=3, options={"state": start})[0]
    np.testing.assert_array_equal(other["state"], obs["state"])
    np.testing.assert_array_equal(other["pixels"], obs["pixels"])


@pytest.mark.parametrize("task_id", IDS)
def test_drawn_goal_image_shows_the_goal_reached(task_id):
    from envs.adapters.base import MujocoBenchmark

    env = make(task_id)
    obs, info = env.reset(seed=4)
    assert not info["is_success"]
    assert not np.array_equal(env.goal_image(), obs["pixels"])  # the scene moved to the goal
    if isinstance(env, MujocoBenchmark):  # the goal image's scene passes the benchmark's own test
        import mujoco

        state = np.empty(env.state_size)
        mujoco.mj_getState(env.model, env._scratch, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        assert env.is_success(state=state), env.goal_distance(state=state)


def test_bad_reset_options_change_nothing():
    env = make("wm/pointmaze-umaze-v0")
    env.reset(seed=0)
    before = env.get_state()
    with pytest.raises(ValueError, match="physics state must have shape"):
        env.reset(seed=1, options={"state": np.zeros(3)})
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=1, options={"target": 1})
    np.testing.assert_array_equal(env.get_state(), before)


def test_short_names_and_plain_gymnasium_ids_resolve():
    assert resolve_task("pointmaze") == "wm/pointmaze-umaze-v0"
    assert resolve_task("dmc-reacher-easy") == "wm/dmc-reacher-easy-v0"
    assert resolve_task("Reacher-v5") == "Reacher-v5"  # wrapped as pixels + flattened observation
    with pytest.raises(ValueError, match="nor an id registered with gymnasium"):
        resolve_task("NoSuchEnv-v0")
    env = make_task("Reacher-v5", image_size=32)
    assert env.reset(seed=0)[0]["pixels"].shape == (32, 32, 3)
    env.close()
    with pytest.raises(ValueError, match="--camera"):
        make_task("Reacher-v5", camera="top")


def test_collect_and_evaluate_an_adapter(tmp_path):
    pytest.importorskip("dm_control")
    from envs.collect import CollectConfig, collect
    from worldmodel.data import LeRobotDataset
    from worldmodel.eval.protocol import EvalConfig, evaluate

    out = tmp_path / "reacher"
    collect(CollectConfig(task="dmc-reacher-easy", out=out, episodes=3, steps=40, workers=0, progress=False))
    ds = LeRobotDataset(out)
    assert ds.info["fps"] == 50 and ds.info["robot_type"] == "wm/dmc-reacher-easy-v0"
    assert ds.features["action"]["shape"] == [2] and "observation.images.fixed" in ds.features
    env = make("wm/dmc-reacher-easy-v0")
    phys = ds.columns["observation.environment_state"]
    assert phys.shape == (ds.num_frames, env.state_size)
    res = evaluate(EvalConfig(task="dmc-reacher-easy", data=out, rows=("oracle", "do-nothing"), goals=("dataset",),
                              episodes=2, seeds=(0,), samples=16, elites=4, iterations=2, budget=10, goal_offset=10,
                              workers=0, videos=0, pair_candidates=0, out=tmp_path / "ev", progress=False))  # fmt: skip
    rows = {s["row"]: s for s in res["summary"]}
    assert rows["oracle"]["episodes"] == 2 and rows["oracle"]["evaluations"] == 32
    assert rows["oracle"]["final_distance"] <= rows["do-nothing"]["final_distance"] + 1e-9
    saved = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert saved["config"]["task"] == "dmc-reacher-easy"


def test_collect_a_plain_gymnasium_env_with_its_own_action_dim(tmp_path):
    from envs.collect import CollectConfig, collect
    from worldmodel.data import LeRobotDataset

    out = tmp_path / "hopper"
    collect(CollectConfig(task="Hopper-v5", out=out, episodes=2, steps=5, workers=0, progress=False))
    ds = LeRobotDataset(out)
    assert ds.features["action"]["shape"] == [3] and ds.features["action"]["names"] == ["a0", "a1", "a2"]
    acts = ds.columns["action"]
    assert np.all(np.abs(acts) <= 1.0) and np.abs(acts).max() > 0  # in the env's own box
    assert "observation.environment_state" in ds.features


def test_only_our_pushing_tasks_count_as_pushing():
    from envs.registration import is_pushing

    assert is_pushing("wm/PushT-v0") and is_pushing("wm/PushTState-v0") and is_pushing("wm/PushBox-v0")
    assert (
        not is_pushing("Pusher-v5") and not is_pushing("wm/gym-pusht-v0") and not is_pushing("wm/Reacher-v0")
    )


def test_protocols_by_name():
    from worldmodel.eval.protocol import PROTOCOLS, EvalConfig, evaluate, with_protocol

    cfg = with_protocol(EvalConfig(protocol="lewm", task="pointmass"))
    for k, v in PROTOCOLS["lewm"].items():
        assert getattr(cfg, k) == v
    assert with_protocol(EvalConfig(protocol="lewm", samples=300)).samples == 300  # its own value is fine
    with pytest.raises(ValueError, match="--protocol lewm fixes --samples 100"):
        with_protocol(EvalConfig(protocol="lewm", samples=100))
    with pytest.raises(ValueError, match="plain gymnasium env"):
        evaluate(EvalConfig(task="Hopper-v5", rows=("random",)))
