"""Speed of the latent planning cost: seconds per re-plan and the share of peak matmul FLOP/s.

In one run: measures the machine's peak fp32 matmul rate (large square matmuls), then for each
predictor size and pooling, times the world-model cost of CEM re-plans (S candidates x H
horizon steps per iteration, KV-cached rollouts) and counts its FLOPs with torch's FLOP counter.

    python experiments/bench_latent_cost.py                     # CPU, 2 threads
    python experiments/bench_latent_cost.py --device cuda --samples 300 --iterations 30
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.training.runtime import resolve_device


def peak_matmul(device: torch.device, n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, default=300)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--horizon", type=int, default=5)
    p.add_argument(
        "--sizes",
        nargs="*",
        default=["64x3x4", "128x4x4", "128x4x8", "64x3x2"],
        help="predictor width x depth x pooled grid side",
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    peak = peak_matmul(device)
    print(
        f"# {device}, {args.threads} threads; peak fp32 matmul {peak / 1e9:.1f} GFLOP/s; "
        f"CEM {args.samples} x {args.iterations}, horizon {args.horizon}"
    )
    print(
        "| predictor (dim x depth) | tokens/frame | MFLOP per candidate-step | s / re-plan | GFLOP/s | share of peak |"
    )
    print("|---|---|---|---|---|---|")
    for dim, depth, pool in (tuple(int(v) for v in size.split("x")) for size in args.sizes):
        cfg = PredictorConfig(enc_dim=128, grid=8, pool=pool, action_dim=10, state_dim=4, dim=dim, depth=depth,
                              heads=4)  # fmt: skip
        model = ActionConditionedPredictor(cfg).to(device).eval()
        z0 = torch.randn(1, cfg.tokens, 128, device=device)
        s0 = torch.randn(1, 4, device=device)
        acts = torch.rand(args.samples, args.horizon, 10, device=device)
        goal = torch.randn(cfg.tokens, 128, device=device)

        def cost(a, model=model, z0=z0, s0=s0, goal=goal):
            pred, _ = model.rollout(z0, s0, a)
            return (pred[:, -1] - goal).pow(2).mean(dim=(-2, -1))

        cost(acts)
        with FlopCounterMode(display=False) as fc:
            cost(acts)
        flops = fc.get_total_flops()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.iterations):
            cost(acts)
        if device.type == "cuda":
            torch.cuda.synchronize()
        sec = time.perf_counter() - t
        rate = flops * args.iterations / sec
        per = flops / (args.samples * args.horizon) / 1e6
        print(
            f"| {dim} x {depth} | {cfg.tokens}+2 | {per:.2f} | {sec:.3f} | {rate / 1e9:.1f} | {rate / peak:.0%} |"
        )


if __name__ == "__main__":
    main()
