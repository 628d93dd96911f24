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

from gradcheck.calls import FLOAT64_EPS, Calls
from gradcheck.kinks import distance_to_hull, is_jump, kink_mask, roughness
from gradcheck.numeric import step_sizes
from gradcheck.text import flat_element
from gradcheck.tolerances import (
    NOISE_FACTOR,
    SCALE_FLOOR,
    Tolerance,
    gradient_scale,
    rounding_allowance,
    rounding_floor,
)

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
# A third look (h/4) at a rough element reads the loss as smooth there when its gap to the
# h/2 look is this many times smaller than the gap between h and h/2 (truncation: 4x).
THIRD_LOOK_SHRINK = 2.5
# ... and takes the h look for an outlier (to be repeated) when it is this many times
# smaller: far beyond what truncation does.
OUTLIER_SHRINK = 16.0
# A smooth element too wide to vouch for whose looks so far all reach a kink inside the
# stencil is looked at with the step halved again, down to this fraction of h (a float32
# step reaches past a ReLU's 0 a thousandth away; h/16 clears it).
LAST_LOOK = 1 / 16
# The input-resolution probe (:func:`input_resolution`): relative moves tried in turn (the
# first is far below float32's resolution, the next two straddle float32's and float16's),
# how many coordinates move, how many float64 roundings of |L| a change must exceed to be
# expected, and the share of the expected change the odd part of a blind loss's change
# stays within (a loss that cannot see the move stays put).
RESOLUTION_PROBES = (1e-9, 1e-6, 1e-2)
RESOLUTION_COORDINATES = 64
PROBE_SAMPLE = 4096  # coordinates of a tensor the probes choose among
RESOLUTION_MARGIN = 64.0
BLIND_SHARE = 0.25
# The loss-quantum probe (:func:`loss_quantum`): each move tried is this many times the
# last, up to this many relative steps.
QUANTUM_GROWTH = 8.0
QUANTUM_LARGEST = 64.0
QUANTUM_MOVES = 16  # at most this many moves (L = 0 shows any change)
# A repeated look at the same point may move by this many roundings of the loss values.
REPEAT_FLOORS = 16.0


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
    # bool: failed with a loss that came back bit for bit as at the point at every look:
    # wrong only where the check shows the loss resolves such a change (:func:`judge_still`)
    still: np.ndarray
    # bool: looked at again for its looks' disagreement while its one-sided slopes were
    # apart, or its first two looks far apart (a kink within the step): if undecided, it
    # is re-checked at a jittered point
    near_kink: np.ndarray

    @staticmethod
    def concat(parts: list[Measured]) -> Measured:
        if not parts:
            kinds = {"flat_indices": np.intp, "status": np.intp, "rough": bool, "kink": bool,
                     "jittered": bool, "tied": bool, "still": bool, "near_kink": bool}
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
    # the steps the loss's values move in where measured far coarser than eps |L| (a loss
    # near 0 computed through intermediates near 1): each value is off by up to half of it
    loss_quantum: float = 0.0

    @property
    def relative_step(self) -> float:
        """eps**(1/3) of ``model_eps``: the step is h = it * max(1, |v|)."""
        return self.model_eps ** (1 / 3)


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
    still: np.ndarray  # bool: both loss values came back bit for bit as at the point
    reported: np.ndarray  # bool: the loss bounded its own rounding (model_floor is that)


def differences(calls: Calls, name: str, flat_indices: np.ndarray, steps: np.ndarray,
                loss_at_point: float, setting: Setting) -> Differences:
    """Central and one-sided differences at the given steps, with their rounding bounds."""
    stencil = calls.scan(name, flat_indices, steps)
    forward, backward = stencil.one_sided(loss_at_point)
    loss_scale = np.maximum(abs(loss_at_point),
                            np.maximum(np.abs(stencil.loss_plus), np.abs(stencil.loss_minus)))
    taken = 0.5 * (stencil.step_plus + stencil.step_minus)
    floor = rounding_floor(setting.loss_eps, loss_scale, taken)
    model_floor = rounding_floor(setting.model_eps, loss_scale, taken)
    allowance = rounding_allowance(setting.model_eps, loss_scale, taken)
    reported = np.zeros(len(taken), dtype=bool)
    if stencil.rounding_plus is not None and stencil.rounding_minus is not None:
        # the loss bounded its own rounding (the outputs a move changed, check_layer): that,
        # not its dtype times |L|, is what the difference of two values can carry
        measured = (stencil.rounding_plus + stencil.rounding_minus) / (2 * taken) + floor
        reported = np.isfinite(measured)
        model_floor = np.where(reported, measured, model_floor)
        allowance = np.where(reported, NOISE_FACTOR * measured, allowance)
    if setting.loss_quantum:  # measured steps: a few of them are all they can carry
        quantum = setting.loss_quantum / taken
        floor = np.maximum(floor, quantum)
        model_floor = np.maximum(model_floor, quantum)
        allowance = np.maximum(allowance, 4 * quantum)
    still = (stencil.loss_plus == loss_at_point) & (stencil.loss_minus == loss_at_point)
    return Differences(stencil.central(), forward, backward, floor, model_floor, allowance,
                       taken, still, reported)


def measure(calls: Calls, name: str, flat_indices: np.ndarray, analytic_flat: np.ndarray,
            loss_at_point: float, setting: Setting) -> Measured:
    """Central differences at the listed coordinates, and a verdict for each."""
    tol = setting.tolerance
    dtype = calls.arrays[name].dtype
    values = np.asarray(calls.arrays[name].flat[flat_indices])
    steps = step_sizes(values, eps=setting.model_eps)
    analytic = analytic_flat[flat_indices]
    first = differences(calls, name, flat_indices, steps, loss_at_point, setting)
    stencils = _Stencils(calls, name, flat_indices, steps, loss_at_point, setting)
    numeric, forward, backward = first.numeric.copy(), first.forward.copy(), first.backward.copy()
    finite = np.isfinite(numeric)
    agreement_floor = _agreement_floor(first, finite)
    # what the default atols are relative to (tolerances.Tolerance._atol)
    largest = gradient_scale(numeric, analytic)
    atol_scale = max(largest, abs(loss_at_point))
    judge = _Judge(tol, atol_scale, SCALE_FLOOR * largest, agreement_floor)
    with np.errstate(invalid="ignore"):
        mismatch = np.abs(analytic - numeric)
        agree = mismatch <= judge.detect(numeric) + agreement_floor(first)
        # a kink must stand clear of rounding noise, or a coarse loss reads as kinks
        kink = (kink_mask(forward, backward, dtype) & finite
                & (np.abs(forward - backward) > first.allowance / 8))
        apart = kink.copy()  # one-sided slopes apart at the first look
        # a one-sided spread must clear this to be a jump: the detection tolerance of the
        # slopes themselves (a smaller jump cannot move any convention's value out of
        # tolerance, and a linear piece's rounding would pass for one) and the rounding
        jump_floor = tol.detect(np.abs(forward) + np.abs(backward), atol_scale) \
            + first.allowance / 8
        # an agreeing element flagged as a kink may only be curved (x^2 at 0, a float32
        # step across a minimum): at h/2 the spread of a curve halves, a jump's stays
        curved = np.flatnonzero(agree & kink)
    if len(curved):
        look = stencils.look(curved, 0.5)
        kink[curved] = is_jump(np.abs(forward - backward)[curved],
                               np.abs(look.forward - look.backward),
                               np.abs(look.numeric - numeric[curved]), jump_floor[curved])
    # an element that agreed within the rounding its loss can carry has that as its error
    # bar (a float16 output rounded at the step's scale), never less
    bar = np.maximum(first.floor, agreement_floor(first))
    allowed = judge.detect(numeric) + bar
    rough_bar = np.zeros(len(flat_indices), dtype=bool)
    unverified = np.zeros(len(flat_indices), dtype=bool)
    still = np.zeros(len(flat_indices), dtype=bool)
    near_kink = np.zeros(len(flat_indices), dtype=bool)
    # generous: what the old single-step test accepted; a kink's numbers are judged by it
    generous = tol.at_kink(numeric, atol_scale) + first.allowance

    suspects = np.flatnonzero(~agree & finite)
    if len(suspects):
        half = stencils.look(suspects, 0.5)
        a = analytic[suspects]
        gap = np.abs(half.numeric - numeric[suspects])
        generous_half = tol.at_kink(half.numeric, atol_scale) + half.allowance
        # kinks are looked for at the detection tolerance: a jump smaller than the
        # verification atol is still a kink, not a wrong gradient
        rough = gap > (judge.detect(numeric[suspects]) + first.allowance[suspects]
                       + judge.detect(half.numeric) + half.allowance)
        jump = is_jump(np.abs(forward - backward)[suspects],
                       np.abs(half.forward - half.backward), gap, jump_floor[suspects])
        smooth = ~rough & ~jump
        verdict = judge.smooth(a, numeric[suspects], (forward - backward)[suspects], half)
        take_half = rough | smooth  # a kink on the point keeps the first look's numbers
        for column, new in ((numeric, half.numeric), (forward, half.forward),
                            (backward, half.backward)):
            column[suspects[take_half]] = new[take_half]
        bar[suspects] = np.where(smooth, verdict.own_error, bar[suspects])
        allowed[suspects] = np.where(smooth, verdict.allowed,
                                     np.where(rough, generous_half, generous[suspects]))
        generous[suspects[rough]] = generous_half[rough]
        rough_bar[suspects] = smooth & verdict.rough_bar
        agree[suspects] = smooth & verdict.fine
        # a loss that never moved gives a numeric 0 with no error bar to measure: blind to
        # the move (its arithmetic rounds it away: -log p with p rounded to 1), or flat
        still[suspects] = smooth & ~verdict.fine & first.still[suspects] & half.still
        unverified[suspects] = smooth & ~verdict.fine & ~verdict.wrong
        kink[suspects] = rough | jump
        # Rough: the two looks differ by more than the tolerance. A kink inside the stencil
        # does that, but so do strong curvature (a gradient tiny next to it: near an
        # optimum, log or exp far from 1) and a loss that glitches on one call; a third
        # look tells them apart (:func:`_third_look`). So it does for a smooth element
        # the two looks cannot decide or vouch for (a float32 step that reaches past a
        # kink: the gap is within rounding, yet no measure of the error).
        # Only where rounding at h/4 stays within what could be vouched for: else
        # agreement within it would be no evidence.
        limit = tol.verify(np.nan_to_num(half.numeric), largest, atol_scale)
        too_wide = smooth & ~verdict.wrong & ~still[suspects] & (
            ~verdict.fine | (verdict.own_error > limit))
        looked = (rough | too_wide) & (2 * agreement_floor(half) <= limit)
        near_kink[suspects] = looked & (rough | apart[suspects])
        # the looks so far of each element looked at again: the last two, and the spread
        candidates, fraction = suspects[looked], 0.25
        at_h, at_half = first.numeric[candidates], numeric[candidates]
        spread_before, limit = np.abs(forward - backward)[candidates], limit[looked]
        while len(candidates):
            settled, look, earlier, consistent = _third_look(stencils, candidates, at_h,
                                                             at_half, fraction)
            # Smooth from the last step on means the one-sided spread d+ - d- (curvature:
            # h L'') halves with the step. A kink on the point (a tie) keeps it; kinks
            # within the step (several, as a zero row through Dense + ReLU spreads them)
            # move it any which way. Those stay kinks.
            spread_now = np.abs(look.forward - look.backward)
            halves = settled & (np.abs(spread_now - spread_before / 2)
                                <= spread_before / 8 + 2 * look.floor
                                + jump_floor[candidates] / 8)
            done = candidates[halves]
            late = judge.smooth(analytic[done], earlier[halves], (forward - backward)[done],
                                _subset(look, halves))
            for column, new in ((numeric, look.numeric), (forward, look.forward),
                                (backward, look.backward)):
                column[done] = new[halves]
            # a smaller step's rounding floor is larger: an element looked at again because
            # it could not be decided agrees within what the looks measured, never within
            # that floor alone (a float16 bug of 6% would hide in it at h/4)
            fine = late.fine & (kink[done] | (np.abs(analytic[done] - look.numeric[halves])
                                              <= late.allowed))
            bar[done] = late.own_error
            allowed[done] = late.allowed
            rough_bar[done] = late.rough_bar
            agree[done] = fine
            unverified[done] = ~fine & ~late.wrong
            kink[done] = False
            # A smooth element too wide to vouch for, not smooth from the last step on
            # either (a float32 step reaching past a ReLU's 0 a thousandth away at every
            # look so far, or just clear of it at the last): halve again, while the
            # rounding at the next step stays within what could be vouched for. (A rough
            # element keeps its kink: several kinks within the steps, as a zero row through
            # Dense + ReLU spreads them, can read as smooth at a smaller one.)
            again = (consistent & ~halves & ~kink[candidates] & (fraction > LAST_LOOK)
                     & (2 * agreement_floor(look) <= limit))
            candidates, fraction = candidates[again], fraction / 2
            at_h, at_half = at_half[again], look.numeric[again]
            spread_before, limit = spread_now[again], limit[again]

    # a coordinate that is NaN or inf at the point cannot be moved by a finite step
    unverified |= ~np.isfinite(values)
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
                    np.zeros(count, dtype=bool), still & (status == BAD), near_kink)


class SmoothVerdict(NamedTuple):
    """A smooth element judged by two looks (the earlier one at twice the step)."""

    fine: np.ndarray  # agrees within the error bar the two looks measured
    wrong: np.ndarray  # off by more than any error the numbers could carry
    own_error: np.ndarray  # the error of the later look's value
    allowed: np.ndarray  # the largest |a - n| accepted there
    rough_bar: np.ndarray  # the bar is set by the gap between the looks, not by rounding


@dataclass(frozen=True)
class _Judge:
    """The tolerances one tensor's elements are judged by."""

    tolerance: Tolerance
    atol_scale: float  # what default atols are relative to (|L|, the largest |gradient|)
    # An element smaller than this (a tenth of the tensor's largest gradient) is held to it:
    # its absolute error is what matters next to the others. A rounding-sized mismatch on
    # a near-zero element (a kink too small to see) is no bug.
    magnitude_floor: float
    agreement_floor: Callable[[Differences], np.ndarray]

    def detect(self, numeric: np.ndarray) -> np.ndarray:
        """The mismatch allowed before the error bar is consulted."""
        return self.tolerance.detect(np.maximum(np.abs(numeric), self.magnitude_floor),
                                     self.atol_scale)

    def smooth(self, analytic: np.ndarray, earlier: np.ndarray, earlier_spread: np.ndarray,
               look: Differences) -> SmoothVerdict:
        """Judge elements where the loss is smooth, from the central differences at a step
        (``earlier``, with its one-sided spread d+ - d-) and at half that step (``look``)."""
        gap = np.abs(look.numeric - earlier)
        measured_bar = np.maximum(GAP_FACTOR * gap, look.floor)
        # the error of the later value itself: gap/3 where truncation is O(h^2) (Richardson)
        own_error = np.maximum(gap / 3, look.floor)
        # what a bug must clear: the measured bar, the loss's roughness at this scale (the
        # part of the second differences that does not scale as h^2), and a few roundings
        # at the coarsest precision in play; measured, not a dtype's eps times |L|
        rough_noise = roughness(earlier_spread, look.forward - look.backward)
        safe_bar = np.maximum.reduce([measured_bar, ROUGHNESS_FACTOR * rough_noise,
                                      MODEL_ROUNDINGS * look.model_floor])
        detect = self.detect(look.numeric)
        with np.errstate(invalid="ignore"):
            off = np.abs(analytic - look.numeric)
            fine = off <= detect + np.maximum(measured_bar, self.agreement_floor(look))
            wrong = off > detect + safe_bar
        return SmoothVerdict(fine, wrong, own_error, detect + measured_bar,
                             gap / 3 >= look.floor)


def _subset(d: Differences, keep: np.ndarray) -> Differences:
    return Differences(*(column[keep] for column in d))


@dataclass(frozen=True)
class _Stencils:
    """Where the looks at one tensor's coordinates are taken: the listed coordinates, their
    first steps, the point's loss."""

    calls: Calls
    name: str
    flat_indices: np.ndarray
    steps: np.ndarray
    loss_at_point: float
    setting: Setting

    def look(self, positions: np.ndarray, fraction: float) -> Differences:
        """The differences at ``positions`` with ``fraction`` of their first steps."""
        return differences(self.calls, self.name, self.flat_indices[positions],
                           fraction * self.steps[positions], self.loss_at_point, self.setting)


def _third_look(stencils: _Stencils, positions: np.ndarray, at_h: np.ndarray,
                at_half: np.ndarray, fraction: float = 0.25
                ) -> tuple[np.ndarray, Differences, np.ndarray, np.ndarray]:
    """Elements whose central differences at h and h/2 disagree beyond the tolerance (or
    by too much to vouch for them) looked at again at h/4 (``fraction`` of the first step;
    "h" and "h/2" are then the two looks before). Returns which the three looks read as
    smooth, the look with their latest estimate and the one before it, from which its
    error is measured (:meth:`_Judge.smooth`), and which read consistently (every
    reading but the middle outlier's).

    - curvature shrinks the gap 4x per halving: smooth; the estimates are Richardson's
      (4 c(h/2) - c(h)) / 3 and (4 c(h/4) - c(h/2)) / 3, free of the h^2 term;
    - the h look an outlier (a kink between h/2 and h, or a glitch), h/2 and h/4 agree:
      smooth from h/2 on;
    - a kink inside the stencil (closer than h/2) moves every look, and the gap grows as
      the step shrinks: a kink, as before;
    - the h/2 look an outlier while h and h/4 agree: no kink does that.
    An outlying look is taken again at the same point: a loss that answers differently
    there is named (``Calls.note_unrepeatable``), never read as a kink.
    """
    look = stencils.look(positions, fraction)
    gap = np.abs(at_half - at_h)
    with np.errstate(invalid="ignore"):
        settled = np.abs(look.numeric - at_half) <= gap / THIRD_LOOK_SHRINK
        first_outlier = settled & (np.abs(look.numeric - at_half) <= gap / OUTLIER_SHRINK)
        middle_outlier = ~settled & (np.abs(look.numeric - at_h) <= gap / THIRD_LOOK_SHRINK)
    for earlier_fraction, outlier, seen in ((4 * fraction, first_outlier, at_h),
                                            (2 * fraction, middle_outlier, at_half)):
        if outlier.any():
            again = stencils.look(positions[outlier], earlier_fraction)
            moved = np.abs(again.numeric - seen[outlier]) > REPEAT_FLOORS * again.floor
            shape = stencils.calls.arrays[stencils.name].shape
            for k in np.flatnonzero(moved):
                where = flat_element(stencils.name,
                                     int(stencils.flat_indices[positions[outlier][k]]), shape)
                stencils.calls.note_unrepeatable(
                    f"{where}: the same central difference came out {seen[outlier][k]:.17g} "
                    f"and then {again.numeric[k]:.17g}")
    # curvature: extrapolate; an outlier at h: the h/2 and h/4 looks as they are
    curved = settled & ~first_outlier
    latest = np.where(curved, (4 * look.numeric - at_half) / 3, look.numeric)
    earlier = np.where(curved, (4 * at_half - at_h) / 3, at_half)
    return settled, look._replace(numeric=latest), earlier, ~middle_outlier


def _agreement_floor(first: Differences, finite: np.ndarray
                     ) -> Callable[[Differences], np.ndarray]:
    """The rounding a numeric value may differ by and still agree, for stencils of this
    tensor: one rounding of |L| at the coarsest precision (``model_floor``), capped by the
    noise the first look's second differences show when there are enough of them. Not
    where the loss bounded its own rounding: that bound is what its values carry, and a
    rounding that falls alike on every value (terms of a sum that a move leaves as they
    were) leaves second differences of 0 while each first difference is off by it."""
    spread = np.abs(first.forward - first.backward)[finite] * first.steps[finite]
    if len(spread) < NOISE_SAMPLES:
        return lambda d: d.model_floor
    observed = NOISE_MARGIN * float(np.max(spread))  # in loss units: noise does not shrink
    return lambda d: np.where(d.reported, d.model_floor,
                              np.minimum(d.model_floor, observed / d.steps))


@dataclass(frozen=True)
class _Probe:
    """Joint moves of a few coordinates for the resolution probes: those with the largest
    |gradient| x max(1, |value|) in every tensor (among PROBE_SAMPLE random ones of a
    larger one), each moved toward its gradient's sign by ``move`` x max(1, |value|), so
    the change adds up to ``move`` x ``expected_per_unit`` where the gradient is right."""

    calls: Calls
    loss_at_point: float
    picked: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]  # name, indices, values, signs
    expected_per_unit: float

    @staticmethod
    def pick(calls: Calls, analytic: dict[str, np.ndarray], loss_at_point: float,
             rng: np.random.Generator) -> _Probe:
        picked = []
        expected = 0.0
        for name, gradient in analytic.items():
            flat_gradient = gradient.reshape(-1)
            # distinct coordinates: one drawn twice would count twice in the prediction
            sample = (np.arange(flat_gradient.size) if flat_gradient.size <= PROBE_SAMPLE
                      else np.unique(rng.integers(0, flat_gradient.size, PROBE_SAMPLE)))
            values = calls.originals[name].reshape(-1)[sample].astype(np.float64)
            weight = np.abs(flat_gradient[sample]) * np.maximum(1.0, np.abs(values))
            top = np.argsort(-np.nan_to_num(weight), kind="stable")[:RESOLUTION_COORDINATES]
            picked.append((name, sample[top], values[top], np.sign(flat_gradient[sample[top]])))
            expected += float(np.sum(weight[top]))
        return _Probe(calls, loss_at_point, picked, expected)

    @property
    def usable(self) -> bool:
        return bool(np.isfinite(self.expected_per_unit) and self.expected_per_unit > 0)

    def changes(self, move: float) -> tuple[float, float]:
        """L(+move) - L and L(-move) - L, every picked coordinate moved toward its sign."""
        found = []
        for sign in (1.0, -1.0):  # a loop: a StopIteration of the user's code stays one
            try:
                for name, indices, values, signs in self.picked:
                    self.calls.arrays[name].flat[indices] = (
                        values + sign * signs * move * np.maximum(1.0, np.abs(values)))
                found.append(self.calls.loss() - self.loss_at_point)
            finally:
                self.calls.restore()
        return found[0], found[1]

    def follows(self, move: float, up: float, down: float, visible: float) -> bool:
        """The loss moved as the gradient says, both ways (within half the change)."""
        expected = move * self.expected_per_unit
        return (abs(up - expected) <= 0.5 * expected + visible
                and abs(down + expected) <= 0.5 * expected + visible)

    def linear(self, move: float, up: float, down: float, visible: float) -> bool:
        """Half the move gives half the change (odd parts): the loss is linear at ``move``,
        so that it followed the gradient there is no catching up of a curve."""
        half_up, half_down = self.changes(move / 2)
        odd = (up - down) / 2
        return abs((half_up - half_down) / 2 - odd / 2) <= abs(odd) / 6 + visible


def input_resolution(calls: Calls, analytic: dict[str, np.ndarray], loss_at_point: float,
                     rng: np.random.Generator) -> float:
    """The relative resolution at which the loss sees its inputs, measured: the eps of the
    float type (float32, float16) whose resolution lies between a relative move of
    RESOLUTION_PROBES the loss is blind to and a larger one it follows as the gradient says
    (a loss that casts to float32 inside, though it comes back as a Python float); else
    float64's. Two loss evaluations per move tried, and two more before a coarse claim.

    Only a loss that stays put (its odd part, (L(+m) - L(-m)) / 2, nowhere near what the
    gradient predicts) counts as blind: one that moves, but not as its gradient says, has a
    wrong gradient, not a coarse resolution, and keeps float64's (as does a move too small
    for float64 to show: no evidence either way). A coarse claim also needs the loss to be
    linear at the move it follows (half the move, half the change): a curve that catches up
    with a wrong gradient's prediction at a larger move is not a resolution.
    """
    probe = _Probe.pick(calls, analytic, loss_at_point, rng)
    visible = RESOLUTION_MARGIN * FLOAT64_EPS * abs(loss_at_point)  # what float64 can see
    if not probe.usable:
        return FLOAT64_EPS
    blind_at = 0.0  # the largest move the loss stayed put for
    for move in RESOLUTION_PROBES:
        expected = move * probe.expected_per_unit
        if expected <= visible:
            continue  # too small a move to show in float64 either: no evidence
        up, down = probe.changes(move)
        odd = (up - down) / 2
        # seen: the loss moves as the gradient says, both ways (a loss blind to the move
        # stays put, or jumps by a rounding of its coarse arithmetic where a coordinate sat
        # at a rounding boundary: one way, by chance as much as expected)
        if probe.follows(move, up, down, visible):
            if not blind_at:
                return FLOAT64_EPS
            linear = probe.linear(move, up, down, visible)
            return _eps_between(blind_at, move) if linear else FLOAT64_EPS
        if abs(odd) > BLIND_SHARE * expected + visible:
            return FLOAT64_EPS  # it moved, but not as the gradient says: not a precision
        blind_at = move
    return FLOAT64_EPS  # never moved as the gradient says: not a matter of precision


def loss_quantum(calls: Calls, analytic: dict[str, np.ndarray], loss_at_point: float,
                 rng: np.random.Generator, model_eps: float) -> float:
    """The steps the loss's values move in, measured, where they are far coarser than its
    precision at |L| makes them: a loss near 0 computed through intermediates near 1
    (-log p with p a float near 1, a saturated softmax) rounds at their scale, not its own.
    0.0 where no such steps show.

    Moves growing QUANTUM_GROWTH-fold are tried in turn, from the smallest whose predicted
    change float64 would show at |L| (RESOLUTION_MARGIN roundings) up to QUANTUM_LARGEST
    relative steps (at most QUANTUM_MOVES of them). A claim needs the first of them to
    leave the loss as it was, bit for bit both ways (one it sees shows its resolution is
    not the matter), and a larger one it follows as the gradient says, linearly (moves of a
    few steps in between may follow it only roughly): a wrong gradient whose loss does not
    move (a leak through a dead unit) never catches up. The quantum is the smallest change
    seen, more than the change the largest blind move predicted: an upper bound on the
    loss's resolution, so it can widen an error bar, never narrow one. Two loss
    evaluations per move tried, and two more before a claim.
    """
    probe = _Probe.pick(calls, analytic, loss_at_point, rng)
    if not probe.usable:
        return 0.0
    visible = RESOLUTION_MARGIN * model_eps * abs(loss_at_point)
    largest = QUANTUM_LARGEST * model_eps ** (1 / 3)
    move = max(visible * QUANTUM_GROWTH / probe.expected_per_unit,
               largest * QUANTUM_GROWTH ** -QUANTUM_MOVES)
    blind_change = 0.0  # the change predicted at the largest move the loss stayed put for
    changes: list[float] = []  # every non-zero change seen
    while move <= largest:
        up, down = probe.changes(move)
        changes += [abs(change) for change in (up, down) if change]
        if not changes:
            blind_change = move * probe.expected_per_unit
        elif not blind_change:
            return 0.0  # the loss saw the first move it could: resolution is not the matter
        elif probe.follows(move, up, down, 0.0) and probe.linear(move, up, down, 0.0):
            quantum = min(changes)
            return quantum if quantum > blind_change else 0.0
        move *= QUANTUM_GROWTH
    return 0.0


def _eps_between(unseen: float, seen: float) -> float:
    """eps of the float type whose resolution lies between a relative move the loss did
    not see and one it saw (float64's when none does)."""
    for dtype in (np.float32, np.float16):
        eps = float(np.finfo(dtype).eps)
        if unseen <= eps < seen:
            return eps
    return FLOAT64_EPS


def judge_still(results: dict[str, Measured], settings: dict[str, Setting],
                originals: dict[str, np.ndarray], loss_at_point: float,
                smallest_change: float) -> None:
    """Elements whose loss never moved (``Measured.still``: numeric 0 at h and h/2, bit for
    bit, against an analytic value that predicts a change) are wrong where the loss can be
    shown to resolve the change predicted at h/2: some evaluation of the check moved it by
    no more than that (a loss rounded in coarse steps never moves by less than one), or no
    plausible rounding could hide it, NOISE_FACTOR roundings of max(|L|, 1) at the coarsest
    precision in play (a loss near 0 computed through intermediates near 1, as -log p is
    for p near 1, rounds at their scale, not its own). Elsewhere they stay unverified: the
    loss may be blind to the move, or flat, and the numbers cannot tell which. Runs after
    the re-checks at jittered points: a loss flat on both sides of hidden kinks is settled
    there first."""
    for name, m in results.items():
        positions = np.flatnonzero(m.still & (m.status == BAD))
        if not len(positions):
            continue
        values = originals[name].reshape(-1)[m.flat_indices[positions]]
        setting = settings[name]
        predicted = np.abs(m.analytic[positions]) * step_sizes(values, setting.model_eps) / 2
        hidden = NOISE_FACTOR * setting.model_eps * max(abs(loss_at_point), 1.0)
        blind = (predicted < smallest_change) & (predicted <= hidden)
        m.status[positions[blind]] = UNVERIFIED


def vouch(results: dict[str, Measured], settings: dict[str, Setting], loss_at_point: float
          ) -> None:
    """Agreeing elements whose numeric error bar exceeds the verification tolerance become
    unverified: the numbers agree with the analytic value, but are too coarse to vouch for
    it. An element smaller than a tenth of the check's largest gradient is held to that
    tenth: its error bar is negligible next to the gradients that matter (W of a Dense
    layer whose input is 0, beside a bias under a loss of 300; a dead hidden layer). A
    small tensor is not excused by a large one for all that: whether an element agrees at
    all is judged against its own tensor's scale (:class:`_Judge`), so a float16 bias
    whose sign is flipped fails beside its weight's 200. The slopes measured a step away
    count among the gradients: at a minimum of a steep bowl (1e13 x^2 at 0) the gradient
    is 0, and the rounding of the loss values a step away is measured against how fast the
    loss moves there, not against 0 (off the kinks only: a jump's slopes are no scale of
    the gradient). Default atols shrink with the largest gradient of the whole check and
    |L|."""
    for name, coarse in too_coarse(results, settings, loss_at_point).items():
        results[name].status[coarse] = UNVERIFIED


def too_coarse(results: dict[str, Measured], settings: dict[str, Setting],
               loss_at_point: float) -> dict[str, np.ndarray]:
    """Per tensor, the agreeing elements whose error bar is too wide to vouch for them
    (:func:`vouch`)."""
    check_scale = max((gradient_scale(m.numeric, m.analytic, m.forward[~m.kink],
                                      m.backward[~m.kink]) for m in results.values()),
                      default=0.0)
    atol_scale = max(check_scale, abs(loss_at_point))
    coarse = {}
    for name, m in results.items():
        # an element on a kink is measured against its own one-sided slopes
        magnitude = np.where(m.kink | (m.status == HULL), np.maximum.reduce(
            [np.abs(m.numeric), np.abs(m.forward), np.abs(m.backward)]), m.numeric)
        limit = settings[name].tolerance.verify(np.nan_to_num(magnitude),
                                                check_scale, atol_scale)
        coarse[name] = ((m.status == OK) | (m.status == HULL)) & (m.bar > limit)
    return coarse
