"""The goal-state read-out: the proprio state a single frame shows, read from its encoder features.

A planner turns a goal *image* into an estimate of the goal's proprio state with it, to compare
with the predictor's predicted states. Two kinds share one interface (features (B, F) -> encoded
states (B, E), ``dim_weights``, ``tensors()``): a ridge (``ridge.RidgeReadout``) and an MLP
(``mlp.MLPReadout``); ``fit.fit_readout`` fits one (``auto``: whichever reads held-out frames
better). States are encoded by ``codec.StateCodec`` (joint angles as (cos, sin)). Each dim carries
its held-out R^2 as its *trust*: what a single frame cannot show (velocities) gets no weight.

Legend: B batch, F flattened features (N * D), P raw state dim, E encoded state dim.
"""

from __future__ import annotations

from torch import Tensor

#: held-out R^2 below which a read dim gets no weight (and the MLP read-out does not read it), so
#: ridge and MLP trust the same dims; one frame shows velocities only through their correlation
#: with the pose
MIN_TRUST = 0.8


def trust(r2: Tensor) -> Tensor:
    """Per-dim held-out R^2 -> planning weights in [0, 1]: R^2, zero below ``MIN_TRUST``."""
    import torch

    return torch.where(r2 >= MIN_TRUST, r2.clamp(0.0, 1.0), torch.zeros_like(r2))
