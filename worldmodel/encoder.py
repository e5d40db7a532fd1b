"""Video encoder: clips -> patch tokens per tubelet (a V-JEPA-style space-time ViT).

A 3D tubelet patch embedding (``tubelet`` frames x ``patch`` x ``patch`` pixels per token), 3D
rotary position embedding by default (learned or sin-cos absolute embeddings as options),
pre-norm blocks on ``scaled_dot_product_attention``, a final LayerNorm. With ``embed_dim`` > 0
a head (Linear, BatchNorm, GELU, Linear, as LeWM's projector) maps each frame's tokens,
average-pooled to an ``embed_grid`` x ``embed_grid`` grid and flattened (so where things are
survives), to one ``embed_dim``-wide embedding, the end-to-end recipe's latent
(``worldmodel.jepa.joint``). The BatchNorm standardises the hidden units over the batch, so
small differences between frames reach the embedding from the first step (a LayerNorm there
lets the embeddings collapse before SIGReg can act); in eval mode it uses statistics the trainer
recomputes over training frames at the end (``recalibrate_head``). Pixel normalisation
(ImageNet mean/std, as V-JEPA's data pipeline applies) happens inside, so inputs are in [0, 1].
Parameter names follow the official V-JEPA 2 encoder (``patch_embed.proj``, ``blocks.i``,
``norm``).

Legend: B batch, T frames, C,H,W image, T' = T / tubelet, N tokens per tubelet, D width,
K kept (visible) tokens, E frame embedding width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldmodel.nn.batchnorm import GlobalBatchNorm1d
from worldmodel.nn.rope import grid_positions, rope_angles
from worldmodel.nn.transformer import Block, init_weights

EncoderPreset = Literal["tiny", "cpu-small", "cpu-base", "vitl", "vith", "vitg"]
#: the published V-JEPA 2 shapes (sharded with FSDP2 under torchrun by default)
LARGE_ENCODERS = ("vitl", "vith", "vitg")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderConfig:
    image_size: int = 64
    patch_size: int = 8
    tubelet: int = 2  # frames fused into one token
    in_chans: int = 3
    dim: int = 192
    depth: int = 6
    heads: int = 3
    mlp_ratio: float = 4.0
    pos_embed: Literal["rope", "learned", "sincos"] = "rope"
    max_frames: int = 16  # for absolute position embeddings
    normalize_pixels: bool = True
    rope_variant: Literal["ours", "official"] = "ours"  # official: the public V-JEPA 2 RoPE
    norm_eps: float = 1e-6
    embed_dim: int = 0  # > 0: one embedding per frame (E) from an MLP head on its tokens
    embed_grid: int = 4  # the head reads the patch grid pooled to embed_grid x embed_grid, flattened
    embed_hidden: int = 512  # the head's hidden width
    cameras: int = 1  # K views per frame, stacked along the channels; the head reads all K (embed_dim > 0)

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.embed_dim and self.grid % self.embed_grid:
            raise ValueError(f"the patch grid {self.grid} is not divisible by embed_grid {self.embed_grid}")
        if self.cameras < 1 or (self.cameras > 1 and not self.embed_dim):
            raise ValueError(
                f"cameras={self.cameras}: several cameras need an embedding head (embed_dim > 0)"
            )

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size

    @property
    def tokens_per_tubelet(self) -> int:
        return self.grid**2

    # -- presets ----------------------------------------------------------------------------

    @classmethod
    def tiny(cls) -> EncoderConfig:  # tests: milliseconds on CPU
        return cls(image_size=16, patch_size=8, dim=32, depth=1, heads=2)

    @classmethod
    def cpu_small(cls) -> EncoderConfig:  # 64x64, 64 tokens per tubelet: trains in minutes on 2 cores
        return cls(image_size=64, patch_size=8, dim=128, depth=4, heads=4)

    @classmethod
    def cpu_base(cls) -> EncoderConfig:
        return cls(image_size=64, patch_size=8, dim=192, depth=6, heads=3)

    @classmethod
    def vitl(cls, image_size: int = 256) -> EncoderConfig:  # published V-JEPA 2 shapes
        return cls(image_size=image_size, patch_size=16, dim=1024, depth=24, heads=16)

    @classmethod
    def vith(cls, image_size: int = 256) -> EncoderConfig:
        return cls(image_size=image_size, patch_size=16, dim=1280, depth=32, heads=16)

    @classmethod
    def vitg(cls, image_size: int = 256) -> EncoderConfig:
        return cls(image_size=image_size, patch_size=16, dim=1408, depth=40, heads=22, mlp_ratio=48 / 11)

    @classmethod
    def preset(cls, name: str) -> EncoderConfig:
        """The config of an ``EncoderPreset`` by name (``cpu-small`` -> ``cpu_small()``)."""
        if name not in EncoderPreset.__args__:
            raise ValueError(f"unknown encoder preset {name!r}; choose one of {list(EncoderPreset.__args__)}")
        return getattr(cls, name.replace("-", "_"))()


def sincos_embedding(pos: Tensor, dim: int) -> Tensor:
    """Fixed 3D sin-cos embedding: pos (N, 3) -> (N, dim), a third of the dims per axis."""
    per_axis = 2 * (dim // 6)
    freqs = 1.0 / (10000 ** (torch.arange(0, per_axis, 2, dtype=torch.float32) / per_axis))
    parts = []
    for a in range(3):
        ang = pos[:, a : a + 1] * freqs  # (N, per_axis/2)
        parts += [ang.sin(), ang.cos()]
    emb = torch.cat(parts, dim=-1)
    return torch.nn.functional.pad(emb, (0, dim - emb.shape[-1]))


class VideoEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv3d(
            cfg.in_chans, cfg.dim, kernel_size=(cfg.tubelet, cfg.patch_size, cfg.patch_size),
            stride=(cfg.tubelet, cfg.patch_size, cfg.patch_size),
        )  # fmt: skip
        self.blocks = nn.ModuleList(
            Block(cfg.dim, cfg.heads, cfg.mlp_ratio, eps=cfg.norm_eps) for _ in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        n_max = (cfg.max_frames // cfg.tubelet) * cfg.tokens_per_tubelet
        if cfg.pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, n_max, cfg.dim))
        elif cfg.pos_embed == "sincos":
            pos = grid_positions(cfg.max_frames // cfg.tubelet, cfg.grid, cfg.grid)
            self.register_buffer("pos_embed", sincos_embedding(pos, cfg.dim)[None], persistent=False)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)
        init_weights(self)
        for i, block in enumerate(self.blocks):  # depth-scaled output projections (as in V-JEPA)
            block.attn.proj.weight.data.div_(math.sqrt(2.0 * (i + 1)))
            block.mlp.fc2.weight.data.div_(math.sqrt(2.0 * (i + 1)))
        if cfg.pos_embed == "learned":
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if cfg.embed_dim:  # after init_weights: the head keeps PyTorch's default initialisation
            self.head = nn.Sequential(
                nn.Linear(cfg.cameras * cfg.embed_grid**2 * cfg.dim, cfg.embed_hidden, bias=False),
                GlobalBatchNorm1d(cfg.embed_hidden), nn.GELU(),
                nn.Linear(cfg.embed_hidden, cfg.embed_dim),
            )  # fmt: skip

    def token_positions(self, tubelets: int, device=None) -> Tensor:
        """(T' * N, 3) float (t, h, w) positions of the token grid, time-major."""
        return grid_positions(tubelets, self.cfg.grid, self.cfg.grid, device=device)

    def patchify(self, video: Tensor) -> Tensor:
        """video (B, T, C, H, W) in [0, 1] -> embedded patches (B, T' * N, D), time-major."""
        _, T, C, H, W = video.shape
        cfg = self.cfg
        if T % cfg.tubelet:
            raise ValueError(f"T={T} frames is not divisible by tubelet={cfg.tubelet}")
        if (cfg.image_size, cfg.image_size) != (H, W) or cfg.in_chans != C:
            raise ValueError(
                f"expected frames ({cfg.in_chans}, {cfg.image_size}, {cfg.image_size}), got {(C, H, W)}"
            )
        x = video.transpose(1, 2)  # (B, C, T, H, W)
        if cfg.normalize_pixels:
            x = (x - self.pixel_mean) / self.pixel_std
        x = self.patch_embed.proj(x)  # (B, D, T', h, w)
        return x.flatten(2).transpose(1, 2)  # (B, T' * N, D)

    def forward(self, video: Tensor, keep: Tensor | None = None) -> Tensor:
        """video (B, T, C, H, W) in [0, 1] -> tokens (B, T', N, D);
        with ``keep`` (B, K) token indices: only those tokens are encoded -> (B, K, D)."""
        B, T = video.shape[:2]
        x = self.patchify(video)  # (B, T'N, D)
        tubelets = T // self.cfg.tubelet
        pos = self.token_positions(tubelets, video.device)  # (T'N, 3)
        angles = None
        if self.cfg.pos_embed == "rope":
            angles = rope_angles(pos, self.cfg.dim // self.cfg.heads, variant=self.cfg.rope_variant)
        else:
            x = x + self.pos_embed[:, : x.shape[1]].to(x.dtype)
        if keep is not None:
            x = torch.gather(x, 1, keep[..., None].expand(-1, -1, x.shape[-1]))  # (B, K, D)
            if angles is not None:
                angles = angles[keep]  # (B, K, .)
        for block in self.blocks:
            x = block(x, angles)
        x = self.norm(x)
        if keep is not None:
            return x
        return x.view(B, tubelets, self.cfg.tokens_per_tubelet, -1)  # (B, T', N, D)

    def embed_frames(self, frames: Tensor) -> Tensor:
        """Single frames (B, K*C, H, W) in [0, 1] (K = ``cameras`` views stacked along the
        channels) -> one embedding each (B, 1, E) (``embed_dim`` > 0; differentiable). Each view is
        encoded alone by the shared ViT (repeated to fill a tubelet); the head reads all K pooled grids."""
        if not self.cfg.embed_dim:
            raise ValueError("this encoder has no embedding head (embed_dim is 0)")
        B, _, H, W = frames.shape
        K, C = self.cfg.cameras, self.cfg.in_chans
        if frames.shape[1] != K * C:
            raise ValueError(f"expected {K} camera(s) x {C} channels, got {frames.shape[1]} channels")
        views = frames.reshape(B * K, C, H, W)  # (B*K, C, H, W)
        video = views[:, None].expand(-1, self.cfg.tubelet, -1, -1, -1)
        tokens = pool_tokens(self(video)[:, 0], self.cfg.grid, self.cfg.embed_grid)  # (B*K, g*g, D)
        return self.head(tokens.reshape(B, -1))[:, None]  # (B, 1, E)


# -- single frames ------------------------------------------------------------------------------


def to_float_frames(frames: np.ndarray | Tensor) -> Tensor:
    """(B, H, W, C) uint8 frames (as envs and datasets give them; C = 3K for K cameras) -> (B, C, H, W)
    float in [0, 1]."""
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    return frames.permute(0, 3, 1, 2).float().div(255)


def pool_tokens(z: Tensor, grid: int, pool: int) -> Tensor:
    """Average-pool patch grids: z (..., K*grid*grid, D) -> (..., K*pool*pool, D), each of the K
    cameras' grids on its own (0 or grid: unchanged)."""
    if not pool or pool == grid:
        return z
    lead, D = z.shape[:-2], z.shape[-1]
    views = z.shape[-2] // (grid * grid)
    x = z.reshape(-1, grid, grid, D).permute(0, 3, 1, 2)  # (*K, D, g, g)
    x = F.adaptive_avg_pool2d(x, pool)
    return x.permute(0, 2, 3, 1).reshape(*lead, views * pool * pool, D)


@torch.no_grad()
def encode_frames(encoder: VideoEncoder, frames: Tensor, pool: int) -> Tensor:
    """Single frames (B, C, H, W) float in [0, 1] -> layer-normed tokens (B, N, D), the patch grid
    pooled to ``pool`` x ``pool`` (0: the full grid). Each frame is repeated to fill a tubelet, as
    V-JEPA 2-AC encodes single frames. Frames of K cameras stacked along the channels (B, K*C, H, W)
    are each encoded alone and their tokens laid side by side, camera after camera: (B, K*N, D).
    An encoder with an embedding head gives its frame embeddings (B, 1, E) instead (``pool`` does
    not apply; its head reads all the cameras it was built for)."""
    if encoder.cfg.embed_dim:
        return encoder.embed_frames(frames)
    B, KC, H, W = frames.shape
    C = encoder.cfg.in_chans
    if KC % C:
        raise ValueError(f"frames have {KC} channels: not a whole number of {C}-channel cameras")
    views = frames.reshape(B * (KC // C), C, H, W)  # each camera a frame of its own
    video = views[:, None].expand(-1, encoder.cfg.tubelet, -1, -1, -1)  # (B*K, tubelet, C, H, W)
    z = encoder(video)[:, 0]  # (B*K, grid*grid, D)
    z = F.layer_norm(z, z.shape[-1:])
    z = pool_tokens(z, encoder.cfg.grid, pool)  # (B*K, N, D)
    return z.reshape(B, -1, z.shape[-1])
