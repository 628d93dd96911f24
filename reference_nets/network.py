"""``Sequential``: a chain of layers that is itself a layer.

Forward runs the layers in order, backward in reverse, each backward feeding the
previous one (the chain rule, Nielsen's BP2). ``params`` and ``grads`` gather the
sublayers' dicts under per-layer prefixes ``"0.W"``, ``"0.b"``, ``"2.W"`` ... and hold
the *very same arrays* as the sublayers, so a gradient checker that perturbs
``net.params["0.W"]`` in place perturbs the network.

>>> import numpy as np
>>> from reference_nets import Dense, ReLU, Sequential, SoftmaxCrossEntropy
>>> net = Sequential(Dense(4, 8, rng=0), ReLU(), Dense(8, 3, rng=1),
...                  SoftmaxCrossEntropy(labels=np.array([0, 2])))
>>> loss = net.forward(np.ones((2, 4)))      # a float: the head ends the chain
>>> dx = net.backward()                      # grad_y = 1.0 by default
>>> net.params["0.W"] is net.layers[0].params["W"]
True
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from numpy.typing import ArrayLike

from reference_nets.layers import Array

__all__ = ["Layer", "Sequential"]


@runtime_checkable
class Layer(Protocol):
    """The layer protocol gradcheck checks (``params``/``grads`` may be empty dicts)."""

    params: dict[str, Array]
    grads: dict[str, Array]

    def forward(self, x: ArrayLike) -> Any: ...

    def backward(self, grad_y: ArrayLike) -> Any: ...


class Sequential:
    """Layers applied in order; ``params``/``grads`` are prefixed by the layer's index.

    Both are rebuilt on every access from the sublayers' own dicts, so they always show
    the arrays the sublayers use now (no copies). Nested ``Sequential`` s nest prefixes:
    ``"1.0.W"``.
    """

    def __init__(self, *layers: Any) -> None:
        for i, layer in enumerate(layers):
            if not (callable(getattr(layer, "forward", None))
                    and callable(getattr(layer, "backward", None))):
                raise TypeError(f"layer {i} ({layer!r}) has no forward/backward methods")
        self.layers: list[Any] = list(layers)

    def _gather(self, attr: str) -> dict[str, Array]:
        out: dict[str, Array] = {}
        for i, layer in enumerate(self.layers):
            for name, value in (getattr(layer, attr, None) or {}).items():
                out[f"{i}.{name}"] = value
        return out

    @property
    def params(self) -> dict[str, Array]:
        """Every sublayer's parameters, the same array objects, keyed ``"<index>.<name>"``."""
        return self._gather("params")

    @property
    def grads(self) -> dict[str, Array]:
        """Every sublayer's gradients from the last backward, keyed like ``params``."""
        return self._gather("grads")

    def forward(self, x: ArrayLike) -> Any:
        """Run every layer; an output that a layer made and let go of (``returns_new_output``)
        is overwritten by the next layer when that one takes ``out=`` (an activation)."""
        new = False  # is x an array that the layer before made and let go of?
        for layer in self.layers:
            if new and getattr(layer, "forward_takes_out", False):
                x = layer.forward(x, out=x)
            else:
                x = layer.forward(x)
            new = getattr(layer, "returns_new_output", False)
        return x

    def backward(self, grad_y: ArrayLike = 1.0) -> Any:
        """Backpropagate ``grad_y`` through every layer; returns ``dL/dx``.

        Returns None when the first layer returns None (a ``Dense(..., input_grad=False)``:
        training needs no gradient for the data). Only the first layer may do so: a layer
        further in that returns None leaves the layers before it without their ``grad_y``.

        ``grad_y`` itself is never written into. A gradient that a layer with
        ``returns_new_grad = True`` just returned is held by nobody else, so an activation
        that takes ``out=`` writes its own result into it instead of allocating a new one.
        """
        g: Any = grad_y
        new = False  # is g an array that the layer after this one made and let go of?
        last = len(self.layers) - 1
        for i, layer in enumerate(reversed(self.layers)):
            if new and getattr(layer, "backward_takes_out", False):
                g = layer.backward(g, out=g)
            else:
                g = layer.backward(g)
            # (a layer that hands grad_y itself back, a bug or an identity, never makes it new)
            new = getattr(layer, "returns_new_grad", False) and g is not grad_y
            if g is None and i < last:
                index = last - i
                raise ValueError(
                    f"layer {index} ({layer!r}) returned None from backward, but layers "
                    f"0..{index - 1} before it need its dL/dx: only the first layer may skip "
                    "its input gradient (Dense(..., input_grad=False))")
        return g

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"
