"""The front doors for backprop written as function pairs, the most copied style:

- ``check_pair(forward, backward, *args)`` for ``out, cache = forward(*args)`` and
  ``dx, dw, ... = backward(dout, cache)`` (also ``(out1, ..., outk, cache)`` and
  ``backward(dout1, ..., doutk, cache)``);
- ``check_loss(fn, x, *args)`` for ``loss, dx = fn(x, *args)``.

Each builds a loss, a gradient and a params dict from the arguments and hands them to the
one engine, :func:`gradcheck.engine.run.run_check`. What is checked and what passes through:

- every float numpy array argument is checked (check_pair) — a private copy of it, named
  from forward's signature (``x``, ``w``, ``b``; ``arg0``... when there is none);
- everything else passes through unperturbed: ints, integer arrays (labels, indices),
  bool masks, None, Python floats, strings, dicts, and float arrays named in ``fixed=``
  (a target y). Every call gets a fresh copy of each array and dict among them (a
  ``bn_param`` whose running mean forward updates, a ``dropout_param`` whose seed makes
  the mask the same each call): the caller's objects are never changed, and code that
  writes into a passed-through array is named in the report, as a write into a checked
  one is.
"""
import copy
import difflib
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any, Unpack

import numpy as np

from gradcheck.adapters import (
    OutputLoss,
    callable_name,
    float_input,
    output_array,
    refuse_non_array,
)
from gradcheck.engine.run import run_check
from gradcheck.engine.tolerance import precision_dtype
from gradcheck.errors import GradcheckUsageError, GradientShapeError
from gradcheck.options import CheckOptions, Options, Subject, front_door
from gradcheck.report import Problem, Report
from gradcheck.upstream import Upstream, upstream_array
from gradcheck.validate import check_callable, not_an_array, returned, same_bits

# how an argument reaches the user's function: the live checked array; a fresh copy of
# an array, dict or list per call; or the object itself (ints, floats, None, strings)
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
    copy each, perturbed by the engine), which are copied afresh for every call (arrays,
    dicts, lists), which pass as is; and which passed-through arrays the code under test
    wrote into."""

    def __init__(self, names: list[str], args: Sequence[object], checked: Sequence[bool]
                 ) -> None:
        self.names = names
        self.kinds: list[str] = []
        self.values: list[object] = []
        self.params: dict[str, np.ndarray] = {}
        self.written: dict[str, str] = {}  # passed-through array -> who wrote into it
        self._handed: list[tuple[str, np.ndarray, np.ndarray]] = []  # (name, copy, original)
        for name, value, check in zip(names, args, checked, strict=True):
            if check:
                self.params[name] = float_input(value, name)
                self.kinds.append(_CHECKED)
                self.values.append(None)
            else:
                mutable = isinstance(value, np.ndarray | dict | list)
                self.kinds.append(_COPIED if mutable else _PASSED)
                # our own copy: the caller may change theirs between now and a lazy
                # evaluation (an executor); each call then gets a fresh copy of ours
                self.values.append(copy.deepcopy(value) if mutable else value)

    def call(self) -> list[object]:
        """The arguments of one call: the live checked arrays, fresh copies of the rest."""
        self._handed = []
        arguments: list[object] = []
        for name, kind, value in zip(self.names, self.kinds, self.values, strict=True):
            if kind == _CHECKED:
                arguments.append(self.params[name])
            elif kind == _COPIED and isinstance(value, np.ndarray):
                handed = value.copy()
                self._handed.append((name, handed, value))
                arguments.append(handed)
            else:
                arguments.append(copy.deepcopy(value) if kind == _COPIED else value)
        return arguments

    def note_writes(self, label: str) -> None:
        """Remember which passed-through arrays of the last call were written into, and by
        ``label`` (forward, or backward through the cache)."""
        for name, handed, original in self._handed:
            if name not in self.written and not _unchanged(handed, original):
                self.written[name] = label

    def writes_problem(self) -> Problem | None:
        """The writes into passed-through arrays, as the report names a write into a
        checked one (kind "in_place")."""
        if not self.written:
            return None
        named = ", ".join(f"{name!r} ({_describe(self.values[self.names.index(name)])}, "
                          f"written by {label})" for name, label in self.written.items())
        first = next(iter(self.written))
        return Problem(
            "in_place",
            f"the code under test wrote into {named}, passed through unchecked: code under "
            f"test must not write into its inputs (copy before modifying, e.g. {first} = "
            f"{first}.copy()). Every call got a fresh copy, so your arrays are unchanged and "
            "the gradients were checked on the values you passed.")

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


def _unchanged(handed: np.ndarray, original: np.ndarray) -> bool:
    """Bit for bit (a NaN equals itself); object arrays (strings, None) by equality."""
    if handed.dtype.kind == "O":
        try:
            return bool(np.array_equal(handed, original))
        except Exception:  # elements whose == is not a bool: count it as unchanged
            return True
    return same_bits(handed, original)


def _is_float_array(value: object) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


def fixed_names(fixed: object, names: list[str], forward: str) -> set[str]:
    """The argument names in ``fixed=`` (one name, or a sequence of them), each one of
    forward's; a usage error names an unknown one and the nearest.

    >>> sorted(fixed_names("y", ["x", "y"], "bce_forward"))
    ['y']
    """
    chosen = [fixed] if isinstance(fixed, str) else fixed
    if not isinstance(chosen, Sequence) or not all(isinstance(n, str) for n in chosen):
        raise GradcheckUsageError(f"fixed must name arguments of {forward}, e.g. "
                                  f"fixed=('y',), got {type(fixed).__name__}")
    for name in chosen:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GradcheckUsageError(
                f"fixed names {name!r}, which is not an argument of {forward}({', '.join(names)})"
                f"{hint}: name the arguments to pass through unchecked as forward calls them")
    return set(chosen)


class PairObjective:
    """L = sum_i sum(g_i * out_i) for forward's outputs out_i and fixed random g_i; the
    gradient is what backward(g_1, ..., g_k, cache) returns, one array per float argument."""

    def __init__(self, forward: Callable[..., Any], backward: Callable[..., Any],
                 arguments: Arguments, upstream: object, rng: np.random.Generator) -> None:
        self.forward, self.backward = forward, backward
        self.arguments = arguments
        self.params = arguments.params
        self.forward_label = f"{short_name(forward, 'forward')}({', '.join(arguments.names)})"
        self.backward_label = f"{short_name(backward, 'backward')}({_signature_text(backward)})"
        self.given = upstream
        self.upstreams: list[Upstream] | None = None
        self._backward_checked = False
        self.rng = rng
        finest = min((p.dtype for p in self.params.values()), key=lambda d: np.finfo(d).eps)
        self._loss = OutputLoss(lambda y: precision_dtype(y.dtype, finest))

    def _outputs(self) -> tuple[list[np.ndarray], object]:
        result = self.forward(*self.arguments.call())
        self.arguments.note_writes(self.forward_label)
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
        outputs = [label] if count == 1 else [f"output {i + 1} of {label}" for i in range(count)]
        if self.given is None:
            return [Upstream(None, output) for output in outputs]
        given = self.given
        if count == 1 and not (isinstance(given, tuple) and len(given) == 1):
            given = [given]  # one output: the array itself (a list is read as its rows)
        if not isinstance(given, tuple | list) or len(given) != count:
            raise GradcheckUsageError(
                f"{label} returns {count} outputs: pass upstream as a tuple of {count} arrays "
                f"(one per output), got {type(self.given).__name__}")
        return [Upstream(upstream_array(g, output), output)
                for g, output in zip(given, outputs, strict=True)]

    def output_shape(self) -> tuple[int, ...] | None:
        """The first output's shape, once a forward has run."""
        if not self.upstreams or self.upstreams[0].value is None:
            return None
        return tuple(self.upstreams[0].value.shape)

    def loss(self) -> float:
        outputs, _ = self._outputs()
        assert self.upstreams is not None
        upstreams = [up.fit(out, self.rng) for up, out in zip(self.upstreams, outputs,
                                                               strict=True)]
        return self._loss(outputs, upstreams)

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
        self.arguments.note_writes(self.backward_label)
        return self._gradients(result)

    def _gradients(self, result: object) -> dict[str, Any]:
        names = self.arguments.checked
        label = self.backward_label
        wanted = ", ".join(f"d{name}" for name in names)
        if len(names) == 1:
            if isinstance(result, tuple | list) and len(result) == 1 \
                    and np.shape(result) != self.params[names[0]].shape:
                result = result[0]  # [dx] or (dx,): a sequence of the one gradient
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
                    f"{self.forward_label}, in order{self.arguments.passed_note()}"
                    f"{_fixed_hint(names, 1)}")
            if len(result) != len(names):
                raise GradientShapeError(
                    f"{label} returned {len(result)} gradients, expected {len(names)}: one per "
                    f"float array argument of {self.forward_label}, in order: {wanted}"
                    f"{self.arguments.passed_note()}{_fixed_hint(names, len(result))}")
            grads = list(result)
        for position, (name, gradient) in enumerate(zip(names, grads, strict=True)):
            self._check_one(label, position, name, gradient, names)
        return dict(zip(names, grads, strict=True))

    def _check_one(self, label: str, position: int, name: str, gradient: object,
                   names: list[str]) -> None:
        """Name the gradient by its place in backward's answer: a swap shows here."""
        where = f"gradient {position + 1} of {len(names)} (d{name})" if len(names) > 1 \
            else f"the gradient d{name}"
        if not_an_array(gradient):  # None inside a tuple: not a missing return
            what = "None" if gradient is None and len(names) > 1 else returned(gradient)
            raise GradientShapeError(f"{label} returned {what} as {where}: return dL/d{name}, "
                                     f"a float array like {name}")
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
        self.label = f"{short_name(fn, 'fn')}({', '.join(arguments.names)})"

    def _call(self) -> tuple[Any, Any]:
        result = self.fn(*self.arguments.call())
        self.arguments.note_writes(self.label)
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
        value = self._call()[0]
        if not_an_array(value):
            raise GradcheckUsageError(f"{self.label} returned {returned(value)} as the loss: "
                                      f"return (loss, d{self.name}) with the loss a float")
        return value

    def grads(self) -> dict[str, Any]:
        gradient = self._call()[1]
        refuse_non_array(gradient, f"{self.label} (its d{self.name})",
                         f"the gradient of the loss with respect to {self.name}, a float array "
                         f"like {self.name}")
        return {self.name: gradient}


def short_name(fn: object, role: str) -> str:
    """How messages and the "repeat with" line name the user's function: ``affine_forward``
    (not ``test_x.<locals>.affine_forward``), ``Net.loss`` for a method, the class of a
    callable object, and ``role`` for a lambda.

    >>> short_name(lambda x: x, "forward"), short_name(np.add, "fn")
    ('forward', 'add')
    """
    if isinstance(fn, functools.partial):
        return short_name(fn.func, role)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) \
        or type(fn).__name__
    name = str(name).rsplit(".<locals>.", 1)[-1]
    return role if "<lambda>" in name else name


def _fixed_hint(names: list[str], returned_count: int) -> str:
    """For a backward that returns fewer gradients than float arguments: the float
    arguments it may mean to leave unchecked (a target y), and how."""
    rest = names[max(returned_count, 1):]
    if not rest or returned_count >= len(names):
        return ""
    listed = ", ".join(map(repr, rest))
    return (f"; if {listed} should pass through unchecked (a target, a constant), pass "
            f"fixed=({listed},)")


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
        return returned(value)
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _shapes(params: dict[str, np.ndarray]) -> str:
    return ", ".join(f"{name} {array.shape} {array.dtype.name}" for name, array in params.items())


@front_door(calls=("forward", "args"))
def check_pair(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    *args: Any,
    upstream: Any = None,
    fixed: str | Sequence[str] = (),
    **options: Unpack[CheckOptions],
) -> Report:
    """Check ``backward`` against finite differences of ``forward``, a function pair:
    ``forward(*args)`` returns ``(out, cache)`` or ``(out1, ..., outk, cache)``;
    ``backward(dout1, ..., doutk, cache)`` returns the gradients of forward's float array
    arguments, in order (one array when there is one).

    The checked loss is L = sum_i sum(g_i * out_i) for random upstream gradients g_i
    (seeded; ``upstream=`` an array, or a tuple of one per output, chooses them). Float
    numpy arrays among ``args`` are checked (private copies: yours are never changed),
    named from forward's signature; everything else (ints, integer labels or indices, bool
    masks, None, floats, strings) passes through unperturbed, and so do the float arrays
    named in ``fixed=`` (a target: ``fixed=("y",)``, and backward returns no dy). Every
    call gets fresh copies of the arrays and dicts passed through (``bn_param``,
    ``conv_param``, a ``dropout_param`` with its seed). An option name that forward also
    takes as a parameter (``seed``) must reach forward by position, or it is refused.
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
    >>> def mse_forward(x, y):
    ...     return np.sum((x - y) ** 2), (x, y)
    >>> def mse_backward(dout, cache):
    ...     x, y = cache
    ...     return 2 * dout * (x - y)                 # dx only: y is a target
    >>> gc.check_pair(mse_forward, mse_backward, x, x + 1, fixed=("y",)).ok
    True
    """
    checking = Options(**options)
    forward_name = short_name(forward, "forward")
    check_callable(forward, "forward", len(args), "the arguments given after backward")
    if not callable(backward):
        raise GradcheckUsageError(f"backward must be callable, got {type(backward).__name__}")
    names = parameter_names(forward, len(args))
    passed = fixed_names(fixed, names, forward_name)
    arguments = Arguments(names, args, [_is_float_array(a) and name not in passed
                                        for name, a in zip(names, args, strict=True)])
    if not arguments.params:
        given = ", ".join(f"{n}: {_describe(a)}" for n, a in zip(names, args, strict=True))
        raise GradcheckUsageError(
            f"check_pair({forward_name}, ...) got no float numpy array to check among the "
            f"arguments ({given}{', fixed: ' + ', '.join(sorted(passed)) if passed else ''}): "
            "only float arrays are checked; pass the input as np.asarray(x, dtype=np.float64)")
    objective = PairObjective(forward, backward, arguments, upstream, checking.rng())
    backward_name = short_name(backward, "backward")
    fixed_text = f", fixed={tuple(n for n in names if n in passed)!r}" if passed else ""
    subject = Subject(
        title=f"pair {callable_name(forward)} / {backward_name}, {_shapes(arguments.params)}",
        loss_label=objective.forward_label, grads_label=objective.backward_label,
        call=f"check_pair({forward_name}, {backward_name}, {', '.join(names)}{fixed_text}",
        input_name=arguments.checked[0], output_shape=objective.output_shape)
    report = run_check(objective.loss, objective.grads, objective.params, checking, subject)
    return _with_writes(report, arguments)


@front_door(calls=("fn", "x", "args"))
def check_loss(
    fn: Callable[..., Any],
    x: np.ndarray,
    *args: Any,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check a loss function that returns its gradient: ``loss, dx = fn(x, *args)``
    (softmax loss, SVM loss, a temporal softmax loss with labels and a mask).

    x (a float array; a private copy) is checked; ``args`` (labels, masks, a regularization
    strength, even other float arrays) pass through unperturbed, every call with fresh
    copies of the arrays and dicts among them. An option name that fn also takes as a
    parameter must reach fn by position, or it is refused. Returns the report
    (``assert_loss`` raises unless it is ok).

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
    checking = Options(**options)
    check_callable(fn, "fn", 1 + len(args), "x and the arguments given after it")
    names = parameter_names(fn, 1 + len(args), fallback="arg")
    if names[0] == "arg0":
        names[0] = "x"
    arguments = Arguments(names, (x, *args), [True] + [False] * len(args))
    objective = LossObjective(fn, arguments)
    name = names[0]
    subject = Subject(
        title=f"loss {callable_name(fn)}, {_shapes(arguments.params)}",
        loss_label=f"{objective.label}[0] (the loss)",
        grads_label=f"{objective.label}[1] (d{name})",
        call=f"check_loss({short_name(fn, 'fn')}, {', '.join(names)}", input_name=name)
    report = run_check(objective.loss, objective.grads, objective.params, checking, subject)
    return _with_writes(report, arguments)


def _with_writes(report: Report, arguments: Arguments) -> Report:
    """The report with the writes into passed-through arrays among its problems: the
    engine sees only the checked arrays, so the front door that copied the others names
    what was written into them."""
    problem = arguments.writes_problem()
    if problem is not None:
        report.problems.append(problem)
    # the integer arrays passed through (indices, labels): the diagnosis reads which rows an
    # index names twice; diagnosed again with them, and with the writes the engine missed
    report.index_arguments = {
        name: value for name, kind, value in zip(arguments.names, arguments.kinds,
                                                 arguments.values, strict=True)
        if kind != _CHECKED and isinstance(value, np.ndarray) and value.dtype.kind in "iu"}
    if not report.ok and (report.index_arguments or problem is not None):
        from gradcheck.diagnosis.rules import diagnose

        report.diagnoses = diagnose(report)
    return report
