"""3D rotary position embedding over (time, height, width) token grids.

Each attention head's dimension is split into three equal even parts, rotated by the token's
time, row and column positions respectively (standard RoPE frequencies ``base^(-2i/d)`` per
part); leftover dimensions (when the head dimension is not a multiple of 6) stay unrotated.
Positions may be fractional (e.g. a pooled grid) and need not be on a full grid, so the same
code serves masked token subsets, pooled grids and per-frame action/state tokens (time only).

``variant="official"`` reproduces the public V-JEPA 2 code exactly, for its checkpoints: the same
axis blocks and frequencies, but within each axis block the ``d/2`` frequencies are tiled
(``f_0 .. f_{d/2-1}, f_0 .. f_{d/2-1}``) over the ``d`` dims instead of shared by each rotated
pair, so the two elements of a pair turn by different angles (a known quirk kept there for
checkpoint compatibility). Our default pairs them properly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def axis_dim(head_dim: int) -> int:
    """Rotated dimensions per axis (even)."""
    return 2 * ((head_dim // 3) // 2)


def rope_angles(pos: Tensor, head_dim: int, base: float = 10000.0, variant: str = "ours") -> Tensor:
    """Rotation angles for positions.

    ``ours``: pos (..., 3) float (t, h, w) -> angles (..., head_dim // 2), one per rotated pair:
    the first ``3 * axis_dim / 2`` entries rotate the pairs of the first ``3 * axis_dim`` dims
    (time, then height, then width); the rest are zero (no rotation).
    ``official``: -> angles (..., head_dim), one per dim (the public V-JEPA 2 layout).
    """
    d = axis_dim(head_dim)
    freqs = base ** (-torch.arange(0, d, 2, dtype=torch.float32, device=pos.device) / d)  # (d/2,)
    ang = pos.float()[..., :, None] * freqs  # (..., 3, d/2)
    if variant == "official":
        ang = torch.cat([ang, ang], dim=-1)  # (..., 3, d): frequencies tiled over each axis block
    elif variant != "ours":
        raise ValueError(f"unknown rope variant {variant!r}; use 'ours' or 'official'")
    ang = ang.flatten(-2)  # (..., 3 * d/2) or (..., 3 * d)
    width = head_dim if variant == "official" else head_dim // 2
    pad = width - ang.shape[-1]
    if pad:
        ang = torch.cat([ang, ang.new_zeros(*ang.shape[:-1], pad)], dim=-1)
    return ang


def apply_rope(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate x (..., N, head_dim) by angles broadcastable to (..., N, head_dim // 2) (one per
    pair of adjacent dims (2i, 2i+1)) or (..., N, head_dim) (one per dim, the official variant)."""
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    if angles.shape[-1] == x.shape[-1]:  # per dim: out = x cos + rot90(x) sin
        rotated = torch.stack((-x2, x1), dim=-1).flatten(-2)
        return x * cos + rotated * sin
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


def grid_positions(t: int, h: int, w: int, device=None) -> Tensor:
    """Positions of a (t, h, w) token grid in time-major order -> (t*h*w, 3) float."""
    tt, hh, ww = torch.meshgrid(
        torch.arange(t, device=device),
        torch.arange(h, device=device),
        torch.arange(w, device=device),
        indexing="ij",
    )
    return torch.stack([tt, hh, ww], dim=-1).reshape(-1, 3).float()
