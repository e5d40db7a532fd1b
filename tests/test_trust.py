"""Trust the data: every corruption of a dataset or a run directory is a clear error naming the
file, and leaves every file as it was.

Each case copies a tiny collected dataset (or run), damages one thing, opens it the way training
does, and checks the error class, that the message names the damaged file, and that no file's
hash changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from envs.collect import CollectConfig, collect
from worldmodel.data import ClipDataset, ClipSpec, DatasetError, FrameCache, LeRobotDataset, LeRobotWriter
from worldmodel.train.checkpoint import CheckpointError
from worldmodel.train.config import LoopConfig
from worldmodel.train.pretrain import PretrainConfig, pretrain
from worldmodel.train.rundir import RunError

IMG = "observation.images.top"
FEATURES = {
    IMG: {"dtype": "video", "shape": [16, 16, 3]},
    "observation.state": {"dtype": "float32", "shape": [4], "names": ["x", "y", "vx", "vy"]},
    "action": {"dtype": "float32", "shape": [2], "names": ["a0", "a1"]},
}
LENGTHS = (8, 6, 9, 7)


def hashes(*roots: Path) -> dict[str, str]:
    """sha1 of every file under the roots (symlinks followed), keyed by path."""
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha1(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """A v3.0 dataset of 4 episodes in 3 files (16x16 frames, 20 fps)."""
    root = tmp_path_factory.mktemp("clean") / "ds"
    rng = np.random.default_rng(0)
    with LeRobotWriter(root, FEATURES, fps=20, codec="h264-lossless", frames_per_file=10) as w:
        for i, n in enumerate(LENGTHS):
            frames = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
            state = rng.normal(size=(n, 4)).astype(np.float32)
            action = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
            w.add_episode({IMG: frames, "observation.state": state, "action": action}, "task", {"seed": i})
    return root


# -- how each corruption is made ---------------------------------------------------------------


def edit_info(**changes) -> Callable[[Path], str]:
    def make(root: Path) -> str:
        path = root / "meta" / "info.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))
        return "info.json"

    return make


def set_feature(key: str, **spec) -> Callable[[Path], str]:
    def make(root: Path) -> str:
        path = root / "meta" / "info.json"
        info = json.loads(path.read_text())
        info["features"][key].update(spec)
        path.write_text(json.dumps(info))
        return "data/chunk-000/file-000.parquet"

    return make


def write_info(text: str) -> Callable[[Path], str]:
    def make(root: Path) -> str:
        (root / "meta" / "info.json").write_text(text)
        return "info.json"

    return make


def edit_data(fn: Callable[[pa.Table], pa.Table], file: str = "data/chunk-000/file-000.parquet"):
    def make(root: Path) -> str:
        path = root / file
        pq.write_table(fn(pq.read_table(path)), path)
        return file

    return make


def edit_episodes(fn: Callable[[pa.Table], pa.Table], file: str = "meta/episodes/chunk-000/file-000.parquet"):
    return edit_data(fn, file)


def replace_column(name: str, values) -> Callable[[pa.Table], pa.Table]:
    def fn(t: pa.Table) -> pa.Table:
        return t.set_column(t.column_names.index(name), name, pa.array(values))

    return fn


def uneven_state(t: pa.Table) -> pa.Table:
    rows = [list(r) for r in t.column("observation.state").to_pylist()]
    rows[1] = rows[1][:3]  # one row short of the declared 4 values
    rows[2] = rows[2] + [0.5]
    return t.set_column(t.column_names.index("observation.state"), "observation.state", pa.array(rows))


def swap_frame_index(t: pa.Table) -> pa.Table:
    fi = t.column("frame_index").to_numpy().copy()
    fi[[2, 3]] = fi[[3, 2]]
    return replace_column("frame_index", fi)(t)


def duplicate_row(t: pa.Table) -> pa.Table:
    return pa.concat_tables([t, t.slice(0, 1)])


def truncate(file: str, keep: float = 0.5) -> Callable[[Path], str]:
    def make(root: Path) -> str:
        path = root / file
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        return file

    return make


def outside_template(root: Path) -> str:
    path = root / "meta" / "info.json"
    info = json.loads(path.read_text())
    info["data_path"] = "../elsewhere/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    shutil.copytree(root / "data", root.parent / "elsewhere")
    path.write_text(json.dumps(info))
    return "info.json"


def symlink_outside(root: Path) -> str:
    video = root / "videos" / IMG / "chunk-000" / "file-001.mp4"
    outside = root.parent / "outside.mp4"
    shutil.copy(video, outside)
    video.unlink()
    video.symlink_to(outside)
    return "info.json"


def fps_everywhere_but_the_video(root: Path) -> str:
    """fps 10 in info.json, and timestamps rewritten to match: only the video stream says 20."""
    edit_info(fps=10)(root)
    for path in sorted((root / "data").rglob("*.parquet")):
        t = pq.read_table(path)
        ts = (t.column("frame_index").to_numpy() / 10).astype(np.float32)
        pq.write_table(replace_column("timestamp", ts)(t), path)
    for path in sorted((root / "meta" / "episodes").rglob("*.parquet")):
        t = pq.read_table(path)
        for end in ("from_timestamp", "to_timestamp"):
            col = f"videos/{IMG}/{end}"
            t = replace_column(col, t.column(col).to_numpy() * 2)(t)
        pq.write_table(t, path)
    return "file-000.mp4"


def no_episodes(root: Path) -> str:
    edit_info(total_episodes=0, total_frames=0)(root)
    return "info.json"


DATASET_CASES: dict[str, Callable[[Path], str]] = {
    # silent wrong training data before
    "fps against the timestamps": edit_info(fps=10),
    "fps against the video stream": fps_everywhere_but_the_video,
    "state shape": set_feature("observation.state", shape=[3]),
    "action dtype int64": set_feature("action", dtype="int64"),
    "uneven state lists": edit_data(uneven_state),
    "duplicate episode row": edit_episodes(duplicate_row),
    "swapped frame_index": edit_data(swap_frame_index),
    "total_frames": edit_info(total_frames=31),
    "total_episodes": edit_info(total_episodes=7),
    "resolution": lambda root: (set_feature(IMG, shape=[32, 32, 3])(root), "file-000.mp4")[1],
    "template outside the folder": outside_template,
    "symlink outside the folder": symlink_outside,
    # errors that were not DatasetError
    "info.json without features": write_info('{"codebase_version": "v3.0", "fps": 20}'),
    "info.json a list": write_info("[1, 2]"),
    "fps twenty": edit_info(fps="twenty"),
    "unknown placeholder": edit_info(data_path="data/{chunk}/file-{file_index:03d}.parquet"),
    "truncated episode metadata": truncate("meta/episodes/chunk-000/file-000.parquet"),
    "truncated tasks": truncate("meta/tasks.parquet"),
    "no length column": edit_episodes(lambda t: t.drop_columns(["length"])),
    "no action column": edit_data(lambda t: t.drop_columns(["action"])),
    "truncated data file": truncate("data/chunk-000/file-001.parquet"),
}


@pytest.mark.parametrize("case", sorted(DATASET_CASES))
def test_a_corrupt_dataset_is_named_and_left_alone(clean, tmp_path, case):
    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    names = DATASET_CASES[case](root)
    before = hashes(tmp_path)
    with pytest.raises(DatasetError) as err:
        ds = LeRobotDataset(root)
        ClipDataset(ds, ClipSpec(context=2, future=1), cache=False)
    msg = str(err.value)
    assert names in msg, f"{case}: {msg}"
    assert hashes(tmp_path) == before


def test_a_missing_action_column_is_not_reported_as_present(clean, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    edit_data(lambda t: t.drop_columns(["action"]))(root)
    with pytest.raises(DatasetError, match="no column 'action'") as err:
        LeRobotDataset(root)
    assert "'action'" not in str(err.value).split("the file has")[1]


def test_frames_of_another_size_are_refused_with_and_without_the_cache(clean, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    set_feature(IMG, shape=[32, 32, 3])(root)
    before = hashes(root)
    ds = LeRobotDataset(root, check_videos=False)  # the header check skipped: the frames still are
    with pytest.raises(DatasetError, match=r"file-000\.mp4.*declares"):
        ds.frames(IMG, 0, [0, 1])
    with pytest.raises(DatasetError, match=r"file-000\.mp4.*declares"):
        FrameCache(ds, IMG, tmp_path / "cache", progress=False)
    assert hashes(root) == before


def test_an_edited_dataset_gets_a_new_cache(clean, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    first = FrameCache(LeRobotDataset(root), IMG, tmp_path / "cache", progress=False)
    # move episode 1 one frame later in its video: the same info.json and video files, other frames
    path = root / "meta" / "episodes" / "chunk-000" / "file-000.parquet"
    t = pq.read_table(path)
    col = f"videos/{IMG}/from_timestamp"
    ts = t.column(col).to_numpy().copy()
    ts[0] += 1 / 20
    t = t.set_column(t.column_names.index(col), col, pa.array(ts))
    pq.write_table(t, path)
    os.utime(path, ns=(1, 1))
    edited = LeRobotDataset(root)
    second = FrameCache(edited, IMG, tmp_path / "cache", progress=False)
    assert second.path != first.path


def test_v21_duplicates_and_broken_lines_are_named(tmp_path):
    root = tmp_path / "v21"
    (root / "meta").mkdir(parents=True)
    info = {"codebase_version": "v2.1", "fps": 20, "total_episodes": 1, "total_frames": 3, "chunks_size": 1000,
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
            "features": {"action": {"dtype": "float32", "shape": [1], "names": None}}}  # fmt: skip
    (root / "meta" / "info.json").write_text(json.dumps(info))
    line = json.dumps({"episode_index": 0, "length": 3})
    (root / "meta" / "episodes.jsonl").write_text(line + "\n" + line + "\n")
    before = hashes(root)
    with pytest.raises(DatasetError, match=r"episodes\.jsonl: episode 0 is listed twice"):
        LeRobotDataset(root)
    (root / "meta" / "episodes.jsonl").write_text(line + "\n{broken\n")
    with pytest.raises(DatasetError, match=r"episodes\.jsonl: line 2 is not valid JSON"):
        LeRobotDataset(root)
    assert set(hashes(root)) == set(before)


def test_a_video_only_dataset_pretrains(tmp_path):
    root = tmp_path / "video"
    rng = np.random.default_rng(1)
    with LeRobotWriter(root, {IMG: FEATURES[IMG]}, fps=20, codec="h264-lossless") as w:
        for n in (10, 9, 11):
            w.add_episode({IMG: rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)}, "watch")
    loop = LoopConfig(steps=2, batch_size=2, progress=False, threads=1)
    pretrain(
        PretrainConfig(data=root, out=tmp_path / "enc", preset="tiny", frames=2, held_out=0.34, loop=loop)
    )
    assert (tmp_path / "enc" / "encoder.safetensors").exists()


def test_pretraining_on_no_episodes_is_a_dataset_error(clean, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    no_episodes(root)
    loop = LoopConfig(steps=2, batch_size=2, progress=False, threads=1)
    with pytest.raises(DatasetError, match=r"info\.json: the dataset holds no episodes"):
        pretrain(PretrainConfig(data=root, out=tmp_path / "enc", preset="tiny", frames=2, loop=loop))


# -- writers: wm collect never overwrites what it did not write --------------------------------


def small_collect(out: Path, **kw) -> CollectConfig:
    base = dict(task="pointmass", episodes=2, steps=5, image_size=32, workers=0, out=out, progress=False)
    return CollectConfig(**{**base, **kw})


def test_collect_refuses_a_folder_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    (mine / "data" / "chunk-000").mkdir(parents=True)
    (mine / "data" / "chunk-000" / "file-000.parquet").write_text("the user's own file")
    (mine / "meta").mkdir()
    (mine / "meta" / "stats.json").write_text("{}")
    before = hashes(mine)
    for mode in ("new", "resume", "append"):
        with pytest.raises(FileExistsError, match=str(mine)):
            collect(small_collect(mine, mode=mode))
        assert hashes(mine) == before


def test_collect_resume_and_append_refuse_another_recipe(tmp_path):
    out = tmp_path / "ds"
    collect(small_collect(out))
    before = hashes(out)
    for change, field in (
        (dict(seed=1), "seed"),
        (dict(steps=3), "steps"),
        (dict(codec="h264-lossless"), "codec"),
    ):
        for mode in ("resume", "append"):
            with pytest.raises(ValueError, match=f"{field}: recorded"):
                collect(small_collect(out, episodes=3, mode=mode, **change))
            assert hashes(out) == before
    with pytest.raises(ValueError, match="at least one episode"):
        collect(small_collect(tmp_path / "none", episodes=0))
    assert not (tmp_path / "none").exists()
    collect(small_collect(out, episodes=3, mode="resume"))  # the same recipe resumes
    assert LeRobotDataset(out).num_episodes == 3


# -- run directories: resume is a contract -----------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(clean, tmp_path_factory) -> tuple[PretrainConfig, Path]:
    run = tmp_path_factory.mktemp("run") / "enc"
    loop = LoopConfig(steps=3, batch_size=2, ckpt_every=2, progress=False, threads=1)
    cfg = PretrainConfig(data=clean, out=run, preset="tiny", frames=2, held_out=0.25, cache=False, loop=loop)
    pretrain(cfg)
    return cfg, run


def _copy_run(finished_run, tmp_path) -> tuple[PretrainConfig, Path]:
    cfg, run = finished_run
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return replace(cfg, out=dst), dst


def no_weights(run: Path) -> str:
    (run / "checkpoint" / "model.safetensors").unlink()
    return "model.safetensors"


def no_config(run: Path) -> str:
    (run / "config.json").unlink()
    (run / "config.yaml").unlink()
    return "config.json"


def state_of_another_step(run: Path) -> str:
    path = run / "checkpoint" / "state.pt"
    torch.save({**torch.load(path, weights_only=True), "step": 2}, path)
    return "state.pt"


RUN_CASES: dict[str, tuple[type[Exception], Callable[[Path], str]]] = {
    "state without weights": (RunError, no_weights),
    "truncated weights": (CheckpointError, truncate("checkpoint/model.safetensors")),
    "truncated state": (CheckpointError, truncate("checkpoint/state.pt")),
    "checkpoint without a config": (RunError, no_config),
    "weights of another step": (CheckpointError, state_of_another_step),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_a_damaged_run_is_named_and_left_alone(finished_run, tmp_path, case):
    cfg, run = _copy_run(finished_run, tmp_path)
    kind, damage = RUN_CASES[case]
    names = damage(run)
    before = hashes(run)
    with pytest.raises(kind) as err:
        pretrain(cfg)
    assert names in str(err.value), str(err.value)
    assert hashes(run) == before


def test_resume_with_other_settings_is_refused_naming_the_fields(finished_run, tmp_path):
    cfg, run = _copy_run(finished_run, tmp_path)
    before = hashes(run)
    changed = replace(cfg, frames=4, optim=replace(cfg.optim, lr=0.5))
    with pytest.raises(RunError, match=r"frames: recorded 2, asked 4.*optim.lr: recorded .*, asked 0.5"):
        pretrain(changed)
    assert hashes(run) == before
    pretrain(replace(cfg, loop=replace(cfg.loop, progress=True, threads=1)))  # display knobs may change
    assert hashes(run)[str(run / "config.json")] == before[str(run / "config.json")]
    pretrain(replace(changed, loop=replace(changed.loop, force_new=True)))  # the way out
    assert json.loads((run / "config.json").read_text())["run"]["frames"] == 4


def test_a_save_killed_between_its_renames_resumes_from_the_old_checkpoint(finished_run, tmp_path):
    cfg, run = _copy_run(finished_run, tmp_path)
    os.replace(run / "checkpoint", run / "checkpoint.old")  # the moment between the two renames
    (run / "encoder.safetensors").unlink()
    pretrain(cfg)  # resumes at step 3 and exports again
    assert (run / "encoder.safetensors").exists()


def test_the_command_line_reports_a_corrupt_dataset_or_run_in_one_line(clean, finished_run, tmp_path, capsys):
    from worldmodel.cli import main

    root = tmp_path / "ds"
    shutil.copytree(clean, root)
    set_feature("action", dtype="int64")(root)
    with pytest.raises(SystemExit) as exit_:
        main(["pretrain", "--data", str(root), "--out", str(tmp_path / "enc"), "--preset", "tiny"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and "file-000.parquet" in lines[0], lines
    assert not (tmp_path / "enc").exists()

    cfg, run = _copy_run(finished_run, tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["pretrain", "--data", str(cfg.data), "--out", str(run), "--preset", "tiny", "--frames", "4"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and "frames: recorded 2, asked 4" in lines[0], lines
