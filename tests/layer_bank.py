"""Layers for the mutant bank and the kink bank: plain numpy classes following the layer protocol.

Self-contained on purpose (no import of reference_nets): the checker is tested against layers
whose every line is visible here.

The layer protocol: ``params`` / ``grads`` dicts (same keys and shapes), ``forward(x) -> y``,
``backward(grad_y) -> grad_x``.  Layers keep references to the arrays they were given, the way
hand-written layers do, and read their parameters from ``self.params`` on every call, so the
checker can perturb them in place.

Four registries are built at the bottom of this module, each entry a factory returning
``(layer, x)`` whose one-line docstring says what is wrong (mutants) or where the kinks are
(kink cases):

* ``MUTANTS``: wrong backward passes; the check must fail and name the wrong tensor(s).
* ``PROBLEM_MUTANTS``: misbehaving layers (accumulating grads, in-place forward, ...); the check
  must fail with the misbehaviour named in ``report.problems``.
* ``SHAPE_MUTANTS``: wrong gradient shapes / keys; the check must raise ``GradientShapeError``.
* ``KINK_CASES``: correct layers evaluated on kinks; the check must pass.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# inputs


def sample(shape, seed=0, *, dtype=np.float64, zeros_every=0, scale=1.0):
    """Standard normal draws (times ``scale``); every ``zeros_every``-th entry set to exactly 0."""
    a = scale * np.random.default_rng(seed).standard_normal(shape)
    if zeros_every:
        a.flat[::zeros_every] = 0.0
    return a.astype(dtype)


def _as(value, like):
    """``value`` as an array of ``like``'s dtype (keeps float32 layers in float32)."""
    return np.asarray(value, dtype=like.dtype)


# --------------------------------------------------------------------------------------------
# correct layers


class Layer:
    """Base: no parameters."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def __repr__(self):
        return f"{type(self).__name__}()"


class TieRouted(Layer):
    """Base of the layers whose backward routes a tie by ``tie`` (a valid convention: to
    the "first" or "last" tied element, or "split" among them; the bugs: "all" of them get
    all of it, or "none" gets any), shown in their repr."""

    def __init__(self, tie="first"):
        super().__init__()
        self.tie = tie

    def __repr__(self):
        return f"{type(self).__name__}(tie={self.tie!r})"


class Dense(Layer):
    """y = x @ W + b  (x: (batch, n_in))."""

    def __init__(self, n_in, n_out, *, bias=True, seed=0, dtype=np.float64, W=None, b=None):
        super().__init__()
        rng = np.random.default_rng(seed)
        if W is None:
            W = rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)
        self.params["W"] = np.array(W, dtype=dtype)
        if bias:
            if b is None:
                b = 0.5 * rng.standard_normal(n_out)
            self.params["b"] = np.array(b, dtype=dtype)
        self.bias = bias

    def __repr__(self):
        n_in, n_out = self.params["W"].shape
        return f"{type(self).__name__}({n_in}, {n_out}, bias={self.bias})"

    def forward(self, x):
        self.x = x
        y = x @ self.params["W"]
        if self.bias:
            y = y + self.params["b"]
        return y

    def backward(self, g):
        self.grads = {"W": self.x.T @ g}
        if self.bias:
            self.grads["b"] = g.sum(axis=0)
        return g @ self.params["W"].T


class ReLU(Layer):
    """max(x, 0); ReLU'(0) = grad_at_zero (any value in [0, 1] is a valid convention)."""

    kink_points = (0.0,)

    def __init__(self, grad_at_zero=0.0):
        super().__init__()
        self.c = grad_at_zero

    def __repr__(self):
        return f"ReLU(grad_at_zero={self.c})"

    def forward(self, x):
        self.x = x
        return np.maximum(x, _as(0, x))

    def derivative(self, x):
        return np.where(x > 0, 1.0, np.where(x < 0, 0.0, self.c)).astype(x.dtype)

    def backward(self, g):
        return g * self.derivative(self.x)


class LeakyReLU(Layer):
    """x if x > 0 else alpha x; derivative at 0 = grad_at_zero (valid: in [alpha, 1])."""

    kink_points = (0.0,)

    def __init__(self, alpha=0.01, grad_at_zero=None):
        super().__init__()
        self.alpha = alpha
        self.c = alpha if grad_at_zero is None else grad_at_zero

    def __repr__(self):
        return f"LeakyReLU(alpha={self.alpha}, grad_at_zero={self.c})"

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, _as(self.alpha, x) * x)

    def derivative(self, x):
        return np.where(x > 0, 1.0, np.where(x < 0, self.alpha, self.c)).astype(x.dtype)

    def backward(self, g):
        return g * self.derivative(self.x)


class Abs(Layer):
    """|x|; derivative at 0 = grad_at_zero (sign(0) = 0 by default; valid: in [-1, 1])."""

    kink_points = (0.0,)

    def __init__(self, grad_at_zero=0.0):
        super().__init__()
        self.c = grad_at_zero

    def __repr__(self):
        return f"Abs(grad_at_zero={self.c})"

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def derivative(self, x):
        return np.where(x > 0, 1.0, np.where(x < 0, -1.0, self.c)).astype(x.dtype)

    def backward(self, g):
        return g * self.derivative(self.x)


class Sigmoid(Layer):
    """1 / (1 + exp(-x))."""

    def forward(self, x):
        self.y = 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic
        return self.y

    def derivative(self):
        return self.y * (1 - self.y)

    def backward(self, g):
        return g * self.derivative()


class Tanh(Layer):
    """tanh(x)."""

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def derivative(self):
        return 1 - self.y**2

    def backward(self, g):
        return g * self.derivative()


class Softplus(Layer):
    """log(1 + exp(x))."""

    def forward(self, x):
        self.x = x
        return np.logaddexp(_as(0, x), x)

    def derivative(self):
        return 0.5 * (1.0 + np.tanh(0.5 * self.x))

    def backward(self, g):
        return g * self.derivative()


class Square(Layer):
    """x ** 2."""

    def forward(self, x):
        self.x = x
        return self.x * self.x

    def derivative(self):
        return 2 * self.x

    def backward(self, g):
        return g * self.derivative()


class HardTanh(Layer):
    """clip(x, lo, hi); derivative at the corners = corner_grad (valid: in [0, 1])."""

    kink_points = ()  # set per instance

    def __init__(self, lo=-1.0, hi=1.0, corner_grad=1.0):
        super().__init__()
        self.lo, self.hi, self.c = lo, hi, corner_grad
        self.kink_points = (lo, hi)

    def forward(self, x):
        self.x = x
        return np.clip(x, _as(self.lo, x), _as(self.hi, x))

    def derivative(self, x):
        inside = (x > self.lo) & (x < self.hi)
        corner = (x == self.lo) | (x == self.hi)
        return np.where(inside, 1.0, np.where(corner, self.c, 0.0)).astype(x.dtype)

    def backward(self, g):
        return g * self.derivative(self.x)


def _tie_mask(values, top, tie):
    """0/1 (or split) routing weights for a max over the last axis, ties broken by ``tie``."""
    hit = values == top[..., None]
    if tie == "split":
        return hit / hit.sum(axis=-1, keepdims=True)
    if tie == "first":
        pos = np.argmax(hit, axis=-1)
    elif tie == "last":
        pos = hit.shape[-1] - 1 - np.argmax(hit[..., ::-1], axis=-1)
    else:
        raise ValueError(f"tie must be 'first', 'last' or 'split', not {tie!r}")
    out = np.zeros(hit.shape)
    np.put_along_axis(out, pos[..., None], 1.0, axis=-1)
    return out


class MaxPool1d(Layer):
    """Max over non-overlapping windows of the last axis; a tie routes by ``tie``."""

    def __init__(self, width=2, tie="first"):
        super().__init__()
        self.width, self.tie = width, tie

    def __repr__(self):
        return f"MaxPool1d(width={self.width}, tie={self.tie!r})"

    def forward(self, x):
        self.x = x
        xr = x.reshape(*x.shape[:-1], x.shape[-1] // self.width, self.width)
        return xr.max(axis=-1)

    def backward(self, g):
        x = self.x
        xr = x.reshape(*x.shape[:-1], x.shape[-1] // self.width, self.width)
        w = _tie_mask(xr, xr.max(axis=-1), self.tie)
        return (w * g[..., None]).reshape(x.shape).astype(x.dtype)


class Max2(TieRouted):
    """Elementwise max(x[0], x[1]) of two stacked inputs; a tie routes by ``tie``."""

    def forward(self, x):
        self.x = x
        return np.maximum(x[0], x[1])

    def backward(self, g):
        a, b = self.x[0], self.x[1]
        tie_a = {"first": 1.0, "last": 0.0, "split": 0.5}[self.tie]
        wa = np.where(a > b, 1.0, np.where(a < b, 0.0, tie_a))
        return np.stack([g * wa, g * (1 - wa)]).astype(self.x.dtype)


class Softmax(Layer):
    """Row-wise softmax over the last axis."""

    def forward(self, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        self.s = e / e.sum(axis=-1, keepdims=True)
        return self.s

    def backward(self, g):
        s = self.s
        return s * (g - (g * s).sum(axis=-1, keepdims=True))


class SoftmaxCrossEntropy(Layer):
    """Loss head: mean over the batch of -log softmax(z)[target]."""

    def __init__(self, targets):
        super().__init__()
        self.t = np.asarray(targets)

    def forward(self, z):
        self.z = z
        shifted = z - z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        self.p = e / e.sum(axis=1, keepdims=True)
        rows = np.arange(len(self.t))
        # log softmax, not log(p): p underflows to 0 where a logit trails the largest by
        # more than the dtype's exponent range (17 in float16: a jittered point gets there)
        return -np.mean(shifted[rows, self.t] - np.log(e.sum(axis=1)))

    def onehot(self):
        y = np.zeros_like(self.p)
        y[np.arange(len(self.t)), self.t] = 1.0
        return y

    def backward(self, g):
        return g * (self.p - self.onehot()) / len(self.t)


class Quadratic(Layer):
    """Loss head: 1/2 sum((x - target)^2)."""

    def __init__(self, target):
        super().__init__()
        self.t = np.asarray(target)

    def forward(self, x):
        self.x = x
        return 0.5 * np.sum((x - self.t) ** 2)

    def backward(self, g):
        return g * (self.x - self.t)


class Chain(Layer):
    """Layers applied in order; parameters exposed as W1, b1, W2, ... (numbered per layer with
    parameters), sharing the sub-layers' arrays so an in-place perturbation reaches them."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)
        self.keys: list[tuple[int, str, str]] = []
        k = 0
        for i, layer in enumerate(self.layers):
            p = getattr(layer, "params", None) or {}
            k += bool(p)
            for name, arr in p.items():
                self.keys.append((i, name, f"{name}{k}"))
                self.params[f"{name}{k}"] = arr

    def __repr__(self):
        return "Chain(" + ", ".join(map(repr, self.layers)) + ")"

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, g):
        for layer in reversed(self.layers):
            g = layer.backward(g)
        self.grads = {key: self.layers[i].grads[name] for i, name, key in self.keys}
        return g


def dense_relu_dense(n_in=4, n_hidden=5, n_out=3, *, seed=0, dtype=np.float64, relu=None,
                     bias=True):
    """Dense -> ReLU -> Dense (params W1, b1, W2, b2)."""
    return Chain(
        Dense(n_in, n_hidden, seed=seed, dtype=dtype, bias=bias),
        relu if relu is not None else ReLU(),
        Dense(n_hidden, n_out, seed=seed + 1, dtype=dtype, bias=bias),
    )


# --------------------------------------------------------------------------------------------
# mutant layers: each class says in its docstring what is wrong


class DenseSignDW(Dense):
    """dW has the wrong sign: -x.T @ g."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["W"] = -self.grads["W"]
        return dx


class DenseSignDb(Dense):
    """db has the wrong sign: -sum(g)."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["b"] = -self.grads["b"]
        return dx


class DenseSignDx(Dense):
    """dx has the wrong sign: -g @ W.T."""

    def backward(self, g):
        return -super().backward(g)


class DenseTransposedDW(Dense):
    """dW transposed: g.T @ x instead of x.T @ g (same shape when W is square)."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["W"] = g.T @ self.x
        return dx


class DenseDxUsesW(Dense):
    """dx computed with W instead of W.T: g @ W (same shape when W is square)."""

    def backward(self, g):
        super().backward(g)
        return g @ self.params["W"]


class DenseMeanDW(Dense):
    """dW averaged over the batch (x.T @ g / batch) while the loss sums over it."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["W"] = self.grads["W"] / len(g)
        return dx


class DenseMeanDb(Dense):
    """db averaged over the batch (g.mean(0)) while the loss sums over it."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["b"] = g.mean(axis=0)
        return dx


class DenseZeroDb(Dense):
    """bias gradient missing: db left as zeros."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["b"] = np.zeros_like(self.params["b"])
        return dx


class DenseZeroDx(Dense):
    """input gradient missing: backward returns zeros."""

    def backward(self, g):
        return np.zeros_like(super().backward(g))


class DenseScaledDW(Dense):
    """dW scaled by (1 + rel): a small relative error in every element."""

    def __init__(self, *args, rel=1e-3, **kw):
        super().__init__(*args, **kw)
        self.rel = rel

    def backward(self, g):
        dx = super().backward(g)
        self.grads["W"] = self.grads["W"] * (1 + self.rel)
        return dx


class DenseOneWrongElement(Dense):
    """dW[index] off by ``frac`` times max|dW| (one wrong element, the rest exact)."""

    def __init__(self, *args, index=(0, 0), frac=1e-2, **kw):
        super().__init__(*args, **kw)
        self.index, self.frac = tuple(index), frac

    def backward(self, g):
        dx = super().backward(g)
        dW = self.grads["W"].copy()
        dW[self.index] += self.frac * np.abs(dW).max()
        self.grads["W"] = dW
        return dx


class ReLUNoDerivative(ReLU):
    """ReLU backward forgets the derivative: passes g through unchanged."""

    def backward(self, g):
        return g


class ReLUScaledBackward(ReLU):
    """ReLU backward 1.5 times too large: 1.5 g (x > 0)."""

    def backward(self, g):
        return 1.5 * super().backward(g)


class ReLUInvertedMask(ReLU):
    """ReLU backward uses the mask x < 0 instead of x > 0."""

    def backward(self, g):
        return g * (self.x < 0).astype(g.dtype)


class SigmoidNoDerivative(Sigmoid):
    """Sigmoid backward forgets the derivative: passes g through unchanged."""

    def backward(self, g):
        return g


class SigmoidWrongDerivative(Sigmoid):
    """Sigmoid backward uses s instead of s (1 - s)."""

    def backward(self, g):
        return g * self.y


class TanhNoDerivative(Tanh):
    """Tanh backward forgets the derivative: passes g through unchanged."""

    def backward(self, g):
        return g


class TanhSignInDerivative(Tanh):
    """Tanh backward uses 1 + tanh^2 instead of 1 - tanh^2."""

    def backward(self, g):
        return g * (1 + self.y**2)


class LeakyWrongSlope(LeakyReLU):
    """Leaky ReLU: forward slope alpha, backward uses 0.1 on the negative side."""

    def backward(self, g):
        return g * np.where(self.x > 0, 1.0, 0.1).astype(g.dtype)


class LeakyDropsSlope(LeakyReLU):
    """Leaky ReLU backward treats the negative side as ReLU: derivative 0 there."""

    def backward(self, g):
        return g * (self.x > 0).astype(g.dtype)


class SoftmaxDiagonalOnly(Softmax):
    """Softmax backward keeps only the diagonal of the Jacobian: s (1 - s) g."""

    def backward(self, g):
        return g * self.s * (1 - self.s)


class QuadraticFactor2(Quadratic):
    """1/2 sum((x - t)^2) with backward 2 (x - t): off by a factor 2."""

    def backward(self, g):
        return 2 * g * (self.x - self.t)


class SquareMissingFactor2(Square):
    """x^2 with backward x g: the factor 2 is missing."""

    def backward(self, g):
        return g * self.x


class SoftplusWrongDerivative(Softplus):
    """Softplus backward uses sigmoid(-x) instead of sigmoid(x)."""

    def backward(self, g):
        return g * 0.5 * (1.0 - np.tanh(0.5 * self.x))


class AbsSignFlipped(Abs):
    """|x| backward uses -sign(x)."""

    def backward(self, g):
        return -super().backward(g)


class MaxPoolToArgmin(MaxPool1d):
    """Max-pool backward routes the gradient to the window's minimum instead of its maximum."""

    def backward(self, g):
        x = self.x
        xr = x.reshape(*x.shape[:-1], x.shape[-1] // self.width, self.width)
        w = _tie_mask(xr, xr.min(axis=-1), "first")
        return (w * g[..., None]).reshape(x.shape)


class HardTanhNoClipGrad(HardTanh):
    """clip(x, -1, 1) backward passes the gradient through everywhere, also where clipped."""

    def backward(self, g):
        return g


class SoftmaxCENoBatchMean(SoftmaxCrossEntropy):
    """Mean cross-entropy whose backward forgets the 1 / batch: g (p - y)."""

    def backward(self, g):
        return g * (self.p - self.onehot())


# misbehaving layers


class DenseAccumulates(Dense):
    """grads accumulated with += across backward calls instead of assigned."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def backward(self, g):
        self.grads["W"] += self.x.T @ g
        self.grads["b"] += g.sum(axis=0)
        return g @ self.params["W"].T


class ReLUInPlace(ReLU):
    """forward clamps its input in place (x[x < 0] = 0) and returns it."""

    def forward(self, x):
        self.mask = x > 0
        x[~self.mask] = 0
        return x

    def backward(self, g):
        return g * self.mask


class DropoutEveryCall(Layer):
    """forward draws a fresh dropout mask on every call: not deterministic."""

    def __init__(self, p=0.5, seed=0):
        super().__init__()
        self.p = p
        self.rng = np.random.default_rng(seed)

    def forward(self, x):
        self.mask = (self.rng.random(x.shape) >= self.p) / (1 - self.p)
        return x * self.mask

    def backward(self, g):
        return g * self.mask


class ReLUDerivativeAsRatio(ReLU):
    """ReLU derivative computed as y / x: NaN (0 / 0) wherever x == 0."""

    def backward(self, g):
        with np.errstate(invalid="ignore", divide="ignore"):
            return g * (np.maximum(self.x, 0) / self.x)


class ScaleNaNGrad(Layer):
    """y = s * x with ds computed as sum(g * y) / s: NaN (0 / 0) when s == 0."""

    def __init__(self, s=0.0):
        super().__init__()
        self.params["s"] = np.array([s])

    def forward(self, x):
        self.x = x
        self.y = self.params["s"] * x
        return self.y

    def backward(self, g):
        with np.errstate(invalid="ignore", divide="ignore"):
            self.grads = {"s": np.array([np.sum(g * self.y)]) / self.params["s"]}
        return g * self.params["s"]


# wrong shapes / keys


class DenseDWShapeTransposed(Dense):
    """dW returned with W's transposed shape: (g.T @ x) of shape (n_out, n_in)."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["W"] = g.T @ self.x
        return dx


class DenseMissingDb(Dense):
    """grads has no 'b' key."""

    def backward(self, g):
        dx = super().backward(g)
        del self.grads["b"]
        return dx


class DenseDbKeepdims(Dense):
    """db returned with shape (1, n_out) (sum with keepdims) instead of (n_out,)."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["b"] = g.sum(axis=0, keepdims=True)
        return dx


class DenseDxSummedOverBatch(Dense):
    """dx summed over the batch: shape (n_in,) instead of x's (batch, n_in)."""

    def backward(self, g):
        return super().backward(g).sum(axis=0)


class DenseExtraGradKey(Dense):
    """grads has an extra key 'W_T' that is not a parameter."""

    def backward(self, g):
        dx = super().backward(g)
        self.grads["W_T"] = self.grads["W"].T.copy()
        return dx


# --------------------------------------------------------------------------------------------
# registries


@dataclass(frozen=True)
class Case:
    """One bank entry: ``make() -> (layer, x)`` plus what the check must say about it."""

    name: str
    make: Callable[[], tuple[Any, np.ndarray]]
    doc: str
    bad: tuple[str, ...] = ()  # tensors that must be reported FAILED (mutants)
    good: tuple[str, ...] = ()  # tensors that must be reported ok (localisation)
    opts: dict = field(default_factory=dict)  # extra options for the check
    index: tuple[int, ...] | None = None  # element that must appear among the worst
    problem: str = ""  # regex a report.problems entry must match (problem mutants)
    key: str = ""  # tensor the GradientShapeError message / the problem must name
    hull_ok: bool = False  # kink cases: also exact under kinks="hull" (single kinks only)

    def __repr__(self):
        return self.name


MUTANTS: dict[str, Case] = {}
PROBLEM_MUTANTS: dict[str, Case] = {}
SHAPE_MUTANTS: dict[str, Case] = {}
KINK_CASES: dict[str, Case] = {}


def _register(bank, **kw):
    def deco(fn):
        doc = (fn.__doc__ or "").strip()
        assert doc and "\n" not in doc, f"{fn.__name__}: needs a one-line docstring"
        bank[fn.__name__] = Case(fn.__name__, fn, doc, **kw)
        return fn

    return deco


def mutant(*bad, good=(), **kw):
    return _register(MUTANTS, bad=bad, good=good, **kw)


X = "x"  # the name check_layer gives the layer's input tensor
DENSE = (X, "W", "b")
B = 8  # batch size of the mutant inputs


def _others(*bad):
    return tuple(n for n in DENSE if n not in bad)


# ---- sign errors


@mutant("W", good=_others("W"))
def dense_dW_sign():
    """Dense: dW has the wrong sign."""
    return DenseSignDW(4, 3, seed=1), sample((B, 4), 2)


@mutant("b", good=_others("b"))
def dense_db_sign():
    """Dense: db has the wrong sign."""
    return DenseSignDb(4, 3, seed=1), sample((B, 4), 2)


@mutant(X, good=_others(X))
def dense_dx_sign():
    """Dense: dx has the wrong sign."""
    return DenseSignDx(4, 3, seed=1), sample((B, 4), 2)


@mutant(X)
def abs_sign_flipped():
    """|x|: backward uses -sign(x)."""
    return AbsSignFlipped(), sample((B, 5), 3)


@mutant(X)
def tanh_sign_in_derivative():
    """tanh: derivative 1 + tanh^2 instead of 1 - tanh^2."""
    return TanhSignInDerivative(), sample((B, 5), 4)


# ---- missing activation derivatives


@mutant(X)
def relu_no_derivative():
    """ReLU: backward passes g through (derivative missing)."""
    return ReLUNoDerivative(), sample((B, 5), 5)


@mutant(X)
def sigmoid_no_derivative():
    """sigmoid: backward passes g through (derivative missing)."""
    return SigmoidNoDerivative(), sample((B, 5), 6)


@mutant(X)
def tanh_no_derivative():
    """tanh: backward passes g through (derivative missing)."""
    return TanhNoDerivative(), sample((B, 5), 7)


@mutant(X, "W1", "b1", good=("W2", "b2"))
def chain_relu_no_derivative():
    """Dense-ReLU-Dense: the hidden ReLU passes g through (derivative missing)."""
    return dense_relu_dense(relu=ReLUNoDerivative(), seed=3), sample((B, 4), 8)


@mutant(X)
def relu_inverted_mask():
    """ReLU: backward masks with x < 0 instead of x > 0."""
    return ReLUInvertedMask(), sample((B, 5), 9)


@mutant(X)
def sigmoid_wrong_derivative():
    """sigmoid: derivative s instead of s (1 - s)."""
    return SigmoidWrongDerivative(), sample((B, 5), 10)


@mutant(X)
def softplus_wrong_derivative():
    """softplus: derivative sigmoid(-x) instead of sigmoid(x)."""
    return SoftplusWrongDerivative(), sample((B, 5), 11)


# ---- transposes


@mutant("W", good=_others("W"))
def dense_dW_transposed():
    """Dense (square W): dW = g.T @ x instead of x.T @ g."""
    return DenseTransposedDW(4, 4, seed=1), sample((B, 4), 12)


@mutant(X, good=_others(X))
def dense_dx_uses_W_not_WT():
    """Dense (square W): dx = g @ W instead of g @ W.T."""
    return DenseDxUsesW(4, 4, seed=1), sample((B, 4), 13)


# ---- mean vs sum, scale errors


@mutant("W", good=_others("W"))
def dense_dW_mean_over_batch():
    """Dense: dW divided by the batch size (mean) while the loss sums."""
    return DenseMeanDW(4, 3, seed=1), sample((B, 4), 14)


@mutant("b", good=_others("b"))
def dense_db_mean_over_batch():
    """Dense: db = g.mean(0) (mean) while the loss sums."""
    return DenseMeanDb(4, 3, seed=1), sample((B, 4), 15)


@mutant(X)
def softmax_ce_no_batch_mean():
    """softmax cross-entropy head (mean over batch): backward forgets the 1 / batch."""
    return SoftmaxCENoBatchMean([0, 2, 1, 1, 0, 2, 2, 1]), sample((B, 3), 16)


@mutant("W", good=_others("W"))
def dense_dW_scaled_0p1_percent():
    """Dense float64: dW scaled by 1.001 (a 0.1 % scale error)."""
    return DenseScaledDW(4, 3, seed=1, rel=1e-3), sample((B, 4), 17)


@mutant(X)
def quadratic_factor_2():
    """1/2 sum((x - t)^2) head: backward 2 (x - t), off by a factor 2."""
    return QuadraticFactor2(sample((B, 3), 18)), sample((B, 3), 19)


@mutant(X)
def square_missing_factor_2():
    """x^2: backward x g, the factor 2 missing."""
    return SquareMissingFactor2(), sample((B, 5), 20)


# ---- missing gradients


@mutant("b", good=_others("b"))
def dense_db_zeros():
    """Dense: bias gradient missing (zeros)."""
    return DenseZeroDb(4, 3, seed=1), sample((B, 4), 21)


@mutant(X, good=_others(X))
def dense_dx_zeros():
    """Dense: input gradient missing (zeros)."""
    return DenseZeroDx(4, 3, seed=1), sample((B, 4), 22)


# ---- one wrong element


@mutant("W", good=_others("W"), opts={"mode": "full"}, index=(17, 9))
def dense_one_wrong_element_of_600():
    """Dense(30, 20), full scan: dW[17, 9] off by 0.1 % of max|dW|."""
    return DenseOneWrongElement(30, 20, seed=1, index=(17, 9), frac=1e-3), sample((4, 30), 23)


@mutant("W", good=_others("W"), opts={"mode": "fast"}, index=(123, 45))
def dense_one_wrong_element_of_60000():
    """Dense(300, 200), fast mode: dW[123, 45] off by 1 % of max|dW|, 1 of 60,000 wrong."""
    return DenseOneWrongElement(300, 200, seed=1, index=(123, 45), frac=1e-2), sample((4, 300), 24)


# ---- activation details


@mutant(X)
def leaky_wrong_slope():
    """leaky ReLU: forward slope 0.01, backward slope 0.1 on the negative side."""
    return LeakyWrongSlope(alpha=0.01), sample((B, 5), 25)


@mutant(X)
def leaky_drops_slope():
    """leaky ReLU (alpha 0.2): backward uses derivative 0 on the negative side."""
    return LeakyDropsSlope(alpha=0.2), sample((B, 5), 26)


@mutant(X, opts={"kinks": "hull"})
def relu_grad_at_zero_2():
    """ReLU with the convention ReLU'(0) = 2, outside the hull [0, 1], on exact zeros."""
    return ReLU(grad_at_zero=2.0), sample((B, 5), 27, zeros_every=3)


@mutant(X)
def softmax_diagonal_only():
    """softmax: backward keeps only the diagonal of the Jacobian, s (1 - s) g."""
    return SoftmaxDiagonalOnly(), sample((B, 4), 28)


@mutant(X)
def maxpool_routes_to_argmin():
    """max-pool (width 2): gradient routed to the window's minimum."""
    return MaxPoolToArgmin(2), sample((B, 6), 29)


@mutant(X)
def hardtanh_no_clip_grad():
    """clip(x, -1, 1): gradient passed through also where the input is clipped."""
    return HardTanhNoClipGrad(), sample((B, 5), 30, scale=2.0)


@mutant("W2", good=(X, "W1", "b1", "b2"))
def chain_dW2_sign():
    """Dense-ReLU-Dense: the second dW has the wrong sign."""
    net = dense_relu_dense(seed=4)
    net.layers[2] = DenseSignDW(5, 3, seed=5)
    return Chain(*net.layers), sample((B, 4), 31)


# ---- wrong gradients on curved smooth functions (no kink anywhere)

@mutant(X)
def square_missing_factor_2_near_zero():
    """x^2 on small inputs (|x| < 0.3): backward x g, the factor 2 missing."""
    return SquareMissingFactor2(), sample((B, 5), 38, scale=0.1)


@mutant(X)
def tanh_of_square_no_derivative():
    """tanh(x^2) on 1.5 <= |x| <= 2 (tanh saturating): tanh backward passes g through."""
    rng = np.random.default_rng(39)
    x = rng.uniform(1.5, 2.0, (B, 3)) * rng.choice([-1.0, 1.0], (B, 3))
    return Chain(Square(), TanhNoDerivative()), x


@mutant(X, opts={"seed": 1})
def relu_backward_scaled_1p5_on_linear_piece():
    """ReLU at x = 0.28125 (on its linear piece, far from the kink): backward 1.5x too large."""
    return ReLUScaledBackward(), np.array([[0.28125]])


# ---- float32 layers with gross bugs

F32 = np.float32


@mutant("W", good=_others("W"))
def float32_dense_dW_sign():
    """float32 Dense: dW has the wrong sign."""
    return DenseSignDW(4, 3, seed=1, dtype=F32), sample((B, 4), 32, dtype=F32)


@mutant("W", good=_others("W"))
def float32_dense_dW_mean():
    """float32 Dense: dW divided by the batch size."""
    return DenseMeanDW(4, 3, seed=1, dtype=F32), sample((B, 4), 33, dtype=F32)


@mutant(X, good=_others(X))
def float32_dense_dx_uses_W():
    """float32 Dense (square W): dx = g @ W instead of g @ W.T."""
    return DenseDxUsesW(4, 4, seed=1, dtype=F32), sample((B, 4), 34, dtype=F32)


@mutant(X)
def float32_relu_no_derivative():
    """float32 ReLU: backward passes g through (derivative missing)."""
    return ReLUNoDerivative(), sample((B, 5), 35, dtype=F32)


@mutant(X)
def float32_sigmoid_wrong_derivative():
    """float32 sigmoid: derivative s instead of s (1 - s)."""
    return SigmoidWrongDerivative(), sample((B, 5), 36, dtype=F32)


@mutant(X, "W1", "b1", good=("W2", "b2"))
def float32_chain_relu_no_derivative():
    """float32 Dense-ReLU-Dense: the hidden ReLU passes g through."""
    net = dense_relu_dense(relu=ReLUNoDerivative(), seed=6, dtype=F32)
    return net, sample((B, 4), 37, dtype=F32)


# ---- misbehaviour: named in report.problems

ACCUMULATE = r"(?i)accumulat|called twice"
IN_PLACE = r"(?i)in[- ]place"
NON_DETERMINISTIC = r"(?i)determin"
NON_FINITE = r"(?i)nan|finite"


@_register(PROBLEM_MUTANTS, problem=ACCUMULATE, key="W")
def dense_accumulates_grads():
    """Dense: grads accumulated with += across backward calls instead of assigned."""
    return DenseAccumulates(4, 3, seed=1), sample((B, 4), 40)


@_register(PROBLEM_MUTANTS, problem=IN_PLACE, key=X)
def relu_forward_in_place():
    """ReLU: forward clamps its input array in place."""
    return ReLUInPlace(), sample((B, 5), 41)


@_register(PROBLEM_MUTANTS, problem=NON_DETERMINISTIC)
def dropout_fresh_mask_every_forward():
    """dropout: a fresh random mask on every forward call (not deterministic)."""
    return DropoutEveryCall(), sample((B, 5), 42)


@_register(PROBLEM_MUTANTS, problem=NON_FINITE, key=X)
def relu_nan_derivative_at_zero():
    """ReLU derivative computed as y / x: NaN in dx at exact zeros."""
    return ReLUDerivativeAsRatio(), sample((B, 5), 43, zeros_every=4)


@_register(PROBLEM_MUTANTS, problem=NON_FINITE, key="s")
def scale_nan_param_grad():
    """y = s x with ds = sum(g y) / s: NaN in the parameter gradient at s = 0."""
    return ScaleNaNGrad(0.0), sample((B, 5), 44)


# ---- wrong shapes / keys: GradientShapeError naming the key


@_register(SHAPE_MUTANTS, key="W")
def dense_dW_shape_transposed():
    """Dense(4, 3): dW has shape (3, 4), W's transposed shape."""
    return DenseDWShapeTransposed(4, 3, seed=1), sample((B, 4), 50)


@_register(SHAPE_MUTANTS, key="b")
def dense_missing_db():
    """Dense: grads has no 'b' key."""
    return DenseMissingDb(4, 3, seed=1), sample((B, 4), 51)


@_register(SHAPE_MUTANTS, key="b")
def dense_db_keepdims():
    """Dense: db has shape (1, 3) instead of (3,)."""
    return DenseDbKeepdims(4, 3, seed=1), sample((B, 4), 52)


@_register(SHAPE_MUTANTS, key=X)
def dense_dx_summed_over_batch():
    """Dense: dx summed over the batch, shape (4,) instead of (8, 4)."""
    return DenseDxSummedOverBatch(4, 3, seed=1), sample((B, 4), 53)


@_register(SHAPE_MUTANTS, key="W_T")
def dense_extra_grad_key():
    """Dense: grads has an extra key 'W_T' that is no parameter."""
    return DenseExtraGradKey(4, 3, seed=1), sample((B, 4), 54)


# --------------------------------------------------------------------------------------------
# kink bank: correct layers evaluated on their kinks


def kink(hull_ok=False, **opts):
    return _register(KINK_CASES, hull_ok=hull_ok, opts=opts)


def _relu_input(seed, dtype=np.float64, shape=(4, 6)):
    return sample(shape, seed, zeros_every=3, dtype=dtype)


def _relu_case(c):
    def make():
        return ReLU(grad_at_zero=c), _relu_input(60)

    make.__name__ = f"relu_grad_at_zero_{str(c).replace('.', 'p')}"
    make.__doc__ = f"ReLU with ReLU'(0) = {c} on an input with exact zeros."
    return make


for _c in (0.0, 0.5, 1.0, 0.25, 0.9):
    kink(hull_ok=True)(_relu_case(_c))


def _leaky_case(alpha, c):
    def make():
        return LeakyReLU(alpha, grad_at_zero=c), _relu_input(61)

    make.__name__ = f"leaky_alpha_{alpha}_at_zero_{c}".replace(".", "p")
    make.__doc__ = f"leaky ReLU, alpha {alpha}, derivative {c} at exact zeros."
    return make


for _alpha, _c in ((0.01, 0.01), (0.1, 1.0), (0.2, 0.6), (0.3, 0.3), (0.5, 0.75)):
    kink(hull_ok=True)(_leaky_case(_alpha, _c))


@kink(hull_ok=True)
def abs_sign_zero_at_zero():
    """|x| with sign(0) = 0 (inside the hull [-1, 1]) on exact zeros."""
    return Abs(0.0), _relu_input(62)


@kink(hull_ok=True)
def abs_one_at_zero():
    """|x| with derivative +1 at 0 (the hull's edge) on exact zeros."""
    return Abs(1.0), _relu_input(63)


def _pairs_tied(seed, shape=(4, 8), dtype=np.float64):
    """Windows of 2 where every other window is an exact tie."""
    x = sample(shape, seed, dtype=dtype)
    x[:, 1::4] = x[:, 0::4]
    return x


@kink(hull_ok=True)
def maxpool_ties_first():
    """max-pool (width 2) with exact ties, the tie routed to the first element."""
    return MaxPool1d(2, "first"), _pairs_tied(64)


@kink(hull_ok=True)
def maxpool_ties_last():
    """max-pool (width 2) with exact ties, the tie routed to the last element."""
    return MaxPool1d(2, "last"), _pairs_tied(65)


@kink(hull_ok=True)
def maxpool_ties_split():
    """max-pool (width 2) with exact ties, the gradient split evenly."""
    return MaxPool1d(2, "split"), _pairs_tied(66)


@kink(hull_ok=True)
def rowmax_three_way_ties():
    """max over a row of 5 where 3 entries tie for the maximum, tie split evenly."""
    x = sample((3, 5), 67)
    top = np.abs(x).max() + 1.0
    x[:, [0, 2, 4]] = top
    return MaxPool1d(5, "split"), x


def _max2_input(seed, shape=(3, 4)):
    x = sample((2, *shape), seed)
    x[1].flat[::2] = x[0].flat[::2]
    return x


@kink(hull_ok=True)
def max2_ties_first():
    """elementwise max(a, b) with exact ties, the tie routed to a."""
    return Max2("first"), _max2_input(68)


@kink(hull_ok=True)
def max2_ties_split():
    """elementwise max(a, b) with exact ties, the gradient split evenly."""
    return Max2("split"), _max2_input(69)


def _corners(lo, hi, seed, shape=(4, 6)):
    x = sample(shape, seed, scale=2.0 * max(abs(lo), abs(hi)))
    x.flat[::4] = lo
    x.flat[1::4] = hi
    return x


@kink(hull_ok=True)
def hardtanh_corners_closed():
    """clip(x, -1, 1) at exactly -1 and 1, derivative 1 at the corners."""
    return HardTanh(-1.0, 1.0, 1.0), _corners(-1.0, 1.0, 70)


@kink(hull_ok=True)
def hardtanh_corners_open():
    """clip(x, -1, 1) at exactly -1 and 1, derivative 0 at the corners."""
    return HardTanh(-1.0, 1.0, 0.0), _corners(-1.0, 1.0, 71)


@kink(hull_ok=True)
def relu6_corners_half():
    """clip(x, 0, 6) (ReLU6) at exactly 0 and 6, derivative 0.5 at the corners."""
    return HardTanh(0.0, 6.0, 0.5), _corners(0.0, 6.0, 72)


# ---- many kinks crossed at once


def _zero_rows(x, rows=(0,)):
    x[list(rows)] = 0.0
    return x


@kink()
def zero_row_bias_free_dense_relu():
    """zero input rows through a bias-free Dense + ReLU (ReLU'(0) = 0): multi-kink along x."""
    net = Chain(Dense(4, 5, bias=False, seed=80), ReLU(0.0))
    return net, _zero_rows(sample((4, 4), 81), rows=(0, 2))


@kink()
def zero_row_bias_free_dense_relu_dense():
    """zero input row through bias-free Dense + ReLU + Dense: multi-kink seen through W2."""
    return dense_relu_dense(bias=False, seed=82), _zero_rows(sample((3, 4), 83))


@kink()
def dead_units_zero_bias():
    """Dense (zero bias, two all-zero W columns) + ReLU + Dense: dead units sit on their kinks."""
    first = Dense(4, 5, seed=84, b=np.zeros(5))
    first.params["W"][:, [1, 3]] = 0.0
    net = Chain(first, ReLU(0.0), Dense(5, 3, seed=85))
    return net, sample((6, 4), 86)


@kink()
def zero_batch_through_relu_net():
    """an all-zero batch through bias-free Dense + ReLU + Dense."""
    return dense_relu_dense(bias=False, seed=87), np.zeros((3, 4))


@kink(upstream=np.array([[1.0, -1.0]]))
def multikink_outside_hull():
    """x = 0, W = [[1, -2]], upstream (1, -1): slopes 1 | 2, ReLU'(0) = 0 gives 0, outside."""
    net = Chain(Dense(1, 2, bias=False, W=[[1.0, -2.0]]), ReLU(0.0))
    return net, np.zeros((1, 1))


@kink()
def abs_net_zero_row():
    """zero input row through bias-free Dense + |.| + Dense: kinks in both directions."""
    net = Chain(Dense(3, 4, bias=False, seed=88), Abs(0.0), Dense(4, 2, seed=89))
    return net, _zero_rows(sample((3, 3), 90))


@kink()
def leaky_net_zero_row():
    """zero input row through bias-free Dense + LeakyReLU(0.1) + Dense."""
    net = Chain(Dense(3, 4, bias=False, seed=91), LeakyReLU(0.1), Dense(4, 2, seed=92))
    return net, _zero_rows(sample((3, 3), 93))


@kink()
def relu_then_maxpool_zero_ties():
    """ReLU (ReLU'(0)=0.5) then max-pool: windows of exact zeros tie after the ReLU."""
    x = sample((3, 6), 94)
    x[:, 0] = 0.0
    x[:, 1] = -np.abs(x[:, 1])
    x[:, 2:4] = 0.0
    return Chain(ReLU(0.5), MaxPool1d(2, "first")), x


@kink()
def softmax_ce_after_relu_zero_row():
    """bias-free Dense + ReLU + softmax cross-entropy head, zero input row."""
    net = Chain(Dense(3, 4, bias=False, seed=95), ReLU(0.0), SoftmaxCrossEntropy([0, 3, 1]))
    return net, _zero_rows(sample((3, 3), 96), rows=(1,))


@kink()
def scalar_relu_chain_zero_input():
    """C = 1/2 (y - ReLU(w1 ReLU(w2 ReLU(w3 x))))^2 at x = 0 (ReLU'(0) = 0)."""
    layers = []
    for w in (0.7, 1.3, 0.9):
        layers += [Dense(1, 1, bias=False, W=[[w]]), ReLU(0.0)]
    return Chain(*layers, Quadratic([[0.4]])), np.zeros((1, 1))


@kink()
def scalar_relu_chain_dead_middle():
    """scalar ReLU chain whose middle weight is 0: the outer ReLU sits at 0."""
    layers = []
    for w in (0.7, 0.0, 0.9):
        layers += [Dense(1, 1, bias=False, W=[[w]]), ReLU(0.0)]
    return Chain(*layers, Quadratic([[0.4]])), np.array([[1.5]])


def hidden_kinks_relu_negdense_relu():
    """ReLU(0.5) -> Dense(W = [[-1]]) -> ReLU(0.5) at x = 0: both kinks at once, loss flat."""
    net = Chain(ReLU(0.5), Dense(1, 1, bias=False, W=[[-1.0]]), ReLU(0.5))
    return net, np.zeros((1, 1))


# ---- float32, batch 1, width 1


@kink(hull_ok=True)
def float32_relu_exact_zeros():
    """float32 ReLU (ReLU'(0) = 0) on exact zeros."""
    return ReLU(0.0), _relu_input(100, dtype=F32)


@kink()
def float32_relu_net_zero_row():
    """float32 Dense + ReLU + Dense with a zero input row and zero entries."""
    x = sample((4, 4), 101, dtype=F32, zeros_every=5)
    return dense_relu_dense(seed=102, dtype=F32, bias=False), _zero_rows(x)


@kink()
def float32_dead_units():
    """float32 Dense (zero bias, a zero W column) + ReLU + Dense."""
    first = Dense(4, 5, seed=103, b=np.zeros(5), dtype=F32)
    first.params["W"][:, 2] = 0.0
    return Chain(first, ReLU(0.0), Dense(5, 2, seed=104, dtype=F32)), sample((5, 4), 105, dtype=F32)


@kink()
def batch1_zero_input_dense_relu():
    """batch of 1, all-zero input, bias-free Dense + ReLU + Dense."""
    return dense_relu_dense(bias=False, seed=106), np.zeros((1, 4))


@kink(hull_ok=True)
def batch1_relu_exact_zeros():
    """batch of 1, ReLU (ReLU'(0) = 1) on exact zeros."""
    return ReLU(1.0), _relu_input(107, shape=(1, 6))


@kink()
def width1_dense_relu_zero_rows():
    """a single hidden unit: Dense(3, 1, no bias) + ReLU + Dense(1, 1), zero input rows."""
    net = Chain(Dense(3, 1, bias=False, seed=108), ReLU(0.0), Dense(1, 1, seed=109))
    return net, _zero_rows(sample((4, 3), 110), rows=(1, 3))


@kink(hull_ok=True)
def width1_relu_column():
    """ReLU on a (5, 1) column with exact zeros."""
    return ReLU(0.0), _relu_input(111, shape=(5, 1))


def as_params(bank):
    """pytest params of a bank's cases, with the case names as ids."""
    import pytest

    return [pytest.param(case, id=case.name) for case in bank.values()]


# ============================================================================================
# ---- issue 10: ties, dtypes, offsets, drift
#
# Layers and cases for tests/test_verdicts.py and tests/test_verdict_properties.py, in their own
# registries (nothing below is added to MUTANTS or KINK_CASES):
#
# * ``TIE_BUGS``: a tied maximum's upstream given to EVERY tied element (max over an axis, the
#   widely copied ``(window == window.max()) * dout`` max-pool, top-k as ``(x >= kth) * g``) on
#   integer-valued inputs, or to none of them (a strict comparison). Each coordinate alone
#   lies inside its one-sided range; moving the tied elements together shows the slope counted
#   more than once (or not at all). Must be FAILED under kinks="subgradient" and "hull".
# * ``TIE_CONVENTIONS``: the same layers with a valid convention (first / last argmax, an even
#   split); must pass under both modes.
# * ``LOW_PRECISION_MUTANTS``: gross bugs (sign-flipped bias, transposed dW, softmax
#   cross-entropy without the one-hot, +0.4 on one element of dW) as factories
#   ``make(dtype, seed) -> (layer, x)``; never "ok" in float16, FAILED in float32.
# * ``SENSITIVITY_MUTANTS``: smooth well-scaled float64 layers (batch norm, Dense + tanh) with
#   an error of ~1e-6 relative; FAILED by default, ok with an explicit rtol=1e-5.


def integer_valued(shape, seed=0, lo=0, hi=3, dtype=np.float64):
    """Integer-valued floats in [lo, hi) (pixels): ties are common."""
    return np.random.default_rng(seed).integers(lo, hi, shape).astype(dtype)


def _route(values, top, tie):
    """Routing weights of a max over the last axis: ``tie`` is "first", "last", "split", or
    a bug: "all" (every tied element gets the full upstream) or "none" (no tied element gets
    anything, as when the maximum is found with a strict comparison)."""
    hit = values == top[..., None]
    if tie == "all":
        return hit.astype(np.float64)
    if tie == "none":
        return (hit & (hit.sum(axis=-1, keepdims=True) == 1)).astype(np.float64)
    return _tie_mask(values, top, tie)


class MaxAll(TieRouted):
    """y = max over axis 1 (keepdims); a tie routes by ``tie`` ("all" is the bug)."""

    def forward(self, x):
        self.x = x
        return x.max(axis=1, keepdims=True)

    def backward(self, g):
        w = _route(self.x, self.x.max(axis=1), self.tie)
        return (w * g).astype(self.x.dtype)


class MaxPool2x2(TieRouted):
    """2x2 max-pool, stride 2, on (N, C, H, W), written with loops like the public
    ``max_pool_backward_naive``; ``tie="all"`` is its ``(window == window.max()) * dout``."""

    def forward(self, x):
        self.x = x
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    def backward(self, dout):
        x = self.x
        dx = np.zeros_like(x)
        n_, c_, h_, w_ = dout.shape
        for n in range(n_):
            for c in range(c_):
                for i in range(h_):
                    for j in range(w_):
                        window = x[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
                        if self.tie == "all":
                            mask = window == window.max()
                        elif self.tie == "none":
                            mask = (window == window.max()) & (
                                np.sum(window == window.max()) == 1)
                        else:
                            flat = window.reshape(1, 4)
                            mask = _tie_mask(flat, flat.max(axis=-1), self.tie).reshape(2, 2)
                        dx[n, c, 2 * i:2 * i + 2, 2 * j:2 * j + 2] += mask * dout[n, c, i, j]
        return dx


class TopKSum(Layer):
    """y = sum of the k largest entries of each row (keepdims). ``tie="all"`` is the bug
    ``(x >= kth) * g``; "none" the bug of dropping the entries tied for the k-th place;
    "split" shares the places left at the k-th value evenly among the entries tied for it;
    "first" gives them to the first of those entries."""

    def __init__(self, k=2, tie="split"):
        super().__init__()
        self.k, self.tie = k, tie

    def __repr__(self):
        return f"TopKSum(k={self.k}, tie={self.tie!r})"

    def kth(self, x):
        return np.sort(x, axis=1)[:, -self.k][:, None]

    def forward(self, x):
        self.x = x
        return np.sort(x, axis=1)[:, -self.k:].sum(axis=1, keepdims=True)

    def backward(self, g):
        x, kth = self.x, self.kth(self.x)
        if self.tie == "all":
            return ((x >= kth) * g).astype(x.dtype)
        if self.tie == "none":  # the k-th place dropped when more entries tie for it than fit
            return ((x > kth) + ((x == kth) & ((x >= kth).sum(axis=1, keepdims=True) == self.k))
                    ) * g
        above = x > kth
        at = x == kth
        places = self.k - above.sum(axis=1, keepdims=True)  # places left for the tied ones
        if self.tie == "split":
            w = above + at * places / at.sum(axis=1, keepdims=True)
        elif self.tie == "first":
            rank = np.cumsum(at, axis=1)
            w = above + (at & (rank <= places))
        else:
            raise ValueError(f"tie must be 'all', 'split' or 'first', not {self.tie!r}")
        return (w * g).astype(x.dtype)


def top_k_boundary_tied(x, k):
    """True when some row has more entries >= its k-th largest than k: the only ties at
    which ``(x >= kth) * g`` is wrong (ties inside the top k are harmless)."""
    kth = np.sort(x, axis=1)[:, -k][:, None]
    return bool(np.any((x >= kth).sum(axis=1) > k))


def has_tied_max(x, axis=-1):
    """True when some slice along ``axis`` has its maximum more than once."""
    return bool(np.any((x == x.max(axis=axis, keepdims=True)).sum(axis=axis) > 1))


def pool_windows(x):
    """(N, C, H, W) -> (N, C, H/2, W/2, 4): the 2x2 windows of MaxPool2x2."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, h // 2, w // 2, 4)


TIE_BUGS: dict[str, Case] = {}
TIE_CONVENTIONS: dict[str, Case] = {}


# the issue's literal example: ties at x[0, 1] and x[0, 2]
ISSUE_MAX_X = np.array([[1.0, 2.0, 2.0, 0.0, -1.0]])
ISSUE_MAX_UPSTREAM = np.array([[1.0]])


@_register(TIE_BUGS, opts={"upstream": ISSUE_MAX_UPSTREAM})
def max_axis1_counted_twice_issue_example():
    """max over axis 1 of [1, 2, 2, 0, -1], upstream 1: both tied 2s get the upstream."""
    return MaxAll("all"), ISSUE_MAX_X.copy()


@_register(TIE_BUGS)
def max_axis1_counted_twice_pixels():
    """max over axis 1 of integer-valued rows (ties in every row): every tied max gets g."""
    x = integer_valued((4, 6), 200)
    x[:, 0] = x[:, 1] = 3.0  # a tie for the maximum in every row
    return MaxAll("all"), x


@_register(TIE_BUGS)
def maxpool2x2_window_eq_max_pixels():
    """2x2 max-pool with (window == window.max()) * dout on 0..2 pixels (ties in windows)."""
    x = integer_valued((1, 2, 4, 4), 201)
    x[0, 0, 0, :2] = 5.0  # at least one window with its maximum twice
    return MaxPool2x2("all"), x


@_register(TIE_BUGS)
def maxpool2x2_window_eq_max_flat_window():
    """2x2 max-pool with (window == window.max()) * dout where a whole window is constant."""
    x = integer_valued((2, 1, 2, 4), 202)
    x[0, 0, :, :2] = 1.0
    return MaxPool2x2("all"), x


@_register(TIE_BUGS)
def topk_ge_kth_boundary_tie():
    """sum of the top 2 of [3, 1, 2, 2, 0]-like rows with (x >= kth) * g: 3 entries get g."""
    x = np.array([[3.0, 1.0, 2.0, 2.0, 0.0], [1.0, 1.0, 1.0, 0.0, 2.0]])
    return TopKSum(2, "all"), x


@_register(TIE_BUGS)
def topk_ge_kth_pixels():
    """sum of the top 3 of integer-valued rows with (x >= kth) * g (boundary ties)."""
    x = integer_valued((3, 6), 203)
    x[:, :4] = np.array([2.0, 2.0, 2.0, 2.0])  # four entries tied for the 3 places
    x[:, 4:] = 0.0
    return TopKSum(3, "all"), x


@_register(TIE_BUGS, opts={"upstream": ISSUE_MAX_UPSTREAM})
def max_axis1_tie_dropped_issue_example():
    """max over axis 1 of [1, 2, 2, 0, -1], upstream 1: neither tied 2 gets anything."""
    return MaxAll("none"), ISSUE_MAX_X.copy()


@_register(TIE_BUGS)
def maxpool2x2_tie_dropped_pixels():
    """2x2 max-pool on 0..2 pixels: a window whose maximum is tied routes nothing."""
    return MaxPool2x2("none"), maxpool2x2_window_eq_max_pixels()[1]


@_register(TIE_BUGS)
def topk_boundary_tie_dropped():
    """sum of the top 2 of [3, 1, 2, 2, 0]-like rows: the entries tied for 2nd get nothing."""
    return TopKSum(2, "none"), topk_ge_kth_boundary_tie()[1]


# two rows (windows) tied at the same value with opposite upstreams: moving every element of
# that value together cancels their errors; a tie group is one row's (one window's) tie
OPPOSITE_UPSTREAMS = np.array([[-1.0], [1.0]])
OPPOSITE_POOL_UPSTREAMS = np.array([[[[-1.0, 1.0]]]])


@_register(TIE_BUGS, opts={"upstream": OPPOSITE_UPSTREAMS})
def max_axis1_counted_twice_opposite_rows():
    """max over axis 1 of two all-zero rows, upstreams -1 and +1: every tied max gets g."""
    return MaxAll("all"), np.zeros((2, 2))


@_register(TIE_BUGS, opts={"upstream": OPPOSITE_POOL_UPSTREAMS})
def maxpool2x2_window_eq_max_opposite_windows():
    """2x2 max-pool of two constant windows (all 1), upstreams -1 and +1, (window == max) * dout."""
    return MaxPool2x2("all"), np.ones((1, 1, 2, 4))


def _named(name, make, doc):
    """``make`` under ``name``, with ``doc`` as its one-line docstring (a bank entry)."""
    make.__name__, make.__doc__ = name, doc
    return make


def _tie_convention(name, layer_factory, x_factory, doc, **opts):
    """Register (layer_factory(), x_factory()) in TIE_CONVENTIONS as ``name``."""
    _register(TIE_CONVENTIONS, opts=opts)(
        _named(name, lambda: (layer_factory(), x_factory()), doc))


for _tie in ("first", "last", "split"):
    _tie_convention(f"max_axis1_issue_example_{_tie}", lambda t=_tie: MaxAll(t),
                    lambda: ISSUE_MAX_X.copy(),
                    f"max over axis 1 of [1, 2, 2, 0, -1], tie routed {_tie}.",
                    upstream=ISSUE_MAX_UPSTREAM)
    _tie_convention(f"max_axis1_pixels_{_tie}", lambda t=_tie: MaxAll(t),
                    lambda: max_axis1_counted_twice_pixels()[1],
                    f"max over axis 1 of integer-valued rows with ties, tie routed {_tie}.")
    _tie_convention(f"maxpool2x2_pixels_{_tie}", lambda t=_tie: MaxPool2x2(t),
                    lambda: maxpool2x2_window_eq_max_pixels()[1],
                    f"2x2 max-pool of 0..2 pixels with tied windows, tie routed {_tie}.")
    _tie_convention(f"maxpool2x2_flat_window_{_tie}", lambda t=_tie: MaxPool2x2(t),
                    lambda: maxpool2x2_window_eq_max_flat_window()[1],
                    f"2x2 max-pool with a constant window, tie routed {_tie}.")
    _tie_convention(f"max_axis1_opposite_rows_{_tie}", lambda t=_tie: MaxAll(t),
                    lambda: np.zeros((2, 2)),
                    f"max over axis 1 of two zero rows, upstreams -1 and +1, tie routed {_tie}.",
                    upstream=OPPOSITE_UPSTREAMS)
    _tie_convention(f"maxpool2x2_opposite_windows_{_tie}", lambda t=_tie: MaxPool2x2(t),
                    lambda: np.ones((1, 1, 2, 4)),
                    f"2x2 max-pool of two constant windows, upstreams -1 and +1, tie {_tie}.",
                    upstream=OPPOSITE_POOL_UPSTREAMS)
for _tie in ("first", "split"):
    _tie_convention(f"topk_boundary_tie_{_tie}", lambda t=_tie: TopKSum(2, t),
                    lambda: topk_ge_kth_boundary_tie()[1],
                    f"sum of the top 2 with a tie for the 2nd place, shared {_tie}.")
    _tie_convention(f"topk_pixels_{_tie}", lambda t=_tie: TopKSum(3, t),
                    lambda: topk_ge_kth_pixels()[1],
                    f"sum of the top 3 with four entries tied for 3 places, shared {_tie}.")


# ---- ties the equal-value groups of one tensor cannot see: across tensors, in |x|, in x + c,
# and ties whose common direction crosses another kink (zero padding, a ReLU at 0)


class MaxWithThreshold(Layer):
    """y = maximum(x, t) elementwise, t a parameter shaped like one row of x; a tie
    (x == t) routes by ``tie``: "first" to x, "split" half each, "all" (the bug: ``>=`` on
    both sides) to both."""

    def __init__(self, t, tie="first"):
        super().__init__()
        self.params["t"] = np.array(t, dtype=np.float64)
        self.tie = tie

    def __repr__(self):
        return f"MaxWithThreshold(tie={self.tie!r})"

    def forward(self, x):
        self.x = x
        return np.maximum(x, self.params["t"])

    def backward(self, g):
        x, t = self.x, self.params["t"]
        tie = x == t
        to_x = {"first": 1.0, "split": 0.5, "all": 1.0}[self.tie]
        to_t = {"first": 0.0, "split": 0.5, "all": 1.0}[self.tie]
        gx = g * ((x > t) + to_x * tie)
        self.grads = {"t": (g * ((t > x) + to_t * tie)).sum(axis=0)}
        return gx


class MaxAbs(TieRouted):
    """y = max |x| over axis 1 (an inf-norm); a tie between +a and -a routes by ``tie``."""

    def forward(self, x):
        self.x = x
        return np.abs(x).max(axis=1, keepdims=True)

    def backward(self, g):
        a = np.abs(self.x)
        return _route(a, a.max(axis=1), self.tie) * np.sign(self.x) * g


class MaxShifted(Layer):
    """y = max over axis 1 of x + c, c a fixed positional offset: ties in x + c only."""

    def __init__(self, c, tie="first"):
        super().__init__()
        self.c, self.tie = np.asarray(c, dtype=np.float64), tie

    def __repr__(self):
        return f"MaxShifted(tie={self.tie!r})"

    def forward(self, x):
        self.x = x
        return (x + self.c).max(axis=1, keepdims=True)

    def backward(self, g):
        z = self.x + self.c
        return _route(z, z.max(axis=1), self.tie) * g


class ZeroPaddedMaxPool(TieRouted):
    """1-D max-pool (width 3, stride 3) of x padded with one zero on each side: on a black
    image the padding ties with the image, so moving the tied pixels up is a kink too."""

    def forward(self, x):
        self.windows = np.pad(x, ((0, 0), (1, 1))).reshape(len(x), -1, 3)
        return self.windows.max(axis=2)

    def backward(self, g):
        w = self.windows
        d = _route(w, w.max(axis=2), self.tie) * g[:, :, None]
        return d.reshape(len(g), -1)[:, 1:-1]


class ReLUThenMaxPool(TieRouted):
    """ReLU (ReLU'(0) = 1) then a max over pairs: on a black image every pair ties at the
    ReLU's kink."""

    def forward(self, x):
        self.x = x
        self.pairs = np.maximum(x, 0).reshape(len(x), -1, 2)
        return self.pairs.max(axis=2)

    def backward(self, g):
        p = self.pairs
        d = (_route(p, p.max(axis=2), self.tie) * g[:, :, None]).reshape(self.x.shape)
        return d * (self.x >= 0)


class SortDescending(TieRouted):
    """y = each row sorted in descending order; backward routes each slot's gradient back
    by position ("first": argsort order) or, the bug, by value: every tied copy gets every
    tied slot's gradient."""

    def forward(self, x):
        self.x = x
        self.order = np.argsort(-x, axis=1, kind="stable")
        return np.take_along_axis(x, self.order, axis=1)

    def backward(self, g):
        if self.tie == "all":
            y = np.take_along_axis(self.x, self.order, axis=1)
            return np.stack([(self.x[r][:, None] == y[r][None, :]) @ g[r]
                             for r in range(len(g))])
        dx = np.zeros_like(g)
        np.put_along_axis(dx, self.order, g, axis=1)
        return dx


HIDDEN_TIES = {
    "maximum_with_threshold": (lambda tie: MaxWithThreshold([1.0, 0.0], tie),
                               lambda: np.array([[1.0, 2.0], [0.0, 0.0], [2.0, -1.0]]),
                               "maximum(x, t): x[0, 0] == t[0] and x[1, 1] == t[1]"),
    "max_abs_plus_minus": (MaxAbs, lambda: np.array([[2.0, -2.0, 1.0], [0.5, -1.0, 1.0]]),
                           "max |x| over rows [2, -2, 1] and [0.5, -1, 1]: +-a tied"),
    "max_shifted": (lambda tie: MaxShifted([0.0, 1.0, 0.0], tie),
                    lambda: np.array([[2.0, 1.0, 0.0], [3.0, 1.0, 3.0]]),
                    "max of x + (0, 1, 0): 2 + 0 ties 1 + 1; 3 ties 3"),
    "zero_padded_maxpool_black": (ZeroPaddedMaxPool, lambda: np.zeros((2, 4)),
                                  "zero-padded max-pool (3, stride 3) of a black image"),
    "relu_then_maxpool_black": (ReLUThenMaxPool, lambda: np.zeros((2, 4)),
                                "ReLU then a max over pairs on a black image"),
    "sort_descending": (SortDescending, lambda: np.array([[2.0, 2.0, 0.0], [1.0, 3.0, 1.0]]),
                        "rows sorted descending, two of them tied"),
}
for _name, (_layer, _x, _doc) in HIDDEN_TIES.items():
    _register(TIE_BUGS)(_named(f"{_name}_counted_for_all",
                               lambda f=_layer, x=_x: (f("all"), x()),
                               f"{_doc}; every tied element gets the upstream."))
    _tie_convention(f"{_name}_first", lambda f=_layer: f("first"), _x,
                    f"{_doc}; the tie routed to the first.")


# ---- low precision: float16 / float32 / longdouble


class DensePlusOnDW(Dense):
    """dW[index] += shift (an absolute error, +0.4 by default)."""

    def __init__(self, *args, index=(0, 0), shift=0.4, **kw):
        super().__init__(*args, **kw)
        self.index, self.shift = tuple(index), shift

    def backward(self, g):
        dx = super().backward(g)
        dW = np.array(self.grads["W"], copy=True)
        dW[self.index] += self.shift
        self.grads["W"] = dW
        return dx


class SoftmaxCENoOneHot(SoftmaxCrossEntropy):
    """Mean softmax cross-entropy whose backward forgets to subtract the one-hot: g p / N."""

    def backward(self, g):
        return (g * self.p / len(self.t)).astype(self.z.dtype)


class DenseSoftmaxCE(Chain):
    """Dense(4, 3) then mean softmax cross-entropy over a batch of 6 (params W1, b1)."""

    def __init__(self, head, *, seed=0, dtype=np.float64):
        super().__init__(Dense(4, 3, seed=seed, dtype=dtype), head)


LOW_PRECISION_MUTANTS: dict[str, Callable[..., tuple[Any, np.ndarray]]] = {}
LOW_PRECISION_BAD: dict[str, tuple[str, ...]] = {}  # tensors the bug reaches


def low_precision(*bad):
    def deco(fn):
        LOW_PRECISION_MUTANTS[fn.__name__] = fn
        LOW_PRECISION_BAD[fn.__name__] = bad
        return fn

    return deco


@low_precision("b")
def dense_bias_sign_flipped(dtype=np.float64, seed=0):
    """Dense(4, 3): db has the wrong sign."""
    return DenseSignDb(4, 3, seed=seed, dtype=dtype), sample((B, 4), 300 + seed, dtype=dtype)


@low_precision("W")
def dense_dW_transposed_square(dtype=np.float64, seed=0):
    """Dense(4, 4): dW = g.T @ x instead of x.T @ g."""
    return DenseTransposedDW(4, 4, seed=seed, dtype=dtype), sample((B, 4), 310 + seed, dtype=dtype)


@low_precision("x", "W1", "b1")
def softmax_ce_without_one_hot(dtype=np.float64, seed=0):
    """Dense + mean softmax cross-entropy: backward g p / N, the one-hot not subtracted."""
    targets = np.random.default_rng(320 + seed).integers(0, 3, 6)
    net = DenseSoftmaxCE(SoftmaxCENoOneHot(targets), seed=seed, dtype=dtype)
    return net, sample((6, 4), 330 + seed, dtype=dtype)


@low_precision("W")
def dense_dW_one_element_plus_0p4(dtype=np.float64, seed=0):
    """Dense(4, 3): dW[1, 2] += 0.4."""
    layer = DensePlusOnDW(4, 3, seed=seed, dtype=dtype, index=(1, 2), shift=0.4)
    return layer, sample((B, 4), 340 + seed, dtype=dtype)


def correct_dense_tanh(dtype=np.float64, seed=0):
    """Dense(4, 3) + tanh, correct, in ``dtype``."""
    return Chain(Dense(4, 3, seed=seed, dtype=dtype), Tanh()), sample((B, 4), 350 + seed,
                                                                       dtype=dtype)


def correct_dense_softmax_ce(dtype=np.float64, seed=0):
    """Dense + mean softmax cross-entropy, correct, in ``dtype``."""
    targets = np.random.default_rng(360 + seed).integers(0, 3, 6)
    net = DenseSoftmaxCE(SoftmaxCrossEntropy(targets), seed=seed, dtype=dtype)
    return net, sample((6, 4), 370 + seed, dtype=dtype)


LOW_PRECISION_CORRECT = {fn.__name__: fn for fn in (correct_dense_tanh, correct_dense_softmax_ce)}


# ---- sensitivity: float64, smooth, well scaled


class BatchNorm(Layer):
    """Training-mode batch norm over axis 0: gamma (x - mu) / sqrt(var + eps) + beta."""

    def __init__(self, d, *, eps=1e-5, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.eps = eps
        self.params["gamma"] = 1.0 + 0.5 * rng.standard_normal(d)
        self.params["beta"] = 0.5 * rng.standard_normal(d)

    def forward(self, x):
        self.mu = x.mean(axis=0)
        self.var = x.var(axis=0)
        self.inv_std = 1.0 / np.sqrt(self.var + self.eps)
        self.xhat = (x - self.mu) * self.inv_std
        return self.params["gamma"] * self.xhat + self.params["beta"]

    def backward(self, g):
        n = len(g)
        self.grads = {"gamma": (g * self.xhat).sum(axis=0), "beta": g.sum(axis=0)}
        dxhat = g * self.params["gamma"]
        return self.dx(dxhat, self.inv_std, n)

    def dx(self, dxhat, inv_std, n):
        return inv_std / n * (n * dxhat - dxhat.sum(axis=0)
                              - self.xhat * (dxhat * self.xhat).sum(axis=0))


class BatchNormDroppedEps(BatchNorm):
    """Batch norm whose backward uses 1 / sqrt(var), the eps dropped (~eps / 2var relative)."""

    def backward(self, g):
        super().backward(g)
        return self.dx(g * self.params["gamma"], 1.0 / np.sqrt(self.var), len(g))


class OneElementOff(Layer):
    """Wraps a layer; one element of one gradient ("x" = grad_x) is scaled by (1 + rel).
    ``index=None``: the element with the largest magnitude."""

    def __init__(self, inner, target, rel=1e-6, index=None):
        super().__init__()
        self.inner, self.target, self.rel, self.index = inner, target, rel, index
        self.params = inner.params

    def __repr__(self):
        return f"OneElementOff({self.inner!r}, {self.target!r}, rel={self.rel})"

    def forward(self, x):
        return self.inner.forward(x)

    def _off(self, a):
        a = np.array(a, copy=True)
        i = int(np.argmax(np.abs(a))) if self.index is None else np.ravel_multi_index(
            self.index, a.shape)
        a.flat[i] *= 1.0 + self.rel
        return a

    def backward(self, g):
        dx = self.inner.backward(g)
        self.grads = dict(self.inner.grads)
        if self.target == "x":
            return self._off(dx)
        self.grads[self.target] = self._off(self.grads[self.target])
        return dx


def standardized(shape, seed):
    """Columns with mean 0 and variance exactly 1 (so batch norm's eps is 1e-5 relative)."""
    x = sample(shape, seed)
    return (x - x.mean(axis=0)) / x.std(axis=0)


def batchnorm_case(seed=0):
    """Correct batch norm over a batch of 8, 4 features, unit-variance columns."""
    return BatchNorm(4, seed=400 + seed), standardized((8, 4), 410 + seed)


def dense_tanh_case(seed=0):
    """Correct Dense(4, 3) + tanh on a batch of 8."""
    return correct_dense_tanh(np.float64, seed)


SENSITIVITY_MUTANTS: dict[str, Case] = {}


@_register(SENSITIVITY_MUTANTS, bad=("x",))
def batchnorm_dx_one_element_off_1e6():
    """batch norm: the largest element of dx off by 1e-6 relative."""
    layer, x = batchnorm_case()
    return OneElementOff(layer, "x", 1e-6), x


@_register(SENSITIVITY_MUTANTS, bad=("gamma",))
def batchnorm_dgamma_one_element_off_1e6():
    """batch norm: the largest element of dgamma off by 1e-6 relative."""
    layer, x = batchnorm_case(1)
    return OneElementOff(layer, "gamma", 1e-6), x


@_register(SENSITIVITY_MUTANTS, bad=("x",))
def batchnorm_dropped_eps():
    """batch norm backward with 1 / sqrt(var) for 1 / sqrt(var + eps): 5e-6 relative in dx."""
    return BatchNormDroppedEps(4, seed=402), standardized((8, 4), 412)


@_register(SENSITIVITY_MUTANTS, bad=("W1",))
def dense_tanh_dW_one_element_off_1e6():
    """Dense + tanh: the largest element of dW off by 1e-6 relative."""
    net, x = dense_tanh_case(2)
    return OneElementOff(net, "W1", 1e-6), x


@_register(SENSITIVITY_MUTANTS, bad=("x",))
def dense_tanh_dx_one_element_off_1e6():
    """Dense + tanh: the largest element of dx off by 1e-6 relative."""
    net, x = dense_tanh_case(3)
    return OneElementOff(net, "x", 1e-6), x


# ---- noise, drift, names


class NoisyDense(Dense):
    """Dense whose forward adds fresh noise of size ``sigma`` on every call."""

    def __init__(self, *args, sigma=1e-2, noise_seed=11, **kw):
        super().__init__(*args, **kw)
        self.sigma = sigma
        self.rng = np.random.default_rng(noise_seed)

    def forward(self, x):
        y = super().forward(x)
        return y + self.sigma * self.rng.standard_normal(y.shape)


class DriftingDense(Dense):
    """Dense whose forward, from call ``after + 1`` on, adds ``step`` to b[0] in place
    (a running statistic updated by mistake): the loss at the point changes during the check."""

    def __init__(self, *args, after=3, step=1e-3, wrong_db=False, **kw):
        super().__init__(*args, **kw)
        self.after, self.step, self.wrong_db, self.calls = after, step, wrong_db, 0

    def forward(self, x):
        self.calls += 1
        if self.calls > self.after:
            self.params["b"][0] += self.step
        return super().forward(x)

    def backward(self, g):
        dx = super().backward(g)
        if self.wrong_db:
            self.grads["b"] = -self.grads["b"]
        return dx


class HiddenDriftDense(Dense):
    """Dense whose output is scaled by 1 + step * (calls - after) from call ``after + 1`` on:
    state outside the params that changes the loss at the point during the check."""

    def __init__(self, *args, after=6, step=1e-3, wrong_db=False, **kw):
        super().__init__(*args, **kw)
        self.after, self.step, self.wrong_db, self.calls = after, step, wrong_db, 0

    def forward(self, x):
        self.calls += 1
        self.scale = 1.0 + self.step * max(0, self.calls - self.after)
        return self.scale * super().forward(x)

    def backward(self, g):
        dx = super().backward(self.scale * g)
        if self.wrong_db:
            self.grads["b"] = -self.grads["b"]
        return dx


class ParamsNamedXAndInput(Layer):
    """y = x * params["x"] + params["input"] elementwise: params keyed like the input."""

    def __init__(self, shape, seed=0, wrong_dx=False):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.params["x"] = rng.standard_normal(shape)
        self.params["input"] = rng.standard_normal(shape)
        self.wrong_dx = wrong_dx

    def forward(self, x):
        self.x = x
        return x * self.params["x"] + self.params["input"]

    def backward(self, g):
        self.grads = {"x": g * self.x, "input": g.copy()}
        dx = g * self.params["x"]
        return -dx if self.wrong_dx else dx
