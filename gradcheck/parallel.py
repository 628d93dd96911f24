"""``executor=``: the coordinate scan spread over the workers of a
concurrent.futures.Executor (a process pool, a Dask client's executor).

The loss and the params travel together in one pickle, so each worker perturbs its own
copy of exactly the arrays its loss reads; the parent never sees those moves.

Three things decide whether spreading pays:

* **Only when it pays.** The first scan of a check that is large enough starts in the
  parent: a few coordinates with the default BLAS threads, a few with a worker's share,
  timed (wall clock and this thread's CPU time). A loss that waits (I/O, a simulator) or
  computes in one thread is spread; a loss whose BLAS already keeps every core busy is
  not (two workers on the same two cores cannot beat it), and the check runs serially on
  the parent's copy, with one sentence in the report's warnings saying why (via
  ``note``). Scans too small to be worth a round trip also run in the parent.
* **Few, large tasks.** Every task carries the whole pickle and costs the executor a
  round trip (well under a millisecond for a process pool, a few for Dask), so the scan is
  cut into about :data:`TASKS_PER_WORKER` tasks per worker, not one per coordinate.
* **One BLAS thread per core.** numpy's BLAS starts one thread per core in every
  process; two workers on two cores then run four threads on two cores, and a
  BLAS-bound loss ran 2.5-5x *slower* than serial. Each task therefore runs under a
  BLAS/OpenMP thread limit of ``cores // workers on that machine`` (at least 1), set with
  threadpoolctl when it is installed (``pip install threadpoolctl``, or the ``parallel``
  extra); without it the workers keep their default threads, and the first check of the
  process that uses an executor says so with a :class:`ThreadLimitWarning`.

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
>>> loss_plus, loss_minus, step_plus, step_minus = s
>>> np.round((loss_plus - loss_minus) / (step_plus + step_minus), 6)
array([2., 4., 6.])
"""
from __future__ import annotations

import functools
import itertools
import os
import pickle
import socket
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from types import FrameType
from typing import Any

import numpy as np

from gradcheck.engine.point import coordinate_scan
from gradcheck.errors import GradcheckUsageError
from gradcheck.options import executor_shut_down
from gradcheck.validate import as_scalar

# A scan's result: the loss at v + h and v - h per coordinate, and the steps taken.
Stencil = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def join(parts: list[Stencil]) -> Stencil:
    """The scans of consecutive chunks of coordinates as one.

    >>> one = tuple(np.array([v]) for v in (1.0, 0.0, 0.5, 0.5))
    >>> join([one, one])[0]
    array([1., 1.])
    """
    if not parts:
        return tuple(np.zeros(0) for _ in range(4))  # type: ignore[return-value]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(4))  # type: ignore[return-value]

#: tasks per worker: 1 would be ideal on idle, identical workers; a second one lets a worker
#: that got slowed down (a shared machine) hand work to the others without paying much
#: per-task overhead (measured: 1, 2 and 3 per worker within 2% of each other on Dask)
TASKS_PER_WORKER = 2
#: tasks when the executor does not say how many workers it has
UNKNOWN_WORKERS_TASKS = 16
#: coordinates the parent evaluates itself, twice over (default BLAS threads, then a
#: worker's share), to learn what one evaluation costs before spreading anything; the
#: first of each is not timed (see Plan.probe)
PROBE_COORDINATES = 2
#: a loss whose evaluation keeps this thread busy less than this share of the wall time
#: waits (sleep, I/O): spread without probing further. Low, so that a computing loss on
#: a loaded machine (descheduled half the time) is not mistaken for one that waits
WAITING_SHARE = 0.25
#: spread only when the predicted speed-up is at least this: the pool's own costs (the
#: pickle per task, waking the workers, the parent's BLAS threads still spinning from its
#: last product) took 0.3-0.5x of a predicted 1.37x on a 300x300-product loss here
MIN_PREDICTED_SPEEDUP = 1.5
#: ...and only a scan that would take at least this long serially (seconds): below it a
#: round trip to the workers costs more than it saves
MIN_SPREAD_SECONDS = 0.02


def scan_on_executor(
    executor: Executor, payload: bytes, name: str, flat_indices: np.ndarray,
    steps: np.ndarray, on_step: Callable[[int], None],
    note: Callable[[str], None] | None = None,
) -> Stencil:
    """Central differences of ``name`` at the listed coordinates, computed by the
    executor's workers when that pays; ``payload`` is ``pickle.dumps((loss, params,
    loss_label))``, the same bytes object for every scan of one check.

    The first scan large enough to tell decides for the whole check: the parent evaluates
    a few coordinates itself (:func:`plan_for`), and if spreading is predicted not to pay
    the check runs serially on the parent's own copy of the payload, and ``note`` (if
    given) receives one sentence saying so, for the report's warnings. Results come back
    in coordinate order whatever order the tasks finish in.
    """
    plan = plan_for(executor, payload)
    count = len(flat_indices)
    parts: list[Stencil] = []

    def done_so_far(offset: int) -> Callable[[int], None]:
        return lambda done: on_step(offset + done)

    start = 0
    if plan.spread is None and count >= 2 * PROBE_COORDINATES + 2:
        parts.append(plan.probe(name, flat_indices[:2 * PROBE_COORDINATES],
                                steps[:2 * PROBE_COORDINATES], on_step))
        start = len(parts[0][0])
        if plan.reason and note is not None and not plan.spread:
            note(plan.reason)
    rest = slice(start, count)
    serial_seconds = (count - start) * 2 * plan.seconds_per_evaluation
    if plan.spread and serial_seconds >= MIN_SPREAD_SECONDS:
        parts.append(_spread(executor, payload, name, flat_indices[rest], steps[rest],
                             done_so_far(start), plan.workers, plan.per_machine))
    elif count > start:
        parts.append(plan.serial(name, flat_indices[rest], steps[rest], done_so_far(start)))
    return join(parts)


def _spread(executor: Executor, payload: bytes, name: str, flat_indices: np.ndarray,
            steps: np.ndarray, on_step: Callable[[int], None], workers: int | None,
            per_machine: int | None) -> Stencil:
    """The scan cut into a few tasks per worker, each task with the whole payload."""
    n_tasks = UNKNOWN_WORKERS_TASKS if workers is None else TASKS_PER_WORKER * workers
    n_tasks = max(1, min(n_tasks, len(flat_indices)))
    chunks = np.array_split(np.arange(len(flat_indices)), n_tasks)
    # Dask keys a task by a hash of its arguments unless told it is impure: hashing a
    # large payload costs time, and an identical task still held from a previous check
    # would be answered from the old result instead of being run
    dask = type(executor).__module__.split(".")[0] == "distributed"
    extra = {"pure": False} if dask else {}
    futures = []
    try:
        for chunk in chunks:
            futures.append(executor.submit(_scan_chunk, payload, name, flat_indices[chunk],
                                           steps[chunk], per_machine, **extra))
    except RuntimeError as error:  # concurrent.futures' word for "shut down, takes no work"
        for future in futures:
            future.cancel()
        if "shutdown" not in str(error).replace(" ", ""):
            raise
        raise GradcheckUsageError(executor_shut_down(type(executor).__name__)) from error
    parts = []
    done = 0
    for future in futures:
        parts.append(future.result())
        done += len(parts[-1][0])
        on_step(done)
    return join(parts)


class Plan:
    """One check's use of ``executor=``: the parent's own copy of the payload (for the
    probe and for a serial run), and the decision, made once.

    ``spread`` is None until a scan was large enough to probe, then True or False;
    ``reason`` says why, with the figures.
    """

    def __init__(self, executor: Executor, payload: bytes) -> None:
        self.loss, self.arrays, self.label = pickle.loads(payload)
        # asked once per check: for Dask each question is a round trip to the scheduler
        threads = _dask_nthreads(executor)
        self.workers = worker_count(executor, threads)
        self.per_machine = workers_per_machine(executor, threads)
        self.local = all_local(executor, threads)
        self.spread: bool | None = None
        self.reason = ""
        self.seconds_per_evaluation = 0.0

    def serial(self, name: str, flat_indices: np.ndarray, steps: np.ndarray,
               on_step: Callable[[int], None] | None = None) -> Stencil:
        """The scan in this process, on the parent's copy (as a worker would run it)."""
        loss, label = self.loss, self.label
        return coordinate_scan(lambda: as_scalar(loss(), label), self.arrays[name],
                               flat_indices, steps, on_step)

    def probe(self, name: str, flat_indices: np.ndarray, steps: np.ndarray,
              on_step: Callable[[int], None]) -> Stencil:
        """Scan the first half of the coordinates with this process's default threads and
        the second half as a worker would (its share of the BLAS threads), time both, and
        decide. Returns the stencil of the coordinates it scanned, the first ones given:
        the probe is part of the scan.

        A loss that mostly waits (this thread busy less than WAITING_SHARE of the time) is
        spread without the second half: no thread limit can make spreading it lose. Each half's
        first coordinate is left out of the timing: it pays for waking the thread pool
        (measured: 4 ms for a 20 us loss), and no other coordinate does.
        """
        half = len(flat_indices) // 2
        threads = blas_threads(self.per_machine)
        first_wall, first_cpu, first = self._timed(name, flat_indices[:half], steps[:half],
                                                   on_step)
        default = max(min(first_wall), 1e-9) / 2  # two evaluations per coordinate
        self.seconds_per_evaluation = default
        if sum(first_cpu) < WAITING_SHARE * sum(first_wall):
            self.decide(default, default, sum(first_cpu) / max(sum(first_wall), 1e-9))
            return first
        with limited_threads(threads):
            second_wall, second_cpu, second = self._timed(
                name, flat_indices[half:], steps[half:], lambda done: on_step(half + done))
        limited = max(min(second_wall), 1e-9) / 2
        # the share of a core one evaluation keeps busy (this thread; a worker allowed k
        # BLAS threads keeps at most k times that): 0 for a loss that waits, 1 for compute
        busy = min(1.0, sum(second_cpu) / max(sum(second_wall), 1e-9))
        self.decide(default, limited, busy * (threads or 1))
        return join([first, second])

    def _timed(self, name: str, flat_indices: np.ndarray, steps: np.ndarray,
               on_step: Callable[[int], None]) -> tuple[list[float], list[float], Stencil]:
        """The serial scan, with the wall and thread CPU seconds of each coordinate but
        the first."""
        clock, cpu = time.perf_counter, time.thread_time
        marks = [(clock(), cpu())]

        def mark(done: int) -> None:
            marks.append((clock(), cpu()))
            on_step(done)

        stencil = self.serial(name, flat_indices, steps, mark)
        wall = [b[0] - a[0] for a, b in itertools.pairwise(marks[1:])]
        cpu_seconds = [b[1] - a[1] for a, b in itertools.pairwise(marks[1:])]
        return wall or [marks[-1][0] - marks[0][0]], cpu_seconds or [0.0], stencil

    def decide(self, default: float, limited: float, cores_per_worker: float) -> None:
        """Spread when the predicted speed-up clears MIN_PREDICTED_SPEEDUP.

        On workers of this machine: ``min(workers, cores / cores_per_worker)`` workers
        run at once, each at the speed of a limited evaluation; a remote cluster's cores
        are not ours to count, so it is predicted ``workers`` times the limited speed.
        """
        workers = self.workers or 1
        if self.local:
            at_once = min(workers, _cores() / max(cores_per_worker, 1e-3))
        else:
            at_once = workers
        predicted = at_once * default / limited
        self.spread = predicted >= MIN_PREDICTED_SPEEDUP
        if not self.spread:
            where = (f"{workers} workers on this machine's {_cores()} cores" if self.local
                     else f"{workers} workers")
            self.reason = (
                f"executor= not used, the check ran serially: one evaluation of the loss "
                f"takes {1e3 * default:.2f} ms here and {1e3 * limited:.2f} ms with a "
                f"worker's share of the BLAS threads, and keeps {cores_per_worker:.1f} "
                f"core(s) busy, so {where} were predicted {predicted:.2f}x faster, below "
                f"the {MIN_PREDICTED_SPEEDUP}x that pays for the pool (a BLAS-bound loss "
                "already uses every core)")


# the plan of the check running now: every scan of one check gets the same payload object
_current: tuple[bytes, Plan] | None = None


def plan_for(executor: Executor, payload: bytes) -> Plan:
    """The plan of the check whose payload this is (a new check, a new plan)."""
    global _current
    if _current is None or _current[0] is not payload:
        _warn_if_threads_cannot_be_limited()
        _current = (payload, Plan(executor, payload))
    return _current[1]


class ThreadLimitWarning(UserWarning):
    """``executor=`` without threadpoolctl: the workers cannot limit their BLAS threads, so
    a BLAS-bound loss may run slower spread than serially. Said once per process."""


_warned_threads = False


def _warn_if_threads_cannot_be_limited() -> None:
    """Warn once per process when threadpoolctl cannot be loaded; point at the user's call."""
    global _warned_threads
    if _warned_threads or _set_up_controller():
        return
    _warned_threads = True
    warnings.warn(ThreadLimitWarning(
        "gradcheck: executor= runs without a limit on BLAS threads (threadpoolctl is not "
        "installed in this Python): every worker may start one BLAS thread per core, and a "
        "BLAS-bound loss spread over 2 process workers on 2 cores ran at 0.26x the serial "
        "speed. Install it with: pip install threadpoolctl (gradcheck's parallel extra)"),
        stacklevel=_first_frame_outside_gradcheck())


def _first_frame_outside_gradcheck() -> int:
    """The ``stacklevel`` of the innermost caller outside the gradcheck package."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def all_local(executor: Executor, threads: dict[str, int] | None = None) -> bool:
    """Do all the executor's workers run on this machine? True for local pools; for a
    Dask executor, when every worker's host is a loopback address or this machine's."""
    threads = _dask_nthreads(executor) if threads is None else threads
    if not threads:
        return getattr(executor, "_client", None) is None
    hosts = {_host(address) for address in threads}
    loopback = {"127.0.0.1", "localhost", "[::1]", "::1"}
    if hosts <= loopback:  # a LocalCluster: no name lookup needed
        return True
    return hosts <= loopback | _own_addresses()


@functools.lru_cache(maxsize=1)
def _own_addresses() -> frozenset[str]:
    """This machine's address by its host name (looked up once per process)."""
    try:
        return frozenset({socket.gethostbyname(socket.gethostname())})
    except OSError:
        return frozenset()


def worker_count(executor: Executor, threads: dict[str, int] | None = None) -> int | None:
    """How many tasks the executor runs at once, or None if it does not say.

    ProcessPoolExecutor and ThreadPoolExecutor keep it in ``_max_workers``; Dask's
    ``client.get_executor()`` has its client, whose ``nthreads()`` lists every worker.
    """
    workers = getattr(executor, "_max_workers", None)
    if isinstance(workers, int) and workers > 0:
        return workers
    threads = _dask_nthreads(executor) if threads is None else threads
    total = sum(threads.values())
    return total if total > 0 else None


def workers_per_machine(executor: Executor, threads: dict[str, int] | None = None
                        ) -> int | None:
    """Tasks that run at once on one machine (the busiest one), or None if unknown.

    A local pool has all its workers on this machine; a Dask cluster's workers are grouped
    by the host in their address (``tcp://10.0.0.5:40331``). ``threads``: the Dask
    client's ``nthreads()`` if already asked.
    """
    threads = _dask_nthreads(executor) if threads is None else threads
    if threads:
        hosts: Counter[str] = Counter()
        for address, n in threads.items():
            hosts[_host(address)] += n
        return max(hosts.values())
    return worker_count(executor, threads)


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
    loss, arrays, label = pickle.loads(payload)
    with limited_threads(blas_threads(per_machine)):
        return coordinate_scan(lambda: as_scalar(loss(), label), arrays[name],
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
