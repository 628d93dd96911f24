"""``executor=``: the coordinate scan spread over the workers of a
concurrent.futures.Executor (a process pool, a Dask client's executor).

The loss and the params travel together in one pickle, so each worker perturbs its own
copy of exactly the arrays its loss reads; the parent never sees those moves.
"""
from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np

from gradcheck.numeric import Stencil, central_difference_scan

MAX_TASKS = 32  # the scan is cut into at most this many tasks


def scan_on_executor(
    executor: Executor, payload: bytes, name: str, flat_indices: np.ndarray,
    steps: np.ndarray, on_step: Callable[[int], None],
) -> Stencil:
    """Central differences of ``name`` at the listed coordinates, computed by the
    executor's workers; ``payload`` is ``pickle.dumps((loss, params, loss_label))``."""
    chunks = np.array_split(np.arange(len(flat_indices)), min(MAX_TASKS, len(flat_indices)))
    futures = [executor.submit(_scan_chunk, payload, name, flat_indices[chunk], steps[chunk])
               for chunk in chunks]
    parts = []
    done = 0
    for future in futures:
        parts.append(future.result())
        done += len(parts[-1].loss_plus)
        on_step(done)
    return Stencil(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _scan_chunk(payload: bytes, name: str, flat_indices: np.ndarray, steps: np.ndarray) -> Stencil:
    """Worker side: its own copy of loss and params, scanned as usual."""
    from gradcheck.calls import as_scalar

    loss, arrays, label = pickle.loads(payload)
    return central_difference_scan(lambda: as_scalar(loss(), label), arrays[name],
                                   flat_indices, steps)
