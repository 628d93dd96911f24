"""Loss heads: layers whose forward returns a scalar (a Python float).

``backward(grad_y=1.0)`` returns ``dC/dx`` scaled by ``grad_y``, so a head can be the last
layer of a :class:`~reference_nets.Sequential` and a network's backward starts with
``net.backward()``. The target (or labels) is a public attribute: set a new one for each
mini-batch.

>>> import numpy as np
>>> from reference_nets import SoftmaxCrossEntropy
>>> head = SoftmaxCrossEntropy(labels=np.array([0, 1]))
>>> round(head.forward(np.zeros((2, 2))), 6)  # log 2
0.693147
>>> head.backward()
array([[-0.25,  0.25],
       [ 0.25, -0.25]])
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from reference_nets.layers import Array, as_float_array

__all__ = ["BinaryCrossEntropy", "QuadraticCost", "SoftmaxCrossEntropy"]


def _scalar(grad_y: ArrayLike, dtype: np.dtype[Any]) -> Any:
    g = np.asarray(grad_y, dtype=dtype)
    if g.size != 1:
        raise ValueError(f"a loss head's grad_y must be a scalar, got shape {g.shape}")
    return g.reshape(())[()]


class _Head:
    #: backward returns a new array and keeps no reference to it (see reference_nets.layers)
    returns_new_grad = True

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}


class QuadraticCost(_Head):
    """``C = 1/2 sum (y - target)^2`` over every element, no batch mean; ``dC/dy = y - target``.

    This is the cost of the classic hand-derivation questions (and of Nielsen's
    ``backprop`` for one mini-batch, which sums over its samples).

    >>> cost = QuadraticCost(target=np.array([1.0, 2.0]))
    >>> cost.forward(np.array([2.0, 0.0]))
    2.5
    >>> cost.backward()
    array([ 1., -2.])
    """

    def __init__(self, target: ArrayLike) -> None:
        super().__init__()
        self.target = np.asarray(target)
        self._diff: Array | None = None

    def forward(self, x: ArrayLike) -> float:
        y = as_float_array(x)
        t = np.asarray(self.target, dtype=y.dtype)
        if np.broadcast_shapes(y.shape, t.shape) != y.shape:
            raise ValueError(f"target of shape {t.shape} does not fit outputs of shape {y.shape}")
        self._diff = y - t
        return float(0.5 * np.sum(self._diff * self._diff))

    def backward(self, grad_y: ArrayLike = 1.0) -> Array:
        if self._diff is None:
            raise RuntimeError("QuadraticCost.backward called before forward")
        return self._diff * _scalar(grad_y, self._diff.dtype)

    def __repr__(self) -> str:
        return f"QuadraticCost(target shape {self.target.shape})"


class SoftmaxCrossEntropy(_Head):
    """Softmax and cross-entropy fused: ``C = -1/N sum_i log softmax(x_i)[labels_i]``.

    ``x`` holds logits of shape ``(N, K)``, ``labels`` integers of shape ``(N,)``.
    Computed with log-sum-exp after subtracting each row's maximum, so logits of 1000
    stay finite. The gradient is the famous ``(p - onehot(labels)) / N``.

    >>> head = SoftmaxCrossEntropy(np.array([1]))
    >>> head.forward(np.array([[1000.0, 0.0]]))
    1000.0
    >>> head.backward()
    array([[ 1., -1.]])
    """

    def __init__(self, labels: ArrayLike) -> None:
        super().__init__()
        self.labels = np.asarray(labels)
        self._p: Array | None = None
        self._rows = np.arange(0)
        self._flat = np.arange(0)

    def forward(self, x: ArrayLike) -> float:
        x = as_float_array(x)
        labels = self.labels
        if x.ndim != 2:
            raise ValueError(f"SoftmaxCrossEntropy expects logits of shape (N, K), got {x.shape}")
        n, k = x.shape
        if labels.shape != (n,) or labels.dtype.kind not in "iu":
            raise ValueError(
                f"labels must be integers of shape ({n},), got {labels.dtype} {labels.shape}"
            )
        # one reduction checks both ends: seen as unsigned, a negative label is huge
        if n and labels.view(f"u{labels.dtype.itemsize}").max() >= k:
            raise ValueError(f"labels must lie in [0, {k}), got {labels.min()}..{labels.max()}")
        # Work on the transpose, (K, N): numpy reduces a short last axis row by row, slowly
        # (27 us for the max of 512 x 10 logits), and axis 0 whole rows at a time (3 us)
        z = np.array(x.T, order="C")  # always a copy: x itself is never written
        z -= z.max(axis=0)  # every sample's largest logit becomes 0
        if self._rows.shape != (n,):
            self._rows = np.arange(n)
        # z[labels[i], i], the label's logit of every sample, by its flat index in z
        self._flat = labels * n + self._rows
        picked = z.take(self._flat)
        e = np.exp(z, out=z)  # z is not needed any more
        s = e.sum(axis=0)  # in [1, K]: log is safe
        e /= s
        self._p = e.T  # p: a (N, K) view
        # sum / n rather than np.mean: the same number, without np.mean's 2-3 us of Python
        return float(np.log(s).sum() - picked.sum()) / n if n else float("nan")

    def backward(self, grad_y: ArrayLike = 1.0) -> Array:
        if self._p is None:
            raise RuntimeError("SoftmaxCrossEntropy.backward called before forward")
        p = self._p
        scale = _scalar(grad_y, p.dtype) / p.dtype.type(p.shape[0])
        grad_t = p.T * scale  # (K, N), like p's own memory
        grad_t.ravel()[self._flat] -= scale  # (p - onehot) / N, by the flat indices of forward
        return grad_t.T

    def __repr__(self) -> str:
        return f"SoftmaxCrossEntropy(labels shape {self.labels.shape})"


class BinaryCrossEntropy(_Head):
    """Binary cross-entropy on logits, summed over outputs and averaged over the batch.

    For logits ``x`` of shape ``(N, ...)`` and targets ``t`` in [0, 1] (same shape)::

        C = 1/N sum [ -t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)) ]
          = 1/N sum [ max(x, 0) - x t + log(1 + exp(-|x|)) ]      (the stable form)
        dC/dx = (sigmoid(x) - t) / N

    With one output per sample (shape ``(N,)`` or ``(N, 1)``) this is the usual batch mean.

    >>> head = BinaryCrossEntropy(np.array([1.0, 0.0]))
    >>> head.forward(np.array([1000.0, -1000.0]))
    0.0
    """

    def __init__(self, target: ArrayLike) -> None:
        super().__init__()
        self.target = np.asarray(target)
        self._residual: Array | None = None
        self._n = 1

    def forward(self, x: ArrayLike) -> float:
        x = as_float_array(x)
        t = np.asarray(self.target, dtype=x.dtype)
        if np.broadcast_shapes(x.shape, t.shape) != x.shape:
            raise ValueError(f"target of shape {t.shape} does not fit logits of shape {x.shape}")
        self._n = x.shape[0] if x.ndim else 1
        e = np.exp(-np.abs(x))  # in (0, 1]
        one = x.dtype.type(1)
        sig = np.where(x >= 0, one / (one + e), e / (one + e))
        self._residual = sig - t
        return float(np.sum(np.maximum(x, 0) - x * t + np.log1p(e)) / self._n)

    def backward(self, grad_y: ArrayLike = 1.0) -> Array:
        if self._residual is None:
            raise RuntimeError("BinaryCrossEntropy.backward called before forward")
        r = self._residual
        return r * (_scalar(grad_y, r.dtype) / r.dtype.type(self._n))

    def __repr__(self) -> str:
        return f"BinaryCrossEntropy(target shape {self.target.shape})"
