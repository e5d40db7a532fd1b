"""Seconds per planned action of the V-JEPA 2-AC configuration (random weights, right shapes).

The published planner: ViT-g/16 encoder (256 px, each frame duplicated into a 2-frame tubelet,
16x16 = 256 tokens of width 1408) + the 24-layer, 1024-wide AC predictor with 7-D actions and
states; CEM 800 samples x 10 iterations, top 10, horizon 1, L1 energy on layer-normed features.
One planned action = encode the current and goal frames, then run the CEM. The run prints the
published figure next to its own.

    python experiments/bench_vjepa2_ac.py --device cuda              # bf16 autocast, SDPA, KV cache
    python experiments/bench_vjepa2_ac.py --device cpu --small       # a shrunken model, for a CPU check
    python experiments/bench_vjepa2_ac.py --device cuda --fp32 --actions 5
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import tyro

from planners import plan_cem
from worldmodel.encoder import VideoEncoder
from worldmodel.official import official_ac_predictor_config, official_encoder_config, vjepa2_ac_planner
from worldmodel.predictor import ActionConditionedPredictor
from worldmodel.train.runtime import resolve_device
from worldmodel.world_model import WorldModel, make_latent_goal_cost


@dataclass(frozen=True)
class BenchVJEPA2ACConfig:
    """Seconds per planned action of the V-JEPA 2-AC configuration (random weights, right shapes)."""

    device: str = "auto"
    """auto, cpu or cuda[:i]"""
    actions: int = 3
    """planned actions to time (after one warm-up)"""
    small: bool = False
    """a shrunken model, for a CPU check: ViT-L encoder at 128 px, 4-layer 256-wide predictor"""
    fp32: bool = False
    """no bf16 autocast on CUDA"""


def main(cfg: BenchVJEPA2ACConfig) -> None:
    device = resolve_device(cfg.device)
    torch.manual_seed(0)
    if cfg.small:
        enc_cfg = official_encoder_config("vitl").__class__(
            **{**official_encoder_config("vitl").__dict__, "image_size": 128}
        )
        pred_cfg = official_ac_predictor_config(enc_dim=1024, grid=8, dim=256, depth=4, heads=4)
    else:
        enc_cfg, pred_cfg = official_encoder_config("vitg"), official_ac_predictor_config()
    encoder = VideoEncoder(enc_cfg).to(device).eval().requires_grad_(False)
    predictor = ActionConditionedPredictor(pred_cfg).to(device).eval().requires_grad_(False)
    wm = WorldModel.from_modules(encoder, predictor)
    wm.bf16 = device.type == "cuda" and not cfg.fp32
    cem = vjepa2_ac_planner()
    size = enc_cfg.image_size
    frames = torch.rand(2, 3, size, size, device=device)
    low, high = -torch.ones(7, device=device), torch.ones(7, device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    times = []
    for i in range(cfg.actions + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        z = wm.encode(frames)  # current and goal frames
        cost = make_latent_goal_cost(wm, z[:1], torch.zeros(1, 7, device=device), z[1], metric="l1")
        plan_cem(cost, low, high, cem, generator=gen)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first action warms up kernels and allocators
            times.append(time.perf_counter() - t)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    params = sum(p.numel() for p in predictor.parameters()) / 1e6
    print(
        f"# {name}; encoder {enc_cfg.dim}x{enc_cfg.depth} at {size} px, predictor {pred_cfg.dim}x{pred_cfg.depth} "
        f"({params:.0f}M params), CEM {cem.samples}x{cem.iterations}, horizon {cem.horizon}, bf16 {wm.bf16}"
    )
    print(
        f"seconds per planned action: {sum(times) / len(times):.2f} (mean of {len(times)}; published: 16 s on an RTX 4090)"
    )


if __name__ == "__main__":
    main(tyro.cli(BenchVJEPA2ACConfig))
