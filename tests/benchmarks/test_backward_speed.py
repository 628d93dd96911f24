"""Training-backward benchmarks of the reference ReLU MLP, against its floor and torch CPU.

Per size and dtype (float32 and float64; one pytest-benchmark group each), on the training
net of ``_mlp.py`` (its first Dense has ``input_grad=False``):

* ``test_fwd_bwd``    reference ``net.forward(x); net.backward()``
* ``test_backward``   reference ``net.backward()`` alone, its forward done in the setup
* ``test_gemm_floor`` the training floor: the matrix products a training backward needs
  (dW = a.T @ delta for every Dense layer, dx = delta @ W.T for all but the first) into
  preallocated outputs, and nothing else
* ``test_step_gemms`` every matrix product of the training step (the forward's a @ W per
  Dense layer, then the training floor), timed alone: numpy's share that no code change
  can remove, to set against torch's whole step
* ``test_torch_training_step`` torch CPU forward+backward on the same weights, x not
  requiring grad (skipped without torch)

Ratios (``backward_over_floor``, ``fwd_bwd_over_step_gemms``, ``fwd_bwd_over_torch``) go to
``benchmark.extra_info``;
a ratio needs both figures from the same run, so each test stores its median and uses the
companion's when it ran earlier (the floor is defined first), else measures the companion
inline. Targets: backward <= 1.15x the training floor, fwd+bwd <= 1.15x the step's GEMMs
alone (numpy's own products); torch's step is a reference, not a target.
Nothing here asserts a time: with ``--benchmark-disable`` (the default addopts) every body
runs once as a plain test and the assertions check only that what is timed is right.
``python tests/benchmarks/bench_table.py`` prints the same figures as one table.
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

CASE_PARAMS = [
    pytest.param(name, np.dtype(dtype), id=f"{name}-{np.dtype(dtype).name}",
                 marks=pytest.mark.benchmark(group=f"{name}-{np.dtype(dtype).name}"))
    for dtype in _mlp.DTYPES for name in _mlp.SIZES
]

# medians (seconds) of this run, keyed (case label, what): the companions of the ratios
_MEDIANS: dict[tuple[str, str], float] = {}
_CASES: dict[tuple[str, np.dtype[Any]], _mlp.Case] = {}


def _case(name: str, dtype: np.dtype[Any]) -> _mlp.Case:
    if (name, dtype) not in _CASES:
        _CASES[name, dtype] = _mlp.make_case(name, dtype)
    return _CASES[name, dtype]


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


def _companion(case: _mlp.Case, what: str, fn: Any) -> float:
    """The median of ``what`` from this run, measured now if its test has not run."""
    if (case.label, what) not in _MEDIANS:
        time.sleep(0.25)  # see _settle
        _MEDIANS[case.label, what] = _mlp.median_ms(
            {what: fn}, repeats=min(ROUNDS[case.name], 50))[what] / 1e3
    return _MEDIANS[case.label, what]


def _record(benchmark: Any, case: _mlp.Case, what: str) -> float | None:
    benchmark.extra_info.update(size=case.name, widths=list(case.widths), batch=case.batch,
                                dtype=case.dtype.name, timed=what)
    median = _median(benchmark)
    if median is not None:
        _MEDIANS[case.label, what] = median
        benchmark.extra_info["median_ms"] = 1e3 * median
    return median


@pytest.mark.parametrize(("name", "dtype"), CASE_PARAMS)
def test_gemm_floor(benchmark: Any, name: str, dtype: np.dtype[Any]) -> None:
    case = _case(name, dtype)
    _settle(benchmark)
    benchmark.pedantic(case.floor, rounds=ROUNDS[name], warmup_rounds=2)
    _record(benchmark, case, "floor")
    # what is timed: dW for every Dense layer, dx for all but the first, equal to the
    # reference's own gradients at the same point
    case.fwd_bwd()
    dense = case.dense
    assert len(case.operands) == len(dense) == 3
    assert [dx is None for *_, dx in case.operands] == [True, False, False]
    for layer, (a, delta, w, dw, dx) in zip(dense, case.operands, strict=True):
        assert w is layer.params["W"]
        assert dw.shape == w.shape and dw.dtype == dtype
        assert delta.shape == (case.batch, w.shape[1])
        assert dx is None or (dx.shape == a.shape and dx.dtype == dtype)
        np.testing.assert_allclose(dw, layer.grads["W"], rtol=1e-4, atol=1e-6)
    benchmark.extra_info["gemm_flops"] = sum(
        2 * a.shape[0] * w.size * (1 if dx is None else 2)
        for a, _, w, _, dx in case.operands)


@pytest.mark.parametrize(("name", "dtype"), CASE_PARAMS)
def test_fwd_bwd(benchmark: Any, name: str, dtype: np.dtype[Any]) -> None:
    case = _case(name, dtype)
    _settle(benchmark)
    dx = benchmark.pedantic(case.fwd_bwd, rounds=ROUNDS[name], warmup_rounds=2)
    median = _record(benchmark, case, "fwd_bwd")
    assert dx is None  # the first Dense has input_grad=False: no dL/dx of the data
    assert sorted(case.net.grads) == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    assert all(g.dtype == dtype for g in case.net.grads.values())
    if median is not None:
        floor = _companion(case, "floor", case.floor)
        benchmark.extra_info["fwd_bwd_over_floor"] = median / floor
        gemms = _companion(case, "step_floor", case.step_floor)
        benchmark.extra_info["fwd_bwd_over_step_gemms"] = median / gemms
        benchmark.extra_info["target_fwd_bwd_over_step_gemms"] = 1.15


@pytest.mark.parametrize(("name", "dtype"), CASE_PARAMS)
def test_backward(benchmark: Any, name: str, dtype: np.dtype[Any]) -> None:
    case = _case(name, dtype)
    _settle(benchmark)
    dx = benchmark.pedantic(case.backward, setup=case.forward, rounds=ROUNDS[name],
                            warmup_rounds=2)
    median = _record(benchmark, case, "backward")
    assert dx is None
    assert all(np.all(np.isfinite(g)) for g in case.net.grads.values())
    if median is not None:
        floor = _companion(case, "floor", case.floor)
        benchmark.extra_info["floor_ms"] = 1e3 * floor
        benchmark.extra_info["backward_over_floor"] = median / floor
        benchmark.extra_info["target_backward_over_floor"] = 1.15


@pytest.mark.parametrize(("name", "dtype"), CASE_PARAMS)
def test_step_gemms(benchmark: Any, name: str, dtype: np.dtype[Any]) -> None:
    case = _case(name, dtype)
    _settle(benchmark)
    benchmark.pedantic(case.step_floor, rounds=ROUNDS[name], warmup_rounds=2)
    _record(benchmark, case, "step_floor")
    # what is timed: the forward products of the reference at the same point, then the floor
    assert len(case.forward_operands) == 3
    h: Any = case.x
    for layer, (a, w, y) in zip(case.dense, case.forward_operands, strict=True):
        assert a.shape[0] == case.batch and w is layer.params["W"] and y.dtype == dtype
        np.testing.assert_allclose(y, a @ w, rtol=1e-5)
    for layer in case.net.layers[:-1]:
        h = layer.forward(h)
    np.testing.assert_allclose(case.forward_operands[-1][2] + case.dense[-1].params["b"], h,
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("name", "dtype"), CASE_PARAMS)
def test_torch_training_step(benchmark: Any, name: str, dtype: np.dtype[Any]) -> None:
    torch = pytest.importorskip("torch")
    case = _case(name, dtype)
    model = _mlp.TorchMLP(case)
    _settle(benchmark)
    loss = benchmark.pedantic(model.fwd_bwd, rounds=ROUNDS[name], warmup_rounds=3)
    median = _record(benchmark, case, "torch")
    benchmark.extra_info["torch_version"] = torch.__version__
    benchmark.extra_info["torch_threads"] = torch.get_num_threads()
    # same weights, same dtype, x not requiring grad: same loss and gradients as the
    # reference's training step, and no input gradient on either side
    ref_loss = case.net.forward(case.x)
    assert case.net.backward() is None and model.x.grad is None
    assert model.weights[0].dtype == {np.float32: torch.float32,
                                      np.float64: torch.float64}[dtype.type]
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(loss, ref_loss, rtol=rtol)
    for w, b, layer in zip(model.weights, model.biases, case.dense, strict=True):
        np.testing.assert_allclose(w.grad.numpy().T, layer.grads["W"], rtol=100 * rtol,
                                   atol=1e-6)
        np.testing.assert_allclose(b.grad.numpy(), layer.grads["b"], rtol=100 * rtol,
                                   atol=1e-6)
    if median is not None:
        reference = _companion(case, "fwd_bwd", case.fwd_bwd)
        benchmark.extra_info["ref_fwd_bwd_ms"] = 1e3 * reference
        benchmark.extra_info["fwd_bwd_over_torch"] = reference / median  # a reference only
        gemms = _companion(case, "step_floor", case.step_floor)
        benchmark.extra_info["step_gemms_over_torch"] = gemms / median
