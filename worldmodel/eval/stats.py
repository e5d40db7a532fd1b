"""Statistics of success rates: Wilson intervals, and paired comparisons of two planners or
models that played the same episodes (Newcombe's interval on the difference, exact McNemar)."""

from __future__ import annotations

import math


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
