"""The cost landscape: does a world model's latent distance order states as the simulator does?

The diagnostic that says why a cost plans or does not. Two measures:

- **frame order**: for goal frames of held-out episodes, the Spearman rank correlation between
  the latent distance of held-out frames to the goal frame (the planner's metric, on encoded
  frames) and their true state distance to it (the task's goal distance on the recorded physics
  states); the mean over goals. 1: the latent distance ranks frames exactly by true distance.
- **candidate order**: from one start, random candidate plans scored by a world-model cost and
  by the true simulator (the oracle cost: the true final distance); the share of candidate pairs
  the model orders as the simulator does. 0.5 is chance; 1 means CEM's elite choice is the
  simulator's.

``wm eval`` reports the candidate order of each model row per episode (``pair order``);
``experiments/landscape.py`` runs both for several world models side by side.

Legend: S candidates, H horizon (model steps), A model action dim, F frames, P state dim.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of a 1-D array, ties given their mean rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x), np.float64)
    r[order] = np.arange(len(x))
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=r)
    return sums[inverse] / counts[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two equal-length 1-D arrays (nan when either is constant)."""
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def pair_agreement(model: np.ndarray, truth: np.ndarray) -> float:
    """Share of pairs (i, j) that ``model`` orders as ``truth`` does, over the pairs ``truth``
    does not tie (nan if it ties all); ties in ``model`` count half."""
    m, t = np.asarray(model, np.float64), np.asarray(truth, np.float64)
    dm = np.sign(m[:, None] - m[None, :])
    dt = np.sign(t[:, None] - t[None, :])
    upper = np.triu(np.ones_like(dt, dtype=bool), k=1) & (dt != 0)
    if not upper.any():
        return float("nan")
    score = np.where(dm == dt, 1.0, np.where(dm == 0, 0.5, 0.0))
    return float(score[upper].mean())


def random_candidates(samples: int, horizon: int, action_dim: int, generator: torch.Generator) -> Tensor:
    """Uniform candidate plans in the action box [-1, 1] -> (S, H, A)."""
    return torch.rand(samples, horizon, action_dim, generator=generator) * 2.0 - 1.0


def candidate_order(model_cost, true_cost, candidates: Tensor) -> float:
    """Share of candidate pairs a model cost orders as the true cost does: both (S, H, A) -> (S,)."""
    with torch.no_grad():
        m = model_cost(candidates).cpu().numpy()
        t = true_cost(candidates).cpu().numpy()
    return pair_agreement(m, t)


@torch.no_grad()
def frame_order(wm, dataset, task, *, goals: int = 20, frames: int = 200, metric: str = "l2",
                seed: int = 0) -> dict:  # fmt: skip
    """Frame order on ``dataset``'s episodes (pass the held-out ones): ``goals`` goal frames and
    ``frames`` other frames drawn at random; ``task`` the unwrapped env (its ``goal_from_state``
    and ``goal_distance`` give the true distance). -> {"spearman": mean over goals, "per_goal":
    [...], "goals": n, "frames": n}."""
    if "observation.environment_state" not in dataset.columns:
        raise ValueError(
            f"{dataset.root} has no observation.environment_state: the true distance needs physics states"
        )
    rng = np.random.default_rng(seed)
    n = dataset.num_frames
    rows = rng.choice(n, size=min(n, frames + goals), replace=False)
    goal_rows, other_rows = rows[:goals], rows[goals:]
    phys = dataset.columns["observation.environment_state"]
    z = encode_rows(wm, dataset, rows)  # (F, N, D)
    zg, zo = z[: len(goal_rows)], z[len(goal_rows) :]
    per_goal = []
    for i, g in enumerate(goal_rows):
        goal = task.goal_from_state(phys[g])
        true = np.array([task.goal_distance(phys[r], goal) for r in other_rows])
        lat = wm.distance(zo, zg[i], metric).cpu().numpy()
        rho = spearman(lat, true)
        if np.isfinite(rho):
            per_goal.append(rho)
    return {"spearman": float(np.mean(per_goal)) if per_goal else float("nan"), "per_goal": per_goal,
            "goals": len(per_goal), "frames": len(other_rows)}  # fmt: skip


def encode_rows(wm, dataset, rows: np.ndarray, batch: int = 256) -> Tensor:
    """The world model's encoding (standardised, pooled: what the planner compares) of dataset
    rows -> (F, N, D), in the order given."""
    out = []
    for row in rows:
        pos, frame = dataset.locate(int(row))
        out.append(wm.dataset_frames(dataset, pos, [frame])[0])  # the cameras the model sees
    imgs = np.stack(out)  # (F, H, W, 3K) uint8
    return torch.cat([wm.encode(imgs[i : i + batch]) for i in range(0, len(imgs), batch)])
