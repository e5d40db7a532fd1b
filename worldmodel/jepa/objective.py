"""V-JEPA masked latent pretraining: context encoder, narrow mask predictor, EMA target.

The context encoder sees only visible tokens; the predictor (narrower than the encoder) embeds
them, appends one learned mask token per target position (one token per mask kind, as V-JEPA),
and predicts the target encoder's layer-normed features there. Loss: L1. The target encoder is
an exponential moving average of the context encoder, with momentum rising linearly from
``ema[0]`` to ``ema[1]`` over training. Optionally (``sigreg`` > 0) the loss adds SIGReg on the
context encoder's tokens, pulling them towards an isotropic Gaussian (``worldmodel.jepa.sigreg``).
Parameter names of the predictor follow the official V-JEPA 2 pretraining predictor
(``predictor_embed``, ``mask_tokens.i``, ``predictor_blocks``, ``predictor_norm``,
``predictor_proj``).

Legend: B batch, T frames, Kc context tokens, Kt target tokens, D encoder width, Dp predictor width,
M SIGReg directions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldmodel.encoder import EncoderConfig, VideoEncoder
from worldmodel.jepa.masks import MaskConfig
from worldmodel.jepa.sigreg import epps_pulley
from worldmodel.nn.rope import rope_angles
from worldmodel.nn.transformer import Block, init_weights


@dataclass(frozen=True)
class MaskPredictorConfig:
    dim: int = 96
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    num_mask_tokens: int = 2  # one per mask kind
    rope_variant: Literal["ours", "official"] = "ours"  # official: the public V-JEPA 2 RoPE
    mask_token_per_kind: bool = True  # False: every mask kind uses mask token 0, as the official
    # training wrapper does (it passes the clip-length index, 0 with one clip length)

    @classmethod
    def tiny(cls) -> MaskPredictorConfig:
        return cls(dim=16, depth=1, heads=2)


@dataclass(frozen=True)
class JEPAConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig.cpu_small)
    predictor: MaskPredictorConfig = field(default_factory=MaskPredictorConfig)
    masks: MaskConfig = field(default_factory=MaskConfig)
    ema: tuple[float, float] = (0.996, 0.9999)
    sigreg: float = 1.0  # weight of SIGReg on the context tokens (0: off, the plain V-JEPA 2 recipe)

    @classmethod
    def tiny(cls) -> JEPAConfig:
        return cls(encoder=EncoderConfig.tiny(), predictor=MaskPredictorConfig.tiny())


class MaskPredictor(nn.Module):
    def __init__(self, enc: EncoderConfig, cfg: MaskPredictorConfig):
        super().__init__()
        self.cfg, self.enc = cfg, enc
        self.predictor_embed = nn.Linear(enc.dim, cfg.dim)
        self.mask_tokens = nn.ParameterList(
            nn.Parameter(torch.zeros(1, 1, cfg.dim)) for _ in range(cfg.num_mask_tokens)
        )
        self.predictor_blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)
        )
        self.predictor_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.predictor_proj = nn.Linear(cfg.dim, enc.dim)
        init_weights(self)
        for t in self.mask_tokens:
            nn.init.trunc_normal_(t, std=0.02)

    def forward(self, ctx: Tensor, ctx_pos: Tensor, tgt_pos: Tensor, kind: int = 0) -> Tensor:
        """ctx (B, Kc, D), ctx_pos (B, Kc, 3), tgt_pos (B, Kt, 3), ``kind`` the mask token to place
        (the official ``mask_index``) -> predictions (B, Kt, D)."""
        B, Kt = tgt_pos.shape[:2]
        x = self.predictor_embed(ctx)  # (B, Kc, Dp)
        m = self.mask_tokens[kind % len(self.mask_tokens)].expand(B, Kt, -1)
        x = torch.cat([x, m], dim=1)  # (B, Kc + Kt, Dp)
        pos = torch.cat([ctx_pos, tgt_pos], dim=1)
        angles = rope_angles(pos, self.cfg.dim // self.cfg.heads, variant=self.cfg.rope_variant)
        for block in self.predictor_blocks:
            x = block(x, angles)
        x = self.predictor_norm(x[:, -Kt:])
        return self.predictor_proj(x)  # (B, Kt, D)


class JEPA(nn.Module):
    """Context encoder + predictor (trained) and the EMA target encoder (not trained)."""

    def __init__(self, cfg: JEPAConfig):
        super().__init__()
        if cfg.encoder.pos_embed != "rope":
            raise ValueError(
                "masked pretraining needs rope positions (the predictor places mask tokens with RoPE)"
            )
        self.cfg = cfg
        self.encoder = VideoEncoder(cfg.encoder)
        self.predictor = MaskPredictor(cfg.encoder, cfg.predictor)
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)

    def loss(
        self, video: Tensor, masks: list[tuple[Tensor, Tensor]], directions: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """video (B, T, C, H, W) in [0, 1]; masks per kind (ctx (B, Kc), tgt (B, Kt)); SIGReg's
        random unit directions (D, M), needed when ``cfg.sigreg`` > 0 -> (loss, stats)."""
        if self.cfg.sigreg > 0 and directions is None:
            raise ValueError(
                "sigreg > 0 needs the random directions (worldmodel.jepa.sigreg.random_directions)"
            )
        with torch.no_grad():
            z = self.target_encoder(video).flatten(1, 2)  # (B, T'N, D)
            z = F.layer_norm(z, z.shape[-1:])
        pos = self.encoder.token_positions(video.shape[1] // self.cfg.encoder.tubelet, video.device)
        losses, regs = [], []
        for kind, (ctx_idx, tgt_idx) in enumerate(masks):
            ctx = self.encoder(video, keep=ctx_idx)  # (B, Kc, D)
            token = kind if self.cfg.predictor.mask_token_per_kind else 0
            pred = self.predictor(ctx, pos[ctx_idx], pos[tgt_idx], token)  # (B, Kt, D)
            target = torch.gather(z, 1, tgt_idx[..., None].expand(-1, -1, z.shape[-1]))
            losses.append((pred - target).abs().mean())
            if self.cfg.sigreg > 0:
                regs.append(epps_pulley(ctx.flatten(0, 1), directions))
        loss = torch.stack(losses).mean()
        stats = {"target_std": z.std(dim=0).mean().detach()}
        if regs:
            reg = torch.stack(regs).mean()
            loss = loss + self.cfg.sigreg * reg
            stats["sigreg"] = reg.detach()
        return loss, stats

    def forward(
        self, video: Tensor, masks: list[tuple[Tensor, Tensor]], directions: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        return self.loss(video, masks, directions)  # what DistributedDataParallel calls

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        for pt, pc in zip(self.target_encoder.parameters(), self.encoder.parameters()):
            pt.lerp_(pc.detach(), 1.0 - momentum)

    def momentum(self, step: int, total: int) -> float:
        a, b = self.cfg.ema
        return a + (b - a) * min(step / max(total, 1), 1.0)
