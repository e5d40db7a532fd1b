"""Multi-block 3D tube masks for V-JEPA pretraining.

A mask of one *kind* is the union of ``count`` rectangular blocks, each covering about
``scale`` of the frame's patch grid with an aspect ratio drawn from ``aspect``, and spanning all
tubelets (a tube through time). The masked tokens are the prediction targets; the rest are the
context the encoder sees. V-JEPA 2 uses two kinds: 8 short-range blocks at 15% and 2 long-range
blocks at 70%; the predictor runs once per kind.

``sample_masks`` returns, per kind, context and target token indices (B, K) with the same K for
every sample of the batch (truncated to the batch minimum, as V-JEPA does), drawn from a
``torch.Generator`` so a training step's masks depend only on its seed.

Optionally (``motion_weight > 0``) block centres are drawn with probability growing with the
temporal change of each patch, so the blocks land on what moves more often: a lever against
representations that drift towards the static background (see DESIGN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class BlockSpec:
    count: int  # blocks in one mask of this kind
    scale: float  # fraction of the frame's patch grid covered by each block
    aspect: tuple[float, float] = (0.75, 1.5)  # range of height/width ratios (log-uniform)

    def __post_init__(self):
        if self.count < 1 or not 0.0 < self.scale <= 1.0 or not 0 < self.aspect[0] <= self.aspect[1]:
            raise ValueError(f"bad block spec {self}")


@dataclass(frozen=True)
class MaskConfig:
    kinds: tuple[BlockSpec, ...] = field(default_factory=lambda: (BlockSpec(8, 0.15), BlockSpec(2, 0.7)))
    min_context: int = 4  # resample a sample whose context would have fewer tokens per tubelet
    motion_weight: float = 0.0  # 0: uniform block centres; > 0: biased towards moving patches


def _one_mask(grid: int, spec: BlockSpec, centre_probs: Tensor | None, g: torch.Generator) -> Tensor:
    """A (grid, grid) bool mask: the union of ``spec.count`` blocks."""
    mask = torch.zeros(grid, grid, dtype=torch.bool)
    area = spec.scale * grid * grid
    lo, hi = math.log(spec.aspect[0]), math.log(spec.aspect[1])
    for _ in range(spec.count):
        r = math.exp(lo + (hi - lo) * torch.rand(1, generator=g).item())
        bh = max(1, min(grid, round(math.sqrt(area * r))))
        bw = max(1, min(grid, round(math.sqrt(area / r))))
        if centre_probs is None:
            top = int(torch.randint(0, grid - bh + 1, (1,), generator=g))
            left = int(torch.randint(0, grid - bw + 1, (1,), generator=g))
        else:
            c = int(torch.multinomial(centre_probs, 1, generator=g))
            top = min(max(c // grid - bh // 2, 0), grid - bh)
            left = min(max(c % grid - bw // 2, 0), grid - bw)
        mask[top : top + bh, left : left + bw] = True
    return mask


def patch_motion(video: Tensor, patch: int) -> Tensor:
    """Mean absolute frame-to-frame change per patch: video (B, T, C, H, W) -> (B, grid*grid)."""
    diff = (video[:, 1:] - video[:, :-1]).abs().mean(dim=(1, 2))  # (B, H, W)
    pooled = torch.nn.functional.avg_pool2d(diff[:, None], patch)  # (B, 1, g, g)
    return pooled.flatten(1)


def sample_masks(
    batch: int,
    grid: int,
    tubelets: int,
    cfg: MaskConfig,
    generator: torch.Generator,
    motion: Tensor | None = None,
) -> list[tuple[Tensor, Tensor]]:
    """Per mask kind: (context indices (B, Kc), target indices (B, Kt)) into the time-major
    token sequence of ``tubelets`` x ``grid`` x ``grid`` tokens. ``motion`` (B, grid*grid)
    biases block centres when ``cfg.motion_weight > 0``."""
    n = grid * grid
    out = []
    for spec in cfg.kinds:
        contexts, targets = [], []
        for b in range(batch):
            probs = None
            if cfg.motion_weight > 0 and motion is not None:
                m = motion[b].float()
                probs = 1.0 + cfg.motion_weight * m / (m.mean() + 1e-8)
            for _ in range(20):
                frame_mask = _one_mask(grid, spec, probs, generator).flatten()  # (n,)
                if (~frame_mask).sum() >= min(cfg.min_context, n - 1):
                    break
            if frame_mask.all():  # tiny grids: keep at least one visible token
                frame_mask[int(torch.randint(0, n, (1,), generator=generator))] = False
            tube = frame_mask.repeat(tubelets)  # (T' * n,): the same block in every tubelet
            targets.append(torch.nonzero(tube).squeeze(1))
            contexts.append(torch.nonzero(~tube).squeeze(1))
        kc = min(len(c) for c in contexts)
        kt = min(len(t) for t in targets)
        # the same token count for every sample: drop a random subset of the extras
        ctx = torch.stack([_subset(c, kc, generator) for c in contexts])
        tgt = torch.stack([_subset(t, kt, generator) for t in targets])
        out.append((ctx, tgt))
    return out


def _subset(idx: Tensor, k: int, g: torch.Generator) -> Tensor:
    if len(idx) == k:
        return idx
    keep = torch.randperm(len(idx), generator=g)[:k]
    return idx[keep.sort().values]
