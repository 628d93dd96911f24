"""What users plug in: the Layer protocol that check_layer is typed with.

A layer is any object with ``forward(x) -> y`` and ``backward(grad_y) -> grad_x``; a
layer with parameters also has ``params`` (name -> float array, read by forward) and
``grads`` (the same names and shapes, filled by backward). Nothing needs to inherit
from these classes: they are structural (typing.Protocol), for mypy and IDEs.

>>> import numpy as np
>>> class Scale:
...     def __init__(self): self.params, self.grads = {"a": np.ones(3)}, {}
...     def forward(self, x): self.x = x; return x * self.params["a"]
...     def backward(self, g): self.grads = {"a": (g * self.x).sum(0)}; return g * self.params["a"]
>>> isinstance(Scale(), Layer), isinstance(Scale(), LayerWithParams)
(True, True)
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Layer(Protocol):
    """A layer without parameters (ReLU, softmax, a pooling layer, a loss head).

    >>> import numpy as np, gradcheck as gc
    >>> class Relu:
    ...     def forward(self, x): self.x = x; return np.maximum(x, 0)
    ...     def backward(self, grad_y): return grad_y * (self.x > 0)
    >>> isinstance(Relu(), Layer), gc.check_layer(Relu(), np.array([[1.0, -2.0]])).ok
    (True, True)
    """

    def forward(self, x: Any, /) -> Any:
        """The output y for the input x (any shape; a float or 0-d array for a loss head)."""

    def backward(self, grad_y: Any, /) -> Any:
        """dL/dx for dL/dy = grad_y; also fills ``grads`` when the layer has parameters."""


@runtime_checkable
class LayerWithParams(Layer, Protocol):
    """A layer with parameters: check_layer checks x and every array in ``params``.

    >>> import numpy as np, gradcheck as gc
    >>> class Bias:
    ...     def __init__(self): self.params, self.grads = {"b": np.zeros(2)}, {}
    ...     def forward(self, x): return x + self.params["b"]
    ...     def backward(self, grad_y):
    ...         self.grads = {"b": grad_y.sum(axis=0)}; return grad_y
    >>> isinstance(Bias(), LayerWithParams), gc.check_layer(Bias(), np.ones((3, 2))).ok
    (True, True)
    """

    params: dict[str, Any]
    grads: dict[str, Any]
