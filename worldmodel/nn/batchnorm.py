"""BatchNorm over the global batch: the same statistics on one process and on several (DDP).

``GlobalBatchNorm1d`` is a ``BatchNorm1d`` (same parameters, buffers and state-dict names) whose
training-mode statistics, when several processes train, come from all processes' samples:
each process's sums are all-reduced differentiably, so two processes compute what one does on
their joined batch. Torch's ``SyncBatchNorm`` does this on GPUs only; this works on CPU (gloo)
too. One process, eval mode, or ``sync = False``: plain ``BatchNorm1d`` on this process's samples.

Legend: B batch (per process), C channels.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn


class GlobalBatchNorm1d(nn.BatchNorm1d):
    def forward(self, x: Tensor) -> Tensor:
        """x (B, C) -> (B, C)."""
        if not (
            self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        ):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        C = x.shape[1]
        count = x.new_full((1,), float(x.shape[0]))
        sums = all_reduce(torch.cat([x.sum(0), (x * x).sum(0), count]))  # differentiable
        n = sums[-1]
        mean = sums[:C] / n
        var = (sums[C : 2 * C] / n - mean * mean).clamp_min(0.0)  # biased, as normalisation uses
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_((var * n / (n - 1).clamp_min(1.0)).detach(), m)
        y = (x - mean) / torch.sqrt(var + self.eps)
        return y * self.weight + self.bias if self.affine else y
