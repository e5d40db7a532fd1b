"""Typed settings of a training run (optimiser, schedule, loop, device) and config files."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    """peak learning rate"""
    weight_decay: float = 0.04
    betas: tuple[float, float] = (0.9, 0.99)
    warmup: float = 0.05
    """fraction of steps of linear warm-up"""
    cooldown: float = 0.2
    """fraction of steps of linear decay to zero at the end"""
    grad_clip: float = 1.0
    """max gradient norm (0: off)"""

    def lr_at(self, step: int, total: int) -> float:
        """Warmup-constant-cooldown: linear up, flat, linear down to zero."""
        warm, cool = max(int(self.warmup * total), 1), int(self.cooldown * total)
        if step < warm:
            return self.lr * (step + 1) / warm
        if cool and step >= total - cool:
            return self.lr * max(total - step, 0) / cool
        return self.lr


@dataclass(frozen=True)
class LoopConfig:
    steps: int = 2000
    """optimiser steps"""
    batch_size: int = 32
    """global batch (split across DDP processes)"""
    seed: int = 0
    device: str = "auto"
    """auto (CUDA when present, else CPU), cpu, cuda, cuda:1, ..."""
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    """auto: bf16 autocast on CUDA, fp32 on CPU"""
    threads: int = 0
    """CPU threads for torch (0: leave torch's default)"""
    parallel: Literal["auto", "ddp", "fsdp"] = "auto"
    """under torchrun: DDP, or FSDP2 (parameters, gradients and optimiser state sharded);
    auto picks FSDP2 for the large presets (ViT-L/H/g encoders, the V-JEPA 2-AC predictor)"""
    num_workers: int = 0
    """DataLoader worker processes"""
    compile: Literal["off", "default", "reduce-overhead"] = "off"
    """compile the loss (forward, and backward through it) with torch.compile in this mode:
    default fuses small operations; reduce-overhead also captures CUDA graphs (CUDA only). The
    first steps then spend tens of seconds to minutes compiling"""
    log_every: int = 25
    eval_every: int = 250
    """steps between representation checks"""
    ckpt_every: int = 250
    """steps between checkpoints (and one at the end)"""
    force_new: bool = False
    """start over in a run directory that holds a run: delete its checkpoint, metrics and weights
    (without it, a rerun with the same settings resumes and one with other settings is refused)"""
    stop_at: int = 0
    """stop after this many steps as if interrupted (0: run to the end); for time-boxed jobs and tests"""
    progress: bool = True


def to_plain(obj: Any) -> Any:
    """Dataclasses, paths and tuples -> JSON/YAML-safe plain values."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_config(cfg: Any, run_dir: Path) -> None:
    """Write the resolved config to ``run_dir/config.yaml`` (and config.json for tools)."""
    plain = to_plain(cfg)
    for name, text in (
        ("config.yaml", yaml.safe_dump(plain, sort_keys=False)),
        ("config.json", json.dumps(plain, indent=2)),
    ):
        tmp = run_dir / f"{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, run_dir / name)  # never a half-written config


def load_config_dict(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"no config.json in {run_dir}: not a run directory?")
    return json.loads(path.read_text())


def from_plain(cls: type, data: dict) -> Any:
    """Rebuild a (nested, frozen) dataclass from ``to_plain`` output."""
    import typing

    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            value = from_plain(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            args = typing.get_args(hint)
            if args and dataclasses.is_dataclass(args[0]):
                value = tuple(from_plain(args[0], v) for v in value)
            else:
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif hint is Path or (typing.get_origin(hint) is typing.Union and Path in typing.get_args(hint)):
            value = None if value is None else Path(value)
        kwargs[f.name] = value
    return cls(**kwargs)
