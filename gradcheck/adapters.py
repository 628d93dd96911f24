"""The front doors check_layer and check_function: each builds a loss, a gradient and a
params dict, and hands them to the one engine, check_params.

The objectives are small classes rather than closures so that ``executor=`` can pickle
them (a bound method carries its object, and with it the arrays the engine perturbs).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.core import run_check
from gradcheck.errors import GradcheckUsageError
from gradcheck.options import Options, Subject
from gradcheck.report import Report

INPUT_NAME = "x"


def _float_input(x: object, what: str) -> np.ndarray:
    """A private float copy of the user's input: theirs is never touched."""
    if not isinstance(x, np.ndarray | float | int | list | tuple) or isinstance(x, bool):
        raise GradcheckUsageError(f"{what} must be a numpy float array, got {type(x).__name__}")
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.floating):
        raise GradcheckUsageError(
            f"{what} has dtype {array.dtype}: gradients need floats; pass "
            f"{what}.astype(np.float64) (or float32 to check the layer in single precision)")
    return np.array(array, copy=True)


def _callable_name(obj: object) -> str:
    named = isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__"))
    kind = obj if named else type(obj)
    module = getattr(kind, "__module__", "") or ""
    qualname = getattr(kind, "__qualname__", type(obj).__name__)
    return f"{module}.{qualname}" if module and module != "builtins" else str(qualname)


class LayerObjective:
    """L = sum(g * layer.forward(x)) over x and the layer's params, for a fixed random g."""

    def __init__(self, layer: Any, x: np.ndarray, upstream: np.ndarray | None,
                 rng: np.random.Generator) -> None:
        for method in ("forward", "backward"):
            if not callable(getattr(layer, method, None)):
                raise GradcheckUsageError(
                    f"layer has no {method}() method: a layer needs forward(x) -> y and "
                    "backward(grad_y) -> grad_x (and optional params/grads dicts)")
        layer_params = getattr(layer, "params", None) or {}
        if not isinstance(layer_params, dict):
            raise GradcheckUsageError(f"layer.params must be a dict of arrays, got "
                                      f"{type(layer_params).__name__}")
        self.input_name = next(name for name in (INPUT_NAME, "input", "x_input", "layer_input")
                               if name not in layer_params)
        self.layer = layer
        self.params: dict[str, np.ndarray] = {self.input_name: x, **layer_params}
        self.upstream = None if upstream is None else np.asarray(upstream, dtype=np.float64)
        self.rng = rng
        self._cast = False

    def _forward(self) -> tuple[np.ndarray, float]:
        y = np.asarray(self.layer.forward(self.params[self.input_name]))
        if self.upstream is None or not self._cast or self.upstream.shape != y.shape:
            self._prepare_upstream(y)
        assert self.upstream is not None
        return y, float(np.sum(self.upstream * y, dtype=np.float64))

    def _prepare_upstream(self, y: np.ndarray) -> None:
        """Draw g at the first call, when y's shape is known; round it to y's dtype once,
        so that the g backward sees is exactly the g the loss uses."""
        if self.upstream is None:
            self.upstream = self.rng.standard_normal(y.shape)
        if self.upstream.shape != y.shape:
            raise GradcheckUsageError(f"upstream has shape {self.upstream.shape} but "
                                      f"layer.forward(x) has shape {y.shape}")
        if np.issubdtype(y.dtype, np.floating):
            self.upstream = self.upstream.astype(y.dtype).astype(np.float64)
        self._cast = True

    def output_shape(self) -> tuple[int, ...] | None:
        """The layer's output shape, once a forward has run."""
        return None if self.upstream is None else tuple(self.upstream.shape)

    def loss(self) -> float:
        return self._forward()[1]

    def grads(self) -> dict[str, Any]:
        y, _ = self._forward()
        assert self.upstream is not None
        g = self.upstream.astype(y.dtype) if np.issubdtype(y.dtype, np.floating) else self.upstream
        grad_x = self.layer.backward(float(g) if g.ndim == 0 else g)
        layer_grads = getattr(self.layer, "grads", None) or {}
        return {self.input_name: grad_x, **layer_grads}


class FunctionObjective:
    """L = f(x), gradient grad(x), over a private copy of x."""

    def __init__(self, f: Callable[[np.ndarray], Any], grad: Callable[[np.ndarray], Any],
                 x: np.ndarray) -> None:
        self.f, self.grad = f, grad
        self.params = {INPUT_NAME: x}

    def loss(self) -> Any:
        return self.f(self.params[INPUT_NAME])

    def grads(self) -> dict[str, Any]:
        return {INPUT_NAME: self.grad(self.params[INPUT_NAME])}


def check_layer(layer: Any, x: np.ndarray, *, upstream: np.ndarray | None = None,
                **options: Any) -> Report:
    """Check a layer's backward against finite differences of its forward.

    The checked loss is L = sum(g * layer.forward(x)) for a random upstream gradient g
    (seeded; pass ``upstream=`` to choose it), with respect to x and every array in
    ``layer.params``. The layer's params are perturbed in place and restored bit for bit;
    x is copied first. Options as for check_params (rtol, atol, mode, kinks, seed, ...).

    >>> import numpy as np, gradcheck as gc
    >>> class Square:
    ...     def forward(self, x): self.x = x; return x ** 2
    ...     def backward(self, g): return 2 * self.x * g
    >>> gc.check_layer(Square(), np.array([[1.0, -2.0]])).ok
    True
    """
    settings = Options(**options)
    x_copy = _float_input(x, "x")
    objective = LayerObjective(layer, x_copy, upstream, settings.rng())
    subject = Subject(
        title=f"layer {_callable_name(layer)}, input {x_copy.shape} {x_copy.dtype.name}",
        loss_label="layer.forward", grads_label="layer.backward (grad_x and layer.grads)",
        call="check_layer(layer, x", input_name=objective.input_name,
        output_shape=objective.output_shape)
    return run_check(objective.loss, objective.grads, objective.params, settings, subject)


def check_function(f: Callable[[np.ndarray], Any], grad: Callable[[np.ndarray], Any],
                   x: np.ndarray, **options: Any) -> Report:
    """Check ``grad(x)`` against finite differences of the scalar function ``f(x)``.

    x is copied; options as for check_params.

    >>> import numpy as np, gradcheck as gc
    >>> gc.check_function(lambda v: float(np.sum(np.sin(v))), np.cos, np.ones(3)).ok
    True
    """
    for name, fn in (("f", f), ("grad", grad)):
        if not callable(fn):
            raise GradcheckUsageError(f"{name} must be callable, got {type(fn).__name__}")
    settings = Options(**options)
    objective = FunctionObjective(f, grad, _float_input(x, "x"))
    x_copy = objective.params[INPUT_NAME]
    subject = Subject(title=f"function {_callable_name(f)}, x {x_copy.shape} {x_copy.dtype.name}",
                      loss_label="f(x)", grads_label="grad(x)", call="check_function(f, grad, x",
                      input_name=INPUT_NAME)
    return run_check(objective.loss, objective.grads, objective.params, settings, subject)
