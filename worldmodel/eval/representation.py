"""Measuring a frozen encoder's representation: collapse, sensitivity to motion, linear probes.

A falling JEPA loss proves little: features can drift towards the static background while the
loss falls, and a linear probe may not tell. These measure what planning needs:

* ``feature_std``: per-dimension std of layer-normed features across samples (0 = collapse);
* ``sensitivity``: how much features change between two clips of the same episode ``dt`` steps
  apart, relative to how much they vary across the batch (the feature scale); compare with the
  same architecture at random init;
* ``motion_change``: the same change in absolute terms (per-token layer-normed features have
  unit scale), so a wider spread across the batch (e.g. from an anti-collapse term) does not
  read as lower sensitivity;
* ``linear_probe``: a linear read-out of a state (proprio, object pose) from frozen features, fit
  on some episodes and scored on held-out ones (R^2 and RMSE in state units); features of single
  frames come from ``worldmodel.encoder.encode_frames``.

Legend: B batch, T frames, N tokens, D width, F flattened feature size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from worldmodel.readout.ridge import RidgeReadout


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


def linear_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    lambdas: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
) -> dict[str, float | list[float]]:
    """A linear read-out of targets from features (the ridge of ``worldmodel.readout.ridge``,
    lambda chosen on the last fifth of the training rows), scored on the test rows.

    Returns R^2 (mean over target dims and per dim) and RMSE per dim in target units.
    """  # fmt: skip
    readout = RidgeReadout.fit(x_train, y_train, held_out=0.2, lambdas=lambdas)
    pred = readout(torch.as_tensor(np.asarray(x_test), dtype=torch.float32)).double().numpy()
    y_test = np.asarray(y_test, np.float64)
    resid = ((pred - y_test) ** 2).mean(0)
    r2 = 1 - resid / (y_test.var(0) + 1e-12)
    return {"r2": float(r2.mean()), "r2_per_dim": r2.tolist(), "rmse_per_dim": np.sqrt(resid).tolist(),
            "lambda": readout.lam}  # fmt: skip
