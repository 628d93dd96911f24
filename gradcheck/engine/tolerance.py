"""Tolerances: when an analytic value agrees with a numeric one, and when the numbers are
too coarse to tell.

Two levels, because they answer two questions:
- detection: is |analytic - numeric| larger than the numbers can explain? Then it is a
  bug. By default this is tight (float64: 1e-7 relative), since central differences of a
  smooth float64 loss are good to ~1e-10 and a dropped eps in a batch-norm backward is a
  1e-6 error; what the numbers cannot explain is judged with their measured error bar.
- verification: is the numeric error bar small enough to vouch for the element? A
  gradient is "ok" only where the error bar is within the verification tolerance
  (float64: 1e-5 relative, 1e-8 absolute); otherwise it is UNVERIFIED, never ok.
Given rtol/atol replace both levels.

>>> t = tolerance_for(np.dtype(np.float32), None, None)
>>> t.source, t.rtol, t.atol
('float32 defaults', 0.01, 0.0001)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Verification tolerances (rtol, atol) per precision: how fine the numbers must be to vouch
# for an element. float32 central differences (step 5e-3) are good to ~1e-4 relative on
# values near 1 and ~1e-3 on outputs in the hundreds; float16 (step 0.1) to ~1e-2.
VERIFY_TOLERANCES: dict[np.dtype, tuple[float, float]] = {
    np.dtype(np.float64): (1e-5, 1e-8),
    np.dtype(np.float32): (1e-2, 1e-4),
    np.dtype(np.float16): (1e-1, 1e-2),
}
# Detection tolerances: below this, a mismatch must also exceed the measured error bar.
DETECT_TOLERANCES: dict[np.dtype, tuple[float, float]] = {
    np.dtype(np.float64): (1e-7, 1e-10),
    np.dtype(np.float32): (1e-3, 1e-5),
    np.dtype(np.float16): (1e-2, 1e-3),
}
# Kink coordinates (hull, strict) are judged a little more leniently than smooth ones: the
# one-sided differences straddle a jump.
KINK_TOLERANCES: dict[np.dtype, tuple[float, float]] = {
    np.dtype(np.float64): (1e-5, 1e-8),
    np.dtype(np.float32): (1e-3, 1e-5),
    np.dtype(np.float16): (3e-2, 1e-3),
}
# An element smaller than this fraction of the tensor's largest gradient is verified
# against that fraction: its absolute error is what matters next to its neighbours.
SCALE_FLOOR = 0.1



def precision_dtype(*dtypes: np.dtype) -> np.dtype:
    """The coarsest of the float dtypes in play (longdouble counts as float64: the loss is
    a Python float).

    >>> precision_dtype(np.dtype(np.float64), np.dtype(np.float32)).name
    'float32'
    """
    coarsest = np.dtype(np.float64)
    for dtype in dtypes:
        if np.finfo(dtype).eps > np.finfo(coarsest).eps:
            coarsest = np.dtype(dtype)
    return coarsest


@dataclass(frozen=True)
class Tolerance:
    """The tolerances used for one tensor, and where they came from."""

    rtol: float  # verification
    atol: float
    detect_rtol: float
    detect_atol: float
    source: str  # "float64 defaults" or "given"
    kink_rtol: float = 0.0
    kink_atol: float = 0.0
    # the smallest scale a default atol follows down: the smallest normal number over eps
    # of the precision (below it values lose digits, and a relative atol means nothing)
    smallest_scale: float = 0.0

    def _atol(self, atol: float, scale: float) -> float:
        # Default atols are absolute for losses or gradients of order 1 and shrink when
        # both are smaller: a loss scaled by 1e-12 is checked as strictly as the same loss
        # unscaled, down to smallest_scale. A loss and gradients all exactly 0 set no
        # scale. ``scale`` is the larger of |L| and the largest |gradient|, so a constant
        # offset can only keep atol at its default, never raise it.
        if self.source == "given" or not scale > 0:
            return atol
        return atol * min(1.0, max(scale, self.smallest_scale))

    def detect(self, numeric: np.ndarray, scale: float) -> np.ndarray:
        """Mismatch allowed before the error bar is consulted; ``scale`` is what the
        default atol is relative to (the larger of |L| and the largest |gradient|)."""
        return self._atol(self.detect_atol, scale) + self.detect_rtol * np.abs(numeric)

    def at_kink(self, numeric: np.ndarray, scale: float) -> np.ndarray:
        """Mismatch allowed at a kink (to the hull, or in strict mode), before rounding."""
        return self._atol(self.kink_atol, scale) + self.kink_rtol * np.abs(numeric)

    def verify_atol(self, atol_scale: float) -> float:
        """The verification atol, relative to ``atol_scale`` (the larger of |L| and the
        largest |gradient|) when it is a default."""
        return self._atol(self.atol, atol_scale)

    def verify(self, numeric: np.ndarray, scale: float, atol_scale: float) -> np.ndarray:
        """The largest numeric error bar at which an element can be vouched for; ``scale``
        is the largest |gradient| of its tensor, ``atol_scale`` what a default atol is
        relative to (:meth:`verify_atol`)."""
        magnitude = np.maximum(np.abs(numeric), SCALE_FLOOR * scale)
        return self.verify_atol(atol_scale) + self.rtol * magnitude


def tolerance_for(dtype: np.dtype, rtol: float | None, atol: float | None) -> Tolerance:
    """Defaults from the precision in play, overridden (at both levels) by what was given.

    >>> tolerance_for(np.dtype(np.float64), 1e-3, None).detect_rtol
    0.001
    """
    dtype = precision_dtype(dtype)
    default_rtol, default_atol = VERIFY_TOLERANCES[dtype]
    detect_rtol, detect_atol = DETECT_TOLERANCES[dtype]
    kink_rtol, kink_atol = KINK_TOLERANCES[dtype]
    if rtol is None and atol is None:
        info = np.finfo(dtype)
        return Tolerance(default_rtol, default_atol, detect_rtol, detect_atol,
                         f"{dtype.name} defaults", kink_rtol, kink_atol,
                         float(info.tiny) / float(info.eps))
    rtol = kink_rtol if rtol is None else float(rtol)
    atol = kink_atol if atol is None else float(atol)
    return Tolerance(rtol, atol, rtol, atol, "given", rtol, atol)


def gradient_scale(*arrays: np.ndarray) -> float:
    """The largest finite |value| among the gradients given (analytic and numeric): what
    the default atols are relative to.

    >>> gradient_scale(np.array([1e-12, -3e-12]), np.array([np.nan, 2e-12]))
    3e-12
    """
    return max((_largest_finite(a) for a in arrays), default=0.0)


def _largest_finite(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    low, high = float(np.min(a)), float(np.max(a))  # no temporary of a's size
    if np.isfinite(low) and np.isfinite(high):
        return max(-low, high)
    return float(np.max(np.abs(a[np.isfinite(a)]), initial=0.0))


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """|a - n| / |n|, with 0/0 = 0 and x/0 = inf, as numpy.testing reports it.

    >>> relative_error(np.array([1.0, 0.0, 1.0]), np.array([2.0, 0.0, 0.0]))
    array([0.5, 0. , inf])
    """
    diff = np.abs(analytic - numeric)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.abs(numeric)
    return np.where(diff == 0, 0.0, rel)
