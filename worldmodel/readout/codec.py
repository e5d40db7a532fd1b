"""The proprio state as the world model sees it: joint angles as (cos, sin) pairs.

A joint angle wrapped to [-pi, pi) jumps by 2 pi where the arm looks the same, and an image
shows an angle through its cosine and sine, not linearly. So the predictor's state tokens and
the goal-state read-out work on an encoded state in which each angle dimension is replaced by its
(cos, sin) pair; outside the world model states stay in the env's units.

Legend: P raw state dim, E encoded state dim (P + number of angle dims).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor


@dataclass(frozen=True)
class StateCodec:
    dim: int
    """P: the raw state's width"""
    angles: tuple[int, ...] = ()
    """raw dimensions that are angles in radians"""

    def __post_init__(self):
        bad = [a for a in self.angles if not 0 <= a < self.dim]
        if bad or len(set(self.angles)) != len(self.angles):
            raise ValueError(
                f"angle dims {list(self.angles)} must be distinct indices of a {self.dim}-D state"
            )

    @property
    def encoded_dim(self) -> int:
        return self.dim + len(self.angles)

    @cached_property
    def _columns(self) -> tuple[list[int], list[int], list[int]]:
        """(first encoded column of each raw dim, cos column and sin column of each angle, in
        ``angles`` order)."""
        first, col = [], 0
        for d in range(self.dim):
            first.append(col)
            col += 2 if d in self.angles else 1
        cos = [first[a] for a in self.angles]
        return first, cos, [c + 1 for c in cos]

    def encode(self, s: Tensor) -> Tensor:
        """(..., P) -> (..., E): angle dims become (cos, sin), the rest pass through."""
        if not self.angles:
            return s
        self._check(s, self.dim, "raw")
        first, cos, sin = self._columns
        angles = s[..., list(self.angles)]
        e = s.new_empty(*s.shape[:-1], self.encoded_dim)
        e[..., first] = s
        e[..., cos], e[..., sin] = torch.cos(angles), torch.sin(angles)
        return e

    def decode(self, e: Tensor) -> Tensor:
        """(..., E) -> (..., P): angles by atan2 of their (cos, sin) pair, wrapped to [-pi, pi]."""
        if not self.angles:
            return e
        self._check(e, self.encoded_dim, "encoded")
        first, cos, sin = self._columns
        s = e[..., first]  # a copy; the angles' entries (their cos) are replaced next
        s[..., list(self.angles)] = torch.atan2(e[..., sin], e[..., cos])
        return s

    def difference(self, a: Tensor, b: Tensor) -> Tensor:
        """|a - b| per raw dim (..., P), angle dims wrapped to at most pi."""
        d = a - b
        if self.angles:
            idx = list(self.angles)
            d = d.clone()
            d[..., idx] = torch.remainder(d[..., idx] + math.pi, 2 * math.pi) - math.pi
        return d.abs()

    def raw_weights(self, w: Tensor) -> Tensor:
        """Per-encoded-dim weights (E,) -> per-raw-dim (P,): an angle gets the lower of its pair's."""
        if not self.angles:
            return w
        first, cos, sin = self._columns
        out = w[first]
        out[list(self.angles)] = torch.minimum(w[cos], w[sin])
        return out

    def _check(self, x: Tensor, width: int, what: str) -> None:
        if x.shape[-1] != width:
            raise ValueError(f"expected {what} states of width {width}, got shape {tuple(x.shape)}")
