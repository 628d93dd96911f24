"""Layers that follow the gradcheck layer protocol, written for reading.

Every layer has ``params`` and ``grads`` (dicts of arrays, possibly empty),
``forward(x) -> y`` and ``backward(grad_y) -> grad_x``. Backward works on the whole
mini-batch at once (rows are samples) and *overwrites* ``grads``: calling it twice gives
the same answer. Forward never writes into its input.

>>> import numpy as np
>>> from reference_nets import Dense, ReLU, Sequential
>>> net = Sequential(Dense(3, 4, rng=0), ReLU(), Dense(4, 2, rng=1))
>>> y = net.forward(np.ones((5, 3)))
>>> y.shape, net.backward(np.ones_like(y)).shape, sorted(net.grads)
((5, 2), (5, 3), ['0.W', '0.b', '2.W', '2.b'])
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

Array = NDArray[Any]
RngLike = np.random.Generator | int | None

__all__ = [
    "Array",
    "Dense",
    "LeakyReLU",
    "ReLU",
    "RngLike",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "as_float_array",
    "as_rng",
]


def as_rng(rng: RngLike) -> np.random.Generator:
    """A ``np.random.Generator`` from a Generator, an int seed, or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def as_float_array(x: ArrayLike, dtype: DTypeLike | None = None) -> Array:
    """``x`` as an array of ``dtype``; with no dtype, keep a float dtype, else float64.

    Never copies when ``x`` already has the dtype, and never writes into ``x``.
    """
    if dtype is None:
        a = np.asarray(x)
        return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)
    return np.asarray(x, dtype=dtype)


def _float_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise ValueError(f"dtype must be a float dtype (float16/32/64), got {dt}")
    return dt


class Dense:
    """Fully connected layer ``y = x @ W + b`` over a mini-batch (rows of ``x`` are samples).

    Backward in matrix form (Nielsen's BP3/BP4 with rows as samples)::

        dW = x.T @ g      db = g.sum(axis=0)      dx = g @ W.T

    ``x`` may have any leading shape ``(..., n_in)``; it is computed in the layer's dtype.
    Weights are He-initialised, ``W ~ N(0, 2 / n_in)``, biases start at zero.
    ``bias=False`` gives a bias-free layer whose only parameter is ``"W"``.

    >>> layer = Dense(2, 3, rng=0)
    >>> layer.forward(np.zeros((4, 2))).shape
    (4, 3)
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        rng: RngLike = None,
        dtype: DTypeLike = np.float64,
        bias: bool = True,
    ) -> None:
        if n_in < 1 or n_out < 1:
            raise ValueError(f"n_in and n_out must be >= 1, got n_in={n_in}, n_out={n_out}")
        self.dtype = _float_dtype(dtype)
        self.n_in, self.n_out = int(n_in), int(n_out)
        w = as_rng(rng).standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        self.params: dict[str, Array] = {"W": w.astype(self.dtype)}
        if bias:
            self.params["b"] = np.zeros(n_out, dtype=self.dtype)
        self.grads: dict[str, Array] = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: Array | None = None

    @classmethod
    def from_arrays(cls, W: Array, b: Array | None = None) -> Dense:
        """A Dense layer whose parameters ARE ``W`` (and ``b``): shared, not copied.

        >>> W = np.eye(2)
        >>> Dense.from_arrays(W).params["W"] is W
        True
        """
        if W.ndim != 2 or (b is not None and b.shape != (W.shape[1],)):
            shapes = (W.shape, None if b is None else b.shape)
            raise ValueError(f"need W of shape (n_in, n_out) and b of shape (n_out,), got {shapes}")
        layer = cls(W.shape[0], W.shape[1], rng=0, dtype=W.dtype, bias=b is not None)
        layer.params["W"] = W
        if b is not None:
            layer.params["b"] = b
        return layer

    def forward(self, x: ArrayLike) -> Array:
        x = as_float_array(x, self.dtype)
        if x.shape[-1:] != (self.n_in,):
            raise ValueError(f"Dense expects x of shape (..., {self.n_in}), got {x.shape}")
        self._x = x  # a reference, not a copy: backward needs it unchanged
        y = x @ self.params["W"]
        if "b" in self.params:
            y += self.params["b"]  # y is a fresh array: adding in place is safe
        return y

    def backward(self, grad_y: ArrayLike) -> Array:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        g = as_float_array(grad_y, self.dtype)
        x2 = self._x.reshape(-1, self.n_in)
        g2 = g.reshape(-1, self.n_out)
        self.grads["W"] = x2.T @ g2  # BP4
        if "b" in self.params:
            self.grads["b"] = g2.sum(axis=0)  # BP3
        return g @ self.params["W"].T  # BP2 (before the activation's derivative)

    def __repr__(self) -> str:
        bias = "" if "b" in self.params else ", bias=False"
        return f"Dense({self.n_in}, {self.n_out}, dtype={self.dtype.name}{bias})"


class _Activation:
    """Elementwise activation: no parameters, computes in the input's float dtype."""

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ReLU(_Activation):
    """``y = max(x, 0)``; ``dy/dx`` is 1 for x > 0, 0 for x < 0 and ``grad_at_zero`` at x == 0.

    ReLU has no derivative at 0: any value in [0, 1] is a valid subgradient and a
    convention (0 is the common one). ``grad_at_zero`` is a public, mutable attribute and
    accepts any float, so a wrong convention (2.0, -0.5) can be tried on purpose.

    >>> relu = ReLU(grad_at_zero=0.5)
    >>> relu.forward(np.array([-1.0, 0.0, 2.0]))
    array([0., 0., 2.])
    >>> relu.backward(np.array([10.0, 10.0, 10.0]))
    array([ 0.,  5., 10.])
    """

    def __init__(self, grad_at_zero: float = 0.0) -> None:
        super().__init__()
        self.grad_at_zero = grad_at_zero
        self._pos: Array | None = None
        self._zero: Array | None = None
        self._dtype: np.dtype[Any] = np.dtype(np.float64)

    def forward(self, x: ArrayLike) -> Array:
        x = as_float_array(x)
        self._dtype = x.dtype
        self._pos = x > 0
        self._zero = x == 0
        return np.maximum(x, x.dtype.type(0))

    def backward(self, grad_y: ArrayLike) -> Array:
        if self._pos is None or self._zero is None:
            raise RuntimeError("ReLU.backward called before forward")
        g = np.asarray(grad_y, dtype=self._dtype)
        c = self.grad_at_zero
        if c == 0:  # the common convention: one pass over g (a bool mask multiplies fast)
            return g * self._pos
        return g * (self._pos + g.dtype.type(c) * self._zero)

    def __repr__(self) -> str:
        return f"ReLU(grad_at_zero={self.grad_at_zero!r})"


class LeakyReLU(_Activation):
    """``y = x`` for x > 0, ``alpha * x`` otherwise; the slope at x == 0 is taken as ``alpha``.

    >>> LeakyReLU(0.1).forward(np.array([-2.0, 3.0]))
    array([-0.2,  3. ])
    """

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = alpha
        self._slope: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        x = as_float_array(x)
        a = x.dtype.type(self.alpha)
        self._slope = (x > 0) * (1 - a) + a  # 1 where x > 0, alpha elsewhere
        return x * self._slope

    def backward(self, grad_y: ArrayLike) -> Array:
        if self._slope is None:
            raise RuntimeError("LeakyReLU.backward called before forward")
        return np.asarray(grad_y, dtype=self._slope.dtype) * self._slope

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha!r})"


class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))``, ``dy/dx = y (1 - y)``; stable for large ``|x|``.

    >>> Sigmoid().forward(np.array([0.0, -1000.0, 1000.0]))
    array([0.5, 0. , 1. ])
    """

    def __init__(self) -> None:
        super().__init__()
        self._y: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        x = as_float_array(x)
        e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
        one = x.dtype.type(1)
        self._y = np.where(x >= 0, one / (one + e), e / (one + e))
        return self._y

    def backward(self, grad_y: ArrayLike) -> Array:
        if self._y is None:
            raise RuntimeError("Sigmoid.backward called before forward")
        y = self._y
        return np.asarray(grad_y, dtype=y.dtype) * (y * (1 - y))


class Tanh(_Activation):
    """``y = tanh(x)``, ``dy/dx = 1 - y**2``.

    >>> Tanh().forward(np.array([0.0]))
    array([0.])
    """

    def __init__(self) -> None:
        super().__init__()
        self._y: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        self._y = np.tanh(as_float_array(x))
        return self._y

    def backward(self, grad_y: ArrayLike) -> Array:
        if self._y is None:
            raise RuntimeError("Tanh.backward called before forward")
        y = self._y
        return np.asarray(grad_y, dtype=y.dtype) * (1 - y * y)


class Softmax(_Activation):
    """Row-wise softmax over the last axis, ``p_j = exp(x_j) / sum_k exp(x_k)``.

    Its Jacobian is ``J = diag(p) - p p^T`` per row, so the Jacobian-vector product
    backward computes, for all rows at once, is::

        dx = J^T g = p * (g - sum_j g_j p_j)

    (Rows of J sum to zero: adding a constant to every logit changes nothing.)

    >>> p = Softmax().forward(np.array([[0.0, 0.0], [1000.0, 0.0]]))
    >>> p
    array([[0.5, 0.5],
           [1. , 0. ]])
    """

    def __init__(self) -> None:
        super().__init__()
        self._p: Array | None = None

    def forward(self, x: ArrayLike) -> Array:
        x = as_float_array(x)
        e = np.exp(x - x.max(axis=-1, keepdims=True))  # shift: largest exponent is 0
        e /= e.sum(axis=-1, keepdims=True)
        self._p = e
        return e

    def backward(self, grad_y: ArrayLike) -> Array:
        if self._p is None:
            raise RuntimeError("Softmax.backward called before forward")
        p = self._p
        g = np.asarray(grad_y, dtype=p.dtype)
        return p * (g - (g * p).sum(axis=-1, keepdims=True))
