"""Reporting helpers for evaluations: Wilson intervals, paired comparisons, Markdown tables, videos, cost plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_interval(
    both: int, a_only: int, b_only: int, neither: int, z: float = 1.96
) -> tuple[float, float]:
    """95% interval for success(A) - success(B) when A and B played the same episodes.

    Newcombe's hybrid score interval for paired proportions (Statistics in Medicine 17:2635,
    1998, method 10): the two Wilson intervals, combined with the correlation of the paired
    outcomes.
    Pairing is what makes a few points separable: the episodes both solve (or both fail) carry
    no information about the difference.
    """
    n = both + a_only + b_only + neither
    if n == 0:
        return -1.0, 1.0
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = wilson_interval(both + a_only, n, z)
    l2, u2 = wilson_interval(both + b_only, n, z)
    margins = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = (both * neither - a_only * b_only) / math.sqrt(margins) if margins else 0.0
    d = p1 - p2
    lo = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    hi = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    return max(-1.0, d - lo), min(1.0, d + hi)


def mcnemar_exact_p(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: how often a split of the discordant episodes at least this
    uneven would happen if A and B were equally good (each discordant episode a fair coin)."""
    m = a_only + b_only
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, k) for k in range(min(a_only, b_only) + 1)) / 2**m
    return min(1.0, 2 * tail)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def upscale(img: np.ndarray, k: int) -> np.ndarray:
    return img.repeat(k, axis=0).repeat(k, axis=1)


def caption(img: np.ndarray, text: str) -> np.ndarray:
    """A copy of img (H, W, 3) uint8 with a caption bar below it."""
    from PIL import Image, ImageDraw

    h, w = img.shape[:2]
    canvas = Image.new("RGB", (w, h + 14), (20, 20, 20))
    canvas.paste(Image.fromarray(img), (0, 0))
    ImageDraw.Draw(canvas).text((3, h + 1), text, fill=(235, 235, 235))
    return np.asarray(canvas)


def episode_frames(
    observations: list[np.ndarray], goal: np.ndarray, costs: list[float], block: int, scale: int = 3
):
    """Video frames: observation | goal, each step captioned with the current plan's predicted cost."""
    goal_up = upscale(goal, scale)
    for t, obs in enumerate(observations):
        c = costs[min(t // block, len(costs) - 1)] if costs else float("nan")
        label = f"observation | goal   t={t + 1}" + (f"  plan cost {c:.3g}" if math.isfinite(c) else "")
        frame = np.concatenate([upscale(obs, scale), goal_up], axis=1)
        frame = caption(frame, label)
        yield frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]


def plot_cost_histories(path: Path, curves: dict[str, np.ndarray], title: str) -> bool:
    """Mean best cost per planner iteration, one line per row; False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, curve in curves.items():
        if len(curve):
            ax.plot(np.arange(1, len(curve) + 1), curve / max(abs(curve[0]), 1e-12), label=name)
    ax.set_xlabel("planner iteration")
    ax.set_ylabel("best cost / first iteration's")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
