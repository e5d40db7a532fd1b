"""Pretraining throughput (clips/s) of the encoder presets: a full training step (masks, context
and target encoders, predictor, backward, AdamW, EMA) on random clips, in one run.

    python experiments/bench_pretrain.py                          # CPU presets
    python experiments/bench_pretrain.py --presets vitl --device cuda --batch 32 --frames 16
    python experiments/bench_pretrain.py --presets tiny cpu-small --steps 2
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import tyro

from worldmodel.encoder import EncoderConfig, EncoderPreset
from worldmodel.jepa.masks import sample_masks
from worldmodel.jepa.objective import JEPA, JEPAConfig, MaskPredictorConfig
from worldmodel.train.runtime import resolve_device


@dataclass(frozen=True)
class BenchPretrainConfig:
    """Pretraining throughput (clips/s) of the encoder presets: a full training step on random clips."""

    presets: tuple[EncoderPreset, ...] = ("tiny", "cpu-small", "cpu-base")
    """encoder presets to time, one row each"""
    batch: int = 32
    """clips per training step"""
    frames: int = 4
    """frames per clip (a multiple of the preset's tubelet)"""
    steps: int = 5
    """timed training steps per preset (after two warm-up steps)"""
    device: str = "auto"
    """auto, cpu or cuda[:i] (bf16 autocast on CUDA)"""
    threads: int = 2
    """torch intra-op threads"""
    cudnn_attention: bool = False
    """leave cuDNN attention on (torch's default)"""


def bench(preset: str, batch: int, frames: int, steps: int, device: torch.device) -> float:
    enc = EncoderConfig.preset(preset)
    pred = (
        MaskPredictorConfig.tiny()
        if preset == "tiny"
        else MaskPredictorConfig(
            dim=384 if enc.dim >= 1024 else 96,
            depth=12 if enc.dim >= 1024 else 2,
            heads=12 if enc.dim >= 1024 else 4,
        )
    )
    model = JEPA(JEPAConfig(encoder=enc, predictor=pred, sigreg=0.0)).to(device)  # the plain V-JEPA loss
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    video = torch.rand(batch, frames, 3, enc.image_size, enc.image_size, device=device)
    bf16 = device.type == "cuda"
    times = []
    for step in range(steps + 2):
        masks = sample_masks(
            batch, enc.grid, frames // enc.tubelet, model.cfg.masks, torch.Generator().manual_seed(step)
        )
        masks = [(c.to(device), t.to(device)) for c, t in masks]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, _ = model(video, masks)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.update_target(0.999)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return batch / (sum(times[2:]) / steps)  # the first two steps warm up


def main(cfg: BenchPretrainConfig) -> None:
    torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    if cfg.cudnn_attention:
        torch.backends.cuda.enable_cudnn_sdp(True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {cfg.threads} threads"
    print(f"# {name}, batch {cfg.batch}, {cfg.frames} frames, torch {torch.__version__}")
    print("| preset | image | tokens/clip | encoder params | clips/s | s/step |")
    print("|---|---|---|---|---|---|")
    for preset in cfg.presets:
        enc = EncoderConfig.preset(preset)
        params = sum(
            p.numel()
            for p in JEPA(JEPAConfig(encoder=enc, predictor=MaskPredictorConfig.tiny())).encoder.parameters()
        )
        rate = bench(preset, cfg.batch, cfg.frames, cfg.steps, device)
        tokens = (cfg.frames // enc.tubelet) * enc.tokens_per_tubelet
        print(
            f"| {preset} | {enc.image_size} | {tokens} | {params / 1e6:.2f}M | {rate:.1f} | {cfg.batch / rate:.3f} |"
        )


if __name__ == "__main__":
    main(tyro.cli(BenchPretrainConfig))
