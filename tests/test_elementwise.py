"""Elementwise maps: ``check_elementwise(f, df, x)`` and elementwise layers through
``check_layer`` / ``check_pair``.

Where a move of one input changes only its own output, the loss along that coordinate is a
function of one variable, and at a kink the hull of its one-sided slopes is exact: a valid
convention (ReLU'(0) in [0, 1], LeakyReLU'(0) in [alpha, 1], sign(0) in [-1, 1]) lies inside
it and anything else is a bug. These are judged FAILED by default, naming the element and the
one-sided slopes; valid conventions pass.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradcheck as gc

import layer_bank as lb  # tests/ is on sys.path (pytest setting "pythonpath")

X_WITH_ZEROS = np.array([[-1.5, 0.0, 2.0], [0.0, 0.75, 0.0]])
ZEROS = X_WITH_ZEROS == 0.0


def relu(z):
    return np.maximum(z, 0.0)


def relu_prime(at_zero):
    return lambda z: (z > 0) + at_zero * (z == 0)


def leaky(z, alpha=0.1):
    return np.where(z > 0, z, alpha * z)


def leaky_prime(at_zero, alpha=0.1):
    return lambda z: np.where(z > 0, 1.0, np.where(z < 0, alpha, at_zero))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


CONVENTIONS = [
    # (name, f, df, valid)
    ("relu'(0)=0", relu, relu_prime(0.0), True),
    ("relu'(0)=0.5", relu, relu_prime(0.5), True),
    ("relu'(0)=1", relu, relu_prime(1.0), True),
    ("relu'(0)=2", relu, relu_prime(2.0), False),
    ("relu'(0)=-1", relu, relu_prime(-1.0), False),
    ("leaky'(0)=alpha", leaky, leaky_prime(0.1), True),
    ("leaky'(0)=1", leaky, leaky_prime(1.0), True),
    ("leaky'(0)=0", leaky, leaky_prime(0.0), False),
    ("sign(0)=0", np.abs, np.sign, True),
    ("sign(0)=-1", np.abs, lambda z: np.where(z == 0, -1.0, np.sign(z)), True),
    ("sign(0)=1.5", np.abs, lambda z: np.where(z == 0, 1.5, np.sign(z)), False),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, f, df, valid", CONVENTIONS, ids=[c[0] for c in CONVENTIONS])
def test_kink_convention_is_judged_exactly_by_the_hull(name, f, df, valid, dtype):
    """Property: at exact zeros a valid convention is ok and an invalid one FAILED, exactly
    at the zeros, with the kink-convention reason and the one-sided slopes in the row."""
    x = X_WITH_ZEROS.astype(dtype)
    before = x.tobytes()
    report = gc.check_elementwise(f, df, x, seed=3)
    assert x.tobytes() == before
    assert not report.problems, report
    result = report.tensors[0]
    if valid:
        assert report.ok, report
        assert result.kinks.by_hull == ZEROS.sum(), report
    else:
        assert result.status == gc.Status.FAILED, report
        assert result.failure == "KINK_CONVENTION", report
        np.testing.assert_array_equal(result.failed, ZEROS)
        assert all(m.note.startswith("outside the one-sided [") for m in result.worst), report
        assert any(n.kind == "kink_convention" for n in report.notes), report.notes


@pytest.mark.parametrize("at_zero, valid", [(0.0, True), (1.0, True), (2.0, False),
                                            (-1.0, False)])
@pytest.mark.parametrize("mode", ["full", "fast", "auto"])
def test_elementwise_layer_through_check_layer_is_held_to_the_hull(at_zero, valid, mode):
    """Property: check_layer sees the outputs, so a ReLU layer's invalid ReLU'(0) is FAILED
    by default in every mode (a move changes its own output only), and a valid one is ok."""
    report = gc.check_layer(lb.ReLU(grad_at_zero=at_zero), X_WITH_ZEROS, seed=1, mode=mode)
    if valid:
        assert report.ok, report
    else:
        assert report.status == gc.Status.FAILED, report
        assert report.tensors[0].failure == "KINK_CONVENTION", report


def test_elementwise_pair_through_check_pair_is_held_to_the_hull():
    """A forward/backward pair (cs231n style) with ReLU'(0) = 2 is FAILED at the zeros."""
    def forward(x):
        return relu(x), x

    def backward(dout, cache):
        return dout * relu_prime(2.0)(cache)

    report = gc.check_pair(forward, backward, X_WITH_ZEROS, seed=0)
    assert report.status == gc.Status.FAILED, report
    np.testing.assert_array_equal(report.tensors[0].failed, ZEROS)


def test_a_mixing_map_is_not_judged_by_the_hull():
    """A bias-free Dense then ReLU on a zero row crosses several kinks into each output:
    not elementwise, so a correct backward passes (re-checked at a jittered point)."""
    layer = lb.Chain(lb.Dense(2, 3, W=np.array([[1.0, -1.0, 0.5], [2.0, -0.5, -1.0]]),
                              bias=False), lb.ReLU(grad_at_zero=1.0))
    x = np.array([[0.0, 0.0], [1.0, -1.0]])
    report = gc.check_layer(layer, x, seed=0)
    assert report.ok, report


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_prime_right_and_wrong(dtype):
    """Nielsen's sigmoid_prime passes; the bug people write (sigmoid(z) * (1 - z), the
    derivative in terms of the input instead of the output) is FAILED."""
    x = np.linspace(-4, 4, 9).astype(dtype)
    assert gc.check_elementwise(sigmoid, lambda z: sigmoid(z) * (1 - sigmoid(z)), x).ok
    wrong = gc.check_elementwise(sigmoid, lambda z: sigmoid(z) * (1 - z), x)
    assert wrong.status == gc.Status.FAILED, wrong
    assert wrong.tensors[0].failure == "MISMATCH", wrong


def test_a_map_that_is_not_elementwise_is_named():
    """softmax is not elementwise: the report names the moved input and the other output
    that changed, as a problem (FAILED), whatever the tensor verdict."""
    def softmax(z):
        e = np.exp(z - z.max())
        return e / e.sum()

    report = gc.check_elementwise(softmax, lambda z: softmax(z) * (1 - softmax(z)),
                                  np.array([0.1, 0.2, 0.3]))
    assert report.status == gc.Status.FAILED
    [problem] = report.problems
    assert problem.kind == "not_elementwise"
    assert "moving x[0] changed f's output at y[1]" in problem.text
    assert "check_layer or check_pair" in problem.text


def test_assert_elementwise_raises_with_the_report_or_returns_it():
    x = X_WITH_ZEROS
    assert gc.assert_elementwise(relu, relu_prime(0.0), x).ok
    with pytest.raises(gc.GradientMismatch) as raised:
        gc.assert_elementwise(relu, relu_prime(2.0), x)
    assert raised.value.report.status == gc.Status.FAILED
    assert "outside the one-sided" in str(raised.value)


@pytest.mark.parametrize("f, df, x, error, words", [
    (lambda z: z.sum(), relu_prime(0.0), np.ones(3), gc.GradcheckUsageError,
     "f(x) returned shape ()"),
    (relu, lambda z: np.ones(2), np.ones(3), gc.GradientShapeError,
     "df(x) returned shape (2,)"),
    (relu, lambda z: None, np.ones(3), gc.GradientShapeError, "a missing return?"),
    (3, relu_prime(0.0), np.ones(3), gc.GradcheckUsageError, "f must be callable"),
    (relu, relu_prime(0.0), np.array([0, 1]), gc.GradcheckUsageError, "x has dtype int64"),
    (relu, relu_prime(0.0), np.zeros(0), gc.GradcheckUsageError, "x is empty"),
])
def test_bad_arguments_are_named(f, df, x, error, words):
    with pytest.raises(error) as raised:
        gc.check_elementwise(f, df, x)
    assert words in str(raised.value)


def test_evaluations_are_two_per_smooth_element_and_more_only_at_kinks():
    """Exact count: a smooth elementwise map on n elements settles each at its first look
    plus the loss at the point and the resolution's look at the point: 2 n + 3 evaluations."""
    x = np.linspace(-2, 2, 7)
    report = gc.check_elementwise(np.tanh, lambda z: 1 - np.tanh(z) ** 2, x)
    assert report.ok
    assert report.evaluations["loss"] == 2 * x.size + 3, report.evaluations
