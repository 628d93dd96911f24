"""The classic hand-derivation networks: closed forms pinned by hand, checked by gradcheck.

Each network's closed-form gradient is (a) pinned on numbers worked out by hand, (b) equal
to the reference layers' backprop, and (c) accepted by gc.check_params on fuzzed points;
the usual wrong derivations are shown to be caught.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, example, given, note
from hypothesis import strategies as st

import gradcheck as gc
import reference_nets as rn
from gradcheck import strategies as gst
from reference_nets.classic import (
    Net222,
    Network,
    TwoLayerNet,
    naive_relu_chain_grad,
    relu_chain_cost,
    relu_chain_grad,
)

finite = st.floats(-3, 3, allow_nan=False, allow_subnormal=False)
scalars = st.just(0.0) | finite


def checked(report: gc.Report) -> gc.Report:
    note(str(report))
    return report


# Where the loss's own arithmetic limits what its values show (a saturated softmax, a loss
# below the smallest normal number, a - y or 1 - p computed by cancellation), a right
# gradient may be left unverified; the report then names that limit. Never FAILED.
ROUNDING_LIMITS = ("bit for bit", "moves only in steps", "below the smallest normal",
                   "rounds more than its value shows")


def ok_or_limited_by_rounding(report: gc.Report) -> bool:
    """ok, or unverified where every tensor left unverified names one of ROUNDING_LIMITS."""
    return report.ok or (report.status == "UNVERIFIED" and all(
        t.ok or any(limit in t.unverified_reason for limit in ROUNDING_LIMITS)
        for t in report.tensors))


# ------------------------------------------------------------------ 1. scalar ReLU chains


@pytest.mark.parametrize(
    ("w", "x", "y", "cost", "grad"),
    [
        # a = ReLU(2 * 1.5) = 3;  dC/dw1 = (3 - 1) * 1 * 1.5
        ([2.0], 1.5, 1.0, 2.0, [3.0]),
        # z2 = 2 * 1.5 = 3, u1 = 3, z1 = 0.5 * 3 = 1.5 = a;  a - y = 0.5
        # dC/dw1 = 0.5 * u1 = 1.5;  dC/dw2 = 0.5 * w1 * x = 0.5 * 0.5 * 1.5
        ([0.5, 2.0], 1.5, 1.0, 0.125, [1.5, 0.375]),
        # z3 = 2, u2 = 2, z2 = 1, u1 = 1, z1 = 1.5 = a;  a - y = 0.5
        # dC/dw1 = 0.5 * 1;  dC/dw2 = 0.5 * 1.5 * 2;  dC/dw3 = 0.5 * 1.5 * 0.5 * 1
        ([1.5, 0.5, 2.0], 1.0, 1.0, 0.125, [0.5, 1.5, 0.375]),
        # a dead unit: w1 x < 0, so ReLU' = 0 and no gradient flows
        ([-1.0], 2.0, 1.0, 0.5, [0.0]),
    ],
    ids=["one-weight", "two-weights", "three-weights", "dead"],
)
def test_relu_chain_closed_form_worked_by_hand(w, x, y, cost, grad):
    """Cost and gradient of the 1-, 2- and 3-weight chains equal the hand-worked numbers."""
    assert relu_chain_cost(w, x, y) == pytest.approx(cost, rel=1e-15)
    np.testing.assert_allclose(relu_chain_grad(w, x, y), grad, rtol=1e-15)


def relu_chain_as_layers(w: np.ndarray, y: float, c: float) -> rn.Sequential:
    """The chain from reference layers: bias-free 1x1 Dense + ReLU per weight, wn first."""
    layers: list[Any] = []
    for wk in w[::-1]:
        layers += [rn.Dense.from_arrays(np.array([[wk]])), rn.ReLU(c)]
    return rn.Sequential(*layers, rn.QuadraticCost(np.array([[y]])))


@given(w=st.lists(scalars, min_size=1, max_size=3), x=scalars, y=scalars,
       c=gst.relu_conventions())
def test_relu_chain_closed_form_equals_layer_backprop(w, x, y, c):
    """The closed form equals backprop through Dense/ReLU layers, kinks and any c included."""
    w = np.array(w)
    net = relu_chain_as_layers(w, y, c)
    assert net.forward(np.array([[x]])) == pytest.approx(relu_chain_cost(w, x, y), rel=1e-14)
    net.backward()
    n = len(w)
    from_layers = [net.grads[f"{2 * (n - 1 - k)}.W"][0, 0] for k in range(n)]
    np.testing.assert_allclose(from_layers, relu_chain_grad(w, x, y, c), rtol=1e-13, atol=1e-300)


@given(w=st.lists(scalars, min_size=1, max_size=3), x=scalars, y=scalars)
@example(w=[2.0], x=1.5, y=1.0)
@example(w=[0.5, 2.0], x=1.5, y=1.0)
@example(w=[1.5, 0.5, 2.0], x=1.0, y=1.0)
@example(w=[1.0, -1.0, 0.0], x=1.0, y=0.5)  # w3 = 0: every unit sits on a kink
@example(w=[-1.0], x=2.0, y=1.0)  # dead output unit: no gradient flows
@example(w=[-0.5, 2.0], x=1.5, y=1.0)
@example(w=[1.0, -2.0, 0.5], x=1.0, y=0.5)  # dead middle unit
@example(w=[1.0], x=3.149820490561665e-162, y=0.0)  # the cost x^2 / 2 is subnormal
@example(w=[1.536265139164302e-06], x=1.0, y=0.0)  # w x within a step of the kink
def test_checker_agrees_with_relu_chain_closed_form(w, x, y):
    """gc.check_params accepts the closed-form dC/dw of the 1-, 2- and 3-weight chains
    (ok; unverified only where the cost is below the smallest normal number)."""
    w0 = np.array(w, dtype=float)
    w = w0.copy()
    report = checked(gc.check_params(
        lambda: relu_chain_cost(w, x, y), lambda: {"w": relu_chain_grad(w, x, y)}, {"w": w}))
    assert ok_or_limited_by_rounding(report), str(report)
    np.testing.assert_array_equal(w, w0)  # restored bit for bit


@given(w1=finite, x=finite, y=finite)
@example(w1=0.5, x=2.0, y=3.0)  # active unit: the naive answer has the wrong sign
@example(w1=-1.0, x=2.0, y=1.0)  # dead unit: the naive answer forgot that ReLU' = 0
def test_naive_relu_derivation_is_caught(w1, x, y):
    """The naive dC/dw1 = (y - ReLU(w1 x)) x (sign error, missing ReLU') is CAUGHT."""
    right = relu_chain_grad([w1], x, y)[0]
    wrong = naive_relu_chain_grad([w1], x, y)[0]
    assume(abs(w1 * x) > 1e-3)  # off the kink, where the derivative is unambiguous
    assume(abs(right - wrong) > 1e-3 * (1 + abs(right)))  # where the two differ at all
    w = np.array([w1])
    report = checked(gc.check_params(
        lambda: relu_chain_cost(w, x, y), lambda: {"w": naive_relu_chain_grad(w, x, y)},
        {"w": w}))
    assert not report.ok
    (mismatch,) = report.tensors[0].worst
    assert mismatch.index == (0,)
    assert mismatch.analytic == pytest.approx(wrong)
    assert mismatch.numeric == pytest.approx(right, abs=1e-6)
    assert gc.check_params(
        lambda: relu_chain_cost(w, x, y), lambda: {"w": relu_chain_grad(w, x, y)}, {"w": w}).ok


# ------------------------------------------------------------------ 2. Dense-ReLU-Dense-softmax


@st.composite
def two_layer_cases(draw: st.DrawFn) -> tuple[TwoLayerNet, np.ndarray, np.ndarray]:
    n_in, n_hidden, n_out = draw(gst.layer_sizes()), draw(gst.layer_sizes()), draw(
        gst.layer_sizes(2, 4))
    batch = draw(gst.batch_sizes())
    net = TwoLayerNet(n_in, n_hidden, n_out, rng=draw(st.integers(0, 2**16)))
    net.params["b1"][:] = draw(gst.weights((n_hidden,), scale=0.1))
    X = draw(gst.inputs((batch, n_in)))
    return net, X, draw(gst.labels(batch, n_out))


def _confident_two_layer_net() -> tuple[TwoLayerNet, np.ndarray, np.ndarray]:
    """p(label) = 1 - 8e-8: the loss -log p moves in steps of 1e-16 (p's spacing near 1)."""
    net = TwoLayerNet(1, 3, 2, rng=0)
    net.params["W1"][:] = [[-1.978982860032647, 0.13741863791390352, -1.5623597873070665]]
    net.params["b1"][:] = 0.0
    net.params["W2"][:] = [[-1.004053155766071, 1.188305539474956],
                           [0.644247718741491, -0.7991661649405921],
                           [-1.5496395286634341, 0.8970995999109462]]
    net.params["b2"][:] = 0.0
    return net, np.array([[-2.0]]), np.array([1])


def _kinks_beside_a_tiny_input() -> tuple[TwoLayerNet, np.ndarray, np.ndarray]:
    """Zero rows put every b1 on its kink, and a row of 4e-7 puts one 7e-8 from it: along
    b1 the loss bends at the point and again within the resolution probe's moves, which
    is no coarseness of the loss (it was measured as one, 2e7 times its rounding)."""
    net = TwoLayerNet(1, 3, 3, rng=0)
    net.params["W1"][:] = [[0.1778093838704446, -0.18682448932200277, 0.9056943979078134]]
    net.params["b1"][:] = 0.0
    net.params["W2"][:] = [[0.08565058699437483, -0.4373722116937453, 0.2952411260139676],
                           [1.0647115783783574, 0.773288368256764, -0.5745974139147765],
                           [-1.0332123045416353, -0.5089014676413142, 0.03374252084051422]]
    net.params["b2"][:] = 0.0
    return net, np.array([[4.187268957149771e-07], [0.0], [0.0], [0.0]]), np.array([2, 0, 0, 0])


def _kink_crossed_within_the_finest_probe() -> tuple[TwoLayerNet, np.ndarray, np.ndarray]:
    """b1[1] has a kink 1.9e-10 from the point (inputs of 1e-9), inside the probe's finest
    move, and another at 5e-8: the loss moves at every move along it, so no coarseness."""
    net = TwoLayerNet(1, 2, 4, rng=0)
    net.params["W1"][:] = [[0.1778093838704446, -0.18682448932200277]]
    net.params["b1"][:] = 0.0
    net.params["W2"][:] = [[0.6404226504432821, 0.10490011715303971, -0.535669373161111,
                            0.36159505490948474],
                           [1.3040000451301372, 0.9470809631292422, -0.7037352358069926,
                            -1.2654214710460525]]
    net.params["b2"][:] = 0.0
    return net, np.array([[-2.739984697176044e-07], [1e-09], [1e-09]]), np.array([0, 1, 1])


@given(case=two_layer_cases())
@example(case=_confident_two_layer_net())
@example(case=_kinks_beside_a_tiny_input())
@example(case=_kink_crossed_within_the_finest_probe())
def test_checker_agrees_with_two_layer_softmax_net(case):
    """gc.check_params accepts TwoLayerNet.gradients (the closed form) for any batch (ok;
    unverified only where the loss's arithmetic limits it: a near-certain prediction)."""
    net, X, labels = case
    report = checked(gc.check_params(lambda: net.loss(X, labels),
                                     lambda: net.gradients(X, labels), net.params))
    assert ok_or_limited_by_rounding(report), str(report)


@given(case=two_layer_cases())
def test_two_layer_closed_form_equals_sequential_backprop(case):
    """Dense -> ReLU -> Dense -> SoftmaxCrossEntropy (sharing the arrays) gives the same
    loss and gradients as the closed form."""
    net, X, labels = case
    seq = net.to_sequential(labels)
    assert seq.params["0.W"] is net.params["W1"] and seq.params["2.b"] is net.params["b2"]
    assert seq.forward(X) == pytest.approx(net.loss(X, labels), rel=1e-13)
    seq.backward()
    closed = net.gradients(X, labels)
    for mine, theirs in (("W1", "0.W"), ("b1", "0.b"), ("W2", "2.W"), ("b2", "2.b")):
        np.testing.assert_allclose(seq.grads[theirs], closed[mine], rtol=1e-12, atol=1e-15)


def test_two_layer_sum_instead_of_mean_is_caught():
    """Forgetting the 1/N of the batch mean (a classic) is caught, and named on every tensor."""
    net = TwoLayerNet(3, 4, 3, rng=0)
    X, labels = np.random.default_rng(1).standard_normal((5, 3)), np.array([0, 1, 2, 1, 0])

    def summed() -> dict[str, np.ndarray]:
        return {k: 5 * v for k, v in net.gradients(X, labels).items()}

    report = gc.check_params(lambda: net.loss(X, labels), summed, net.params)
    assert not report.ok
    assert {t.name for t in report.tensors if not t.ok} == {"W1", "b1", "W2", "b2"}


# ------------------------------------------------------------------ 3. the 2-2-2 network


THETA1 = np.array([[0.1, 0.2, 0.3], [0.4, -0.5, 0.6]])
THETA2 = np.array([[0.7, 0.8, 0.9], [-1.0, 1.1, 1.2]])


def test_net222_worked_by_hand():
    """x = (1, 2), y = (0, 1): numbers worked through a1, z2, a2, z3, a3, delta3, delta2."""
    net = Net222(THETA1, THETA2)
    X, Y = np.array([[1.0, 2.0]]), np.array([[0.0, 1.0]])
    # a1 = (1, 1, 2); z2 = (0.9, 1.1) = a2[1:]; z3 = (2.41, 1.31) = a3
    assert net.cost(X, Y) == pytest.approx(0.5 * (2.41**2 + 0.31**2), rel=1e-14)
    grads = net.gradients(X, Y)
    # delta3 = a3 - y = (2.41, 0.31); dTheta2 = delta3^T (1, 0.9, 1.1)
    np.testing.assert_allclose(grads["Theta2"], [[2.41, 2.169, 2.651], [0.31, 0.279, 0.341]])
    # delta2 = delta3 Theta2[:, 1:] * ReLU'(z2) = (2.269, 2.541); dTheta1 = delta2^T (1, 1, 2)
    np.testing.assert_allclose(grads["Theta1"], [[2.269, 2.269, 4.538], [2.541, 2.541, 5.082]])


@given(
    theta1=gst.weights((2, 3)),
    theta2=gst.weights((2, 3)),
    X=gst.inputs(gst.batch_shapes(n_features=2)),
    output=st.sampled_from(["relu", "linear"]),
    data=st.data(),
)
@example(theta1=THETA1, theta2=THETA2, X=np.array([[1.0, 2.0]]), output="relu", data=None)
def test_checker_agrees_with_net222(theta1, theta2, X, output, data):
    """gc.check_params accepts dJ/dTheta1 and dJ/dTheta2 for any thetas and mini-batch."""
    Y = np.array([[0.0, 1.0]]) if data is None else data.draw(gst.inputs((len(X), 2)), label="Y")
    net = Net222(theta1, theta2, output=output)
    report = checked(gc.check_params(lambda: net.cost(X, Y), lambda: net.gradients(X, Y),
                                     net.params))
    # ok, or (on degenerate draws: every unit on a kink, gradients a millionth of the
    # others) kinks or the loss's rounding left unverified: never a failure
    assert report.status != "FAILED", str(report)
    assert all(t.unverified == t.kinks.unverified
               or any(limit in t.unverified_reason for limit in ROUNDING_LIMITS)
               for t in report.tensors), str(report)


def test_net222_missing_relu_prime_in_delta2_is_caught():
    """Backpropagating delta2 without the ReLU'(z2) factor is caught at a dead hidden unit."""
    net = Net222(THETA1, np.array([[0.7, 0.8, 0.9], [-1.0, -1.1, 1.2]]))
    X, Y = np.array([[-2.0, 0.0]]), np.array([[0.0, 1.0]])  # z2 = (-0.3, 1.4): unit 0 dead

    def no_relu_prime() -> dict[str, np.ndarray]:
        a1, _, a2, z3, a3 = net._forward(X)
        delta3 = (a3 - Y) * (z3 > 0)
        delta2 = delta3 @ net.params["Theta2"][:, 1:]
        return {"Theta1": delta2.T @ a1, "Theta2": delta3.T @ a2}

    report = gc.check_params(lambda: net.cost(X, Y), no_relu_prime, net.params)
    assert not report.ok
    (theta1,) = [t for t in report.tensors if not t.ok]
    assert theta1.name == "Theta1" and {m.index[0] for m in theta1.worst} == {0}


# ------------------------------------------------------------------ 4. Nielsen's network


@st.composite
def nielsen_cases(draw: st.DrawFn) -> tuple[Network, np.ndarray, np.ndarray]:
    sizes = draw(st.lists(gst.layer_sizes(1, 4), min_size=2, max_size=4))
    m = draw(gst.batch_sizes())
    net = Network(sizes, rng=draw(st.integers(0, 2**16)))
    x = draw(gst.inputs((sizes[0], m)))
    y = draw(gst.binary_targets((sizes[-1], m)))
    return net, x, y


@given(case=nielsen_cases())
@example(case=(Network([2, 3, 2], rng=0), np.array([[0.5, -1.0], [0.0, 2.0]]), np.eye(2)))
def test_checker_agrees_with_nielsen_backprop(case):
    """BP1-BP4 in matrix form over a mini-batch pass gc.check_params, params taken in place
    from the network's own weights and biases lists (ok; unverified only where the cost's
    rounding limits it: x = 8e-7 makes dC/dw a millionth of dC/db, and the a - y inside
    the cost rounds at 25 roundings of C itself, too coarse for float64's 1e-5)."""
    net, x, y = case
    params = {f"w{i}": w for i, w in enumerate(net.weights)}
    params |= {f"b{i}": b for i, b in enumerate(net.biases)}

    def grads() -> dict[str, np.ndarray]:
        nabla_b, nabla_w = net.backprop(x, y)
        return {**{f"w{i}": g for i, g in enumerate(nabla_w)},
                **{f"b{i}": g for i, g in enumerate(nabla_b)}}

    report = checked(gc.check_params(lambda: net.cost(x, y), grads, params))
    assert ok_or_limited_by_rounding(report), str(report)
    assert ok_or_limited_by_rounding(checked(gc.check_params(
        lambda: net.cost(x, y), lambda: net.gradients(x, y), net.params)))


@given(case=nielsen_cases())
def test_nielsen_matrix_form_equals_the_per_example_sum(case):
    """backprop on the whole mini-batch equals the sum of backprop on each column."""
    net, x, y = case
    nabla_b, nabla_w = net.backprop(x, y)
    for j in range(x.shape[1]):
        nb, nw = net.backprop(x[:, j : j + 1], y[:, j : j + 1])
        nabla_b = [a - b for a, b in zip(nabla_b, nb, strict=True)]
        nabla_w = [a - b for a, b in zip(nabla_w, nw, strict=True)]
    for g in nabla_b + nabla_w:
        np.testing.assert_allclose(g, 0.0, atol=1e-12)


def test_nielsen_params_are_the_lists_arrays_and_bp1_bug_is_caught():
    """net.params holds the lists' arrays; BP1 without sigmoid'(z^L) is caught by the checker."""
    net = Network([3, 4, 2], rng=0)
    assert net.params["weights[1]"] is net.weights[1] and net.params["biases[0]"] is net.biases[0]
    x, y = np.random.default_rng(2).standard_normal((3, 5)), np.zeros((2, 5))

    def bp1_without_sigmoid_prime() -> dict[str, np.ndarray]:
        a1 = rn.sigmoid(net.weights[0] @ x + net.biases[0])
        a2 = rn.sigmoid(net.weights[1] @ a1 + net.biases[1])
        delta2 = a2 - y  # BUG: the cross-entropy delta used with the quadratic cost
        delta1 = (net.weights[1].T @ delta2) * rn.sigmoid_prime(net.weights[0] @ x + net.biases[0])
        return {"weights[0]": delta1 @ x.T, "biases[0]": delta1.sum(axis=1, keepdims=True),
                "weights[1]": delta2 @ a1.T, "biases[1]": delta2.sum(axis=1, keepdims=True)}

    report = gc.check_params(lambda: net.cost(x, y), bp1_without_sigmoid_prime, net.params)
    assert not report.ok
    assert all(not t.ok for t in report.tensors)
