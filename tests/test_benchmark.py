"""gc.benchmark_layer and ``gradcheck bench``: what is timed, the per-layer breakdown, the
slow layer named, allocations, the floor and when there is none, threads, the report.

Every run here is tiny (shapes of a few dozen, ``rounds=2, min_time=0``): the assertions are
about what is measured and named, never about how long anything took, except that a layer
built to be slower by a large factor is the one named slowest.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gradcheck as gc
import reference_nets as rn
from gradcheck.bench import blas_threads
from gradcheck.bench.floor import DenseFloor, dense_floor
from gradcheck.bench.memory import measure_allocations
from gradcheck.cli import main
from gradcheck.examples.layers import Conv1d
from gradcheck.timing import Contender, Timing, alternate, measure_calmly

QUICK: dict[str, Any] = {"rounds": 2, "min_time": 0.0}


# --------------------------------------------------------------------------- test layers


class LoopDense:
    """Dense with a correct backward written as a Python loop over the batch: slow."""

    def __init__(self, n_in: int, n_out: int, rng: int = 0) -> None:
        self.params = {"W": np.random.default_rng(rng).standard_normal((n_in, n_out))}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"]

    def backward(self, g: np.ndarray) -> np.ndarray:
        W = self.params["W"]
        dW = np.zeros_like(W)
        dx = np.empty_like(self.x)
        for i in range(self.x.shape[0]):  # one sample at a time, on purpose
            dW += np.outer(self.x[i], g[i])
            dx[i] = W @ g[i]
        self.grads = {"W": dW}
        return dx


class CopyingTanh:
    """tanh whose backward copies its (large) cache three times before using it."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        self.cache = np.repeat(self.y[None], 64, axis=0)  # a large cache, kept
        return self.y

    def backward(self, g: np.ndarray) -> np.ndarray:
        first = self.cache.copy()
        second = first.copy()
        third = second.copy()
        return g * (1 - third[0] ** 2)


class TorchLayoutDense:
    """y = x @ W.T + b with W held as (n_out, n_in), as torch.nn.Linear holds it."""

    def __init__(self, n_in: int, n_out: int) -> None:
        rng = np.random.default_rng(3)
        self.params = {"weight": rng.standard_normal((n_out, n_in)),
                       "bias": rng.standard_normal(n_out)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["weight"].T + self.params["bias"]

    def backward(self, g: np.ndarray) -> np.ndarray:
        self.grads = {"weight": g.T @ self.x, "bias": g.sum(axis=0)}
        return g @ self.params["weight"]


class TanhDense(TorchLayoutDense):
    """A 2-D param of the right shape, but the output is tanh(x @ W.T + b): not x @ W."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(super().forward(x))


class Recorder:
    """A layer that writes down the order of its calls."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.calls: list[str] = []

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.calls.append("f")
        return 2 * x

    def backward(self, g: np.ndarray) -> np.ndarray:
        self.calls.append("b")
        return 2 * g


def net_with(slow: Any, n: int = 32) -> rn.Sequential:
    return rn.Sequential(rn.Dense(n, n, rng=0), rn.ReLU(), slow, rn.Dense(n, 4, rng=1))


# --------------------------------------------------------------------------- what is timed


def test_every_timed_backward_comes_after_a_fresh_forward() -> None:
    layer = Recorder()
    report = gc.benchmark_layer(layer, np.ones((4, 3)), **QUICK)
    sequence = "".join(layer.calls)
    assert "bb" not in sequence  # never two backwards in a row: each after its own forward
    whole = report.runs[0].whole
    # rounds x (1 untimed + reps timed) calls per block; at least one timed call per block
    assert len(whole.forward.samples) >= 2 and len(whole.backward.samples) >= 2
    assert sequence.count("b") >= len(whole.backward.samples)


def test_a_factory_is_timed_per_dtype_and_a_layer_in_the_dtype_of_x() -> None:
    def make_dense(dtype: Any) -> rn.Dense:
        return rn.Dense(4, 3, rng=0, dtype=dtype)

    report = gc.benchmark_layer(make_dense, np.ones((8, 4)), dtypes=("float32", "float64"),
                                **QUICK)
    assert [run.dtype for run in report.runs] == ["float32", "float64"]
    assert [run.input_shape for run in report.runs] == [(8, 4), (8, 4)]
    single = gc.benchmark_layer(rn.Dense(4, 3, rng=0, dtype=np.float32),
                                np.ones((8, 4), np.float32), **QUICK)
    assert [run.dtype for run in single.runs] == ["float32"]
    assert single.runs[0].layers == [] and single.slowest is None  # not a network


def test_the_slow_layer_of_a_network_is_named_a_python_loop_over_the_batch() -> None:
    net = net_with(LoopDense(32, 32))
    report = gc.benchmark_layer(net, np.random.default_rng(0).standard_normal((64, 32)),
                                **QUICK)
    run = report.runs[0]
    assert [row.index for row in run.layers] == [0, 1, 2, 3]
    assert run.slowest is not None and run.slowest.index == 2
    assert run.slowest.name == "LoopDense"
    assert "slowest backward: layer 2 LoopDense" in str(report)
    # each layer's share is its part of the network's backward timed in the same calls, so
    # the network's own time between its layers is never negative
    shares = [row.share for row in run.layers]
    assert all(s is not None and 0 < s < 1 for s in shares)
    assert run.between_layers is not None and run.between_layers >= 0
    assert report.to_dict()["runs"][0]["slowest_layer"] == 2


def test_the_slow_layer_of_a_network_is_named_a_backward_that_copies_its_cache() -> None:
    net = net_with(CopyingTanh())
    report = gc.benchmark_layer(net, np.random.default_rng(0).standard_normal((64, 32)),
                                **QUICK)
    run = report.runs[0]
    assert run.slowest is not None and run.slowest.index == 2
    cache = net.layers[2].cache.nbytes
    copier = run.layers[2]
    # three copies of the cache, each held: allocated and peak count all three
    assert copier.allocated is not None and copier.peak is not None
    assert 3 * cache <= copier.allocated < 4 * cache
    assert 3 * cache <= copier.peak < 4 * cache
    assert run.whole.allocated is not None and run.whole.allocated >= copier.allocated


def test_the_network_s_methods_are_its_own_again_after_the_benchmark() -> None:
    net = net_with(LoopDense(8, 8), n=8)
    gc.benchmark_layer(net, np.ones((4, 8)), **QUICK)
    for layer in net.layers:
        assert "forward" not in vars(layer) and "backward" not in vars(layer)


def test_per_layer_false_times_the_network_as_a_whole_only() -> None:
    report = gc.benchmark_layer(net_with(rn.Tanh()), np.ones((4, 32)), per_layer=False,
                                **QUICK)
    assert report.runs[0].layers == []


# --------------------------------------------------------------------------- allocations


def test_allocations_count_every_array_a_call_keeps_and_the_peak_the_most_held() -> None:
    a = np.ones(50_000)

    def keeps_two_drops_one() -> list[np.ndarray]:
        kept = [a.copy(), a.copy()]
        dropped = a.copy()
        del dropped
        return kept

    allocated, peak = measure_allocations(keeps_two_drops_one)
    assert 3 * a.nbytes <= allocated < 3.5 * a.nbytes  # all three were allocated
    assert 3 * a.nbytes <= peak < 3.5 * a.nbytes       # and held at once, briefly
    allocated, peak = measure_allocations(lambda: [a.copy() for _ in range(0)])
    assert allocated < 4096 and peak < 4096


# --------------------------------------------------------------------------- the floor


def test_a_dense_layer_has_a_floor_whose_products_are_its_gradients() -> None:
    rng = np.random.default_rng(0)
    layer, x = rn.Dense(6, 5, rng=1), rng.standard_normal((7, 6))
    layer.params["b"][...] = rng.standard_normal(5)
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    dx = layer.backward(g)
    floor = dense_floor(layer.params, x, y, g, dx)
    assert isinstance(floor, DenseFloor) and not floor.transposed and floor.input_grad
    floor.backward()
    np.testing.assert_allclose(floor._dW, layer.grads["W"], rtol=1e-12)
    np.testing.assert_allclose(floor._dx, dx, rtol=1e-12)
    floor.forward()
    np.testing.assert_allclose(floor._y + layer.params["b"], y, rtol=1e-12)


def test_torch_s_layout_is_dense_like_and_a_first_layer_s_floor_has_no_dx() -> None:
    rng = np.random.default_rng(0)
    layer, x = TorchLayoutDense(6, 5), rng.standard_normal((7, 6))
    y = layer.forward(x)
    g = rng.standard_normal(y.shape)
    floor = dense_floor(layer.params, x, y, g, layer.backward(g))
    assert isinstance(floor, DenseFloor) and floor.transposed
    floor.backward()
    np.testing.assert_allclose(floor._dW, layer.grads["weight"], rtol=1e-12)
    first = rn.Dense(6, 5, rng=0, input_grad=False)
    y = first.forward(x)
    floor = dense_floor(first.params, x, y, g, first.backward(g))
    assert isinstance(floor, DenseFloor) and not floor.input_grad
    assert floor.describe() == "dW = x.T @ g at x (7, 6), W (6, 5)"


@pytest.mark.parametrize(("layer", "shape", "why"), [
    (TanhDense(6, 5), (7, 6), "is not x @ weight"),
    (rn.Tanh(), (7, 6), "0 2-D params"),
    (Conv1d(6, 5, 3, rng=np.random.default_rng(0)), (7, 6, 9), "leading shape"),
])
def test_no_floor_is_guessed_for_a_layer_that_is_not_dense_like(
        layer: Any, shape: tuple[int, ...], why: str) -> None:
    x = np.random.default_rng(0).standard_normal(shape)
    report = gc.benchmark_layer(layer, x, **QUICK)
    whole = report.runs[0].whole
    assert whole.floor is None and whole.backward_over_floor is None
    assert why in whole.floor_text
    assert f"floor: none known ({whole.floor_text})" in str(report)


def test_a_network_has_a_floor_only_when_every_layer_with_params_is_dense_like() -> None:
    x = np.random.default_rng(0).standard_normal((16, 8))
    mlp = rn.Sequential(rn.Dense(8, 8, rng=0), rn.ReLU(), rn.Dense(8, 3, rng=1),
                        rn.SoftmaxCrossEntropy(np.arange(16) % 3))
    run = gc.benchmark_layer(mlp, x, **QUICK).runs[0]
    assert run.whole.floor is not None and run.whole.step_floor is not None
    assert run.whole.floor_text.startswith("the matrix products of layers 0, 2 (")
    assert [row.floor is not None for row in run.layers] == [True, False, True, False]
    mixed = rn.Sequential(rn.Dense(8, 8, rng=0), TanhDense(8, 8), rn.Dense(8, 3, rng=1))
    run = gc.benchmark_layer(mixed, x, **QUICK).runs[0]
    assert run.whole.floor is None
    assert run.whole.floor_text.startswith("layer 1 TanhDense has params and is not Dense-like")
    assert [row.floor is not None for row in run.layers] == [True, False, True]


# --------------------------------------------------------------------------- threads, usage


def test_threads_are_stated_and_pinned_with_threadpoolctl() -> None:
    pytest.importorskip("threadpoolctl")
    report = gc.benchmark_layer(rn.Tanh(), np.ones((4, 4)), threads=1, **QUICK)
    if "openblas" in blas_threads() or "mkl" in blas_threads():
        assert report.threads.startswith("1 (")
    assert report.settings["threads"] == 1


def test_pinning_threads_without_threadpoolctl_names_the_package(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "threadpoolctl" else real(name, *a))
    with pytest.raises(gc.GradcheckUsageError, match="pip install threadpoolctl"):
        gc.benchmark_layer(rn.Tanh(), np.ones((4, 4)), threads=1, **QUICK)
    assert "pip install threadpoolctl" in blas_threads()  # unpinned: said it is not known
    assert main(["bench", "gradcheck.examples.layers:Dense", "--threads", "1"]) == 2


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"rounds": 0}, "rounds=0"),
    ({"min_time": -1.0}, "min_time=-1.0"),
    ({"threads": 0}, "threads=0"),
    ({"dtypes": ["float32"]}, "a layer instance is timed in x's dtype only"),
])
def test_usage_errors_name_the_argument(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(gc.GradcheckUsageError, match=match):
        gc.benchmark_layer(rn.Tanh(), np.ones((2, 2)), **kwargs)
    with pytest.raises(gc.GradcheckUsageError, match="the class Dense, not a layer"):
        gc.benchmark_layer(rn.Dense, np.ones((2, 2)))
    with pytest.raises(gc.GradcheckUsageError, match="x: a float array"):
        gc.benchmark_layer(rn.Tanh(), np.ones((2, 2), dtype=int))


# --------------------------------------------------------------------------- timing toolkit


def test_alternating_blocks_take_turns_and_leave_the_first_call_of_a_block_untimed() -> None:
    order: list[str] = []
    kept: list[bool] = []
    timings = alternate({"a": Contender(lambda: order.append("a"), after=kept.append),
                         "b": Contender(lambda: order.append("b"),
                                        setup=lambda: order.append("s"))},
                        rounds=2, reps={"a": 2, "b": 1})
    assert "".join(order) == "aaasbsb" * 2
    assert kept == [False, True, True] * 2
    assert len(timings["a"].samples) == 4 and len(timings["b"].samples) == 2


def test_a_disturbed_measurement_is_repeated_and_the_calmest_attempt_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import gradcheck.timing as timing

    busy = iter([50.0, 30.0, 40.0])
    monkeypatch.setattr(timing, "others_cpu_percent", lambda before, after: next(busy))
    retried: list[float] = []
    m = measure_calmly({"a": Contender(lambda: None)}, 1, 1, busy=10.0, retries=2,
                       on_retry=retried.append)
    assert (m.kept, m.attempts, m.others_cpu_percent, m.disturbed) == (1, 3, 30.0, True)
    assert retried == [50.0, 30.0]
    calm = iter([5.0])
    monkeypatch.setattr(timing, "others_cpu_percent", lambda before, after: next(calm))
    m = measure_calmly({"a": Contender(lambda: None)}, 1, 1, busy=10.0, retries=2)
    assert (m.attempts, m.disturbed) == (1, False)


def test_timing_reports_the_median_and_half_the_interquartile_range() -> None:
    t = Timing((1.0, 2.0, 3.0, 4.0, 5.0))
    assert (t.median, t.q1, t.q3, t.spread) == (3.0, 2.0, 4.0, pytest.approx(1 / 3))
    assert t.to_dict()["calls"] == 5


# --------------------------------------------------------------------------- the report


def test_the_report_is_a_table_json_ready_data_and_a_picture(tmp_path: Path) -> None:
    report = gc.benchmark_layer(net_with(LoopDense(16, 16), n=16), np.ones((8, 16)), **QUICK)
    text = str(report)
    for expected in ("layer", "forward", "backward", "bwd/fwd", "bwd/floor", "share",
                     "allocated", "peak", "network", "  2 LoopDense", "(between layers)",
                     "float64: ", "BLAS threads:"):
        assert expected in text, expected
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    run = data["runs"][0]
    assert run["dtype"] == "float64" and run["slowest_layer"] == 2
    assert [row["index"] for row in run["layers"]] == [0, 1, 2, 3]
    assert run["whole"]["backward"]["calls"] >= 2
    pytest.importorskip("matplotlib")
    path = report.plot(tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- command line


def test_bench_command_times_every_dtype_the_factory_builds(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "gradcheck.examples.layers:Dense", "--rounds", "2",
                 "--min-time", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gradcheck bench: gradcheck.examples.layers:Dense, input (8, 4)")
    assert "\nfloat64: " in out and "\nfloat32: " in out
    assert "floor: dW = x.T @ g, dx = g @ W.T at x (8, 4), W (4, 3), timed alone" in out


MYNET = '''
import numpy as np
import reference_nets as rn
from test_benchmark import LoopDense

input_shape = (64, 32)

def slow_net(rng=None, dtype=np.float64):
    return rn.Sequential(rn.Dense(32, 32, rng=0, dtype=dtype), rn.ReLU(),
                         LoopDense(32, 32), rn.Dense(32, 4, rng=1, dtype=dtype))
'''


def test_bench_command_json_names_the_slow_layer_and_draws_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # a module name of its own, forgotten afterwards: later tests import packages of theirs
    (tmp_path / "bench_slow_net.py").write_text(MYNET)
    monkeypatch.chdir(tmp_path)
    try:
        args = ["bench", "bench_slow_net:slow_net", "--shape", "64,32", "--dtype", "float32",
                "--rounds", "2", "--min-time", "0", "--json"]
        assert main(args) == 0
        data = json.loads(capsys.readouterr().out)
        [run] = data["runs"]
        assert run["dtype"] == "float32" and run["slowest_layer"] == 2
        assert data["layer"] == "bench_slow_net:slow_net"
        if importlib.util.find_spec("matplotlib") is not None:
            assert main([*args, "--png", str(tmp_path / "b.png")]) == 0
            assert (tmp_path / "b.png").stat().st_size > 0
    finally:
        sys.modules.pop("bench_slow_net", None)


@pytest.mark.parametrize(("args", "message"), [
    (["--dtype", "float16"], "argument --dtype: invalid dtype float16"),
    (["--rounds", "0"], "--rounds 0"),
    (["--shape", "8,x"], "argument --shape"),
])
def test_bench_command_usage_errors_exit_2(args: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "gradcheck.examples.layers:Dense", *args]) == 2
    assert message in capsys.readouterr().err


def test_bench_command_refuses_a_dtype_the_factory_cannot_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain.py").write_text("import reference_nets as rn\n"
                                       "def tanh():\n    return rn.Tanh()\n")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "plain:tanh", "--shape", "4,4", "--dtype", "float32"]) == 2
    assert "takes no dtype argument" in capsys.readouterr().err
    assert main(["bench", "plain:nope", "--shape", "4,4"]) == 2
    assert "has no attribute 'nope'" in capsys.readouterr().err


def test_a_layer_that_raises_gets_its_own_methods_back_and_the_error_unchanged() -> None:
    class Breaks(LoopDense):
        calls = 0

        def backward(self, g: np.ndarray) -> np.ndarray:
            Breaks.calls += 1
            if Breaks.calls > 3:  # after the recording pass, inside the timing
                raise FloatingPointError("boom")
            return super().backward(g)

    net = net_with(Breaks(8, 8), n=8)
    with pytest.raises(FloatingPointError, match="boom"):
        gc.benchmark_layer(net, np.ones((4, 8)), **QUICK)
    for layer in net.layers:
        assert "forward" not in vars(layer) and "backward" not in vars(layer)


def test_per_layer_false_still_finds_the_network_s_floor() -> None:
    mlp = rn.Sequential(rn.Dense(8, 8, rng=0), rn.ReLU(), rn.Dense(8, 3, rng=1))
    run = gc.benchmark_layer(mlp, np.ones((4, 8)), per_layer=False, **QUICK).runs[0]
    assert run.layers == [] and run.whole.floor is not None
