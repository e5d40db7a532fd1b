"""Where evaluation episodes run: in this process, in a pool of worker processes, or on Ray.

Each executor maps a picklable function over jobs and yields results as they finish (in any
order). Worker processes start by ``forkserver`` (a process that has rendered with EGL must not
fork) and run torch on one thread each, so ``workers`` processes use ``workers`` cores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def run_jobs(fn: Callable[[Any], Any], jobs: list, workers: int, ray: bool = False) -> Iterator[Any]:
    """``fn(job)`` for every job: in this process (``workers`` 0), in ``workers`` processes, or as
    Ray tasks on ``workers`` CPUs (``ray``; pip install '.[ray]')."""
    if ray:
        import ray as ray_lib

        ray_lib.init(num_cpus=max(workers, 1), include_dashboard=False, ignore_reinit_error=True)
        remote = ray_lib.remote(num_cpus=1)(fn)
        pending = [remote.remote(j) for j in jobs]
        while pending:
            ready, pending = ray_lib.wait(pending)
            yield from ray_lib.get(ready)
    elif workers == 0:
        for j in jobs:
            yield fn(j)
    else:
        import multiprocessing as mp

        with mp.get_context("forkserver").Pool(workers, initializer=_one_thread) as pool:
            yield from pool.imap_unordered(fn, jobs)
