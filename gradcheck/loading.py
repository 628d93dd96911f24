"""From what a user types to what the checker needs: layer specs, shapes, fuzzed cases.

Shared by the pytest plugin (``--gradcheck-layer``) and the command line
(``gradcheck check``), so both read ``package.module:factory`` and ``8,4`` the same way
and build the very same layer and input for a given dtype and seed: a failing pytest item
``gradcheck.examples.layers:BuggyDense-float32-seed3`` is repeated exactly by
``gradcheck check gradcheck.examples.layers:BuggyDense --dtype float32 --seed 3``.

>>> target = load_target("gradcheck.examples.layers:Dense")
>>> target.dtypes
('float64', 'float32')
>>> shape = target.input_shape(parse_shape("8,4"))
>>> layer, x = target.make_case(shape, "float32", seed=3)
>>> x.shape, x.dtype.name, layer.params["W"].dtype.name
((8, 4), 'float32', 'float32')

Every problem with the text itself (a bad path, a missing attribute, a bad shape, an input
too large to check without being asked) is a :class:`LoadError`, a
:class:`gradcheck.GradcheckUsageError`; errors raised by the user's own code (their module
failing to import, their factory raising) propagate unchanged, and :func:`explain_failure`
puts one in one line for the command line.

numpy is imported only when a case is built, so importing this module is cheap.
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gradcheck.errors import GradcheckUsageError
from gradcheck.options import FLAGS, KINK_MODES, MAX_INPUT_ELEMENTS, MODES

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DTYPES",
    "KINKS",
    "MODES",
    "InputTooLarge",
    "LayerTarget",
    "LoadError",
    "NoInputShape",
    "check_input_size",
    "explain_failure",
    "load_target",
    "make_input",
    "parse_shape",
    "parse_spec",
    "repeat_command",
]

#: Values of the checker's ``mode`` and ``kinks`` options (declared in gradcheck.options).
KINKS = KINK_MODES
#: Floating dtypes a generated case can be built in.
DTYPES: tuple[str, ...] = ("float64", "float32")

#: Fraction of input entries set to exactly 0.0 (ReLU'(0) lives there).
ZERO_FRACTION = 0.25
#: Input scale cycled through by seed: seed 0 -> 1.0, seed 1 -> 3.0, seed 2 -> 0.3, ...
INPUT_SCALES: tuple[float, ...] = (1.0, 3.0, 0.3)

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_SPEC = re.compile(rf"^({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER}(?:\.{_IDENTIFIER})*)$")


class LoadError(GradcheckUsageError):
    """A layer spec, shape or dtype that cannot be used; the message says why and what to type.

    >>> parse_shape("8,x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.loading.LoadError: invalid shape '8,x': expected positive integers ..., like 8,4
    """


class NoInputShape(LoadError):
    """Neither a shape was given nor does the layer have an ``input_shape`` attribute."""


class InputTooLarge(LoadError):
    """An input with more elements than a check is run on without being asked."""


def check_input_size(shape: Sequence[int], dtype: str = "float64", *, force: bool = False,
                     how_to_force: str = "--force") -> int:
    """The number of elements of an input of ``shape``; :class:`InputTooLarge` above
    :data:`~gradcheck.options.MAX_INPUT_ELEMENTS` unless ``force``: a check of such an input
    would run for hours (two forward passes per element in "full" mode) or not fit in memory.

    >>> check_input_size((100000000, 4))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.loading.InputTooLarge: an input of shape (100000000, 4) has 400,000,000 elements ...
    """
    size = math.prod(shape)
    if size > MAX_INPUT_ELEMENTS and not force:
        itemsize = 4 if dtype == "float32" else 8
        raise InputTooLarge(
            f"an input of shape {tuple(shape)} has {size:,} elements ({_bytes(size * itemsize)} "
            f"in {dtype}), more than the {MAX_INPUT_ELEMENTS:,} a check runs on unasked (it "
            f"costs forward passes per element): give a smaller shape, or {how_to_force} to "
            "check it anyway")
    return size


def _bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def explain_failure(exc: BaseException, what: str) -> str:
    """One line for an error raised by the user's code while ``what`` ran: the exception,
    where (the innermost file:line, or the file and line of a SyntaxError) and its message.

    >>> try:
    ...     compile("def f(:", "mylayers.py", "exec")
    ... except SyntaxError as error:
    ...     print(explain_failure(error, "importing module 'mylayers'"))
    importing module 'mylayers' raised SyntaxError at mylayers.py:1: invalid syntax
    """
    if isinstance(exc, SystemExit):
        return f"{what} called sys.exit({exc.code!r})"
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" at {_relative(exc.filename)}:{exc.lineno}"
        message = exc.msg
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = os.path.dirname(os.path.abspath(__file__))
        users = [f for f in frames if not os.path.abspath(f.filename).startswith(ours + os.sep)
                 and "importlib" not in f.filename]
        shown = users or frames
        last = shown[-1] if shown else None
        where = f" at {_relative(last.filename)}:{last.lineno} in {last.name}" if last else ""
        message = str(exc)
    text = f"{what} raised {type(exc).__name__}{where}"
    return f"{text}: {message}" if message else text


def _relative(path: str) -> str:
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith(".." + os.sep + "..") else relative


def repeat_command(spec: str, shape: Sequence[int], dtype: str, seed: int,
                   options: dict[str, Any] | None = None) -> str:
    """The command line that builds the same layer and input and checks them the same way.

    >>> repeat_command("m:f", (8, 4), "float32", 3, {"mode": "full", "rtol": None})
    'python -m gradcheck check m:f --shape 8,4 --dtype float32 --seed 3 --mode full'
    """
    words = ["python -m gradcheck check", spec, "--shape", ",".join(map(str, shape)),
             "--dtype", dtype, "--seed", str(seed)]
    for key, value in (options or {}).items():  # the flags that differ from their defaults
        if key in FLAGS and key != "seed" and value is not None and value != FLAGS[key].default:
            flag = FLAGS[key]
            words += [f"--{flag.dashed}"] if flag.switch else [f"--{key}", str(value)]
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        words.append("--force")
    return " ".join(words)


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``"package.module:factory"`` into its module and (dotted) attribute path.

    >>> parse_spec("gradcheck.examples.layers:Dense")
    ('gradcheck.examples.layers', 'Dense')
    >>> parse_spec("gradcheck.examples.layers.Dense")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.loading.LoadError: invalid layer ... (did you mean 'gradcheck.examples.layers:Dense'?)
    """
    match = _SPEC.match(spec.strip())
    if match:
        return match.group(1), match.group(2)
    hint = ""
    if ":" not in spec and "." in spec:
        module, _, attr = spec.strip().rpartition(".")
        hint = f" (did you mean '{module}:{attr}'?)"
    raise LoadError(f"invalid layer '{spec}': expected 'package.module:factory'{hint}")


def parse_shape(text: str) -> tuple[int, ...]:
    """Read an input shape such as ``"8,4"`` (spaces and parentheses allowed).

    >>> parse_shape("8,4"), parse_shape("(2, 3, 9)"), parse_shape("5")
    ((8, 4), (2, 3, 9), (5,))
    """
    body = text.strip().strip("()[]").strip().rstrip(",")
    parts = [p.strip() for p in body.split(",")] if body else []
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise LoadError(
            f"invalid shape '{text}': expected positive integers separated by commas, like 8,4"
        )
    return tuple(int(p) for p in parts)


def _import_module(module_name: str, search_path: str | None) -> Any:
    """Import ``module_name``; if it is not found, retry once with ``search_path`` on sys.path."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        # Only "the module you named does not exist" is a usage error; a module that
        # exists but fails to import one of *its* dependencies is the user's bug.
        if not (module_name == missing or module_name.startswith(missing + ".")):
            raise
        if search_path is not None and os.path.abspath(search_path) not in map(
            os.path.abspath, sys.path
        ):
            sys.path.insert(0, search_path)
            return _import_module(module_name, None)
        raise LoadError(f"cannot import module '{module_name}': {exc}") from None


@dataclass(frozen=True)
class LayerTarget:
    """A resolved ``package.module:factory``: what it accepts and how to build cases from it.

    >>> t = load_target("gradcheck.examples.layers:BuggyDense")
    >>> t.spec, t.takes_rng, t.takes_dtype
    ('gradcheck.examples.layers:BuggyDense', True, True)
    """

    spec: str
    factory: Callable[..., Any]
    takes_rng: bool
    takes_dtype: bool

    @property
    def dtypes(self) -> tuple[str, ...]:
        """The dtypes a case can be built in: float32 only if the factory takes ``dtype``."""
        return DTYPES if self.takes_dtype else DTYPES[:1]

    def location(self) -> tuple[str | None, int | None]:
        """The factory's source file and 0-based line (for pytest's ``reportinfo``)."""
        try:
            path = inspect.getsourcefile(self.factory)
            _, line = inspect.getsourcelines(self.factory)
        except (OSError, TypeError):
            return None, None
        return path, max(line - 1, 0)

    def make_layer(self, dtype: str = "float64", seed: int = 0) -> Any:
        """Call the factory, passing ``rng`` and ``dtype`` if it accepts them; a factory
        that returns None is a :class:`LoadError`.

        The layer's generator is ``numpy.random.default_rng([seed, 0])``.
        """
        import numpy as np

        if dtype not in self.dtypes:
            raise LoadError(
                f"layer '{self.spec}' cannot be built in {dtype}: its factory takes no "
                f"'dtype' argument (it accepts {', '.join(self.dtypes)})"
            )
        kwargs: dict[str, Any] = {}
        if self.takes_rng:
            kwargs["rng"] = np.random.default_rng([seed, 0])
        if self.takes_dtype:
            kwargs["dtype"] = np.dtype(dtype)
        layer = self.factory(**kwargs)
        if layer is None:
            raise LoadError(f"'{self.spec}' returned None (a missing return?): the factory "
                            "must return a layer")
        return layer

    def input_shape(self, shape: Sequence[int] | None = None) -> tuple[int, ...]:
        """The input shape: ``shape`` if given, else the ``input_shape`` of the factory or layer.

        Raises :class:`LoadError` when there is neither.
        """
        if shape is not None:
            return tuple(shape)
        found: Any = getattr(self.factory, "input_shape", None)
        if not isinstance(found, tuple | list):  # e.g. a property on a class: ask an instance
            found = getattr(self.make_layer(), "input_shape", None)
        if hasattr(found, "tolist") and hasattr(found, "shape"):  # np.int64(5), np.array([2, 3])
            found = found.tolist()
        if found is None:
            raise NoInputShape(
                f"layer '{self.spec}' has no input shape: give the layer an "
                "'input_shape' attribute or pass a shape such as 8,4"
            )
        if isinstance(found, int) and not isinstance(found, bool):
            found = (found,)
        if not isinstance(found, tuple | list) or not found or not all(map(_whole, found)):
            raise LoadError(
                f"layer '{self.spec}' has input_shape={found!r:.60}: expected a tuple of "
                "positive ints like (8, 4); fix the attribute or pass a shape such as 8,4"
            )
        return tuple(int(n) for n in found)

    def make_case(
        self, shape: Sequence[int], dtype: str = "float64", seed: int = 0
    ) -> tuple[Any, np.ndarray]:
        """A fresh layer and a fuzzed input for one generated check (see :func:`make_input`)."""
        return self.make_layer(dtype, seed), make_input(shape, dtype, seed)


def _whole(n: object) -> bool:
    """A positive whole number of any integer type (numpy's too), not a bool or a float."""
    import numbers

    return isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) > 0


def _accepts(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` has a parameter ``name`` that can be passed by keyword."""
    try:
        parameter = inspect.signature(factory).parameters.get(name)
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def load_target(spec: str, *, search_path: str | None = None) -> LayerTarget:
    """Import the module of ``spec`` and resolve its factory.

    ``search_path`` (usually the current directory) is put on ``sys.path`` if the module
    is not importable without it, so a user's unpackaged ``mylayers.py`` works.

    >>> load_target("gradcheck.examples.layers:Dnese")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.loading.LoadError: module '...' has no attribute 'Dnese' (did you mean 'Dense'?)
    """
    module_name, attr_path = parse_spec(spec)
    obj = _import_module(module_name, search_path)
    owner = module_name
    for attr in attr_path.split("."):
        if not hasattr(obj, attr):
            close = difflib.get_close_matches(attr, [n for n in dir(obj) if not n.startswith("_")])
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise LoadError(f"module '{owner}' has no attribute '{attr}'{hint}")
        obj = getattr(obj, attr)
        owner = f"{owner}.{attr}"
    if not callable(obj):
        raise LoadError(
            f"'{spec}' is a {type(obj).__name__}, not a callable that returns a layer"
        )
    _refuse_required_arguments(spec.strip(), obj)
    return LayerTarget(
        spec=spec.strip(),
        factory=obj,
        takes_rng=_accepts(obj, "rng"),
        takes_dtype=_accepts(obj, "dtype"),
    )


def _refuse_required_arguments(spec: str, factory: Callable[..., Any]) -> None:
    """A factory gradcheck cannot call: it needs arguments besides ``rng`` and ``dtype``
    (said now, rather than as a TypeError raised from inside gradcheck).

    >>> def make_dense(n_in, n_out, rng=None): ...
    >>> _refuse_required_arguments("m:make_dense", make_dense)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.loading.LoadError: 'm:make_dense' needs arguments (n_in, n_out), but ...
    """
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: find out by calling
        return
    required = [p.name for p in parameters
                if p.default is p.empty and p.name not in ("rng", "dtype")
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        name = spec.rpartition(":")[2]
        raise LoadError(
            f"'{spec}' needs arguments ({', '.join(required)}), but gradcheck builds the layer "
            f"with rng= and dtype= at most: point LAYER at a factory that takes no other "
            f"arguments, e.g. def make_layer(rng=None): return {name}(..., rng=rng)")


def make_input(shape: Sequence[int], dtype: str = "float64", seed: int = 0) -> np.ndarray:
    """A fuzzed input: standard normal times a per-seed scale, with exact zeros mixed in.

    About :data:`ZERO_FRACTION` of the entries are exactly 0.0, and for odd seeds the whole
    first slice along axis 0 (a sample of the batch) is zero, which puts every unit of a
    bias-free ReLU layer on its kink. The generator is ``default_rng([seed, 1])``.

    >>> x = make_input((8, 4), "float32", seed=1)
    >>> x.dtype.name, bool((x[0] == 0).all()), bool((x == 0).any())
    ('float32', True, True)
    """
    import numpy as np

    rng = np.random.default_rng([seed, 1])
    x = INPUT_SCALES[seed % len(INPUT_SCALES)] * rng.standard_normal(tuple(shape))
    x[rng.random(x.shape) < ZERO_FRACTION] = 0.0
    if seed % 2 == 1 and x.ndim >= 2:
        x[0] = 0.0
    return x.astype(dtype)
