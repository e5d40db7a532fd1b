"""Several cameras in simulation: a task renders them stacked along the channels, ``wm collect``
records one video per camera, the frozen encoder sees each camera alone with its tokens laid side
by side, and ``wm eval`` renders the cameras a world model was trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import envs
from envs.collect import CollectConfig, collect
from worldmodel.cli import main as wm
from worldmodel.data import LeRobotDataset
from worldmodel.encoder import EncoderConfig, VideoEncoder, encode_frames, pool_tokens
from worldmodel.eval.protocol import task_env
from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig

TOP, SIDE = "observation.images.top", "observation.images.side"


@pytest.mark.parametrize("task_id", ["pointmass", "reacher", "umaze", "pusht"])
def test_a_task_stacks_its_cameras_along_the_channels(task_id):
    one = envs.make(task_id, image_size=32).unwrapped
    two = envs.make(task_id, image_size=32, camera=("top", "side")).unwrapped
    a, _ = one.reset(seed=3)
    b, _ = two.reset(seed=3)
    assert two.camera_names == ("top", "side") and one.camera_names == ("top",)
    assert b["pixels"].shape == (32, 32, 6) and two.observation_space["pixels"].shape == (32, 32, 6)
    np.testing.assert_array_equal(b["pixels"][..., :3], a["pixels"])  # the first camera is the top one
    assert not np.array_equal(b["pixels"][..., 3:], a["pixels"])  # the side view is another picture
    assert two.goal_image().shape == (32, 32, 6)
    np.testing.assert_array_equal(two.goal_image()[..., :3], one.goal_image())
    a2, *_ = one.step(np.ones(one.action_space.shape))
    b2, *_ = two.step(np.ones(two.action_space.shape))
    np.testing.assert_array_equal(b2["pixels"][..., :3], a2["pixels"])
    assert two.render().shape == (32, 32, 3)  # people see the first camera, marker drawn
    with pytest.raises(ValueError, match="names a camera twice"):
        envs.make(task_id, camera=("top", "top"))
    with pytest.raises(ValueError, match="unknown camera 'nope'"):
        envs.make(task_id, camera=("top", "nope"))


def test_several_cameras_are_for_our_tasks_only():
    from envs.registration import make_task

    with pytest.raises(ValueError, match="renders one camera"):
        make_task("wm/dmc-reacher-easy-v0", camera=("top", "side"))


def test_collect_records_one_video_per_camera(tmp_path):
    base = dict(
        task="reacher", episodes=2, steps=6, image_size=32, workers=0, codec="h264-lossless", progress=False
    )
    collect(CollectConfig(out=tmp_path / "one", **base))
    collect(CollectConfig(out=tmp_path / "two", cameras=("top", "side"), **base))
    one, two = LeRobotDataset(tmp_path / "one"), LeRobotDataset(tmp_path / "two")
    assert one.video_keys == [TOP] and two.video_keys == [TOP, SIDE]
    for pos in range(2):
        idx = np.arange(7)
        np.testing.assert_array_equal(two.frames(TOP, pos, idx), one.frames(TOP, pos, idx))  # lossless
        # the side video holds what the env's side camera showed at the recorded states
        env = envs.make("reacher", image_size=32, camera="side").unwrapped
        env.reset(seed=0)
        state = two.columns["observation.environment_state"][two.episode_rows(pos)][4]
        env.reset(options={"state": state, "goal_state": state})
        np.testing.assert_array_equal(two.frames(SIDE, pos, [4])[0], env.observe()["pixels"])
    np.testing.assert_array_equal(one.columns["action"], two.columns["action"])
    recorded = json.loads((tmp_path / "two" / "meta" / "collection.json").read_text())["config"]
    assert recorded["cameras"] == ["top", "side"]
    collect(
        CollectConfig(out=tmp_path / "two", cameras=("top", "side"), mode="append", **{**base, "episodes": 1})
    )
    with pytest.raises(ValueError, match=r"cameras: recorded \['top', 'side'\], asked \[\]"):
        collect(CollectConfig(out=tmp_path / "two", mode="append", **base))


def test_collections_recorded_before_several_cameras_still_append(tmp_path):
    base = dict(task="pointmass", episodes=1, steps=4, image_size=32, workers=0, progress=False)
    collect(CollectConfig(out=tmp_path / "ds", **base))
    path = tmp_path / "ds" / "meta" / "collection.json"
    record = json.loads(path.read_text())
    record["config"]["camera"] = record["config"].pop("cameras") or None  # as an older wm collect wrote it
    path.write_text(json.dumps(record))
    collect(CollectConfig(out=tmp_path / "ds", mode="append", **base))
    assert LeRobotDataset(tmp_path / "ds").num_episodes == 2


def test_the_frozen_encoder_encodes_each_camera_alone_and_lays_their_tokens_side_by_side():
    torch.manual_seed(0)
    enc = VideoEncoder(EncoderConfig(image_size=16, patch_size=4, dim=8, depth=1, heads=2, tubelet=1)).eval()
    frames = torch.rand(3, 6, 16, 16)  # three frames of two cameras
    z = encode_frames(enc, frames, 2)
    expected = torch.cat([encode_frames(enc, frames[:, :3], 2), encode_frames(enc, frames[:, 3:], 2)], dim=1)
    torch.testing.assert_close(z, expected)
    assert z.shape == (3, 2 * 4, 8)
    full = encode_frames(enc, frames, 0)  # (3, 2*16, 8): pooling the full grids pools each camera alone
    torch.testing.assert_close(pool_tokens(full, 4, 2), z)
    with pytest.raises(ValueError, match="not a whole number of 3-channel cameras"):
        encode_frames(enc, frames[:, :4], 2)


def test_a_predictor_of_two_cameras_sees_both_grids():
    torch.manual_seed(0)
    cfg = PredictorConfig(
        enc_dim=8, grid=4, pool=2, cameras=2, action_dim=2, state_dim=0, dim=16, depth=1, heads=2
    )
    pred = ActionConditionedPredictor(cfg).eval()
    assert cfg.tokens == 8
    z, actions = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 2)
    out, _ = pred(z, actions)
    assert out.shape == (2, 3, 8, 8)
    angles = pred._frame_angles(0, 1, "cpu")  # the second camera's grid sits below the first one's
    assert not torch.allclose(angles[cfg.extra : cfg.extra + 4], angles[cfg.extra + 4 :])
    with pytest.raises(ValueError, match="expected 8 patch tokens"):
        pred(z[:, :, :4], actions)


def test_eval_renders_the_cameras_the_model_sees():
    assert task_env("pointmass", 32).unwrapped.camera_names == ("top",)
    assert task_env("pointmass", 32, (SIDE,)).unwrapped.camera_names == ("side",)
    assert task_env("pointmass", 32, (TOP, SIDE)).unwrapped.camera_names == ("top", "side")
    with pytest.raises(ValueError, match="which wm/PointMass-v0 cannot render"):
        task_env("pointmass", 32, ("observation.images.wrist",))
    with pytest.raises(ValueError, match="wm eval-offline"):
        task_env("pointmass", 32, ("rgb",))


def test_a_two_camera_world_model_plans_in_simulation(tmp_path, capsys):
    data, enc, ac, out = tmp_path / "pm", tmp_path / "enc", tmp_path / "ac", tmp_path / "eval"
    collect(CollectConfig(task="pointmass", episodes=4, steps=30, image_size=32, workers=0, out=data,
                          cameras=("top", "side"), codec="h264-lossless", progress=False))  # fmt: skip
    loop = ["--loop.steps", "2", "--loop.batch-size", "4", "--loop.threads", "1", "--loop.no-progress"]
    wm(["pretrain", "--data", str(data), "--out", str(enc), "--preset", "tiny", "--image-keys", TOP, SIDE,
        "--held-out", "0.25", *loop])  # fmt: skip
    wm(["train-ac", "--data", str(data), "--encoder", str(enc), "--out", str(ac), "--preset", "tiny", "--pool", "0",
        "--frames", "3", "--rollout-steps", "2", "--readout", "ridge", "--image-keys", TOP, SIDE, *loop])  # fmt: skip
    wm(["eval", "--task", "pointmass", "--model", str(ac), "--rows", "model", "--goals", "dataset", "--episodes", "1",
        "--seeds", "0", "--samples", "8", "--elites", "2", "--iterations", "1", "--budget", "10", "--workers", "0",
        "--videos", "1", "--out", str(out), "--no-progress"])  # fmt: skip
    for trainer in (["pretrain"], ["train-ac", "--encoder", str(enc)], ["train-joint"]):  # a camera it lacks
        with pytest.raises(SystemExit) as e:
            wm(
                [
                    *trainer,
                    "--data",
                    str(data),
                    "--out",
                    str(tmp_path / "bad"),
                    "--image-keys",
                    TOP,
                    "nope",
                    *loop,
                ]
            )
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert (
            len(err) == 1 and f"{data} has no camera ['nope']; its cameras are ['{TOP}', '{SIDE}']" in err[0]
        )
        assert not (tmp_path / "bad").exists()
    from worldmodel.eval.landscape import encode_rows
    from worldmodel.world_model import WorldModel

    model = WorldModel.load(ac)  # the landscape measure encodes the frames of both cameras, too
    assert encode_rows(model, LeRobotDataset(data), np.arange(3)).shape[1] == model.predictor.cfg.tokens
    (row,) = json.loads((out / "results.json").read_text())["summary"]
    assert (row["row"], row["episodes"]) == ("model", 1) and row["evaluations"] == 8
    assert any(p.suffix == ".mp4" for p in out.iterdir())
