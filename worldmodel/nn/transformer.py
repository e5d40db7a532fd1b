"""Transformer pieces shared by the encoder and the predictors: pre-norm blocks on SDPA.

Parameter names follow the official V-JEPA 2 modules (``norm1``, ``attn.qkv``, ``attn.proj``,
``norm2``, ``mlp.fc1``, ``mlp.fc2``) so official checkpoints map onto ours by prefix alone.
Legend: B batch, N tokens, D width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from worldmodel.nn.rope import apply_rope


class KVCache:
    """Keys and values of the tokens seen so far, per layer: each (B, heads, tokens, head_dim).

    Passed to ``Block.forward`` for incremental decoding: a block attends from its new tokens to
    the cached ones and its own, then appends its keys and values. ``frames`` counts the token
    groups (frames) seen so far, kept by the caller for positions."""

    def __init__(self, depth: int):
        self.k: list[Tensor | None] = [None] * depth
        self.v: list[Tensor | None] = [None] * depth
        self.frames = 0

    @property
    def tokens(self) -> int:
        """Tokens cached per layer."""
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def expand(self, n: int) -> KVCache:
        """The same cache for n candidates (from a batch of 1), without copying."""
        out = KVCache(len(self.k))
        out.k = [None if k is None else k.expand(n, -1, -1, -1) for k in self.k]
        out.v = [None if v is None else v.expand(n, -1, -1, -1) for v in self.v]
        out.frames = self.frames
        return out

    def extend(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append new keys and values (B, heads, new, head_dim) of ``layer`` -> all of them."""
        if self.k[layer] is not None:
            B = k.shape[0]
            k = torch.cat([self.k[layer].expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([self.v[layer].expand(B, -1, -1, -1), v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with optional rotary embedding and attention mask."""

    def __init__(self, dim: int, heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def qkv_heads(self, x: Tensor, angles: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """x (B, N, D) -> q, k, v each (B, heads, N, head_dim), RoPE applied to q and k."""
        B, N, _ = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        if angles is not None:
            a = angles.unsqueeze(-3) if angles.dim() == 3 else angles  # (B, 1, N, .) or (N, .)
            q, k = apply_rope(q, a), apply_rope(k, a)
        return q, k, v

    def forward(
        self, x: Tensor, angles: Tensor | None = None, mask: Tensor | None = None,
        cache: KVCache | None = None, layer: int = 0,
    ) -> Tensor:  # fmt: skip
        """x (B, N, D), angles (N or B,N, head_dim/2), mask bool (N, M) True = may attend -> (B, N, D).
        With ``cache``, x holds the new tokens only; they attend to the cached ones of ``layer``
        too (M = cached + N), and their keys and values are appended."""
        q, k, v = self.qkv_heads(x, angles)
        if cache is not None:
            k, v = cache.extend(layer, k, v)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, N, hd)
        return self.proj(out.transpose(1, 2).flatten(2))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm1(x)); x + mlp(norm2(x))."""

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, eps: float = 1e-6
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads, qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(
        self, x: Tensor, angles: Tensor | None = None, mask: Tensor | None = None,
        cache: KVCache | None = None, layer: int = 0,
    ) -> Tensor:  # fmt: skip
        """x (B, N, D) -> (B, N, D); ``cache``/``layer`` as in ``Attention.forward``."""
        x = x + self.attn(self.norm1(x), angles, mask, cache, layer)
        return x + self.mlp(self.norm2(x))


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Truncated-normal linear/conv weights, zero biases, unit LayerNorms (ViT convention)."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv3d):
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
