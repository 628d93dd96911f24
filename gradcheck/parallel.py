"""``executor=``: the coordinate scan spread over the workers of a
concurrent.futures.Executor (a process pool, a Dask client's executor).

The loss and the params travel together in one pickle, so each worker perturbs its own
copy of exactly the arrays its loss reads; the parent never sees those moves.

Two things decide whether spreading pays:

* **Few, large tasks.** Every task carries the whole pickle and costs the executor a
  round trip (well under a millisecond for a process pool, a few for Dask), so the scan is
  cut into about :data:`TASKS_PER_WORKER` tasks per worker, not one per coordinate.
* **One BLAS thread per core.** numpy's BLAS starts one thread per core in every
  process; two workers on two cores then run four threads on two cores, and a
  BLAS-bound loss ran 2.5-5x *slower* than serial. Each task therefore runs under a
  BLAS/OpenMP thread limit of ``cores // workers on that machine`` (at least 1), set with
  threadpoolctl when it is installed (``pip install threadpoolctl``, or the ``parallel``
  extra); without it the workers keep their default threads.

>>> import functools, pickle
>>> from concurrent.futures import ThreadPoolExecutor
>>> import numpy as np
>>> from gradcheck.parallel import scan_on_executor
>>> x = np.array([1.0, 2.0, 3.0])
>>> loss = functools.partial(np.dot, x, x)  # reads x: pickled with params, it stays x
>>> payload = pickle.dumps((loss, {"x": x}, "loss()"))
>>> with ThreadPoolExecutor(2) as pool:
...     s = scan_on_executor(pool, payload, "x", np.arange(3), np.full(3, 1e-4), print)
1
2
3
>>> np.round(s.central(), 6)
array([2., 4., 6.])
"""
from __future__ import annotations

import os
import pickle
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any

import numpy as np

from gradcheck.numeric import Stencil, central_difference_scan

#: tasks per worker: 1 would be ideal on idle, identical workers; a few more let a worker
#: that got slowed down (a shared machine) hand work to the others without paying much
#: per-task overhead
TASKS_PER_WORKER = 3
#: tasks when the executor does not say how many workers it has
UNKNOWN_WORKERS_TASKS = 16


def scan_on_executor(
    executor: Executor, payload: bytes, name: str, flat_indices: np.ndarray,
    steps: np.ndarray, on_step: Callable[[int], None],
) -> Stencil:
    """Central differences of ``name`` at the listed coordinates, computed by the
    executor's workers; ``payload`` is ``pickle.dumps((loss, params, loss_label))``.

    Results come back in coordinate order whatever order the tasks finish in.
    """
    workers = worker_count(executor)
    per_machine = workers_per_machine(executor)
    n_tasks = (UNKNOWN_WORKERS_TASKS if workers is None else TASKS_PER_WORKER * workers)
    n_tasks = max(1, min(n_tasks, len(flat_indices)))
    chunks = np.array_split(np.arange(len(flat_indices)), n_tasks)
    futures = [executor.submit(_scan_chunk, payload, name, flat_indices[chunk], steps[chunk],
                               per_machine)
               for chunk in chunks]
    parts = []
    done = 0
    for future in futures:
        parts.append(future.result())
        done += len(parts[-1].loss_plus)
        on_step(done)
    return Stencil(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def worker_count(executor: Executor) -> int | None:
    """How many tasks the executor runs at once, or None if it does not say.

    ProcessPoolExecutor and ThreadPoolExecutor keep it in ``_max_workers``; Dask's
    ``client.get_executor()`` has its client, whose ``nthreads()`` lists every worker.
    """
    workers = getattr(executor, "_max_workers", None)
    if isinstance(workers, int) and workers > 0:
        return workers
    total = sum(_dask_nthreads(executor).values())
    return total if total > 0 else None


def workers_per_machine(executor: Executor) -> int | None:
    """Tasks that run at once on one machine (the busiest one), or None if unknown.

    A local pool has all its workers on this machine; a Dask cluster's workers are grouped
    by the host in their address (``tcp://10.0.0.5:40331``).
    """
    threads = _dask_nthreads(executor)
    if threads:
        hosts: Counter[str] = Counter()
        for address, n in threads.items():
            hosts[_host(address)] += n
        return max(hosts.values())
    return worker_count(executor)


def _dask_nthreads(executor: Executor) -> dict[str, int]:
    client = getattr(executor, "_client", None)
    nthreads = getattr(client, "nthreads", None)
    if not callable(nthreads):
        return {}
    try:
        threads = nthreads()
    except Exception:  # a closed client or a lost scheduler: the tasks will say why
        return {}
    return {str(k): int(v) for k, v in threads.items()} if isinstance(threads, dict) else {}


def _host(address: str) -> str:
    """``tcp://10.0.0.5:40331`` -> ``10.0.0.5`` (IPv6 ``tcp://[::1]:40331`` -> ``[::1]``)."""
    rest = address.split("://", 1)[-1]
    return rest.rsplit(":", 1)[0] if ":" in rest else rest


def blas_threads(per_machine: int | None, cores: int | None = None) -> int | None:
    """BLAS threads for one task when ``per_machine`` tasks share this machine's cores:
    ``cores // per_machine``, at least 1; None (leave the default) when unknown.

    >>> blas_threads(2, cores=2), blas_threads(2, cores=8), blas_threads(None, cores=8)
    (1, 4, None)
    """
    if per_machine is None:
        return None
    cores = cores or _cores()
    return max(1, cores // per_machine)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def _scan_chunk(payload: bytes, name: str, flat_indices: np.ndarray, steps: np.ndarray,
                per_machine: int | None = None) -> Stencil:
    """Worker side: its own copy of loss and params, scanned as usual, with the BLAS
    threads this worker's share of the machine allows."""
    from gradcheck.calls import as_scalar

    loss, arrays, label = pickle.loads(payload)
    with limited_threads(blas_threads(per_machine)):
        return central_difference_scan(lambda: as_scalar(loss(), label), arrays[name],
                                       flat_indices, steps)


# A worker process may run several tasks at once (Dask threads, a thread pool) and the
# limit is process-wide: the first task in sets it, the last one out restores it.
_limit_lock = threading.Lock()
_limit_users = 0
_limit_restore: Any = None
_controller: Any = None


@contextmanager
def limited_threads(threads: int | None) -> Iterator[None]:
    """BLAS and OpenMP thread pools limited to ``threads`` inside the block (threadpoolctl),
    restored after; does nothing for None or without threadpoolctl."""
    global _limit_users, _limit_restore
    if threads is None or not _set_up_controller():
        yield
        return
    with _limit_lock:
        if _limit_users == 0:
            _limit_restore = _controller.limit(limits=threads)
        _limit_users += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_users -= 1
            if _limit_users == 0 and _limit_restore is not None:
                _limit_restore.restore_original_limits()
                _limit_restore = None


def _set_up_controller() -> bool:
    """Load threadpoolctl's controller once per process (it scans the loaded libraries)."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
            return False
        _controller = ThreadpoolController()
    return _controller is not False
