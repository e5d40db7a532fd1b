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

    def first(self, frames: int) -> KVCache:
        """The keys and values of the first ``frames`` frames only (views, not copies)."""
        if not 0 < frames <= self.frames:
            raise ValueError(f"the cache holds {self.frames} frames; cannot keep the first {frames}")
        n = self.tokens // self.frames * frames
        out = KVCache(len(self.k))
        out.k = [k[:, :, :n] for k in self.k]
        out.v = [v[:, :, :n] for v in self.v]
        out.frames = frames
        return out

    def extend(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append new keys and values (B, heads, new, head_dim) of ``layer`` -> all of them."""
        if self.k[layer] is not None:
            B = k.shape[0]
            k = torch.cat([self.k[layer].expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([self.v[layer].expand(B, -1, -1, -1), v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


class DecodeCache:
    """Keys and values for no-grad decoding of a fixed batch, in buffers allocated once: per layer
    (B, heads, capacity, head_dim), the first ``tokens`` filled. Writing in place saves the
    concatenation ``KVCache`` does at every step (which training needs, for autograd)."""

    def __init__(self, batch: int, capacity: int, start: KVCache | None = None):
        """Room for ``batch`` rows and ``capacity`` tokens, holding ``start``'s keys and values
        (broadcast from its batch of 1) when given."""
        self.batch, self.capacity = batch, capacity
        self.start = start
        depth = len(start.k) if start is not None else 0
        self.k: list[Tensor | None] = [None] * depth
        self.v: list[Tensor | None] = [None] * depth
        self.tokens = start.tokens if start is not None else 0
        self.frames = start.frames if start is not None else 0

    def _buffer(self, layer: int, like: Tensor) -> None:
        """Allocate ``layer``'s buffers in ``like``'s dtype (autocast decides it) and copy ``start`` in."""
        while len(self.k) <= layer:
            self.k.append(None)
            self.v.append(None)
        shape = (self.batch, like.shape[1], self.capacity, like.shape[3])
        self.k[layer], self.v[layer] = like.new_empty(shape), like.new_empty(shape)
        if self.start is not None and self.tokens:
            self.k[layer][:, :, : self.tokens] = self.start.k[layer]
            self.v[layer][:, :, : self.tokens] = self.start.v[layer]

    def extend(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write new keys and values (B, heads, new, head_dim) of ``layer`` -> all of them so far
        (views). The caller moves ``tokens`` on after the last layer (``advance``)."""
        if layer >= len(self.k) or self.k[layer] is None:
            self._buffer(layer, k)
        end = self.tokens + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"decode cache full: {end} tokens, room for {self.capacity}")
        self.k[layer][:, :, self.tokens : end] = k
        self.v[layer][:, :, self.tokens : end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]

    def advance(self, tokens: int, frames: int) -> None:
        """Count ``tokens`` new tokens of ``frames`` frames as written (every layer has them)."""
        self.tokens += tokens
        self.frames += frames


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

    def decode(
        self, x: Tensor, qkv_weight: Tensor, qkv_bias: Tensor | None, cache: DecodeCache, layer: int
    ) -> Tensor:
        """Attention of new tokens to themselves and the cached ones, token-major and without
        autograd: x (n, B, D), qkv_weight (n, D, 3D) and qkv_bias (n, 1, 3D) the projection of each
        of the n token positions with its RoPE rotation and the query scale folded in
        (``folded_qkv``) -> (n, B, D). One batched matmul per step instead of a projection and
        the rotations' elementwise work on q and k."""
        n, B, D = x.shape
        qkv = torch.bmm(x, qkv_weight) if qkv_bias is None else torch.baddbmm(qkv_bias, x, qkv_weight)
        q, k, v = qkv.view(n, B, 3, self.heads, self.head_dim).permute(2, 1, 3, 0, 4)  # (B, heads, n, hd)
        k, v = cache.extend(layer, k, v)  # (B, heads, M, hd)
        att = torch.matmul(q, k.transpose(-1, -2)).softmax(dim=-1)  # (B, heads, n, M)
        out = torch.matmul(att, v)  # (B, heads, n, hd)
        return self.proj(out.permute(2, 0, 1, 3).reshape(n, B, D))

    def folded_qkv(self, rotations: Tensor) -> tuple[Tensor, Tensor | None]:
        """The qkv projection of each of n token positions with its RoPE rotation and the query
        scale 1/sqrt(head_dim) folded in: rotations (n, hd, hd), row i the rotation of unit
        vector i (RoPE is linear: rope(q) = q @ R) -> weight (n, D, 3D), bias (n, 1, 3D) or None."""
        n, D, H, hd = rotations.shape[0], self.qkv.in_features, self.heads, self.head_dim
        w = self.qkv.weight.t()  # (D, 3D): x @ w
        wq, wk, wv = (part.reshape(D, H, hd) for part in w.split(D, dim=1))
        scale = hd**-0.5
        fold = lambda m: torch.einsum("dhe,nef->ndhf", m, rotations).reshape(n, D, D)  # noqa: E731
        weight = torch.cat([fold(wq) * scale, fold(wk), wv.reshape(1, D, D).expand(n, D, D)], dim=2)
        if self.qkv.bias is None:
            return weight, None
        bq, bk, bv = (part.reshape(1, H, hd) for part in self.qkv.bias.split(D))
        foldb = lambda b: torch.einsum("dhe,nef->ndhf", b, rotations).reshape(n, 1, D)  # noqa: E731
        bias = torch.cat([foldb(bq) * scale, foldb(bk), bv.reshape(1, 1, D).expand(n, 1, D)], dim=2)
        return weight, bias


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

    def decode(
        self, x: Tensor, qkv_weight: Tensor, qkv_bias: Tensor | None, cache: DecodeCache, layer: int
    ) -> Tensor:
        """``forward`` for new tokens given the cache, token-major: x (n, B, D) -> (n, B, D);
        the rest as in ``Attention.decode``."""
        x = x + self.attn.decode(self.norm1(x), qkv_weight, qkv_bias, cache, layer)
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
