"""Writing RGB frames to video files with PyAV (H.264 by default, AV1 or lossless selectable)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np

#: codec presets: name -> (PyAV encoder, pixel format, encoder options)
CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "h264": ("libx264", "yuv420p", {"crf": "18", "preset": "veryfast"}),
    "av1": ("libsvtav1", "yuv420p", {"crf": "30", "preset": "10"}),
    "h264-lossless": ("libx264rgb", "rgb24", {"crf": "0", "preset": "veryfast"}),
}


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, codec: str = "h264") -> int:
    """Encode frames (each (H, W, 3) uint8, H and W even for yuv420p codecs) to ``path``.

    Returns the number of frames written. The file is written to ``path.tmp`` first and renamed,
    so an interrupted write never leaves a truncated file under the final name.
    """
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {sorted(CODECS)}")
    encoder, pix_fmt, options = CODECS[codec]
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
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
                stream = container.add_stream(encoder, rate=round(fps), options=options)
                stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            n += 1
        if stream is None:
            raise ValueError("no frames to write")
        container.mux(stream.encode())
    tmp.replace(path)
    return n


def read_video(path: str | Path) -> np.ndarray:
    """Decode every frame of a video file -> (T, H, W, 3) uint8 (sequential PyAV decode)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
