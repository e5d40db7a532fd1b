"""Exploration policies for data collection and baselines.

``SmoothRandomPolicy``: temporally correlated random actions (an AR(1) process on Gaussian
noise, each action held for ``repeat`` steps), so the agent travels instead of jittering in
place the way i.i.d. uniform actions make it do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SmoothRandomConfig:
    repeat: int = 2  # env steps each sampled action is held
    correlation: float = 0.8  # AR(1) coefficient between consecutive samples, in [0, 1)
    scale: float = 0.8  # std of the stationary action distribution (before clipping to [-1, 1])

    def __post_init__(self):
        if self.repeat < 1:
            raise ValueError(f"repeat must be >= 1, got {self.repeat}")
        if not 0.0 <= self.correlation < 1.0:
            raise ValueError(f"correlation must be in [0, 1), got {self.correlation}")
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")


class SmoothRandomPolicy:
    """Correlated random actions in [-1, 1]^A; all randomness from the given generator."""

    def __init__(self, action_dim: int, rng: np.random.Generator, cfg: SmoothRandomConfig | None = None):
        self.action_dim = action_dim
        self.rng = rng
        self.cfg = cfg or SmoothRandomConfig()
        self.reset()

    def reset(self) -> None:
        self._noise = self.rng.normal(0.0, self.cfg.scale, self.action_dim)
        self._t = 0

    def __call__(self, obs=None) -> np.ndarray:
        c = self.cfg
        if self._t > 0 and self._t % c.repeat == 0:
            innovation = self.rng.normal(0.0, c.scale, self.action_dim)
            self._noise = c.correlation * self._noise + np.sqrt(1.0 - c.correlation**2) * innovation
        self._t += 1
        return np.clip(self._noise, -1.0, 1.0).astype(np.float32)
