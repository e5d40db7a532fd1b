"""Foreign gymnasium envs as pixels + state (gymnasium's own MuJoCo Reacher-v5)."""

from __future__ import annotations

import warnings
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (sets the headless GL backend)
from envs.wrappers import PixelsAndState


@pytest.fixture
def reacher():
    env = PixelsAndState(gym.make("Reacher-v5", render_mode="rgb_array", width=64, height=64))
    yield env
    env.close()


def test_observation_is_pixels_and_flat_state(reacher):
    obs, _ = reacher.reset(seed=0)
    assert obs["pixels"].shape == (64, 64, 3) and obs["pixels"].dtype == np.uint8
    assert obs["state"].shape == (10,) and obs["state"].dtype == np.float32
    assert reacher.observation_space.contains(obs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(reacher, skip_render_check=True)


def test_resizes_frames_rendered_at_another_size():
    env = PixelsAndState(gym.make("Reacher-v5", render_mode="rgb_array", width=96, height=96), image_size=48)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (48, 48, 3)
    env.close()


def test_branching_on_a_foreign_mujoco_env(reacher):
    reacher.reset(seed=1)
    saved = reacher.get_state()
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 2)).astype(np.float32)
    first = [reacher.step(a)[0] for a in actions]
    reacher.set_state(saved)
    second = [reacher.step(a)[0] for a in actions]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a["state"], b["state"])
        np.testing.assert_array_equal(a["pixels"], b["pixels"])
    with pytest.raises(ValueError, match="shape"):
        reacher.set_state(np.zeros(3))


def test_rejects_envs_without_rgb_array_rendering():
    with pytest.raises(ValueError, match="rgb_array"):
        PixelsAndState(gym.make("Reacher-v5"))


class DotEnv(gym.Env):
    """A non-MuJoCo env drawing a dot with numpy: 'any env with rgb_array rendering'."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"]}
    observation_space = gym.spaces.Dict(
        {"pos": gym.spaces.Box(0, 1, (2,), np.float32), "t": gym.spaces.Discrete(100)}
    )
    action_space = gym.spaces.Box(-0.1, 0.1, (2,), np.float32)

    def __init__(self, render_mode="rgb_array"):
        self.render_mode = render_mode

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.t = self.np_random.uniform(0.2, 0.8, 2).astype(np.float32), 0
        return {"pos": self.pos.copy(), "t": self.t}, {}

    def step(self, action):
        self.pos = np.clip(self.pos + action, 0, 1).astype(np.float32)
        self.t += 1
        return {"pos": self.pos.copy(), "t": self.t}, 0.0, False, False, {}

    def render(self):
        img = np.zeros((40, 40, 3), np.uint8)
        r, c = (self.pos * 39).astype(int)
        img[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3] = 255
        return img


def test_any_rgb_array_env_without_branching():
    env = PixelsAndState(DotEnv(), image_size=32)
    obs, _ = env.reset(seed=0)
    assert obs["pixels"].shape == (32, 32, 3) and obs["pixels"].max() > 0
    assert obs["state"].shape == (102,)  # Box(2) + one-hot Discrete(100), flattened
    assert env.observation_space.contains(obs)
    with pytest.raises(NotImplementedError, match="not a MuJoCo env"):
        env.get_state()
