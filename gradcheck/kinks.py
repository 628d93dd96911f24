"""Non-differentiable points: find them, and settle what can be settled there.

Along one coordinate a piecewise-smooth loss has one-sided derivatives d- and d+. On a
smooth stretch they differ by ~ h |L''|; where the stencil crosses a kink they differ by
the jump, which does not shrink with h. At a single kink crossed, every valid convention
(ReLU'(0) in [0, 1], sign(0) in [-1, 1], any tie split) lies in [min(d-, d+), max(d-, d+)].

Two re-checks settle what one coordinate at a time cannot:
- ties (:func:`check_ties`): tied maxima are each a kink, and each coordinate alone lies
  inside its one-sided range even when the tie is counted twice. Moved together, tied
  elements stay tied, so the loss is smooth along that direction and the chain rule must
  hold there: the analytic values of the group must add up to the slope. A mismatch that
  persists when the point moves along the direction is a bug; one that vanishes is an
  artifact of the point (relu(x) - relu(-x) at 0).
- jitter (:func:`settle_by_jitter`): kink coordinates outside the hull, and failing
  elements, re-checked at a mirrored pair of nearby points where the loss is
  differentiable (several kinks crossed at once, kinks the loss does not show).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from gradcheck.numeric import relative_step, step_sizes
from gradcheck.report import TieFinding
from gradcheck.text import flat_element, unravel
from gradcheck.tolerances import gradient_scale, rounding_floor

if TYPE_CHECKING:
    from gradcheck.calls import Calls
    from gradcheck.measure import Measured, Setting

JITTER_ROUNDS = 4  # "subgradient": fresh jitters tried before a kink is left unverified
RECHECK_SAMPLE = 16  # "subgradient": failing elements per tensor re-checked nearby first
MAX_TIE_GROUPS = 64  # tie groups checked per check
MAX_TIE_PAIRS = 16  # pairs of kink coordinates checked per check, after the groups
MAX_PAIR_ROW = 16  # kink coordinates of one row that pairs are formed from


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


def roughness(spread: np.ndarray | float, spread_half: np.ndarray | float) -> np.ndarray:
    """The part of the one-sided spreads d+ - d- (at steps h and h/2) that is not
    curvature: curvature gives h L'' and h L'' / 2, so 2 (d+ - d-)(h/2) - (d+ - d-)(h)
    cancels it and leaves the loss's rounding and noise at that scale.

    >>> float(roughness(1e-3, 5e-4))  # a smooth curve
    0.0
    """
    return np.abs(2 * np.asarray(spread_half) - np.asarray(spread)) / 2


def distance_to_hull(analytic: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """How far each analytic value lies outside [min(d-, d+), max(d-, d+)] (0 inside).

    >>> distance_to_hull(np.array([2.0, 0.5]), np.array([1.0, 1.0]), np.array([0.0, 0.0]))
    array([1., 0.])
    """
    low = np.minimum(forward, backward)
    high = np.maximum(forward, backward)
    return np.maximum(0.0, np.maximum(low - analytic, analytic - high))


def jitter_offsets(steps: np.ndarray, rng: np.random.Generator, attempt: int = 0
                   ) -> np.ndarray:
    """Random moves of 16 to 32 steps (twice that at each further ``attempt``), either
    sign, off a kink.

    Far enough that a stencil of width h around the new point rarely reaches back to the
    kink (or to a neighbouring one formed by the same zero), close enough to test the same
    piece of code. Kinks that one zero formed spread apart in proportion to the move (a
    zero row through Dense + ReLU), so a move that left one too close is followed by a
    longer one.
    """
    signs = rng.choice(np.array([-1.0, 1.0]), size=steps.shape)
    return signs * rng.uniform(16.0, 32.0, size=steps.shape) * 2.0 ** attempt * steps


# ---------------------------------------------------------------------------- ties
# measure.py uses the primitives above, so the re-checks import it when they run.


def tie_groups(values: np.ndarray, flat_indices: np.ndarray, shape: tuple[int, ...],
               analytic: np.ndarray | None = None, slope_sign: np.ndarray | None = None
               ) -> list[np.ndarray]:
    """Groups (positions into ``values``) of exactly equal values, two or more each: over
    the whole tensor, then within each index of axis 0, of axes 0 and 1, and so on; with
    ``analytic``, the same again split by equal analytic value; with ``slope_sign`` (the
    sign of each element's measured slope), split by that too.

    A tie set (the elements tied for one maximum: one row, one pooling window) lies inside
    one group at every level where it is not cut apart. The finer levels keep ties of
    different rows from cancelling each other out along one direction; the analytic split
    finds the windows of a max-pool, whose tied elements a "counted for all" bug gives
    one value each, however the windows lie in the index grid; the slope split keeps apart
    windows whose upstream gradients have opposite signs, which a bug that drops tied
    windows (analytic 0 in all of them) would let cancel.

    >>> [g.tolist() for g in tie_groups(np.array([2.0, 2.0, 2.0, 2.0]), np.arange(4), (2, 2))]
    [[0, 1, 2, 3], [0, 1], [2, 3]]
    >>> [g.tolist() for g in tie_groups(np.ones(4), np.arange(4), (4,), np.array([1, 2, 1, 2]))]
    [[0, 1, 2, 3], [0, 2], [1, 3]]
    """
    if len(values) < 2:
        return []
    index = (np.array(np.unravel_index(flat_indices, shape)).T if shape
             else np.zeros((len(values), 0)))
    groups: list[np.ndarray] = []
    seen: set[bytes] = set()
    splits = [values[:, None]]
    if analytic is not None:
        splits.append(np.column_stack([values, analytic]))
    if slope_sign is not None:
        splits.append(np.column_stack([values, slope_sign]))
    for by_value in splits:
        for level in range(max(len(shape), 1)):
            keys = np.column_stack([by_value, index[:, :level]]) if level else by_value
            _, labels = np.unique(keys, axis=0, return_inverse=True)
            labels = labels.reshape(-1)
            for label in np.unique(labels):
                members = np.flatnonzero(labels == label)
                if len(members) >= 2 and members.tobytes() not in seen:
                    seen.add(members.tobytes())
                    groups.append(members)
    return groups[:MAX_TIE_GROUPS]


class TieSlopes(NamedTuple):
    """The loss along a tie direction (every member moved together) at steps h and h/2."""

    central: float  # at h
    central_half: float  # at h/2
    forward: float  # d+ at h
    backward: float  # d- at h
    spread: float  # |d+ - d-| at h
    spread_half: float  # |d+ - d-| at h/2
    noise: float  # measured error of central_half: rounding and noise, not curvature

    @property
    def gap(self) -> float:
        return abs(self.central - self.central_half)


@dataclass(frozen=True)
class TieDirection:
    """Kink coordinates moved together, each by ``orientation`` times one offset, so that
    a tie among them (two maxima, |x| = |y|, x + c = y + d) stays a tie: along it the loss
    is smooth even where every coordinate alone crosses a kink. Members may lie in
    different tensors (np.maximum(a, b), max(x, threshold))."""

    names: tuple[str, ...]  # each member's tensor
    positions: np.ndarray  # each member's position in its tensor's Measured
    flat: np.ndarray  # each member's flat index in its tensor
    orientation: np.ndarray  # per member: how far it moves per unit of the offset (+-1 mostly)
    base: np.ndarray  # the members' values at the point (float64)
    # where the direction crosses a kink at the point, look off it on either side (for
    # groups of tied values; a pair of coordinates is tried both ways, and only the way that
    # keeps the tie, smooth at the point, says anything)
    off_the_point: bool = True

    def segments(self) -> dict[str, np.ndarray]:
        """Members per tensor: name -> their indices into this direction's arrays."""
        names = np.array(self.names)
        return {name: np.flatnonzero(names == name) for name in dict.fromkeys(self.names)}

    def first(self, calls: Calls) -> str:
        return flat_element(self.names[0], int(self.flat[0]), calls.arrays[self.names[0]].shape)


@dataclass(frozen=True)
class _Pool:
    """The kink coordinates of every tensor, where ties can hide: their slopes on either
    side, their analytic values, and where they live."""

    names: tuple[str, ...]
    positions: np.ndarray
    flat: np.ndarray
    value: np.ndarray
    analytic: np.ndarray
    forward: np.ndarray
    backward: np.ndarray
    unsettled: frozenset[str] = frozenset()  # tensors with an element failing or pending

    @staticmethod
    def of(calls: Calls, results: dict[str, Measured]) -> _Pool:
        from gradcheck.measure import BAD, HULL, OK, PENDING

        names: list[str] = []
        parts = []
        for name, m in results.items():
            positions = np.flatnonzero(m.kink & np.isin(m.status, (OK, HULL, PENDING, BAD))
                                       & ~m.tied)
            names += [name] * len(positions)
            flat = m.flat_indices[positions]
            parts.append((positions, flat,
                          calls.originals[name].reshape(-1)[flat].astype(np.float64),
                          m.analytic[positions], m.forward[positions], m.backward[positions]))
        columns = [np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)
                   for k in range(6)]
        unsettled = frozenset(name for name, m in results.items()
                              if np.any(np.isin(m.status, (BAD, PENDING))))
        value, analytic, forward, backward = columns[2:]
        return _Pool(tuple(names), columns[0].astype(np.intp), columns[1].astype(np.intp),
                     value, analytic, forward, backward, unsettled)

    def direction(self, members: np.ndarray, orientation: np.ndarray,
                  off_the_point: bool = True) -> TieDirection:
        return TieDirection(tuple(self.names[i] for i in members), self.positions[members],
                            self.flat[members], orientation, self.value[members],
                            off_the_point)


def tie_directions(pool: _Pool, calls: Calls) -> list[TieDirection]:
    """Directions to test, most suspect first, at most MAX_TIE_GROUPS:

    - equal values within one tensor (:func:`tie_groups`), moved up together;
    - across every tensor, coordinates whose one-sided slopes jump by the same amount
      (tied elements share the piece that takes over): each moved the way its larger slope
      points (|x| tied at +2 and -2 moves them apart), and all moved up (max(x, t) with
      another row's gradient on t).
    - then, at most MAX_TIE_PAIRS, pairs of kink coordinates of one row of one tensor that
      the hull could not settle, each moved in inverse proportion to its jump, both ways:
      one of them keeps a tie that lies behind a linear map (max over pairs of x W:
      moving x[i, k] by 1/J_k and x[i, l] by -1/J_l moves both tied values alike).
    A direction is suspect by how far its analytic values, added up along it, lie from one
    member's slope on its active side (a tie counted for every member: k - 1 slopes; a tie
    dropped: one; a valid split: none).
    """
    found: dict[bytes, tuple[float, TieDirection]] = {}
    jump = np.abs(pool.forward - pool.backward)

    def suspicion(members: np.ndarray, orientation: np.ndarray) -> float:
        active = np.where(orientation > 0, pool.forward[members], -pool.backward[members])
        total = float(np.sum(pool.analytic[members] * orientation))
        return (abs(total - float(np.mean(active * np.abs(orientation))))
                / (float(np.mean(jump[members] * np.abs(orientation))) or 1.0))

    def add(members: np.ndarray, orientation: np.ndarray) -> None:
        if len(members) < 2:
            return
        key = members.tobytes() + orientation.astype(np.int8).tobytes()
        if key not in found:
            found[key] = (suspicion(members, orientation), pool.direction(members, orientation))

    names = np.array(pool.names)
    for name in dict.fromkeys(pool.names):
        inside = np.flatnonzero(names == name)
        for group in tie_groups(pool.value[inside], pool.flat[inside],
                                calls.arrays[name].shape, pool.analytic[inside],
                                _slope_sign(pool.forward[inside] + pool.backward[inside])):
            add(inside[group], np.ones(len(group)))
    for cluster in _equal_jumps(np.abs(pool.forward - pool.backward)):
        for members in _within_one_tensor_or_equal(pool, cluster):
            larger_up = np.abs(pool.forward[members]) >= np.abs(pool.backward[members])
            add(members, np.where(larger_up, 1.0, -1.0))
            add(members, np.ones(len(members)))
    ranked = sorted(found.values(), key=lambda item: -item[0])
    return ([direction for _, direction in ranked[:MAX_TIE_GROUPS]]
            + _pair_directions(pool, calls, suspicion))


def _pair_directions(pool: _Pool, calls: Calls,
                     suspicion: Callable[[np.ndarray, np.ndarray], float]) -> list[TieDirection]:
    """Pairs of kink coordinates in one row (the same index along axis 0) of one tensor
    whose analytic values lie outside their one-sided slopes (what the hull could not
    settle), each moved by 1/|jump|, with equal and with opposite signs; the MAX_TIE_PAIRS
    most suspect."""
    jump = np.abs(pool.forward - pool.backward)
    outside = distance_to_hull(pool.analytic, pool.forward, pool.backward) > 1e-3 * jump
    names = np.array(pool.names)
    candidates: list[tuple[float, TieDirection]] = []
    for name in dict.fromkeys(pool.names):
        inside = np.flatnonzero((names == name) & (jump > 0) & outside)
        shape = calls.arrays[name].shape
        rows = (np.unravel_index(pool.flat[inside], shape)[0] if len(shape) > 1
                else np.zeros(len(inside), dtype=np.intp))
        for row in np.unique(rows):
            in_row = inside[rows == row][:MAX_PAIR_ROW]
            for a, b in itertools.combinations(in_row, 2):
                members = np.array([a, b])
                for sign in (1.0, -1.0):
                    weights = np.array([1.0, sign]) / jump[members]
                    weights /= np.max(np.abs(weights))
                    candidates.append((suspicion(members, weights),
                                       pool.direction(members, weights, off_the_point=False)))
    candidates.sort(key=lambda item: -item[0])
    return [direction for _, direction in candidates[:MAX_TIE_PAIRS]]


def _within_one_tensor_or_equal(pool: _Pool, cluster: np.ndarray) -> list[np.ndarray]:
    """A cluster of equal jumps as tie candidates: as it is when it lies in one tensor;
    across tensors, only members of equal value (maximum(a, b) at a == b, max(x, t) at
    x == t) in tensors with no element failing or pending on its own: a tensor wrong by
    itself would otherwise put its error on the others' account."""
    if len({pool.names[i] for i in cluster}) == 1:
        return [cluster]
    settled = np.array([i for i in cluster if pool.names[i] not in pool.unsettled],
                       dtype=np.intp)
    return [settled[pool.value[settled] == value] for value in np.unique(pool.value[settled])]


def _equal_jumps(jump: np.ndarray) -> list[np.ndarray]:
    """Clusters (positions) of equal jumps, within a thousandth: tied coordinates share
    the piece that takes over, so they jump alike up to the numbers' rounding."""
    order = np.argsort(jump, kind="stable")
    clusters: list[np.ndarray] = []
    start = 0
    for k in range(1, len(order) + 1):
        if k == len(order) or jump[order[k]] - jump[order[start]] > 1e-3 * jump[order[k]]:
            if k - start >= 2:
                clusters.append(order[start:k])
            start = k
    return clusters


def _slope_sign(slope: np.ndarray) -> np.ndarray:
    """-1, 0 or 1: the sign of d+ + d- at each coordinate, 0 within a thousandth of the
    largest; the elements of one tie set share their one-sided slopes."""
    finite = np.isfinite(slope)
    largest = float(np.max(np.abs(slope[finite]))) if finite.any() else 0.0
    return np.where(finite & (np.abs(slope) > 1e-3 * largest), np.sign(slope), 0.0)


def _move(calls: Calls, direction: TieDirection, offset: float) -> float:
    """Set every member to its base value plus its orientation times ``offset``; returns
    the offset actually taken (read back: the members' dtype rounds it)."""
    taken = []
    for name, inside in direction.segments().items():
        flat = calls.arrays[name].flat  # writes through, contiguous or not
        flat[direction.flat[inside]] = (direction.base[inside]
                                        + direction.orientation[inside] * offset)
        stored = np.asarray(calls.arrays[name].flat[direction.flat[inside]], dtype=np.float64)
        taken.append((stored - direction.base[inside]) / direction.orientation[inside])
    return float(np.mean(np.concatenate(taken)))


def _put_back(calls: Calls, direction: TieDirection) -> None:
    for name, inside in direction.segments().items():
        flat_indices = direction.flat[inside]
        calls.arrays[name].flat[flat_indices] = calls.originals[name].reshape(-1)[flat_indices]


def _slopes_along(calls: Calls, direction: TieDirection, offset: float, step: float,
                  here: float | None = None) -> TieSlopes:
    """The loss at the point moved by ``offset`` along the direction, and at step and
    step/2 on either side of it (and there, unless given as ``here``).

    The error bar comes from what was measured, never from a dtype guess: the h vs h/2
    gap of the central differences, and the :func:`roughness` of the loss at that scale.
    """
    moves = (offset + step, offset - step, offset + step / 2, offset - step / 2)
    losses, taken = [], []
    try:
        for move in moves + (() if here is not None else (offset,)):
            taken.append(_move(calls, direction, move))
            losses.append(calls.loss())
    finally:
        _put_back(calls, direction)
    at = losses[4] if here is None else here
    centre = taken[4] if here is None else offset
    up, down, up_half, down_half = losses[:4]
    h_up, h_down = taken[0] - centre, centre - taken[1]
    h2_up, h2_down = taken[2] - centre, centre - taken[3]
    central = (up - down) / (h_up + h_down)
    central_half = (up_half - down_half) / (h2_up + h2_down)
    d2 = (up - at) / h_up - (at - down) / h_down  # d+ - d- = h L'' + rounding / h
    d2_half = (up_half - at) / h2_up - (at - down_half) / h2_down
    return TieSlopes(central, central_half, (up - at) / h_up, (at - down) / h_down, abs(d2),
                     abs(d2_half), max(abs(central - central_half),
                                       float(roughness(d2, d2_half))))


def check_ties(calls: Calls, results: dict[str, Measured], settings: dict[str, Setting],
               loss_at_point: float, rng: np.random.Generator, warnings: list[str]
               ) -> list[TieFinding]:
    """Fail tied kink coordinates whose gradients do not add up to the slope of the loss
    when they move together (a tied maximum counted twice, or dropped).

    Per direction (:func:`tie_directions`), 4 evaluations (h and h/2) at the point. Where
    the direction is smooth there, a mismatch is a bug when it persists one step to each
    side along the tie (an artifact of the point, relu(x) - relu(-x) at 0, vanishes): 2 x
    (5 + 1 gradient). Where the direction itself crosses a kink (a tie with a constant:
    zero padding, or a ReLU at 0 before the max), it is judged a little way off the point
    on each side, where only the tie remains: 2 points per side, 5 + 1 gradient each.
    Returns the groups it failed.
    """
    findings: list[TieFinding] = []
    pool = _Pool.of(calls, results)
    if len(pool.positions) < 2:
        return findings
    # what the tolerance's atol is relative to: the whole check's gradients, not only a
    # slope along the tie (a mismatch of 1e-168 where gradients are 0.07 is no bug)
    atol_scale = max(abs(loss_at_point), gradient_scale(
        *(a for m in results.values() for a in (m.numeric, m.analytic))))
    for direction in tie_directions(pool, calls):
        if any(results[n].tied[p] for n, p in zip(direction.names, direction.positions,
                                                  strict=True)):
            continue
        setting = max((settings[n] for n in set(direction.names)),
                      key=lambda s: s.model_eps)
        scope = _TieScope(calls, loss_at_point, setting, atol_scale)
        # a power of 2 (and the moves below, of few bits): members tied in exact
        # arithmetic only (x + c = y + d) stay tied when moved, where rounding would part them
        h = 2.0 ** np.floor(np.log2(float(np.max(step_sizes(direction.base,
                                                             eps=setting.model_eps)))))
        analytic = np.array([results[n].analytic[p] for n, p in zip(
            direction.names, direction.positions, strict=True)])
        total = float(np.sum(analytic * direction.orientation))
        here = _slopes_along(calls, direction, 0.0, h, loss_at_point)
        bound = scope.bound(here, h / 2)
        if not _smooth(here, bound):
            if not direction.off_the_point:
                continue  # a pair that way keeps no tie
            # (a jump on the point is no noise: only the h vs h/2 gap counts in the bound)
            side_bound = scope.bound(here._replace(noise=here.gap), h / 2)
            low, high = sorted((here.forward, here.backward))
            if low - side_bound <= total <= high + side_bound:
                continue  # within the slopes on either side: consistent at the point
            # the direction crosses a kink at the point, and the gradients add up to more
            # than either side's slope: off the point, on either side, only the tie is left
            # (its members stay equal), and the chain rule must hold there
            for side in (1.0, -1.0):
                if _tie_fails_off_the_point(scope, direction, side, h):
                    findings.append(_fail_tie(results, direction, total, None, calls, warnings))
                    break
            continue
        slope = here.central_half
        if abs(total - slope) <= bound:
            continue
        # moved along the tie by up to h/2 and measured with steps up to h/2 there, the
        # stencils stay inside the stretch just seen to be smooth (a far move could leave
        # the tie's piece: in float16 a step is a tenth of the value)
        shift = float(rng.choice([0.25, 0.375])) * h
        # a loop, not all(... for ...): a StopIteration raised by the user's code inside a
        # generator would come back as RuntimeError (PEP 479)
        persists = True
        for sign in (1.0, -1.0):
            persists = persists and _tie_mismatch_at(scope, direction, sign * shift,
                                                     h / 2) == "mismatch"
        if persists:
            findings.append(_fail_tie(results, direction, total, slope, calls, warnings))
        elif direction.off_the_point:  # a group of tied values (a pair is a mere try)
            warnings.append(
                f"{direction.names[0]}: {len(direction.flat)} elements tied (first "
                f"{direction.first(calls)}) add up to {total:.6g} against a slope of "
                f"{slope:.6g} at the point only; moved along the tie they agree, so it is "
                "an artifact of the point, not a bug.")
    return findings


def _smooth(slopes: TieSlopes, bound: float) -> bool:
    """The loss is smooth along the direction: no jump of the one-sided slopes, and the h
    and h/2 estimates agree."""
    jump = is_jump(np.array([slopes.spread]), np.array([slopes.spread_half]),
                   np.array([slopes.gap]), np.array([bound / 8]))[0]
    return not jump and slopes.gap <= 2 * bound


def _tie_fails_off_the_point(scope: _TieScope, direction: TieDirection, side: float,
                             h: float) -> bool:
    """True when, moved off the point along the direction by h and by 1.5 h on one side,
    the loss is smooth along it at both places and the gradients there do not add up to
    its slope (a match, or a rough stretch, at h settles nothing more is needed there)."""
    for distance in (1.0, 1.5):
        if _tie_mismatch_at(scope, direction, side * distance * h, h / 4,
                            off_a_kink=True) != "mismatch":
            return False
    return True


def _fail_tie(results: dict[str, Measured], direction: TieDirection, total: float,
              slope: float | None, calls: Calls, warnings: list[str]) -> TieFinding:
    """Mark the direction's members failed (tied), warn, and return the finding."""
    from gradcheck.measure import BAD

    for name, inside in direction.segments().items():
        m = results[name]
        positions = direction.positions[inside]
        m.status[positions] = BAD
        m.tied[positions] = True
        m.error[positions] = np.abs(m.analytic[positions] - m.numeric[positions])
    tensors = dict.fromkeys(direction.names)
    across = "" if len(tensors) == 1 else f" (in {', '.join(tensors)})"
    if slope is not None:
        evidence = (f", but the loss moves at {slope:.6g} when they move together, here and "
                    "on both sides along the tie")
    else:  # the direction crosses a kink at the point
        evidence = (" at the point, and a little way off it along the tie, where only the "
                    "tie remains, they still do not add up to the loss's slope")
    warnings.append(
        f"{direction.names[0]}: {len(direction.flat)} elements tied at "
        f"{direction.base[0]:g} (first {direction.first(calls)}){across} are a kink "
        f"together: their gradients add up to {total:.6g}{evidence}. A tied maximum must "
        "share its upstream gradient (give it to one element, or split it), not give it to "
        "every tied element.")
    members = tuple((name, unravel(int(flat), calls.arrays[name].shape))
                    for name, flat in zip(direction.names, direction.flat, strict=True))
    return TieFinding(members, float(direction.base[0]), total, slope)


# measured noise counts this many times in a tie's error bar: a bug must clear it well
TIE_NOISE_FACTOR = 4.0


@dataclass(frozen=True)
class _TieScope:
    """What every look along a tie of one check shares."""

    calls: Calls
    loss_at_point: float
    setting: Setting  # the coarsest of the members' tensors'
    atol_scale: float  # what default atols are relative to

    def bound(self, slopes: TieSlopes, step: float) -> float:
        """The mismatch a tie's slope can carry: the tolerance, the rounding of the loss
        values (at their own precision), and what the two steps measured."""
        slope = slopes.central_half
        loss = abs(self.loss_at_point)
        return float(self.setting.tolerance.at_kink(np.array(slope),
                                                    max(abs(slope), self.atol_scale))
                     + 8 * rounding_floor(self.setting.loss_eps, loss, np.array(step))
                     + TIE_NOISE_FACTOR * slopes.noise)


def _tie_mismatch_at(scope: _TieScope, direction: TieDirection, offset: float, step: float,
                     off_a_kink: bool = False) -> str:
    """At the point moved by ``offset`` along the tie: "mismatch" when the gradients do not
    add up to the loss's slope along it, "match" when they do. With ``off_a_kink`` (the
    direction crossed a kink at the point), "rough" when the direction is not smooth there
    either: nothing to conclude."""
    calls = scope.calls
    try:
        _move(calls, direction, offset)
        gradient = calls.grads()
    finally:
        calls.restore()
    slopes = _slopes_along(calls, direction, offset, step)
    bound = scope.bound(slopes, step / 2)
    if off_a_kink and not _smooth(slopes, bound):
        return "rough"
    total = sum(float(np.sum(gradient[name].reshape(-1)[direction.flat[inside]]
                             * direction.orientation[inside]))
                for name, inside in direction.segments().items())
    return "mismatch" if abs(total - slopes.central_half) > bound else "match"


# ---------------------------------------------------------------------------- jitter


def settle_by_jitter(calls: Calls, results: dict[str, Measured], settings: dict[str, Setting],
                     rng: np.random.Generator, warnings: list[str]) -> None:
    """Re-check, together, the coordinates the given point cannot settle.

    Those are kink coordinates whose analytic value is outside the hull, failing elements
    (a multi-kink point can hide its kinks entirely: ReLU -> negate -> ReLU at 0 is flat on
    both sides, yet a valid ReLU'(0) = 0.5 gives a nonzero chain rule), and undecided ones
    whose first looks straddled a kink (a ReLU input of 1.5e-6 under a step of 6e-6: three
    looks can read the kink as curvature). Failing elements are re-checked worst first,
    RECHECK_SAMPLE per tensor; the rest only if every one of those turns out right nearby,
    so a buggy layer costs little more. Failing and undecided elements are cleared only
    where right at both jittered points.

    Each round moves all of them by a random 16-32 steps (so a stencil no longer reaches
    the kink), once each way (x + d and x - d), asks for the gradient at both points, and
    compares as usual. A coordinate still on a kink gets a fresh jitter next round; after
    JITTER_ROUNDS it is left unverified.
    """
    from gradcheck.measure import BAD, PENDING, UNVERIFIED, too_coarse

    outside = {name: np.flatnonzero(m.status == PENDING) for name, m in results.items()}
    failing = {name: _worst_first(m, np.flatnonzero((m.status == BAD) & ~m.tied))
               for name, m in results.items()}
    coarse = too_coarse(results, settings, calls.loss_at_point)
    undecided = {name: _worst_first(m, np.flatnonzero(
        ((m.status == UNVERIFIED) | coarse[name]) & m.near_kink))
        for name, m in results.items()}
    queued = {name: np.concatenate([failing[name], undecided[name]]) for name in results}
    pending = {name: np.concatenate([outside[name], queued[name][:RECHECK_SAMPLE]])
               for name in results}
    later = {name: queued[name][RECHECK_SAMPLE:] for name in results}
    rechecked = {name: queued[name][:RECHECK_SAMPLE] for name in results}
    for _round in range(JITTER_ROUNDS):
        pending = {name: positions for name, positions in pending.items() if len(positions)}
        if not pending:
            break
        offsets = {name: jitter_offsets(step_sizes(
            calls.originals[name].reshape(-1)[results[name].flat_indices[positions]]), rng,
            _round) for name, positions in pending.items()}
        plus = _measure_jittered(calls, results, pending, offsets, settings, 1.0)
        minus = _measure_jittered(calls, results, pending, offsets, settings, -1.0)
        if plus is None or minus is None:
            continue
        for name, positions in pending.items():
            m = results[name]
            settled = _record_jittered(m, positions, plus[name], minus[name])
            pending[name] = positions[~settled]
            if len(later[name]) and not np.any(m.status[rechecked[name]] == BAD):
                pending[name] = np.concatenate([pending[name], later[name]])
                rechecked[name] = np.concatenate([rechecked[name], later[name]])
                later[name] = later[name][:0]
    for name, m in results.items():
        m.status[outside[name][m.status[outside[name]] == PENDING]] = UNVERIFIED
        _jitter_warnings(name, m, outside[name], failing[name], undecided[name],
                         calls.arrays[name].shape, warnings)


def _worst_first(m: Measured, positions: np.ndarray) -> np.ndarray:
    return positions[np.argsort(-np.nan_to_num(m.error[positions], nan=np.inf), kind="stable")]


def _measure_jittered(
    calls: Calls, results: dict[str, Measured], pending: dict[str, np.ndarray],
    offsets: dict[str, np.ndarray], settings: dict[str, Setting], sign: float,
) -> dict[str, Measured] | None:
    """Move every pending coordinate by sign * its offset, and measure them there."""
    from dataclasses import replace

    from gradcheck.measure import measure

    for name, positions in pending.items():
        flat_indices = results[name].flat_indices[positions]
        original = calls.originals[name].reshape(-1)[flat_indices].astype(np.float64)
        calls.arrays[name].flat[flat_indices] = original + sign * offsets[name]
    try:
        loss_j = calls.loss()
        if not np.isfinite(loss_j):
            return None
        analytic_j = calls.grads()
        return {name: measure(calls, name, results[name].flat_indices[positions],
                              analytic_j[name].reshape(-1), loss_j,
                              replace(settings[name], kinks="strict"))
                for name, positions in pending.items()}
    finally:
        calls.restore()


def _record_jittered(m: Measured, positions: np.ndarray, plus: Measured,
                     minus: Measured) -> np.ndarray:
    """Verdicts at the two mirrored jittered points, x + d and x - d; returns which
    coordinates are settled (the rest want a fresh jitter).

    A coordinate is settled where neither point is on a kink, and right only if right at
    both. A kink coordinate takes the new numbers (from the side that failed, if one did):
    the old ones straddle a kink. A failing (or undecided) element keeps its own numbers
    and is cleared only if right on both sides, as a kink the loss did not show: a bug that
    holds on one side of a nearby kink (a dropped ReLU derivative just below 0) stays a
    bug. A side too coarse to decide leaves the coordinate unverified, never ok.
    """
    from gradcheck.measure import BAD, OK, PENDING, UNVERIFIED

    # settled where not on a kink, or agreeing anyway (a kink flag on an agreeing element
    # is curvature near a minimum: x^2 a few steps from 0)
    settled = ((plus.status == OK) | ~plus.kink) & ((minus.status == OK) | ~minus.kink)
    right_both = settled & (plus.status == OK) & (minus.status == OK)
    wrong_either = (plus.status == BAD) | (minus.status == BAD)
    was_failing = m.status[positions] != PENDING  # failing or undecided: held to both sides
    take = settled & (~was_failing | right_both)
    minus_failed = minus.status != OK
    for field_name in ("analytic", "numeric", "error", "allowed", "bar", "still"):
        chosen = np.where(minus_failed, getattr(minus, field_name), getattr(plus, field_name))
        getattr(m, field_name)[positions[take]] = chosen[take]
    m.status[positions[take]] = np.where(right_both, OK,
                                         np.where(wrong_either, BAD, UNVERIFIED))[take]
    m.jittered[positions[take]] = True
    m.kink[positions[take & was_failing]] = True
    return settled


def _jitter_warnings(name: str, m: Measured, outside: np.ndarray, failing: np.ndarray,
                     undecided: np.ndarray,
                     shape: tuple[int, ...], warnings: list[str]) -> None:
    from gradcheck.measure import UNVERIFIED

    if len(outside):
        unverified = int(np.sum(m.status[outside] == UNVERIFIED))
        first = flat_element(name, int(m.flat_indices[outside[0]]), shape)
        warnings.append(
            f"{name}: {len(outside)} kink coordinate(s) (first {first}) "
            "have an analytic value outside the one-sided derivatives at the given point; "
            "they were re-checked at a jittered point where the loss is differentiable"
            + (f" ({unverified} could not be: left unverified)" if unverified else "")
            + ". Correct when several kinks are crossed at once (a zero row through a "
            "bias-free Dense + ReLU); for an elementwise layer it is a bug: re-run with "
            "kinks='hull'.")
    for rechecked, why in (
            (failing, "disagree with the loss at the given point but agree at a jittered "
                      "point nearby: kinks the loss does not show (ReLU -> negate -> ReLU at "
                      "0 is flat on both sides, yet ReLU'(0) > 0 gives a nonzero chain rule)"),
            (undecided, "could not be decided at the given point (their steps straddle a "
                        "kink: a ReLU input closer to 0 than the step) and agree at a "
                        "jittered point nearby")):
        cleared = rechecked[m.jittered[rechecked]]
        if len(cleared):
            first = flat_element(name, int(m.flat_indices[cleared[0]]), shape)
            warnings.append(
                f"{name}: {len(cleared)} element(s) (first {first}) {why}. Verified nearby, "
                "not at the point; re-run with kinks='hull' to hold the point itself to "
                "account.")
