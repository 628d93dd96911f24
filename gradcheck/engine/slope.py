"""The one measurement: the slope of the loss along a direction, from the loss at v + h and
v - h, at a ladder of steps h, h/2, h/4, ... with one error-bar rule.

A look at step h gives three slopes: the central difference c = (L+ - L-) / 2h and the
one-sided ones, d+ = (L+ - L) / h and d- = (L - L-) / h. Two looks, the finer at half the
coarser's step, are read together (:func:`read_pair`):

- smooth: the one-sided spread d+ - d- (curvature: h L'') halves with the step. The finer
  central difference is the estimate, and the gap between the two looks its error bar:
  truncation shrinks at least 2x per halving, so the finer look is off by no more than
  the gap (4x and a third of it, once a third look confirms the h^2 law: then the
  estimate is Richardson's extrapolation). Rounding adds the floor: one rounding of each
  loss value, over h.
- jump: the spread stays as the step halves, and each one-sided slope stays what it was:
  a kink at the point; [min(d-, d+), max(d-, d+)] is the hull every valid convention lies in.
- rough: neither (a kink inside the coarser stencil, noise): a finer look is needed.

Coordinates, tie directions, fast mode's random directions, jittered points and the
resolution probe all measure this way.

>>> coarse = Slopes.from_values(np.array([1.0]), np.array([-1.0]), np.array([0.0]),
...                             np.array([1.0]), np.array([1e-16]))
>>> fine = Slopes.from_values(np.array([0.5]), np.array([-0.5]), np.array([0.0]),
...                           np.array([0.5]), np.array([2e-16]))
>>> Shape(int(read_pair(coarse, fine, np.zeros(1)).shape[0])).name
'SMOOTH'
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from gradcheck.engine.value import LossValue

# A jump: the finer look keeps more than this share of the coarser look's spread.
JUMP_KEEPS = 0.75
# ... and clears this many times the gap between the two central differences (at a kink
# on the point both central differences sit at the midpoint of the one-sided slopes).
JUMP_OVER_GAP = 8.0
# Smooth: the finer spread is half the coarser one within this share of the coarser (a
# looser test lets looks taken at steps beyond the loss's curvature scale, LSE at |x| = 1e3
# in float32, pass for smooth).
HALVING_SLACK = 1 / 16
# A gap that shrinks this many times from one pair of looks to the next confirms the h^2
# law of a smooth function (exactly 4 without rounding); between ORDER1_SHRINK and it, the
# h law of one whose curvature jumps at the point (exactly 2).
H2_SHRINK = 2.5
ORDER1_SHRINK = 1.6
# What a mismatch must clear to be called a bug, in multiples of each measured error.
SAFE_GAP, SAFE_ROUGHNESS, SAFE_FLOORS = 2.0, 4.0, 8.0


def relative_step(eps: float) -> float:
    """eps**(1/3): h = it * max(1, |v|) balances truncation (~h^2) against rounding
    (~eps |L| / h) for a loss that varies on the scale of |v| (or 1).

    >>> round(relative_step(float(np.finfo(np.float64).eps)), 8)
    6.06e-06
    """
    return float(eps) ** (1.0 / 3.0)


def base_steps(values: np.ndarray, eps: float) -> np.ndarray:
    """Per-coordinate steps h_i = eps**(1/3) * max(1, |v_i|), in float64.

    >>> h = base_steps(np.array([0.0, 100.0]), float(np.finfo(np.float64).eps))
    >>> float(h[1] / h[0])
    100.0
    """
    magnitude = np.maximum(1.0, np.abs(np.asarray(values, dtype=np.float64)))
    return relative_step(eps) * magnitude


class Look(NamedTuple):
    """The loss at v + h and v - h per coordinate, the steps taken, and what the front
    door said of each value: its rounding bound (nan: unknown), how many outputs changed
    (-1: unknown) and one of them (-1: none or unknown)."""

    loss_plus: np.ndarray
    loss_minus: np.ndarray
    step_plus: np.ndarray
    step_minus: np.ndarray
    rounding_plus: np.ndarray
    rounding_minus: np.ndarray
    changed_plus: np.ndarray
    changed_minus: np.ndarray
    where_plus: np.ndarray
    where_minus: np.ndarray
    hidden_plus: np.ndarray  # what unchanged outputs could have lost (0.0: nothing known)
    hidden_minus: np.ndarray

    @classmethod
    def bare(cls, loss_plus: np.ndarray, loss_minus: np.ndarray, step_plus: np.ndarray,
             step_minus: np.ndarray) -> Look:
        """A look with nothing known beyond the numbers (a worker elsewhere took it)."""
        count = len(loss_plus)
        unknown, minus_one = np.full(count, np.nan), np.full(count, -1, dtype=np.intp)
        return cls(loss_plus, loss_minus, step_plus, step_minus, unknown, unknown.copy(),
                   minus_one, minus_one.copy(), minus_one.copy(), minus_one.copy(),
                   np.zeros(count), np.zeros(count))

    @classmethod
    def with_values(cls, loss_plus: np.ndarray, loss_minus: np.ndarray, step_plus: np.ndarray,
                    step_minus: np.ndarray, seen: Sequence[LossValue]) -> Look:
        """A look with what the front door said of each value (in evaluation order: +, -
        for each coordinate)."""
        pairs = np.array([(v.rounding, v.changed, v.where, v.hidden) for v in seen],
                         dtype=np.float64).reshape(-1, 2, 4)
        ints = pairs[:, :, 1:3].astype(np.intp)
        return cls(loss_plus, loss_minus, step_plus, step_minus, pairs[:, 0, 0],
                   pairs[:, 1, 0], ints[:, 0, 0], ints[:, 1, 0], ints[:, 0, 1], ints[:, 1, 1],
                   pairs[:, 0, 3], pairs[:, 1, 3])

    @property
    def step(self) -> np.ndarray:
        return 0.5 * (self.step_plus + self.step_minus)

    def own_output_only(self, flat_indices: np.ndarray) -> np.ndarray:
        """True where both moves of a coordinate changed no output but the one at its own
        flat index (of an output shaped like the input it moves): the coordinate of an
        elementwise map, along which the loss is one function of one input, whose kink
        the hull of one-sided slopes judges exactly. (One output changed is not enough:
        a zero row through Dense, ReLU and a one-unit Dense crosses several kinks into
        one output.)"""
        known = (self.changed_plus >= 0) & (self.changed_minus >= 0)
        one = (self.changed_plus <= 1) & (self.changed_minus <= 1)
        own = (((self.where_plus == flat_indices) | (self.where_plus < 0))
               & ((self.where_minus == flat_indices) | (self.where_minus < 0)))
        return known & one & own


@dataclass(frozen=True)
class Slopes:
    """One look's slopes per coordinate (or direction), and the error rounding puts on
    the central difference (``floor``: the rounding of both loss values, over h)."""

    central: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    step: np.ndarray
    floor: np.ndarray
    still: np.ndarray  # both values came back bit for bit as at the point
    # what outputs left as they were could have lost, over h: a bug must clear it too
    hidden: np.ndarray | float = 0.0

    @staticmethod
    def from_values(loss_plus: np.ndarray, loss_minus: np.ndarray, loss_at_point: np.ndarray,
                    step: np.ndarray, floor: np.ndarray) -> Slopes:
        """Slopes from the loss values at +step, -step and the point (steps taken equal)."""
        with np.errstate(invalid="ignore", over="ignore"):
            return Slopes((loss_plus - loss_minus) / (2 * step),
                          (loss_plus - loss_at_point) / step,
                          (loss_at_point - loss_minus) / step, step, floor,
                          (loss_plus == loss_at_point) & (loss_minus == loss_at_point))

    @staticmethod
    def of(look: Look, loss_at_point: np.ndarray | float, error_plus: np.ndarray,
           error_minus: np.ndarray) -> Slopes:
        """The slopes of a look, with ``error_plus``/``error_minus`` the bound on each loss
        value's error (resolution.Resolution.value_error)."""
        step = look.step
        with np.errstate(invalid="ignore", over="ignore"):
            return Slopes((look.loss_plus - look.loss_minus) / (look.step_plus + look.step_minus),
                          (look.loss_plus - loss_at_point) / look.step_plus,
                          (loss_at_point - look.loss_minus) / look.step_minus, step,
                          (error_plus + error_minus) / (2 * step),
                          (look.loss_plus == loss_at_point) & (look.loss_minus == loss_at_point),
                          (look.hidden_plus + look.hidden_minus) / (2 * step))

    @property
    def spread(self) -> np.ndarray:
        """|d+ - d-|: h L'' on a smooth stretch, the jump at a kink."""
        return np.abs(self.forward - self.backward)

    def take(self, positions: np.ndarray) -> Slopes:
        return Slopes(*(np.asarray(getattr(self, f.name))[positions]
                        if np.ndim(getattr(self, f.name)) else getattr(self, f.name)
                        for f in fields(self)))

    def extrapolated(self, coarser: Slopes, order: np.ndarray | int = 2) -> Slopes:
        """Richardson's extrapolation of this look and one at twice its step, for a
        truncation error of ``order`` (h^2 for a smooth loss; h where its curvature jumps:
        LeakyReLU(w)^2 at 0): that term cancels, rounding counts (2^p + 1) / (2^p - 1) as
        much.

        >>> fine = Slopes(*(np.array([v]) for v in (1.0, 1.0, 1.0, 0.5, 0.0)), np.array([False]))
        >>> coarse = Slopes(*(np.array([v]) for v in (1.5, 1.5, 1.5, 1.0, 0.0)), np.array([False]))
        >>> float(fine.extrapolated(coarse, order=1).central[0])
        0.5
        """
        k = 2.0 ** np.asarray(order)
        return Slopes((k * self.central - coarser.central) / (k - 1),
                      (k * self.forward - coarser.forward) / (k - 1),
                      (k * self.backward - coarser.backward) / (k - 1), self.step,
                      self.floor * (k + 1) / (k - 1), self.still,
                      self.hidden * (k + 1) / (k - 1))


class Shape(IntEnum):
    """How two looks read."""

    SMOOTH = 0  # an estimate with an error bar
    JUMP = 1  # a kink on the point
    ROUGH = 2  # neither: a finer look is needed


@dataclass(frozen=True)
class Reading:
    """Two looks read together, per coordinate (see the module docstring)."""

    shape: np.ndarray  # Shape codes
    estimate: np.ndarray  # the finer look's central difference
    gap: np.ndarray  # |estimate - the coarser look's|
    bar: np.ndarray  # the estimate's error: max(gap, floor) (a third of the gap under h^2)
    agree: np.ndarray  # the mismatch agreement allows beyond the detection tolerance
    safe: np.ndarray  # the mismatch a bug must clear beyond the detection tolerance
    floor: np.ndarray  # the rounding part of the bar
    forward: np.ndarray  # the finer look's one-sided slopes
    backward: np.ndarray
    sides: np.ndarray  # how far they moved from the coarser look's (their truncation)


def read_pair(coarse: Slopes, fine: Slopes, jump_floor: np.ndarray,
              h2_confirmed: np.ndarray | None = None) -> Reading:
    """Read a look (``fine``) with one at twice its step (``coarse``): the one error-bar rule.

    ``jump_floor``: a spread smaller than this is no jump (the detection tolerance of the
    slopes, and rounding). ``h2_confirmed``: where a third look showed the gap shrinking
    by a power of h (the looks are then Richardson's extrapolations, and the error a third
    of the gap).
    """
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.abs(fine.central - coarse.central)
        spread_c, spread_f = coarse.spread, fine.spread
        steady_sides = (np.abs(fine.forward - coarse.forward)
                        + np.abs(fine.backward - coarse.backward)) <= spread_c / 2
        jump = ((spread_f > JUMP_KEEPS * spread_c) & (spread_c > JUMP_OVER_GAP * gap)
                & (spread_c > jump_floor) & steady_sides)
        halves = (np.abs(spread_f - spread_c / 2)
                  <= HALVING_SLACK * spread_c + 2 * (fine.floor + coarse.floor)
                  + jump_floor / 8)
        shape = np.where(jump, Shape.JUMP, np.where(halves, Shape.SMOOTH, Shape.ROUGH))
        # the part of the spreads that is not curvature (h L'' halves): rounding and noise
        roughness = np.abs(2 * spread_f - spread_c) / 2
        truncation = gap if h2_confirmed is None else np.where(h2_confirmed, gap / 3, gap)
        bar = np.maximum(truncation, fine.floor)
        agree = np.maximum(SAFE_GAP * gap, fine.floor)
        safe = np.maximum.reduce([SAFE_GAP * gap, SAFE_ROUGHNESS * roughness,
                                  SAFE_FLOORS * fine.floor]) + fine.hidden
        sides = np.maximum(np.abs(fine.forward - coarse.forward),
                           np.abs(fine.backward - coarse.backward))
    return Reading(shape.astype(np.intp), fine.central, gap, bar, agree, safe, fine.floor,
                   fine.forward, fine.backward, sides)


def kink_mask(forward: np.ndarray, backward: np.ndarray, eps: float) -> np.ndarray:
    """True where one look's one-sided slopes disagree beyond smooth curvature.

    Curvature moves d+ - d- by ~ h |L''| (relative ~ eps**(1/3)); a kink by the jump. The
    threshold, sqrt(eps**(1/3)) relative, sits between the two where the gradient is not
    small. It is not final: at a smooth minimum (x^2 at 0, d+- = +-h) the spread is 100 %
    relative too, and a second look tells (:func:`read_pair`).

    >>> bool(kink_mask(np.array([1.0]), np.array([0.0]), float(np.finfo(float).eps))[0])
    True
    """
    spread = np.abs(forward - backward)
    with np.errstate(invalid="ignore"):
        return spread > np.sqrt(relative_step(eps)) * (np.abs(forward) + np.abs(backward))


def distance_to_hull(analytic: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How far each analytic value lies outside [low, high] (0 inside).

    >>> distance_to_hull(np.array([2.0, 0.5]), np.array([0.0, 0.0]), np.array([1.0, 1.0]))
    array([1., 0.])
    """
    return np.maximum(0.0, np.maximum(low - analytic, analytic - high))
