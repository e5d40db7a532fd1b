"""3D rotary position embedding over (time, height, width) token grids.

Each attention head's dimension is split into three equal even parts, rotated by the token's
time, row and column positions respectively (standard RoPE frequencies ``base^(-2i/d)`` per
part); leftover dimensions (when the head dimension is not a multiple of 6) stay unrotated.
Positions may be fractional (e.g. a pooled grid) and need not be on a full grid, so the same
code serves masked token subsets, pooled grids and per-frame action/state tokens (time only).
"""

from __future__ import annotations

import torch
from torch import Tensor


def axis_dim(head_dim: int) -> int:
    """Rotated dimensions per axis (even)."""
    return 2 * ((head_dim // 3) // 2)


def rope_angles(pos: Tensor, head_dim: int, base: float = 10000.0) -> Tensor:
    """Rotation angles for positions.

    pos (..., 3) float (t, h, w) -> angles (..., head_dim // 2): the first ``3 * axis_dim / 2``
    entries rotate pairs of the first ``3 * axis_dim`` dims (time pairs, then height, then width);
    the rest are zero (no rotation).
    """
    d = axis_dim(head_dim)
    freqs = base ** (-torch.arange(0, d, 2, dtype=torch.float32, device=pos.device) / d)  # (d/2,)
    ang = pos.float()[..., :, None] * freqs  # (..., 3, d/2)
    ang = ang.flatten(-2)  # (..., 3 * d/2)
    pad = head_dim // 2 - ang.shape[-1]
    if pad:
        ang = torch.cat([ang, ang.new_zeros(*ang.shape[:-1], pad)], dim=-1)
    return ang


def apply_rope(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate x (..., N, head_dim) by angles broadcastable to (..., N, head_dim // 2).

    Pairs are adjacent dims (2i, 2i+1).
    """
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
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
