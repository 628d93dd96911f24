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
from dataclasses import dataclass, fields
from typing import (
    TYPE_CHECKING,
    Any,
    Literal,
    ParamSpec,
    TypedDict,
    TypeVar,
    get_args,
    get_type_hints,
    overload,
)

from gradcheck.errors import GradcheckArgumentError, GradcheckUsageError, short_repr

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

#: What each option means; appended to the docstring of every front door (see front_door)
#: and of :class:`Options`: written here once.
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
- reset_random: True to restore the global states of Python's ``random`` and numpy's
  ``np.random`` before every call of the code under test (a loss that samples, such as
  negative sampling), so that it answers the same at the same point, and once more when
  the check ends (default False).
"""


class CheckOptions(TypedDict, total=False):
    """The options as keyword arguments: a front door declares them as
    ``**options: Unpack[CheckOptions]``, so mypy and IDEs check every name and value, and
    :func:`front_door` shows them in help() with the defaults of :class:`Options`.

    >>> sorted(CheckOptions.__annotations__) == sorted(OPTION_NAMES)
    True
    """

    rtol: float | None
    atol: float | None
    mode: Mode
    kinks: KinkMode
    seed: int | None
    executor: Executor | None
    progress: ProgressCallback | bool | None
    reset_random: bool


@dataclass(frozen=True)
class Options:
    """How to check, validated once: a bad value is a usage error naming the option.

    >>> Options(seed=3).mode, Options(**{"rtol": 1e-6}).rtol
    ('auto', 1e-06)
    """

    rtol: float | None = None
    atol: float | None = None
    mode: Mode = DEFAULT_MODE
    kinks: KinkMode = DEFAULT_KINKS
    seed: int | None = DEFAULT_SEED
    executor: Executor | None = None
    progress: ProgressCallback | bool | None = None
    reset_random: bool = False

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
        check_executor(self.executor)
        check_progress(self.progress)
        if not isinstance(self.reset_random, bool):
            raise GradcheckUsageError(f"reset_random must be True or False, got "
                                      f"{short_repr(self.reset_random)}")

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
        if self.reset_random:
            shown.append("reset_random=True")
        return f"{call}, {', '.join(shown)})"

    def as_dict(self) -> dict[str, object]:
        """The options a report records (everything but the executor and progress)."""
        return {"mode": self.mode, "kinks": self.kinks, "seed": self.seed,
                "rtol": self.rtol, "atol": self.atol, "reset_random": self.reset_random}


#: The options every front door takes, in the order help() shows them.
OPTION_NAMES: tuple[str, ...] = tuple(field.name for field in fields(Options))
# the keyword form and the object are two views of one vocabulary: keep them in step
assert set(CheckOptions.__annotations__) == set(OPTION_NAMES), "CheckOptions != Options"
Options.__doc__ = f"{Options.__doc__}\n    " + OPTIONS_DOC.replace("\n", "\n    ").rstrip()


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


def check_executor(executor: object) -> None:
    """Refuse an ``executor`` that is not a running concurrent.futures.Executor.

    A shut-down pool would otherwise fail only once a scan is large enough to be spread:
    a small check would pass and a large one raise RuntimeError from deep inside.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> pool = ThreadPoolExecutor(1); pool.shutdown()
    >>> check_executor(pool)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: executor= was shut down ...
    """
    if executor is None:
        return
    from concurrent.futures import Executor

    if not isinstance(executor, Executor):
        raise GradcheckUsageError(
            "executor must be a concurrent.futures.Executor (e.g. a ProcessPoolExecutor), "
            f"got {type(executor).__name__}")
    # the standard pools say so only in private flags; other executors are caught when a
    # scan first submits to them (gradcheck.parallel)
    if any(getattr(executor, flag, None) is True for flag in ("_shutdown", "_shutdown_thread")):
        raise GradcheckUsageError(executor_shut_down(type(executor).__name__))


def executor_shut_down(kind: str) -> str:
    """The message for ``executor=`` given a pool that no longer takes work."""
    return (f"executor= was shut down (a {kind} that takes no new work): pass a running "
            "executor, e.g. check inside `with ProcessPoolExecutor() as pool:` with "
            "executor=pool, or leave executor out to check in this process")


def check_progress(progress: object) -> None:
    """Refuse a ``progress`` that is neither True/False/None nor a callable taking
    ``(done, total)``, before the check starts rather than at its first report.

    >>> check_progress(lambda: None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: progress must accept (done, total), ...
    """
    if progress is None or isinstance(progress, bool):
        return
    if not callable(progress):
        raise GradcheckUsageError("progress must be a callable(done, total), True (a bar "
                                  f"on stderr) or None, got {type(progress).__name__}")
    try:
        signature = inspect.signature(progress)
    except (TypeError, ValueError):  # builtins and C callables without a signature
        return
    try:
        signature.bind(0, 0)
    except TypeError:
        name = getattr(progress, "__name__", type(progress).__name__)
        raise GradcheckUsageError(
            f"progress must accept (done, total), the coordinates checked so far and in all, "
            f"but {name}{signature} does not: e.g. progress=lambda done, total: "
            "print(done, total)") from None


def check_subject(subject: object) -> Subject | None:
    """``subject`` if it is a :class:`Subject` (or None), else a usage error saying what
    one is: check_params names what it checks with it.

    >>> check_subject("w")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: subject must be a gradcheck.Subject, e.g. ...
    """
    if subject is None or isinstance(subject, Subject):
        return subject
    raise GradcheckUsageError(
        f"subject must be a gradcheck.Subject, e.g. gc.Subject(title='my net'), or None for "
        f"the default, got {type(subject).__name__} {short_repr(subject)}")


@dataclass(frozen=True)
class Subject:
    """What is checked, in the user's words: the labels a report and its errors use.

    - title: the report's headline, e.g. "layer mylayers.Dense, input (8, 4) float64";
    - loss_label / grads_label: how errors name the two callables ("layer.forward");
    - call: the call's text up to its options, for the "repeat with" line;
    - input_name: which params entry is the input x (None for check_params);
    - output_shape: the layer's output shape (for the diagnosis), or a callable that
      tells it once the check has run (a layer's output is known after its forward).

    The front door's name (``door``) is the call's function: ``check_params``.

    >>> Subject("params w").loss_label, Subject("params w").door
    ('loss()', 'check_params')
    """

    title: str
    loss_label: str = "loss()"
    grads_label: str = "grads()"
    call: str = "check_params(loss, grads, params"
    input_name: str | None = None
    output_shape: tuple[int, ...] | Callable[[], tuple[int, ...] | None] | None = None

    @property
    def door(self) -> str:
        return self.call.split("(", 1)[0].strip()


# ---------------------------------------------------------------------------- front doors

P = ParamSpec("P")
R = TypeVar("R")

#: Keywords that some front doors take beside the options: a door without one says which
#: doors take it, rather than only "unexpected".
DOOR_KEYWORDS: dict[str, str] = {"upstream": "check_layer and check_pair",
                                 "fixed": "check_pair", "subject": "check_params"}


@dataclass(frozen=True)
class Door:
    """What a front door checks about a call before any user code runs.

    - signature: the door's, with ``**options: Unpack[CheckOptions]`` spelled out;
    - calls: for a door that hands some of its arguments on to the function under test
      (check_pair's ``forward(*args)``), that function's parameter and the parameters
      whose values it is called with, in order: ``("forward", "args")``.
    """

    name: str
    signature: inspect.Signature
    calls: tuple[str, ...] = ()

    def admit(self, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
        """Raise a usage error for a call that does not fit, or whose keyword could be
        meant for the function under test as well as for gradcheck."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as error:
            raise GradcheckArgumentError(_misfit(self.name, self.signature, args, kwargs,
                                                 error)) from None
        if self.calls:
            _refuse_shadowed(self, bound, kwargs)


@overload
def front_door(fn: Callable[P, R], /, *, like: Callable[..., Any] | None = None
               ) -> Callable[P, R]: ...
@overload
def front_door(*, calls: tuple[str, ...]) -> Callable[[Callable[P, R]], Callable[P, R]]: ...
def front_door(fn: Callable[P, R] | None = None, /, *, calls: tuple[str, ...] = (),
               like: Callable[..., Any] | None = None) -> Any:
    """Make ``fn`` a public front door: a call that does not fit its signature (a
    misspelled option, a missing argument, an option passed by position) raises
    :class:`~gradcheck.errors.GradcheckArgumentError` naming ``fn`` and the nearest option,
    before any user code runs; :data:`OPTIONS_DOC` is appended to its docstring; and a
    usage error raised inside comes back without gradcheck's own frames (its message
    names the argument and the fix: a page of internal frames would only bury it).

    ``fn`` may declare the options as ``**options: Unpack[CheckOptions]``: mypy checks them,
    and help() shows them spelled out with their defaults. ``calls=`` names the function
    under test and the parameters it is called with (see :class:`Door`); ``like=`` takes
    the signature and ``calls`` of another door (the assert_* and the pytest fixture's
    methods are built from the check_* functions).

    >>> @front_door
    ... def check(x, *, rtol=None, atol=None):
    ...     return x
    >>> check(1, rtl=1e-3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckArgumentError: check() got an unexpected option 'rtl' (did you ...
    """
    if fn is None:
        return functools.partial(front_door, calls=calls)
    model = door_of(like) if like is not None else None
    spec = Door(fn.__name__, model.signature if model else _spelled_out(fn),
                model.calls if model else calls)

    @functools.wraps(fn)
    def door(*args: P.args, **kwargs: P.kwargs) -> R:
        __tracebackhide__ = True  # pytest shows the user's call and the check, not this frame
        try:
            spec.admit(args, kwargs)
            return fn(*args, **kwargs)
        except GradcheckUsageError as error:
            raise error.with_traceback(None)  # noqa: B904 (the same error, from here)

    door.__signature__ = spec.signature  # type: ignore[attr-defined]
    door.__gradcheck_door__ = spec  # type: ignore[attr-defined]
    if fn.__doc__ and OPTIONS_DOC not in fn.__doc__:
        indent = " " * 4
        door.__doc__ = (inspect.cleandoc(fn.__doc__).replace("\n", "\n" + indent) + "\n\n"
                        + indent + OPTIONS_DOC.replace("\n", "\n" + indent).rstrip() + "\n")
    return door


def door_of(fn: Callable[..., Any]) -> Door:
    """The :class:`Door` of a front door (made by :func:`front_door`)."""
    spec = getattr(fn, "__gradcheck_door__", None)
    if not isinstance(spec, Door):
        raise TypeError(f"{getattr(fn, '__name__', fn)!r} is not a gradcheck front door")
    return spec


def _spelled_out(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with ``**options: Unpack[CheckOptions]`` replaced by one
    keyword-only parameter per option, annotated and with its default from
    :class:`Options`: what help() shows and what a call is bound against."""
    signature = inspect.signature(fn)
    parameters = list(signature.parameters.values())
    if not parameters or parameters[-1].kind is not inspect.Parameter.VAR_KEYWORD \
            or "CheckOptions" not in str(parameters[-1].annotation):
        return signature
    from concurrent.futures import Executor

    types = get_type_hints(CheckOptions, localns={"Executor": Executor})
    options = [inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY,
                                 default=field.default, annotation=types[field.name])
               for field in fields(Options)]
    return signature.replace(parameters=parameters[:-1] + options)


def _refuse_shadowed(door: Door, bound: inspect.BoundArguments,
                     kwargs: dict[str, object]) -> None:
    """A keyword given to the door that the function under test also takes, and that its
    arguments given by position do not reach: ``check_pair(dropout_forward, ..., x, 0.5,
    seed=1)`` for ``dropout_forward(x, p, seed=None)``. Refused rather than guessed."""
    under_test = bound.arguments.get(door.calls[0])
    try:
        parameters = inspect.signature(under_test).parameters  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return
    given: list[object] = []
    for name in door.calls[1:]:
        value = bound.arguments.get(name, ())
        given.extend(value if door.signature.parameters[name].kind
                     is inspect.Parameter.VAR_POSITIONAL else [value])
    positional = [p for p in parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    reached = {p.name for p in positional[:len(given)]}
    reached |= set(getattr(under_test, "keywords", None) or ())  # bound by functools.partial
    for key in kwargs:
        theirs = parameters.get(key)
        if theirs is None or key in reached or theirs.kind in (theirs.VAR_POSITIONAL,
                                                               theirs.POSITIONAL_ONLY):
            continue
        owner = getattr(under_test, "__name__", door.calls[0])
        if theirs.kind is theirs.KEYWORD_ONLY:
            kind, how = "a keyword-only parameter", (
                f"bind {owner}'s first, e.g. functools.partial({owner}, {key}=...), and pass "
                f"gradcheck's as {key}=...")
        else:
            names = ", ".join(p.name for p in positional[:positional.index(theirs) + 1])
            kind, how = "a parameter", (
                f"pass {owner}'s by position ({names}) and gradcheck's as {key}=..., or leave "
                "gradcheck's out")
        raise GradcheckUsageError(
            f"{key}= is gradcheck's option, and {owner} also has {kind} {key!r} that your "
            f"positional arguments do not reach: {door.name}() will not guess which one you "
            f"mean; {how}")


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
        elsewhere = difflib.get_close_matches(key, [k for k in DOOR_KEYWORDS
                                                    if k not in keywords], n=1, cutoff=0.75)
        owner = _taken_by(key, args)
        if elsewhere and not close:
            hint = f" ({elsewhere[0]}= is a keyword of {DOOR_KEYWORDS[elsewhere[0]]} only)"
        elif owner and not close:
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
    switch: bool = False  # a flag without a value (``--reset-random``); "true"/"false" in ini

    @property
    def dashed(self) -> str:
        """The flag's name on a command line: ``reset-random`` for ``reset_random``."""
        return self.name.replace("_", "-")


def parse_switch(text: str) -> bool:
    """An on/off setting's text (an ini value, or a flag's presence) as a bool.

    >>> parse_switch("true"), parse_switch("0")
    (True, False)
    """
    words = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}
    if text.strip().lower() not in words:
        raise GradcheckUsageError(f"invalid switch {text!r}: expected true or false")
    return words[text.strip().lower()]


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
    "reset_random": FlagSpec("reset_random", "", "restore the global states of Python's "
                             "random and np.random before every call of the code under test "
                             "(a loss that samples)", parse_switch, False, switch=True),
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
        if flag.switch:
            addoption(f"{prefix}{flag.dashed}", action="store_true", help=flag.help,
                      default=flag.default if parse_now else None, dest=f"{prefix.strip('-')}"
                      f"{'_' if prefix.strip('-') else ''}{name}".replace("-", "_"))
            continue
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
