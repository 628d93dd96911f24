"""The options of a check, declared once: their types, defaults, allowed values, checks,
and the "repeat with" text that reproduces a run.

Every front door (check_params, check_layer, check_function, check_pair, check_loss, the
pytest plugin, the command line) builds one frozen :class:`Options` and hands it to the
engine with a :class:`Subject` that names what is checked in the user's words.

>>> Options(mode="full", seed=3).call_text("check_layer(layer, x")
"check_layer(layer, x, seed=3, mode='full', kinks='subgradient')"
>>> Options(mode="slow")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
gradcheck.errors.GradcheckUsageError: mode must be one of 'auto', 'full', 'fast'; got 'slow'
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from gradcheck.errors import GradcheckUsageError

Mode = Literal["auto", "full", "fast"]
KinkMode = Literal["subgradient", "hull", "strict", "skip"]
ProgressCallback = Callable[[int, int], None]

MODES: tuple[str, ...] = get_args(Mode)
KINK_MODES: tuple[str, ...] = get_args(KinkMode)

#: The options every front door takes, in the order help() shows them.
OPTION_NAMES: tuple[str, ...] = ("rtol", "atol", "mode", "kinks", "seed", "executor", "progress")


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
    mode: Mode = "auto"
    kinks: KinkMode = "subgradient"
    seed: int | None = 0
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
        seed = self.seed
        if seed is not None and (isinstance(seed, bool)
                                 or not isinstance(seed, int | np.integer) or seed < 0):
            raise GradcheckUsageError(f"seed must be an int >= 0 or None, got {seed!r}")
        if self.executor is not None and not isinstance(self.executor, Executor):
            raise GradcheckUsageError(
                "executor must be a concurrent.futures.Executor (e.g. a ProcessPoolExecutor), "
                f"got {type(self.executor).__name__}")
        if not (self.progress is None or isinstance(self.progress, bool)
                or callable(self.progress)):
            raise GradcheckUsageError("progress must be a callable(done, total), True (a bar "
                                      f"on stderr) or None, got {type(self.progress).__name__}")

    def rng(self) -> np.random.Generator:
        """The one random generator of a check, from ``seed``."""
        return np.random.default_rng(self.seed)

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
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise GradcheckUsageError(f"{name} must be a number (or None for the default), "
                                  f"got {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        raise GradcheckUsageError(f"{name} must be finite and >= 0, got {value!r}")


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
