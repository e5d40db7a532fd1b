"""A non-linear read-out of the (encoded) proprio state from one frame's encoder features.

The same job and interface as the ridge ``RidgeReadout`` (features (B, F) -> states (B, E), per-
dimension trust weights from held-out R^2), as a two-hidden-layer MLP on standardised features
with standardised targets: an image shows a two-link arm's elbow angle non-linearly, which a
linear map cannot read (compare them with ``python experiments/eval_readout.py``).

Legend: B batch, F flattened features (N * D), E encoded state dim.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import trange

from worldmodel.readout import MIN_TRUST, trust


class MLPReadout(nn.Module):
    """The MLP reads the ``kept`` dims; the others (what a frame does not show, e.g. velocities)
    are their training mean with zero trust."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 256, kept: Tensor | None = None):
        super().__init__()
        kept = torch.ones(out_dim, dtype=torch.bool) if kept is None else kept.bool()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.register_buffer("y_mean", torch.zeros(out_dim))
        self.register_buffer("y_std", torch.ones(out_dim))
        self.register_buffer("r2", torch.zeros(out_dim))
        self.register_buffer("kept", kept)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, int(kept.sum())),
        )

    def forward(self, features: Tensor) -> Tensor:
        """features (B, F) -> decoded (encoded) states (B, E)."""
        x = (features.float() - self.mean) / self.std
        out = self.y_mean.expand(len(x), -1).clone()
        out[:, self.kept] = self.net(x) * self.y_std[self.kept] + self.y_mean[self.kept]
        return out

    @property
    def dim_weights(self) -> Tensor:
        """(E,) how much each decoded dimension can be trusted: held-out R^2 clipped to [0, 1],
        zero below ``MIN_TRUST``."""
        return trust(self.r2)

    def tensors(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.state_dict().items()}

    @classmethod
    def from_tensors(cls, t: dict[str, Tensor], device="cpu") -> MLPReadout:
        hidden, in_dim = t["net.0.weight"].shape
        readout = cls(in_dim, len(t["r2"]), hidden, kept=t["kept"])
        readout.load_state_dict(t)
        return readout.to(device).eval().requires_grad_(False)

    @classmethod
    def screening(
        cls, x: np.ndarray, y: np.ndarray, held_out: float = 0.2, steps: int = 500, seed: int = 0,
        progress: bool = False,
    ) -> MLPReadout:  # fmt: skip
        """A short fit of every dim: its held-out R^2 says which dims an MLP can read."""
        return cls._fit_once(*_split(x, y, held_out), None, None, steps=steps, seed=seed, progress=progress)

    @classmethod
    def fit(
        cls, x: np.ndarray, y: np.ndarray, held_out: float = 0.2, hidden: int = 256, steps: int = 2000,
        batch: int = 256, lr: float = 1e-3, weight_decay: float = 1e-4, keep: float = MIN_TRUST, seed: int = 0,
        progress: bool = False, screen: MLPReadout | None = None,
    ) -> MLPReadout:  # fmt: skip
        """Fit on (n, F) features -> (n, E) targets (rows in random order: the last ``held_out``
        slice scores the per-dimension R^2). AdamW with a cosine learning-rate decay, MSE on
        standardised targets.

        A screening fit (``screening``, unless one is given) first finds the dims read with
        held-out R^2 >= ``keep``; the final fit reads only those, each dim's loss scaled by 1 / its
        screening residual. Fitting what a frame does not show (velocities, read only through
        their correlation with the pose) alongside would spoil the dims it does show.
        """
        split = _split(x, y, held_out)
        if screen is None:
            screen = cls.screening(x, y, held_out, max(steps // 4, 1), seed, progress)
        kept = screen.r2 >= keep
        if not kept.any():
            kept = torch.ones_like(kept)
        # each kept dim's loss scaled by 1 / its screening residual (a Gaussian likelihood with
        # per-dim noise): well-read dims are not drowned out by partly readable ones
        residual = (1 - screen.r2[kept]).clamp(1e-3, 1.0)
        opts = dict(
            hidden=hidden, batch=batch, lr=lr, weight_decay=weight_decay, seed=seed, progress=progress
        )
        readout = cls._fit_once(*split, kept, residual.reciprocal(), steps=steps, **opts)
        readout.r2[~kept] = 0.0  # a constant read-out
        return readout

    @classmethod
    def _fit_once(
        cls, fit_x: Tensor, fit_y: Tensor, val_x: Tensor, val_y: Tensor, kept: Tensor | None,
        loss_weights: Tensor | None, steps: int, hidden: int = 256, batch: int = 256, lr: float = 1e-3,
        weight_decay: float = 1e-4, seed: int = 0, progress: bool = False,
    ) -> MLPReadout:  # fmt: skip
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            readout = cls(fit_x.shape[1], fit_y.shape[1], hidden, kept)
        readout.mean.copy_(fit_x.mean(0))
        readout.std.copy_(fit_x.std(0) + 1e-6)
        readout.y_mean.copy_(fit_y.mean(0))
        readout.y_std.copy_(fit_y.std(0) + 1e-6)
        xs = (fit_x - readout.mean) / readout.std
        ys = ((fit_y - readout.y_mean) / readout.y_std)[:, readout.kept]
        w = torch.ones(ys.shape[1]) if loss_weights is None else loss_weights / loss_weights.mean()
        opt = torch.optim.AdamW(readout.net.parameters(), lr=lr, weight_decay=weight_decay)
        desc = "state read-out: " + ("screening dims" if kept is None else "fitting")
        for step in trange(steps, desc=desc, disable=not progress, leave=False):
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
            i = torch.randint(0, len(xs), (min(batch, len(xs)),), generator=gen)
            loss = ((readout.net(xs[i]) - ys[i]).pow(2) * w).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        readout.eval().requires_grad_(False)
        with torch.no_grad():
            err = (readout(val_x) - val_y).pow(2).mean(0)
        readout.r2.copy_(1 - err / val_y.var(0).clamp_min(1e-12))
        return readout


def _split(x: np.ndarray, y: np.ndarray, held_out: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(fit x, fit y, held-out x, held-out y): the last ``held_out`` share of the rows held out."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float32)
    n_test = max(int(held_out * len(x)), 1)
    if len(x) - n_test < 2:
        raise ValueError(f"an MLP read-out needs more than {len(x)} frames")
    return x[:-n_test], y[:-n_test], x[-n_test:], y[-n_test:]
