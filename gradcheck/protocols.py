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
    """A layer without parameters (ReLU, softmax, a pooling layer, a loss head)."""

    def forward(self, x: Any, /) -> Any:
        """The output y for the input x (any shape; a float or 0-d array for a loss head)."""

    def backward(self, grad_y: Any, /) -> Any:
        """dL/dx for dL/dy = grad_y; also fills ``grads`` when the layer has parameters."""


@runtime_checkable
class LayerWithParams(Layer, Protocol):
    """A layer with parameters: check_layer checks x and every array in ``params``."""

    params: dict[str, Any]
    grads: dict[str, Any]
