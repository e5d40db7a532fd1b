"""Writing LeRobot v3.0 datasets with pyarrow + PyAV (no dependency on the ``lerobot`` package).

Episodes are buffered and written in groups: each flush writes one data parquet file, one video
file per camera, and one episodes-metadata file, then replaces ``meta/info.json`` atomically. That
file is the commit point: a reader trusts only what it lists, so a writer killed at any moment
leaves a valid dataset holding every flushed episode, and ``flush()`` runs on ``close()``, on
leaving a ``with`` block, and on exceptions (Ctrl-C, SIGTERM turned into an exception), so an
interrupted collection keeps every finished episode. Opening an existing dataset with
``append=True`` continues after its last committed episode (orphaned files from a killed flush
are overwritten). Without ``append`` the writer refuses a directory that is not empty: it never
overwrites files it did not write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from worldmodel.data import format as fmt
from worldmodel.data.stats import aggregate, feature_stats, to_json
from worldmodel.data.video import CODECS, write_video


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: never a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _atomic_write_table(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _column(x: np.ndarray) -> pa.Array:
    """(T,) -> plain column; (T, D...) -> fixed-size list column of the flattened values."""
    if x.ndim == 1:
        return pa.array(x)
    flat = x.reshape(len(x), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), flat.shape[1])


class LeRobotWriter:
    """Write episodes into a LeRobot v3.0 dataset directory.

    ``features`` maps each non-default feature key to ``{"dtype", "shape", "names"}``; image
    features use ``dtype: "video"`` and shape ``[H, W, 3]``. Episodes are dicts of arrays with a
    common first dimension T (frames), keyed by feature.
    """

    def __init__(
        self,
        root: str | Path,
        features: dict[str, dict],
        fps: int,
        *,
        codec: str = "h264",
        gop: int = 10,
        frames_per_file: int = 2000,
        robot_type: str | None = None,
        append: bool = False,
        episode_columns: dict[str, str] | None = None,
    ):
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(CODECS)}")
        if frames_per_file < 1:
            raise ValueError(f"frames_per_file must be >= 1, got {frames_per_file}")
        self.root = Path(root)
        self.fps = int(fps)
        self.codec, self.gop, self.frames_per_file = codec, gop, frames_per_file
        _, pix_fmt, _, codec_name = CODECS[codec]
        self.features = {**fmt.default_features()}
        for key, feat in features.items():
            if key in fmt.DEFAULT_FEATURE_KEYS:
                raise ValueError(f"feature {key!r} is written automatically; do not pass it")
            if feat["dtype"] == "video":
                h, w, _ = feat["shape"]
                feat = fmt.image_feature(h, w, self.fps, codec_name, pix_fmt)
            self.features[key] = feat
        self.video_keys = fmt.video_keys(self.features)
        self.data_keys = [k for k in features if k not in self.video_keys]
        self.episode_columns = dict(episode_columns or {})  # extra per-episode columns: name -> dtype
        self._buffer: list[tuple[dict[str, np.ndarray], str, dict[str, Any]]] = []
        self._buffered_frames = 0
        info_path = self.root / "meta" / "info.json"
        if info_path.exists():
            if not append:
                raise FileExistsError(
                    f"{self.root} already holds a dataset; pass append=True (wm collect --resume) "
                    "to add episodes, or choose a new directory"
                )
            self._load_existing(info_path)
        else:
            if not append and self.root.exists() and any(self.root.iterdir()):
                raise FileExistsError(
                    f"{self.root} is not empty and holds no dataset (no meta/info.json): the writer "
                    "writes only into a new or empty directory"
                )
            self.root.mkdir(parents=True, exist_ok=True)
            self.robot_type = robot_type
            self.total_episodes = self.total_frames = 0
            self.files_written = 0
            self.tasks: dict[str, int] = {}
            self._episode_stats: list[dict[str, dict[str, np.ndarray]]] = []

    # -- public API -------------------------------------------------------------------------

    def add_episode(
        self, episode: dict[str, np.ndarray], task: str, extra: dict[str, Any] | None = None
    ) -> int:
        """Validate and buffer one episode; returns its episode index. Flushes when the buffer
        holds ``frames_per_file`` frames."""
        episode = self._validate(episode)
        index = self.total_episodes + len(self._buffer)
        self._buffer.append((episode, task, dict(extra or {})))
        self._buffered_frames += len(episode[self.data_keys[0] if self.data_keys else self.video_keys[0]])
        if self._buffered_frames >= self.frames_per_file:
            self.flush()
        return index

    def flush(self) -> None:
        """Write buffered episodes as new files and commit them in ``meta/info.json``."""
        if not self._buffer:
            return
        chunk, file = fmt.chunk_file(self.files_written)
        episodes_rows: list[dict[str, Any]] = []
        data_parts: dict[str, list[np.ndarray]] = {
            k: [] for k in [*fmt.DEFAULT_FEATURE_KEYS, *self.data_keys]
        }
        row, frame_offset = self.total_frames, 0
        for i, (ep, task, extra) in enumerate(self._buffer):
            ep_index = self.total_episodes + i
            n = len(ep[self.data_keys[0]] if self.data_keys else ep[self.video_keys[0]])
            task_index = self.tasks.setdefault(task, len(self.tasks))
            data_parts["timestamp"].append((np.arange(n) / self.fps).astype(np.float32))
            data_parts["frame_index"].append(np.arange(n, dtype=np.int64))
            data_parts["episode_index"].append(np.full(n, ep_index, np.int64))
            data_parts["index"].append(np.arange(row, row + n, dtype=np.int64))
            data_parts["task_index"].append(np.full(n, task_index, np.int64))
            for k in self.data_keys:
                data_parts[k].append(ep[k])
            stats = {
                k: feature_stats(ep[k], k in self.video_keys) for k in [*self.data_keys, *self.video_keys]
            }
            self._episode_stats.append(stats)
            rec: dict[str, Any] = {
                "episode_index": ep_index,
                "tasks": [task],
                "length": n,
                "data/chunk_index": chunk,
                "data/file_index": file,
                "dataset_from_index": row,
                "dataset_to_index": row + n,
                "meta/episodes/chunk_index": chunk,
                "meta/episodes/file_index": file,
            }
            for vk in self.video_keys:
                rec[f"videos/{vk}/chunk_index"] = chunk
                rec[f"videos/{vk}/file_index"] = file
                rec[f"videos/{vk}/from_timestamp"] = frame_offset / self.fps
                rec[f"videos/{vk}/to_timestamp"] = (frame_offset + n) / self.fps
            for k, st in stats.items():
                for s, v in st.items():
                    rec[f"stats/{k}/{s}"] = np.asarray(v, np.float64).ravel().tolist()
            rec.update(extra)
            episodes_rows.append(rec)
            row += n
            frame_offset += n

        # data, videos, episode metadata; then stats and info.json (the commit point)
        table = pa.table({k: _column(np.concatenate(v)) for k, v in data_parts.items()})
        _atomic_write_table(table, self.root / fmt.DATA_PATH.format(chunk_index=chunk, file_index=file))
        for vk in self.video_keys:
            path = self.root / fmt.VIDEO_PATH.format(video_key=vk, chunk_index=chunk, file_index=file)
            path.parent.mkdir(parents=True, exist_ok=True)
            frames = (f for ep, _, _ in self._buffer for f in ep[vk])
            write_video(path, frames, fps=self.fps, codec=self.codec, gop=self.gop)
        ep_table = pa.Table.from_pylist(episodes_rows)
        _atomic_write_table(
            ep_table, self.root / fmt.EPISODES_PATH.format(chunk_index=chunk, file_index=file)
        )
        _atomic_write_table(
            pa.table({"task_index": list(self.tasks.values()), "task": list(self.tasks)}),
            self.root / "meta" / "tasks.parquet",
        )
        self.total_episodes += len(self._buffer)
        self.total_frames = row
        self.files_written += 1
        self._buffer, self._buffered_frames = [], 0
        keys = self._episode_stats[0].keys()
        stats = {k: aggregate([s[k] for s in self._episode_stats]) for k in keys}
        atomic_write_text(self.root / "meta" / "stats.json", json.dumps(to_json(stats), indent=1))
        atomic_write_text(self.root / "meta" / "info.json", json.dumps(self._info(), indent=2))

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> LeRobotWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.flush()  # keep every finished episode, also when leaving on an exception

    # -- internals --------------------------------------------------------------------------

    def _info(self) -> dict[str, Any]:
        return {
            "codebase_version": fmt.CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": self.total_episodes,
            "total_frames": self.total_frames,
            "total_tasks": len(self.tasks),
            "chunks_size": fmt.CHUNKS_SIZE,
            "files_written": self.files_written,
            "fps": self.fps,
            "splits": {"train": f"0:{self.total_episodes}"},
            "data_path": fmt.DATA_PATH,
            "video_path": fmt.VIDEO_PATH if self.video_keys else None,
            "features": self.features,
            "writer": {"codec": self.codec, "gop": self.gop, "frames_per_file": self.frames_per_file},
        }

    def _load_existing(self, info_path: Path) -> None:
        from worldmodel.data.reader import LeRobotDataset

        info = json.loads(info_path.read_text())
        if info.get("codebase_version") != fmt.CODEBASE_VERSION:
            raise fmt.DatasetError(f"{info_path}: can append only to {fmt.CODEBASE_VERSION} datasets")
        if info["features"] != self.features or int(info["fps"]) != self.fps:
            theirs = {k: (v["dtype"], v["shape"]) for k, v in info["features"].items()}
            ours = {k: (v["dtype"], v["shape"]) for k, v in self.features.items()}
            raise fmt.DatasetError(
                f"{info_path}: cannot append: the dataset has fps {info['fps']} and features {theirs}, "
                f"the new episodes fps {self.fps} and {ours}"
            )
        ds = LeRobotDataset(self.root, check_videos=False)
        self.robot_type = info.get("robot_type")
        self.total_episodes, self.total_frames = ds.num_episodes, ds.num_frames
        self.files_written = int(info.get("files_written", 0))
        self.tasks = dict(ds.tasks)
        self._episode_stats = ds.episode_stats()

    def _validate(self, episode: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        expected = set(self.data_keys) | set(self.video_keys)
        if set(episode) != expected:
            raise ValueError(
                f"episode keys {sorted(episode)} do not match the dataset features {sorted(expected)}"
            )
        lengths = {k: len(v) for k, v in episode.items()}
        if len(set(lengths.values())) != 1 or 0 in lengths.values():
            raise ValueError(f"all features of an episode need the same non-zero length, got {lengths}")
        out = {}
        for k, v in episode.items():
            feat = self.features[k]
            v = np.asarray(v)
            if feat["dtype"] == "video":
                if v.dtype != np.uint8 or v.shape[1:] != tuple(feat["shape"]):
                    raise ValueError(
                        f"{k}: expected (T, {feat['shape']}) uint8 frames, got {v.shape} {v.dtype}"
                    )
            else:
                shape = tuple(feat["shape"])
                if v.shape[1:] != shape and not (shape == (1,) and v.ndim == 1):
                    raise ValueError(f"{k}: expected shape (T, {shape}), got {v.shape}")
                v = v.astype(feat["dtype"], copy=False)
                if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                    raise ValueError(f"{k}: episode contains NaN or inf values")
            out[k] = v
        return out
