"""The front doors for backprop written as function pairs, the most copied style:

- ``check_pair(forward, backward, *args)`` for ``out, cache = forward(*args)`` and
  ``dx, dw, ... = backward(dout, cache)`` (also ``(out1, ..., outk, cache)`` and
  ``backward(dout1, ..., doutk, cache)``);
- ``check_loss(fn, x, *args)`` for ``loss, dx = fn(x, *args)``.

Each builds a loss, a gradient and a params dict from the arguments and hands them to the
one engine, :func:`gradcheck.core.run_check`. What is checked and what passes through:

- every float numpy array argument is checked (check_pair) — a private copy of it, named
  from forward's signature (``x``, ``w``, ``b``; ``arg0``... when there is none);
- everything else passes through unperturbed: ints, integer arrays (labels, indices),
  bool masks, None, Python floats, strings, and dicts, which are deep-copied for every
  call (a ``bn_param`` whose running mean forward updates, a ``dropout_param`` whose seed
  makes the mask the same each call).

(No ``from __future__ import annotations``: help() then shows the allowed values of mode
and kinks.)
"""
import copy
import inspect
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

from gradcheck.adapters import (
    Upstream,
    callable_name,
    check_callable,
    float_input,
    output_array,
    upstream_array,
)
from gradcheck.core import run_check
from gradcheck.errors import GradcheckUsageError, GradientShapeError
from gradcheck.options import (
    DEFAULT_KINKS,
    DEFAULT_MODE,
    DEFAULT_SEED,
    KinkMode,
    Mode,
    Options,
    ProgressCallback,
    Subject,
    front_door,
)
from gradcheck.report import Report

_CHECKED, _COPIED, _PASSED = "checked", "copied", "passed"


def parameter_names(fn: Callable[..., Any], count: int, fallback: str = "arg") -> list[str]:
    """Names for the first ``count`` positional arguments of ``fn``, from its signature
    (``args[0]``... for a ``*args``; ``arg0``... when there is no signature), all distinct.

    >>> def affine_forward(x, w, b): ...
    >>> parameter_names(affine_forward, 3), parameter_names(lambda *a: 0, 2)
    (['x', 'w', 'b'], ['a[0]', 'a[1]'])
    """
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins and C callables may have no signature
        parameters = []
    names: list[str] = []
    for i in range(count):
        name = f"{fallback}{i}"
        if i < len(parameters) and parameters[i].kind in (parameters[i].POSITIONAL_ONLY,
                                                          parameters[i].POSITIONAL_OR_KEYWORD):
            name = parameters[i].name
        else:
            rest = next(iter([p for p in parameters if p.kind is p.VAR_POSITIONAL]), None)
            if rest is not None:
                before = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                             for p in parameters)
                name = f"{rest.name}[{i - before}]"
        while name in names:
            name += "_"
        names.append(name)
    return names


def _describe(value: object) -> str:
    """A short description of a passed-through argument, for messages."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array {value.shape}"
    return type(value).__name__


class Arguments:
    """The positional arguments of the user's function: which are checked (a private float
    copy each, perturbed by the engine), which are deep-copied per call, which pass as is."""

    def __init__(self, names: list[str], args: Sequence[object], checked: Sequence[bool]
                 ) -> None:
        self.names = names
        self.kinds: list[str] = []
        self.values: list[object] = []
        self.params: dict[str, np.ndarray] = {}
        for name, value, check in zip(names, args, checked, strict=True):
            if check:
                self.params[name] = float_input(value, name)
                self.kinds.append(_CHECKED)
                self.values.append(None)
            else:
                mutable = isinstance(value, dict | list)
                self.kinds.append(_COPIED if mutable else _PASSED)
                # our own copy of a dict/list: the caller may change theirs between now and
                # a lazy evaluation (an executor), and each call gets a fresh deep copy of it
                self.values.append(copy.deepcopy(value) if mutable else value)

    def call(self) -> list[object]:
        """The arguments of one call: the live checked arrays, fresh copies of dicts."""
        return [self.params[name] if kind == _CHECKED
                else copy.deepcopy(value) if kind == _COPIED else value
                for name, kind, value in zip(self.names, self.kinds, self.values, strict=True)]

    @property
    def checked(self) -> list[str]:
        return [name for name, kind in zip(self.names, self.kinds, strict=True)
                if kind == _CHECKED]

    def passed_note(self) -> str:
        """Which arguments pass through unchecked, and why: for count errors."""
        passed = [f"{name} ({_describe(value)})"
                  for name, kind, value in zip(self.names, self.kinds, self.values, strict=True)
                  if kind != _CHECKED]
        if not passed:
            return ""
        return (f"; unchecked, passed through: {', '.join(passed)} (only float numpy arrays "
                "are checked: pass an input as x.astype(np.float64) to check it)")


def _is_checked(value: object) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


class PairObjective:
    """L = sum_i sum(g_i * out_i) for forward's outputs out_i and fixed random g_i; the
    gradient is what backward(g_1, ..., g_k, cache) returns, one array per float argument."""

    def __init__(self, forward: Callable[..., Any], backward: Callable[..., Any],
                 arguments: Arguments, upstream: object, rng: np.random.Generator) -> None:
        self.forward, self.backward = forward, backward
        self.arguments = arguments
        self.params = arguments.params
        self.forward_label = f"{callable_name_short(forward)}({', '.join(arguments.names)})"
        self.backward_label = f"{callable_name_short(backward)}({_signature_text(backward)})"
        self.given = upstream
        self.upstreams: list[Upstream] | None = None
        self._backward_checked = False
        self.rng = rng

    def _outputs(self) -> tuple[list[np.ndarray], object]:
        result = self.forward(*self.arguments.call())
        if not isinstance(result, tuple | list) or len(result) < 2:
            raise GradcheckUsageError(
                f"{self.forward_label} returned {_what(result)}: check_pair needs forward to "
                "return (out, cache), or (out1, ..., outk, cache), and backward to take "
                "(dout, cache) or (dout1, ..., doutk, cache). For a function returning "
                "(loss, dx) use check_loss; for a layer object, check_layer")
        *outputs, cache = result
        arrays = [output_array(out, self.forward_label if len(outputs) == 1
                               else f"{self.forward_label} (output {i + 1} of {len(outputs)})")
                  for i, out in enumerate(outputs)]
        if self.upstreams is None:
            self.upstreams = self._make_upstreams(len(arrays))
        elif len(self.upstreams) != len(arrays):
            raise GradcheckUsageError(f"{self.forward_label} returned {len(arrays)} outputs "
                                      f"this time and {len(self.upstreams)} before")
        return arrays, cache

    def _make_upstreams(self, count: int) -> list[Upstream]:
        label = self.forward_label
        if self.given is None:
            return [Upstream(None, f"output {i + 1} of {label}") for i in range(count)]
        given = self.given
        if count == 1 and not (isinstance(given, tuple) and len(given) == 1):
            given = [given]  # one output: the array itself (a list is read as its rows)
        if not isinstance(given, tuple | list) or len(given) != count:
            raise GradcheckUsageError(
                f"{label} returns {count} outputs: pass upstream as a tuple of {count} arrays "
                f"(one per output), got {type(self.given).__name__}")
        return [Upstream(upstream_array(g, f"output {i + 1} of {label}"),
                         f"output {i + 1} of {label}") for i, g in enumerate(given)]

    def output_shape(self) -> tuple[int, ...] | None:
        """The first output's shape, once a forward has run."""
        if not self.upstreams or self.upstreams[0].value is None:
            return None
        return tuple(self.upstreams[0].value.shape)

    def loss(self) -> float:
        outputs, _ = self._outputs()
        assert self.upstreams is not None
        return float(sum(np.sum(up.fit(out, self.rng) * out, dtype=np.float64)
                         for up, out in zip(self.upstreams, outputs, strict=True)))

    def grads(self) -> dict[str, Any]:
        outputs, cache = self._outputs()
        assert self.upstreams is not None
        for up, out in zip(self.upstreams, outputs, strict=True):
            up.fit(out, self.rng)
        douts = [up.for_backward(out) for up, out in zip(self.upstreams, outputs, strict=True)]
        if not self._backward_checked:  # now that the number of outputs is known
            check_callable(self.backward, "backward", len(douts) + 1,
                           f"one upstream gradient for each of the {len(douts)} output(s) of "
                           f"{self.forward_label}, then the cache")
            self._backward_checked = True
        result = self.backward(*douts, cache)
        return self._gradients(result)

    def _gradients(self, result: object) -> dict[str, Any]:
        names = self.arguments.checked
        label = self.backward_label
        wanted = ", ".join(f"d{name}" for name in names)
        if len(names) == 1:
            if isinstance(result, tuple) and len(result) == 1:
                result = result[0]
            elif isinstance(result, tuple):
                raise GradientShapeError(
                    f"{label} returned {len(result)} gradients, expected 1: the gradient of "
                    f"{names[0]!r}, the only float array argument of {self.forward_label}"
                    f"{self.arguments.passed_note()}")
            grads = [result]
        else:
            if not isinstance(result, tuple | list):
                raise GradientShapeError(
                    f"{label} returned {_what(result)}, expected a tuple of {len(names)} "
                    f"gradients ({wanted}), one per float array argument of "
                    f"{self.forward_label}, in order{self.arguments.passed_note()}")
            if len(result) != len(names):
                raise GradientShapeError(
                    f"{label} returned {len(result)} gradients, expected {len(names)}: one per "
                    f"float array argument of {self.forward_label}, in order: {wanted}"
                    f"{self.arguments.passed_note()}")
            grads = list(result)
        for position, (name, gradient) in enumerate(zip(names, grads, strict=True)):
            self._check_one(label, position, name, gradient, names)
        return dict(zip(names, grads, strict=True))

    def _check_one(self, label: str, position: int, name: str, gradient: object,
                   names: list[str]) -> None:
        """Name the gradient by its place in backward's answer: a swap shows here."""
        where = f"gradient {position + 1} of {len(names)} (d{name})" if len(names) > 1 \
            else f"the gradient d{name}"
        if gradient is None:
            raise GradientShapeError(f"{label} returned None as {where}: return dL/d{name}")
        shape = np.shape(gradient) if isinstance(gradient, np.ndarray) else None
        expected = self.params[name].shape
        if shape is not None and shape != expected:
            same = [other for other in names if other != name
                    and self.params[other].shape == shape]
            hint = (f" (the shape of {same[0]!r}: are the gradients in forward's argument "
                    f"order, {', '.join(names)}?)" if same else "")
            raise GradientShapeError(f"{label} returned {where} with shape {shape}, expected "
                                     f"{expected} like {name}{hint}")


class LossObjective:
    """L = fn(x, *args)[0], gradient fn(x, *args)[1], over a private copy of x."""

    def __init__(self, fn: Callable[..., Any], arguments: Arguments) -> None:
        self.fn, self.arguments = fn, arguments
        self.params = arguments.params
        self.name = arguments.names[0]
        self.label = f"{callable_name_short(fn)}({', '.join(arguments.names)})"

    def _call(self) -> tuple[Any, Any]:
        result = self.fn(*self.arguments.call())
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise GradcheckUsageError(
                f"{self.label} returned {_what(result)}: check_loss needs fn to return "
                f"(loss, d{self.name}); for forward/backward pairs use check_pair")
        loss, gradient = result
        if isinstance(gradient, dict):
            raise GradcheckUsageError(
                f"{self.label} returned a dict of gradients: check_loss checks (loss, "
                f"d{self.name}) for its first argument; for a model's loss with a grads dict, "
                "use check_params(lambda: model.loss(X, y)[0], lambda: model.loss(X, y)[1], "
                "model.params)")
        return loss, gradient

    def loss(self) -> Any:
        return self._call()[0]

    def grads(self) -> dict[str, Any]:
        gradient = self._call()[1]
        if gradient is None:
            raise GradientShapeError(f"{self.label} returned None as d{self.name}: return the "
                                     f"gradient of the loss with respect to {self.name}")
        return {self.name: gradient}


def callable_name_short(fn: object) -> str:
    """``affine_forward`` for a function, ``Net.loss`` for a method, the class for others."""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return str(name) if name else type(fn).__name__


def _signature_text(fn: Callable[..., Any]) -> str:
    """``dout, cache``: backward's parameters as its author named them."""
    try:
        return ", ".join(name if p.kind is not p.VAR_POSITIONAL else f"*{name}"
                         for name, p in inspect.signature(fn).parameters.items()
                         if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD,
                                       p.VAR_POSITIONAL))
    except (TypeError, ValueError):
        return "dout, cache"


def _what(value: object) -> str:
    if value is None:
        return "None"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _shapes(params: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{name} {array.shape} {array.dtype.name}" for name, array in params.items())


@front_door
def check_pair(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    *args: Any,
    upstream: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    mode: Mode = DEFAULT_MODE,
    kinks: KinkMode = DEFAULT_KINKS,
    seed: int | None = DEFAULT_SEED,
    executor: Executor | None = None,
    progress: ProgressCallback | bool | None = None,
) -> Report:
    """Check ``backward`` against finite differences of ``forward``, a function pair:
    ``forward(*args)`` returns ``(out, cache)`` or ``(out1, ..., outk, cache)``;
    ``backward(dout1, ..., doutk, cache)`` returns the gradients of forward's float array
    arguments, in order (one array when there is one).

    The checked loss is L = sum_i sum(g_i * out_i) for random upstream gradients g_i
    (seeded; ``upstream=`` an array, or a tuple of one per output, chooses them). Float
    numpy arrays among ``args`` are checked (private copies: yours are never changed),
    named from forward's signature; everything else (ints, integer labels or indices, bool
    masks, None, floats, strings) passes through unperturbed, and dicts (``bn_param``,
    ``conv_param``, a ``dropout_param`` with its seed) are deep-copied for each call.
    Returns the report (``assert_pair`` raises unless it is ok).

    >>> import numpy as np, gradcheck as gc
    >>> def affine_forward(x, w, b):
    ...     return x @ w + b, (x, w)
    >>> def affine_backward(dout, cache):
    ...     x, w = cache
    ...     return dout @ w.T, x.T @ dout, dout.sum(axis=0)
    >>> rng = np.random.default_rng(0)
    >>> x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), np.zeros(2)
    >>> gc.check_pair(affine_forward, affine_backward, x, w, b).ok
    True
    """
    options = Options(rtol=rtol, atol=atol, mode=mode, kinks=kinks, seed=seed,
                      executor=executor, progress=progress)
    check_callable(forward, "forward", len(args), "the arguments given after backward")
    if not callable(backward):
        raise GradcheckUsageError(f"backward must be callable, got {type(backward).__name__}")
    names = parameter_names(forward, len(args))
    arguments = Arguments(names, args, [_is_checked(a) for a in args])
    if not arguments.params:
        given = ", ".join(f"{n}: {_describe(a)}" for n, a in zip(names, args, strict=True))
        raise GradcheckUsageError(
            f"check_pair({callable_name_short(forward)}, ...) got no float numpy array among "
            f"the arguments ({given}): only float arrays are checked; pass the input as "
            "np.asarray(x, dtype=np.float64)")
    objective = PairObjective(forward, backward, arguments, upstream, options.rng())
    forward_name, backward_name = callable_name_short(forward), callable_name_short(backward)
    subject = Subject(
        title=f"pair {callable_name(forward)} / {backward_name}, {_shapes(arguments.params)}",
        loss_label=objective.forward_label, grads_label=objective.backward_label,
        call=f"check_pair({forward_name}, {backward_name}, {', '.join(names)}",
        input_name=arguments.checked[0], output_shape=objective.output_shape)
    return run_check(objective.loss, objective.grads, objective.params, options, subject)


@front_door
def check_loss(
    fn: Callable[..., Any],
    x: np.ndarray,
    *args: Any,
    rtol: float | None = None,
    atol: float | None = None,
    mode: Mode = DEFAULT_MODE,
    kinks: KinkMode = DEFAULT_KINKS,
    seed: int | None = DEFAULT_SEED,
    executor: Executor | None = None,
    progress: ProgressCallback | bool | None = None,
) -> Report:
    """Check a loss function that returns its gradient: ``loss, dx = fn(x, *args)``
    (softmax loss, SVM loss, a temporal softmax loss with labels and a mask).

    x (a float array; a private copy) is checked; ``args`` (labels, masks, a regularization
    strength, even other float arrays) pass through unperturbed, dicts deep-copied for each
    call. Returns the report (``assert_loss`` raises unless it is ok).

    >>> import numpy as np, gradcheck as gc
    >>> def softmax_loss(x, y):
    ...     p = np.exp(x - x.max(axis=1, keepdims=True)); p /= p.sum(axis=1, keepdims=True)
    ...     n = x.shape[0]
    ...     dx = p.copy(); dx[np.arange(n), y] -= 1
    ...     return -np.log(p[np.arange(n), y]).mean(), dx / n
    >>> rng = np.random.default_rng(0)
    >>> gc.check_loss(softmax_loss, rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])).ok
    True
    """
    options = Options(rtol=rtol, atol=atol, mode=mode, kinks=kinks, seed=seed,
                      executor=executor, progress=progress)
    check_callable(fn, "fn", 1 + len(args), "x and the arguments given after it")
    names = parameter_names(fn, 1 + len(args), fallback="arg")
    if names[0] == "arg0":
        names[0] = "x"
    arguments = Arguments(names, (x, *args), [True] + [False] * len(args))
    objective = LossObjective(fn, arguments)
    fn_name = callable_name_short(fn)
    name = names[0]
    subject = Subject(
        title=f"loss {callable_name(fn)}, {_shapes(arguments.params)}",
        loss_label=f"{objective.label}[0] (the loss)",
        grads_label=f"{objective.label}[1] (d{name})",
        call=f"check_loss({fn_name}, {', '.join(names)}", input_name=name)
    return run_check(objective.loss, objective.grads, objective.params, options, subject)
