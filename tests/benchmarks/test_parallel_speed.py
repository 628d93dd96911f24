"""executor= benchmarks: a full-mode check spread over two
workers against the same check run serially.

* a loss that waits 1 ms (``_parallel.WaitingObjective``, 200 coordinates): serial,
  a 2-process ``ProcessPoolExecutor``, and Dask's ``client.get_executor()`` on a
  ``LocalCluster`` of 2 single-threaded worker processes (skipped without distributed).
  Target: >= 1.8x for both.
* a BLAS-bound loss (``_parallel.BlasObjective``: a 300x300 matrix product per
  evaluation, 150 coordinates): serial and the process pool. Target: never below 0.9x.

Speed-ups (serial median / spread median) go to ``benchmark.extra_info`` when the serial
benchmark of the same group ran first in this session (it is defined first). The pools
are created and warmed up once per module, outside the timings. No wall-clock assertion:
with ``--benchmark-disable`` every body runs once and checks only the report.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

import pytest

from . import _parallel

WAIT_GROUP = "parallel-waiting-1ms-200-coordinates"
BLAS_GROUP = "parallel-blas-300x300-150-coordinates"
WORKERS = 2

_SERIAL: dict[str, float] = {}  # group -> serial median (seconds), this session


@pytest.fixture(scope="module")
def process_pool() -> Iterator[Executor]:
    with ProcessPoolExecutor(WORKERS) as pool:
        list(pool.map(abs, range(2 * WORKERS)))  # start the workers before any timing
        yield pool


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[Executor]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        executor = client.get_executor()
        list(executor.map(abs, range(2 * WORKERS)))
        yield executor


def _median(benchmark: Any) -> float | None:
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else float(stats.stats.median)


def _run(benchmark: Any, group: str, objective: Any, executor: Executor | None,
         rounds: int) -> None:
    if not getattr(benchmark, "disabled", True):
        time.sleep(0.25)  # the previous benchmark's BLAS threads stop spinning
    report = benchmark.pedantic(_parallel.check, args=(objective, executor), rounds=rounds,
                                warmup_rounds=1)
    assert report.ok, str(report)
    n = sum(p.size for p in objective.params.values())
    assert report.evaluations["loss"] >= _parallel.loss_evaluations(objective) == 2 * n + 1
    benchmark.extra_info.update(coordinates=n, workers=0 if executor is None else WORKERS,
                                executor=type(executor).__name__,
                                evaluations=dict(report.evaluations))
    median = _median(benchmark)
    if median is None:
        return
    if executor is None:
        _SERIAL[group] = median
    elif group in _SERIAL:
        benchmark.extra_info["speedup_over_serial"] = _SERIAL[group] / median


@pytest.mark.benchmark(group=WAIT_GROUP)
def test_waiting_serial(benchmark: Any) -> None:
    _run(benchmark, WAIT_GROUP, _parallel.WaitingObjective(), None, rounds=5)


# a loss that waits uses no BLAS: the warning about unlimited BLAS threads (threadpoolctl
# missing, as in an install without the parallel extra) does not concern it
@pytest.mark.filterwarnings("ignore::gradcheck.parallel.ThreadLimitWarning")
@pytest.mark.benchmark(group=WAIT_GROUP)
def test_waiting_process_pool(benchmark: Any, process_pool: Executor) -> None:
    _run(benchmark, WAIT_GROUP, _parallel.WaitingObjective(), process_pool, rounds=5)
    benchmark.extra_info["target_speedup"] = 1.8


@pytest.mark.benchmark(group=WAIT_GROUP)
def test_waiting_dask(benchmark: Any, dask_executor: Executor) -> None:
    _run(benchmark, WAIT_GROUP, _parallel.WaitingObjective(), dask_executor, rounds=5)
    benchmark.extra_info["target_speedup"] = 1.8


@pytest.mark.benchmark(group=BLAS_GROUP)
def test_blas_serial(benchmark: Any) -> None:
    _run(benchmark, BLAS_GROUP, _parallel.BlasObjective(), None, rounds=5)


@pytest.mark.benchmark(group=BLAS_GROUP)
def test_blas_process_pool(benchmark: Any, process_pool: Executor) -> None:
    _run(benchmark, BLAS_GROUP, _parallel.BlasObjective(), process_pool, rounds=5)
    benchmark.extra_info["target_speedup_at_least"] = 0.9
