"""A robot's own recording, no simulator: a LeRobot v2.1 dataset written here with pyarrow and PyAV
alone (not our writer), two cameras (a scene and a wrist view), 7-D actions and states with
LeRobot's ``{"motors": [...]}`` names, episodes of unequal length, AV1 video, no
``observation.environment_state``. ``wm info`` describes it, ``wm train-joint`` and ``wm pretrain``
+ ``wm train-ac`` train on one or both cameras and ``wm eval-offline`` judges the model, one
command each."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from worldmodel.cli import main as wm

CAM, WRIST = "observation.images.front", "observation.images.wrist"
JOINTS = [f"joint_{i}" for i in range(6)] + ["gripper"]
FPS, SIZE, LENGTHS = 10, 32, (23, 30, 17, 26)


def robot_episode(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """An arm whose first two joints move a bright blob across the frame; the state integrates
    the actions (so the frames and the state follow the actions, as on a robot)."""
    actions = np.clip(np.cumsum(rng.normal(0, 0.3, (n, 7)), axis=0), -1, 1).astype(np.float32)
    state = np.cumsum(0.1 * actions, axis=0).astype(np.float32) + rng.uniform(-0.5, 0.5, 7).astype(np.float32)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    frames = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for t in range(n):
        cy, cx = SIZE / 2 + 6 * np.tanh(state[t, :2])
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 10.0)
        frames[t, ..., 0] = 40 + 200 * blob
        frames[t, ..., 1] = 60 + 3 * yy
        frames[t, ..., 2] = 90 + 100 * (state[t, 6] > 0)
    wrist = np.empty_like(frames)  # the gripper camera: the gripper opening as a bar, the arm's tilt as shade
    for t in range(n):
        wrist[t] = 30 + 20 * (1 + np.tanh(state[t, 2]))
        wrist[t, :, : int(SIZE / 2 * (1 + np.tanh(state[t, 6]))), 1] = 220
    return {"frames": frames, "wrist": wrist, "observation.state": state, "action": actions}


def write_av1(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libsvtav1", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def write_robot_dataset(root: Path) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    episodes = [robot_episode(rng, n) for n in LENGTHS]
    feature = lambda dtype, names: {"dtype": dtype, "shape": [len(names)], "names": {"motors": names}}  # noqa: E731
    scalar = lambda dtype: {"dtype": dtype, "shape": [1], "names": None}  # noqa: E731
    info = {
        "codebase_version": "v2.1", "robot_type": "my_arm", "fps": FPS, "chunks_size": 1000,
        "total_episodes": len(episodes), "total_frames": sum(LENGTHS), "total_tasks": 1,
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {
            **{key: {"dtype": "video", "shape": [SIZE, SIZE, 3], "names": ["height", "width", "channels"],
                     "info": {"video.fps": FPS, "video.height": SIZE, "video.width": SIZE, "video.codec": "av1",
                              "video.pix_fmt": "yuv420p"}} for key in (CAM, WRIST)},
            "observation.state": feature("float32", JOINTS),
            "action": feature("float32", JOINTS),
            "timestamp": scalar("float32"), "frame_index": scalar("int64"), "episode_index": scalar("int64"),
            "index": scalar("int64"), "task_index": scalar("int64"),
        },
    }  # fmt: skip
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info))
    lines, row = [], 0
    for e, ep in enumerate(episodes):
        n = len(ep["action"])
        table = pa.table({
            "observation.state": pa.array(ep["observation.state"].tolist(), pa.list_(pa.float32())),
            "action": pa.array(ep["action"].tolist(), pa.list_(pa.float32())),
            "timestamp": pa.array(np.arange(n) / FPS, pa.float32()), "frame_index": np.arange(n),
            "episode_index": np.full(n, e), "index": np.arange(row, row + n), "task_index": np.zeros(n, np.int64),
        })  # fmt: skip
        path = root / f"data/chunk-000/episode_{e:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        write_av1(root / f"videos/chunk-000/{CAM}/episode_{e:06d}.mp4", ep["frames"])
        write_av1(root / f"videos/chunk-000/{WRIST}/episode_{e:06d}.mp4", ep["wrist"])
        lines.append(json.dumps({"episode_index": e, "tasks": ["reach"], "length": n}))
        row += n
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "reach"}) + "\n")
    return episodes


def test_a_robot_recording_is_described_trained_and_judged_offline(tmp_path, capsys):
    data, run, out = tmp_path / "robot", tmp_path / "joint", tmp_path / "offline"
    episodes = write_robot_dataset(data)

    wm(["info", str(data), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert (summary["version"], summary["episodes"], summary["frames"]) == ("v2.1", 4, sum(LENGTHS))
    assert summary["episode_length"] == {"min": 17, "mean": sum(LENGTHS) / 4, "max": 30}
    assert list(summary["cameras"]) == [CAM, WRIST] and summary["cameras"][WRIST]["codec"] == "av1"
    assert summary["features"]["action"]["names"] == JOINTS and summary["features"]["action"]["shape"] == [7]
    assert summary["defaults"]["dataset_goals"] is False  # no simulator state recorded

    wm(["train-joint", "--data", str(data), "--out", str(run), "--preset", "tiny", "--predictor", "tiny",
        "--embed-dim", "16", "--frames", "4", "--frameskip", "2", "--held-out", "0.25", "--readout", "ridge",
        "--loop.steps", "6", "--loop.batch-size", "4", "--loop.threads", "1", "--loop.no-progress",
        "--image-keys", WRIST, CAM])  # fmt: skip
    spec = json.loads((run / "world_model.json").read_text())
    assert spec["predictor"]["action_dim"] == 14 and spec["state_dim"] == 7  # 2 x 7-D actions per model step
    assert spec["state_names"] == JOINTS and spec["action_names"] == JOINTS  # carried into the model
    assert spec["image_keys"] == [WRIST, CAM]  # both cameras, in the order asked
    assert json.loads((run / "encoder.json").read_text())["cameras"] == 2

    wm(["eval-offline", "--model", str(run), "--horizon", "2", "--anchors", "8", "--plans", "2", "--samples", "8",
        "--elites", "2", "--iterations", "2", "--videos", "1", "--threads", "1", "--out", str(out), "--no-progress"])  # fmt: skip
    res = json.loads((out / "results.json").read_text())
    assert res["episodes"] == "held-out" and res["anchors"] == 8
    latent = res["open_loop"]["latent error (mean squared)"]
    assert set(latent) == {"model", "copy-last", "constant-velocity"} and all(
        len(v) == 2 for v in latent.values()
    )
    assert (
        res["planning"]["first_block_error"]["plan"] >= 0
        and "start state" in res["planning"]["final_state_error"]
    )
    assert (out / "open_loop_0.mp4").exists() and (out / "horizons.png").exists()
    assert len(episodes) == 4

    capsys.readouterr()
    err = one_line_error(capsys, ["eval", "--task", "pointmass", "--model", str(run), "--rows", "model"])
    assert (
        "['wrist', 'front'], which wm/PointMass-v0 cannot render" in err and "unknown camera 'wrist'" in err
    )


@pytest.mark.parametrize("cameras", [[WRIST], [WRIST, CAM]])
def test_a_robot_recording_trains_the_frozen_encoder_recipe_on_the_cameras_asked(tmp_path, cameras):
    data, enc, ac, out = tmp_path / "robot", tmp_path / "enc", tmp_path / "ac", tmp_path / "offline"
    write_robot_dataset(data)
    loop = ["--loop.steps", "2", "--loop.batch-size", "4", "--loop.threads", "1", "--loop.no-progress"]
    wm(["pretrain", "--data", str(data), "--out", str(enc), "--preset", "tiny", "--image-keys", *cameras,
        "--held-out", "0.25", *loop])  # fmt: skip
    wm(["train-ac", "--data", str(data), "--encoder", str(enc), "--out", str(ac), "--preset", "tiny", "--pool", "0",
        "--frameskip", "2", "--frames", "3", "--rollout-steps", "2", "--readout", "ridge", "--image-keys", *cameras,
        *loop])  # fmt: skip
    spec = json.loads((ac / "world_model.json").read_text())
    assert (
        spec["image_keys"] == cameras
        and spec["action_names"] == JOINTS
        and spec["predictor"]["action_dim"] == 14
        and spec["predictor"]["cameras"] == len(cameras)
    )
    grid = json.loads((enc / "encoder.json").read_text())
    tokens = (grid["image_size"] // grid["patch_size"]) ** 2
    features = json.loads((ac / "features" / "features.json").read_text())
    assert features["image_keys"] == cameras and features["tokens"] == len(cameras) * tokens  # side by side
    wm(["eval-offline", "--model", str(ac), "--horizon", "2", "--anchors", "6", "--plans", "2", "--samples", "8",
        "--elites", "2", "--iterations", "2", "--videos", "0", "--threads", "1", "--out", str(out), "--no-progress"])  # fmt: skip
    res = json.loads((out / "results.json").read_text())
    assert all(len(v) == 2 for v in res["open_loop"]["latent error (mean squared)"].values())


def one_line_error(capsys, args: list[str]) -> str:
    with pytest.raises(SystemExit) as e:
        wm(args)
    assert e.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_cameras_are_stacked_and_each_encoded_by_the_shared_encoder(tmp_path):
    import torch

    from worldmodel.data import ClipDataset, ClipSpec, LeRobotDataset
    from worldmodel.encoder import EncoderConfig, VideoEncoder, pool_tokens

    episodes = write_robot_dataset(tmp_path / "robot")
    ds = LeRobotDataset(tmp_path / "robot")
    clip = ClipDataset(ds, ClipSpec(context=2, future=0), image_key=(WRIST, CAM), cache=False)[0]
    assert clip["frames"].shape == (2, 6, SIZE, SIZE)
    first = clip["frames"][0].permute(1, 2, 0).numpy()  # (H, W, 6): the wrist view, then the scene
    np.testing.assert_array_equal(first[..., :3], ds.frames(WRIST, 0, [0])[0])
    np.testing.assert_array_equal(first[..., 3:], ds.frames(CAM, 0, [0])[0])
    np.testing.assert_array_equal(ds.camera_frames((WRIST, CAM), 0, [0])[0], first)

    torch.manual_seed(0)
    enc = VideoEncoder(EncoderConfig(image_size=SIZE, patch_size=8, dim=32, depth=1, heads=2, tubelet=1, embed_dim=8,
                                     embed_grid=2, cameras=2)).eval()  # fmt: skip
    frames = clip["frames"].float() / 255  # (2, 6, H, W): two frames of two cameras
    z = enc.embed_frames(frames)  # (2, 1, 8)
    per_view = [pool_tokens(enc(frames[:, None, 3 * c : 3 * c + 3])[:, 0], enc.cfg.grid, 2) for c in range(2)]
    expected = enc.head(torch.cat([v.flatten(1) for v in per_view], dim=1))[:, None]
    torch.testing.assert_close(z, expected)
    swapped = enc.embed_frames(torch.cat([frames[:, 3:], frames[:, :3]], dim=1))
    assert not torch.allclose(z, swapped)  # the head knows which camera is which
    with pytest.raises(ValueError, match=r"expected 2 camera\(s\) x 3 channels, got 3"):
        enc.embed_frames(frames[:, :3])
    assert len(episodes) == 4
