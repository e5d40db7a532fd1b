"""Checkpoints: weights as safetensors, the rest (optimiser, step) loadable with weights_only=True.

``<run>/checkpoint/model.safetensors`` holds every module's state under ``<name>.<key>``;
``<run>/checkpoint/state.pt`` holds the step, the optimiser state (keyed by parameter name) and the
torch RNG state (plain tensors, strings and numbers only). Both hold whole (unsharded) tensors, so
DDP and FSDP2 runs share the format.

Both files are saved as one step: written into ``checkpoint.new/``, which then replaces
``checkpoint/`` by two renames (the old one goes to ``checkpoint.old/`` in between and is deleted
after). A run killed at any moment keeps a complete checkpoint: the previous one, or the new one.
Loading checks that both files read whole and record the same step, and names the file otherwise.
"""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from worldmodel.train.parallel import full_state, load_optimizer_state, optimizer_state
from worldmodel.train.runtime import Runtime

WEIGHTS, STATE = "model.safetensors", "state.pt"


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated or inconsistent with its partner."""


def checkpoint_dir(run_dir: Path) -> Path:
    """The directory holding the run's checkpoint: ``checkpoint/``, or ``checkpoint.old/`` when a
    save was killed between its two renames."""
    cur, old = run_dir / "checkpoint", run_dir / "checkpoint.old"
    if not cur.exists() and (old / WEIGHTS).exists() and (old / STATE).exists():
        return old
    return cur


def _paths(run_dir: Path) -> tuple[Path, Path]:
    d = checkpoint_dir(run_dir)
    return d / WEIGHTS, d / STATE


def checkpoint_status(run_dir: Path) -> str:
    """``none``, ``complete``, or ``partial: <what is there and what is missing>``."""
    w, s = _paths(Path(run_dir))
    if w.exists() and s.exists():
        return "complete"
    if not w.exists() and not s.exists():
        return "none"
    have, lack = (w, s) if w.exists() else (s, w)
    return f"partial checkpoint: {have} is there, {lack.name} is missing"


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
    cur, new, old = run_dir / "checkpoint", run_dir / "checkpoint.new", run_dir / "checkpoint.old"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    save_file(tensors, str(new / WEIGHTS), metadata={"step": str(step)})
    torch.save({"step": step, "optimizer": opt_state, "torch_rng": torch.get_rng_state()}, new / STATE)
    if cur.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(cur, old)
    os.replace(new, cur)
    shutil.rmtree(old, ignore_errors=True)


def has_checkpoint(run_dir: Path) -> bool:
    return checkpoint_status(run_dir) == "complete"


def load_weights(path: Path, modules: dict[str, nn.Module], strict: bool = True) -> None:
    """Load ``<name>.<key>`` tensors from a safetensors file into the named modules.

    Raises ``CheckpointError`` naming the file when it is unreadable (truncated) or its tensors do
    not fit the modules."""
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable weights (truncated or corrupt?): {e}") from e
    for name, m in modules.items():
        prefix = f"{name}."
        sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sub:
            raise CheckpointError(f"{path} holds no weights for {name!r}")
        try:
            m.load_state_dict(sub, strict=strict)
        except RuntimeError as e:
            msg = " ".join(str(e).split())
            raise CheckpointError(f"{path}: the {name!r} weights do not fit this model: {msg[:300]}") from e


def load_checkpoint(run_dir: Path, modules: dict[str, nn.Module]) -> dict:
    """Restore the modules' weights (before any wrapping) and the RNG; returns the training state
    (``step``; ``optimizer`` for ``resume_optimizer`` once the optimiser exists). Both files are
    read and checked (whole, the same step) before any module or the RNG is touched."""
    weights_path, state_path = _paths(run_dir)
    try:
        state = torch.load(state_path, weights_only=True, map_location="cpu")
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, ValueError) as e:
        raise CheckpointError(f"{state_path}: unreadable training state (truncated or corrupt?): {e}") from e
    if not isinstance(state, dict) or not {"step", "optimizer", "torch_rng"} <= set(state):
        raise CheckpointError(f"{state_path}: not a training state (needs step, optimizer, torch_rng)")
    try:
        with safe_open(str(weights_path), framework="pt") as f:
            weights_step = (f.metadata() or {}).get("step")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights_path}: unreadable weights (truncated or corrupt?): {e}") from e
    if weights_step is not None and int(weights_step) != int(state["step"]):
        raise CheckpointError(
            f"{weights_path} is from step {weights_step}, {state_path} from step {state['step']}: "
            "not one checkpoint"
        )
    load_weights(weights_path, modules)
    torch.set_rng_state(state["torch_rng"])
    return state


def resume_optimizer(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict | None) -> int:
    """Load the saved optimiser state (if any) into ``optimizer``; returns the step to continue from."""
    if state is None:
        return 0
    load_optimizer_state(model, optimizer, state["optimizer"])
    return int(state["step"])
