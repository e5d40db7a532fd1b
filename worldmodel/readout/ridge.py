"""The ridge read-out: a linear map from one frame's features to its (encoded) state.

Fitted by ridge regression on standardised features, the regularisation chosen on a held-out
slice, which also scores each state dim's R^2 (its trust, see ``worldmodel.readout``). The same
fit serves the encoder probes (``worldmodel.eval.representation.linear_probe``).

Legend: B batch, F flattened features (N * D), P state dim (the encoded state).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from worldmodel.readout import trust


class RidgeReadout:
    """A linear read-out: features (B, F) -> states (B, P), with per-dim held-out R^2 (``r2``)."""

    def __init__(self, mean: Tensor, std: Tensor, weight: Tensor, bias: Tensor, r2: Tensor, lam: float = 0.0):
        self.mean, self.std, self.weight, self.bias, self.r2 = mean, std, weight, bias, r2
        self.lam = lam  # the regularisation the fit chose

    def __call__(self, features: Tensor) -> Tensor:
        """features (B, F) -> decoded states (B, P)."""
        x = (features.float() - self.mean) / self.std
        return x @ self.weight + self.bias

    @property
    def dim_weights(self) -> Tensor:
        """(P,) how much each decoded dimension can be trusted: held-out R^2 clipped to [0, 1],
        zero below ``MIN_TRUST``."""
        return trust(self.r2)

    def tensors(self) -> dict[str, Tensor]:
        return {"mean": self.mean, "std": self.std, "weight": self.weight, "bias": self.bias, "r2": self.r2}

    @classmethod
    def from_tensors(cls, t: dict[str, Tensor], device="cpu") -> RidgeReadout:
        return cls(*(t[k].to(device) for k in ("mean", "std", "weight", "bias", "r2")))

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        held_out: float = 0.2,
        lambdas: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1),
    ) -> RidgeReadout:
        """Ridge fit on (n, F) features -> (n, P) states; lambda and the per-dimension R^2 from a
        held-out slice. Normal equations solved by Cholesky in float32 (seconds for F = 8192)."""
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        y = torch.as_tensor(np.asarray(y), dtype=torch.float32)
        mu, sd = x.mean(0), x.std(0) + 1e-6
        xs = (x - mu) / sd
        n_test = max(int(held_out * len(xs)), 1)
        fit_x, fit_y, val_x, val_y = xs[:-n_test], y[:-n_test], xs[-n_test:], y[-n_test:]

        # Gram matrices once; every lambda reuses them (the O(n F^2) products dominate)
        fit_mean = fit_y.mean(0)
        gram_fit, rhs_fit = fit_x.T @ fit_x, fit_x.T @ (fit_y - fit_mean)

        def solve(gram: Tensor, rhs: Tensor, n: int, lam: float) -> Tensor:
            g = gram.clone()
            g.diagonal().add_(lam * n)
            return torch.cholesky_solve(rhs, torch.linalg.cholesky(g))

        def val_error(lam: float) -> Tensor:
            w = solve(gram_fit, rhs_fit, len(fit_x), lam)
            return ((val_x @ w + fit_mean - val_y) ** 2).mean(0)  # (P,)

        errors = {lam: val_error(lam) for lam in lambdas}
        best = min(lambdas, key=lambda lam: float(errors[lam].mean()))
        r2 = 1 - errors[best] / val_y.var(0).clamp_min(1e-12)
        bm = y.mean(0)
        gram_all = gram_fit + val_x.T @ val_x
        w = solve(gram_all, xs.T @ (y - bm), len(xs), best)
        return cls(mu, sd, w, bm, r2, best)
