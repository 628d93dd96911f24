"""Tolerances and error metrics: when an analytic value agrees with a numeric one.

An element passes when |a - n| <= atol + rtol * |n| + noise, where noise is the rounding
error the finite difference itself can carry: about eps * |L| / h (CONVENTIONS.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.errors import GradcheckUsageError

# (rtol, atol) per dtype of the tensor being checked. float32 layers compute in float32:
# their central differences are good to ~1e-4 relative, so 1e-3 leaves no false alarms
# and still catches every gross bug (a sign, a transpose, a missing derivative).
DEFAULT_TOLERANCES: dict[np.dtype, tuple[float, float]] = {
    np.dtype(np.float64): (1e-5, 1e-8),
    np.dtype(np.float32): (1e-3, 1e-5),
    np.dtype(np.float16): (3e-2, 1e-3),
}

# How many times eps * |L| / h counts as rounding noise in a difference of two losses.
# A loss built from dot products of length K carries ~ sqrt(K) eps relative error.
NOISE_FACTOR = 64.0


@dataclass(frozen=True)
class Tolerance:
    """The rtol/atol used for one tensor, and where they came from."""

    rtol: float
    atol: float
    source: str  # "float64 defaults" or "given"

    def allowed(self, numeric: np.ndarray, noise: np.ndarray | float) -> np.ndarray:
        """The largest |analytic - numeric| accepted per element."""
        return self.atol + self.rtol * np.abs(numeric) + noise


def tolerance_for(dtype: np.dtype, rtol: float | None, atol: float | None) -> Tolerance:
    """Defaults from the dtype, overridden by what the user gave.

    >>> tolerance_for(np.dtype(np.float32), None, None)
    Tolerance(rtol=0.001, atol=1e-05, source='float32 defaults')
    """
    default_rtol, default_atol = DEFAULT_TOLERANCES.get(np.dtype(dtype), (1e-5, 1e-8))
    given = rtol is not None or atol is not None
    return Tolerance(
        rtol=default_rtol if rtol is None else float(rtol),
        atol=default_atol if atol is None else float(atol),
        source="given" if given else f"{np.dtype(dtype).name} defaults",
    )


def check_tolerance_argument(name: str, value: float | None) -> None:
    """Refuse a negative, non-finite or non-numeric rtol/atol with a usage error."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise GradcheckUsageError(f"{name} must be a number (or None for the dtype's default), "
                                  f"got {type(value).__name__}")
    if not np.isfinite(value) or value < 0:
        raise GradcheckUsageError(f"{name} must be finite and >= 0, got {value!r}")


def rounding_noise(loss_scale: float, steps: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Rounding error of a central difference: NOISE_FACTOR * eps * |L| / h."""
    eps = float(np.finfo(dtype).eps)
    return NOISE_FACTOR * eps * loss_scale / steps


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> np.ndarray:
    """|a - n| / |n|, with 0/0 = 0 and x/0 = inf, as numpy.testing reports it."""
    diff = np.abs(analytic - numeric)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.abs(numeric)
    return np.where(diff == 0, 0.0, rel)
