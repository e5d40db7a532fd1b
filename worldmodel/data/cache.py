"""A decoded-frame cache: every frame of one camera, decoded once, in a uint8 memory map.

At small resolutions (64x64: 12 KiB a frame) a whole dataset's frames fit on disk and in the
page cache, and reading a clip becomes a memory copy instead of a seek + decode. The cache lives
outside the dataset directory (reading never writes there), under a key derived from the
dataset's path, its ``info.json``, where each episode lies in which video file, and the sizes and
times of the video files and every metadata file, so a changed or edited dataset gets a new cache.
Building it is the expensive check of a dataset: every frame is decoded once, and a file that
decodes to fewer frames than its episodes need, or to frames of another size than ``info.json``
declares, is a ``DatasetError``. It is built atomically (written to a temporary file, then renamed).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from worldmodel.data.format import DatasetError
from worldmodel.data.video import VideoError, read_video


def default_cache_dir() -> Path:
    """``$WM_CACHE_DIR``, else ``~/.cache/vjepa-worldmodels/frames``."""
    return Path(os.environ.get("WM_CACHE_DIR", Path.home() / ".cache" / "vjepa-worldmodels" / "frames"))


#: ``cache="auto"`` caches cameras up to this many pixels per frame ...
AUTO_MAX_PIXELS = 128 * 128
#: ... and up to this many bytes per camera
AUTO_MAX_BYTES = 16 * 2**30


def _fingerprint(dataset, key: str) -> str:
    h = hashlib.sha1()
    h.update(str(dataset.root.resolve()).encode())
    h.update(json.dumps(dataset.info, sort_keys=True).encode())
    h.update(key.encode())
    h.update(np.asarray(dataset.episode_index).tobytes())
    h.update(np.asarray(dataset.lengths).tobytes())
    h.update(
        repr([(str(p), int(o)) for p, o in dataset._meta[f"video/{key}"]]).encode()
    )  # where each episode is
    meta_files = sorted((dataset.root / "meta").rglob("*"))
    for path in sorted({p for p, _ in dataset._meta[f"video/{key}"]}) + [
        p for p in meta_files if p.is_file()
    ]:
        st = path.stat()
        h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


class FrameCache:
    """All frames of camera ``key`` of a dataset, in dataset row order: (N, H, W, 3) uint8."""

    def __init__(self, dataset, key: str, cache_dir: str | Path | None = None, progress: bool = True):
        if key not in dataset.video_keys:
            raise KeyError(f"{key!r} is not a video feature of {dataset.root}: {dataset.video_keys}")
        self.key = key
        h, w, c = dataset.features[key]["shape"]
        self.shape = (dataset.num_frames, int(h), int(w), int(c))
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.path = cache_dir / f"{_fingerprint(dataset, key)}.u8"
        if not self.path.exists() or self.path.stat().st_size != int(np.prod(self.shape)):
            self._build(dataset, progress)
        self._array: np.memmap | None = None

    @staticmethod
    def wanted(dataset, key: str, mode: bool | str) -> bool:
        """Whether ``cache=mode`` ("auto", True, False) caches camera ``key`` of ``dataset``."""
        if mode == "auto":
            h, w, c = dataset.features[key]["shape"]
            return h * w <= AUTO_MAX_PIXELS and dataset.num_frames * h * w * c <= AUTO_MAX_BYTES
        return bool(mode)

    def _build(self, dataset, progress: bool) -> None:
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=self.shape)
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for pos, (path, offset) in enumerate(dataset._meta[f"video/{self.key}"]):
            by_file.setdefault(path, []).append((pos, offset))
        bar = tqdm(
            total=self.shape[0], desc=f"caching {self.key}", unit="frame", disable=not progress, leave=False
        )
        try:
            for path, eps in by_file.items():
                try:
                    frames = read_video(path)  # sequential decode: the fast way through a file
                except VideoError as e:
                    raise DatasetError(
                        f"{e} (episodes {[int(dataset.episode_index[p]) for p, _ in eps][:10]})"
                    ) from e
                if frames.shape[1:] != self.shape[1:]:
                    raise DatasetError(
                        f"{path}: decodes to frames of shape {frames.shape[1:]}, meta/info.json declares "
                        f"{self.shape[1:]} for {self.key}"
                    )
                for pos, offset in eps:
                    n = int(dataset.lengths[pos])
                    if offset + n > len(frames):
                        raise DatasetError(
                            f"{path}: episode {dataset.episode_index[pos]} needs frames {offset}..{offset + n - 1}, "
                            f"the file decodes to {len(frames)}"
                        )
                    start = int(dataset.starts[pos])
                    out[start : start + n] = frames[offset : offset + n]
                    bar.update(n)
            out.flush()
            del out
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            bar.close()

    def get(self, rows: np.ndarray) -> np.ndarray:
        """Frames at dataset rows -> (n, H, W, 3) uint8 (a copy)."""
        if self._array is None:
            self._array = np.memmap(self.path, dtype=np.uint8, mode="r", shape=self.shape)
        return np.array(self._array[np.asarray(rows)])

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_array"] = None  # re-mapped lazily in each DataLoader worker
        return state
