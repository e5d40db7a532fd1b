"""Checkpoints: weights as safetensors, the rest (optimiser, step) loadable with weights_only=True.

``<run>/checkpoint/model.safetensors`` holds every module's state under ``<name>.<key>``;
``<run>/checkpoint/state.pt`` holds the step, the optimiser state and the torch RNG state (plain
tensors and numbers only). Both are written to temporary names and renamed, state last, so a
run killed mid-save keeps its previous checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def _paths(run_dir: Path) -> tuple[Path, Path]:
    d = run_dir / "checkpoint"
    return d / "model.safetensors", d / "state.pt"


def save_checkpoint(
    run_dir: Path, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer | None, step: int
) -> None:
    weights_path, state_path = _paths(run_dir)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{name}.{k}": v.detach().cpu().contiguous()
        for name, m in modules.items()
        for k, v in m.state_dict().items()
    }
    tmp_w, tmp_s = weights_path.with_suffix(".tmp"), state_path.with_suffix(".tmp")
    save_file(tensors, str(tmp_w), metadata={"step": str(step)})
    state = {
        "step": step,
        "optimizer": optimizer.state_dict() if optimizer else None,
        "torch_rng": torch.get_rng_state(),
    }
    torch.save(state, tmp_s)
    os.replace(tmp_w, weights_path)
    os.replace(tmp_s, state_path)


def has_checkpoint(run_dir: Path) -> bool:
    return all(p.exists() for p in _paths(run_dir))


def load_weights(path: Path, modules: dict[str, nn.Module], strict: bool = True) -> None:
    """Load ``<name>.<key>`` tensors from a safetensors file into the named modules."""
    tensors = load_file(str(path))
    for name, m in modules.items():
        prefix = f"{name}."
        sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sub:
            raise KeyError(f"{path} holds no weights for {name!r}")
        m.load_state_dict(sub, strict=strict)


def load_checkpoint(
    run_dir: Path, modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer | None
) -> int:
    """Restore modules, optimiser and RNG; returns the step to continue from."""
    weights_path, state_path = _paths(run_dir)
    load_weights(weights_path, modules)
    state = torch.load(state_path, weights_only=True, map_location="cpu")
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])
