"""The LeRobot dataset format (v3.0 native, v2.1 readable): paths, features, metadata.

v3.0 layout (``root/``)::

    meta/info.json                               codebase_version, fps, features, path templates
    meta/stats.json                              per-feature min/max/mean/std/count
    meta/tasks.parquet                           task strings -> task_index
    meta/episodes/chunk-000/file-000.parquet     one row per episode (lengths, file offsets)
    data/chunk-000/file-000.parquet              frame rows of many episodes, concatenated
    videos/<video_key>/chunk-000/file-000.mp4    frames of many episodes, back to back

Frame rows carry ``timestamp`` (float32 s from episode start), ``frame_index``, ``episode_index``,
``index`` (global row), ``task_index``; conventional keys ``observation.state``, ``action`` (the
action at row t is applied after observing row t), ``observation.images.<camera>``. Frame t of
episode e is at ``videos/<key>/from_timestamp + timestamp`` in its video file.

Our collected datasets add ``observation.environment_state`` (the full MuJoCo physics state, so
an evaluation can restart the simulator from any recorded frame) and ``next.done``. Each episode
of ``steps`` actions has ``steps + 1`` rows: the last row holds the final observation; its action
is zero and is not a transition (``next.done`` is True there).
"""

from __future__ import annotations

from pathlib import Path

CODEBASE_VERSION = "v3.0"
READABLE_VERSIONS = ("v3.0", "v2.1", "v2.0")
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V21_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
V21_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
CHUNKS_SIZE = 1000  # files per chunk directory
DEFAULT_FEATURE_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
TIMESTAMP_TOL = 1e-4  # seconds: LeRobot's matching tolerance


class DatasetError(ValueError):
    """A dataset on disk is missing files, inconsistent, or holds invalid values."""


def chunk_file(file_number: int, chunks_size: int = CHUNKS_SIZE) -> tuple[int, int]:
    """The (chunk_index, file_index) of the n-th file of a kind (0-based)."""
    return divmod(file_number, chunks_size)


def image_feature(height: int, width: int, fps: int, codec: str, pix_fmt: str) -> dict:
    return {
        "dtype": "video",
        "shape": [height, width, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": height,
            "video.width": width,
            "video.codec": codec,
            "video.pix_fmt": pix_fmt,
            "video.is_depth_map": False,
            "video.fps": fps,
            "video.channels": 3,
            "has_audio": False,
        },
    }


def vector_feature(names: list[str], dtype: str = "float32") -> dict:
    return {"dtype": dtype, "shape": [len(names)], "names": names}


def scalar_feature(dtype: str) -> dict:
    return {"dtype": dtype, "shape": [1], "names": None}


def default_features() -> dict[str, dict]:
    return {
        "timestamp": scalar_feature("float32"),
        "frame_index": scalar_feature("int64"),
        "episode_index": scalar_feature("int64"),
        "index": scalar_feature("int64"),
        "task_index": scalar_feature("int64"),
    }


def feature_names(feature: dict) -> list[str] | None:
    """A vector feature's per-dim names: a list, or LeRobot's ``{"motors": [...]}`` form; None without."""
    names = feature.get("names")
    if isinstance(names, dict):
        names = next(iter(names.values()), None)
    return [str(n) for n in names] if isinstance(names, list) else None


def video_keys(features: dict[str, dict]) -> list[str]:
    return [k for k, f in features.items() if f.get("dtype") == "video"]


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"missing {what}: {path}")
    return path
