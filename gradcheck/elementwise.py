"""The front door for elementwise derivative functions: ``check_elementwise(f, df, x)`` for
``y = f(x)`` applied element by element and ``df(x)`` its derivative there
(``sigmoid_prime(z)`` in Nielsen's network.py, the ``gradient(x)`` of an activation
class), with no upstream gradient of their own.

It checks L = sum(g * f(x)) for a random upstream g against g * df(x), through the one
engine (:func:`gradcheck.engine.run.run_check`). Because the map is elementwise, a
coordinate moves its own output only, and at a kink the hull of the one-sided slopes is
exact: ``ReLU'(0) = 2`` fails, any value in [0, 1] passes. That the map is elementwise is
checked on the way: a move of one input that changes another output is named in the
report's problems (use check_layer or check_pair for a map that mixes its inputs).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack

import numpy as np

from gradcheck.adapters import (
    INPUT_NAME,
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
from gradcheck.text import flat_element
from gradcheck.validate import check_callable


class ElementwiseObjective:
    """L = sum(g * f(x)) over a private copy of x, gradient g * df(x); remembers the first
    move that changed an output other than its own."""

    def __init__(self, f: Callable[[np.ndarray], Any], df: Callable[[np.ndarray], Any],
                 x: np.ndarray, rng: np.random.Generator) -> None:
        self.f, self.df = f, df
        self.params = {INPUT_NAME: x}
        self._x0 = x.copy()
        self._g = rng.standard_normal(x.shape)
        self._loss = OutputLoss(lambda y: precision_dtype(y.dtype, x.dtype))
        self._y0: np.ndarray | None = None
        self.mixed: tuple[int, int] | None = None  # (moved input, other output changed)

    def _output(self) -> np.ndarray:
        x = self.params[INPUT_NAME]
        y = output_array(self.f(x), "f(x)")
        if y.shape != x.shape:
            raise GradcheckUsageError(
                f"f(x) returned shape {y.shape} for x of shape {x.shape}: check_elementwise "
                "needs f applied element by element (y shaped like x); for a map that "
                "changes the shape use check_layer or check_pair")
        return y

    def loss(self) -> float:
        y = self._output()
        g = self._g.astype(y.dtype).astype(np.float64) if y.dtype.kind == "f" else self._g
        if self._y0 is None:
            self._y0 = np.array(y, copy=True)
        elif self.mixed is None:
            self._note_mixing(y)
        return self._loss([y], [g])

    def _note_mixing(self, y: np.ndarray) -> None:
        """A move of some inputs that changed an output at another index."""
        assert self._y0 is not None
        moved = self.params[INPUT_NAME].reshape(-1) != self._x0.reshape(-1)
        changed = y.reshape(-1) != self._y0.reshape(-1)
        other = np.flatnonzero(changed & ~moved)
        if len(other) and moved.any():
            self.mixed = (int(np.flatnonzero(moved)[0]), int(other[0]))

    def grads(self) -> dict[str, Any]:
        x = self.params[INPUT_NAME]
        derivative = self.df(x)
        refuse_non_array(derivative, "df(x)", "the derivative of f at each element of x, "
                         "an array like x")
        derivative = np.asarray(derivative)
        if derivative.shape != x.shape:
            raise GradientShapeError(
                f"df(x) returned shape {derivative.shape} for x of shape {x.shape}: the "
                "derivative of an elementwise f has one value per element")
        y = self._output()
        g = self._g.astype(y.dtype).astype(np.float64) if y.dtype.kind == "f" else self._g
        return {INPUT_NAME: g * derivative}


@front_door
def check_elementwise(
    f: Callable[[np.ndarray], Any],
    df: Callable[[np.ndarray], Any],
    x: np.ndarray,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check ``df(x)``, the derivative of the elementwise function ``f`` at each element of
    x, against finite differences of ``f``. x is copied first. Kinks are judged by the hull
    of the one-sided slopes, which is exact for an elementwise map: ReLU'(0) must lie in
    [0, 1]. A ``f`` that is not elementwise is named in the report's problems. Returns the
    report (``assert_elementwise`` raises unless it is ok).

    >>> import numpy as np, gradcheck as gc
    >>> relu = lambda z: np.maximum(z, 0.0)
    >>> x = np.array([-1.0, 0.0, 2.0])
    >>> gc.check_elementwise(relu, lambda z: (z > 0) * 1.0, x).ok      # ReLU'(0) = 0
    True
    >>> relu_prime = lambda z: (z > 0) + 2.0 * (z == 0)                 # ReLU'(0) = 2
    >>> print(gc.check_elementwise(relu, relu_prime, x).status)
    FAILED
    """
    checking = Options(**options)
    check_callable(f, "f", 1, "x; it returns f applied to each element of x")
    check_callable(df, "df", 1, "x; it returns the derivative of f at each element of x")
    objective = ElementwiseObjective(f, df, float_input(x, "x"), checking.rng())
    x_copy = objective.params[INPUT_NAME]
    subject = Subject(title=f"elementwise {callable_name(f)}, x {x_copy.shape} "
                            f"{x_copy.dtype.name}",
                      loss_label="f(x)", grads_label="df(x)",
                      call="check_elementwise(f, df, x", input_name=INPUT_NAME,
                      output_shape=x_copy.shape)
    report = run_check(objective.loss, objective.grads, objective.params, checking, subject)
    if objective.mixed is not None:
        moved, other = objective.mixed
        report.problems.append(Problem(
            "not_elementwise",
            f"f is not elementwise: moving {flat_element('x', moved, x_copy.shape)} changed "
            f"f's output at {flat_element('y', other, x_copy.shape)} too, so df(x) (one "
            "value per element) cannot be its derivative; check a map that mixes its inputs "
            "with check_layer or check_pair"))
    return report
