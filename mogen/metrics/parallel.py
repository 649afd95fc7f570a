"""Run a metric's independent pieces in worker processes, with results in input order.

Metrics whose pieces are independent (one skeleton per cloud, one assignment per pair of
clouds, one exact nearest search per query) call :func:`map_chunks`. Results are the same for
any number of workers: each piece is computed by the same function on the same inputs, and
the pieces come back in order. ``workers <= 1`` runs in this process (no pool).

Workers start from a fork server that has imported the metrics once, not from a fork of this
process: forked after torch (or any OpenMP user) has run threads, a child can hang in its first
OpenMP call. Each worker runs its numpy/scipy code on one thread.

Examples
--------
>>> map_chunks(sum, [[1, 2], [3], [4, 5]], workers=1)
[3, 3, 9]
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from mogen.runtime import available_cores

_POOLS: dict[int, ProcessPoolExecutor] = {}


def default_workers() -> int:
    """Worker processes metrics use when not told: the cores this process may run on."""
    return available_cores()


def _single_thread() -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def _pool(workers: int) -> ProcessPoolExecutor:
    """One pool per worker count, kept for the life of the process (start-up is paid once)."""
    if workers not in _POOLS:
        if "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["mogen.metrics.morphometrics", "mogen.metrics.memorization"])
        else:  # Windows
            ctx = multiprocessing.get_context("spawn")
        _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_single_thread)
    return _POOLS[workers]


def map_chunks(fn, chunks: list, workers: int | None = None) -> list:
    """``[fn(c) for c in chunks]``, the chunks spread over ``workers`` processes.

    ``fn`` must be a module-level function (it is pickled by name); give each worker a few
    chunks of real work (a chunk costs a round trip of its inputs and output).
    """
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(chunks) <= 1:
        return [fn(c) for c in chunks]
    return list(_pool(workers).map(fn, chunks))


def split(n: int, parts: int) -> list[range]:
    """``range(n)`` cut into at most ``parts`` contiguous, nearly equal, non-empty ranges.

    >>> split(5, 2), split(1, 4)
    ([range(0, 2), range(2, 5)], [range(0, 1)])
    """
    parts = max(1, min(parts, n))
    bounds = [i * n // parts for i in range(parts + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
