"""How fast the checker itself is (full mode and fast mode).

* fast mode on ``reference_nets.Dense(1000, 1000)`` at batch 8 (1,001,000 parameters plus
  8,000 input coordinates), float64: time and ``report.evaluations``, beside torch's
  ``gradcheck(..., fast_mode=True)`` on the same function and values (skipped without
  torch). ``bench_table.py`` sets the two side by side from 10k to 4M parameters, with the
  extra peak memory of each.
* full mode per checked coordinate on a small MLP (Dense(20, 30) - ReLU - Dense(30, 10) +
  SoftmaxCrossEntropy, batch 4, float64; x and every parameter: 1,020 coordinates),
  against ``torch.autograd.gradcheck`` on the same MLP, same weights, same coordinates
  (skipped without torch). Target: gradcheck >= 10x cheaper per coordinate.

* full mode on the same small MLP against the floor of the forward-only protocol: the
  time of its 2n + 1 loss evaluations alone (``_mlp.FullCheck.loss_floor``: no
  perturbation, no bookkeeping). Target: at most 1.3x. The ratio is printed (``-s``) and
  stored in ``benchmark.extra_info``.

No wall-clock assertion: plain runs (--benchmark-disable) check the reports and counts.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

import gradcheck as gc

from . import _mlp

FAST_GROUP = "checker-fast-dense-1000x1000-b8"
FULL_GROUP = "checker-full-mlp-20-30-10-b4"

_PER_COORDINATE: dict[str, float] = {}  # seconds per coordinate, this run


def _median(benchmark: Any) -> float | None:
    stats = getattr(benchmark, "stats", None)
    return None if stats is None else float(stats.stats.median)


@pytest.mark.benchmark(group=FAST_GROUP)
def test_fast_mode_dense_1000x1000(benchmark: Any) -> None:
    layer, x = _mlp.fast_dense(*_mlp.FAST_SIZES["1M"])
    report = benchmark.pedantic(gc.check_layer, args=(layer, x), kwargs={"mode": "fast"},
                                rounds=5, warmup_rounds=1)
    assert report.ok, str(report)
    assert [t.mode for t in report.tensors] == ["fast", "fast", "fast"]
    n_params = layer.params["W"].size + layer.params["b"].size
    assert n_params == 1_001_000
    # one direction through x, W and b; linear along it: 2 evaluations, and 3 at the point
    assert report.evaluations == {"loss": 5, "grads": 2}
    benchmark.extra_info.update(parameters=n_params, coordinates=n_params + x.size,
                                evaluations=dict(report.evaluations))
    median = _median(benchmark)
    if median is not None:
        benchmark.extra_info["seconds"] = median


@pytest.mark.benchmark(group=FAST_GROUP)
def test_torch_fast_mode_dense_1000x1000(benchmark: Any) -> None:
    """torch.autograd.gradcheck(..., fast_mode=True) on the same function x @ W + b, the
    same values (skipped without torch): the group's figures set the two side by side."""
    torch = pytest.importorskip("torch")
    layer, x = _mlp.fast_dense(*_mlp.FAST_SIZES["1M"])
    dense, inputs = _mlp.torch_dense_gradcheck_args(torch, layer, x)
    ok = benchmark.pedantic(torch.autograd.gradcheck, args=(dense, inputs),
                            kwargs={"fast_mode": True}, rounds=5, warmup_rounds=1)
    assert ok is True
    benchmark.extra_info.update(parameters=layer.params["W"].size + layer.params["b"].size,
                                torch_version=torch.__version__)


@pytest.mark.benchmark(group=FULL_GROUP)
def test_full_mode_per_coordinate(benchmark: Any) -> None:
    net, x, _ = _mlp.small_mlp()
    report = benchmark.pedantic(gc.check_layer, args=(net, x), kwargs={"mode": "full"},
                                rounds=5, warmup_rounds=1)
    assert report.ok, str(report)
    coordinates = sum(t.size for t in report.tensors)
    assert coordinates == x.size + sum(p.size for p in net.params.values()) == 1020
    assert report.evaluations["loss"] >= 2 * coordinates + 1  # exact counts: test_engine
    benchmark.extra_info.update(coordinates=coordinates, evaluations=dict(report.evaluations))
    median = _median(benchmark)
    if median is not None:
        _PER_COORDINATE["gradcheck"] = median / coordinates
        benchmark.extra_info["us_per_coordinate"] = 1e6 * median / coordinates


@pytest.mark.benchmark(group=FULL_GROUP)
def test_full_mode_over_its_loss_evaluations(benchmark: Any) -> None:
    net, x, _ = _mlp.small_mlp()
    full = _mlp.FullCheck(net, x)
    if not benchmark.disabled:
        time.sleep(0.25)
    report = benchmark.pedantic(full.check, rounds=5, warmup_rounds=1)
    assert report.ok, str(report)
    assert full.coordinates == 1020
    assert report.evaluations["loss"] >= 2 * full.coordinates + 1
    # the floor evaluates check_layer's loss, sum(g * forward(x)) with g drawn as it draws
    # it (seed 0): a finite float, the same at every call
    assert np.isfinite(full.loss()) and full.loss() == full.loss()
    benchmark.extra_info.update(coordinates=full.coordinates,
                                evaluations=dict(report.evaluations),
                                target_full_over_loss_floor=1.3)
    median = _median(benchmark)
    if median is not None:
        time.sleep(0.25)
        floor = _mlp.median_ms({"floor": full.loss_floor}, repeats=5, warmup=1)["floor"] / 1e3
        ratio = median / floor
        benchmark.extra_info.update(loss_floor_ms=1e3 * floor, full_over_loss_floor=ratio)
        print(f"\nfull mode, MLP 20-30-10: check {1e3 * median:.1f} ms, its "
              f"{2 * full.coordinates + 1} loss evaluations alone {1e3 * floor:.1f} ms: "
              f"{ratio:.2f}x (target <= 1.3)")


@pytest.mark.benchmark(group=FULL_GROUP)
def test_torch_gradcheck_per_coordinate(benchmark: Any) -> None:
    torch = pytest.importorskip("torch")
    net, x, labels = _mlp.small_mlp()
    mlp, inputs = _mlp.torch_mlp_gradcheck_args(torch, net, x, labels)
    assert float(mlp(*inputs).detach()) == pytest.approx(net.forward(x), rel=1e-12)
    if not benchmark.disabled:
        time.sleep(0.25)  # numpy's OpenBLAS threads spin ~0.1 s after the previous test
    ok = benchmark.pedantic(torch.autograd.gradcheck, args=(mlp, inputs), rounds=3,
                            warmup_rounds=1)
    assert ok is True
    coordinates = sum(t.numel() for t in inputs)
    assert coordinates == 1020
    benchmark.extra_info.update(coordinates=coordinates, torch_version=torch.__version__,
                                torch_threads=torch.get_num_threads())
    median = _median(benchmark)
    if median is not None:
        per_coordinate = median / coordinates
        benchmark.extra_info["us_per_coordinate"] = 1e6 * per_coordinate
        if "gradcheck" not in _PER_COORDINATE:  # its test did not run: measure it now
            time.sleep(0.25)
            n, xx, _ = _mlp.small_mlp()
            ms = _mlp.median_ms({"full": lambda: gc.check_layer(n, xx, mode="full")}, 5, 1)
            _PER_COORDINATE["gradcheck"] = ms["full"] / 1e3 / coordinates
        benchmark.extra_info["gradcheck_us_per_coordinate"] = 1e6 * _PER_COORDINATE["gradcheck"]
        benchmark.extra_info["torch_over_gradcheck"] = per_coordinate / _PER_COORDINATE[
            "gradcheck"]
        benchmark.extra_info["target_torch_over_gradcheck"] = 10.0
