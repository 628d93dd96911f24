"""The front doors check_layer and check_function: each builds a loss, a gradient, a params
dict and a :class:`~gradcheck.options.Subject`, and hands them to the one engine,
:func:`gradcheck.engine.run.run_check`.

The objectives are small classes rather than closures so that ``executor=`` can pickle
them (a bound method carries its object, and with it the arrays the engine perturbs).
"""
from collections.abc import Callable, Mapping
from typing import Any, Unpack

import numpy as np

from gradcheck.engine.run import run_check
from gradcheck.engine.tolerance import precision_dtype
from gradcheck.engine.value import LossValue
from gradcheck.errors import GradcheckUsageError, GradientShapeError
from gradcheck.options import CheckOptions, Options, Subject, front_door
from gradcheck.protocols import Layer
from gradcheck.report import Report
from gradcheck.upstream import Upstream, upstream_array
from gradcheck.validate import check_callable, not_an_array, returned

INPUT_NAME = "x"


def float_input(x: object, what: str) -> np.ndarray:
    """A private float copy of the user's input ``what``: theirs is never touched.

    >>> float_input([[1.0, 2.0], [3.0]], "x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: x is a ragged list (rows of different lengths), ...
    """
    if isinstance(x, str | bytes | bool | dict | set) or x is None or callable(x):
        raise GradcheckUsageError(f"{what} must be a numpy float array, got "
                                  f"{type(x).__name__}")
    if isinstance(x, np.ma.MaskedArray | np.matrix):  # check_params refuses them alike
        raise GradcheckUsageError(
            f"{what} is a {type(x).__name__}: its arithmetic differs from a plain array's, and "
            f"a copy would silently drop that; pass a plain numpy array (np.asarray({what}), "
            f"or {what}.filled(...) for a masked array)")
    try:
        array = np.asarray(x)
    except (ValueError, TypeError):  # ragged nesting; numpy refuses it since 1.24
        raise GradcheckUsageError(
            f"{what} is a ragged {type(x).__name__} (rows of different lengths), not an array: "
            f"pass a numpy float array, e.g. np.array({what}, dtype=np.float64) of a rectangular "
            f"{type(x).__name__}") from None
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        raise GradcheckUsageError(
            f"{what} has dtype {array.dtype}: gradients need floats; pass "
            f"{what}.astype(np.float64) (or float32 to check in single precision)")
    if not np.issubdtype(array.dtype, np.floating):
        raise GradcheckUsageError(f"{what} must be a numpy float array, got "
                                  f"{type(x).__name__} of dtype {array.dtype}")
    if array.size == 0:
        raise GradcheckUsageError(f"{what} is empty (shape {array.shape}): nothing to check")
    return np.array(array, copy=True)


def callable_name(obj: object) -> str:
    """``module.qualname`` of a function or class, or of an instance's class."""
    named = isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__"))
    kind = obj if named else type(obj)
    module = getattr(kind, "__module__", "") or ""
    qualname = getattr(kind, "__qualname__", type(obj).__name__)
    return f"{module}.{qualname}" if module and module != "builtins" else str(qualname)


def input_name_beside(params: Mapping[str, object]) -> str:
    """The name the input x goes by among the layer's params: "x", or "input", "x_input",
    ... the first that no param has taken (a layer may well call a param "x").

    >>> input_name_beside({"x": 1, "input": 2})
    'x_input'
    """
    for name in (INPUT_NAME, "input", "x_input", "layer_input"):
        if name not in params:
            return name
    return next(f"x_{k}" for k in range(len(params) + 1) if f"x_{k}" not in params)


def output_array(value: object, label: str) -> np.ndarray:
    """What a forward returned, as a real numeric array, or a usage error naming ``label``."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":  # once per evaluation
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "fiu":  # a loss layer's scalar
        return np.asarray(value)
    if not_an_array(value):
        raise GradcheckUsageError(
            f"{label} returned {returned(value)}: forward must return its output (a numpy "
            "float array; a float for a loss)")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise GradcheckUsageError(f"{label} returned a ragged {type(value).__name__}, not an "
                                  "array: return a numpy float array") from None
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise GradcheckUsageError(f"{label} returned {type(value).__name__} of dtype "
                                  f"{array.dtype}: forward must return a real float array")
    return array


class OutputLoss:
    """L = sum_i sum(g_i * y_i) over a front door's outputs y_i and upstream gradients g_i,
    summed in float64, as a :class:`~gradcheck.engine.calls.LossValue` that also says:

    - a bound on its rounding: for outputs coarser than float64, one rounding of each
      output that differs from the outputs at the point (the others cancel in every
      difference of two losses), or where none does, one of the largest, and apart, one
      of each other output (a change below its spacing was lost there); for float64
      outputs, eps sum |g y| at the point (terms of either sign cancel in L, their
      roundings do not: g = (1, -1) on y = (1, 1 + 1e-13));
    - how many outputs differ from the outputs at the point, and one of them: a move that
      changes one output of several only is a coordinate of an elementwise map.

    The outputs at the point are the first ones it sees (the engine's first evaluation is
    at the point). ``precision`` gives the precision each output computes in.
    """

    def __init__(self, precision: Any) -> None:
        self.precision = precision
        self._at_point: list[np.ndarray] | None = None
        self._rounding64: float | None = None
        self._dtypes64: tuple[np.dtype, ...] = ()  # output dtypes seen to compute in float64

    def __call__(self, outputs: list[np.ndarray], upstreams: list[np.ndarray]) -> float:
        # (this runs once per loss evaluation: a scalar output, a loss layer's, takes no
        # numpy reduction, which costs more than the rest of the sum)
        terms = [g * y for g, y in zip(upstreams, outputs, strict=True)]
        value = 0.0
        for t in terms:
            value += float(t.item()) if t.size == 1 else float(t.sum(dtype=np.float64))
        for y in outputs:
            if y.dtype.kind != "f":
                return value
        if self._at_point is None:
            self._at_point = [np.array(y, copy=True) for y in outputs]
        # (a single output moved or not: which input moved it is the engine's to read, and
        # only an input shaped like it, of one element, can be an elementwise map's)
        changed, where, offset = 0, -1, 0
        for y, y0 in zip(outputs, self._at_point, strict=True):
            if y.size == 1 and y0.size == 1:
                moved = np.arange(1) if y.item() != y0.item() else np.arange(0)
            else:
                moved = (np.flatnonzero(y.reshape(-1) != y0.reshape(-1))
                         if y.shape == y0.shape else np.arange(y.size))
            if len(moved) and where < 0:
                where = offset + int(moved[0])
            changed += len(moved)
            offset += y.size
        rounding, hidden = self._rounding(outputs, upstreams, terms)
        return LossValue(value, rounding, changed, where, hidden)

    def _rounding(self, outputs: list[np.ndarray], upstreams: list[np.ndarray],
                  terms: list[np.ndarray]) -> tuple[float, float]:
        """(the rounding of the value, what unchanged outputs could hide)."""
        dtypes = tuple(y.dtype for y in outputs)
        if dtypes == self._dtypes64 or all(self.precision(y).itemsize >= 8 for y in outputs):
            # taken at the point once: a step moves it by a part in 1e5, and this runs once
            # per evaluation
            self._dtypes64 = dtypes
            if self._rounding64 is None:
                self._rounding64 = sum(float(np.finfo(y.dtype).eps) * float(np.abs(t).sum())
                                       for y, t in zip(outputs, terms, strict=True))
            return self._rounding64, 0.0
        assert self._at_point is not None
        changed = unchanged = largest = 0.0
        for y, g, t, y0 in zip(outputs, upstreams, terms, self._at_point, strict=True):
            info = np.finfo(self.precision(y))
            # one rounding of an output: eps |y|, plus the spacing of the subnormals where
            # |y| is tiny (1e-41 in float32 keeps 3 digits)
            weighted = (float(info.eps) * np.abs(t, dtype=np.float64)
                        + float(info.smallest_subnormal) * np.abs(g))
            moved = y != y0 if y.shape == y0.shape else np.ones(y.shape, dtype=bool)
            changed += float(np.sum(weighted[moved]))
            unchanged += float(np.sum(weighted[~moved]))
            largest = max(largest, float(np.max(weighted, initial=0.0)))
        # where no output changed, one rounding of the largest: a change smaller than an
        # output's resolution leaves it as it was, and is lost just the same. Any output
        # left as it was may have lost one that way: that bounds what a mismatch must clear
        # to be a bug (not what vouches: outputs a move cannot reach lose nothing, and
        # most outputs of a large layer are such)
        if changed > 0:
            return changed, unchanged
        return largest, unchanged - largest


class LayerObjective:
    """L = sum(g * layer.forward(x)) over x and the layer's params, for a fixed random g."""

    def __init__(self, layer: Any, x: np.ndarray, upstream: object,
                 rng: np.random.Generator) -> None:
        if isinstance(layer, type):
            raise GradcheckUsageError(
                f"layer is the class {layer.__qualname__}, not a layer: pass an instance, "
                f"e.g. {layer.__qualname__}(...)")
        for method in ("forward", "backward"):
            if not callable(getattr(layer, method, None)):
                raise GradcheckUsageError(
                    f"layer ({type(layer).__name__}) has no {method}() method: a layer needs "
                    "forward(x) -> y and backward(grad_y) -> grad_x (and optional params/grads "
                    "dicts)")
        check_callable(layer.forward, "layer.forward", 1, "the input x")
        check_callable(layer.backward, "layer.backward", 1, "the upstream gradient dL/dy")
        layer_params = getattr(layer, "params", None)
        if layer_params is None:
            layer_params = {}
        if not isinstance(layer_params, dict):
            raise GradcheckUsageError(f"layer.params must be a dict name -> float array, got "
                                      f"{type(layer_params).__name__}")
        self.input_name = input_name_beside(layer_params)
        self.layer = layer
        self.params: dict[str, np.ndarray] = {self.input_name: x, **layer_params}
        self.upstream = Upstream(None if upstream is None
                                 else upstream_array(upstream, "the output of layer.forward(x)"),
                                 "layer.forward(x)")
        self.rng = rng
        self._precisions: dict[np.dtype, np.dtype] = {}  # output dtype -> precision in play
        self._loss = OutputLoss(self._precision)

    def _forward(self) -> tuple[np.ndarray, np.ndarray]:
        """The layer's output at the current params, and the upstream gradient fitted to it."""
        y = output_array(self.layer.forward(self.params[self.input_name]), "layer.forward(x)")
        return y, self.upstream.fit(y, self.rng)

    def _precision(self, y: np.ndarray) -> np.dtype:
        """The coarser of the output's dtype and the finest of the params' (the input
        among them): a float32 layer that hands back float64 (or a Python float) computed
        in float32 all the same; one with any float64 param computed in float64 (numpy
        casts up), where that is all that is known."""
        if y.dtype not in self._precisions:  # once per output dtype: this runs per loss
            finest = min((p.dtype for p in self.params.values()),
                         key=lambda dtype: np.finfo(dtype).eps)
            self._precisions[y.dtype] = precision_dtype(y.dtype, finest)
        return self._precisions[y.dtype]

    def output_shape(self) -> tuple[int, ...] | None:
        """The layer's output shape, once a forward has run."""
        value = self.upstream.value
        return None if value is None else tuple(value.shape)

    def loss(self) -> float:
        y, g = self._forward()
        return self._loss([y], [g])

    def grads(self) -> dict[str, Any]:
        y, _ = self._forward()
        grad_x = self.layer.backward(self.upstream.for_backward(y))
        if grad_x is None:
            raise GradientShapeError(
                f"layer.backward returned None (a missing return?) instead of dL/dx, the "
                f"gradient of the input {self.input_name!r}: check_layer checks the input "
                "too, so backward must "
                "return its input gradient (a layer that skips it "
                "for training, like reference_nets.Dense(input_grad=False), is checked with "
                "input_grad=True: the parameter gradients come from the same code)")
        layer_grads = getattr(self.layer, "grads", None)
        if layer_grads is None:
            layer_grads = {}
        if not isinstance(layer_grads, dict):
            raise GradientShapeError(
                f"layer.grads must be a dict name -> gradient array with the keys of "
                f"layer.params, got {type(layer_grads).__name__}")
        refuse_non_array(grad_x, "layer.backward", f"dL/d{self.input_name}, a float array "
                         f"like {self.input_name}")
        for name, gradient in layer_grads.items():
            if not_an_array(gradient):
                what = "None" if gradient is None else returned(gradient)
                raise GradientShapeError(
                    f"layer.grads[{name!r}] is {what}: backward must set it to dL/d{name}, a "
                    f"float array like layer.params[{name!r}]")
        return {self.input_name: grad_x, **layer_grads}


class FunctionObjective:
    """L = f(x), gradient grad(x), over a private copy of x."""

    def __init__(self, f: Callable[[np.ndarray], Any], grad: Callable[[np.ndarray], Any],
                 x: np.ndarray) -> None:
        self.f, self.grad = f, grad
        self.params = {INPUT_NAME: x}

    def loss(self) -> Any:
        value = self.f(self.params[INPUT_NAME])
        if not_an_array(value):
            raise GradcheckUsageError(f"f(x) returned {returned(value)}: f must return the "
                                      "scalar loss at x")
        return value

    def grads(self) -> dict[str, Any]:
        gradient = self.grad(self.params[INPUT_NAME])
        refuse_non_array(gradient, "grad(x)", "the gradient of f at x, a float array like x")
        return {INPUT_NAME: gradient}


def refuse_non_array(gradient: object, label: str, wanted: str) -> None:
    """A gradient that is None, text, a dict or a generator, named as what it is (a
    shape check would only say "shape ()").

    >>> refuse_non_array(None, "grad(x)", "the gradient of f at x, a float array like x")
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradientShapeError: grad(x) returned None (a missing return?): it must \
return the gradient of f at x, a float array like x
    """
    if not_an_array(gradient):
        raise GradientShapeError(f"{label} returned {returned(gradient)}: it must return "
                                 f"{wanted}")


def layer_check(layer: Layer, x: object, upstream: object, options: Options
                ) -> tuple[LayerObjective, Subject]:
    """What check_layer hands to the engine (the plugin and the command line use it too)."""
    x_copy = float_input(x, "x")
    objective = LayerObjective(layer, x_copy, upstream, options.rng())
    subject = Subject(
        title=f"layer {callable_name(layer)}, input {x_copy.shape} {x_copy.dtype.name}",
        loss_label="layer.forward", grads_label="layer.backward (grad_x and layer.grads)",
        call="check_layer(layer, x", input_name=objective.input_name,
        output_shape=objective.output_shape)
    return objective, subject


@front_door
def check_layer(
    layer: Layer,
    x: np.ndarray,
    *,
    upstream: np.ndarray | None = None,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check a layer's backward against finite differences of its forward.

    The checked loss is L = sum(g * layer.forward(x)) for a random upstream gradient g
    (seeded; pass ``upstream=`` to choose it), with respect to x and every array in
    ``layer.params`` (see :class:`gradcheck.protocols.Layer`). The layer's params are
    perturbed in place and restored bit for bit; x is copied first. Returns the report
    (``assert_layer`` raises unless it is ok).

    >>> import numpy as np, gradcheck as gc
    >>> class Square:
    ...     def forward(self, x): self.x = x; return x ** 2
    ...     def backward(self, g): return 2 * self.x * g
    >>> gc.check_layer(Square(), np.array([[1.0, -2.0]])).ok
    True
    """
    checking = Options(**options)
    objective, subject = layer_check(layer, x, upstream, checking)
    return run_check(objective.loss, objective.grads, objective.params, checking, subject)


@front_door
def check_function(
    f: Callable[[np.ndarray], Any],
    grad: Callable[[np.ndarray], Any],
    x: np.ndarray,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check ``grad(x)`` (an array like x) against finite differences of the scalar
    function ``f(x)``. x is copied first. Returns the report (``assert_function`` raises
    unless it is ok).

    >>> import numpy as np, gradcheck as gc
    >>> gc.check_function(lambda v: float(np.sum(np.sin(v))), np.cos, np.ones(3)).ok
    True
    """
    checking = Options(**options)
    check_callable(f, "f", 1, "x; it returns the scalar f(x)")
    check_callable(grad, "grad", 1, "x; it returns the gradient of f at x")
    objective = FunctionObjective(f, grad, float_input(x, "x"))
    x_copy = objective.params[INPUT_NAME]
    subject = Subject(title=f"function {callable_name(f)}, x {x_copy.shape} {x_copy.dtype.name}",
                      loss_label="f(x)", grads_label="grad(x)", call="check_function(f, grad, x",
                      input_name=INPUT_NAME)
    return run_check(objective.loss, objective.grads, objective.params, checking, subject)
