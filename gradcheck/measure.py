"""Central differences at listed coordinates of one tensor, and a verdict for each:
ok, on a kink, wrong, or unverified (the numbers too coarse to tell).

First look, step h: an element agrees when |a - n| is within the detection tolerance plus
the rounding floor of the loss values.
Everything else gets a second look at h/2 before any verdict:
- the two central differences disagree beyond rounding: the stencil held kinks;
- the one-sided spread does not shrink with the step: a kink sits on the point;
- otherwise the loss is smooth there and the gap between the two steps measures the
  numeric value's own error (Richardson: truncation shrinks 4x, noise grows 2x). The
  element is wrong when the mismatch exceeds that error bar and every allowance rounding
  could claim; it agrees when within the measured bar; unverified in between.
Whether an agreeing element's error bar is narrow enough to vouch for it is decided once
every tensor is measured (:func:`vouch`), against the scale of all the gradients.
A right gradient costs 2 evaluations per coordinate; each element that fails the first
look costs 2 more, and so does each agreeing element whose one-sided differences look like
a kink (the second look tells a jump from curvature).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from gradcheck.calls import Calls
from gradcheck.kinks import distance_to_hull, is_jump, kink_mask, roughness
from gradcheck.numeric import step_sizes
from gradcheck.tolerances import Tolerance, gradient_scale, rounding_allowance, rounding_floor

# Per-coordinate verdicts.
OK, HULL, PENDING, SKIPPED, BAD, UNVERIFIED = range(6)
GAP_FACTOR = 2.0  # the measured error bar is this many times the h vs h/2 gap
ROUGHNESS_FACTOR = 4.0  # a wrong element clears this many times the measured roughness
MODEL_ROUNDINGS = 8.0  # ... and this many roundings of |L| at the coarsest precision
# One rounding of |L| at the coarsest precision is a bound, often far above the noise the
# loss really shows (a float16 layer's loss summed in float64 moves only by the rounding of
# the outputs a coordinate touches). Where a tensor has this many coordinates, agreement is
# granted within NOISE_MARGIN x the largest second difference seen across them (noise plus
# curvature: never below the noise) instead, when that is smaller.
NOISE_SAMPLES = 8
NOISE_MARGIN = 2.0


@dataclass
class Measured:
    """Coordinates of one tensor evaluated by central differences, and their verdicts."""

    flat_indices: np.ndarray
    analytic: np.ndarray
    numeric: np.ndarray
    forward: np.ndarray  # one-sided differences
    backward: np.ndarray
    allowed: np.ndarray  # largest |a - n| accepted: tolerance + numeric error bar
    bar: np.ndarray  # the numeric error bar alone
    rough: np.ndarray  # bool: the bar is set by the h vs h/2 gap, not by |L|'s rounding
    kink: np.ndarray  # bool: one-sided differences disagree beyond curvature
    status: np.ndarray  # OK, HULL, PENDING, SKIPPED, BAD, UNVERIFIED
    error: np.ndarray  # |a - n|, or the distance to the hull where the hull settled it
    jittered: np.ndarray  # bool: verdict (and numbers) from a re-check at a jittered point
    tied: np.ndarray  # bool: failed as a group of tied elements

    @staticmethod
    def concat(parts: list[Measured]) -> Measured:
        if not parts:
            kinds = {"flat_indices": np.intp, "status": np.intp, "rough": bool, "kink": bool,
                     "jittered": bool, "tied": bool}
            return Measured(*(np.zeros(0, dtype=kinds.get(f.name, np.float64))
                              for f in fields(Measured)))
        return Measured(*(np.concatenate([getattr(p, f.name) for p in parts])
                          for f in fields(Measured)))


@dataclass(frozen=True)
class Setting:
    """What a measurement of one tensor needs besides the coordinates."""

    tolerance: Tolerance
    kinks: str  # the kinks mode
    loss_eps: float  # precision of the loss values (float64 unless they come back coarser)
    model_eps: float  # coarsest precision the loss passed through (tensor dtype included)


class Differences(NamedTuple):
    """One stencil's numbers per coordinate."""

    numeric: np.ndarray  # central difference
    forward: np.ndarray  # d+
    backward: np.ndarray  # d-
    floor: np.ndarray  # error from the rounding of the loss values
    # one rounding at the coarsest precision the loss passed through: a float32 layer's
    # loss is float32-rough though summed in float64. Agreement within it is agreement.
    model_floor: np.ndarray
    allowance: np.ndarray  # generous rounding bound a bug must clear
    steps: np.ndarray  # the steps taken


def differences(calls: Calls, name: str, flat_indices: np.ndarray, steps: np.ndarray,
                loss_at_point: float, setting: Setting) -> Differences:
    """Central and one-sided differences at the given steps, with their rounding bounds."""
    stencil = calls.scan(name, flat_indices, steps)
    forward, backward = stencil.one_sided(loss_at_point)
    loss_scale = np.maximum(abs(loss_at_point),
                            np.maximum(np.abs(stencil.loss_plus), np.abs(stencil.loss_minus)))
    taken = 0.5 * (stencil.step_plus + stencil.step_minus)
    return Differences(stencil.central(), forward, backward,
                       rounding_floor(setting.loss_eps, loss_scale, taken),
                       rounding_floor(setting.model_eps, loss_scale, taken),
                       rounding_allowance(setting.model_eps, loss_scale, taken), taken)


def measure(calls: Calls, name: str, flat_indices: np.ndarray, analytic_flat: np.ndarray,
            loss_at_point: float, setting: Setting) -> Measured:
    """Central differences at the listed coordinates, and a verdict for each."""
    tol = setting.tolerance
    dtype = calls.arrays[name].dtype
    values = np.asarray(calls.arrays[name].flat[flat_indices])
    steps = step_sizes(values, eps=max(float(np.finfo(dtype).eps), setting.loss_eps))
    analytic = analytic_flat[flat_indices]
    first = differences(calls, name, flat_indices, steps, loss_at_point, setting)
    numeric, forward, backward = first.numeric.copy(), first.forward.copy(), first.backward.copy()
    finite = np.isfinite(numeric)
    agreement_floor = _agreement_floor(first, finite)
    # what the default atols are relative to (tolerances.Tolerance._atol)
    atol_scale = max(gradient_scale(numeric, analytic), abs(loss_at_point))
    with np.errstate(invalid="ignore"):
        mismatch = np.abs(analytic - numeric)
        agree = mismatch <= tol.detect(numeric, atol_scale) + agreement_floor(first)
        # a kink must stand clear of rounding noise, or a coarse loss reads as kinks
        kink = (kink_mask(forward, backward, dtype) & finite
                & (np.abs(forward - backward) > first.allowance / 8))
        # a one-sided spread must clear this to be a jump: the detection tolerance of the
        # slopes themselves (a smaller jump cannot move any convention's value out of
        # tolerance, and a linear piece's rounding would pass for one) and the rounding
        jump_floor = tol.detect(np.abs(forward) + np.abs(backward), atol_scale) \
            + first.allowance / 8
        # an agreeing element flagged as a kink may only be curved (x^2 at 0, a float32
        # step across a minimum): at h/2 the spread of a curve halves, a jump's stays
        curved = np.flatnonzero(agree & kink)
    if len(curved):
        look = differences(calls, name, flat_indices[curved], 0.5 * steps[curved],
                           loss_at_point, setting)
        kink[curved] = is_jump(np.abs(forward - backward)[curved],
                               np.abs(look.forward - look.backward),
                               np.abs(look.numeric - numeric[curved]), jump_floor[curved])
    bar = first.floor.copy()
    allowed = tol.detect(numeric, atol_scale) + bar
    rough_bar = np.zeros(len(flat_indices), dtype=bool)
    unverified = np.zeros(len(flat_indices), dtype=bool)
    # generous: what the old single-step test accepted; a kink's numbers are judged by it
    generous = tol.at_kink(numeric, atol_scale) + first.allowance

    suspects = np.flatnonzero(~agree & finite)
    if len(suspects):
        half = differences(calls, name, flat_indices[suspects], 0.5 * steps[suspects],
                           loss_at_point, setting)
        a = analytic[suspects]
        gap = np.abs(half.numeric - numeric[suspects])
        generous_half = tol.at_kink(half.numeric, atol_scale) + half.allowance
        # kinks are looked for at the detection tolerance: a jump smaller than the
        # verification atol is still a kink, not a wrong gradient
        rough = gap > (tol.detect(numeric[suspects], atol_scale) + first.allowance[suspects]
                       + tol.detect(half.numeric, atol_scale) + half.allowance)
        jump = is_jump(np.abs(forward - backward)[suspects],
                       np.abs(half.forward - half.backward), gap, jump_floor[suspects])
        smooth = ~rough & ~jump
        measured_bar = np.maximum(GAP_FACTOR * gap, half.floor)
        # the error of the h/2 value itself: gap/3 where truncation is O(h^2) (Richardson)
        own_error = np.maximum(gap / 3, half.floor)
        # what a bug must clear: the measured bar, the loss's roughness at this scale (the
        # part of the second differences that does not scale as h^2), and a few roundings
        # at the coarsest precision in play; measured, not a dtype's eps times |L|
        rough_noise = roughness((forward - backward)[suspects], half.forward - half.backward)
        safe_bar = np.maximum.reduce([measured_bar, ROUGHNESS_FACTOR * rough_noise,
                                      MODEL_ROUNDINGS * half.model_floor])
        with np.errstate(invalid="ignore"):
            off = np.abs(a - half.numeric)
            fine = off <= (tol.detect(half.numeric, atol_scale)
                           + np.maximum(measured_bar, agreement_floor(half)))
            wrong = off > tol.detect(half.numeric, atol_scale) + safe_bar
        take_half = rough | smooth  # a kink on the point keeps the first look's numbers
        for column, new in ((numeric, half.numeric), (forward, half.forward),
                            (backward, half.backward)):
            column[suspects[take_half]] = new[take_half]
        bar[suspects] = np.where(smooth, own_error, bar[suspects])
        allowed[suspects] = np.where(smooth, tol.detect(half.numeric, atol_scale) + measured_bar,
                                     np.where(rough, generous_half, generous[suspects]))
        generous[suspects[rough]] = generous_half[rough]
        rough_bar[suspects] = smooth & (gap / 3 >= half.floor)
        agree[suspects] = smooth & fine
        unverified[suspects] = smooth & ~fine & ~wrong
        kink[suspects] = rough | jump

    error = np.abs(analytic - numeric)
    status = np.where(agree, OK, np.where(unverified, UNVERIFIED, BAD))
    hull_gap = distance_to_hull(analytic, forward, backward)
    in_hull = hull_gap <= generous
    settle = kink & ~agree
    if setting.kinks == "skip":
        status = np.where(kink, SKIPPED, status)
    elif setting.kinks in ("hull", "subgradient"):
        status = np.where(settle & in_hull, HULL, status)
        error = np.where(kink & in_hull, np.minimum(error, hull_gap), error)
        allowed = np.where(settle, generous, allowed)
        if setting.kinks == "subgradient":
            status = np.where(settle & ~in_hull, PENDING, status)
    elif setting.kinks == "strict":  # a kink is an ordinary point: judged generously
        status = np.where(settle & (error <= generous), OK, status)
    count = len(flat_indices)
    return Measured(flat_indices, analytic, numeric, forward, backward, allowed, bar,
                    rough_bar, kink, status, error, np.zeros(count, dtype=bool),
                    np.zeros(count, dtype=bool))


def _agreement_floor(first: Differences, finite: np.ndarray
                     ) -> Callable[[Differences], np.ndarray]:
    """The rounding a numeric value may differ by and still agree, for stencils of this
    tensor: one rounding of |L| at the coarsest precision (``model_floor``), capped by the
    noise the first look's second differences show when there are enough of them."""
    spread = np.abs(first.forward - first.backward)[finite] * first.steps[finite]
    if len(spread) < NOISE_SAMPLES:
        return lambda d: d.model_floor
    observed = NOISE_MARGIN * float(np.max(spread))  # in loss units: noise does not shrink
    return lambda d: np.minimum(d.model_floor, observed / d.steps)


def vouch(results: dict[str, Measured], settings: dict[str, Setting], loss_at_point: float
          ) -> None:
    """Agreeing elements whose numeric error bar exceeds the verification tolerance become
    unverified: the numbers agree with the analytic value, but are too coarse to vouch for
    it. An element smaller than a tenth of the largest gradient in the whole check is held
    to that tenth (its absolute error is what matters next to the others)."""
    scale = gradient_scale(*(a for m in results.values() for a in (m.numeric, m.analytic)))
    for name, m in results.items():
        limit = settings[name].tolerance.verify(np.nan_to_num(m.numeric), scale,
                                                max(scale, abs(loss_at_point)))
        coarse = ((m.status == OK) | (m.status == HULL)) & (m.bar > limit)
        m.status[coarse] = UNVERIFIED
