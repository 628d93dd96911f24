"""The options of a check, declared once: their types, defaults, allowed values, checks,
the "repeat with" text that reproduces a run, and their command-line form.

Every front door (check_params, check_layer, check_function, check_pair, check_loss, the
pytest plugin, the command line) builds one frozen :class:`Options` and hands it to the
engine with a :class:`Subject` that names what is checked in the user's words. The pytest
plugin and the command line declare their flags with :func:`add_check_options`, so the
defaults and allowed values below are the only ones.

numpy is imported only when a check runs: the pytest plugin reads this module at startup.

>>> Options(mode="full", seed=3).call_text("check_layer(layer, x")
"check_layer(layer, x, seed=3, mode='full', kinks='subgradient')"
>>> Options(mode="slow")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
gradcheck.errors.GradcheckUsageError: mode must be one of 'auto', 'full', 'fast'; got 'slow'
"""
from __future__ import annotations

import difflib
import functools
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, get_args

from gradcheck.errors import GradcheckArgumentError, GradcheckUsageError

if TYPE_CHECKING:
    from concurrent.futures import Executor

    import numpy as np

Mode = Literal["auto", "full", "fast"]
KinkMode = Literal["subgradient", "hull", "strict", "skip"]
ProgressCallback = Callable[[int, int], None]

MODES: tuple[str, ...] = get_args(Mode)
KINK_MODES: tuple[str, ...] = get_args(KinkMode)

#: The defaults, here and nowhere else (front doors' signatures read them).
DEFAULT_MODE: Mode = "auto"
DEFAULT_KINKS: KinkMode = "subgradient"
DEFAULT_SEED: int = 0

#: The options every front door takes, in the order help() shows them.
OPTION_NAMES: tuple[str, ...] = ("rtol", "atol", "mode", "kinks", "seed", "executor", "progress")

#: What each option means; appended to the docstring of every front door (see front_door).
OPTIONS_DOC = """Options (keyword-only, the same for every front door):

- rtol, atol: an element passes when |analytic - numeric| <= atol + rtol * |numeric| plus
  the numeric error bar. None (default): from the dtype and the error the finite
  differences themselves show.
- mode: "auto" (default: "full" up to 4096 elements per tensor, "fast" above), "full"
  (every coordinate, 2 evaluations each), "fast" (random directions; failures located by
  halving).
- kinks: "subgradient" (default: kink coordinates outside the one-sided range are
  re-checked at a nearby differentiable point), "hull" (outside the range fails),
  "strict" (kinks are ordinary points), "skip" (left out, counted).
- seed: int >= 0 (default 0) or None: the random upstream gradient, directions, jitters.
- executor: a concurrent.futures.Executor to spread the coordinate scan over.
- progress: True for a bar on stderr (when it is a terminal), or a callable(done, total)
  called about twice a second.
"""


@dataclass(frozen=True)
class Options:
    """How to check: tolerances, mode, kink handling, randomness, parallelism, progress.

    - rtol, atol: an element passes when |analytic - numeric| <= atol + rtol * |numeric|
      plus the numeric error bar. None (default): from the dtype, and from the error the
      finite differences themselves show.
    - mode: "full" (every coordinate), "fast" (random directions, failures located by
      halving), "auto" (full up to 4096 elements per tensor, fast above).
    - kinks: "subgradient" (default: kink coordinates outside the one-sided range are
      re-checked at a nearby differentiable point), "hull" (outside the range fails),
      "strict" (kinks are ordinary points), "skip" (leave them out, counted).
    - seed: the random upstream gradient, directions and jitters (int >= 0, or None).
    - executor: a concurrent.futures.Executor to spread the coordinate scan over.
    - progress: a callable(done, total), or True for a bar on stderr when it is a terminal.
    """

    rtol: float | None = None
    atol: float | None = None
    mode: Mode = DEFAULT_MODE
    kinks: KinkMode = DEFAULT_KINKS
    seed: int | None = DEFAULT_SEED
    executor: Executor | None = None
    progress: ProgressCallback | bool | None = None

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            check_tolerance(name, getattr(self, name))
        if self.mode not in MODES:
            raise GradcheckUsageError(f"mode must be one of {', '.join(map(repr, MODES))}; "
                                      f"got {self.mode!r}")
        if self.kinks not in KINK_MODES:
            raise GradcheckUsageError(f"kinks must be one of "
                                      f"{', '.join(map(repr, KINK_MODES))}; got {self.kinks!r}")
        check_seed(self.seed)
        from concurrent.futures import Executor

        if self.executor is not None and not isinstance(self.executor, Executor):
            raise GradcheckUsageError(
                "executor must be a concurrent.futures.Executor (e.g. a ProcessPoolExecutor), "
                f"got {type(self.executor).__name__}")
        if not (self.progress is None or isinstance(self.progress, bool)
                or callable(self.progress)):
            raise GradcheckUsageError("progress must be a callable(done, total), True (a bar "
                                      f"on stderr) or None, got {type(self.progress).__name__}")

    def rng(self) -> np.random.Generator:
        """The one random generator of a check, from ``seed``.

        Seeded with ``[seed, 0x6763]``, never ``seed`` alone: a user who builds x with
        ``default_rng(0).standard_normal(shape)`` would otherwise get an upstream equal to
        x, and a backward that returns x where it should use the upstream would pass.
        """
        import numpy as np

        return np.random.default_rng(None if self.seed is None else [self.seed, 0x6763])

    def call_text(self, call: str) -> str:
        """``call`` (a call's text up to its options) completed with the options that
        reproduce this run; rtol/atol only when given."""
        shown = [f"seed={self.seed!r}", f"mode={self.mode!r}", f"kinks={self.kinks!r}"]
        shown += [f"{name}={getattr(self, name)!r}" for name in ("rtol", "atol")
                  if getattr(self, name) is not None]
        return f"{call}, {', '.join(shown)})"

    def as_dict(self) -> dict[str, object]:
        """The options a report records (everything but the executor and progress)."""
        return {"mode": self.mode, "kinks": self.kinks, "seed": self.seed,
                "rtol": self.rtol, "atol": self.atol}


def check_tolerance(name: str, value: object) -> None:
    """Refuse a negative, non-finite or non-numeric rtol/atol with a usage error.

    >>> check_tolerance("rtol", -1.0)
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: rtol must be finite and >= 0, got -1.0
    """
    if value is None:
        return
    import numpy as np

    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise GradcheckUsageError(f"{name} must be a number (or None for the default), "
                                  f"got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise GradcheckUsageError(f"{name} must be finite and >= 0, got {value!r}")


def check_seed(seed: object) -> None:
    """Refuse a seed that is not a whole number >= 0 (or None) with a usage error.

    >>> check_seed(1.5)
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: seed must be an int >= 0 or None, got 1.5
    """
    if seed is None:
        return
    import numpy as np

    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise GradcheckUsageError(f"seed must be an int >= 0 or None, got {seed!r}")


@dataclass(frozen=True)
class Subject:
    """What is checked, in the user's words: the labels a report and its errors use.

    - title: the report's headline, e.g. "layer mylayers.Dense, input (8, 4) float64";
    - loss_label / grads_label: how errors name the two callables ("layer.forward");
    - call: the call's text up to its options, for the "repeat with" line;
    - input_name: which params entry is the input x (None for check_params);
    - output_shape: the layer's output shape (for the diagnosis), or a callable that
      tells it once the check has run (a layer's output is known after its forward).

    >>> Subject("params w").loss_label
    'loss()'
    """

    title: str
    loss_label: str = "loss()"
    grads_label: str = "grads()"
    call: str = "check_params(loss, grads, params"
    input_name: str | None = None
    output_shape: tuple[int, ...] | Callable[[], tuple[int, ...] | None] | None = None


# ---------------------------------------------------------------------------- front doors

P = ParamSpec("P")
R = TypeVar("R")


def front_door(fn: Callable[P, R]) -> Callable[P, R]:
    """Make ``fn`` a public front door: a call that does not fit its signature (a
    misspelled option, a missing argument, an option passed by position) raises
    :class:`~gradcheck.errors.GradcheckArgumentError` naming ``fn`` and the nearest option,
    before any user code runs; and :data:`OPTIONS_DOC` is appended to its docstring.

    help(), IDEs and mypy see ``fn``'s own signature (functools.wraps, ParamSpec).

    >>> @front_door
    ... def check(x, *, rtol=None, atol=None):
    ...     return x
    >>> check(1, rtl=1e-3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckArgumentError: check() got an unexpected option 'rtl' (did you ...
    """
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def door(*args: P.args, **kwargs: P.kwargs) -> R:
        __tracebackhide__ = True  # pytest shows the user's call and the check, not this frame
        try:
            signature.bind(*args, **kwargs)
        except TypeError as error:
            raise GradcheckArgumentError(_misfit(fn.__name__, signature, args, kwargs,
                                                 error)) from None
        return fn(*args, **kwargs)

    if fn.__doc__ and OPTIONS_DOC not in fn.__doc__:
        indent = " " * 4
        door.__doc__ = (inspect.cleandoc(fn.__doc__).replace("\n", "\n" + indent) + "\n\n"
                        + indent + OPTIONS_DOC.replace("\n", "\n" + indent).rstrip() + "\n")
    return door


def _misfit(name: str, signature: inspect.Signature, args: tuple[object, ...],
            kwargs: dict[str, object], error: TypeError) -> str:
    """Why a call does not fit ``signature``, in the words of the function called."""
    parameters = signature.parameters
    options = [p for p, spec in parameters.items() if spec.kind is spec.KEYWORD_ONLY]
    keywords = [p for p, spec in parameters.items()
                if spec.kind in (spec.KEYWORD_ONLY, spec.POSITIONAL_OR_KEYWORD)]
    if any(spec.kind is spec.VAR_KEYWORD for spec in parameters.values()):
        return f"{name}() {error}"
    unknown = [key for key in kwargs if key not in keywords]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, keywords, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        owner = _taken_by(key, args)
        if owner and not close:
            hint = (f" ({key!r} is a parameter of {owner}: pass the arguments of the function "
                    "under test by position, in its order)")
        return (f"{name}() got an unexpected option {key!r}{hint}; its options are "
                f"{', '.join(options)}")
    positional = [p for p, spec in parameters.items()
                  if spec.kind in (spec.POSITIONAL_ONLY, spec.POSITIONAL_OR_KEYWORD)]
    takes_rest = any(spec.kind is spec.VAR_POSITIONAL for spec in parameters.values())
    if not takes_rest and len(args) > len(positional):
        example = "rtol" if "rtol" in options else options[0] if options else "option"
        return (f"{name}() takes {len(positional)} positional arguments ({', '.join(positional)})"
                f" but {len(args)} were given: options are keyword-only, e.g. "
                f"{name}({', '.join(positional)}, {example}=...)")
    return f"{name}() {error}"


def _taken_by(key: str, args: tuple[object, ...]) -> str:
    """The name of a callable among ``args`` (the function under test) that has a parameter
    ``key``: ``conv_param=`` meant for forward, given to check_pair."""
    for arg in args:
        if callable(arg) and not isinstance(arg, type):
            try:
                if key in inspect.signature(arg).parameters:
                    return f"{getattr(arg, '__name__', 'the function')}()"
            except (TypeError, ValueError):
                continue
    return ""


# ---------------------------------------------------------------------------- command lines

#: How big an input the command line and the plugin build without being asked (--force):
#: a check costs two forward passes per input element in "full" mode, and the input alone
#: takes 8 bytes per element in float64.
MAX_INPUT_ELEMENTS = 1_000_000


@dataclass(frozen=True)
class FlagSpec:
    """One option as a command-line flag (``--rtol``) or a pytest option
    (``--gradcheck-rtol`` and ini key ``gradcheck_rtol``): its text form and parser."""

    name: str
    metavar: str
    help: str
    parse: Callable[[str], Any]
    default: Any
    choices: tuple[str, ...] | None = None


def parse_tolerance(text: str) -> float:
    """``--rtol``/``--atol`` text as a number >= 0.

    >>> parse_tolerance("1e-3")
    0.001
    """
    try:
        value = float(text)
    except ValueError:
        raise GradcheckUsageError(f"invalid tolerance {text!r}: expected a number >= 0") from None
    if not (math.isfinite(value) and value >= 0):
        raise GradcheckUsageError(f"invalid tolerance {text!r}: expected a number >= 0")
    return value


def parse_seed(text: str) -> int:
    """``--seed`` text as a whole number >= 0.

    >>> parse_seed("3")
    3
    """
    if not text.strip().isdigit():
        raise GradcheckUsageError(f"invalid seed {text!r}: expected a whole number >= 0")
    return int(text)


def _parse_choice(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise GradcheckUsageError(f"invalid {name} {text!r}: expected one of "
                                      f"{', '.join(choices)}")
        return text

    return parse


#: The options a command line can set, in the order its help shows them.
FLAGS: dict[str, FlagSpec] = {
    "mode": FlagSpec("mode", "|".join(MODES),
                     f"coordinates checked: {', '.join(MODES)} (default: {DEFAULT_MODE})",
                     _parse_choice("mode", MODES), DEFAULT_MODE, MODES),
    "kinks": FlagSpec("kinks", "|".join(KINK_MODES),
                      f"how points where the loss has a kink are judged: "
                      f"{', '.join(KINK_MODES)} (default: {DEFAULT_KINKS})",
                      _parse_choice("kinks", KINK_MODES), DEFAULT_KINKS, KINK_MODES),
    "seed": FlagSpec("seed", "N", f"seed of the layer, the input and the check "
                     f"(default: {DEFAULT_SEED})", parse_seed, DEFAULT_SEED),
    "rtol": FlagSpec("rtol", "R", "relative tolerance (default: from the dtype)",
                     parse_tolerance, None),
    "atol": FlagSpec("atol", "A", "absolute tolerance (default: from the dtype)",
                     parse_tolerance, None),
}


def add_check_options(addoption: Callable[..., Any], prefix: str = "--",
                      names: tuple[str, ...] = tuple(FLAGS), *, parse_now: bool = True,
                      argument_error: type[Exception] | None = None) -> None:
    """Declare the check's options on a command line, the way pytest-benchmark's
    ``add_*_options`` serve both its front ends.

    ``addoption`` is argparse's ``add_argument`` or pytest's ``group.addoption``.
    ``parse_now`` (argparse): parse and default here, turning our usage error into
    ``argument_error`` (argparse.ArgumentTypeError) so argparse reports it as usual.
    Without it (pytest, whose ini keys fill in later) the flag's default is None and
    :data:`FLAGS` ``[name].parse`` reads the text afterwards.

    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_check_options(parser.add_argument, argument_error=argparse.ArgumentTypeError)
    >>> parser.parse_args(["--mode", "full", "--rtol", "1e-3"]).rtol
    0.001
    """
    for name in names:
        flag = FLAGS[name]
        kwargs: dict[str, Any] = {"metavar": flag.metavar, "help": flag.help, "default": None}
        if parse_now:
            kwargs["default"] = flag.default
            kwargs["type"] = _argparse_type(flag, argument_error)
        addoption(f"{prefix}{name}", **kwargs)


def _argparse_type(flag: FlagSpec, error: type[Exception] | None) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return flag.parse(text)
        except GradcheckUsageError as exc:
            raise (error or ValueError)(str(exc)) from None

    parse.__name__ = flag.name  # argparse names the type in its fallback message
    return parse
