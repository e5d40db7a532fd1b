"""Checkpoints: weights as safetensors, the rest (optimiser, step) loadable with weights_only=True.

``<run>/checkpoint/model.safetensors`` holds every module's state under ``<name>.<key>``;
``<run>/checkpoint/state.pt`` holds the step, the optimiser state (keyed by parameter name) and the
torch RNG state (plain tensors, strings and numbers only). Both hold whole (unsharded) tensors, so
DDP and FSDP2 runs share the format. Both are written to temporary names and renamed, state last, so a
run killed mid-save keeps its previous checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from worldmodel.train.parallel import full_state, load_optimizer_state, optimizer_state
from worldmodel.train.runtime import Runtime


def _paths(run_dir: Path) -> tuple[Path, Path]:
    d = run_dir / "checkpoint"
    return d / "model.safetensors", d / "state.pt"


def save_checkpoint(
    run_dir: Path, modules: dict[str, nn.Module], model: nn.Module, optimizer: torch.optim.Optimizer,
    step: int, rt: Runtime,
) -> None:  # fmt: skip
    """Write the weights of ``modules`` and the optimiser state of ``model`` (the module the
    optimiser trains). Under FSDP2 every process must call it (gathering is collective)."""
    if not (rt.main or rt.sharded):
        return
    tensors = {f"{name}.{k}": v for name, m in modules.items() for k, v in full_state(m, rt).items()}
    opt_state = optimizer_state(model, optimizer, rt)
    if not rt.main:
        return
    weights_path, state_path = _paths(run_dir)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_w, tmp_s = weights_path.with_suffix(".tmp"), state_path.with_suffix(".tmp")
    save_file(tensors, str(tmp_w), metadata={"step": str(step)})
    torch.save({"step": step, "optimizer": opt_state, "torch_rng": torch.get_rng_state()}, tmp_s)
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


def load_checkpoint(run_dir: Path, modules: dict[str, nn.Module]) -> dict:
    """Restore the modules' weights (before any wrapping) and the RNG; returns the training state
    (``step``; ``optimizer`` for ``resume_optimizer`` once the optimiser exists)."""
    weights_path, state_path = _paths(run_dir)
    load_weights(weights_path, modules)
    state = torch.load(state_path, weights_only=True, map_location="cpu")
    torch.set_rng_state(state["torch_rng"])
    return state


def resume_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict | None) -> int:
    """Load the saved optimiser state (if any) into ``optimizer``; returns the step to continue from."""
    if state is None:
        return 0
    load_optimizer_state(model, optimizer, state["optimizer"])
    return int(state["step"])
