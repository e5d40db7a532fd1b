"""Deterministic train / held-out splits by episode."""

from __future__ import annotations

import numpy as np

#: share of a dataset's episodes held out of training (never trained on; dataset goals come from them)
HELD_OUT = 0.1


def split_episodes(episode_index: np.ndarray, held_out: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, held-out) episode indices: a fixed random ``held_out`` fraction (at least one
    episode when ``held_out > 0`` and there are two or more), the same for the same seed."""
    eps = np.sort(np.asarray(episode_index))
    if not 0.0 <= held_out < 1.0:
        raise ValueError(f"held_out must be in [0, 1), got {held_out}")
    n_held = round(held_out * len(eps))
    if held_out > 0 and len(eps) >= 2:
        n_held = max(n_held, 1)
    perm = np.random.default_rng(seed).permutation(len(eps))
    held = np.sort(eps[perm[:n_held]])
    train = np.setdiff1d(eps, held)
    return train.tolist(), held.tolist()
