"""Pretraining throughput (clips/s) of the encoder presets: a full training step (masks, context
and target encoders, predictor, backward, AdamW, EMA) on random clips, in one run.

    python experiments/bench_pretrain.py                          # CPU presets
    python experiments/bench_pretrain.py --presets vitl --device cuda --batch 32 --frames 16
"""

from __future__ import annotations

import argparse
import time

import torch

from worldmodel.encoder import EncoderConfig
from worldmodel.jepa import JEPA, JEPAConfig, MaskPredictorConfig
from worldmodel.masks import sample_masks
from worldmodel.training.runtime import resolve_device


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
    model = JEPA(JEPAConfig(encoder=enc, predictor=pred)).to(device)
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="*", default=["tiny", "cpu-small", "cpu-base"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--cudnn-attention", action="store_true", help="leave cuDNN attention on (torch's default)"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.cudnn_attention:
        torch.backends.cuda.enable_cudnn_sdp(True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"# {name}, batch {args.batch}, {args.frames} frames, torch {torch.__version__}")
    print("| preset | image | tokens/clip | encoder params | clips/s | s/step |")
    print("|---|---|---|---|---|---|")
    for preset in args.presets:
        enc = EncoderConfig.preset(preset)
        params = sum(
            p.numel()
            for p in JEPA(JEPAConfig(encoder=enc, predictor=MaskPredictorConfig.tiny())).encoder.parameters()
        )
        rate = bench(preset, args.batch, args.frames, args.steps, device)
        tokens = (args.frames // enc.tubelet) * enc.tokens_per_tubelet
        print(
            f"| {preset} | {enc.image_size} | {tokens} | {params / 1e6:.2f}M | {rate:.1f} | {args.batch / rate:.3f} |"
        )


if __name__ == "__main__":
    main()
