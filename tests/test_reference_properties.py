"""Property-based suite: the reference networks pass gradcheck on whatever hypothesis draws.

Shapes (batch 1, width 1), weight scales (normal, tiny, large, exact zeros), inputs with
exact zeros and values near zero, ReLU'(0) conventions, labels, float64 and float32: the
draws come from gradcheck.strategies, the public strategies users can reuse. Each test's
name and docstring state its property. Run with HYPOTHESIS_PROFILE=ci|deep.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, currently_in_test_context, example, find, given, note, settings
from hypothesis import strategies as st
from test_classic_networks import ok_or_limited_by_rounding

import gradcheck as gc
import reference_nets as rn
from gradcheck import strategies as gst


def assert_passes(layer: Any, x: np.ndarray, **options: Any) -> gc.Report:
    report = gc.check_layer(layer, x, **options)
    if currently_in_test_context():
        note(str(report))
    assert report.ok, f"false alarm on a correct reference layer:\n{report}"
    return report


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ drawing networks

ACTIVATIONS = ["relu", "leaky", "sigmoid", "tanh", "softmax"]
HEADS = ["none", "quadratic", "softmax_ce", "bce"]


def make_activation(kind: str, grad_at_zero: float = 0.0) -> Any:
    return {
        "relu": lambda: rn.ReLU(grad_at_zero),
        "leaky": lambda: rn.LeakyReLU(0.1),
        "sigmoid": rn.Sigmoid,
        "tanh": rn.Tanh,
        "softmax": rn.Softmax,
    }[kind]()


@st.composite
def dense_params(draw: st.DrawFn, n_in: int, n_out: int, dtype: Any, bias: bool) -> dict:
    out = {"W": draw(gst.weights((n_in, n_out), dtype))}
    if bias:
        out["b"] = draw(gst.weights((n_out,), dtype))
    return out


@st.composite
def networks(draw: st.DrawFn, dtype: Any = None) -> dict:
    """A plain description of a random MLP (so a failing example prints its arrays)."""
    dtype = draw(gst.float_dtypes()) if dtype is None else np.dtype(dtype)
    depth = draw(st.integers(1, 3))
    sizes = [draw(gst.layer_sizes()) for _ in range(depth + 1)]
    batch = draw(gst.batch_sizes())
    head = draw(st.sampled_from(HEADS))
    dense, acts = [], []
    for n_in, n_out in itertools.pairwise(sizes):
        dense.append(draw(dense_params(n_in, n_out, dtype, draw(st.booleans()))))
        acts.append(draw(st.sampled_from(ACTIVATIONS)))
    spec: dict[str, Any] = {
        "dtype": dtype, "dense": dense, "acts": acts, "head": head,
        "grad_at_zero": draw(gst.relu_conventions()),
        "x": draw(gst.inputs((batch, sizes[0]), dtype)),
    }
    if head == "quadratic":
        spec["target"] = draw(gst.inputs((batch, sizes[-1]), dtype, zeros=False))
    elif head == "softmax_ce":
        spec["labels"] = draw(gst.labels(batch, sizes[-1]))
    elif head == "bce":
        spec["target"] = draw(gst.binary_targets((batch, sizes[-1]), dtype))
    return spec


def build(spec: dict) -> rn.Sequential:
    layers: list[Any] = []
    for params, act in zip(spec["dense"], spec["acts"], strict=True):
        layers.append(rn.Dense.from_arrays(params["W"].copy(), params.get("b")))
        layers.append(make_activation(act, spec["grad_at_zero"]))
    head = spec["head"]
    if head == "quadratic":
        layers.append(rn.QuadraticCost(spec["target"]))
    elif head == "softmax_ce":
        layers.append(rn.SoftmaxCrossEntropy(spec["labels"]))
    elif head == "bce":
        layers.append(rn.BinaryCrossEntropy(spec["target"]))
    return rn.Sequential(*layers)


# ------------------------------------------------------------------ every layer passes


@given(
    shape=gst.batch_shapes(),
    n_out=gst.layer_sizes(),
    bias=st.booleans(),
    dtype=gst.float_dtypes(),
    data=st.data(),
)
@example(shape=(1, 1), n_out=1, bias=False, dtype=np.dtype(np.float64), data=None)
@example(shape=(1, 1), n_out=1, bias=True, dtype=np.dtype(np.float32), data=None)
def test_dense_passes_check_layer_for_any_shape_weights_and_input(shape, n_out, bias, dtype, data):
    """Dense (with and without bias, float64 and float32) passes for every fuzzed case: ok
    in float64; in float32 ok, or unverified with the reason where the output's rounding
    hides what a step does (W = 0 beside b = 100: a change of x below half a float32 ulp of
    100 would not show), and never FAILED."""
    if data is None:  # the pinned examples: 1x1, zero weight, zero input (and b = 100)
        W, x = np.zeros((1, 1), dtype), np.zeros((1, 1), dtype)
        b = np.full(1, 100.0, dtype) if bias else None
    else:
        W = data.draw(gst.weights((shape[1], n_out), dtype), label="W")
        b = data.draw(gst.weights((n_out,), dtype), label="b") if bias else None
        x = data.draw(gst.inputs(shape, dtype), label="x")
    if dtype == np.float64:
        assert_passes(rn.Dense.from_arrays(W, b), x)
        return
    report = gc.check_layer(rn.Dense.from_arrays(W, b), x)
    note(str(report))
    assert report.status != "FAILED", f"false alarm on a correct reference layer:\n{report}"
    assert all(t.ok or t.unverified_reason for t in report.tensors), str(report)


@pytest.mark.parametrize("kind", ACTIVATIONS)
@given(x=gst.inputs(gst.batch_shapes()), c=gst.relu_conventions())
@example(x=np.zeros((1, 1)), c=0.0)
@example(x=np.array([[0.0, -0.0, 1e-300, -1e-7, 2.0]]), c=1.0)
def test_activation_passes_check_layer_with_exact_zeros(kind, x, c):
    """Every activation passes in the default (subgradient) mode, zeros and near-zeros too."""
    assert_passes(make_activation(kind, c), x)


@given(x=gst.inputs(gst.batch_shapes(), dtype=np.float32), kind=st.sampled_from(ACTIVATIONS))
@example(x=np.array([[2.0] + [2.0 ** -8] * 11], np.float32), kind="relu")
@example(x=np.array([[2.0] + [1e-3] * 15], np.float32), kind="relu")
def test_float32_activation_passes_check_layer(x, kind):
    """Activations computing in float32 pass with the float32 tolerances (ReLU inputs
    nearer 0 than float32's step 5e-3: the stencils reach past the kink at h, and at h/2)."""
    assert_passes(make_activation(kind, 0.5), x)


@given(shape=gst.batch_shapes(), data=st.data())
def test_quadratic_cost_head_passes_check_layer(shape, data):
    """QuadraticCost passes for any outputs and targets (zeros included)."""
    y = data.draw(gst.inputs(shape), label="y")
    target = data.draw(gst.inputs(shape), label="target")
    assert_passes(rn.QuadraticCost(target), y)


@given(shape=gst.batch_shapes(), data=st.data())
@example(shape=(1, 2), data=None)
def test_softmax_cross_entropy_head_passes_check_layer(shape, data):
    """SoftmaxCrossEntropy passes for any logits (ties, +-1000) and labels (unverified
    only where the loss's arithmetic limits it: at logits (-8, 7) -log p moves in steps of
    1e-16, which limit a gradient of 3e-7 to about 1e-5 of itself)."""
    if data is None:  # pinned: a saturated row with logit 1000
        x, labels = np.array([[1000.0, 0.0]]), np.array([1])
    else:
        x = data.draw(gst.logits(shape), label="logits")
        labels = data.draw(gst.labels(shape[0], shape[1]), label="labels")
    report = gc.check_layer(rn.SoftmaxCrossEntropy(labels), x)
    note(str(report))
    assert ok_or_limited_by_rounding(report), f"false alarm on a correct head:\n{report}"


@given(shape=gst.batch_shapes(), data=st.data())
@example(shape=(1, 1), data=None)
def test_binary_cross_entropy_head_passes_check_layer(shape, data):
    """BinaryCrossEntropy passes for any logits (+-1000 included) and targets in [0, 1]
    (unverified only where the loss's arithmetic limits it: at logit 1000 and target
    1 - 1e-16 the loss x - x t moves in steps of an ulp of 1000, the gradient 1e-16 by
    far less)."""
    if data is None:  # pinned: was FAILED, numeric 0 against 5e-17
        x, target = np.array([[1000.0]]), np.array([[1.0 - 2.0**-53]])
    else:
        x = data.draw(gst.logits(shape), label="logits")
        target = data.draw(gst.binary_targets(shape), label="target")
    report = gc.check_layer(rn.BinaryCrossEntropy(target), x)
    note(str(report))
    assert ok_or_limited_by_rounding(report), f"false alarm on a correct head:\n{report}"


@given(spec=networks())
@example(spec={"dtype": np.dtype(np.float32),
               "dense": [{"W": np.array([[250.0]], np.float32), "b": np.zeros(1, np.float32)}],
               "acts": ["tanh"], "head": "none", "grad_at_zero": 0.0,
               "x": np.zeros((1, 1), np.float32)})
@example(spec={"dtype": np.dtype(np.float32),  # p = 1 - 4e-6: -log p moves in steps of 6e-8
               "dense": [{"W": np.array([[50.0, 0.0]], np.float32),
                          "b": np.zeros(2, np.float32)}],
               "acts": ["relu"], "head": "softmax_ce", "grad_at_zero": 0.0,
               "x": np.array([[0.25]], np.float32), "labels": np.array([0])})
@example(spec={"dtype": np.dtype(np.float32),  # the float32 cost comes back a Python float
               "dense": [{"W": np.zeros((1, 1), np.float32)}, {"W": np.zeros((1, 3), np.float32)},
                         {"W": -np.ones((3, 4), np.float32)}],
               "acts": ["relu", "softmax", "leaky"], "head": "quadratic", "grad_at_zero": 0.0,
               "x": np.zeros((2, 1), np.float32), "target": np.full((2, 4), 3.0, np.float32)})
@example(spec={"dtype": np.dtype(np.float64),  # p = 1 - 4e-44 rounds to 1: -log p is 0
               "dense": [{"W": np.zeros((1, 2)), "b": np.array([100.0, 0.0])}],
               "acts": ["relu"], "head": "softmax_ce", "grad_at_zero": 1.0,
               "x": np.zeros((1, 1)), "labels": np.array([0])})
# tanh(100 tanh(100 x)) at 0 turns on a scale of 1e-4: the jittered points measure its
# slope to 1e-5, as sharply as the hull at the point is held
@example(spec={"dtype": np.dtype(np.float64),
               "dense": [{"W": np.array([[100.0]])}, {"W": np.array([[100.0]])},
                         {"W": np.array([[0.0, 2.0, 2.0, 2.0]]),
                          "b": np.array([2.0, 2.0, 3.0, 1.0])}],
               "acts": ["tanh", "leaky", "tanh"], "head": "none", "grad_at_zero": 0.0,
               "x": np.zeros((4, 1))})
# W1 = 0 ties five kink coordinates; a little way off the point along the tie the float32
# loss does not move at all, which says nothing of the tie (it was FAILED as one)
@example(spec={"dtype": np.dtype(np.float32),
               "dense": [{"W": np.zeros((1, 5), np.float32),
                          "b": np.array([1e-3, 0, 0, 1e-3, 1e-3], np.float32)},
                         {"W": np.array([[1.5, -0.5], [0, -0.5], [-0.5, -0.5], [-0.5, -0.5],
                                         [-0.5, -0.5]], np.float32),
                          "b": np.array([0.0, 1.0], np.float32)},
                         {"W": np.array([[100.0], [100.0]], np.float32),
                          "b": np.zeros(1, np.float32)}],
               "acts": ["relu", "relu", "relu"], "head": "none", "grad_at_zero": 0.0,
               "x": np.array([[4.1708037e-07], [2.0], [2.0]], np.float32)})
# the same along a tie of two zeros whose moves change a float32 output of 100 by less
# than its spacing: the tie's bound counts the outputs' rounding (it was FAILED)
@example(spec={"dtype": np.dtype(np.float32),
               "dense": [{"W": np.zeros((1, 2), np.float32)},
                         {"W": np.ones((2, 2), np.float32),
                          "b": np.array([0.0, 1.0], np.float32)},
                         {"W": np.array([[100.0, 100.0], [0.0, 100.0]], np.float32),
                          "b": np.zeros(2, np.float32)}],
               "acts": ["relu", "relu", "relu"], "head": "none", "grad_at_zero": 0.0,
               "x": np.array([[-4.1708037e-07], [8.9741104e-07]], np.float32)})
# b1 = 5e-4 puts ReLU's 0 and LeakyReLU's 0 within 5e-4 and 1.7e-4 of the point, inside a
# float32 step of 2.5e-3 whose looks both reach across them and read smooth; the analytic
# values a quarter step each way differ, so the point decides nothing (it was FAILED)
@example(spec={"dtype": np.dtype(np.float32),
               "dense": [{"W": np.zeros((1, 4), np.float32),
                          "b": np.array([5e-4, 0.0, 0.0, 5e-4], np.float32)},
                         {"W": np.array([[0.002], [-0.0015], [-0.0015], [-0.0015]],
                                        np.float32),
                          "b": np.zeros(1, np.float32)},
                         {"W": np.ones((1, 1), np.float32)}],
               "acts": ["relu", "leaky", "sigmoid"], "head": "none", "grad_at_zero": 0.0,
               "x": np.zeros((1, 1), np.float32)})
def test_random_network_passes_check_layer(spec):
    """Any Sequential of Dense + activations (+ head), any weights and inputs, passes:
    ok in float64 (unverified only where the loss's arithmetic limits it, as a softmax sure
    of its answer does); in float32 ok, or unverified with the reason, where the function
    turns faster than float32's step can follow (tanh(250 x) at 0: the step 5e-3 spans its
    whole rise), and never FAILED."""
    net = build(spec)
    note(repr(net))
    if spec["dtype"] == np.float64:
        report = gc.check_layer(net, spec["x"])
        note(str(report))
        assert ok_or_limited_by_rounding(report), f"false alarm:\n{report}"
        return
    report = gc.check_layer(net, spec["x"])
    note(str(report))
    assert report.status != "FAILED", f"false alarm on a correct reference layer:\n{report}"
    assert all(t.ok or t.unverified_reason for t in report.tensors), str(report)


@given(
    x=gst.inputs(gst.batch_shapes(n_features=3), zeros=False),
    zero_rows=st.lists(st.integers(0, 3), min_size=1, max_size=2),
    W1=gst.weights((3, 4)),
    W2=gst.weights((4, 2)),
)
@example(x=np.zeros((1, 3)), zero_rows=[0],  # the loss and its changes are subnormal
         W1=np.full((3, 4), 1e-8), W2=np.full((4, 2), 2.2250738585072014e-308))
@example(x=-np.ones((3, 3)), zero_rows=[0],  # kinks whose jump is 1e-7 of 0.W's largest
         W1=np.array([[0.0, 0.0, 0.0, -200.0], [0.0] * 4, [0.0] * 4]),
         W2=np.array([[1e-7, 1e-7], [1e-7, 1e-7], [1e-7, 1e-7], [1.0, 1e-7]]))
def test_zero_rows_through_bias_free_dense_relu_pass(x, zero_rows, W1, W2):
    """A zero input row through bias-free Dense + ReLU (many kinks crossed at once) passes
    (unverified only where a kink's jump is within the loss's rounding, 1e-7 next to 200,
    or where the loss and its changes are subnormal)."""
    x = x.copy()
    x[[r % x.shape[0] for r in zero_rows]] = 0.0
    net = rn.Sequential(rn.Dense.from_arrays(W1), rn.ReLU(), rn.Dense.from_arrays(W2))
    report = gc.check_layer(net, x)
    note(str(report))
    assert ok_or_limited_by_rounding(report), f"false alarm on a correct network:\n{report}"


def test_zero_row_needs_the_jitter_recheck_not_the_hull():
    """The classic multi-kink case: correct code lies outside the hull of one-sided
    derivatives along x[0, j], so "hull" rejects it, and the default "subgradient" mode
    passes it by re-checking at a jittered point, and says so (kink tally and a warning).
    """
    x = np.array([[0.0, 0.0, 0.0], [0.3, 0.2, -0.1]])
    W1 = np.array([[1.0, -1.0, 2.0, -0.5], [0.5, 1.5, -1.0, 1.0], [-2.0, 0.3, 0.7, -1.2]])
    W2 = np.array([[1.0, -0.5], [2.0, 1.0], [-1.0, 0.5], [0.4, -2.0]])
    net = rn.Sequential(rn.Dense.from_arrays(W1), rn.ReLU(), rn.Dense.from_arrays(W2))
    report = assert_passes(net, x)
    xr = report.tensors[0]
    assert xr.name == "x"
    assert xr.kinks.met == 3 and xr.kinks.by_jitter == 3  # x[0, 0..2]: the zero row
    assert any("jittered" in w for w in report.warnings)
    assert not gc.check_layer(net, x, kinks="hull").ok


# ------------------------------------------------------------------ ReLU'(0)


@given(
    x=gst.inputs(gst.batch_shapes()),
    c=st.floats(-10, 10, allow_nan=False) | gst.relu_conventions(),
    seed=st.integers(0, 2**16),
)
def test_relu_backward_at_exact_zeros_is_c_times_g(x, c, seed):
    """ReLU(c).backward(g) is c * g where x == 0, g where x > 0 and 0 where x < 0."""
    g = np.random.default_rng(seed).standard_normal(x.shape)
    relu = rn.ReLU(grad_at_zero=c)
    relu.forward(x)
    dx = relu.backward(g)
    np.testing.assert_array_equal(dx[x == 0], c * g[x == 0])
    np.testing.assert_array_equal(dx[x > 0], g[x > 0])
    np.testing.assert_array_equal(dx[x < 0], 0.0)


@st.composite
def inputs_with_a_zero(draw: st.DrawFn) -> np.ndarray:
    """Inputs with at least one exact zero, all others at least 1e-3 from zero (isolated)."""
    shape = draw(gst.batch_shapes())
    x = draw(gst.inputs(shape, zeros=False))
    x = np.where(np.abs(x) < 1e-3, 1.0, x)
    zeros = draw(st.lists(st.integers(0, x.size - 1), min_size=1, max_size=x.size))
    x.flat[zeros] = 0.0
    return x


@given(x=inputs_with_a_zero(), c=gst.relu_conventions())
@example(x=np.array([[0.0]]), c=0.0)
@example(x=np.array([[0.0, 1.0, -1.0]]), c=1.0)
@example(x=np.array([[0.0, 0.0], [2.0, 0.0]]), c=0.5)
def test_hull_mode_accepts_any_relu_convention_in_0_1(x, c):
    """At isolated kinks (ReLU on its own input) any ReLU'(0) in [0, 1] is accepted."""
    report = assert_passes(rn.ReLU(grad_at_zero=c), x, kinks="hull")
    tally = report.tensors[0].kinks
    assert tally.met >= int(np.sum(x == 0)), "every exact zero is a kink"
    assert tally.by_hull == tally.met


@given(x=inputs_with_a_zero(), c=gst.relu_conventions(valid=False))
@example(x=np.array([[0.0]]), c=2.0)
@example(x=np.array([[0.0, 1.0, -1.0]]), c=-0.5)
def test_hull_mode_catches_relu_convention_outside_0_1(x, c):
    """ReLU'(0) = c outside [0, 1] is caught, and the mismatch is named at a zero of x."""
    report = gc.check_layer(rn.ReLU(grad_at_zero=c), x, kinks="hull")
    note(str(report))
    assert not report.ok
    (xr,) = report.tensors
    assert xr.mismatched == int(np.sum(x == 0))
    assert all(x[m.index] == 0 for m in xr.worst)


# ------------------------------------------------------------------ softmax + cross-entropy


@given(shape=gst.batch_shapes(), data=st.data())
@example(shape=(1, 1), data=None)
def test_softmax_ce_gradient_is_p_minus_onehot_over_batch(shape, data):
    """dC/dx = (softmax(x) - onehot(labels)) / N, and C = mean(logsumexp(x) - x[label])."""
    if data is None:
        x, labels = np.array([[3.0]]), np.array([0])
    else:
        x = data.draw(gst.logits(shape), label="logits")
        labels = data.draw(gst.labels(shape[0], shape[1]), label="labels")
    n, k = x.shape
    head = rn.SoftmaxCrossEntropy(labels)
    loss = head.forward(x)
    p = softmax(x)
    onehot = np.eye(k)[labels]
    np.testing.assert_allclose(head.backward(), (p - onehot) / n, rtol=1e-12, atol=1e-15)
    m = x.max(axis=1)
    lse = m + np.log(np.exp(x - m[:, None]).sum(axis=1))
    assert loss == pytest.approx(np.mean(lse - x[np.arange(n), labels]), rel=1e-12, abs=1e-12)


@given(x=gst.logits(gst.batch_shapes()))
@example(x=np.array([[1000.0, -1000.0, 0.0]]))
def test_softmax_jacobian_rows_sum_to_zero(x):
    """Softmax's Jacobian, read row by row from backward, is diag(p) - p p^T; rows sum to 0."""
    sm = rn.Softmax()
    p = sm.forward(x)
    n, k = x.shape
    J = np.empty((n, k, k))
    for i in range(k):  # backward(e_i) = J^T e_i = row i of J, for every sample at once
        e = np.zeros_like(x)
        e[:, i] = 1.0
        J[:, i, :] = sm.backward(e)
    np.testing.assert_allclose(J.sum(axis=2), 0.0, atol=1e-15)
    expected = p[:, :, None] * np.eye(k) - p[:, :, None] * p[:, None, :]
    np.testing.assert_allclose(J, expected, atol=1e-15)


@given(
    shape=gst.batch_shapes(),
    big=st.sampled_from([1000.0, -1000.0, 1e4]),
    data=st.data(),
)
def test_large_logits_stay_finite_and_pass(shape, big, data):
    """Logits around +-1000 give a finite loss and gradient, and the checker agrees."""
    x = data.draw(gst.logits(shape, large=False), label="logits") + big
    x[0, 0] = -big
    labels = data.draw(gst.labels(shape[0], shape[1]), label="labels")
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        head = rn.SoftmaxCrossEntropy(labels)
        loss = head.forward(x)
        grad = head.backward()
        sm = rn.Softmax()
        p = sm.forward(x)
        dp = sm.backward(np.ones_like(x))
    assert np.isfinite(loss) and loss >= 0
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(p)) and np.all(np.isfinite(dp))
    assert_passes(head, x)


# ------------------------------------------------------------------ the strategies themselves

FIND = settings(max_examples=1000, derandomize=True, database=None, phases=[Phase.generate])

HARD_CASES = {
    "input with an exact zero": (gst.inputs((2, 3)), lambda x: bool(np.any(x == 0))),
    "input near zero": (gst.inputs((2, 3)), lambda x: bool(np.any((x != 0) & (abs(x) < 1e-6)))),
    "float32 input near zero": (
        gst.inputs((2, 3), np.float32), lambda x: bool(np.any((x != 0) & (abs(x) < 1e-6)))),
    "batch of 1": (gst.batch_shapes(), lambda s: s[0] == 1),
    "width 1": (gst.batch_shapes(), lambda s: s[1] == 1),
    "weights with an exact zero": (gst.weights((3, 2)), lambda w: bool(np.any(w == 0))),
    "tiny weights": (gst.weights((3, 2)), lambda w: 0 < np.abs(w).max() <= 3e-3),
    "large weights": (gst.weights((3, 2)), lambda w: np.abs(w).max() >= 10),
    "ReLU'(0) = 0.5": (gst.relu_conventions(), lambda c: c == 0.5),
    "ReLU'(0) strictly inside (0, 1), not 0.5": (gst.relu_conventions(), lambda c: 0 < c < 1
                                                 and c != 0.5),
    "ReLU'(0) = 2.0 (invalid)": (gst.relu_conventions(valid=False), lambda c: c == 2.0),
    "logit of 1000": (gst.logits((2, 3)), lambda x: bool(np.any(x == 1000))),
    "label of the last class": (gst.labels(3, 4), lambda y: bool(np.any(y == 3))),
    "exact 0 and 1 targets": (gst.binary_targets((4,)), lambda t: {0.0, 1.0} <= set(t.tolist())),
}


@pytest.mark.parametrize("case", list(HARD_CASES))
def test_strategies_draw_the_hard_cases(case):
    """Each public strategy can produce the hard case it promises (within 1000 draws)."""
    strategy, predicate = HARD_CASES[case]
    find(strategy, predicate, settings=FIND)


@given(
    x=gst.inputs(gst.batch_shapes(), np.float32),
    w=gst.weights((2, 3), np.float32),
    c=gst.relu_conventions(),
    bad=gst.relu_conventions(valid=False),
    y=gst.labels(4, 3),
    t=gst.binary_targets((2,), np.float32),
)
def test_strategies_stay_in_their_ranges(x, w, c, bad, y, t):
    """Dtypes are kept, values are finite and within range, conventions are (in)valid."""
    assert x.dtype == w.dtype == t.dtype == np.float32
    assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= 3) and np.all(np.abs(w) <= 300)
    assert 0 <= c <= 1 and not (-0.1 < bad < 1.1)
    assert y.shape == (4,) and y.min() >= 0 and y.max() <= 2
    assert np.all((t >= 0) & (t <= 1))


def test_inputs_put_zeros_in_most_arrays():
    """Zeros are drawn on purpose, not left to chance: in 200 (derandomized) draws of a
    (2, 3) input, most arrays hold an exact zero and many a nonzero value within 1e-6.
    (Plain hypothesis floats give about 50 % for each; gst.inputs about 90 % and 60-65 %:
    derandomized generation still varies with hypothesis's state, by a few percent.)"""
    has_zero, has_near = [], []

    @settings(max_examples=200, derandomize=True, database=None, phases=[Phase.generate])
    @given(gst.inputs((2, 3)))
    def draw(x: np.ndarray) -> None:
        has_zero.append(bool(np.any(x == 0)))
        has_near.append(bool(np.any((x != 0) & (np.abs(x) < 1e-6))))

    draw()
    assert np.mean(has_zero) >= 0.8
    assert np.mean(has_near) >= 0.55
