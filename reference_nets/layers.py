"""Layers that follow the gradcheck layer protocol, written for reading.

Every layer has ``params`` and ``grads`` (dicts of arrays, possibly empty),
``forward(x) -> y`` and ``backward(grad_y) -> grad_x``. Backward works on the whole
mini-batch at once (rows are samples) and *overwrites* ``grads`` (Dense writes into the
same arrays each time: copy them to keep them): calling it twice gives the same answer.
Forward never writes into its input, nor backward into ``grad_y`` unless asked to.

Two speed-ups for training, both optional: every layer here has ``returns_new_grad =
True`` (backward returns a new array that the layer keeps no reference to), and the
elementwise activations take ``backward(grad_y, out=grad_y)`` to write their result into
``grad_y``. :class:`~reference_nets.Sequential` combines the two: a gradient that a layer
just returned, and nobody else holds, is overwritten in place by the activation before it.
Forward does the same where it is safe: Dense and ReLU have ``returns_new_output = True``,
and ReLU takes ``forward(x, out=x)``, so in a ``Sequential`` a ReLU writes its output over
the Dense output it was given (a Sigmoid or Tanh keeps its output for backward, so it is
never written over).

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

    ``input_grad=False`` is for the first layer of a network being trained: nothing upstream
    needs ``dL/dx`` of the data, so backward skips ``g @ W.T`` (one of the two products per
    layer) and returns None; ``grads`` are computed exactly as before. A layer checker
    needs ``dL/dx`` to check ``x``, so check such a layer built with ``input_grad=True``
    (the same parameters, the same code for ``grads``).

    >>> layer = Dense(2, 3, rng=0)
    >>> layer.forward(np.zeros((4, 2))).shape
    (4, 3)
    >>> first = Dense(2, 3, rng=0, input_grad=False)
    >>> y = first.forward(np.ones((4, 2)))
    >>> first.backward(np.ones((4, 3))) is None, first.grads["W"].shape
    (True, (2, 3))
    """

    #: backward returns a new array and keeps no reference to it (see the module docstring)
    returns_new_grad = True
    #: so does forward: its output is nobody's but the caller's
    returns_new_output = True

    def __init__(
        self,
        n_in: int,
        n_out: int,
        rng: RngLike = None,
        dtype: DTypeLike = np.float64,
        bias: bool = True,
        input_grad: bool = True,
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
        #: compute and return dL/dx in backward; False: return None (a first layer in training)
        self.input_grad = bool(input_grad)
        self._x: Array | None = None
        self._buffers: dict[str, Array] = {}  # backward's outputs for grads, reused
        self._ones_row: Array = np.ones(0, dtype=self.dtype)

    @classmethod
    def from_arrays(cls, W: Array, b: Array | None = None, input_grad: bool = True) -> Dense:
        """A Dense layer whose parameters ARE ``W`` (and ``b``): shared, not copied.

        >>> W = np.eye(2)
        >>> Dense.from_arrays(W).params["W"] is W
        True
        """
        if W.ndim != 2 or (b is not None and b.shape != (W.shape[1],)):
            shapes = (W.shape, None if b is None else b.shape)
            raise ValueError(f"need W of shape (n_in, n_out) and b of shape (n_out,), got {shapes}")
        layer = cls(W.shape[0], W.shape[1], rng=0, dtype=W.dtype, bias=b is not None,
                    input_grad=input_grad)
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

    def backward(self, grad_y: ArrayLike) -> Array | None:
        if self._x is None:
            raise RuntimeError("Dense.backward called before forward")
        g = as_float_array(grad_y, self.dtype)
        x2 = self._x.reshape(-1, self.n_in)
        g2 = g.reshape(-1, self.n_out)
        # dW and db go into buffers the layer owns (out=): no fresh megabytes per step, which
        # cost page faults; ``grads`` is rebound to them, so backward still overwrites grads
        self.grads["W"] = np.matmul(x2.T, g2, out=self._buffer("W"))  # BP4
        if "b" in self.params:
            # BP3, db = g.sum(axis=0), as a row of ones times g: one BLAS pass, ~3x faster
            self.grads["b"] = np.matmul(self._ones(g2.shape[0]), g2, out=self._buffer("b"))
        if not self.input_grad:
            return None
        return g @ self.params["W"].T  # BP2 (before the activation's derivative)

    def _buffer(self, name: str) -> Array:
        """The layer's own output array for ``grads[name]``, shaped like the parameter."""
        buffer = self._buffers.get(name)
        shape = self.params[name].shape
        if buffer is None or buffer.shape != shape:
            buffer = self._buffers[name] = np.empty(shape, dtype=self.dtype)
        return buffer

    def _ones(self, n: int) -> Array:
        if self._ones_row.shape != (n,):
            self._ones_row = np.ones(n, dtype=self.dtype)
        return self._ones_row

    def __repr__(self) -> str:
        bias = "" if "b" in self.params else ", bias=False"
        input_grad = "" if self.input_grad else ", input_grad=False"
        return f"Dense({self.n_in}, {self.n_out}, dtype={self.dtype.name}{bias}{input_grad})"


class _Activation:
    """Elementwise activation: no parameters, computes in the input's float dtype.

    ``backward(grad_y, out=None)``: ``out`` (``grad_y`` itself, typically) receives the
    result when it has the result's shape and dtype; otherwise a new array is returned.
    """

    returns_new_grad = True
    #: backward(grad_y, out=...) writes into out (see the module docstring)
    backward_takes_out = True

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}

    @staticmethod
    def _out(out: Array | None, like: Array) -> Array | None:
        """``out`` if the result can be written into it as is, else None (allocate)."""
        if out is None or out.shape != like.shape or out.dtype != like.dtype:
            return None
        return out

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

    #: forward returns a new array and keeps no reference to it (only its mask)
    returns_new_output = True
    #: forward(x, out=x) writes y into x (with grad_at_zero == 0: x is not read again)
    forward_takes_out = True

    def __init__(self, grad_at_zero: float = 0.0) -> None:
        super().__init__()
        self.grad_at_zero = grad_at_zero
        self._x: Array | None = None
        self._pos: Array | None = None
        self._zeros: Array = np.zeros(0)

    def forward(self, x: ArrayLike, out: Array | None = None) -> Array:
        x = as_float_array(x)
        # the maximum with a row of zeros, not with the scalar 0: numpy's loop for a scalar
        # operand took 1.3x (64 x 256) to 2x (512 x 256) as long here
        zeros = self._zeros
        if zeros.shape != x.shape[-1:] or zeros.dtype != x.dtype:
            zeros = self._zeros = np.zeros(x.shape[-1:], dtype=x.dtype)
        # x is kept, by reference, for backward to find its exact zeros if grad_at_zero is
        # not 0 then; with grad_at_zero 0 now, y may overwrite x when the caller lets go of
        # it (out=x, from a Sequential), and only a later change of grad_at_zero needs x
        inplace = self._out(out, x) if self.grad_at_zero == 0 else None
        self._x = None if inplace is not None else x
        y = np.maximum(x, zeros, out=inplace)
        # 1.0 where x > 0, else 0.0, in x's dtype: g times a float mask is one SIMD pass,
        # ~1.5x faster than g times a bool mask (which numpy casts chunk by chunk). Read off
        # y while it is still in cache, written into the layer's own array (reused by every
        # forward, read only by backward): two passes over memory in all, no temporaries
        pos = self._pos
        if pos is None or pos.shape != y.shape or pos.dtype != y.dtype:
            pos = self._pos = np.empty(y.shape, dtype=y.dtype)
        np.greater(y, zeros, out=pos)
        return y

    def backward(self, grad_y: ArrayLike, out: Array | None = None) -> Array:
        if self._pos is None:
            raise RuntimeError("ReLU.backward called before forward")
        g = np.asarray(grad_y, dtype=self._pos.dtype)
        c = self.grad_at_zero
        if c == 0:  # the common convention: one pass over g
            return np.multiply(g, self._pos, out=self._out(out, self._pos))
        if self._x is None:
            raise RuntimeError("ReLU.grad_at_zero was changed from 0 after forward, which then "
                               "kept no record of the exact zeros: call forward again")
        slope = self._pos + g.dtype.type(c) * (self._x == 0)
        return np.multiply(g, slope, out=self._out(out, slope))

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

    def backward(self, grad_y: ArrayLike, out: Array | None = None) -> Array:
        if self._slope is None:
            raise RuntimeError("LeakyReLU.backward called before forward")
        g = np.asarray(grad_y, dtype=self._slope.dtype)
        return np.multiply(g, self._slope, out=self._out(out, self._slope))

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

    def backward(self, grad_y: ArrayLike, out: Array | None = None) -> Array:
        if self._y is None:
            raise RuntimeError("Sigmoid.backward called before forward")
        y = self._y
        g = np.asarray(grad_y, dtype=y.dtype)
        return np.multiply(g, y * (1 - y), out=self._out(out, y))


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

    def backward(self, grad_y: ArrayLike, out: Array | None = None) -> Array:
        if self._y is None:
            raise RuntimeError("Tanh.backward called before forward")
        y = self._y
        g = np.asarray(grad_y, dtype=y.dtype)
        return np.multiply(g, 1 - y * y, out=self._out(out, y))


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

    def backward(self, grad_y: ArrayLike, out: Array | None = None) -> Array:
        if self._p is None:
            raise RuntimeError("Softmax.backward called before forward")
        p = self._p
        g = np.asarray(grad_y, dtype=p.dtype)
        return np.multiply(p, g - (g * p).sum(axis=-1, keepdims=True), out=self._out(out, p))
