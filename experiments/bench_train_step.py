"""Predictor training step rate: the step as it was, the step now, and the step now compiled, at
several batch sizes, in one run.

A full ``wm train-ac`` step on random stored features (teacher-forced and rolled-out L1 losses,
backward, gradient clipping, AdamW) for a predictor preset. "before" is the step as the library
took it until 2026-12-04: a teacher-forced pass over all frames, a rollout from scratch (its first
step computing again what the teacher-forced pass had) and the per-parameter AdamW. "now" is
``sequence_loss`` (the last frame's unused prediction skipped, the rollout going on from the
teacher-forced pass) with the trainers' fused AdamW (``worldmodel.train.loop.adamw``); "compiled"
adds ``--loop.compile default`` (and, on CUDA, ``reduce-overhead``: CUDA graphs). "before" and
"now" alternate ``--repeats`` times and are averaged; the compile warm-up is what a run amortises.

    python experiments/bench_train_step.py                            # CPU, 2 threads, cpu-small
    python experiments/bench_train_step.py --device cuda --batches 64 256 1024 --presets cpu-small gpu
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import tyro

from worldmodel.predictor import ActionConditionedPredictor, PredictorConfig
from worldmodel.train.config import OptimConfig
from worldmodel.train.loop import adamw, compiled
from worldmodel.train.predictor import PredictorSize, TrainACConfig, sequence_loss
from worldmodel.train.runtime import Runtime, resolve_device


@dataclass(frozen=True)
class BenchTrainStepConfig:
    """Predictor training step rate: the step as it was, now, and compiled, at several batch sizes."""

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
    steps: int = 40
    """timed steps per measurement (after 5 warm-up steps, which include any compilation)"""
    repeats: int = 2
    """alternating measurements of before and now per row"""
    compile: bool = True
    """also time the compiled step"""
    device: str = "cpu"
    """auto, cpu or cuda[:i] (bf16 autocast on CUDA, as the trainers)"""
    threads: int = 2
    """torch intra-op threads"""


def before_loss(model, z, actions, states, cfg: TrainACConfig) -> torch.Tensor:
    """The train-ac loss as computed until 2026-12-04 (equal in value, more work)."""
    pred_z, pred_s = model(z, actions, states)
    loss = (pred_z[:, :-1] - z[:, 1:]).abs().mean() + (pred_s[:, :-1] - states[:, 1:]).abs().mean()
    R = cfg.rollout_steps or z.shape[1] - 1
    roll_z, roll_s = model.unroll(z[:, :1], states[:, :1], actions[:, :R])
    return loss + (roll_z - z[:, 1 : R + 1]).abs().mean() + (roll_s - states[:, 1 : R + 1]).abs().mean()


def _rate(model, opt, loss_of, batch, steps: int, rt: Runtime) -> tuple[float, float]:
    """(steps/s over ``steps`` timed steps, seconds of the 5 warm-up steps)."""

    def step():
        with rt.autocast():
            loss = loss_of(*batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def sync():
        if rt.device.type == "cuda":
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


def fresh(pcfg: PredictorConfig, mode: str, run: TrainACConfig, rt: Runtime):
    """(model, optimiser, loss function) of the step ``before``, or now with compile ``mode``."""
    torch.manual_seed(0)
    model = ActionConditionedPredictor(pcfg).to(rt.device)
    params = list(model.parameters())
    if mode == "before":
        return model, torch.optim.AdamW(params, lr=1e-4), lambda *b: before_loss(model, *b, run)
    opt = adamw([p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2], OptimConfig(), rt)
    return model, opt, compiled(lambda *b: sequence_loss(model, *b, run)[0], mode, rt)


def main(cfg: BenchTrainStepConfig) -> None:
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    rt = Runtime(device=device, bf16=device.type == "cuda")
    run = TrainACConfig(data="-", encoder="-")  # the loss weights and rollout of train-ac's defaults
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {cfg.threads} threads"
    print(
        f"# {name}, torch {torch.__version__}, {cfg.frames} frames of {cfg.tokens_side}x{cfg.tokens_side} tokens"
    )
    modes = ["default", "reduce-overhead"] if device.type == "cuda" else ["default"]
    modes = modes if cfg.compile else []
    head = "| predictor | batch | before steps/s | now steps/s | now / before |"
    head += "".join(f" compiled ({m}) steps/s | compiled / before | warm-up (s) |" for m in modes)
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for preset in cfg.presets:
        size = PredictorSize.preset(preset)
        pcfg = PredictorConfig(enc_dim=cfg.enc_dim, grid=cfg.tokens_side, pool=0, action_dim=10, state_dim=4,
                               dim=size.dim, depth=size.depth, heads=size.heads, residual=size.residual)  # fmt: skip

        for B in cfg.batches:
            g = torch.Generator().manual_seed(0)
            shapes = ((B, cfg.frames, pcfg.tokens, cfg.enc_dim), (B, cfg.frames, 10), (B, cfg.frames, 4))
            batch = [torch.randn(s, generator=g).to(device) for s in shapes]
            rates = {"before": [], "off": []}
            for _ in range(cfg.repeats):
                for mode in rates:
                    rates[mode].append(_rate(*fresh(pcfg, mode, run, rt), batch, cfg.steps, rt)[0])
            before, now = (sum(r) / len(r) for r in rates.values())
            row = f"| {preset} | {B} | {before:.2f} | {now:.2f} | {now / before:.2f}x |"
            for mode in modes:
                rate, warm = _rate(*fresh(pcfg, mode, run, rt), batch, cfg.steps, rt)
                row += f" {rate:.2f} | {rate / before:.2f}x | {warm:.0f} |"
            print(row, flush=True)


if __name__ == "__main__":
    main(tyro.cli(BenchTrainStepConfig))
