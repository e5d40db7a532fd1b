"""Exploration policy statistics and video round trips."""

from __future__ import annotations

import numpy as np
import pytest

from envs.policies import SmoothRandomConfig, SmoothRandomPolicy
from worldmodel.data.video import read_video, write_video


def test_smooth_random_is_bounded_correlated_and_seeded():
    p = SmoothRandomPolicy(2, np.random.default_rng(0), SmoothRandomConfig(repeat=1, correlation=0.9))
    a = np.stack([p() for _ in range(4000)])
    assert a.min() >= -1 and a.max() <= 1 and a.dtype == np.float32
    lag1 = np.corrcoef(a[:-1, 0], a[1:, 0])[0, 1]
    assert lag1 > 0.8  # i.i.d. actions would give about 0
    assert abs(a.mean()) < 0.15
    q = SmoothRandomPolicy(2, np.random.default_rng(0), SmoothRandomConfig(repeat=1, correlation=0.9))
    np.testing.assert_array_equal(a[:50], np.stack([q() for _ in range(50)]))


def test_smooth_random_repeat_holds_actions():
    p = SmoothRandomPolicy(3, np.random.default_rng(1), SmoothRandomConfig(repeat=3))
    a = np.stack([p() for _ in range(9)])
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_array_equal(a[3], a[5])
    assert not np.array_equal(a[2], a[3])


@pytest.mark.parametrize("bad", [dict(repeat=0), dict(correlation=1.0), dict(scale=0.0)])
def test_smooth_random_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        SmoothRandomConfig(**bad)


def smooth_frames(n=12, size=64):
    """Frames with smooth content (video codecs are made for this, not for noise)."""
    yy, xx = np.mgrid[0:size, 0:size]
    frames = []
    for t in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[..., 0] = 128 + 100 * np.sin((xx + 3 * t) / 9)
        img[..., 1] = 128 + 100 * np.cos((yy - 2 * t) / 11)
        img[..., 2] = 90
        frames.append(img)
    return np.stack(frames)


def test_lossless_video_round_trip_is_exact(tmp_path):
    frames = smooth_frames()
    assert write_video(tmp_path / "a.mp4", frames, fps=20, codec="h264-lossless") == len(frames)
    np.testing.assert_array_equal(read_video(tmp_path / "a.mp4"), frames)


def test_h264_round_trip_within_codec_tolerance(tmp_path):
    frames = smooth_frames()
    write_video(tmp_path / "a.mp4", frames, fps=20)
    back = read_video(tmp_path / "a.mp4")
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 3.0
    assert not (tmp_path / "a.mp4.tmp").exists()


def test_video_rejects_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 64, 64, 3), np.float32), fps=20)
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "b.mp4", np.zeros((2, 63, 64, 3), np.uint8), fps=20)
    with pytest.raises(ValueError, match="codec"):
        write_video(tmp_path / "c.mp4", np.zeros((2, 64, 64, 3), np.uint8), fps=20, codec="mpeg9")
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "b.mp4").exists()


@pytest.mark.parametrize("task", ["wm/PushT-v0", "wm/PushBox-v0"])
def test_push_demonstrator_reaches_its_targets(task):
    """Without noise or free motion the demonstrator pushes the block to most targets it draws
    (task's own success test), with bounded actions, the same under the same seeds."""
    import gymnasium as gym

    import envs  # noqa: F401
    from envs.policies import PushDemoConfig, PushDemoPolicy

    env = gym.make(task).unwrapped

    targets = reached = 0
    for seed in range(4):
        env.reset(seed=seed)
        policy = PushDemoPolicy(
            env, np.random.default_rng(seed), PushDemoConfig(noise=(0.0, 0.0), free_share=0.0)
        )
        actions = []
        for _ in range(150):
            actions.append(policy())
            env.step(actions[-1])
        assert np.abs(np.stack(actions)).max() <= 1.0
        targets, reached = targets + policy.targets, reached + policy.reached
    assert reached >= 0.5 * targets and targets >= 4  # measured: about 3 in 4 (T), 9 in 10 (box)


def test_push_demonstrator_is_seeded():
    import gymnasium as gym

    import envs  # noqa: F401
    from envs.policies import PushDemoPolicy

    env = gym.make("wm/PushT-v0").unwrapped
    runs = []
    for _ in range(2):
        env.reset(seed=7)
        policy = PushDemoPolicy(env, np.random.default_rng(7))
        poses = []
        for _ in range(40):
            env.step(policy())
            poses.append(env.data.qpos.copy())
        runs.append(np.stack(poses))
    np.testing.assert_array_equal(runs[0], runs[1])
