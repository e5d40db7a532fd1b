"""Device, precision, threads, seeding and DDP set-up for a training process."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    bf16: bool = False
    sharded: bool = False  # FSDP2: parameters split across processes (set by the trainer)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        if self.bf16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


def resolve_device(name: str) -> torch.device:
    """``auto``, ``cpu``, ``cuda[:i]`` -> the device; on CUDA also picks the attention kernels."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --device auto or cpu")
        prefer_flash_attention()
    return device


def prefer_flash_attention() -> None:
    """Keep ``scaled_dot_product_attention`` off the cuDNN backend (flash / memory-efficient
    kernels instead): cuDNN attention builds a graph on the CPU at every call, which leaves small
    models CPU-bound (``python experiments/bench_pretrain.py --device cuda --cudnn-attention``
    measures both)."""
    torch.backends.cuda.enable_cudnn_sdp(False)


def setup(device: str, precision: str, threads: int) -> Runtime:
    """Resolve the device, start DDP under torchrun (gloo on CPU, NCCL on CUDA)."""
    if threads:
        torch.set_num_threads(threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    dev = resolve_device(device)
    if world > 1:
        if dev.type == "cuda":
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    bf16 = dev.type == "cuda" if precision == "auto" else precision == "bf16"
    return Runtime(device=dev, rank=rank, world=world, bf16=bf16)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def training_process(device: str, precision: str, threads: int) -> Iterator[Runtime]:
    """``setup`` for the length of a training run, ``teardown`` after it (also on errors)."""
    rt = setup(device, precision, threads)
    try:
        yield rt
    finally:
        teardown()


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A generator that depends only on (seed, step, stream): what makes resume exact."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + stream)


def all_reduce_mean(x: torch.Tensor, rt: Runtime) -> torch.Tensor:
    if rt.world > 1:
        x = x.clone()
        dist.all_reduce(x)
        x /= rt.world
    return x


def loader_context(num_workers: int) -> str | None:
    """The DataLoader's process start method: forkserver when it has worker processes, since a
    forked worker can hang on locks the parent held (EGL rendering, thread pools); None without."""
    return "forkserver" if num_workers > 0 else None
