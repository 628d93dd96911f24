"""Layers written the way a user writes them: numpy, forward/backward, params/grads dicts.

They follow the gradcheck layer protocol::

    layer.params: dict[str, np.ndarray]   # the trainable arrays
    layer.grads:  dict[str, np.ndarray]   # filled by backward, same keys and shapes
    layer.forward(x) -> y
    layer.backward(grad_y) -> grad_x
    layer.input_shape                      # a sensible input shape for a check

Every constructor accepts ``rng`` (a ``numpy.random.Generator``) and ``dtype`` keyword
arguments, which the gradcheck plugin and command line pass in, and has defaults for
everything else, so the class itself is a factory:

>>> import numpy as np
>>> layer = Dense(rng=np.random.default_rng(0))
>>> layer.forward(np.ones(layer.input_shape)).shape
(8, 3)

``BuggyDense`` is the odd one out: its backward pass flips the sign of one element of
``dW`` (``W[1, 0]``), the kind of slip a hand-unrolled loop makes. Everything else is
correct.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

Array = NDArray[Any]

__all__ = ["BatchNorm1d", "BuggyDense", "Conv1d", "Dense", "dense_relu"]


def _rng(rng: np.random.Generator | None) -> np.random.Generator:
    return rng if rng is not None else np.random.default_rng(0)


class Dense:
    """A fully connected layer ``y = x @ W + b`` (optionally followed by a ReLU).

    Input ``(batch, n_in)``, output ``(batch, n_out)``.

    >>> layer = Dense(4, 3, rng=np.random.default_rng(0))
    >>> sorted(layer.params), layer.params["W"].shape
    (['W', 'b'], (4, 3))
    """

    def __init__(
        self,
        n_in: int = 4,
        n_out: int = 3,
        *,
        relu: bool = False,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        rng = _rng(rng)
        self.relu = relu
        self.input_shape: tuple[int, ...] = (8, n_in)
        self.params: dict[str, Array] = {
            "W": (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
        }
        if bias:
            self.params["b"] = (0.1 * rng.standard_normal(n_out)).astype(dtype)
        self.grads: dict[str, Array] = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x: Array | None = None
        self._z: Array | None = None

    def forward(self, x: Array) -> Array:
        """Return ``x @ W + b`` (through a ReLU if the layer has one)."""
        self._x = x
        z = x @ self.params["W"]
        if "b" in self.params:
            z = z + self.params["b"]
        self._z = z
        return np.maximum(z, 0) if self.relu else z

    def backward(self, grad_y: Array) -> Array:
        """Fill ``self.grads`` and return the gradient with respect to the input."""
        assert self._x is not None and self._z is not None, "call forward first"
        grad_z = grad_y * (self._z > 0) if self.relu else grad_y  # ReLU'(0) = 0
        self.grads["W"] = self._x.T @ grad_z
        if "b" in self.params:
            self.grads["b"] = grad_z.sum(axis=0)
        return grad_z @ self.params["W"].T


class BuggyDense(Dense):
    """Like :class:`Dense`, with one wrong element in ``dW``: ``W[1, 0]`` has its sign flipped.

    >>> layer = BuggyDense(rng=np.random.default_rng(0))
    >>> x = np.ones(layer.input_shape)
    >>> _ = layer.backward(np.ones_like(layer.forward(x)))
    >>> bool(layer.grads["W"][1, 0] == -8.0)   # the right value is +8
    True
    """

    def backward(self, grad_y: Array) -> Array:
        """Dense's backward pass with the bug: the sign of ``dW[1, 0]`` is flipped."""
        grad_x = super().backward(grad_y)
        self.grads["W"][1, 0] = -self.grads["W"][1, 0]  # BUG: a typo in one element
        return grad_x


def dense_relu(
    *, rng: np.random.Generator | None = None, dtype: DTypeLike = np.float64
) -> Dense:
    """A bias-free Dense followed by a ReLU: zero input rows put every unit on its kink.

    This is the classic case where a correct backward (ReLU'(0) = 0) sits outside the
    hull of one-sided derivatives; a checker must not call it wrong.

    >>> dense_relu().relu
    True
    """
    return Dense(4, 3, relu=True, bias=False, rng=rng, dtype=dtype)


class Conv1d:
    """A 1-d convolution (cross-correlation) with stride and zero padding.

    Input ``(batch, in_channels, length)``, weights ``(out_channels, in_channels, kernel)``,
    output ``(batch, out_channels, (length + 2 * padding - kernel) // stride + 1)``.

    >>> conv = Conv1d(2, 3, 3, stride=2, padding=1, rng=np.random.default_rng(0))
    >>> conv.forward(np.ones(conv.input_shape)).shape
    (2, 3, 5)
    """

    def __init__(
        self,
        in_channels: int = 2,
        out_channels: int = 3,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        padding: int = 0,
        rng: np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        rng = _rng(rng)
        self.stride, self.padding, self.kernel_size = stride, padding, kernel_size
        self.input_shape: tuple[int, ...] = (2, in_channels, 9)
        scale = 1.0 / np.sqrt(in_channels * kernel_size)
        self.params: dict[str, Array] = {
            "W": (scale * rng.standard_normal((out_channels, in_channels, kernel_size))).astype(
                dtype
            ),
            "b": (0.1 * rng.standard_normal(out_channels)).astype(dtype),
        }
        self.grads: dict[str, Array] = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._x_shape: tuple[int, ...] = ()
        self._windows: Array | None = None

    def _pad(self, x: Array) -> Array:
        p = self.padding
        return np.pad(x, ((0, 0), (0, 0), (p, p))) if p else x

    def forward(self, x: Array) -> Array:
        """Slide the kernel along the last axis.

        ``y[n, o, l] = sum_{c, k} W[o, c, k] * x_padded[n, c, stride * l + k] + b[o]``
        """
        self._x_shape = x.shape
        windows = np.lib.stride_tricks.sliding_window_view(self._pad(x), self.kernel_size, axis=2)
        windows = windows[:, :, :: self.stride, :]  # (batch, c_in, l_out, kernel)
        self._windows = windows
        y = np.einsum("nclk,ock->nol", windows, self.params["W"])
        return y + self.params["b"][None, :, None]

    def backward(self, grad_y: Array) -> Array:
        """Fill ``self.grads`` and scatter the window gradients back onto the input."""
        assert self._windows is not None, "call forward first"
        self.grads["W"] = np.einsum("nol,nclk->ock", grad_y, self._windows)
        self.grads["b"] = grad_y.sum(axis=(0, 2))
        grad_windows = np.einsum("nol,ock->nclk", grad_y, self.params["W"])
        n, c, length = self._x_shape
        grad_padded = np.zeros((n, c, length + 2 * self.padding), dtype=grad_y.dtype)
        l_out = grad_y.shape[2]
        for k in range(self.kernel_size):
            stop = k + self.stride * (l_out - 1) + 1
            grad_padded[:, :, k : stop : self.stride] += grad_windows[:, :, :, k]
        p = self.padding
        return grad_padded[:, :, p : p + length] if p else grad_padded


class BatchNorm1d:
    """Batch normalization in training mode over a ``(batch, features)`` input.

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with the batch's mean and
    (biased) variance; the backward pass is the compact closed form.

    >>> bn = BatchNorm1d(4, rng=np.random.default_rng(0))
    >>> y = bn.forward(np.random.default_rng(1).standard_normal(bn.input_shape))
    >>> bool(np.allclose((y - bn.params["beta"]).mean(axis=0), 0))
    True
    """

    def __init__(
        self,
        num_features: int = 4,
        eps: float = 1e-5,
        *,
        rng: np.random.Generator | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        rng = _rng(rng)
        self.eps = eps
        self.input_shape: tuple[int, ...] = (8, num_features)
        self.params: dict[str, Array] = {
            "gamma": (1.0 + 0.1 * rng.standard_normal(num_features)).astype(dtype),
            "beta": (0.1 * rng.standard_normal(num_features)).astype(dtype),
        }
        self.grads: dict[str, Array] = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._xhat: Array | None = None
        self._inv_std: Array | None = None

    def forward(self, x: Array) -> Array:
        """Normalize each feature over the batch, then scale by gamma and shift by beta."""
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        self._xhat = (x - mean) * self._inv_std
        return self.params["gamma"] * self._xhat + self.params["beta"]

    def backward(self, grad_y: Array) -> Array:
        """Fill ``self.grads``; ``dx = gamma/(N sigma) (N g - sum g - xhat sum(g xhat))``."""
        assert self._xhat is not None and self._inv_std is not None, "call forward first"
        xhat, n = self._xhat, grad_y.shape[0]
        self.grads["gamma"] = (grad_y * xhat).sum(axis=0)
        self.grads["beta"] = grad_y.sum(axis=0)
        scale = self.params["gamma"] * self._inv_std / n
        return scale * (n * grad_y - grad_y.sum(axis=0) - xhat * (grad_y * xhat).sum(axis=0))
