"""Backward-pass benchmarks of the reference ReLU MLP, against its GEMM floor and torch CPU.

Per size (one pytest-benchmark group each), float32 throughout (see ``_mlp.py``):

* ``test_fwd_bwd``    reference ``net.forward(x); net.backward()``
* ``test_backward``   reference ``net.backward()`` alone, its forward done in the setup
* ``test_gemm_floor`` the matrix products that backward does (dW = a.T @ delta and
  dx = delta @ W.T per Dense layer) into preallocated outputs, and nothing else
* ``test_torch_fwd_bwd`` torch CPU forward+backward on the same weights (skipped without
  torch); ``dL/dx`` computed too, the same work as the reference
* ``test_torch_fwd_bwd_no_dx`` torch's usual training call, without ``dL/dx``

Ratios (``backward_over_floor``, ``ref_over_torch``, ``ref_over_torch_no_dx``) go to
``benchmark.extra_info``; a ratio needs both figures from the same run, so each test stores
its median and uses the companion's when it ran earlier (the floor is defined first), else
measures the companion inline. Issue-5 targets: backward <= 1.15x floor, fwd+bwd <= torch.
Nothing here asserts a time: with ``--benchmark-disable`` (the default addopts) every body
runs once as a plain test and the assertions check only that what is timed is right.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from . import _mlp

#: rounds per benchmark, by size: about 0.2-1 s per benchmark when enabled
ROUNDS = {"mlp-784-256-256-10-b64": 200, "mlp-784-256-256-10-b512": 40,
          "mlp-1024-1024-1024-10-b256": 12}

SIZE_PARAMS = [pytest.param(name, marks=pytest.mark.benchmark(group=name), id=name)
               for name in _mlp.SIZES]

# medians (seconds) of this run, keyed (size, what): the companions of the ratios
_MEDIANS: dict[tuple[str, str], float] = {}
_CASES: dict[str, _mlp.Case] = {}


def _case(name: str) -> _mlp.Case:
    if name not in _CASES:
        _CASES[name] = _mlp.make_case(name)
    return _CASES[name]


def _settle(benchmark: Any) -> None:
    """Before a timed run, let the previous test's thread pool stop spinning: OpenBLAS
    threads spin ~0.1 s after numpy's last product, and torch timed during that runs 2x
    slower (bench_table.py PAUSE). Skipped when benchmarks are disabled."""
    if not getattr(benchmark, "disabled", True):
        time.sleep(0.25)


def _median(benchmark: Any) -> float | None:
    """This benchmark's median in seconds, or None when benchmarks are disabled."""
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else float(stats.stats.median)


def _companion(name: str, what: str, fn: Any) -> float:
    """The median of ``what`` from this run, measured now if its test has not run."""
    if (name, what) not in _MEDIANS:
        time.sleep(0.25)  # see _settle
        _MEDIANS[name, what] = _mlp.median_ms({what: fn}, repeats=min(ROUNDS[name], 50))[
            what] / 1e3
    return _MEDIANS[name, what]


def _record(benchmark: Any, case: _mlp.Case, what: str) -> float | None:
    benchmark.extra_info.update(size=case.name, widths=list(case.widths), batch=case.batch,
                                dtype=case.dtype.name, timed=what)
    median = _median(benchmark)
    if median is not None:
        _MEDIANS[case.name, what] = median
        benchmark.extra_info["median_ms"] = 1e3 * median
    return median


@pytest.mark.parametrize("name", SIZE_PARAMS)
def test_gemm_floor(benchmark: Any, name: str) -> None:
    case = _case(name)
    _settle(benchmark)
    benchmark.pedantic(case.floor, rounds=ROUNDS[name], warmup_rounds=2)
    _record(benchmark, case, "floor")
    # what is timed: two products per Dense layer, shaped like W and like its input,
    # equal to the reference's own gradients at the same point
    net = case.net
    net.forward(case.x)
    net.backward()
    dense = case.dense
    assert len(case.operands) == len(dense) == 3
    for layer, (a, delta, w, dw, dx) in zip(dense, case.operands, strict=True):
        assert w is layer.params["W"]
        assert dw.shape == w.shape and dx.shape == a.shape
        assert delta.shape == (case.batch, w.shape[1])
        assert dw.dtype == dx.dtype == np.float32
        np.testing.assert_allclose(dw, layer.grads["W"], rtol=1e-4, atol=1e-6)
    benchmark.extra_info["gemm_flops"] = sum(4 * a.shape[0] * w.size
                                             for a, _, w, _, _ in case.operands)


@pytest.mark.parametrize("name", SIZE_PARAMS)
def test_fwd_bwd(benchmark: Any, name: str) -> None:
    case = _case(name)
    _settle(benchmark)
    dx = benchmark.pedantic(case.fwd_bwd, rounds=ROUNDS[name], warmup_rounds=2)
    median = _record(benchmark, case, "fwd_bwd")
    assert dx.shape == case.x.shape and dx.dtype == np.float32
    assert sorted(case.net.grads) == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    if median is not None:
        floor = _companion(name, "floor", case.floor)
        benchmark.extra_info["fwd_bwd_over_floor"] = median / floor


@pytest.mark.parametrize("name", SIZE_PARAMS)
def test_backward(benchmark: Any, name: str) -> None:
    case = _case(name)
    _settle(benchmark)
    dx = benchmark.pedantic(case.backward, setup=case.forward, rounds=ROUNDS[name],
                            warmup_rounds=2)
    median = _record(benchmark, case, "backward")
    assert dx.shape == case.x.shape and dx.dtype == np.float32
    assert np.all(np.isfinite(dx))
    if median is not None:
        floor = _companion(name, "floor", case.floor)
        benchmark.extra_info["floor_ms"] = 1e3 * floor
        benchmark.extra_info["backward_over_floor"] = median / floor
        benchmark.extra_info["target_backward_over_floor"] = 1.15


@pytest.mark.parametrize("name", SIZE_PARAMS)
def test_torch_fwd_bwd(benchmark: Any, name: str) -> None:
    torch = pytest.importorskip("torch")
    case = _case(name)
    model = _mlp.TorchMLP(case)
    _settle(benchmark)
    loss = benchmark.pedantic(model.fwd_bwd, rounds=ROUNDS[name], warmup_rounds=3)
    median = _record(benchmark, case, "torch_fwd_bwd")
    benchmark.extra_info["torch_version"] = torch.__version__
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    # same weights, same dtype: same loss and gradients as the reference
    ref_loss = case.net.forward(case.x)
    dx = case.net.backward()
    assert model.weights[0].dtype == torch.float32
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(model.x.grad.numpy(), dx, rtol=1e-3, atol=1e-6)
    for w, layer in zip(model.weights, case.dense, strict=True):
        np.testing.assert_allclose(w.grad.numpy().T, layer.grads["W"], rtol=1e-3, atol=1e-6)
    if median is not None:
        reference = _companion(name, "fwd_bwd", case.fwd_bwd)
        benchmark.extra_info["ref_fwd_bwd_ms"] = 1e3 * reference
        benchmark.extra_info["ref_over_torch"] = reference / median
        benchmark.extra_info["target_ref_over_torch"] = 1.0


@pytest.mark.parametrize("name", SIZE_PARAMS)
def test_torch_fwd_bwd_no_dx(benchmark: Any, name: str) -> None:
    """torch's usual training call: no input gradient, so one GEMM fewer than the reference
    (whose Sequential.backward always returns dL/dx)."""
    pytest.importorskip("torch")
    case = _case(name)
    model = _mlp.TorchMLP(case, input_grad=False)
    _settle(benchmark)
    loss = benchmark.pedantic(model.fwd_bwd, rounds=ROUNDS[name], warmup_rounds=3)
    median = _record(benchmark, case, "torch_fwd_bwd_no_dx")
    assert model.x.grad is None
    np.testing.assert_allclose(loss, case.net.forward(case.x), rtol=1e-5)
    if median is not None:
        reference = _companion(name, "fwd_bwd", case.fwd_bwd)
        benchmark.extra_info["ref_fwd_bwd_ms"] = 1e3 * reference
        benchmark.extra_info["ref_over_torch_no_dx"] = reference / median
