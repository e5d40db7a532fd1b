"""Step-seeded batch sampling: batch ``s`` depends only on (seed, s), so a resumed run sees the
same batches as an uninterrupted one, and DDP ranks take disjoint slices of the same batch."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

from worldmodel.train.runtime import step_generator


class StepBatchSampler(Sampler[list[int]]):
    """Yields, for steps ``start..steps-1``, this rank's slice of a random batch of indices."""

    def __init__(
        self, n: int, batch_size: int, seed: int, start: int, steps: int, rank: int = 0, world: int = 1
    ):
        if batch_size % world:
            raise ValueError(f"batch_size {batch_size} is not divisible by {world} processes")
        if n < 1:
            raise ValueError("the dataset is empty")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.steps, self.rank, self.world = start, steps, rank, world

    def indices(self, step: int) -> list[int]:
        idx = torch.randint(
            0, self.n, (self.batch_size,), generator=step_generator(self.seed, step, stream=1)
        )
        per = self.batch_size // self.world
        return idx[self.rank * per : (self.rank + 1) * per].tolist()

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield self.indices(step)

    def __len__(self) -> int:
        return max(self.steps - self.start, 0)
