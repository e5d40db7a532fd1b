"""Checks of a dataset against its own metadata: what the reader verifies when it opens one.

Every check raises ``DatasetError`` naming the file, the episode where there is one, what was
expected and what was found. The reader runs the cheap ones on open (the metadata's schema,
column shapes and dtypes, episode and frame totals, duplicates, contiguity, timestamps against
``fps``, paths inside the dataset folder, the video headers' frame count, rate and size); the
frame cache checks the decoded frames when it builds (see ``worldmodel.data.cache``).
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from worldmodel.data.format import TIMESTAMP_TOL, DatasetError

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def check_info(info: Any, path: Path, version: str) -> None:
    """The schema of ``meta/info.json``: the keys the reader uses, with usable values."""
    if not isinstance(info, dict):
        raise DatasetError(f"{path}: expected a JSON object, found {type(info).__name__}")
    features = info.get("features")
    if not isinstance(features, dict) or not features:
        raise DatasetError(f"{path}: 'features' must be an object of feature specs, found {features!r:.80}")
    for key, feat in features.items():
        if not isinstance(feat, dict) or not isinstance(feat.get("dtype"), str):
            raise DatasetError(f"{path}: feature {key!r} needs a 'dtype' string, found {feat!r:.80}")
        shape = feat.get("shape")
        if not isinstance(shape, list | tuple) or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise DatasetError(
                f"{path}: feature {key!r} needs a 'shape' of positive integers, found {shape!r}"
            )
        if feat["dtype"] == "video" and len(shape) != 3:
            raise DatasetError(
                f"{path}: video feature {key!r} needs shape [height, width, channels], found {shape}"
            )
    fps = info.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not fps > 0:
        raise DatasetError(f"{path}: 'fps' must be a positive number, found {fps!r}")
    for key in ("total_episodes", "total_frames"):
        value = info.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise DatasetError(f"{path}: {key!r} must be a non-negative integer, found {value!r}")
    placeholders = V3_FIELDS if version == "v3.0" else V21_FIELDS
    has_video = any(f["dtype"] == "video" for f in features.values())
    for key in ("data_path", "video_path") if has_video else ("data_path",):
        template = info.get(key)
        if not isinstance(template, str):
            raise DatasetError(f"{path}: {key!r} must be a path template string, found {template!r}")
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        unknown = names - placeholders[key]
        if unknown:
            raise DatasetError(
                f"{path}: {key} {template!r} has unknown placeholder(s) {sorted(unknown)}; "
                f"this version knows {sorted(placeholders[key])}"
            )


V3_FIELDS = {
    "data_path": {"chunk_index", "file_index"},
    "video_path": {"video_key", "chunk_index", "file_index"},
}
V21_FIELDS = {
    "data_path": {"episode_chunk", "episode_index"},
    "video_path": {"episode_chunk", "video_key", "episode_index"},
}


def inside(root: Path, rel: str, what: str, info_path: Path) -> Path:
    """``root / rel``, refused when it (or a symlink on the way) leads outside the dataset folder."""
    path = root / rel
    real, base = path.resolve(), root.resolve()
    if not real.is_relative_to(base):
        raise DatasetError(
            f"{info_path}: the {what} path {rel!r} leads outside the dataset folder {base} (to {real})"
        )
    return path


def value_type(t: pa.DataType) -> tuple[pa.DataType, bool]:
    """(value type, is a list) of a column type."""
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return t.value_type, True
    return t, False


def _dtype_fits(declared: str, t: pa.DataType) -> bool:
    if declared in FLOAT_DTYPES:
        return pa.types.is_floating(t) or pa.types.is_integer(t)  # integers widen to floats exactly enough
    if declared in INT_DTYPES:
        return pa.types.is_integer(t)
    if declared == "bool":
        return pa.types.is_boolean(t)
    if declared == "string":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    return True  # other kinds (image structs, ...) are not read as numbers


def check_columns(table: pa.Table, features: dict[str, dict], path: Path, required: tuple[str, ...]) -> None:
    """Every declared non-video feature is a column of ``table`` with the declared dtype kind and
    ``prod(shape)`` values in every row; ``required`` bookkeeping columns are present."""
    names = set(table.column_names)
    lacking = [c for c in required if c not in names]
    if lacking:
        raise DatasetError(f"{path}: no column(s) {lacking}; it has {sorted(names)}")
    for key, feat in features.items():
        if feat["dtype"] in ("video", "image"):
            continue
        if key not in names:
            raise DatasetError(
                f"{path}: no column {key!r}, which meta/info.json declares "
                f"({feat['dtype']}, shape {list(feat['shape'])}); the file has {sorted(names)}"
            )
        col = table.column(key)
        vtype, is_list = value_type(col.type)
        if not _dtype_fits(feat["dtype"], vtype):
            raise DatasetError(
                f"{path}: column {key!r} holds {vtype}, meta/info.json declares {feat['dtype']}"
            )
        width = int(np.prod(feat["shape"]))
        if is_list:
            lengths = pc.list_value_length(col.combine_chunks()).to_numpy(zero_copy_only=False)
            bad = np.flatnonzero(lengths != width)
            if bad.size:
                raise DatasetError(
                    f"{path}: column {key!r} row {int(bad[0])} holds {int(lengths[bad[0]])} values, "
                    f"meta/info.json declares shape {list(feat['shape'])} ({width})"
                )
            if col.null_count or pc.sum(pc.list_flatten(col).is_null()).as_py():
                raise DatasetError(f"{path}: column {key!r} has missing (null) values")
        else:
            if width != 1:
                raise DatasetError(
                    f"{path}: column {key!r} holds one value per row, meta/info.json declares shape "
                    f"{list(feat['shape'])}"
                )
            if col.null_count:
                raise DatasetError(f"{path}: column {key!r} has missing (null) values")


def check_episode_table(meta: dict[str, np.ndarray], total_frames: int, where: str, info_path: Path) -> None:
    """Committed episodes: positive lengths, totals that agree with info.json, and (v3.0) rows
    that tile the global index with no gap or overlap."""
    eps, lengths = meta["episode_index"], meta["length"]
    short = np.flatnonzero(lengths < 1)
    if short.size:
        raise DatasetError(f"{where}: episode {int(eps[short[0]])} has length {int(lengths[short[0]])}")
    if int(lengths.sum()) != total_frames:
        raise DatasetError(
            f"{info_path}: total_frames is {total_frames}, the episode metadata's lengths sum to {int(lengths.sum())}"
        )
    if "dataset_from_index" in meta:
        lo, hi = meta["dataset_from_index"].astype(np.int64), meta["dataset_to_index"].astype(np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        bad = np.flatnonzero((lo != starts) | (hi - lo != lengths))
        if bad.size:
            i = int(bad[0])
            raise DatasetError(
                f"{where}: episode {int(eps[i])} spans rows {int(lo[i])}..{int(hi[i])} with length {int(lengths[i])}; "
                f"after the episodes before it, it should span {int(starts[i])}..{int(starts[i] + lengths[i])}"
            )


def duplicates(values: list[int]) -> list[int]:
    seen, dup = set(), []
    for v in values:
        if v in seen:
            dup.append(v)
        seen.add(v)
    return dup


def check_timestamps(t: pa.Table, fps: float, path: Path, episode: int) -> None:
    """Timestamps step by ``1 / fps`` from the episode start (within LeRobot's tolerance)."""
    if "timestamp" not in t.column_names or t.num_rows == 0:
        return
    ts = t.column("timestamp").to_numpy().astype(np.float64).ravel()
    want = np.arange(len(ts)) / fps
    off = np.abs(ts - ts[0] - want)
    if off.max() > TIMESTAMP_TOL + 1e-6 * len(ts):
        i = int(np.argmax(off > TIMESTAMP_TOL + 1e-6 * len(ts)))
        step = float(np.median(np.diff(ts))) if len(ts) > 1 else float("nan")
        raise DatasetError(
            f"{path}: episode {episode} frame {i} has timestamp {ts[i]:.4f} s, fps {fps:g} in meta/info.json "
            f"puts it at {ts[0] + want[i]:.4f} s (the timestamps step by {step:.4f} s: {1 / step:.3g} fps?)"
        )


def check_video_header(facts: dict, feat: dict, fps: float, path: Path, episodes: list[int]) -> None:
    """A video file's stream against the declared frame size and the dataset's fps."""
    h, w = int(feat["shape"][0]), int(feat["shape"][1])
    if facts.get("height") and (facts["height"], facts["width"]) != (h, w):
        raise DatasetError(
            f"{path} (episodes {episodes[:10]}): frames are {facts['height']}x{facts['width']}, "
            f"meta/info.json declares {h}x{w}"
        )
    rate = facts.get("fps")
    if rate and abs(rate - fps) > 1e-3 * fps:
        raise DatasetError(
            f"{path} (episodes {episodes[:10]}): the video stream runs at {rate:g} fps, meta/info.json says {fps:g}"
        )
