"""Video files: writing RGB frames with PyAV, and decoding frames by index (decord or PyAV).

Encoding: H.264 by default, AV1 (``libsvtav1``, LeRobot's default) or lossless H.264 (RGB)
selectable. Frames get exact presentation times ``i / fps``, no B-frames and a fixed GOP, so many
episodes can share one file and frame ``i`` is found at time ``i / fps``.

Decoding frames by index: ``DecordDecoder`` is the fast path for random access to H.264;
``PyAVDecoder`` always works (AV1 included). ``open_decoder(path, "auto")`` uses decord when it
is installed and falls back to PyAV on any decord failure (missing wheel, AV1, odd files).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

#: codec presets: name -> (PyAV encoder, pixel format, encoder options, codec name in files)
CODECS: dict[str, tuple[str, str, dict[str, str], str]] = {
    "h264": ("libx264", "yuv420p", {"crf": "18", "preset": "veryfast", "tune": "zerolatency"}, "h264"),
    "av1": ("libsvtav1", "yuv420p", {"crf": "30", "preset": "8"}, "av1"),
    "h264-lossless": ("libx264rgb", "rgb24", {"crf": "0", "preset": "veryfast"}, "h264"),
}


class VideoError(RuntimeError):
    """A video file is missing, truncated, corrupt, or lacks requested frames."""


def write_video(
    path: str | Path, frames: Iterable[np.ndarray], fps: float, codec: str = "h264", gop: int = 10
) -> int:
    """Encode frames (each (H, W, 3) uint8; H, W even for yuv420p codecs) to ``path``.

    Frame ``i`` gets presentation time ``i / fps`` exactly. Returns the number of frames written.
    The file is written to ``<path>.tmp`` and renamed, so an interrupted write never leaves a
    truncated file under the final name.
    """
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(CODECS)}")
    if gop < 1:
        raise ValueError(f"gop must be >= 1, got {gop}")
    encoder, pix_fmt, options, _ = CODECS[codec]
    os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only, not its banner on every file
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    time_base = Fraction(1, round(fps))
    n = 0
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = None
            for frame in frames:
                frame = np.asarray(frame)
                if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                    raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
                if stream is None:
                    h, w = frame.shape[:2]
                    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
                        raise ValueError(f"{codec} needs even frame sizes, got {h}x{w}")
                    opts = {**options, "g": str(gop), "bf": "0"}
                    stream = container.add_stream(encoder, rate=round(fps), options=opts)
                    stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
                    stream.codec_context.time_base = time_base
                elif frame.shape[:2] != (stream.height, stream.width):
                    raise ValueError(
                        f"frame {n} is {frame.shape[:2]}, earlier frames {stream.height, stream.width}"
                    )
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                vf.pts, vf.time_base = n, time_base
                container.mux(stream.encode(vf))
                n += 1
            if stream is None:
                raise ValueError("no frames to write")
            container.mux(stream.encode())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return n


def read_video(path: str | Path) -> np.ndarray:
    """Decode every frame of a video file -> (T, H, W, 3) uint8 (sequential PyAV decode)."""
    with _open_av(path) as container:
        try:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
        except (av.error.FFmpegError, ValueError) as e:
            raise VideoError(f"{path}: cannot decode ({e})") from e


def video_info(path: str | Path) -> dict:
    """Cheap header facts: frames (as the container states), fps, width, height, codec."""
    with _open_av(path) as container:
        s = container.streams.video[0]
        return {
            "frames": int(s.frames),
            "fps": float(s.average_rate) if s.average_rate else None,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "codec": s.codec_context.name,
            "pix_fmt": s.codec_context.pix_fmt,
        }


def _open_av(path: str | Path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video file not found: {path}")
    try:
        container = av.open(str(path))
        if not container.streams.video:
            container.close()
            raise VideoError(f"{path}: no video stream")
        return container
    except av.error.FFmpegError as e:
        raise VideoError(f"{path}: cannot open as video (truncated or corrupt?): {e}") from e


class PyAVDecoder:
    """Frames by index with PyAV: seek to the keyframe before the first wanted frame, decode on.

    Works for every codec FFmpeg decodes (AV1 included). Frame ``i`` is the frame at ``i / fps``.
    """

    name = "pyav"

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.fps = fps
        self._container = _open_av(self.path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at file-level indices -> (n, H, W, 3) uint8, in the order asked."""
        wanted = sorted(set(int(i) for i in indices))
        if not wanted:
            raise ValueError("no frame indices given")
        found: dict[int, np.ndarray] = {}
        tb = self._stream.time_base
        try:
            self._container.seek(int(wanted[0] / self.fps / tb), stream=self._stream, backward=True)
            for frame in self._container.decode(self._stream):
                i = round(float(frame.pts * tb) * self.fps)
                if i in wanted:
                    found[i] = frame.to_ndarray(format="rgb24")
                if i >= wanted[-1]:
                    break
        except (av.error.FFmpegError, ValueError) as e:
            raise VideoError(f"{self.path}: decode failed near frame {wanted[0]} ({e})") from e
        missing = [i for i in wanted if i not in found]
        if missing:
            raise VideoError(
                f"{self.path}: frames {missing[:5]}{'...' if len(missing) > 5 else ''} not in the file"
            )
        return np.stack([found[int(i)] for i in indices])

    def close(self) -> None:
        self._container.close()


class DecordDecoder:
    """Frames by index with decord (fast random access for H.264; no AV1)."""

    name = "decord"

    def __init__(self, path: str | Path, fps: float):
        import decord  # optional: not every platform has wheels

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"video file not found: {self.path}")
        try:
            self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=1)
        except decord.DECORDError as e:  # e.g. AV1, which decord cannot decode
            raise VideoError(f"{self.path}: decord cannot open it ({str(e).splitlines()[0]})") from e
        self._len = len(self._reader)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = [int(i) for i in indices]
        if max(idx) >= self._len or min(idx) < 0:
            raise VideoError(f"{self.path}: frame index out of range [0, {self._len}) in {idx[:5]}")
        try:
            return self._reader.get_batch(idx).asnumpy()
        except Exception as e:
            raise VideoError(f"{self.path}: decord failed on frames {idx[:5]} ({e})") from e

    def close(self) -> None:
        self._reader = None


class FallbackDecoder:
    """decord first; on any decord failure (open or decode), PyAV for the rest of this file."""

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps = Path(path), fps
        self._inner: DecordDecoder | PyAVDecoder
        try:
            self._inner = DecordDecoder(path, fps)
        except FileNotFoundError:
            raise
        except Exception as e:  # ImportError, AV1, odd containers: all fall back
            logging.getLogger(__name__).debug("decord failed on %s (%s); using PyAV", path, e)
            self._inner = PyAVDecoder(path, fps)

    @property
    def name(self) -> str:
        return self._inner.name

    def get(self, indices: Sequence[int]) -> np.ndarray:
        if isinstance(self._inner, DecordDecoder):
            try:
                return self._inner.get(indices)
            except Exception as e:
                logging.getLogger(__name__).debug("decord decode failed on %s (%s); using PyAV", self.path, e)
                self._inner = PyAVDecoder(self.path, self.fps)
        return self._inner.get(indices)

    def close(self) -> None:
        self._inner.close()


BACKENDS = {"auto": FallbackDecoder, "decord": DecordDecoder, "pyav": PyAVDecoder}


def open_decoder(path: str | Path, fps: float, backend: str = "auto"):
    """A frame-by-index decoder for ``path``: ``auto`` (decord, else PyAV), ``decord`` or ``pyav``."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[backend](path, fps)
