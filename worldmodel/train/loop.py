"""The optimisation loop shared by encoder pretraining and predictor training.

Per step: set the scheduled learning rate, compute the loss (``loss_fn``), back-propagate, clip,
step, run ``after_step`` (e.g. the EMA update); log every ``log_every`` steps (the loss's parts
may be tensors, read only then: reading waits for the device), run ``on_eval`` every
``eval_every``, checkpoint every ``ckpt_every`` and at the end; stop early at
``stop_at`` as if interrupted. Returns the last logged metrics and the number of steps done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from worldmodel.train.checkpoint import save_checkpoint
from worldmodel.train.config import LoopConfig, OptimConfig
from worldmodel.train.logger import RunLogger
from worldmodel.train.parallel import as_float
from worldmodel.train.runtime import Runtime, all_reduce_mean


def split_decay(params) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Parameters with weight decay (matrices) and without (vectors: norm gains, biases)."""
    params = list(params)
    return [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]


def adamw(
    decay: list[nn.Parameter], no_decay: list[nn.Parameter], optim: OptimConfig, rt: Runtime
) -> torch.optim.AdamW:
    """AdamW with ``optim``'s weight decay on ``decay`` and none on ``no_decay``; its fused kernel
    (one pass over all parameters rather than a few small operations per parameter) unless the
    parameters are sharded (FSDP2)."""
    groups = [
        {"params": decay, "weight_decay": optim.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = True if not rt.sharded and rt.device.type in ("cpu", "cuda") else None
    return torch.optim.AdamW(groups, lr=optim.lr, betas=optim.betas, fused=fused)


def compiled(fn: Callable, mode: str, rt: Runtime) -> Callable:
    """``fn`` through ``torch.compile`` in ``mode`` (``LoopConfig.compile``; ``off``: fn itself)."""
    if mode == "off":
        return fn
    if mode == "reduce-overhead" and rt.device.type != "cuda":
        raise ValueError(f"--loop.compile reduce-overhead captures CUDA graphs; this run is on {rt.device}")
    return torch.compile(fn, mode=mode)


LossFn = Callable[[int, Any], tuple[torch.Tensor, dict[str, torch.Tensor | float]]]


def run_training(
    *, name: str, rt: Runtime, loop: LoopConfig, optim: OptimConfig, run: Path, model: nn.Module,
    modules: dict[str, nn.Module], opt: torch.optim.Optimizer, batches: Iterable, start: int, logger: RunLogger,
    loss_fn: LossFn, after_step: Callable[[int], dict[str, float]] | None = None,
    on_eval: Callable[[int], dict[str, float]] | None = None,
) -> tuple[dict[str, float], int]:  # fmt: skip
    metrics: dict[str, float] = {}
    bar = tqdm(
        total=loop.steps, initial=start, desc=name, unit="step", disable=not (rt.main and loop.progress)
    )
    t_last, done, saved = time.perf_counter(), start, start
    for step, batch in zip(range(start, loop.steps), batches):
        lr = optim.lr_at(step, loop.steps)
        for group in opt.param_groups:
            group["lr"] = lr
        with rt.autocast():
            loss, parts = loss_fn(step, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip or float("inf"))
        opt.step()
        extra = after_step(step) if after_step else {}
        done = step + 1
        bar.update(1)
        if done % loop.log_every == 0 or done == loop.steps:
            now = time.perf_counter()
            metrics = {"loss": float(all_reduce_mean(loss.detach(), rt)), "lr": lr, "grad_norm": as_float(gnorm),
                       **{k: as_float(v) for k, v in parts.items()}, **extra, "samples_per_s": loop.log_every * loop.batch_size / max(now - t_last, 1e-9)}  # fmt: skip
            t_last = now
            bar.set_postfix(loss=f"{metrics['loss']:.4f}")
            logger.log(done, metrics)
        if on_eval and (rt.main or rt.sharded) and (done % loop.eval_every == 0 or done == loop.steps):
            rep = on_eval(done)
            metrics.update(rep)
            logger.log(done, rep)
        if done % loop.ckpt_every == 0 or done == loop.steps:
            save_checkpoint(run, modules, model, opt, done, rt)
            saved = done
        if loop.stop_at and done >= loop.stop_at:
            break
    bar.close()
    logger.close()
    if saved != done:
        save_checkpoint(run, modules, model, opt, done, rt)
    return metrics, done
