"""Non-differentiable points: find them, and settle what can be settled there.

Along one coordinate a piecewise-smooth loss has one-sided derivatives d- and d+. On a
smooth stretch they differ by ~ h |L''|; where the stencil crosses a kink they differ by
the jump, which does not shrink with h. At a single kink crossed, every valid convention
(ReLU'(0) in [0, 1], sign(0) in [-1, 1], any tie split) lies in [min(d-, d+), max(d-, d+)].
"""
from __future__ import annotations

import numpy as np

from gradcheck.numeric import relative_step

KINK_MODES = ("subgradient", "hull", "strict", "skip")


def kink_mask(
    forward: np.ndarray, backward: np.ndarray, allowed: np.ndarray, agree: np.ndarray,
    dtype: np.dtype,
) -> np.ndarray:
    """True where the one-sided differences disagree beyond smooth curvature.

    Curvature moves d+ - d- by ~ h |L''| (relative ~ eps**(1/3)); a kink moves it by the
    jump. Two ways to be on a kink:
    - the spread is beyond sqrt(eps**(1/3)) relative: a jump, whatever the verdict;
    - the central difference failed and the spread exceeds twice the tolerance: a kink
      inside the stencil (not necessarily at the point) explains the failure. A kink at
      distance t < h spoils the central difference by exactly half the spread, so this
      catches every kink that can make a correct gradient look wrong.

    >>> bool(kink_mask(np.array([1.0]), np.array([0.0]), np.array([1e-8]), np.array([True]),
    ...                np.float64)[0])
    True
    """
    spread = np.abs(forward - backward)
    relative = np.sqrt(relative_step(dtype)) * (np.abs(forward) + np.abs(backward))
    return (spread > relative) | (~agree & (spread > 2.0 * allowed))


def distance_to_hull(analytic: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """How far each analytic value lies outside [min(d-, d+), max(d-, d+)] (0 inside).

    >>> distance_to_hull(np.array([2.0, 0.5]), np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    array([1., 0.])
    """
    low = np.minimum(forward, backward)
    high = np.maximum(forward, backward)
    return np.maximum(0.0, np.maximum(low - analytic, analytic - high))


def jitter_offsets(steps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random moves of 16 to 32 steps, either sign, off a kink.

    Far enough that a stencil of width h around the new point rarely reaches back to the
    kink (or to a neighbouring one formed by the same zero), close enough to test the same
    piece of code.
    """
    signs = rng.choice(np.array([-1.0, 1.0]), size=steps.shape)
    return signs * rng.uniform(16.0, 32.0, size=steps.shape) * steps
