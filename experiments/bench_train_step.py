"""Predictor training step rate, eager against ``torch.compile``, at several batch sizes, in one run.

A full ``wm train-ac`` step on random stored features (teacher-forced and rolled-out L1 losses,
backward, AdamW) for a predictor preset: steps/s eager, steps/s with the predictor's ``forward``
and ``unroll`` compiled, the ratio, and the compile warm-up (what a run must amortise).

    python experiments/bench_train_step.py                            # CPU, 2 threads, cpu-small
    python experiments/bench_train_step.py --device cuda --batches 64 256 1024 --presets cpu-small gpu
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import tyro

from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.train.predictor import PredictorSize, TrainACConfig, sequence_loss
from worldmodel.train.runtime import resolve_device


@dataclass(frozen=True)
class BenchTrainStepConfig:
    """Predictor training step rate, eager against torch.compile, at several batch sizes."""

    presets: tuple[str, ...] = ("cpu-small",)
    """predictor presets (tiny, cpu-small, cpu, gpu, vjepa2-ac)"""
    batches: tuple[int, ...] = (64,)
    """sequences per step, one row each"""
    frames: int = 6
    """frames per sequence (the rollout covers frames - 1 steps)"""
    tokens_side: int = 2
    """pooled patch grid side (the demo's 2 x 2)"""
    enc_dim: int = 128
    """feature width (the cpu-small encoder's)"""
    steps: int = 60
    """timed steps per row (after 5 warm-up steps, which include the compilation)"""
    compile: bool = True
    """also time the compiled step"""
    device: str = "cpu"
    """auto, cpu or cuda[:i]"""
    threads: int = 2
    """torch intra-op threads"""


def _rate(model, cfg: TrainACConfig, batch, steps: int, device) -> tuple[float, float]:
    """(steps/s over ``steps`` timed steps, seconds of the 5 warm-up steps)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        loss, _ = sequence_loss(model, *batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    t = time.perf_counter()
    for _ in range(5):
        step()
    sync()
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return steps / (time.perf_counter() - t), warm


def main(cfg: BenchTrainStepConfig) -> None:
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    run = TrainACConfig(data="-", encoder="-")  # the loss weights and rollout of train-ac's defaults
    print(f"device {device}, {cfg.threads} threads, torch {torch.__version__}")
    print("| predictor | batch | eager steps/s | compiled steps/s | compiled / eager | compile warm-up (s) |")
    print("|---|---|---|---|---|---|")
    for preset in cfg.presets:
        size = PredictorSize.preset(preset)
        pcfg = PredictorConfig(enc_dim=cfg.enc_dim, grid=cfg.tokens_side, pool=0, action_dim=10, state_dim=4,
                               dim=size.dim, depth=size.depth, heads=size.heads, residual=size.residual)  # fmt: skip
        for B in cfg.batches:
            g = torch.Generator().manual_seed(0)
            shapes = ((B, cfg.frames, pcfg.tokens, cfg.enc_dim), (B, cfg.frames, 10), (B, cfg.frames, 4))
            batch = [torch.randn(s, generator=g).to(device) for s in shapes]
            torch.manual_seed(0)
            eager, _ = _rate(ActionConditionedPredictor(pcfg).to(device), run, batch, cfg.steps, device)
            compiled = warm = float("nan")
            if cfg.compile:
                torch.manual_seed(0)
                model = ActionConditionedPredictor(pcfg).to(device)
                model.forward = torch.compile(model.forward, dynamic=False)
                model.unroll = torch.compile(model.unroll, dynamic=False)
                compiled, warm = _rate(model, run, batch, cfg.steps, device)
            print(
                f"| {preset} | {B} | {eager:.2f} | {compiled:.2f} | {compiled / eager:.2f}x | {warm:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main(tyro.cli(BenchTrainStepConfig))
