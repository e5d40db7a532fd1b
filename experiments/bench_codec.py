"""What lossy video costs at 64x64: per-pixel error on the small moving objects, and size.

Collects episodes losslessly, re-encodes the exact frames with each codec, and compares, in one
run: mean absolute error over all pixels and over object pixels (where the frame differs from the
task's empty background by more than 24 levels), the shift of the object's intensity-weighted
centroid in pixels, and bytes per frame.

    python experiments/bench_codec.py                        # point mass and PushT, 20 episodes
    python experiments/bench_codec.py --tasks reacher umaze --episodes 40
    python experiments/bench_codec.py --tasks pointmass --episodes 5
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from envs.collect import CollectConfig, collect
from worldmodel.data import LeRobotDataset
from worldmodel.data.video import CODECS, read_video, write_video


@dataclass(frozen=True)
class BenchCodecConfig:
    """What lossy video costs at 64x64: per-pixel error on the small moving objects, and size."""

    tasks: tuple[str, ...] = ("pointmass", "pusht")
    """tasks to collect, as task ids or short names (pointmass, reacher, umaze, pusht, pushbox)"""
    episodes: int = 20
    """episodes collected per task (100 steps each), re-encoded with every codec"""


def centroid(diff: np.ndarray) -> np.ndarray:
    """(T, H, W) non-negative weights -> (T, 2) weighted centroids (row, col)."""
    yy, xx = np.mgrid[0 : diff.shape[1], 0 : diff.shape[2]]
    w = diff.sum(axis=(1, 2)) + 1e-9
    return np.stack([(diff * yy).sum(axis=(1, 2)) / w, (diff * xx).sum(axis=(1, 2)) / w], axis=1)


def main(cfg: BenchCodecConfig) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench_codec_"))
    print("| task | codec | MAE all pixels | MAE object pixels | object centroid shift (px) | bytes/frame |")
    print("|---|---|---|---|---|---|")
    for task in cfg.tasks:
        root = tmp / task
        collect(
            CollectConfig(
                task=task, episodes=cfg.episodes, steps=100, out=root, codec="h264-lossless", progress=False
            )
        )
        ds = LeRobotDataset(root)
        key = ds.video_keys[0]
        frames = np.concatenate([ds.frames(key, e, np.arange(ds.lengths[e])) for e in range(ds.num_episodes)])
        background = np.median(frames, axis=0)  # the objects move; the arena does not
        obj = np.abs(frames.astype(np.float64) - background).sum(-1)  # (T, H, W)
        mask = obj > 24
        ref_c = centroid(obj * mask)
        for codec in CODECS:
            path = tmp / f"{task}-{codec}.mp4"
            write_video(path, frames, fps=20, codec=codec)
            back = read_video(path).astype(np.float64)
            err = np.abs(back - frames).mean(-1)
            obj_b = np.abs(back - background).sum(-1)
            shift = np.linalg.norm(centroid(obj_b * mask) - ref_c, axis=1)
            print(
                f"| {task} | {codec} | {err.mean():.2f} | {err[mask].mean():.2f} | "
                f"{shift.mean():.3f} (max {shift.max():.2f}) | {path.stat().st_size / len(frames):.0f} |"
            )


if __name__ == "__main__":
    main(tyro.cli(BenchCodecConfig))
