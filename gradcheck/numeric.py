"""Finite-difference stencils and the choice of step.

The central difference (L(v+h) - L(v-h)) / 2h has truncation error ~ h^2 |L'''| / 6 and
rounding error ~ eps |L| / h; h = eps^(1/3) * max(1, |v|) balances the two. The step
actually taken is read back from the array after the write, so rounding of v + h in the
array's own dtype never biases the quotient.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np


def relative_step(dtype: np.dtype | type) -> float:
    """The relative step eps**(1/3) for a float dtype.

    >>> round(relative_step(np.float64), 8)
    6.06e-06
    """
    return float(np.finfo(dtype).eps) ** (1.0 / 3.0)


def step_sizes(values: np.ndarray, eps: float | None = None) -> np.ndarray:
    """Per-coordinate steps h_i = eps**(1/3) * max(1, |v_i|), in float64.

    eps is the values' own unless given: a loss that comes back coarser than its inputs
    (a float32 loss of float64 params, a float64 loss of longdouble ones) needs the step
    of the loss's precision.

    >>> h = step_sizes(np.array([0.0, 100.0]))
    >>> float(h[1] / h[0])
    100.0
    """
    magnitude = np.maximum(1.0, np.abs(values.astype(np.float64, copy=False)))
    eps = float(np.finfo(values.dtype).eps) if eps is None else eps
    return eps ** (1.0 / 3.0) * magnitude


class Stencil(NamedTuple):
    """Loss values at v + h and v - h per coordinate, with the steps actually taken."""

    loss_plus: np.ndarray
    loss_minus: np.ndarray
    step_plus: np.ndarray
    step_minus: np.ndarray
    # bounds on the rounding of each loss value where the loss reported them (nan where it
    # did not: then its dtype times |L| is all that is known)
    rounding_plus: np.ndarray | None = None
    rounding_minus: np.ndarray | None = None

    @classmethod
    def join(cls, parts: Sequence[Stencil]) -> Stencil:
        """The stencils of consecutive chunks of coordinates as one; without rounding
        bounds (workers elsewhere do not report them).

        >>> one = Stencil(*(np.array([v]) for v in (1.0, 0.0, 0.5, 0.5)))
        >>> Stencil.join([one, one]).central()
        array([1., 1.])
        """
        return cls(*(np.concatenate([getattr(p, field) for p in parts])
                     for field in ("loss_plus", "loss_minus", "step_plus", "step_minus")))

    def central(self) -> np.ndarray:
        """The central difference (L+ - L-) / (h+ + h-); nan where a loss was not finite
        (the engine reports those, numpy need not warn)."""
        with np.errstate(invalid="ignore", over="ignore"):
            return (self.loss_plus - self.loss_minus) / (self.step_plus + self.step_minus)

    def one_sided(self, loss_at_point: float) -> tuple[np.ndarray, np.ndarray]:
        """The forward and backward differences (d+, d-) from the same evaluations."""
        with np.errstate(invalid="ignore", over="ignore"):
            forward = (self.loss_plus - loss_at_point) / self.step_plus
            backward = (loss_at_point - self.loss_minus) / self.step_minus
        return forward, backward


def central_difference_scan(
    loss: Callable[[], float],
    array: np.ndarray,
    flat_indices: np.ndarray,
    steps: np.ndarray,
    on_step: Callable[[int], None] | None = None,
) -> Stencil:
    """Evaluate ``loss()`` at v + h and v - h for each listed coordinate of ``array``.

    ``array`` is written in place; every coordinate is put back to its exact old value
    before the next is moved (also when ``loss()`` raises). Two evaluations per coordinate.

    >>> a = np.array([1.0, 2.0])
    >>> s = central_difference_scan(lambda: float(np.sum(a ** 2)), a, np.arange(2),
    ...                             np.full(2, 1e-3))
    >>> np.allclose(s.central(), [2.0, 4.0])
    True
    """
    count = len(flat_indices)
    loss_plus = np.empty(count)
    loss_minus = np.empty(count)
    step_plus = np.empty(count)
    step_minus = np.empty(count)
    flat = array.flat
    for k, (i, h) in enumerate(zip(flat_indices.tolist(), steps.tolist(), strict=True)):
        old = flat[i]
        v = float(old)
        try:
            flat[i] = v + h
            step_plus[k] = float(flat[i]) - v
            loss_plus[k] = loss()
            flat[i] = v - h
            step_minus[k] = v - float(flat[i])
            loss_minus[k] = loss()
        finally:
            flat[i] = old
        if on_step is not None:
            on_step(k + 1)
    return Stencil(loss_plus, loss_minus, step_plus, step_minus)
