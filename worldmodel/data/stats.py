"""Per-feature statistics (min/max/mean/std/count), per episode and aggregated.

Vectors get statistics per dimension; images per channel, on values scaled to [0, 1], with shape
(3, 1, 1) as LeRobot stores them. Aggregation combines per-episode means and variances exactly
(the parallel-variance formula), so the dataset's stats never need a second pass over frames.
"""

from __future__ import annotations

import numpy as np

STATS = ("min", "max", "mean", "std", "count")


def feature_stats(x: np.ndarray, is_image: bool) -> dict[str, np.ndarray]:
    """Stats of one episode's values: vectors (T, ...) over T; images (T, H, W, 3) per channel."""
    if is_image:
        x = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0  # (T*H*W, 3)
        keep = (3, 1, 1)
    else:
        x = x.reshape(len(x), -1).astype(np.float64)  # (T, D)
        keep = (x.shape[1],)
    return {
        "min": x.min(axis=0).reshape(keep),
        "max": x.max(axis=0).reshape(keep),
        "mean": x.mean(axis=0).reshape(keep),
        "std": x.std(axis=0).reshape(keep),
        "count": np.array([len(x)]),
    }


def aggregate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine stats of disjoint parts into the stats of their union (exact)."""
    if not parts:
        raise ValueError("no stats to aggregate")
    counts = np.array([float(p["count"][0]) for p in parts])
    total = counts.sum()
    w = (counts / total).reshape(-1, *([1] * parts[0]["mean"].ndim))
    means = np.stack([p["mean"] for p in parts])
    mean = (w * means).sum(axis=0)
    second = (w * (np.stack([p["std"] for p in parts]) ** 2 + means**2)).sum(axis=0)
    return {
        "min": np.min(np.stack([p["min"] for p in parts]), axis=0),
        "max": np.max(np.stack([p["max"] for p in parts]), axis=0),
        "mean": mean,
        "std": np.sqrt(np.maximum(second - mean**2, 0.0)),
        "count": np.array([int(total)]),
    }


def to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}
