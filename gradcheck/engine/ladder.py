"""Full mode: every listed coordinate of a tensor measured by a ladder of looks at steps
h, h/2, h/4, ... (gradcheck.engine.slope), as few as settle it.

- One look (2 loss evaluations) for a right gradient: the first look agrees with the
  analytic value within the detection tolerance and its rounding, shows no kink, and its
  rounding is narrow enough to vouch for it.
- Every other coordinate gets looks at halved steps until a pair of them settles it: it
  reads smooth and agrees within the error the pair measured, or is off by more than any
  error it could carry; or it jumps (a kink on the point: its hull decides). A smooth
  pair whose error is its truncation, or a rough pair (a kink inside the coarser step,
  noise), is looked at again, while the rounding at the next step still lets an error bar
  vouch. A look that stands out from the ones on either side of it is taken again: a loss
  that answers differently at the same point is named, never read as a kink.
- Where the loss was measured far coarser than its values' rounding
  (gradcheck.engine.resolution), the coordinates the first look did not settle start
  again from steps chosen for that coarseness.

What comes out is evidence (gradcheck.engine.verdict.Evidence), never a verdict.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from gradcheck.engine.calls import Calls
from gradcheck.engine.resolution import Resolution
from gradcheck.engine.slope import (
    H2_SHRINK,
    ORDER1_SHRINK,
    SAFE_FLOORS,
    Look,
    Reading,
    Shape,
    Slopes,
    base_steps,
    kink_mask,
    read_pair,
)
from gradcheck.engine.verdict import AT_ONCE, Evidence, Judge
from gradcheck.text import flat_element

MAX_HALVINGS = 6  # looks go down to h / 64 at most
MAX_DOMAIN_HALVINGS = 24  # a step that leaves the loss's domain shrinks to h / 2**24 at most
# A look taken again at the same point may move by this many roundings of its values.
REPEAT_FLOORS = 16.0
# The first look flags a kink where its one-sided slopes are apart by more than this many
# roundings (beside kink_mask's share of their size).
KINK_FLOORS = 8.0
# A pair of looks whose gap shrank this much from the pair before: the coarsest look of
# the three stands out (a kink inside it, or a glitch: it is taken again).
OUTLIER_SHRINK = 16.0
# A pair of looks calls an element wrong on its own only where the mismatch is this many
# times their gap; closer, a third look must confirm how the gap shrinks.
CONFIRM_GAPS = 16.0
# A smooth coordinate whose rounding alone is too wide to vouch for it is looked at with
# the step doubled, this many times at most, while its truncation stays below rounding.
MAX_DOUBLINGS = 4


@dataclass(frozen=True)
class Target:
    """The coordinates of one tensor to measure, and how they are judged."""

    name: str
    flat: np.ndarray  # flat indices
    analytic: np.ndarray  # the analytic gradient at them (float64)
    model_eps: float  # the coarsest precision the loss passes through for this tensor
    judge: Judge
    # the input of a map whose output has its shape: a coordinate that moves only the
    # output at its own index is a coordinate of an elementwise map
    elementwise_input: bool = False

    def own_output_only(self, look: Look, positions: np.ndarray | None = None) -> np.ndarray:
        """Where a look's moves changed only each coordinate's own output."""
        flat = self.flat if positions is None else self.flat[positions]
        if not self.elementwise_input:
            return np.zeros(len(flat), dtype=bool)
        return look.own_output_only(flat)


@dataclass(frozen=True)
class FirstLook:
    """The first look at every coordinate of a target, and the steps it intended."""

    look: Look
    steps: np.ndarray
    step_eps: float  # the eps the steps were chosen from


def first_look(calls: Calls, target: Target, resolution: Resolution) -> FirstLook:
    """One look at every finite coordinate of the target (2 loss evaluations each)."""
    values = calls.point.values(target.name, target.flat)
    eps = resolution.step_eps(target.model_eps)
    steps = base_steps(values, eps)
    finite = np.isfinite(values)
    look = _scan(calls, target.name, target.flat, steps, finite)
    return FirstLook(look, steps, eps)


def _scan(calls: Calls, name: str, flat: np.ndarray, steps: np.ndarray, where: np.ndarray
          ) -> Look:
    """A look at the coordinates ``where`` selects; the others get nan (never moved)."""
    count = len(flat)
    if where.all():
        return calls.scan(name, flat, steps)
    inside = calls.scan(name, flat[where], steps[where])
    full = Look.bare(*(np.full(count, np.nan) for _ in range(4)))
    return Look(*(_spread_into(whole, part, where) for whole, part in zip(full, inside,
                                                                          strict=True)))


def _spread_into(whole: np.ndarray, part: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = whole.astype(part.dtype, copy=True)
    out[where] = part
    return out


class _Slopes:
    """Slopes of looks at a target, with the loss's resolution applied."""

    def __init__(self, calls: Calls, target: Target, resolution: Resolution,
                 loss_at_point: float) -> None:
        self.calls, self.target = calls, target
        self.resolution, self.loss_at_point = resolution, loss_at_point

    def of(self, look: Look) -> Slopes:
        eps = self.target.model_eps
        error_plus = self.resolution.value_error(look.loss_plus, look.rounding_plus, eps)
        error_minus = self.resolution.value_error(look.loss_minus, look.rounding_minus, eps)
        # the point's own rounding enters the one-sided slopes; count it in the floor too,
        # unless the front door bounded each value's rounding against the point's outputs
        # (what the two share cancels in their difference)
        reported = np.isfinite(look.rounding_plus) & np.isfinite(look.rounding_minus)
        error_point = np.where(reported, 0.0, self.resolution.value_error(
            np.array([self.loss_at_point]), np.array([np.nan]), eps))
        return Slopes.of(look, self.loss_at_point, np.maximum(error_plus, error_point),
                         np.maximum(error_minus, error_point))

    def look(self, positions: np.ndarray, steps: np.ndarray) -> tuple[Slopes, Look]:
        look = self.calls.scan(self.target.name, self.target.flat[positions], steps)
        return self.of(look), look


def measure(calls: Calls, target: Target, resolution: Resolution, loss_at_point: float,
            first: FirstLook | None = None) -> Evidence:
    """Evidence for every coordinate of the target (module docstring). ``first``: the
    first look already taken (the engine takes it before it measures the resolution);
    taken here when None."""
    if first is None:
        first = first_look(calls, target, resolution)
    slopes = _Slopes(calls, target, resolution, loss_at_point)
    s0 = slopes.of(first.look)
    values = calls.point.values(target.name, target.flat)
    finite = np.isfinite(values)
    # A first look that agrees within the rounding its loss has in theory, and is vouched
    # for by it, settles its coordinate whatever the loss measured elsewhere: a coarse
    # loss would throw that look off by far more (a loss that is coarse in one coordinate
    # only, 1 - sigmoid(23) beside ordinary terms, stays exact in the others).
    in_theory = _Slopes(calls, target, Resolution(), loss_at_point).of(first.look)
    _, settled = _at_once(target, in_theory)
    ev = _evidence_at_once(target, np.where(settled, in_theory.floor, s0.floor), s0, first,
                           finite)
    agree, vouched = _at_once(target, s0)
    # a coordinate the first look agrees with but cannot vouch for keeps that verdict,
    # unless the steps were chosen anew for a coarse loss: then it starts again
    restart = resolution.step_eps(target.model_eps) != first.step_eps
    settled |= vouched if restart else agree
    ev.straddled[:] = finite & ~settled & _kinkish(target, s0)
    # agreeing at once, but too coarsely to vouch: larger steps halve the rounding
    coarse = np.flatnonzero(settled & agree & ~vouched & finite)
    if len(coarse):
        _ascend(target, slopes, ev, coarse, first.steps[coarse], s0.take(coarse))
    rest = np.flatnonzero(finite & ~settled & np.isfinite(s0.central))
    if len(rest):
        if restart:  # steps chosen for the coarseness measured since the first look
            steps = base_steps(values[rest], resolution.step_eps(target.model_eps))
            start, _ = slopes.look(rest, steps)
        else:
            steps, start = first.steps[rest], s0.take(rest)
        _climb(calls, target, slopes, ev, rest, steps, start)
        _ascend(target, slopes, ev, rest, steps, start)
    # a first look that left the loss's domain (log p with p within a step of 0) read
    # nothing: those coordinates climb from the largest halved step that stays inside it
    edge = np.flatnonzero(finite & ~settled & ~np.isfinite(s0.central))
    if len(edge):
        edge, steps, start = _inside_the_domain(slopes, edge, first.steps[edge])
        if len(edge):
            _climb(calls, target, slopes, ev, edge, steps, start)
            _ascend(target, slopes, ev, edge, steps, start)
    mark_resolved(ev, calls, resolution, target.model_eps, loss_at_point)
    return ev


def mark_resolved(ev: Evidence, calls: Calls, resolution: Resolution, model_eps: float,
                  loss_at_point: float) -> None:
    """Whether the check saw the loss resolve each element's predicted change (its
    analytic value times half its last step): some evaluation moved the loss by no more,
    or no rounding of the loss could hide a change that large
    (:meth:`~gradcheck.engine.resolution.Resolution.hidden`). A loss that stays put where
    such a change is predicted is blind to it, or flat: the numbers cannot tell which."""
    predicted = np.abs(ev.analytic) * ev.step / 2
    ev.resolved = ((predicted >= calls.smallest_change)
                   | (predicted > resolution.hidden(loss_at_point, model_eps)))


def settled_at_once(calls: Calls, target: Target, first: FirstLook, resolution: Resolution,
                    loss_at_point: float) -> np.ndarray:
    """Per coordinate: whether its first look settles it (it agrees, shows no kink, and
    its rounding is narrow enough to vouch). Coordinates that are NaN or inf count as
    settled: no look can be taken there."""
    s0 = _Slopes(calls, target, resolution, loss_at_point).of(first.look)
    agree, vouched = _at_once(target, s0)
    return ~np.isfinite(calls.point.values(target.name, target.flat)) | (agree & vouched)


def _at_once(target: Target, s0: Slopes) -> tuple[np.ndarray, np.ndarray]:
    """Which coordinates the first look agrees with (within the detection tolerance and
    rounding, no kink flagged), and which of those its rounding vouches for."""
    judge = target.judge
    with np.errstate(invalid="ignore"):
        agree = np.abs(target.analytic - s0.central) <= judge.detect(s0.central) + s0.floor
        vouched = s0.floor <= judge.limit(np.abs(s0.central))
    agree &= ~_kinkish(target, s0) & np.isfinite(s0.central)
    return agree, agree & vouched


def _kinkish(target: Target, s0: Slopes) -> np.ndarray:
    """Where a look's one-sided slopes are apart like a kink's, beyond rounding."""
    with np.errstate(invalid="ignore"):
        return (kink_mask(s0.forward, s0.backward, target.model_eps)
                & (s0.spread > KINK_FLOORS * s0.floor))


def kinks_at_first_look(first: FirstLook, loss_at_point: float, eps: float) -> np.ndarray:
    """Where a first look's one-sided slopes are apart like a kink's (the resolution probe
    keeps off them)."""
    zero = np.zeros(len(first.look.loss_plus))
    s0 = Slopes.of(first.look, loss_at_point, zero, zero)
    with np.errstate(invalid="ignore"):
        return kink_mask(s0.forward, s0.backward, eps)


def _evidence_at_once(target: Target, floor: np.ndarray, s0: Slopes, first: FirstLook,
                      finite: np.ndarray) -> Evidence:
    """Evidence from the first look alone (what a coordinate it settles keeps), with the
    rounding ``floor`` it was settled with."""
    count = len(target.flat)
    return Evidence(
        flat=target.flat, analytic=target.analytic, numeric=s0.central.copy(),
        bar=floor.copy(), agree=floor.copy(), safe=8 * floor + s0.hidden,
        floor=floor.copy(),
        gap=np.zeros(count), step=s0.step.copy(),
        forward=s0.forward.copy(), backward=s0.backward.copy(),
        shape=np.full(count, AT_ONCE, dtype=np.intp), still=s0.still.copy(),
        converged=np.ones(count, dtype=bool),
        resolved=np.ones(count, dtype=bool), single=target.own_output_only(first.look),
        straddled=np.zeros(count, dtype=bool),
        finite=finite.copy())


def _climb(calls: Calls, target: Target, slopes: _Slopes, ev: Evidence, positions: np.ndarray,
           steps: np.ndarray, start: Slopes) -> None:
    """Looks at halved steps for the coordinates at ``positions`` (of the target), whose
    look at ``steps`` is ``start``, until each is settled; fills ``ev`` in place."""
    judge, a = target.judge, target.analytic
    # per coordinate still climbing: the last looks (newest last) and the last gap
    active = np.arange(len(positions))
    looks: list[Slopes] = [start]
    last_gap = np.full(len(positions), np.nan)
    last_rough = np.zeros(len(positions), dtype=bool)
    still = start.still.copy()
    for halving in range(1, MAX_HALVINGS + 1):
        if not len(active):
            return
        where = positions[active]
        fine, look = slopes.look(where, steps[active] * 0.5 ** halving)
        coarse = looks[-1]
        jump_floor = judge.detect(np.abs(coarse.forward) + np.abs(coarse.backward)) \
            + KINK_FLOORS * coarse.floor
        reading = read_pair(coarse, fine, jump_floor)
        raw_gap = reading.gap
        with np.errstate(invalid="ignore", divide="ignore"):
            # a third look confirms how the truncation shrinks (after a smooth pair: not
            # across a kink or a look that stood out): as h^2, or as h where the curvature
            # jumps at the point; the extrapolation then cancels it
            shrink = last_gap[active] / raw_gap
            order = np.where(shrink >= H2_SHRINK, 2, 1)
            confirmed = ((len(looks) > 1) & (reading.shape == Shape.SMOOTH)
                         & ~last_rough[active] & (shrink >= ORDER1_SHRINK))
        if len(looks) > 1 and confirmed.any():
            extrapolated = read_pair(coarse.extrapolated(looks[-2], order),
                                     fine.extrapolated(coarse, order), jump_floor,
                                     h2_confirmed=np.ones(len(active), dtype=bool))
            reading = _where(confirmed, extrapolated, reading)
        if len(looks) > 1:
            _repeat_outliers(calls, target, slopes, where, steps[active], halving, looks,
                             fine, raw_gap, last_gap[active], last_rough[active])
        still[active] &= fine.still
        _record(ev, where, reading, fine, still[active], target.own_output_only(look, where))
        with np.errstate(invalid="ignore"):
            off = np.abs(a[where] - reading.estimate)
            detect = judge.detect(reading.estimate)
            limit = judge.limit(np.abs(reading.estimate))
            agrees = off <= detect + reading.agree
            wrong = off > detect + reading.safe
            finer_fits = 2 * fine.floor <= limit  # the next look's rounding could vouch
            smooth = reading.shape == Shape.SMOOTH
            # the pair's error is measured where its gap is within rounding, or the mismatch
            # dwarfs it (two looks at steps beyond the loss's curvature scale can lie close
            # together, both far off; extrapolated looks agree closely only where the law
            # they assume holds)
            converged = (reading.gap <= 2 * reading.floor) | (off > CONFIRM_GAPS * reading.gap)
            # a finer look can still tell an unconverged wrong-looking element apart while
            # its rounding stays well below the mismatch
            finer_tells = wrong & ~converged & (2 * SAFE_FLOORS * fine.floor < off)
            done = ((reading.shape == Shape.JUMP)
                    | (smooth & agrees & (reading.bar <= limit))
                    | (smooth & wrong & converged)
                    | (smooth & (reading.gap <= reading.floor))  # finer looks only add noise
                    | ~(finer_fits | finer_tells)
                    | ~np.isfinite(reading.estimate))
        ev.converged[where] = converged
        keep = ~done
        last_gap[active] = raw_gap
        last_rough[active] = reading.shape == Shape.ROUGH
        active = active[keep]
        looks = [s.take(np.flatnonzero(keep)) for s in (*looks[-1:], fine)]


def _ascend(target: Target, slopes: _Slopes, ev: Evidence, positions: np.ndarray,
            steps: np.ndarray, start: Slopes) -> None:
    """Smooth coordinates whose rounding alone keeps their error bar too wide (a loss that
    rounds coarsely, and is nearly linear there) climb the ladder the other way: pairs of
    looks at 2h and h, then 4h and 2h, ..., each read by the same rule, while the
    truncation they show stays within rounding. The rounding over h halves at each."""
    judge = target.judge
    with np.errstate(invalid="ignore"):
        limit = judge.limit(np.abs(ev.numeric[positions]))
        up = ((ev.shape[positions] == Shape.SMOOTH) & (ev.bar[positions] > limit)
              & (ev.gap[positions] <= 2 * ev.floor[positions]))
    active = np.flatnonzero(up)
    fine, step = start.take(active), steps[active]
    for _ in range(MAX_DOUBLINGS):
        if not len(active):
            return
        where = positions[active]
        step = 2 * step
        coarse, _ = slopes.look(where, step)
        jump_floor = judge.detect(np.abs(coarse.forward) + np.abs(coarse.backward)) \
            + KINK_FLOORS * coarse.floor
        reading = read_pair(coarse, fine, jump_floor)
        with np.errstate(invalid="ignore"):
            smooth = reading.shape == Shape.SMOOTH
            better = smooth & (reading.bar < ev.bar[where])
            # (the first pair reads the step the climb started from: no better yet)
            keep = (smooth & (reading.bar > judge.limit(np.abs(reading.estimate)))
                    & (reading.gap <= 2 * reading.floor))
        chosen = where[better]
        ev.converged[chosen] = reading.gap[better] <= 2 * reading.floor[better]
        ev.numeric[chosen] = reading.estimate[better]
        for name in ("bar", "agree", "safe", "floor", "gap", "forward", "backward", "sides"):
            getattr(ev, name)[chosen] = getattr(reading, name)[better]
        ev.step[chosen] = fine.step[better]
        active, fine = active[keep], coarse.take(np.flatnonzero(keep))
        step = step[keep]


def _inside_the_domain(slopes: _Slopes, positions: np.ndarray, steps: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, Slopes]:
    """The coordinates' steps halved until the loss is finite on both sides of each (at
    most MAX_DOMAIN_HALVINGS times): the positions that got there, in order, their steps,
    and the look each was finite at."""
    steps = steps.astype(np.float64, copy=True)
    pending = np.arange(len(positions))
    found: list[tuple[np.ndarray, Slopes]] = []
    for _ in range(MAX_DOMAIN_HALVINGS):
        steps[pending] /= 2
        look, _ = slopes.look(positions[pending], steps[pending])
        inside = np.isfinite(look.central)
        found.append((pending[inside], look.take(np.flatnonzero(inside))))
        pending = pending[~inside]
        if not len(pending):
            break
    got = np.concatenate([k for k, _ in found])
    order = np.argsort(got, kind="stable")
    start = Slopes(*(np.concatenate([np.broadcast_to(getattr(look, f.name), len(k))
                                     for k, look in found])[order]
                     for f in fields(Slopes)))
    return positions[got[order]], steps[got[order]], start


def _where(mask: np.ndarray, a: Reading, b: Reading) -> Reading:
    return Reading(*(np.where(mask, x, y) for x, y in zip(
        (a.shape, a.estimate, a.gap, a.bar, a.agree, a.safe, a.floor, a.forward, a.backward,
         a.sides),
        (b.shape, b.estimate, b.gap, b.bar, b.agree, b.safe, b.floor, b.forward, b.backward,
         b.sides),
        strict=True)))


def _record(ev: Evidence, where: np.ndarray, reading: Reading, fine: Slopes,
            still: np.ndarray, own_output_only: np.ndarray) -> None:
    """The latest reading of the coordinates at ``where`` (positions in ``ev``)."""
    ev.numeric[where] = reading.estimate
    ev.bar[where] = reading.bar
    ev.agree[where] = reading.agree
    ev.safe[where] = reading.safe
    ev.floor[where] = reading.floor
    ev.gap[where] = reading.gap
    ev.step[where] = fine.step
    # the look's own one-sided slopes (an extrapolation cancels the h term that shows how
    # fast the loss moves a step away, which is what a zero gradient is held against)
    ev.forward[where] = fine.forward
    ev.backward[where] = fine.backward
    ev.sides[where] = reading.sides
    ev.shape[where] = reading.shape
    ev.still[where] = still
    ev.single[where] = own_output_only
    ev.straddled[where] |= reading.shape != Shape.SMOOTH


def _repeat_outliers(calls: Calls, target: Target, slopes: _Slopes, where: np.ndarray,
                     steps: np.ndarray, halving: int, looks: list[Slopes], fine: Slopes,
                     gap: np.ndarray, last_gap: np.ndarray, last_rough: np.ndarray) -> None:
    """A look that stands out from the looks on either side of it is taken again: a loss
    that answers differently at the same point is not deterministic, and is named so
    (no kink, curvature or step does that to one look alone)."""
    middle, before = looks[-1], looks[-2]
    with np.errstate(invalid="ignore"):
        # the middle look stands out while the looks on either side agree
        middle_out = last_rough & (np.abs(fine.central - before.central)
                                   <= last_gap / H2_SHRINK)
        # the oldest look stands out: the two newest agree far better than it did
        oldest_out = last_rough & ~middle_out & (gap <= last_gap / OUTLIER_SHRINK)
    for stood_out, seen, back in ((middle_out, middle, 1), (oldest_out, before, 2)):
        positions = np.flatnonzero(stood_out)
        if not len(positions):
            continue
        again, _ = slopes.look(where[positions], steps[positions] * 0.5 ** (halving - back))
        moved = (np.abs(again.central - seen.central[positions])
                 > REPEAT_FLOORS * np.maximum(again.floor, seen.floor[positions]))
        shape = calls.arrays[target.name].shape
        for k in np.flatnonzero(moved):
            element = flat_element(target.name, int(target.flat[where[positions[k]]]), shape)
            calls.note_unrepeatable(
                f"{element}: the same central difference came out "
                f"{seen.central[positions[k]]:.17g} and then {again.central[k]:.17g}")
