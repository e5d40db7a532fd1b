"""Clip-sampling throughput: our clip sampler (cached, uncached) against plain decord.

Builds (or reuses) a point-mass dataset of 64x64 H.264 video, then, in one run and one process,
samples random 16-frame clips with: plain decord random access on the same files (readers
opened once, ``get_batch`` of 16 consecutive frames), our ``ClipDataset`` uncached with the
decord backend, uncached with PyAV, and with the decoded-frame cache. Prints clips/s, frames/s
and the ratio to plain decord.

    python experiments/bench_clips.py                          # collects 100 episodes x 100 steps
    python experiments/bench_clips.py --dataset data/pointmass --clips 2000
    python experiments/bench_clips.py --episodes 20 --clips 200
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from envs.collect import CollectConfig, collect
from worldmodel.data import ClipDataset, ClipSpec, LeRobotDataset

CLIP = 16


@dataclass(frozen=True)
class BenchClipsConfig:
    """Clip-sampling throughput: our clip sampler (cached, uncached) against plain decord."""

    dataset: Path | None = None
    """an existing LeRobot dataset to sample from (default: collect a point-mass one in a temp dir)"""
    episodes: int = 100
    """episodes to collect when no --dataset is given"""
    clips: int = 1000
    """random 16-frame clips timed per sampler (after one warm-up clip)"""


def bench(fn, n: int) -> float:
    fn(0)  # warm-up
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - t)


def main(cfg: BenchClipsConfig) -> dict[str, float]:
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_clips_"))
    root = cfg.dataset
    if root is None:
        root = tmp / "pointmass"
        t = time.perf_counter()
        collect(CollectConfig(task="pointmass", episodes=cfg.episodes, steps=100, out=root, workers=2))
        print(f"# collected {cfg.episodes} episodes in {time.perf_counter() - t:.1f} s")
    ds = LeRobotDataset(root)
    key = ds.video_keys[0]
    print(
        f"# {root}: {ds.num_episodes} episodes, {ds.num_frames} frames, {ds.features[key]['shape']}, "
        f"codec {ds.features[key]['info']['video.codec']}"
    )
    rng = np.random.default_rng(0)
    spec = ClipSpec(context=1, future=CLIP - 1)

    # plain decord: random clip = random episode, random start, get_batch of 16 frames
    import decord

    readers = {
        path: decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        for path in {p for p, _ in ds._meta[f"video/{key}"]}
    }
    picks = [
        (int(e), int(rng.integers(0, ds.lengths[e] - CLIP + 1)))
        for e in rng.integers(0, ds.num_episodes, cfg.clips + 1)
    ]

    def plain(i):
        e, s = picks[i]
        path, offset = ds._meta[f"video/{key}"][e]
        return readers[path].get_batch(list(range(offset + s, offset + s + CLIP))).asnumpy()

    results = {"plain decord": bench(plain, cfg.clips)}
    order = rng.permutation(10**9)[: cfg.clips + 1]
    for name, backend, cache in [
        ("ours, decord backend", "auto", False),
        ("ours, PyAV backend", "pyav", False),
    ]:
        clips = ClipDataset(LeRobotDataset(root, video_backend=backend), spec, cache=cache)
        results[name] = bench(lambda i, c=clips: c[int(order[i] % len(c))], cfg.clips)
    t = time.perf_counter()
    cached = ClipDataset(LeRobotDataset(root), spec, cache=True, cache_dir=tmp / "cache")
    build = time.perf_counter() - t
    results["ours, frame cache"] = bench(lambda i: cached[int(order[i] % len(cached))], cfg.clips)
    print(
        f"# frame cache built in {build:.1f} s ({ds.num_frames / build:.0f} frames/s, one sequential decode)"
    )
    print(f"| sampler ({CLIP}-frame 64x64 clips, 1 process) | clips/s | frames/s | vs plain decord |")
    print("|---|---|---|---|")
    base = results["plain decord"]
    for name, rate in results.items():
        print(f"| {name} | {rate:.0f} | {rate * CLIP:.0f} | {rate / base:.2f}x |")
    return results


if __name__ == "__main__":
    main(tyro.cli(BenchClipsConfig))
