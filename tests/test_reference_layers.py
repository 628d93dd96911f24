"""Unit tests of reference_nets against closed forms and a small independent central difference.

These do not use the gradcheck engine on purpose: they pin the reference layers on their
own, so that the property suite (test_reference_properties.py) tests the checker against
layers already known to be right.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import reference_nets as rn

RNG = np.random.default_rng(1234)


def numeric_grad(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of f() with respect to x, perturbing x in place and restoring it."""
    grad = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f()
        x[idx] = old - h
        fm = f()
        x[idx] = old
        grad[idx] = (fp - fm) / (2 * h)
    return grad


def layer_grads(layer: Any, x: np.ndarray, g: np.ndarray | float) -> dict[str, np.ndarray]:
    """Analytic (x and params) and numeric gradients of L = sum(g * layer.forward(x))."""
    x = x.copy()

    def loss() -> float:
        return float(np.sum(g * layer.forward(x)))

    out = {"x": numeric_grad(loss, x)}
    for k, p in layer.params.items():
        out[k] = numeric_grad(loss, p)
    layer.forward(x)
    analytic = {"x": layer.backward(g)}
    analytic.update(layer.grads)
    return {**{f"num_{k}": v for k, v in out.items()}, **analytic}


def assert_layer_matches_numeric(layer: Any, x: np.ndarray, g: Any = None) -> None:
    if g is None:
        y = layer.forward(x.copy())
        g = RNG.standard_normal(np.shape(y)) if np.ndim(y) else 1.7
    d = layer_grads(layer, x, g)
    for k in ["x", *layer.params]:
        np.testing.assert_allclose(d[k], d[f"num_{k}"], rtol=1e-6, atol=1e-8, err_msg=k)


def readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.flags.writeable = False
    return a


def all_layers() -> list[tuple[str, Callable[[], Any], tuple[int, ...]]]:
    """(name, factory, input shape) for every layer and head, for the shared protocol tests."""
    labels = np.array([0, 2, 1])
    target = RNG.standard_normal((3, 3))
    return [
        ("Dense", lambda: rn.Dense(4, 3, rng=0), (3, 4)),
        ("Dense-nobias", lambda: rn.Dense(4, 3, rng=0, bias=False), (3, 4)),
        ("ReLU", rn.ReLU, (3, 4)),
        ("ReLU-half", lambda: rn.ReLU(0.5), (3, 4)),
        ("LeakyReLU", rn.LeakyReLU, (3, 4)),
        ("Sigmoid", rn.Sigmoid, (3, 4)),
        ("Tanh", rn.Tanh, (3, 4)),
        ("Softmax", rn.Softmax, (3, 4)),
        ("QuadraticCost", lambda: rn.QuadraticCost(target), (3, 3)),
        ("SoftmaxCrossEntropy", lambda: rn.SoftmaxCrossEntropy(labels), (3, 3)),
        ("BinaryCrossEntropy", lambda: rn.BinaryCrossEntropy(target > 0), (3, 3)),
        (
            "Sequential",
            lambda: rn.Sequential(
                rn.Dense(4, 5, rng=1), rn.ReLU(), rn.Dense(5, 3, rng=2),
                rn.SoftmaxCrossEntropy(labels),
            ),
            (3, 4),
        ),
    ]


LAYERS = all_layers()
LAYER_IDS = [name for name, _, _ in LAYERS]
HEADS = {"QuadraticCost", "SoftmaxCrossEntropy", "BinaryCrossEntropy", "Sequential"}


# ---------------------------------------------------------------- protocol, every layer


@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=LAYER_IDS)
def test_every_layer_matches_independent_central_differences(name, make, shape):
    """Backward agrees with a plain central difference for x and every param (float64)."""
    x = RNG.standard_normal(shape)
    assert_layer_matches_numeric(make(), x)


@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=LAYER_IDS)
def test_forward_never_writes_into_its_input(name, make, shape):
    """Forward and backward run on a read-only input (any in-place write would raise)."""
    layer = make()
    x = readonly(RNG.standard_normal(shape))
    y = layer.forward(x)
    g = readonly(np.ones(np.shape(y))) if np.ndim(y) else 1.0
    layer.backward(g)


@pytest.mark.parametrize(("name", "make", "shape"), LAYERS, ids=LAYER_IDS)
def test_backward_overwrites_grads_never_accumulates(name, make, shape):
    """Two backward calls after one forward give identical grad_x and grads."""
    layer = make()
    y = layer.forward(RNG.standard_normal(shape))
    g = RNG.standard_normal(np.shape(y)) if np.ndim(y) else 0.7
    dx1 = np.array(layer.backward(g))
    grads1 = {k: np.array(v) for k, v in layer.grads.items()}
    dx2 = layer.backward(g)
    np.testing.assert_array_equal(dx2, dx1)
    assert layer.grads.keys() == grads1.keys() == layer.params.keys()
    for k, v in layer.grads.items():
        np.testing.assert_array_equal(v, grads1[k], err_msg=k)
        assert v.shape == layer.params[k].shape


NON_HEADS = [case for case in LAYERS if case[0] not in HEADS]


@pytest.mark.parametrize(("name", "make", "shape"), NON_HEADS, ids=[c[0] for c in NON_HEADS])
def test_batch_backward_is_the_sum_of_per_sample_backwards(name, make, shape):
    """Matrix-form backward over the batch equals per-sample backward, summed for params."""
    layer = make()
    x = RNG.standard_normal(shape)
    g = RNG.standard_normal(np.shape(layer.forward(x)))
    dx = layer.backward(g)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for i in range(shape[0]):
        layer.forward(x[i : i + 1])
        np.testing.assert_allclose(layer.backward(g[i : i + 1]), dx[i : i + 1], rtol=1e-12)
        for k in total:
            total[k] += layer.grads[k]
    for k in total:
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------------- Dense


def test_dense_forward_is_x_at_W_plus_b_and_backward_closed_form():
    layer = rn.Dense(3, 2, rng=0)
    layer.params["b"][:] = [0.5, -1.0]
    x = RNG.standard_normal((4, 3))
    np.testing.assert_allclose(layer.forward(x), x @ layer.params["W"] + layer.params["b"])
    g = RNG.standard_normal((4, 2))
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, g @ layer.params["W"].T)
    np.testing.assert_allclose(layer.grads["W"], x.T @ g)
    np.testing.assert_allclose(layer.grads["b"], g.sum(axis=0))


def test_dense_init_rng_forms_and_bias_false():
    a, b = rn.Dense(5, 4, rng=7), rn.Dense(5, 4, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    assert not np.array_equal(rn.Dense(5, 4).params["W"], rn.Dense(5, 4).params["W"])
    assert a.params["W"].shape == (5, 4) and a.params["b"].shape == (4,)
    nb = rn.Dense(5, 4, rng=7, bias=False)
    assert list(nb.params) == ["W"]
    x = RNG.standard_normal((2, 5))
    np.testing.assert_allclose(nb.forward(x), x @ nb.params["W"])
    nb.backward(np.ones((2, 4)))
    assert list(nb.grads) == ["W"]


def test_dense_he_init_scale():
    w = rn.Dense(400, 300, rng=0).params["W"]
    assert abs(w.std() - np.sqrt(2 / 400)) < 0.01 * np.sqrt(2 / 400) * 5


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_layers_compute_in_their_dtype(dtype):
    """Dense(dtype=...) casts inputs to its dtype; activations and heads follow the input."""
    dense = rn.Dense(3, 2, rng=0, dtype=dtype)
    assert all(p.dtype == dtype for p in dense.params.values())
    y = dense.forward(RNG.standard_normal((4, 3)))  # float64 input
    assert y.dtype == dtype
    assert dense.backward(np.ones((4, 2))).dtype == dtype
    assert all(g.dtype == dtype for g in dense.grads.values())
    for act in (rn.ReLU(0.5), rn.LeakyReLU(), rn.Sigmoid(), rn.Tanh(), rn.Softmax()):
        out = act.forward(y)
        assert out.dtype == dtype, act
        assert act.backward(np.ones(out.shape)).dtype == dtype, act
    for head in (rn.QuadraticCost(np.zeros((4, 2))), rn.SoftmaxCrossEntropy(np.array([0, 1, 1, 0])),
                 rn.BinaryCrossEntropy(np.ones((4, 2)))):
        assert isinstance(head.forward(y), float)
        assert head.backward(1.0).dtype == dtype, head


def test_dense_accepts_1d_and_nd_inputs():
    layer = rn.Dense(3, 2, rng=0)
    x = RNG.standard_normal((2, 5, 3))
    assert_layer_matches_numeric(layer, x)
    assert_layer_matches_numeric(layer, RNG.standard_normal(3))


def test_dense_from_arrays_shares_arrays():
    W, b = RNG.standard_normal((3, 2)), RNG.standard_normal(2)
    layer = rn.Dense.from_arrays(W, b)
    assert layer.params["W"] is W and layer.params["b"] is b
    W[0, 0] += 1.0
    np.testing.assert_allclose(layer.forward(np.eye(3)), W + b)


def test_activations_write_into_out_only_when_it_fits():
    """backward(g, out=g) overwrites g and returns it; an out of another dtype or shape is
    left alone and a new array returned; without out, g is never written."""
    x = np.array([[-1.0, 0.5, 2.0]])
    for act in (rn.ReLU(), rn.ReLU(0.5), rn.LeakyReLU(0.1), rn.Sigmoid(), rn.Tanh(),
                rn.Softmax()):
        act.forward(x)
        g = np.array([[1.0, -2.0, 3.0]])
        expected = act.backward(g)
        np.testing.assert_array_equal(g, [[1.0, -2.0, 3.0]])
        out = act.backward(g, out=g)
        assert out is g, act
        np.testing.assert_array_equal(g, expected)
        g32 = np.array([[1.0, -2.0, 3.0]], dtype=np.float32)
        kept = act.backward(g32, out=g32)
        assert kept is not g32 and kept.dtype == np.float64, act
        np.testing.assert_array_equal(g32, [[1.0, -2.0, 3.0]])


def test_dense_usage_errors():
    with pytest.raises(ValueError, match="n_in"):
        rn.Dense(0, 3)
    with pytest.raises(ValueError, match="float dtype"):
        rn.Dense(2, 3, dtype=np.int32)
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        rn.Dense(2, 3).forward(np.ones((4, 3)))
    with pytest.raises(RuntimeError, match="before forward"):
        rn.Dense(2, 3).backward(np.ones((1, 3)))


def test_dense_input_grad_false_skips_dx_and_computes_the_same_grads():
    """Training's first layer: backward returns None; grads are bit for bit those of the
    input_grad=True layer (the same products); the flag shows in repr and from_arrays."""
    full, first = rn.Dense(5, 3, rng=2), rn.Dense(5, 3, rng=2, input_grad=False)
    for layer in (full, first):
        layer.params["b"][:] = [0.1, -0.2, 0.3]
    x, g = RNG.standard_normal((4, 5)), RNG.standard_normal((4, 3))
    np.testing.assert_array_equal(first.forward(x), full.forward(x))
    assert first.backward(g) is None
    assert full.backward(g).shape == x.shape
    for k in ("W", "b"):
        np.testing.assert_array_equal(first.grads[k], full.grads[k], err_msg=k)
    np.testing.assert_allclose(first.grads["W"], x.T @ g, rtol=1e-12)
    assert repr(first) == "Dense(5, 3, dtype=float64, input_grad=False)"
    shared = rn.Dense.from_arrays(np.eye(2), input_grad=False)
    shared.forward(np.ones((1, 2)))
    assert shared.backward(np.ones((1, 2))) is None and not shared.input_grad


def test_dense_writes_grads_into_the_same_arrays_each_backward():
    """The documented buffer reuse: grads["W"] and grads["b"] are the layer's own arrays,
    overwritten (not accumulated) by each backward, and right each time."""
    layer = rn.Dense(3, 2, rng=0)
    x1, x2 = RNG.standard_normal((4, 3)), RNG.standard_normal((6, 3))
    g1, g2 = RNG.standard_normal((4, 2)), RNG.standard_normal((6, 2))
    layer.forward(x1)
    layer.backward(g1)
    w_grad, b_grad = layer.grads["W"], layer.grads["b"]
    np.testing.assert_allclose(w_grad, x1.T @ g1, rtol=1e-12)
    layer.forward(x2)  # another batch size: the bias's row of ones follows it
    layer.backward(g2)
    assert layer.grads["W"] is w_grad and layer.grads["b"] is b_grad
    np.testing.assert_allclose(w_grad, x2.T @ g2, rtol=1e-12)
    np.testing.assert_allclose(b_grad, g2.sum(axis=0), rtol=1e-12)
    empty = rn.Dense(3, 2, rng=0)  # an empty batch has zero gradients, not garbage
    empty.forward(np.zeros((0, 3)))
    assert empty.backward(np.zeros((0, 2))).shape == (0, 3)
    np.testing.assert_array_equal(empty.grads["W"], np.zeros((3, 2)))
    np.testing.assert_array_equal(empty.grads["b"], np.zeros(2))


def test_check_layer_on_a_layer_without_input_grad_is_a_usage_error():
    """check_layer checks x, so it needs dL/dx: a layer that returns None gets a usage error
    naming x (never a crash); the same layer with input_grad=True is checked as usual."""
    import gradcheck as gc
    from gradcheck.errors import GradcheckUsageError

    x = RNG.standard_normal((3, 4))
    for layer in (rn.Dense(4, 3, rng=0, input_grad=False),
                  rn.Sequential(rn.Dense(4, 3, rng=0, input_grad=False), rn.Tanh())):
        with pytest.raises(GradcheckUsageError, match="'x'"):
            gc.check_layer(layer, x)
    assert gc.check_layer(rn.Dense(4, 3, rng=0), x).ok


# ---------------------------------------------------------------- activations


def test_relu_values_and_grad_at_zero_convention():
    x = np.array([[-2.0, 0.0, 3.0, -0.0]])
    g = np.array([[10.0, 10.0, 10.0, 10.0]])
    relu = rn.ReLU()
    np.testing.assert_array_equal(relu.forward(x), [[0.0, 0.0, 3.0, 0.0]])
    np.testing.assert_array_equal(relu.backward(g), [[0.0, 0.0, 10.0, 0.0]])
    for c in (1.0, 0.5, 2.0, -0.5):
        relu.grad_at_zero = c  # public and mutable, read at backward time
        np.testing.assert_array_equal(relu.backward(g), [[0.0, 10 * c, 10.0, 10 * c]])


def test_leaky_relu_sigmoid_tanh_closed_forms():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    leaky = rn.LeakyReLU(0.1)
    np.testing.assert_allclose(leaky.forward(x), np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(leaky.backward(np.ones(5)), np.where(x > 0, 1.0, 0.1))
    sig = rn.Sigmoid()
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(sig.forward(x), s, rtol=1e-15)
    np.testing.assert_allclose(sig.backward(np.ones(5)), s * (1 - s), rtol=1e-14)
    tanh = rn.Tanh()
    np.testing.assert_allclose(tanh.forward(x), np.tanh(x))
    np.testing.assert_allclose(tanh.backward(np.ones(5)), 1 / np.cosh(x) ** 2, rtol=1e-14)


def test_sigmoid_is_stable_at_large_inputs():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            sig = rn.Sigmoid()
            y = sig.forward(np.array([-1000.0, -40.0, 40.0, 1000.0]))
            assert y[1] > 0  # not flushed to zero: exp(-40) ~ 4e-18
            assert np.all(np.isfinite(sig.backward(np.ones(4))))


def test_softmax_forward_and_jacobian_closed_form():
    x = RNG.standard_normal((3, 4))
    sm = rn.Softmax()
    p = sm.forward(x)
    np.testing.assert_allclose(p, np.exp(x) / np.exp(x).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    g = RNG.standard_normal((3, 4))
    dx = sm.backward(g)
    for i in range(3):  # J = diag(p) - p p^T, dx = J^T g row by row
        J = np.diag(p[i]) - np.outer(p[i], p[i])
        np.testing.assert_allclose(dx[i], J.T @ g[i], atol=1e-15)


# ---------------------------------------------------------------- heads


def test_quadratic_cost_closed_form_no_batch_mean():
    y, t = RNG.standard_normal((5, 2)), RNG.standard_normal((5, 2))
    head = rn.QuadraticCost(t)
    assert head.forward(y) == pytest.approx(0.5 * np.sum((y - t) ** 2))
    np.testing.assert_allclose(head.backward(), y - t)
    np.testing.assert_allclose(head.backward(3.0), 3.0 * (y - t))
    with pytest.raises(ValueError, match="target"):
        rn.QuadraticCost(np.zeros((3, 2))).forward(np.zeros((1, 2)))


def test_softmax_cross_entropy_closed_form():
    x = RNG.standard_normal((4, 3))
    labels = np.array([2, 0, 0, 1])
    head = rn.SoftmaxCrossEntropy(labels)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert head.forward(x) == pytest.approx(-np.mean(np.log(p[np.arange(4), labels])), rel=1e-14)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(head.backward(), (p - onehot) / 4, atol=1e-16)
    np.testing.assert_allclose(head.backward(np.float64(-2.0)), -2 * (p - onehot) / 4, atol=1e-16)


def test_softmax_cross_entropy_large_logits_stay_finite():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        head = rn.SoftmaxCrossEntropy(np.array([0, 1]))
        loss = head.forward(np.array([[1000.0, 0.0], [1000.0, -1000.0]]))
        assert loss == pytest.approx(1000.0)  # 0 for row 0, 2000 for row 1, mean 1000
        np.testing.assert_allclose(head.backward(), [[0.0, 0.0], [0.5, -0.5]], atol=1e-300)


def test_softmax_cross_entropy_uses_labels_of_its_forward():
    head = rn.SoftmaxCrossEntropy(np.array([0]))
    head.forward(np.array([[0.0, 0.0]]))
    head.labels = np.array([1])  # a new mini-batch's labels, set before the next forward
    np.testing.assert_allclose(head.backward(), [[-0.5, 0.5]])


@pytest.mark.parametrize("layout", ["one row", "one class", "fortran", "transposed view"])
def test_softmax_cross_entropy_never_writes_into_logits_of_any_layout(layout):
    """The transposed working copy is always a copy, also when x.T happens to be
    contiguous already (one row, one class, Fortran order, a transposed view)."""
    x = {"one row": RNG.standard_normal((1, 3)), "one class": RNG.standard_normal((4, 1)),
         "fortran": np.asfortranarray(RNG.standard_normal((4, 3))),
         "transposed view": RNG.standard_normal((3, 4)).T}[layout]
    labels = np.zeros(x.shape[0], dtype=int)
    expected = float(np.mean(np.log(np.exp(x).sum(axis=1)) - x[:, 0]))
    x.flags.writeable = False
    head = rn.SoftmaxCrossEntropy(labels)
    assert head.forward(x) == pytest.approx(expected, rel=1e-12)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(head.backward(), (p - (np.arange(x.shape[1]) == 0)) / len(x),
                               rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_usage_errors():
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        rn.SoftmaxCrossEntropy(np.array([0])).forward(np.zeros(3))
    with pytest.raises(ValueError, match="integers of shape"):
        rn.SoftmaxCrossEntropy(np.array([0.0, 1.0])).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        rn.SoftmaxCrossEntropy(np.array([0, 3])).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="scalar"):
        head = rn.SoftmaxCrossEntropy(np.array([0]))
        head.forward(np.zeros((1, 2)))
        head.backward(np.ones(2))


def test_binary_cross_entropy_closed_form_and_stability():
    x = RNG.standard_normal((4, 2))
    t = RNG.uniform(size=(4, 2))
    head = rn.BinaryCrossEntropy(t)
    s = 1 / (1 + np.exp(-x))
    naive = -np.sum(t * np.log(s) + (1 - t) * np.log(1 - s)) / 4
    assert head.forward(x) == pytest.approx(naive, rel=1e-13)
    np.testing.assert_allclose(head.backward(), (s - t) / 4, rtol=1e-13)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        big = rn.BinaryCrossEntropy(np.array([1.0, 0.0, 0.0]))
        assert big.forward(np.array([1000.0, -1000.0, 1000.0])) == pytest.approx(1000 / 3)
        np.testing.assert_allclose(big.backward(), [0.0, 0.0, 1 / 3], atol=1e-300)


# ---------------------------------------------------------------- Sequential


def test_sequential_params_are_the_sublayers_arrays():
    d1, d2 = rn.Dense(3, 4, rng=0), rn.Dense(4, 2, rng=1)
    net = rn.Sequential(d1, rn.ReLU(), d2)
    assert list(net.params) == ["0.W", "0.b", "2.W", "2.b"]
    assert net.params["0.W"] is d1.params["W"] and net.params["2.b"] is d2.params["b"]
    x = RNG.standard_normal((5, 3))
    y0 = net.forward(x)
    net.params["2.b"][1] += 1.0  # in place, as the checker does
    np.testing.assert_allclose(net.forward(x)[:, 1], y0[:, 1] + 1.0)
    net.backward(np.ones((5, 2)))
    assert net.grads["0.W"] is d1.grads["W"]
    assert net.grads.keys() == net.params.keys()


def test_sequential_nests_prefixes_and_ends_in_a_head():
    labels = np.array([1, 0])
    inner = rn.Sequential(rn.Dense(3, 3, rng=0), rn.Tanh())
    net = rn.Sequential(rn.Dense(2, 3, rng=1), inner, rn.Dense(3, 2, rng=2),
                        rn.SoftmaxCrossEntropy(labels))
    assert list(net.params) == ["0.W", "0.b", "1.0.W", "1.0.b", "2.W", "2.b"]
    loss = net.forward(RNG.standard_normal((2, 2)))
    assert isinstance(loss, float)
    assert net.backward().shape == (2, 2)
    with pytest.raises(TypeError, match="layer 1"):
        rn.Sequential(rn.ReLU(), object())


def test_sequential_passes_on_none_from_a_first_dense_without_input_grad():
    labels = np.array([1, 0, 2])
    x = RNG.standard_normal((3, 4))

    def net(input_grad: bool) -> rn.Sequential:
        return rn.Sequential(rn.Dense(4, 5, rng=1, input_grad=input_grad), rn.ReLU(),
                             rn.Dense(5, 3, rng=2), rn.SoftmaxCrossEntropy(labels))

    train, full = net(False), net(True)
    assert train.forward(x) == full.forward(x)
    assert train.backward() is None
    assert full.backward().shape == x.shape
    assert train.grads.keys() == full.grads.keys()
    for k, v in train.grads.items():
        np.testing.assert_array_equal(v, full.grads[k], err_msg=k)
    nested = rn.Sequential(rn.Sequential(rn.Dense(4, 3, rng=0, input_grad=False), rn.Tanh()),
                           rn.Dense(3, 2, rng=1))
    nested.forward(x)
    assert nested.backward(np.ones((3, 2))) is None


def test_sequential_refuses_none_from_a_layer_that_is_not_first():
    """A later Dense without input_grad would leave the layers before it without grad_y:
    a ValueError naming the layer, not a TypeError deep inside the next backward."""
    net = rn.Sequential(rn.Dense(4, 5, rng=1), rn.ReLU(),
                        rn.Dense(5, 3, rng=2, input_grad=False))
    net.forward(RNG.standard_normal((2, 4)))
    with pytest.raises(ValueError, match=r"layer 2 .*input_grad=False"):
        net.backward(np.ones((2, 3)))


def test_sequential_overwrites_only_gradients_its_layers_let_go_of():
    """In place only where safe: the caller's grad_y is read-only here (a write would raise),
    an activation after a Dense gets out= (the Dense's new dx), and one after a layer that
    keeps its returned gradient (no returns_new_grad) does not."""

    class Keeps:  # returns the same stored array every time: must never be overwritten
        def __init__(self) -> None:
            self.params: dict[str, np.ndarray] = {}
            self.grads: dict[str, np.ndarray] = {}
            self.kept = np.zeros(0)

        def forward(self, x: np.ndarray) -> np.ndarray:
            self.kept = np.full(np.shape(x), 2.0)
            return x

        def backward(self, g: np.ndarray) -> np.ndarray:
            return self.kept

    calls: list[bool] = []

    class SpyReLU(rn.ReLU):
        def backward(self, grad_y: Any, out: Any = None) -> Any:
            calls.append(out is not None)
            return super().backward(grad_y, out=out)

    keeps = Keeps()
    x = RNG.standard_normal((3, 4))
    net = rn.Sequential(rn.Dense(4, 4, rng=0), SpyReLU(), rn.Dense(4, 4, rng=1), SpyReLU(),
                        keeps, rn.QuadraticCost(np.zeros((3, 4))))
    ref = rn.Sequential(rn.Dense(4, 4, rng=0), rn.ReLU(), rn.Dense(4, 4, rng=1), rn.ReLU(),
                        rn.QuadraticCost(np.zeros((3, 4))))
    net.forward(x)
    dx = net.backward(readonly(np.array(1.0)))
    np.testing.assert_array_equal(keeps.kept, np.full((3, 4), 2.0))
    assert calls == [False, True]  # after Keeps: no out; after the Dense: out
    ref.forward(x)
    ref.layers[-1].backward = lambda g=1.0: np.full((3, 4), 2.0)  # what Keeps passes on
    np.testing.assert_array_equal(dx, ref.backward())

    class PassesOn(rn.Dense):  # a buggy Dense that hands grad_y itself back
        def backward(self, grad_y: Any) -> Any:
            super().backward(grad_y)
            return grad_y

    last = rn.Sequential(rn.Dense(4, 3, rng=0), rn.ReLU(), PassesOn(3, 3, rng=1))
    last.forward(x)
    g = RNG.standard_normal((3, 3))
    kept = g.copy()
    last.backward(g)
    np.testing.assert_array_equal(g, kept)  # the caller's grad_y is never written into


def test_sequential_forward_overwrites_only_outputs_its_layers_let_go_of():
    """A ReLU after a Dense writes y into the Dense's new output (nobody else holds it); a
    ReLU after a layer that keeps its output (Sigmoid keeps y for its backward) or after the
    caller's x does not. Same values as the layers run one by one."""
    calls: list[bool] = []

    class SpyReLU(rn.ReLU):
        def forward(self, x: Any, out: Any = None) -> Any:
            calls.append(out is not None and out is x)
            return super().forward(x, out=out)

    x = readonly(RNG.standard_normal((3, 4)))  # a write into the caller's x would raise
    layers = [SpyReLU(), rn.Dense(4, 4, rng=0), SpyReLU(), rn.Sigmoid(), SpyReLU(),
              rn.Dense(4, 2, rng=1)]
    net = rn.Sequential(*layers)
    y = net.forward(x)
    assert calls == [False, True, False]
    sigmoid_y = layers[3]._y.copy()
    one_by_one = [rn.ReLU(), rn.Dense(4, 4, rng=0), rn.ReLU(), rn.Sigmoid(), rn.ReLU(),
                  rn.Dense(4, 2, rng=1)]
    h = x
    for layer in one_by_one:
        h = layer.forward(h)
    np.testing.assert_array_equal(y, h)
    np.testing.assert_array_equal(layers[3]._y, sigmoid_y)  # the Sigmoid's y is intact
    g = RNG.standard_normal((3, 2))
    dx = net.backward(g)
    for layer in reversed(one_by_one):
        g = layer.backward(g)
    np.testing.assert_array_equal(dx, g)


def test_relu_in_place_forward_refuses_a_later_grad_at_zero_it_cannot_honour():
    """After writing y over x (inside a Sequential), the exact zeros of x are gone: changing
    grad_at_zero from 0 before backward is an error that says so, never a silent answer.
    Set before forward, the convention is honoured and x is kept."""
    x = np.array([[-1.0, 0.0, 2.0]])
    net = rn.Sequential(rn.Dense.from_arrays(np.eye(3), np.zeros(3)), rn.ReLU())
    net.forward(x)
    net.layers[1].grad_at_zero = 0.5
    with pytest.raises(RuntimeError, match="grad_at_zero was changed from 0 after forward"):
        net.backward(np.ones((1, 3)))
    net.forward(x)  # grad_at_zero 0.5 now: not in place, the zeros are kept
    np.testing.assert_array_equal(net.backward(np.ones((1, 3))), [[0.0, 0.5, 1.0]])


def test_sequential_matches_hand_composition():
    x = RNG.standard_normal((3, 4))
    d1, d2 = rn.Dense(4, 5, rng=3), rn.Dense(5, 2, rng=4)
    d1.params["b"][:] = RNG.standard_normal(5)
    net = rn.Sequential(d1, rn.Sigmoid(), d2, rn.QuadraticCost(np.ones((3, 2))))
    h = 1 / (1 + np.exp(-(x @ d1.params["W"] + d1.params["b"])))
    out = h @ d2.params["W"] + d2.params["b"]
    assert net.forward(x) == pytest.approx(0.5 * np.sum((out - 1) ** 2))
    assert_layer_matches_numeric(net, x)
