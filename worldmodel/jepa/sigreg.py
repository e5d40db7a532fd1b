"""SIGReg: a penalty that pulls a set of embeddings towards an isotropic standard Gaussian.

As proposed for LeJEPA (Balestriero & LeCun, 2025): project the embeddings on random unit
directions and, per direction, measure how far the 1-D sample is from N(0, 1) with the
Epps-Pulley statistic, the weighted squared distance between the sample's empirical
characteristic function and exp(-t^2 / 2):

    EP = integral |phi_N(t) - exp(-t^2 / 2)|^2 w(t) dt,   w(t) = exp(-t^2 / 2)

(the test statistic multiplies this by N; as a loss it is left unscaled, so its weight does not
depend on the batch's token count).

An isotropic Gaussian is the only distribution every 1-D projection of which is standard normal,
so the penalty rules out collapse (all embeddings alike) and dimensional collapse (a few dims
carrying all the spread) without a covariance matrix. Directions are drawn by the caller (the
training loop owns the randomness); this module holds no state.

Legend: N samples, D embedding dims, M directions, G integration points.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def random_directions(dim: int, count: int, generator: torch.Generator) -> Tensor:
    """``count`` random unit vectors in R^dim -> (D, M)."""
    a = torch.randn(dim, count, generator=generator)
    return a / a.norm(dim=0, keepdim=True)


def epps_pulley(
    x: Tensor, directions: Tensor, t_max: float = 3.0, points: int = 17, global_batch: bool = False
) -> Tensor:
    """x (N, D), directions (D, M) -> the Epps-Pulley distance to N(0, 1), mean over the M
    projections (a scalar: 0 for a perfect fit; about 0.5 when all N embeddings are equal).
    ``global_batch``: when several processes train, the characteristic function is taken over
    all their samples (sums all-reduced, differentiably), so two processes compute what one does
    on their joined batch."""
    if x.ndim != 2 or directions.ndim != 2 or directions.shape[0] != x.shape[1]:
        raise ValueError(
            f"need x (N, D) and directions (D, M); got {tuple(x.shape)}, {tuple(directions.shape)}"
        )
    p = x.float() @ directions.to(x.device, torch.float32)  # (N, M)
    t = torch.linspace(0.0, t_max, points, device=x.device)  # (G,); the integrand is even in t
    tp = p[..., None] * t  # (N, M, G)
    gauss = torch.exp(-0.5 * t * t)  # (G,): the target's characteristic function, also the weight
    cos, sin = tp.cos().sum(0), tp.sin().sum(0)  # (M, G)
    n = p.new_full((1,), float(p.shape[0]))
    if global_batch and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        from torch.distributed.nn.functional import all_reduce

        sums = all_reduce(torch.cat([cos.flatten(), sin.flatten(), n]))
        cos, sin, n = sums[: cos.numel()].view_as(cos), sums[cos.numel() : -1].view_as(sin), sums[-1:]
    err = (cos / n - gauss).square() + (sin / n).square()  # (M, G)
    integral = torch.trapezoid(err * gauss, t, dim=-1) * 2.0  # (M,): both halves of the line
    return integral.mean()
