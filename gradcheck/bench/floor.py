"""The floor of a backward: the matrix products it cannot do without, timed alone.

A layer is **Dense-like** at a given input when all of these hold, checked on the values
of one forward and backward (nothing is taken from its name or class):

1. its input ``x`` and output ``y`` are float arrays with the same leading shape,
   ``(..., n_in)`` and ``(..., n_out)``;
2. exactly one of its ``params`` is 2-D, ``W``, of shape ``(n_in, n_out)`` (or
   ``(n_out, n_in)``, torch's layout), and every other param is 1-D of length ``n_out``;
3. ``y`` equals ``x @ W`` (``x @ W.T``) plus the sum of those 1-D params, to within the
   rounding of the product in the layer's dtype.

For such a layer the floor of backward is ``dW = x.T @ g`` and, when backward returns an
input gradient, ``dx = g @ W.T``: the products on the layer's own ``x`` and upstream
``g``, written into preallocated outputs (``np.matmul(..., out=)``) so that only the
products are timed, no allocation and no elementwise work (``db``, an activation's mask).
The step's floor adds the forward's ``x @ W``. For any other layer no floor is known, and
the report says why instead of guessing one.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x, W = rng.standard_normal((8, 4)), rng.standard_normal((4, 3))
>>> floor = dense_floor({"W": W}, x, x @ W, np.ones((8, 3)), np.ones((8, 4)))
>>> floor.describe()
'dW = x.T @ g, dx = g @ W.T at x (8, 4), W (4, 3)'
>>> dense_floor({"W": W}, x, np.tanh(x @ W), np.ones((8, 3)), None).reason
'its output is not x @ W (+ its 1-D params): W is not used as one matrix product'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DenseFloor", "NoFloor", "dense_floor"]


@dataclass(frozen=True)
class NoFloor:
    """Why no floor is known for a layer."""

    reason: str


@dataclass
class DenseFloor:
    """The products of one Dense-like layer, on its own operands, into preallocated outputs.

    ``x``: the input as ``(m, n_in)``; ``g``: the upstream gradient as ``(m, n_out)``;
    ``W``: the weight as the layer holds it; ``transposed``: held as ``(n_out, n_in)``.
    """

    x: np.ndarray
    g: np.ndarray
    W: np.ndarray
    transposed: bool
    input_grad: bool
    name: str = "W"
    _dW: np.ndarray = field(init=False, repr=False)
    _dx: np.ndarray = field(init=False, repr=False)
    _y: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._dW = np.empty_like(self.W)
        self._dx = np.empty_like(self.x)
        self._y = np.empty((self.x.shape[0], self.g.shape[1]), dtype=self.W.dtype)

    def backward(self) -> None:
        """dW = x.T @ g (g.T @ x for a transposed W); dx = g @ W.T when backward makes dx."""
        if self.transposed:
            np.matmul(self.g.T, self.x, out=self._dW)
            if self.input_grad:
                np.matmul(self.g, self.W, out=self._dx)
        else:
            np.matmul(self.x.T, self.g, out=self._dW)
            if self.input_grad:
                np.matmul(self.g, self.W.T, out=self._dx)

    def forward(self) -> None:
        """y = x @ W (x @ W.T for a transposed W)."""
        np.matmul(self.x, self.W.T if self.transposed else self.W, out=self._y)

    def step(self) -> None:
        """The forward's product, then the backward's."""
        self.forward()
        self.backward()

    def describe(self) -> str:
        """The products in words, with the shapes they run at."""
        n = self.name
        products = [f"d{n} = g.T @ x" if self.transposed else f"d{n} = x.T @ g"]
        if self.input_grad:
            products.append(f"dx = g @ {n}" if self.transposed else f"dx = g @ {n}.T")
        return f"{', '.join(products)} at x {self.x.shape}, {n} {self.W.shape}"


def dense_floor(params: Any, x: Any, y: Any, g: Any, dx: Any) -> DenseFloor | NoFloor:
    """The floor of a layer from one forward (``x`` -> ``y``) and backward (``g`` -> ``dx``,
    None when backward makes no input gradient), or :class:`NoFloor` with the reason
    (see the module docstring for the rule)."""
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        return NoFloor("its input or output is not an array")
    if not (np.issubdtype(x.dtype, np.floating) and np.issubdtype(y.dtype, np.floating)):
        return NoFloor("its input or output is not a float array")
    if x.ndim < 1 or y.ndim != x.ndim or x.shape[:-1] != y.shape[:-1]:
        return NoFloor(f"its output {y.shape} does not keep the leading shape of its input "
                       f"{x.shape}")
    n_in, n_out = x.shape[-1], y.shape[-1]
    arrays = {k: v for k, v in (params or {}).items() if isinstance(v, np.ndarray)}
    matrices = {k: v for k, v in arrays.items() if v.ndim == 2}
    if len(matrices) != 1:
        return NoFloor(f"it has {len(matrices)} 2-D params, not exactly one weight matrix")
    [(name, W)] = matrices.items()
    others = {k: v for k, v in arrays.items() if k != name}
    if W.shape == (n_in, n_out):
        transposed = False
    elif W.shape == (n_out, n_in):
        transposed = True
    else:
        return NoFloor(f"its 2-D param {name} {W.shape} is not (input features, output "
                       f"features) = ({n_in}, {n_out})")
    if any(v.shape != (n_out,) for v in others.values()):
        return NoFloor(f"it has params other than {name} and 1-D params of length {n_out}")
    if not isinstance(g, np.ndarray) or g.shape != y.shape:
        return NoFloor("its upstream gradient is not an array shaped like its output")
    x2 = np.ascontiguousarray(x.reshape(-1, n_in), dtype=W.dtype)
    Wm = W.T if transposed else W
    expected = x2 @ Wm
    for v in others.values():
        expected = expected + v
    eps = float(np.finfo(np.result_type(W.dtype, x.dtype, y.dtype)).eps)
    scale = float(np.max(np.abs(x2) @ np.abs(Wm), initial=0.0)) + sum(
        float(np.max(np.abs(v), initial=0.0)) for v in others.values())
    error = float(np.max(np.abs(y.reshape(-1, n_out) - expected), initial=0.0))
    if not error <= 4 * eps * (n_in + len(others) + 1) * scale:
        return NoFloor(f"its output is not x @ {name} (+ its 1-D params): {name} is not used "
                       "as one matrix product")
    g2 = np.ascontiguousarray(g.reshape(-1, n_out), dtype=W.dtype)
    return DenseFloor(x2, g2, W, transposed, dx is not None, name)
