"""Measuring a frozen encoder's representation: collapse, sensitivity to motion, linear probes.

A falling JEPA loss proves little (DESIGN.md: a prototype's loss fell while its features became
3x less sensitive to the moving object than at random init, and a linear probe could not tell).
These measure what planning needs:

* ``feature_std``: per-dimension std of layer-normed features across samples (0 = collapse);
* ``sensitivity``: how much features change between two clips of the same episode ``dt`` steps
  apart, relative to how much they vary across the batch (the feature scale); compare with the
  same architecture at random init;
* ``motion_change``: the same change in absolute terms (per-token layer-normed features have
  unit scale), so a wider spread across the batch (e.g. from an anti-collapse term) does not
  read as lower sensitivity;
* ``ridge_probe``: a linear read-out of a state (proprio, object pose) from frozen features, fit
  on some episodes and scored on held-out ones (R^2 and RMSE in state units).

Legend: B batch, T frames, N tokens, D width, F flattened feature size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


@torch.no_grad()
def frame_features(encoder, frames: Tensor, pool: int = 4) -> Tensor:
    """Single frames (B, C, H, W) in [0, 1] -> layer-normed tokens pooled to a ``pool`` x
    ``pool`` grid and flattened (B, pool*pool*D). Each frame is repeated to fill a tubelet."""
    cfg = encoder.cfg
    video = frames[:, None].expand(-1, cfg.tubelet, -1, -1, -1)  # (B, tubelet, C, H, W)
    z = encoder(video)[:, 0]  # (B, N, D)
    z = F.layer_norm(z, z.shape[-1:])
    g = cfg.grid
    z = z.transpose(1, 2).reshape(len(z), -1, g, g)  # (B, D, g, g)
    if pool < g:
        z = F.adaptive_avg_pool2d(z, pool)
    return z.flatten(1)


def pixel_features(frames: Tensor, size: int = 16) -> Tensor:
    """The raw-pixel baseline: frames (B, C, H, W) downsampled to size x size, flattened."""
    return F.adaptive_avg_pool2d(frames, size).flatten(1)


def feature_std(z: Tensor) -> float:
    """Mean over feature dims (and token positions) of the std across the batch: z (B, ..., D)."""
    z = F.layer_norm(z.float(), z.shape[-1:])
    return float(z.std(dim=0).mean())


def motion_change(z1: Tensor, z2: Tensor) -> float:
    """Mean |z2 - z1| of layer-normed features of paired clips: z1, z2 (B, ..., D)."""
    z1 = F.layer_norm(z1.float(), z1.shape[-1:])
    z2 = F.layer_norm(z2.float(), z2.shape[-1:])
    return float((z2 - z1).abs().mean().detach())


def sensitivity(z1: Tensor, z2: Tensor) -> float:
    """Feature change between paired clips relative to the batch's feature spread.

    z1, z2 (B, ..., D): features of clips at t and t + dt of the same episodes. Returns
    mean |z2 - z1| / mean |z1 - mean_batch(z1)| on layer-normed features.
    """
    z = F.layer_norm(z1.float(), z1.shape[-1:])
    spread = float((z - z.mean(dim=0, keepdim=True)).abs().mean().detach())
    return motion_change(z1, z2) / max(spread, 1e-8)


def ridge_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    lambdas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
) -> dict[str, float | list[float]]:
    """Ridge regression from features to targets, lambda chosen on a validation slice of the
    training set (by episode order), scored on the test set.

    Returns R^2 (mean over target dims and per dim) and RMSE per dim in target units.
    """  # fmt: skip
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    y_train, y_test = np.asarray(y_train, np.float64), np.asarray(y_test, np.float64)
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xt, xs = (x_train - mu) / sd, (x_test - mu) / sd
    ym = y_train.mean(0)
    n_val = max(len(xt) // 5, 1)
    fit_x, fit_y, val_x, val_y = xt[:-n_val], y_train[:-n_val] - ym, xt[-n_val:], y_train[-n_val:] - ym

    def solve(x, y, lam):
        n, f = x.shape
        if f <= n:
            return np.linalg.solve(x.T @ x + lam * n * np.eye(f), x.T @ y)
        return x.T @ np.linalg.solve(x @ x.T + lam * n * np.eye(n), y)  # dual form for wide features

    best = min(lambdas, key=lambda lam: ((val_x @ solve(fit_x, fit_y, lam) - val_y) ** 2).mean())
    w = solve(xt, y_train - ym, best)
    pred = xs @ w + ym
    resid = ((pred - y_test) ** 2).mean(0)
    var = y_test.var(0) + 1e-12
    r2 = 1 - resid / var
    return {
        "r2": float(r2.mean()),
        "r2_per_dim": r2.tolist(),
        "rmse_per_dim": np.sqrt(resid).tolist(),
        "lambda": best,
    }
