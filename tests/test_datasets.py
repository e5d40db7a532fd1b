"""LeRobot datasets: round trips, v2.1 reading, clips, backends, the frame cache, bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from envs.collect import CollectConfig, collect
from worldmodel.data import ClipDataset, ClipSpec, DatasetError, FrameCache, LeRobotDataset, LeRobotWriter
from worldmodel.data.stats import aggregate, feature_stats
from worldmodel.data.video import write_video

IMG = "observation.images.top"


def smooth_episode(rng: np.random.Generator, n: int, size: int = 32) -> dict[str, np.ndarray]:
    """A moving blob on a gradient: the kind of content video codecs are built for."""
    yy, xx = np.mgrid[0:size, 0:size]
    path = rng.uniform(4, size - 4, 2) + np.cumsum(rng.normal(0, 0.8, (n, 2)), axis=0)
    frames = np.empty((n, size, size, 3), np.uint8)
    for t, (cy, cx) in enumerate(path):
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)
        frames[t, ..., 0] = 60 + 180 * blob
        frames[t, ..., 1] = 80 + 2 * xx
        frames[t, ..., 2] = 120
    return {
        IMG: frames,
        "observation.state": rng.normal(size=(n, 4)).astype(np.float32),
        "action": rng.uniform(-1, 1, (n, 2)).astype(np.float32),
    }


FEATURES = {
    IMG: {"dtype": "video", "shape": [32, 32, 3]},
    "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "vx", "vy"]},
    "action": {"dtype": "float32", "shape": [2], "names": ["a0", "a1"]},
}


def write_dataset(root: Path, lengths=(12, 7, 15, 10), codec="h264", frames_per_file=20, seed=0):
    rng = np.random.default_rng(seed)
    episodes = [smooth_episode(rng, n) for n in lengths]
    with LeRobotWriter(root, FEATURES, fps=20, codec=codec, frames_per_file=frames_per_file) as w:
        for i, ep in enumerate(episodes):
            w.add_episode(ep, "task B" if i % 2 else "task A", {"seed": i})
    return episodes


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("codec, tol", [("h264-lossless", 0.0), ("h264", 3.0), ("av1", 6.0)])
def test_round_trip(tmp_path, codec, tol):
    episodes = write_dataset(tmp_path / "ds", codec=codec)
    ds = LeRobotDataset(tmp_path / "ds")
    assert ds.info["codebase_version"] == "v3.0" and ds.num_episodes == 4 and ds.num_frames == 44
    assert ds.tasks == {"task A": 0, "task B": 1}
    assert ds.info["features"][IMG]["info"]["video.codec"] in ("h264", "av1")
    for pos, ep in enumerate(episodes):
        got = ds.episode(pos)
        np.testing.assert_array_equal(got["observation.state"], ep["observation.state"])  # exact
        np.testing.assert_array_equal(got["action"], ep["action"])
        np.testing.assert_array_equal(got["frame_index"], np.arange(len(ep[IMG])))
        np.testing.assert_allclose(got["timestamp"], np.arange(len(ep[IMG])) / 20, rtol=0, atol=1e-6)
        frames = ds.frames(IMG, pos, np.arange(len(ep[IMG])))
        err = np.abs(frames.astype(int) - ep[IMG]).mean()
        assert err <= tol, (codec, pos, err)
    # several files were written (frames_per_file=20), and episodes span them
    assert len(list((tmp_path / "ds" / "data").rglob("*.parquet"))) >= 2


def test_stats_match_a_direct_computation(tmp_path):
    episodes = write_dataset(tmp_path / "ds")
    stats = json.loads((tmp_path / "ds" / "meta" / "stats.json").read_text())
    allstate = np.concatenate([e["observation.state"] for e in episodes]).astype(np.float64)
    np.testing.assert_allclose(stats["observation.state"]["mean"], allstate.mean(0), rtol=1e-9)
    np.testing.assert_allclose(stats["observation.state"]["std"], allstate.std(0), rtol=1e-9)
    np.testing.assert_allclose(stats["observation.state"]["min"], allstate.min(0))
    assert stats["observation.state"]["count"] == [44]
    frames = np.concatenate([e[IMG] for e in episodes]).reshape(-1, 3) / 255.0
    np.testing.assert_allclose(np.ravel(stats[IMG]["mean"]), frames.mean(0), rtol=1e-9)
    assert np.shape(stats[IMG]["std"]) == (3, 1, 1)
    # the aggregation is exact for any split
    x = np.random.default_rng(1).normal(size=(30, 3))
    agg = aggregate([feature_stats(x[:7], False), feature_stats(x[7:], False)])
    np.testing.assert_allclose(agg["std"], x.std(0), rtol=1e-12)


def test_reading_writes_nothing(tmp_path):
    write_dataset(tmp_path / "ds")
    before = file_hashes(tmp_path / "ds")
    ds = LeRobotDataset(tmp_path / "ds")
    clips = ClipDataset(ds, ClipSpec(context=2, future=2), cache=True, cache_dir=tmp_path / "cache")
    _ = [clips[i] for i in range(0, len(clips), 3)]
    ds.frames(IMG, 1, [0, 3])
    assert file_hashes(tmp_path / "ds") == before


# -- LeRobot v2.1 -------------------------------------------------------------------------


def write_v21(root: Path, episodes: list[dict[str, np.ndarray]]) -> None:
    """A v2.1 dataset as LeRobot lays it out: one parquet and one mp4 per episode."""
    (root / "meta").mkdir(parents=True)
    info = {
        "codebase_version": "v2.1",
        "fps": 20,
        "chunks_size": 1000,
        "total_episodes": len(episodes),
        "total_frames": sum(len(ep["action"]) for ep in episodes),
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {
            IMG: {"dtype": "video", "shape": [32, 32, 3], "names": ["height", "width", "channel"]},
            "observation.state": {"dtype": "float32", "shape": [4], "names": None},
            "action": {"dtype": "float32", "shape": [2], "names": None},
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "frame_index": {"dtype": "int64", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
            "index": {"dtype": "int64", "shape": [1], "names": None},
            "task_index": {"dtype": "int64", "shape": [1], "names": None},
        },
    }
    (root / "meta" / "info.json").write_text(json.dumps(info))
    lines, row = [], 0
    for e, ep in enumerate(episodes):
        n = len(ep[IMG])
        lines.append(json.dumps({"episode_index": e, "tasks": ["push"], "length": n}))
        table = pa.table(
            {
                "observation.state": [list(map(float, s)) for s in ep["observation.state"]],
                "action": [list(map(float, a)) for a in ep["action"]],
                "timestamp": pa.array(np.arange(n) / 20, pa.float32()),
                "frame_index": np.arange(n),
                "episode_index": np.full(n, e),
                "index": np.arange(row, row + n),
                "task_index": np.zeros(n, np.int64),
            }
        )
        row += n
        path = root / f"data/chunk-000/episode_{e:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        vpath = root / f"videos/chunk-000/{IMG}/episode_{e:06d}.mp4"
        vpath.parent.mkdir(parents=True, exist_ok=True)
        write_video(vpath, ep[IMG], fps=20, codec="h264-lossless")
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "push"}) + "\n")


def test_reads_v21(tmp_path):
    rng = np.random.default_rng(3)
    episodes = [smooth_episode(rng, n) for n in (9, 13)]
    write_v21(tmp_path / "v21", episodes)
    ds = LeRobotDataset(tmp_path / "v21")
    assert ds.version == "v2.1" and ds.num_episodes == 2 and ds.tasks == {"push": 0}
    for pos, ep in enumerate(episodes):
        np.testing.assert_allclose(
            ds.episode(pos)["observation.state"], ep["observation.state"], rtol=0, atol=1e-7
        )
        np.testing.assert_array_equal(ds.frames(IMG, pos, [0, len(ep[IMG]) - 1]), ep[IMG][[0, -1]])
    clips = ClipDataset(ds, ClipSpec(context=2, future=1), cache=False)
    assert len(clips) == (9 - 2) + (13 - 2)


# -- clips ----------------------------------------------------------------------------------


def test_clip_contents_actions_and_pad_masks(tmp_path):
    episodes = write_dataset(tmp_path / "ds", codec="h264-lossless")
    ds = LeRobotDataset(tmp_path / "ds")
    spec = ClipSpec(context=2, future=2, frameskip=3)
    clips = ClipDataset(ds, spec, cache=False)
    # anchors: need 3 frames before and 6 after: episodes of 12, 7, 15, 10 frames
    assert len(clips) == sum(max(n - 9, 0) for n in (12, 7, 15, 10))
    item = clips[0]  # episode 0, anchor frame 3: frames 0, 3, 6, 9
    ep = episodes[0]
    assert item["frames"].shape == (4, 3, 32, 32) and item["frames"].dtype == torch.uint8
    np.testing.assert_array_equal(item["frames"].permute(0, 2, 3, 1).numpy(), ep[IMG][[0, 3, 6, 9]])
    np.testing.assert_array_equal(item["state"].numpy(), ep["observation.state"][[0, 3, 6, 9]])
    expected = ep["action"][0:9].reshape(3, 6)  # 3 model actions, each 3 env actions concatenated
    np.testing.assert_array_equal(item["actions"].numpy(), expected)
    assert not item["frames_is_pad"].any() and not item["actions_is_pad"].any()
    assert int(item["frame_index"]) == 3 and int(item["episode_index"]) == 0

    padded = ClipDataset(ds, ClipSpec(context=3, future=1, frameskip=1, allow_pad=True), cache=False)
    assert len(padded) == ds.num_frames
    first = padded[0]  # anchor frame 0: two frames before the episode start are padded
    assert first["frames_is_pad"].tolist() == [True, True, False, False]
    np.testing.assert_array_equal(first["frames"][0].numpy(), first["frames"][2].numpy())  # clamped
    assert first["actions_is_pad"].tolist() == [True, True, False]
    last = padded[11]  # episode 0 (12 frames), anchor frame 11: the next frame is outside
    assert last["frames_is_pad"].tolist() == [False, False, False, True]
    assert last["actions_is_pad"].tolist() == [False, False, True]


def test_dataloader_workers_match_single_process(tmp_path):
    write_dataset(tmp_path / "ds")
    clips = ClipDataset(tmp_path / "ds", ClipSpec(context=2, future=2), cache=True, cache_dir=tmp_path / "c")
    single = [clips[i] for i in range(len(clips))]
    from worldmodel.train.runtime import loader_context

    loader = torch.utils.data.DataLoader(
        clips, batch_size=5, num_workers=2, shuffle=False, multiprocessing_context=loader_context(2)
    )
    batches = list(loader)
    frames = torch.cat([b["frames"] for b in batches])
    assert frames.shape[0] == len(clips)
    torch.testing.assert_close(frames, torch.stack([s["frames"] for s in single]), rtol=0, atol=0)
    torch.testing.assert_close(
        torch.cat([b["actions"] for b in batches]), torch.stack([s["actions"] for s in single])
    )


def test_clip_spec_and_dataset_errors(tmp_path):
    with pytest.raises(ValueError):
        ClipSpec(context=0)
    write_dataset(tmp_path / "ds", lengths=(5, 6))
    with pytest.raises(ValueError, match="no clip"):
        ClipDataset(tmp_path / "ds", ClipSpec(context=4, future=4), cache=False)
    with pytest.raises(DatasetError, match=r"info\.json: no feature"):
        ClipDataset(tmp_path / "ds", ClipSpec(), state_key="observation.nope", cache=False)


# -- backends and the cache -----------------------------------------------------------------


def test_cache_and_backends_agree(tmp_path):
    write_dataset(tmp_path / "ds", codec="h264")
    ds = LeRobotDataset(tmp_path / "ds", video_backend="pyav")
    idx = [0, 4, 11]
    pyav = ds.frames(IMG, 2, idx)
    ds_decord = LeRobotDataset(tmp_path / "ds", video_backend="decord")
    decord = ds_decord.frames(IMG, 2, idx)
    assert np.abs(decord.astype(int) - pyav).max() <= 2  # same stream, colour conversion aside
    ds.frame_cache = FrameCache(ds, IMG, tmp_path / "cache", progress=False)
    np.testing.assert_array_equal(ds.frames(IMG, 2, idx), pyav)  # the cache is a PyAV decode
    again = FrameCache(ds, IMG, tmp_path / "cache", progress=False)  # reused, not rebuilt
    assert again.path == ds.frame_cache.path and len(list((tmp_path / "cache").iterdir())) == 1


def test_av1_falls_back_to_pyav(tmp_path):
    episodes = write_dataset(tmp_path / "ds", codec="av1", lengths=(8, 9))
    ds = LeRobotDataset(tmp_path / "ds", video_backend="auto")
    frames = ds.frames(IMG, 1, [0, 8])
    assert np.abs(frames.astype(int) - episodes[1][IMG][[0, 8]]).mean() < 6
    assert next(iter(ds._decoders.values())).name == "pyav"
    with pytest.raises(DatasetError):
        LeRobotDataset(tmp_path / "ds", video_backend="decord").frames(IMG, 0, [0])


# -- bad input ------------------------------------------------------------------------------


def test_missing_files(tmp_path):
    write_dataset(tmp_path / "ds")
    video = next((tmp_path / "ds" / "videos").rglob("*.mp4"))
    video.unlink()
    with pytest.raises(DatasetError, match=r"missing video file of episode 0.*file-000\.mp4"):
        LeRobotDataset(tmp_path / "ds")
    shutil.rmtree(tmp_path / "ds" / "data")
    with pytest.raises(DatasetError, match="missing data file of episode 0"):
        LeRobotDataset(tmp_path / "ds")
    with pytest.raises(DatasetError, match="missing dataset metadata"):
        LeRobotDataset(tmp_path / "nothing")


def test_unknown_codebase_version(tmp_path):
    write_dataset(tmp_path / "ds")
    info_path = tmp_path / "ds" / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["codebase_version"] = "v9.9"
    info_path.write_text(json.dumps(info))
    with pytest.raises(DatasetError, match=r"info\.json: unknown codebase_version 'v9.9'"):
        LeRobotDataset(tmp_path / "ds")


def test_frame_count_mismatch(tmp_path):
    episodes = write_dataset(tmp_path / "ds", frames_per_file=1000)  # one file
    video = next((tmp_path / "ds" / "videos").rglob("*.mp4"))
    frames = np.concatenate([e[IMG] for e in episodes])
    write_video(video, frames[:-5], fps=20)  # 5 frames short
    with pytest.raises(
        DatasetError, match=r"frame-count mismatch.*episodes \[0, 1, 2, 3\].*needs 44.*holds 39"
    ):
        LeRobotDataset(tmp_path / "ds")


def test_truncated_and_corrupt_video(tmp_path):
    write_dataset(tmp_path / "ds", frames_per_file=1000)
    video = next((tmp_path / "ds" / "videos").rglob("*.mp4"))
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # truncated: the index (moov) is lost
    with pytest.raises(DatasetError, match=r"file-000\.mp4 \(episodes \[0, 1, 2, 3\]\)"):
        LeRobotDataset(tmp_path / "ds")
    video.write_bytes(b"\x00" * 64 + data[64:])  # corrupt header
    with pytest.raises(DatasetError, match=r"file-000\.mp4"):
        LeRobotDataset(tmp_path / "ds")


def test_nan_actions_name_file_and_episode(tmp_path):
    write_dataset(tmp_path / "ds", frames_per_file=1000)
    path = next((tmp_path / "ds" / "data").rglob("*.parquet"))
    table = pq.read_table(path)
    actions = np.asarray(table.column("action").combine_chunks().flatten()).reshape(-1, 2).copy()
    actions[25, 1] = np.nan  # episode 2 starts at row 19: its frame 6
    col = pa.FixedSizeListArray.from_arrays(pa.array(actions.ravel()), 2)
    pq.write_table(table.set_column(table.column_names.index("action"), "action", col), path)
    with pytest.raises(
        DatasetError, match=r"file-000\.parquet: episode 2 has NaN/inf in 'action' \(frame 6\)"
    ):
        LeRobotDataset(tmp_path / "ds")


def test_writer_rejects_bad_episodes_and_keeps_the_dataset(tmp_path):
    write_dataset(tmp_path / "ds")
    before = file_hashes(tmp_path / "ds")
    with pytest.raises(FileExistsError, match="append=True"):
        LeRobotWriter(tmp_path / "ds", FEATURES, fps=20)
    other = {**FEATURES, "action": {"dtype": "float32", "shape": [3], "names": None}}
    with pytest.raises(DatasetError, match="cannot append"):
        LeRobotWriter(tmp_path / "ds", other, fps=20, append=True)
    w = LeRobotWriter(tmp_path / "ds", FEATURES, fps=20, append=True)
    ep = smooth_episode(np.random.default_rng(0), 6)
    bad = dict(ep, action=np.full((6, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        w.add_episode(bad, "t")
    with pytest.raises(ValueError, match="same non-zero length"):
        w.add_episode(dict(ep, action=ep["action"][:3]), "t")
    with pytest.raises(ValueError, match="do not match"):
        w.add_episode({IMG: ep[IMG]}, "t")
    w.close()
    assert file_hashes(tmp_path / "ds") == before


def test_append_continues_indices(tmp_path):
    first = write_dataset(tmp_path / "ds", lengths=(5, 6))
    ep = smooth_episode(np.random.default_rng(9), 7)
    with LeRobotWriter(tmp_path / "ds", FEATURES, fps=20, append=True) as w:
        assert w.add_episode(ep, "task C") == 2
    ds = LeRobotDataset(tmp_path / "ds")
    assert (
        ds.num_episodes == 3 and ds.num_frames == 18 and ds.tasks == {"task A": 0, "task B": 1, "task C": 2}
    )
    np.testing.assert_array_equal(ds.episode(2)["index"], np.arange(11, 18))
    np.testing.assert_array_equal(ds.episode(0)["action"], first[0]["action"])
    assert np.abs(ds.frames(IMG, 2, [6]).astype(int) - ep[IMG][[6]]).mean() < 3


# -- collection -----------------------------------------------------------------------------


def small_collect(out: Path, **kw) -> dict:
    cfg = dict(task="pointmass", episodes=4, steps=10, workers=0, out=out, progress=False, frames_per_file=25)
    cfg.update(kw)
    return collect(CollectConfig(**cfg))


def test_collection_is_the_same_with_workers(tmp_path):
    a = small_collect(tmp_path / "a", workers=0)
    b = small_collect(tmp_path / "b", workers=2)
    assert a["episodes"] == b["episodes"] == 4 and a["frames"] == 44
    da, db = LeRobotDataset(tmp_path / "a"), LeRobotDataset(tmp_path / "b")
    for key in ("observation.state", "action", "observation.environment_state"):
        np.testing.assert_array_equal(da.columns[key], db.columns[key])
    # the recorded pixels are the frames the agent saw: re-simulate episode 1 from its states
    import gymnasium as gym

    env = gym.make("wm/PointMass-v0").unwrapped
    env.reset(seed=0)
    states = da.episode(1)["observation.environment_state"]
    frames = da.frames("observation.images.top", 1, np.arange(11))
    env.set_state(states[5])
    assert np.abs(env._get_obs()["pixels"].astype(int) - frames[5]).mean() < 2.0
    assert (tmp_path / "a" / "meta" / "collection.json").exists()
    assert 0 < a["coverage"]["visited_fraction"] <= 1


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    small_collect(tmp_path / "full", episodes=5)
    small_collect(tmp_path / "part", episodes=2)  # stands for a run cut short after 2 episodes
    with pytest.raises(FileExistsError, match="--mode resume"):
        small_collect(tmp_path / "part", episodes=5)
    small_collect(tmp_path / "part", episodes=5, mode="resume")
    full, part = LeRobotDataset(tmp_path / "full"), LeRobotDataset(tmp_path / "part")
    assert part.num_episodes == 5
    for key in ("observation.state", "action", "index", "episode_index"):
        np.testing.assert_array_equal(full.columns[key], part.columns[key])
    small_collect(tmp_path / "part", episodes=2, mode="append")
    assert LeRobotDataset(tmp_path / "part").num_episodes == 7


def test_push_collection_moves_the_block(tmp_path):
    s = small_collect(tmp_path / "p", task="pusht", episodes=3, steps=40)
    assert s["policy"] == "push" and s["coverage"]["episodes_block_moved_fraction"] >= 2 / 3
    with pytest.raises(ValueError, match="push policy needs a pushing task"):
        small_collect(tmp_path / "q", policy="push")


def test_demo_collection_records_its_targets(tmp_path):
    s = small_collect(tmp_path / "d", task="pushbox", episodes=3, steps=60, policy="demo")
    cov = s["coverage"]
    assert (
        s["policy"] == "demo"
        and cov["demo_targets"] >= 3
        and 0 < cov["demo_targets_reached"] <= cov["demo_targets"]
    )
    ds = LeRobotDataset(tmp_path / "d")
    assert ds.episode_column("targets").sum() == cov["demo_targets"] and ds.episode_column("seed") is not None
    assert s["rate"]["frames_per_s"] > 0 and s["rate"]["seconds"] > 0
    assert json.loads((tmp_path / "d" / "meta" / "collection.json").read_text())["policy"] == "demo"
    with pytest.raises(ValueError, match="demo policy needs a pushing task"):
        small_collect(tmp_path / "q", policy="demo")
