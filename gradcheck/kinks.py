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


def kink_mask(forward: np.ndarray, backward: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """True where the one-sided differences disagree beyond smooth curvature at one step.

    Curvature moves d+ - d- by ~ h |L''| (relative ~ eps**(1/3)); a kink by the jump.
    The threshold, sqrt(eps**(1/3)) relative, sits between the two where the gradient is
    not small. It is not final: at a smooth minimum (x^2 at 0, d+- = +-h) the spread is
    100 % relative too, so an element that fails is re-examined with ``is_jump``.

    >>> bool(kink_mask(np.array([1.0]), np.array([0.0]), np.float64)[0])
    True
    """
    spread = np.abs(forward - backward)
    return spread > np.sqrt(relative_step(dtype)) * (np.abs(forward) + np.abs(backward))


def is_jump(spread: np.ndarray, spread_half: np.ndarray, seen_noise: np.ndarray,
            floor: np.ndarray) -> np.ndarray:
    """True where the one-sided spread does not shrink when the step is halved.

    On a smooth stretch d+ - d- = h L'' halves with h; at a kink on the point it stays,
    however small the jump (equal slopes on both sides of a multi-kink crossing). The
    spread must also stand clear of the noise seen between the two steps and of the
    rounding floor, or a linear piece's rounding noise would pass for a jump.

    >>> bool(is_jump(np.array([1e-3]), np.array([1e-3]), np.array([1e-9]), np.array([1e-8]))[0])
    True
    >>> bool(is_jump(np.array([1e-3]), np.array([5e-4]), np.array([1e-9]), np.array([1e-8]))[0])
    False
    """
    return (spread_half > 0.75 * spread) & (spread > 8 * seen_noise) & (spread > floor)


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
