"""Speed of the latent planning cost: seconds per re-plan and the share of peak matmul FLOP/s.

In one run: measures the machine's peak fp32 matmul rate (large square matmuls), then for each
predictor size and pooling, times the world-model cost of CEM re-plans (S candidates x H
horizon steps per iteration, KV-cached rollouts) and counts its FLOPs with torch's FLOP counter.
Each size is timed two ways side by side: ``rollout`` (the planning path: token-major decoding
into key/value buffers allocated once, RoPE folded into the qkv projections) and the training
path (``unroll``: the blocks' forward with a concatenating cache), without autograd both.

    python experiments/bench_latent_cost.py                     # CPU, 2 threads
    python experiments/bench_latent_cost.py --device cuda --samples 300 --iterations 30
    python experiments/bench_latent_cost.py --sizes 64x3x4 --threads 1
    python experiments/bench_latent_cost.py --sizes 64x3x2 --compile   # eager and torch.compile'd
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import tyro
from torch.utils.flop_counter import FlopCounterMode

from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.train.runtime import resolve_device


@dataclass(frozen=True)
class LatentCostConfig:
    """Speed of the latent planning cost: seconds per re-plan and the share of peak matmul FLOP/s."""

    device: str = "cpu"
    """auto, cpu or cuda[:i]"""
    threads: int = 2
    """torch intra-op threads"""
    samples: int = 300
    """CEM candidates per iteration (S)"""
    iterations: int = 30
    """CEM iterations per re-plan (one batched cost call each)"""
    horizon: int = 5
    """model steps per candidate (H)"""
    sizes: tuple[str, ...] = ("64x3x4", "128x4x4", "128x4x8", "64x3x2")
    """predictors to time, each as width x depth x pooled grid side"""
    compile: bool = False
    """also time each with the predictor's rollout compiled (``torch.compile``; its first call,
    the compilation, is reported and not timed)"""


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


def main(cfg: LatentCostConfig) -> None:
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    peak = peak_matmul(device)
    print(
        f"# {device}, {cfg.threads} threads; peak fp32 matmul {peak / 1e9:.1f} GFLOP/s; "
        f"CEM {cfg.samples} x {cfg.iterations}, horizon {cfg.horizon}"
    )
    print(
        "| predictor (dim x depth) | tokens/frame | MFLOP per candidate-step | s / re-plan | GFLOP/s | share of peak |"
    )
    print("|---|---|---|---|---|---|")
    for dim, depth, pool in (tuple(int(v) for v in size.split("x")) for size in cfg.sizes):
        pcfg = PredictorConfig(enc_dim=128, grid=8, pool=pool, action_dim=10, state_dim=4, dim=dim,
                               depth=depth, heads=4)  # fmt: skip
        model = ActionConditionedPredictor(pcfg).to(device).eval()
        z0 = torch.randn(1, pcfg.tokens, 128, device=device)
        s0 = torch.randn(1, 4, device=device)
        acts = torch.rand(cfg.samples, cfg.horizon, 10, device=device)
        goal = torch.randn(pcfg.tokens, 128, device=device)

        def cost(a, rollout=model.rollout, z0=z0, s0=s0, goal=goal):
            pred, _ = rollout(z0, s0, a)
            return (pred[:, -1] - goal).pow(2).mean(dim=(-2, -1))

        cost(acts)
        with FlopCounterMode(display=False) as fc:
            cost(acts)
        flops = fc.get_total_flops()
        per = flops / (cfg.samples * cfg.horizon) / 1e6

        @torch.no_grad()
        def training_path(z0, s0, a, model=model):  # the blocks' forward, a concatenating cache
            S = a.shape[0]
            return model.unroll(z0[-1:].expand(S, 1, -1, -1), s0[-1:].expand(S, 1, -1), a)

        variants = [("", cost), (", training path (unroll)", lambda a: cost(a, rollout=training_path))]
        if cfg.compile:
            compiled = torch.compile(model.rollout, dynamic=False)
            t = time.perf_counter()
            cost(acts, rollout=compiled)
            variants.append((f", compiled ({time.perf_counter() - t:.0f} s to compile)",
                             lambda a, c=compiled: cost(a, rollout=c)))  # fmt: skip
        for label, fn in variants:
            sec = _replan_seconds(fn, acts, cfg.iterations, device)
            rate = flops * cfg.iterations / sec
            print(f"| {dim} x {depth}{label} | {pcfg.tokens}+2 | {per:.2f} | {sec:.3f} | {rate / 1e9:.1f} | "
                  f"{rate / peak:.0%} |")  # fmt: skip


def _replan_seconds(cost, acts, iterations: int, device) -> float:
    """Seconds of one CEM re-plan: ``iterations`` batched cost calls."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iterations):
        cost(acts)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


if __name__ == "__main__":
    main(tyro.cli(LatentCostConfig))
