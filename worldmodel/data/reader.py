"""Reading LeRobot datasets (v3.0 and v2.1): metadata, episodes, frames by index, queries.

``LeRobotDataset(root)`` loads the metadata and every parquet column into memory (numbers are
small next to video) and checks the dataset on open: missing files, unknown
``codebase_version``, frame counts that disagree between parquet and video headers, NaN or inf
in numeric columns; each error names the file and the episode. Frames are decoded on demand
(decord with PyAV fallback, see ``worldmodel.data.video``) or read from a decoded-frame cache
(``worldmodel.data.cache``). Reading never writes inside the dataset directory.

Queries follow LeRobot's delta-timestamps convention, in frames: ``query(row, {key: [deltas]})``
returns each key at ``frame + delta`` within the row's episode, clamped to the episode, with a
``<key>_is_pad`` mask where a delta fell outside it.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from worldmodel.data import checks
from worldmodel.data import format as fmt
from worldmodel.data.video import VideoError, open_decoder, video_info


def _to_numpy(col: pa.ChunkedArray) -> np.ndarray:
    """A parquet column -> (N,) or (N, D) array (list columns flattened to rows)."""
    col = col.combine_chunks()
    if (
        pa.types.is_list(col.type)
        or pa.types.is_fixed_size_list(col.type)
        or pa.types.is_large_list(col.type)
    ):
        n = len(col)
        flat = col.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(n, -1) if n else flat.reshape(0, 0)
    return col.to_numpy(zero_copy_only=False)


class LeRobotDataset:
    """A LeRobot dataset on disk, v3.0 or v2.1.

    Attributes: ``info`` (meta/info.json), ``features``, ``fps``, ``video_keys``,
    ``episode_index`` (E,), ``lengths`` (E,), ``starts`` (E,) first row of each episode in the
    concatenated columns, ``columns`` {key: (N, ...) array}, ``tasks`` {task: task_index}.
    ``episodes`` selects a subset (by episode_index), e.g. held-out episodes.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        episodes: list[int] | None = None,
        video_backend: str = "auto",
        check_videos: bool = True,
    ):
        self.root = Path(root)
        info_path = fmt.require_file(
            self.root / "meta" / "info.json", "dataset metadata (not a LeRobot dataset?)"
        )
        self.info_path = info_path
        try:
            self.info: dict[str, Any] = json.loads(info_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise fmt.DatasetError(f"{info_path}: not valid JSON ({e})") from e
        if not isinstance(self.info, dict):
            raise fmt.DatasetError(f"{info_path}: expected a JSON object, found {type(self.info).__name__}")
        self.version = self.info.get("codebase_version")
        if self.version not in fmt.READABLE_VERSIONS:
            raise fmt.DatasetError(
                f"{info_path}: unknown codebase_version {self.version!r}; this reader knows {fmt.READABLE_VERSIONS}"
            )
        checks.check_info(self.info, info_path, self.version)
        self.features: dict[str, dict] = self.info["features"]
        self.fps = float(self.info["fps"])
        self.video_keys = fmt.video_keys(self.features)
        self.video_backend = video_backend
        if self.version == "v3.0":
            meta, tables = self._load_v3()
        else:
            meta, tables = self._load_v21()
        if episodes is not None:
            wanted = set(int(e) for e in episodes)
            unknown = wanted - set(meta["episode_index"].tolist())
            if unknown:
                raise fmt.DatasetError(f"{self.root}: no episodes {sorted(unknown)[:10]} in this dataset")
            keep = np.array([e in wanted for e in meta["episode_index"]])
            meta = {
                k: v[keep] if isinstance(v, np.ndarray) else [x for x, m in zip(v, keep) if m]
                for k, v in meta.items()
            }
            tables = [t for t, m in zip(tables, keep) if m]
        self._meta = meta
        self.episode_index: np.ndarray = meta["episode_index"]
        self.lengths: np.ndarray = meta["length"]
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self._assemble_columns(tables)
        if check_videos:
            self._check_video_headers()
        self._decoders: OrderedDict[Path, Any] = OrderedDict()
        self.frame_caches: dict[str, Any] = {}  # camera key -> FrameCache (decoded once, memory-mapped)

    @property
    def frame_cache(self):
        """The first camera's frame cache (None without one); setting one files it under its key."""
        return next(iter(self.frame_caches.values()), None)

    @frame_cache.setter
    def frame_cache(self, cache) -> None:
        self.frame_caches[cache.key] = cache

    # -- sizes and lookups ------------------------------------------------------------------

    @property
    def num_episodes(self) -> int:
        return len(self.episode_index)

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())

    def __len__(self) -> int:
        return self.num_frames

    def episode_rows(self, pos: int) -> slice:
        """Rows of the ``pos``-th loaded episode in ``columns``."""
        return slice(int(self.starts[pos]), int(self.starts[pos] + self.lengths[pos]))

    def locate(self, row: int) -> tuple[int, int]:
        """(episode position, frame index) of a row of ``columns``."""
        pos = int(np.searchsorted(self.starts, row, side="right") - 1)
        return pos, int(row - self.starts[pos])

    def episode(self, pos: int) -> dict[str, np.ndarray]:
        """All numeric columns of one episode (no video)."""
        rows = self.episode_rows(pos)
        return {k: v[rows] for k, v in self.columns.items()}

    def episode_column(self, name: str) -> np.ndarray | None:
        """A per-episode column of ``meta/episodes`` (one value per loaded episode, in order), or
        None when the dataset has no such column (e.g. ``seed`` or ``targets`` of ``wm collect``)."""
        return self._meta.get(name)

    def episode_stats(self) -> list[dict[str, dict[str, np.ndarray]]]:
        """Per-episode stats stored in the episode metadata (v3.0 datasets we wrote)."""
        out = []
        keys = [c for c in self._meta if c.startswith("stats/")]
        for i in range(self.num_episodes):
            ep: dict[str, dict[str, np.ndarray]] = {}
            for c in keys:
                feat, stat = c[len("stats/") :].rsplit("/", 1)
                shape = (3, 1, 1) if feat in self.video_keys and stat != "count" else (-1,)
                ep.setdefault(feat, {})[stat] = np.asarray(self._meta[c][i], np.float64).reshape(shape)
            out.append(ep)
        return out

    # -- frames -----------------------------------------------------------------------------

    def cameras(self, keys: tuple[str, ...] | list[str] = ()) -> tuple[str, ...]:
        """The cameras ``keys`` (default: the first one), checked: each a video feature of this
        dataset, all of one frame size (what several cameras through one encoder need)."""
        keys = tuple(keys) or tuple(self.video_keys[:1])
        if not keys:
            raise ValueError(f"{self.root} has no camera (video feature)")
        unknown = [k for k in keys if k not in self.video_keys]
        if unknown:
            raise ValueError(f"{self.root} has no camera {unknown}; its cameras are {self.video_keys}")
        sizes = {tuple(self.features[k]["shape"]) for k in keys}
        if len(sizes) > 1:
            raise ValueError(f"{self.root}: cameras {list(keys)} differ in frame size {sorted(sizes)}; several "
                             "cameras through one encoder need one size")  # fmt: skip
        return keys

    def camera_frames(self, keys: tuple[str, ...] | list[str], pos: int, frame_indices) -> np.ndarray:
        """Frames of several cameras stacked along the channels -> (n, H, W, 3K), in ``keys``' order
        (what an encoder with ``cameras = K`` takes; one key: ``frames``)."""
        return np.concatenate([self.frames(k, pos, frame_indices) for k in keys], axis=-1)

    def frames(self, key: str, pos: int, frame_indices: np.ndarray | list[int]) -> np.ndarray:
        """Frames of episode ``pos`` at ``frame_indices`` -> (n, H, W, 3) uint8."""
        idx = np.asarray(frame_indices, dtype=np.int64)
        n = int(self.lengths[pos])
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(
                f"frame indices {idx.tolist()} outside episode {self.episode_index[pos]} of {n} frames"
            )
        cache = self.frame_caches.get(key)
        if cache is not None:
            return cache.get(self.starts[pos] + idx)
        path, offset = self._meta[f"video/{key}"][pos]
        decoder = self._decoder(path)
        try:
            frames = decoder.get((offset + idx).tolist())
        except VideoError as e:
            raise fmt.DatasetError(f"episode {self.episode_index[pos]}: {e}") from e
        want = tuple(self.features[key]["shape"])
        if frames.shape[1:] != want:
            raise fmt.DatasetError(
                f"{path}: episode {self.episode_index[pos]} decodes to frames of shape {frames.shape[1:]}, "
                f"meta/info.json declares {want}"
            )
        return frames

    def _decoder(self, path: Path):
        if path in self._decoders:
            self._decoders.move_to_end(path)
            return self._decoders[path]
        try:
            dec = open_decoder(path, self.fps, self.video_backend)
        except (VideoError, FileNotFoundError) as e:
            eps = self._episodes_in_video(path)
            raise fmt.DatasetError(f"{path} (episodes {eps[:10]}): {e}") from e
        self._decoders[path] = dec
        if len(self._decoders) > 8:
            self._decoders.popitem(last=False)[1].close()
        return dec

    def _episodes_in_video(self, path: Path) -> list[int]:
        return [
            int(self.episode_index[i])
            for key in self.video_keys
            for i, (p, _) in enumerate(self._meta[f"video/{key}"])
            if p == path
        ]

    # -- queries (LeRobot delta-timestamps convention, in frames) ----------------------------

    def query(self, row: int, deltas: dict[str, list[int] | np.ndarray]) -> dict[str, np.ndarray]:
        """Values of each key at ``frame + delta`` in the row's episode, clamped to the episode,
        plus ``<key>_is_pad`` (True where the delta fell outside the episode)."""
        pos, frame = self.locate(row)
        n = int(self.lengths[pos])
        out: dict[str, np.ndarray] = {}
        for key, d in deltas.items():
            want = frame + np.asarray(d, dtype=np.int64)
            idx = np.clip(want, 0, n - 1)
            out[f"{key}_is_pad"] = (want < 0) | (want > n - 1)
            if key in self.video_keys:
                out[key] = self.frames(key, pos, idx)
            elif key in self.columns:
                out[key] = self.columns[key][self.starts[pos] + idx]
            else:
                raise KeyError(f"unknown feature {key!r}; this dataset has {sorted(self.features)}")
        return out

    # -- pickling for DataLoader workers: open files are per process -------------------------

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_decoders"] = OrderedDict()
        return state

    def close(self) -> None:
        for dec in self._decoders.values():
            dec.close()
        self._decoders.clear()

    # -- loading ----------------------------------------------------------------------------

    def _load_v3(self) -> tuple[dict[str, Any], list[pa.Table]]:
        total = int(self.info["total_episodes"])
        ep_dir = self.root / "meta" / "episodes"
        ep_files = sorted(ep_dir.glob("chunk-*/file-*.parquet"))
        if total and not ep_files:
            raise fmt.DatasetError(f"missing episode metadata: {ep_dir} has no parquet files")
        required = (
            "episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index", "dataset_to_index",
            *(f"videos/{k}/{c}" for k in self.video_keys for c in ("chunk_index", "file_index", "from_timestamp")),
        )  # fmt: skip
        parts, where = [], {}  # where: episode -> the metadata file listing it
        for p in ep_files:
            t = self._read_parquet(p)
            checks.check_columns(t, {}, p, required)
            eps = [int(e) for e in t.column("episode_index").to_pylist()]
            for e in checks.duplicates([e for e in eps if e < total]):
                raise fmt.DatasetError(f"{p}: episode {e} is listed twice")
            for e in eps:
                if e < total and e in where:
                    raise fmt.DatasetError(f"episode {e} is listed in both {where[e]} and {p}")
                where.setdefault(e, p)
            parts.append(t)
        try:
            rows = pa.concat_tables(parts, promote_options="default") if parts else None
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise fmt.DatasetError(f"{ep_dir}: episode metadata files disagree on their columns ({e})") from e
        rows_by_ep = (
            {}
            if rows is None
            else {int(e): i for i, e in enumerate(rows.column("episode_index").to_pylist()) if int(e) < total}
        )
        missing = [e for e in range(total) if e not in rows_by_ep]
        if missing:
            raise fmt.DatasetError(
                f"{self.info_path}: lists {total} episodes, the metadata in {ep_dir} lacks {missing[:10]}"
            )
        # only committed episodes (index < total_episodes) count: later rows are an interrupted write
        order = [rows_by_ep[e] for e in range(total)]
        meta: dict[str, Any] = {}
        if rows is not None:
            rows = rows.take(pa.array(order, pa.int64()))
            for name in rows.column_names:
                col = rows.column(name)
                meta[name] = (
                    np.asarray(col.to_pylist(), dtype=object)
                    if pa.types.is_list(col.type)
                    else _to_numpy(col)
                )
        else:
            meta = {"episode_index": np.zeros(0, np.int64), "length": np.zeros(0, np.int64)}
        meta["episode_index"] = np.asarray(meta["episode_index"], np.int64)
        meta["length"] = np.asarray(meta["length"], np.int64)
        checks.check_episode_table(meta, int(self.info["total_frames"]), str(ep_dir), self.info_path)
        data_cache: dict[Path, pa.Table] = {}
        tables = []
        for i, e in enumerate(meta["episode_index"]):
            path = self._path("data_path", chunk_index=int(meta["data/chunk_index"][i]),
                              file_index=int(meta["data/file_index"][i]))  # fmt: skip
            if path not in data_cache:
                fmt.require_file(path, f"data file of episode {e}")
                data_cache[path] = self._read_data(path, ("index",))
            t = data_cache[path]
            lo, hi = int(meta["dataset_from_index"][i]), int(meta["dataset_to_index"][i])
            index = t.column("index").to_numpy()
            sel = np.flatnonzero((index >= lo) & (index < hi))
            tables.append(self._episode_table(t.take(pa.array(sel)), int(e), int(meta["length"][i]), path))
        for key in self.video_keys:
            entries = []
            for i, e in enumerate(meta["episode_index"]):
                path = self._path("video_path", video_key=key, chunk_index=int(meta[f"videos/{key}/chunk_index"][i]),
                                  file_index=int(meta[f"videos/{key}/file_index"][i]))  # fmt: skip
                fmt.require_file(path, f"video file of episode {e} ({key})")
                start = float(meta[f"videos/{key}/from_timestamp"][i]) * self.fps
                if abs(start - round(start)) > 1e-3:
                    raise fmt.DatasetError(
                        f"{where[int(e)]}: episode {e} starts at {start / self.fps:.4f} s in {path}, which is not "
                        f"a frame at the fps {self.fps:g} of {self.info_path}"
                    )
                entries.append((path, round(start)))
            meta[f"video/{key}"] = entries
        tasks_path = self.root / "meta" / "tasks.parquet"
        self.tasks = {}
        if tasks_path.exists():
            t = self._read_parquet(tasks_path)
            name_col = "task" if "task" in t.column_names else "__index_level_0__"
            checks.check_columns(t, {}, tasks_path, (name_col, "task_index"))
            self.tasks = dict(zip(t.column(name_col).to_pylist(), t.column("task_index").to_pylist()))
        return meta, tables

    def _load_v21(self) -> tuple[dict[str, Any], list[pa.Table]]:
        ep_path = fmt.require_file(self.root / "meta" / "episodes.jsonl", "episode metadata")
        records = self._jsonl(ep_path, ("episode_index", "length"))
        for e in checks.duplicates([int(r["episode_index"]) for r in records]):
            raise fmt.DatasetError(f"{ep_path}: episode {e} is listed twice")
        if len(records) != int(self.info["total_episodes"]):
            raise fmt.DatasetError(
                f"{self.info_path}: total_episodes is {self.info['total_episodes']}, {ep_path} lists {len(records)}"
            )
        records.sort(key=lambda r: r["episode_index"])
        chunks_size = int(self.info.get("chunks_size", fmt.CHUNKS_SIZE))
        meta: dict[str, Any] = {
            "episode_index": np.array([r["episode_index"] for r in records], np.int64),
            "length": np.array([r["length"] for r in records], np.int64),
            "tasks": [r.get("tasks", []) for r in records],
        }
        checks.check_episode_table(meta, int(self.info["total_frames"]), str(ep_path), self.info_path)
        tables = []
        for r in records:
            e = int(r["episode_index"])
            path = self._path("data_path", episode_chunk=e // chunks_size, episode_index=e)
            fmt.require_file(path, f"data file of episode {e}")
            tables.append(self._episode_table(self._read_data(path, ()), e, int(r["length"]), path))
        for key in self.video_keys:
            entries = []
            for r in records:
                e = int(r["episode_index"])
                path = self._path(
                    "video_path", episode_chunk=e // chunks_size, video_key=key, episode_index=e
                )
                fmt.require_file(path, f"video file of episode {e} ({key})")
                entries.append((path, 0))
            meta[f"video/{key}"] = entries
        self.tasks = {}
        tasks_path = self.root / "meta" / "tasks.jsonl"
        if tasks_path.exists():
            for t in self._jsonl(tasks_path, ("task", "task_index")):
                self.tasks[t["task"]] = int(t["task_index"])
        return meta, tables

    def _path(self, template: str, **fields) -> Path:
        """A data or video file of the dataset from its ``info.json`` template, inside the root."""
        try:
            rel = self.info[template].format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise fmt.DatasetError(
                f"{self.info_path}: cannot fill {template} {self.info[template]!r} ({e})"
            ) from e
        return checks.inside(self.root, rel, template.removesuffix("_path"), self.info_path)

    def _jsonl(self, path: Path, required: tuple[str, ...]) -> list[dict]:
        out = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise fmt.DatasetError(f"{path}: line {n} is not valid JSON ({e})") from e
            if not isinstance(r, dict) or any(k not in r for k in required):
                raise fmt.DatasetError(
                    f"{path}: line {n} needs the keys {list(required)}, found {line[:80]!r}"
                )
            out.append(r)
        return out

    def _read_data(self, path: Path, required: tuple[str, ...]) -> pa.Table:
        """A data file, checked against the declared features (columns, dtypes, shapes)."""
        t = self._read_parquet(path)
        features = {
            k: f for k, f in self.features.items() if k not in ("index",) or "index" in t.column_names
        }
        checks.check_columns(t, features, path, required)
        return t

    def _read_parquet(self, path: Path) -> pa.Table:
        checks.inside(self.root, str(path.relative_to(self.root)), "metadata or data", self.info_path)
        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise fmt.DatasetError(f"{path}: unreadable parquet ({e})") from e

    def _episode_table(self, t: pa.Table, e: int, length: int, path: Path) -> pa.Table:
        if "episode_index" in t.column_names:
            t = t.filter(pa.compute.equal(t.column("episode_index"), e))
        if t.num_rows != length:
            raise fmt.DatasetError(
                f"{path}: episode {e} has {t.num_rows} frame rows, its metadata says length {length}"
            )
        if "frame_index" in t.column_names:
            fi = t.column("frame_index").to_numpy().ravel()
            if not np.array_equal(fi, np.arange(length)):
                i = int(np.argmax(fi != np.arange(length)))
                raise fmt.DatasetError(
                    f"{path}: episode {e} row {i} has frame_index {int(fi[i])}: rows must be frames 0..{length - 1} "
                    "in order, as the video holds them"
                )
        checks.check_timestamps(t, self.fps, path, e)
        for name in t.column_names:
            if name not in self.features or not pa.types.is_floating(
                checks.value_type(t.column(name).type)[0]
            ):
                continue
            x = _to_numpy(t.column(name)).astype(np.float64)
            bad = ~np.isfinite(x)
            if bad.any():
                row = int(np.argwhere(bad)[0][0])
                raise fmt.DatasetError(f"{path}: episode {e} has NaN/inf in {name!r} (frame {row})")
        return t

    def _assemble_columns(self, tables: list[pa.Table]) -> None:
        self.columns: dict[str, np.ndarray] = {}
        if not tables:
            return
        names = [n for n in tables[0].column_names if n in self.features and n not in self.video_keys]
        for name in names:
            parts = [_to_numpy(t.column(name)) for t in tables]
            arr = np.concatenate(parts) if parts else np.zeros(0)
            dtype = self.features[name]["dtype"]
            if dtype in ("float32", "float64", "int64", "int32", "bool"):
                arr = arr.astype(dtype, copy=False)
            self.columns[name] = arr

    def _check_video_headers(self) -> None:
        """Each video file must hold at least the frames the parquet metadata maps into it."""
        for key in self.video_keys:
            need: dict[Path, tuple[int, list[int]]] = {}
            for pos, (path, offset) in enumerate(self._meta[f"video/{key}"]):
                end = offset + int(self.lengths[pos])
                prev_end, eps = need.get(path, (0, []))
                need[path] = (max(prev_end, end), [*eps, int(self.episode_index[pos])])
            for path, (end, eps) in need.items():
                try:
                    facts = video_info(path)
                except (VideoError, FileNotFoundError) as e:
                    raise fmt.DatasetError(f"{path} (episodes {eps[:10]}): {e}") from e
                checks.check_video_header(facts, self.features[key], self.fps, path, eps)
                frames = facts["frames"]
                if frames and frames < end:
                    raise fmt.DatasetError(
                        f"{path}: frame-count mismatch: the parquet data of episodes {eps[:10]} needs "
                        f"{end} frames, the video holds {frames}"
                    )
