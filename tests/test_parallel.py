"""executor=: the scan spread over workers gives the serial answer, in few tasks, with the
BLAS threads of each worker limited to its share of the cores. Counts, never times (the
speed-ups are in tests/benchmarks/test_parallel_speed.py)."""
from __future__ import annotations

import dataclasses
import pickle
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import gradcheck as gc
from gradcheck import parallel
from tests.benchmarks._parallel import BlasObjective, WaitingObjective


class CountingPool(ThreadPoolExecutor):
    """A thread pool that records the coordinates of every task it is given."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.task_sizes: list[int] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.task_sizes.append(len(args[2]))  # _scan_chunk(payload, name, flat_indices, ...)
        return super().submit(fn, *args, **kwargs)


def test_a_spread_scan_gives_the_serial_report_with_the_same_evaluation_counts() -> None:
    objective = WaitingObjective(n=40, wait=1e-3)
    serial = gc.check_params(objective.loss, objective.grads, objective.params, mode="full")
    with CountingPool(2) as pool:
        spread = gc.check_params(objective.loss, objective.grads, objective.params,
                                 mode="full", executor=pool)
    assert serial.ok and spread.ok, (str(serial), str(spread))
    assert spread.evaluations == serial.evaluations  # the same count, wherever they ran
    assert serial.evaluations["loss"] >= 2 * 40 + 1
    assert str(spread) == str(serial)
    # the parent probed the first coordinates itself (a loss that waits: only the default
    # half); the rest went out in few large tasks, TASKS_PER_WORKER per worker, every
    # coordinate in exactly one
    probed = parallel.PROBE_COORDINATES
    assert len(pool.task_sizes) == parallel.TASKS_PER_WORKER * 2
    assert sum(pool.task_sizes) == 40 - probed
    assert max(pool.task_sizes) - min(pool.task_sizes) <= 1


def test_a_scan_too_small_to_probe_runs_in_the_parent() -> None:
    objective = WaitingObjective(n=3, wait=0.0)
    with CountingPool(4) as pool:
        report = gc.check_params(objective.loss, objective.grads, objective.params,
                                 mode="full", executor=pool)
    assert report.ok
    assert pool.task_sizes == []


def test_never_more_tasks_than_coordinates() -> None:
    objective = WaitingObjective(n=3, wait=0.0)
    payload = pickle.dumps((objective.loss, objective.params, "loss()"))
    with CountingPool(4) as pool:
        stencil = parallel._spread(pool, payload, "x", np.arange(3), np.full(3, 1e-6),
                                   lambda done: None, workers=4, per_machine=4)
    assert pool.task_sizes == [1, 1, 1]
    central = (stencil[0] - stencil[1]) / (stencil[2] + stencil[3])
    np.testing.assert_allclose(central, np.cos(objective.params["x"]), rtol=1e-6)


def _plan(workers: int, local: bool = True) -> parallel.Plan:
    with ThreadPoolExecutor(workers) as pool:
        plan = parallel.Plan(pool, pickle.dumps((abs, {"x": np.zeros(1)}, "loss()")))
    plan.local = local
    return plan


def test_decision_a_blas_bound_loss_on_the_same_cores_runs_serially(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The figures measured here for a 300x300 product: 0.386 ms with 2 BLAS threads,
    0.564 ms with 1, one core busy per worker: 2 workers on 2 cores predict 1.37x."""
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    plan = _plan(2)
    plan.decide(default=0.386e-3, limited=0.564e-3, cores_per_worker=1.0)
    assert plan.spread is False
    assert "predicted 1.37x" in plan.reason and "0.39 ms" in plan.reason
    assert "2 workers on this machine's 2 cores" in plan.reason


def test_decision_a_waiting_or_single_threaded_loss_is_spread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "_cores", lambda: 2)
    waiting = _plan(2)
    waiting.decide(default=1e-3, limited=1e-3, cores_per_worker=0.02)
    assert waiting.spread is True and waiting.reason == ""
    single = _plan(2)
    single.decide(default=1e-3, limited=1e-3, cores_per_worker=1.0)
    assert single.spread is True
    crowded = _plan(4)  # 4 workers computing on 2 cores: at most 2 at once
    crowded.decide(default=1e-3, limited=1.5e-3, cores_per_worker=1.0)
    assert crowded.spread is False and "1.33x" in crowded.reason
    remote = _plan(8, local=False)  # a cluster's cores are its own: workers count
    remote.decide(default=0.386e-3, limited=0.564e-3, cores_per_worker=1.0)
    assert remote.spread is True


def test_a_serial_fallback_is_noted_once_and_gives_the_same_differences(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """When the probe decides against spreading, the scan runs in the parent, every
    coordinate exactly as serially (probe included), and ``note`` hears why, once."""

    def against(self: parallel.Plan, default: float, limited: float,
                cores_per_worker: float) -> None:
        self.spread, self.reason = False, "executor= not used, the check ran serially: test"

    monkeypatch.setattr(parallel.Plan, "decide", against)
    objective = BlasObjective(n=12, size=60)
    payload = pickle.dumps((objective.loss, objective.params, "loss()"))
    notes: list[str] = []
    steps = np.full(12, 1e-6)
    with CountingPool(2) as pool:
        first = parallel.scan_on_executor(pool, payload, "b", np.arange(12), steps,
                                          lambda done: None, note=notes.append)
        second = parallel.scan_on_executor(pool, payload, "b", np.arange(12), steps,
                                           lambda done: None, note=notes.append)
    assert pool.task_sizes == []
    assert notes == ["executor= not used, the check ran serially: test"]
    from gradcheck.engine.point import coordinate_scan

    serial = coordinate_scan(objective.loss, objective.params["b"], np.arange(12), steps)
    for stencil in (first, second):
        np.testing.assert_array_equal(stencil[0], serial[0])
        np.testing.assert_array_equal(stencil[1], serial[1])


def test_the_probe_spreads_a_loss_that_waits_without_a_second_half() -> None:
    """A waiting loss keeps no core busy: spread after the default half alone."""
    objective = WaitingObjective(n=20, wait=2e-3)
    payload = pickle.dumps((objective.loss, objective.params, "loss()"))
    with CountingPool(2) as pool:
        plan = parallel.Plan(pool, payload)
        stencil = plan.probe("x", np.arange(4), np.full(4, 1e-6), lambda done: None)
    assert plan.spread is True and plan.reason == ""
    assert len(stencil[0]) == 2  # the default half only
    assert plan.seconds_per_evaluation >= 2e-3


def test_progress_counts_every_coordinate_once_in_order() -> None:
    objective = WaitingObjective(n=30, wait=1e-3)
    payload = pickle.dumps((objective.loss, objective.params, "loss()"))
    seen: list[int] = []
    with CountingPool(2) as pool:
        parallel.scan_on_executor(pool, payload, "x", np.arange(30), np.full(30, 1e-6),
                                  seen.append)
    assert seen == sorted(seen) and seen[-1] == 30 and len(set(seen)) == len(seen)


def test_a_process_pool_gives_the_serial_answer_on_a_blas_bound_loss() -> None:
    objective = BlasObjective(n=12, size=60)
    serial = gc.check_params(objective.loss, objective.grads, objective.params, mode="full")
    with ProcessPoolExecutor(2) as pool:
        spread = gc.check_params(objective.loss, objective.grads, objective.params,
                                 mode="full", executor=pool)
    assert serial.ok and spread.ok
    # whether the pool pays is measured on the spot (a busy or a threadpoolctl-less machine
    # runs it serially and says so in a "parallel" note); the answer is the same either way
    without_parallel = dataclasses.replace(
        spread, notes=[n for n in spread.notes if n.kind != "parallel"])
    assert str(without_parallel) == str(serial)
    assert spread.evaluations == serial.evaluations


def test_worker_counts_of_local_pools_and_of_a_dask_like_executor() -> None:
    with ThreadPoolExecutor(3) as pool:
        assert parallel.worker_count(pool) == parallel.workers_per_machine(pool) == 3
        assert parallel.all_local(pool)

    class Client:
        def nthreads(self) -> dict[str, int]:
            return {"tcp://10.0.0.5:4001": 2, "tcp://10.0.0.5:4002": 2,
                    "tcp://10.0.0.6:4001": 1, "tcp://[::1]:4003": 1}

    class DaskLike(ThreadPoolExecutor):  # what client.get_executor() exposes: _client
        _max_workers = 0

        def __init__(self) -> None:
            super().__init__(1)
            self._max_workers = 0
            self._client = Client()

    with DaskLike() as dask_like:
        assert parallel.worker_count(dask_like) == 6
        assert parallel.workers_per_machine(dask_like) == 4  # two workers on 10.0.0.5
        assert not parallel.all_local(dask_like)

    class LocalClient:
        def nthreads(self) -> dict[str, int]:
            return {"tcp://127.0.0.1:4001": 1, "tcp://127.0.0.1:4002": 1}

    with DaskLike() as local_cluster:
        local_cluster._client = LocalClient()  # type: ignore[assignment]
        assert parallel.all_local(local_cluster)
        assert parallel.workers_per_machine(local_cluster) == 2

    class Broken:
        def nthreads(self) -> dict[str, int]:
            raise OSError("scheduler gone")

    with DaskLike() as broken:
        broken._client = Broken()  # type: ignore[assignment]
        assert parallel.worker_count(broken) is None
        assert parallel.workers_per_machine(broken) is None


def test_host_of_a_worker_address() -> None:
    assert parallel._host("tcp://10.0.0.5:40331") == "10.0.0.5"
    assert parallel._host("tcp://[::1]:40331") == "[::1]"
    assert parallel._host("inproc://worker") == "worker"


def test_blas_threads_share_the_cores_between_the_workers_of_a_machine() -> None:
    assert parallel.blas_threads(2, cores=2) == 1
    assert parallel.blas_threads(4, cores=2) == 1  # never 0
    assert parallel.blas_threads(2, cores=8) == 4
    assert parallel.blas_threads(None, cores=8) is None  # unknown: leave the defaults


def _threads_inside_and_after(threads: int | None) -> tuple[list[int], list[int]]:
    import threadpoolctl

    with parallel.limited_threads(threads):
        inside = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()]
    after = [pool["num_threads"] for pool in threadpoolctl.threadpool_info()]
    return inside, after


def test_a_worker_runs_its_task_with_one_blas_thread_and_restores_the_default() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not any(p["user_api"] == "blas" for p in threadpoolctl.threadpool_info()):
        pytest.skip("numpy's BLAS is not visible to threadpoolctl")
    with ProcessPoolExecutor(1) as pool:
        default = pool.submit(_threads_inside_and_after, None).result()
        inside, after = pool.submit(_threads_inside_and_after, 1).result()
    assert set(inside) == {1}
    assert after == default[1]


def test_nested_limits_restore_once_the_last_task_leaves() -> None:
    pytest.importorskip("threadpoolctl")
    import threadpoolctl

    before = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
    with parallel.limited_threads(1), parallel.limited_threads(1):
        pass
    with parallel.limited_threads(1):
        with parallel.limited_threads(1):
            assert {p["num_threads"] for p in threadpoolctl.threadpool_info()} == {1}
        assert {p["num_threads"] for p in threadpoolctl.threadpool_info()} == {1}
    assert [p["num_threads"] for p in threadpoolctl.threadpool_info()] == before


def test_without_threadpoolctl_the_limit_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "_controller", False)  # as if the import had failed
    with parallel.limited_threads(1):
        values = np.arange(3.0) @ np.arange(3.0)
    assert values == 5.0
