"""Data parallelism for a training process: DDP, or FSDP2 (``fully_shard``) for the large presets.

With DDP every process holds the whole model and optimiser state; gradients are averaged. With
FSDP2 parameters, gradients and optimiser state are split across processes (each transformer
block its own all-gather unit, the rest in the root unit), so per-process memory for the
large presets shrinks with the number of processes; between steps the parameters are DTensors.

Checkpoints are written in one format for both (full, unsharded state dicts with parameter names
as keys, optimiser state keyed by the same names): the files do not depend on the mode (resuming
under another mode than the one that wrote them is not tested). Gathering a sharded model is a collective: every process calls
``full_state``; only the main process writes.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from worldmodel.nn.transformer import Block
from worldmodel.train.runtime import Runtime

Parallel = Literal["auto", "ddp", "fsdp"]


def use_fsdp(parallel: Parallel, rt: Runtime, large: bool) -> bool:
    """FSDP2 when asked, or on ``auto`` for large models under torchrun; never in one process."""
    if rt.world == 1:
        return False
    return parallel == "fsdp" or (parallel == "auto" and large)


def wrap(
    model: nn.Module, rt: Runtime, *, per_block: bool = True, methods: tuple[str, ...] = ()
) -> nn.Module:
    """The module to run the loss through: the model (one process), DDP, or the model itself
    sharded in place with FSDP2 (``rt.sharded``): each transformer ``Block`` its own unit when
    ``per_block``, the rest in the root unit; ``methods`` are other entry points than ``forward``
    that the loss calls on the root (they gather its parameters as ``forward`` does)."""
    if rt.world == 1:
        return model
    if not rt.sharded:
        return DistributedDataParallel(model)
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    if per_block:
        for m in list(model.modules()):
            if isinstance(m, Block):
                fully_shard(m)
    fully_shard(model)
    for name in methods:
        register_fsdp_forward_method(model, name)
    return model


def _options(**kw):
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kw)


def full_state(module: nn.Module, rt: Runtime) -> dict[str, torch.Tensor]:
    """The module's whole state dict on CPU (collective under FSDP2: call on every process;
    only the main process gets the tensors)."""
    if not rt.sharded:
        return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    sd = get_model_state_dict(module, options=_options(cpu_offload=True))
    return {k: v.contiguous() for k, v in sd.items()}


def optimizer_state(model: nn.Module, opt: torch.optim.Optimizer, rt: Runtime) -> dict:
    """Optimiser state keyed by parameter name (collective under FSDP2)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, opt, options=_options(cpu_offload=rt.sharded))


def load_optimizer_state(model: nn.Module, opt: torch.optim.Optimizer, state: dict) -> None:
    """Inverse of ``optimizer_state`` (every process passes the whole saved state)."""
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    set_optimizer_state_dict(model, opt, state, options=_options())


def as_float(x: torch.Tensor) -> float:
    """A scalar that may be a replicated DTensor (e.g. the gradient norm under FSDP2)."""
    return float(x.full_tensor() if hasattr(x, "full_tensor") else x)
