"""Fitting the goal-state read-out: which kind (``auto``, ``mlp``, ``ridge``), on which frames,
and how a fitted one is saved and loaded back.

Legend: F flattened features (N * D), E encoded state dim.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from worldmodel.data import LeRobotDataset
from worldmodel.data.features import FeatureStore, episode_features
from worldmodel.readout import MIN_TRUST
from worldmodel.readout.codec import StateCodec
from worldmodel.readout.mlp import MLPReadout
from worldmodel.readout.ridge import RidgeReadout

READOUTS = ("auto", "mlp", "ridge")


def fit_readout(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    seed: int = 0,
    progress: bool = False,
    mlp_steps: int | None = None,
):
    """A state read-out of ``kind`` fitted on (n, F) features -> (n, E) targets in random row
    order: ``ridge``, ``mlp``, or ``auto``: both, unless a short MLP fit reads no dim at all; the
    MLP is kept if its mean held-out R^2 on the dims it reads is at least the ridge's on them (all
    are scored on the same last slice of the rows; the dims the MLP leaves out are those a frame
    barely shows, e.g. velocities). ``mlp_steps``: the full MLP fit's optimiser steps (default
    ``MLPReadout.fit``'s).

    The short fit only says which dims are readable, not which read-out reads them better, so
    ``auto`` fits the full MLP whenever the short fit reads some dim."""
    if kind not in READOUTS:
        raise ValueError(f"unknown state read-out {kind!r}; choose one of {READOUTS}")
    if kind == "ridge":
        return RidgeReadout.fit(x, y)
    steps = {} if mlp_steps is None else {"steps": mlp_steps}
    screen = MLPReadout.screening(x, y, seed=seed, progress=progress)
    if kind == "mlp":
        return MLPReadout.fit(x, y, **steps, seed=seed, progress=progress, screen=screen)
    ridge = RidgeReadout.fit(x, y)
    if not bool((screen.r2 >= MIN_TRUST).any()):
        return ridge  # an MLP would read no dim
    mlp = MLPReadout.fit(x, y, **steps, seed=seed, progress=progress, screen=screen)
    r2_mlp, r2_ridge = r2_on_mlp_dims(mlp, ridge)
    return mlp if r2_mlp >= r2_ridge else ridge


def r2_on_mlp_dims(mlp, ridge: RidgeReadout) -> tuple[float, float]:
    """Mean held-out R^2 (clipped to [0, 1]) of an MLP read-out and a ridge on the dims the MLP
    reads: what ``auto`` compares."""
    read = mlp.kept
    return float(mlp.r2[read].clamp(0, 1).mean()), float(ridge.r2[read].clamp(0, 1).mean())


def readout_kind(readout) -> str:
    """``mlp`` or ``ridge``: what ``fit_readout`` returned (how to load it back)."""
    return "ridge" if isinstance(readout, RidgeReadout) else "mlp"


def readout_from_tensors(kind: str, t: dict[str, Tensor], device="cpu"):
    """A read-out saved with ``tensors()``; ``kind`` as ``readout_kind`` named it."""
    if kind == "ridge":
        return RidgeReadout.from_tensors(t, device)
    if kind == "mlp":
        return MLPReadout.from_tensors(t, device)
    raise ValueError(f"unknown state read-out {kind!r}; choose one of {READOUTS}")


def readout_rows(full: LeRobotDataset, held, frames: int = 4000, rng=None):
    """``frames`` dataset rows of the training episodes (not in ``held``), sorted, drawn with
    ``rng`` (a numpy Generator; default seeded with 0): the rows a feature read-out is fitted on."""
    rng = np.random.default_rng(0) if rng is None else rng
    held = set(int(e) for e in held)
    rows = np.concatenate([np.arange(int(s), int(s) + int(n)) for e, s, n in zip(full.episode_index, full.starts,
                           full.lengths) if int(e) not in held])  # fmt: skip
    return np.sort(rng.choice(rows, size=min(frames, len(rows)), replace=False))


def fit_feature_readout(
    store: FeatureStore, full: LeRobotDataset, rows, codec: StateCodec, kind: str = "auto", seed: int = 0,
    progress: bool = False,
):  # fmt: skip
    """Read-out of the encoded state from *stored* features (pooled, standardised: the space the
    predictor predicts in) of dataset ``rows`` (``readout_rows``); ``seed`` seeds the fit."""
    targets = codec.encode(torch.from_numpy(full.columns["observation.state"][rows]).float()).numpy()
    shuffle = np.random.default_rng(1).permutation(len(rows))  # the fit scores its last slice
    x = store.rows(rows[shuffle]).flatten(1).numpy()
    return fit_readout(kind, x, targets[shuffle], seed=seed, progress=progress)


#: memory for the goal read-out's features (float32)
READOUT_BYTES = 2 << 30


def readout_positions(
    train: LeRobotDataset, encoder, frames: int, image_keys: tuple[str, ...] = (), seed: int = 0
) -> list[int]:
    """The episode positions of ``train`` whose frames the goal read-out is fitted on: whole random
    episodes until about ``frames`` frames, fewer where the float32 full-grid features ``encoder``
    gives of its cameras ``image_keys`` (default one) would pass ``READOUT_BYTES``."""
    feature_size = encoder.cfg.embed_dim or (len(image_keys) or 1) * encoder.cfg.grid**2 * encoder.cfg.dim
    order = np.random.default_rng(seed).permutation(train.num_episodes)
    frames = min(frames, train.num_frames, max(1, READOUT_BYTES // (4 * feature_size)))
    total = np.cumsum(train.lengths[order])
    return [int(p) for p in order[: int(np.searchsorted(total, frames)) + 1]]


def fit_goal_readout(
    train: LeRobotDataset, encoder, device, codec: StateCodec, *, kind: str, frames: int, mlp_steps: int,
    seed: int = 0, progress: bool = False, image_keys: tuple[str, ...] = (), encoded: dict | None = None,
):  # fmt: skip
    """Read-out (``kind``: auto, mlp or ridge; an MLP fitted with ``mlp_steps``) of the encoded
    proprio state from full-grid features of ``readout_positions``' training episodes (each
    decoded in one batch; the fits hold a few copies of their features). ``encoded``: those
    episodes' full-grid features already computed, ``{episode index: (n, F)}`` (what
    ``FeatureStore.build`` keeps when asked), so their frames are not encoded again."""
    positions = readout_positions(train, encoder, frames, image_keys, seed)
    feats = dict(encoded or {})  # by episode index
    todo = [p for p in positions if int(train.episode_index[p]) not in feats]
    bar = tqdm(total=int(train.lengths[todo].sum()), desc="goal read-out: encoding frames", unit="frame",
               disable=not progress or not todo, leave=False)  # fmt: skip
    for p, (z, _) in zip(todo, episode_features(train, encoder, todo, device, image_keys)):
        feats[int(train.episode_index[p])] = z
        bar.update(len(z))
    bar.close()
    feats = [feats[int(train.episode_index[p])] for p in positions]
    states = [train.columns["observation.state"][train.episode_rows(p)] for p in positions]
    # shuffle rows so the held-out slice of the fit is not a block of similar frames
    x, y = torch.cat(feats).numpy(), codec.encode(torch.from_numpy(np.concatenate(states)).float()).numpy()
    perm = np.random.default_rng(seed + 1).permutation(len(x))
    return fit_readout(kind, x[perm], y[perm], seed=seed, progress=progress, mlp_steps=mlp_steps)
