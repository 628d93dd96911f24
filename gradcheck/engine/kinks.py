"""Evidence the point alone cannot give, for coordinates at or near a kink.

Along one coordinate a piecewise-smooth loss has one-sided derivatives d- and d+. At a
single kink crossed, every valid convention (ReLU'(0) in [0, 1], sign(0) in [-1, 1], any
tie split) lies in [min(d-, d+), max(d-, d+)]: the hull (gradcheck.engine.verdict judges
it). Two re-checks add what one coordinate at a time cannot show:

- ties (:func:`check_ties`): tied maxima are each a kink, and each coordinate alone lies
  inside its hull even when the tie is counted twice. Moved together, tied elements stay
  tied, so the loss is smooth along that direction and the chain rule must hold there:
  the analytic values of the group must add up to the slope. A mismatch that persists
  when the point moves along the direction is a bug; one that vanishes is an artifact of
  the point (relu(x) - relu(-x) at 0).
- nearby (:func:`recheck_nearby`): kink coordinates outside their hull, wrong elements
  whose looks show a kink could hide at the point, and undecided ones whose looks straddle
  a kink are measured again at a mirrored pair of jittered points, where the loss is
  differentiable (several kinks crossed at once, kinks the loss does not show).

Both only add evidence; the verdict is decided once, afterwards.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from gradcheck.engine.calls import Calls
from gradcheck.engine.ladder import KINK_FLOORS, Target, measure
from gradcheck.engine.resolution import Resolution
from gradcheck.engine.slope import Shape, Slopes, base_steps, distance_to_hull, read_pair
from gradcheck.engine.tolerance import gradient_scale
from gradcheck.engine.value import LossValue
from gradcheck.engine.verdict import (
    KINKS,
    Evidence,
    Judge,
    Nearby,
    Reason,
    Status,
    Verdicts,
    Why,
    code,
    decide,
)
from gradcheck.report import Note, TieFinding
from gradcheck.text import flat_element, unravel

JITTER_ROUNDS = 4  # fresh jitters tried before a coordinate is left undecided
JITTER_STEPS = (4.0, 8.0)  # a jitter moves a coordinate this many base steps (x 2^round)
RECHECK_SAMPLE = 16  # failing elements per tensor re-checked nearby first
MAX_TIE_GROUPS = 64  # tie groups checked per check
MAX_TIE_PAIRS = 16  # pairs of kink coordinates checked per check, after the groups
MAX_PAIR_ROW = 16  # kink coordinates of one row that pairs are formed from
TIE_NOISE_FACTOR = 4.0  # measured noise counts this many times in a tie's error bar


def jitter_offsets(steps: np.ndarray, rng: np.random.Generator, attempt: int = 0
                   ) -> np.ndarray:
    """Random moves of JITTER_STEPS steps (twice that at each further ``attempt``), either
    sign, off a kink.

    Far enough that a stencil of the same steps around the new point does not reach back
    to the kink; near enough that the function there is the same piece of code, and that a
    smooth function's wrong gradient is still wrong there. Kinks that one zero formed
    spread apart in proportion to the move (a zero row through Dense + ReLU), so a move
    that left one too close is followed by a longer one.

    >>> offsets = jitter_offsets(np.ones(3), np.random.default_rng(0))
    >>> bool(np.all((np.abs(offsets) >= 4) & (np.abs(offsets) <= 8)))
    True
    """
    signs = rng.choice(np.array([-1.0, 1.0]), size=steps.shape)
    low, high = JITTER_STEPS
    return signs * rng.uniform(low, high, size=steps.shape) * 2.0 ** attempt * steps


# ---------------------------------------------------------------------------- ties


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


@dataclass(frozen=True)
class TieDirection:
    """Kink coordinates moved together, each by ``orientation`` times one offset, so that
    a tie among them (two maxima, |x| = |y|, x + c = y + d) stays a tie: along it the loss
    is smooth even where every coordinate alone crosses a kink. Members may lie in
    different tensors (np.maximum(a, b), max(x, threshold))."""

    names: tuple[str, ...]  # each member's tensor
    positions: np.ndarray  # each member's position in its tensor's Evidence
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

    def moves(self, offset: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The point moved by ``offset`` along the direction."""
        return {name: (self.flat[inside],
                       self.base[inside] + self.orientation[inside] * offset)
                for name, inside in self.segments().items()}


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
    floor: np.ndarray  # the rounding floor of the look the one-sided slopes come from
    # moves change the coordinate's own output only (an elementwise map's input): two of
    # one tensor share no output, so they tie with none of their own (max(x, t) ties x to
    # another tensor's t)
    single: np.ndarray
    unsettled: frozenset[str] = frozenset()  # tensors with an element failing or pending

    @property
    def jump(self) -> np.ndarray:
        """|d+ - d-| where it is beyond what rounding could make of it (8 floors, the
        mismatch a bug must clear), else 0: no kink to tie or to weigh a move by."""
        jump = np.abs(self.forward - self.backward)
        return np.where(jump > 8 * self.floor, jump, 0.0)

    @staticmethod
    def of(calls: Calls, results: Mapping[str, Evidence], verdicts: Mapping[str, Verdicts]
           ) -> _Pool:
        names: list[str] = []
        parts = []
        unsettled = set()
        for name, ev in results.items():
            v = verdicts[name]
            pending = np.isin(v.reason, (Reason.KINK_UNSETTLED, Reason.KINK_INSIDE_STEP))
            failing = v.status == code(Status.FAILED)
            # every kink coordinate, whatever its provisional verdict (a tied maximum in
            # float16 is too coarse to vouch for, and off the tie its bug is gone)
            positions = np.flatnonzero(np.isin(ev.shape, KINKS) & ev.finite
                                       & (v.status != code(Status.SKIPPED)) & ~ev.tie)
            if np.any(failing | pending):
                unsettled.add(name)
            names += [name] * len(positions)
            flat = ev.flat[positions]
            parts.append((positions, flat, calls.point.values(name, flat),
                          ev.analytic[positions], ev.forward[positions],
                          ev.backward[positions], ev.floor[positions],
                          ev.single[positions]))
        columns = [np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)
                   for k in range(8)]
        value, analytic, forward, backward, floor = columns[2:7]
        return _Pool(tuple(names), columns[0].astype(np.intp), columns[1].astype(np.intp),
                     value, analytic, forward, backward, floor, columns[7].astype(bool),
                     frozenset(unsettled))

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
    jump = pool.jump

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
        inside = np.flatnonzero((names == name) & ~pool.single)
        for group in tie_groups(pool.value[inside], pool.flat[inside],
                                calls.arrays[name].shape, pool.analytic[inside],
                                _slope_sign(pool.forward[inside] + pool.backward[inside])):
            add(inside[group], np.ones(len(group)))
    for cluster in _equal_jumps(jump):
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
    jump = pool.jump
    outside = distance_to_hull(pool.analytic, np.minimum(pool.forward, pool.backward),
                               np.maximum(pool.forward, pool.backward)) > 1e-3 * jump
    names = np.array(pool.names)
    candidates: list[tuple[float, TieDirection]] = []
    for name in dict.fromkeys(pool.names):
        inside = np.flatnonzero((names == name) & (jump > 0) & outside & ~pool.single)
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
        return [cluster[~pool.single[cluster]]]
    settled = np.array([i for i in cluster if pool.names[i] not in pool.unsettled],
                       dtype=np.intp)
    return [settled[pool.value[settled] == value] for value in np.unique(pool.value[settled])]


def _equal_jumps(jump: np.ndarray) -> list[np.ndarray]:
    """Clusters (positions) of equal jumps, within a thousandth: tied coordinates share
    the piece that takes over, so they jump alike up to the numbers' rounding. A jump of 0
    (none resolved) ties nothing."""
    resolved = np.flatnonzero(jump > 0)
    order = resolved[np.argsort(jump[resolved], kind="stable")]
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


@dataclass(frozen=True)
class _Along:
    """The loss along a tie direction at steps h and h/2 around a point on it."""

    coarse: Slopes  # at h (one element)
    fine: Slopes  # at h/2
    # the largest error of one of its loss values: what the front door reported of its
    # rounding (a float32 output summed in float64 is float32-coarse), else the loss's
    # precision, times what the resolution probe measured beyond it
    loss_error: float = 0.0
    # the most the front door's unchanged outputs could hide in one of its values (0.0:
    # nothing reported): a mismatch below it is no bug, and no agreement either
    hidden: float = 0.0

    @property
    def gap(self) -> float:
        return float(abs(self.fine.central[0] - self.coarse.central[0]))

    @property
    def noise(self) -> float:
        """The measured error of the h/2 slope: the gap, or the part of the spreads that
        is not curvature, whichever is larger."""
        roughness = abs(2 * float(self.fine.spread[0]) - float(self.coarse.spread[0])) / 2
        return max(self.gap, roughness)

    @property
    def still(self) -> bool:
        """The loss came back bit for bit as it was at every move: its changes round away
        there (a float32 output of 100 beside moves of 1e-8), and it says nothing."""
        return bool(self.coarse.still[0] and self.fine.still[0])

    def smooth(self, bound: float) -> bool:
        """No jump of the one-sided slopes, and the h and h/2 estimates agree."""
        reading = read_pair(self.coarse, self.fine, np.array([bound / 8]))
        return int(reading.shape[0]) != Shape.JUMP and self.gap <= 2 * bound


@dataclass(frozen=True)
class _TieScope:
    """What every look along a tie of one check shares."""

    calls: Calls
    judge: Judge  # the coarsest of the members' tensors'
    resolution: Resolution

    def bound(self, along: _Along, step: float, noise: float | None = None,
              failing: bool = False) -> float:
        """The mismatch a tie's slope can carry, by the coordinates' rule (ladder): the
        tolerance, what the two steps measured, and the rounding floor of the fine look at
        ``step`` (two loss values' errors over the span: loss_error / step) once to agree;
        ``failing``: the mismatch beyond which it is a bug, 8 floors plus what the door's
        unchanged outputs could hide."""
        slope = float(along.fine.central[0])
        tolerance = self.judge.tolerance.at_kink(np.array(slope),
                                                 max(abs(slope), self.judge.atol_scale))
        floor = along.loss_error / step
        rounding = 8 * floor + along.hidden / step if failing else floor
        return float(tolerance + rounding
                     + TIE_NOISE_FACTOR * (along.noise if noise is None else noise))

    def loss_error(self, values: list[LossValue]) -> float:
        """The largest error of these loss values (:meth:`Resolution.value_error`)."""
        return float(np.max(self.resolution.value_error(
            np.array(values, dtype=np.float64), np.array([v.rounding for v in values]),
            self.calls.loss_eps)))

    def along(self, direction: TieDirection, offset: float, step: float,
              here: float | None = None) -> _Along:
        """The loss at the point moved by ``offset`` along the direction, and at step and
        step/2 on either side of it (and there, unless given as ``here``: a value whose
        rounding no door reported)."""
        point = self.calls.point
        moves = (offset + step, offset - step, offset + step / 2, offset - step / 2)
        losses: list[float] = []
        values = [] if here is None else [LossValue(here)]
        taken, hidden = [], 0.0
        for move in moves + (() if here is not None else (offset,)):
            with point.moved(direction.moves(move)) as offsets:
                losses.append(self.calls.loss())
                taken.append(_taken(direction, offsets))
            values.append(self.calls.last)
            if np.isfinite(self.calls.last.rounding):
                hidden = max(hidden, self.calls.last.hidden)
        at = losses[4] if here is None else here
        centre = taken[4] if here is None else offset
        up, down, up_half, down_half = losses[:4]
        zero = np.zeros(1)
        coarse = _two_sided(up, down, at, taken[0] - centre, centre - taken[1], zero)
        fine = _two_sided(up_half, down_half, at, taken[2] - centre, centre - taken[3], zero)
        return _Along(coarse, fine, self.loss_error(values), hidden)


def _two_sided(up: float, down: float, at: float, h_up: float, h_down: float,
               floor: np.ndarray) -> Slopes:
    with np.errstate(invalid="ignore", divide="ignore"):
        return Slopes(np.array([(up - down) / (h_up + h_down)]), np.array([(up - at) / h_up]),
                      np.array([(at - down) / h_down]), np.array([(h_up + h_down) / 2]), floor,
                      np.array([up == at and down == at]))


def _taken(direction: TieDirection, offsets: Mapping[str, np.ndarray]) -> float:
    """The offset actually taken along the direction (the members' dtype rounds it)."""
    parts = [offsets[name] / direction.orientation[inside]
             for name, inside in direction.segments().items()]
    return float(np.mean(np.concatenate(parts)))


@dataclass(frozen=True)
class FailedTie:
    """A tie group failed together: the finding, its note, and where its members are."""

    finding: TieFinding
    note: str
    positions: Mapping[str, np.ndarray]  # each tensor's members, as positions in its evidence

    def wrong_off_the_tie(self, results: Mapping[str, Evidence]) -> bool:
        """Every member is wrong at the jittered points too, where no tie holds: the error
        is the gradient's own (a backward wrong everywhere), not the tie's."""
        return all(np.all(results[name].nearby[p] == Nearby.WRONG)
                   for name, p in self.positions.items())


def check_ties(calls: Calls, results: Mapping[str, Evidence], verdicts: Mapping[str, Verdicts],
               targets: Mapping[str, Target], resolution: Resolution, loss_at_point: float,
               rng: np.random.Generator, notes: list[Note]) -> list[FailedTie]:
    """Mark failed (``Evidence.tie``) tied kink coordinates whose gradients do not add up
    to the slope of the loss when they move together (a tied maximum counted twice, or
    dropped); return the groups failed (their notes go with them; ``notes`` gets the
    others). ``verdicts``: the provisional ones (which kink coordinates may hide a tie).

    Per direction (:func:`tie_directions`), 4 evaluations (h and h/2) at the point. Where
    the direction is smooth there, a mismatch is a bug when it persists one step to each
    side along the tie (an artifact of the point, relu(x) - relu(-x) at 0, vanishes): 2 x
    (5 + 1 gradient). Where the direction itself crosses a kink (a tie with a constant:
    zero padding, or a ReLU at 0 before the max), it is judged a little way off the point
    on each side, where only the tie remains: 2 points per side, 5 + 1 gradient each.
    """
    findings: list[FailedTie] = []
    pool = _Pool.of(calls, results, verdicts)
    if len(pool.positions) < 2:
        return findings
    # what the tolerance's atol is relative to: the whole check's gradients, not only a
    # slope along the tie (a mismatch of 1e-168 where gradients are 0.07 is no bug)
    atol_scale = max(abs(loss_at_point), gradient_scale(
        *(a for ev in results.values() for a in (ev.numeric, ev.analytic))))
    for direction in tie_directions(pool, calls):
        if any(results[n].tie[p] for n, p in zip(direction.names, direction.positions,
                                                 strict=True)):
            continue
        coarsest = max(set(direction.names), key=lambda n: targets[n].model_eps)
        judge = replace(targets[coarsest].judge, atol_scale=atol_scale)
        scope = _TieScope(calls, judge, resolution)
        # a power of 2 (and the moves below, of few bits): members tied in exact
        # arithmetic only (x + c = y + d) stay tied when moved, where rounding would part them
        h = 2.0 ** np.floor(np.log2(float(np.max(base_steps(
            direction.base, targets[coarsest].model_eps)))))
        analytic = np.array([results[n].analytic[p] for n, p in zip(
            direction.names, direction.positions, strict=True)])
        total = float(np.sum(analytic * direction.orientation))
        here = scope.along(direction, 0.0, h, loss_at_point)
        if here.still:
            continue  # the loss does not resolve the move: it says nothing of the tie
        bound = scope.bound(here, h / 2)
        if not here.smooth(bound):
            if not direction.off_the_point:
                continue  # a pair that way keeps no tie
            # (a jump on the point is no noise: only the h vs h/2 gap counts in the bound)
            side_bound = scope.bound(here, h / 2, noise=here.gap)
            low, high = sorted((float(here.coarse.forward[0]), float(here.coarse.backward[0])))
            if low - side_bound <= total <= high + side_bound:
                continue  # within the slopes on either side: consistent at the point
            # the direction crosses a kink at the point, and the gradients add up to more
            # than either side's slope: off the point, on either side, only the tie is left
            # (its members stay equal), and the chain rule must hold there
            sides = [_off_the_point(scope, direction, side, h) for side in (1.0, -1.0)]
            if "mismatch" in sides:
                findings.append(_fail_tie(results, direction, total, None, calls))
            elif "gray" in sides:
                _undecided_tie(results, direction)
            continue
        slope = float(here.fine.central[0])
        if abs(total - slope) <= bound:
            continue
        # moved along the tie by up to h/2 and measured with steps up to h/2 there, the
        # stencils stay inside the stretch just seen to be smooth (a far move could leave
        # the tie's piece: in float16 a step is a tenth of the value)
        shift = float(rng.choice([0.25, 0.375])) * h
        # a loop, not all(... for ...): a StopIteration raised by the user's code inside a
        # generator would come back as RuntimeError (PEP 479)
        found = []
        for sign in (1.0, -1.0):
            found.append(_mismatch_at(scope, direction, sign * shift, h / 2))
            if found[-1] in ("match", "rough"):
                break
        if found == ["mismatch", "mismatch"]:
            findings.append(_fail_tie(results, direction, total, slope, calls))
        elif "gray" in found and "match" not in found:
            _undecided_tie(results, direction)
        elif direction.off_the_point:  # a group of tied values (a pair is a mere try)
            notes.append(Note(
                "tie", direction.names[0],
                f"{direction.names[0]}: {len(direction.flat)} elements tied (first "
                f"{direction.first(calls)}) add up to {total:.6g} against a slope of "
                f"{slope:.6g} at the point only; moved along the tie they agree, so it is "
                "an artifact of the point, not a bug."))
    return findings


def _off_the_point(scope: _TieScope, direction: TieDirection, side: float, h: float) -> str:
    """Moved off the point along the direction by h and by 1.5 h on one side: "mismatch"
    when the loss is smooth along it at both places and the gradients there do not add up
    to its slope, "gray" when they may not (by less than its outputs could hide), "match"
    otherwise (a match, or a rough stretch, at h settles it)."""
    found = []
    for distance in (1.0, 1.5):
        found.append(_mismatch_at(scope, direction, side * distance * h, h / 4,
                                  off_a_kink=True))
        if found[-1] in ("match", "rough"):
            return "match"
    return "mismatch" if found == ["mismatch", "mismatch"] else "gray"


def _undecided_tie(results: Mapping[str, Evidence], direction: TieDirection) -> None:
    """Mark the direction's members as a tie the loss cannot decide."""
    for name, inside in direction.segments().items():
        results[name].tie_undecided[direction.positions[inside]] = True


def _fail_tie(results: Mapping[str, Evidence], direction: TieDirection, total: float,
              slope: float | None, calls: Calls) -> FailedTie:
    """Mark the direction's members failed as a tie; the finding and its note."""
    positions = {name: direction.positions[inside]
                 for name, inside in direction.segments().items()}
    for name, p in positions.items():
        results[name].tie[p] = True
    tensors = dict.fromkeys(direction.names)
    across = "" if len(tensors) == 1 else f" (in {', '.join(tensors)})"
    if slope is not None:
        evidence = (f", but the loss moves at {slope:.6g} when they move together, here and "
                    "on both sides along the tie")
    else:  # the direction crosses a kink at the point
        evidence = (" at the point, and a little way off it along the tie, where only the "
                    "tie remains, they still do not add up to the loss's slope")
    note = (f"{direction.names[0]}: {len(direction.flat)} elements tied at "
            f"{direction.base[0]:g} (first {direction.first(calls)}){across} are a kink "
            f"together: their gradients add up to {total:.6g}{evidence}. A tied maximum "
            "passes its upstream gradient on once: to one tied element, or split among "
            "them.")
    members = tuple((name, unravel(int(flat), calls.arrays[name].shape))
                    for name, flat in zip(direction.names, direction.flat, strict=True))
    return FailedTie(TieFinding(members, float(direction.base[0]), total, slope), note,
                     positions)


def _mismatch_at(scope: _TieScope, direction: TieDirection, offset: float, step: float,
                 off_a_kink: bool = False) -> str:
    """At the point moved by ``offset`` along the tie: "mismatch" when the gradients do not
    add up to the loss's slope along it, "match" when they do, "gray" when they miss it by
    less than the loss values' rounding and the front door's unchanged outputs could
    account for (:meth:`_TieScope.bound` with ``failing``); "rough" (nothing to conclude)
    where the loss did not move at all there, or, with ``off_a_kink`` (the direction
    crossed a kink at the point), where the direction is not smooth there either."""
    calls = scope.calls
    with calls.point.moved(direction.moves(offset)):
        gradient = calls.grads()
    along = scope.along(direction, offset, step)
    bound = scope.bound(along, step / 2)
    if along.still or (off_a_kink and not along.smooth(bound)):
        return "rough"
    total = sum(float(np.sum(gradient[name].reshape(-1)[direction.flat[inside]]
                             * direction.orientation[inside]))
                for name, inside in direction.segments().items())
    off = abs(total - float(along.fine.central[0]))
    if off <= bound:
        return "match"
    return "gray" if off <= scope.bound(along, step / 2, failing=True) else "mismatch"


# ---------------------------------------------------------------------------- nearby


def recheck_nearby(calls: Calls, results: Mapping[str, Evidence],
                   verdicts: Mapping[str, Verdicts], targets: Mapping[str, Target],
                   resolution: Resolution, rng: np.random.Generator) -> None:
    """Re-check what the given point cannot settle (``Evidence.why`` says which and why,
    ``Evidence.nearby`` what was found; ``verdicts``: the provisional ones).

    - Failing elements, worst first, RECHECK_SAMPLE per tensor (the rest only if every one
      of those turns out right): a smooth reading at the point that the analytic value
      misses can only be a convention at an exact kink the loss does not show (ReLU ->
      negate -> ReLU at 0 is flat, yet a valid ReLU'(0) = 0.5 gives a nonzero chain rule;
      kinks crossed at once that cancel). Any move breaks such a tie: each is moved alone,
      by a quarter of its last step each way, and its analytic value there must be what the
      point measured. A bug near a kink (a mask shifted to x > 2e-3) is wrong there too.
      Two gradient calls each; no loss evaluation.
    - Kink coordinates whose analytic value lies outside the hull (where the hull is not
      exact: several kinks crossed at once, a zero row through a bias-free Dense + ReLU),
      and undecided elements (their looks straddle a kink, a ReLU input of 1e-3 inside a
      float32 step of 5e-3, or they land between agreeing and failing): all of them moved
      together by a random few steps each way, where the loss is differentiable, and
      measured there as at the point (kinks judged as ordinary points). A coordinate not
      decided at both points gets a fresh, longer jitter next round; after JITTER_ROUNDS it
      is left undecided. (A wrong gradient is wrong there too: it is never cleared so.)
    """
    jittered: dict[str, np.ndarray] = {}
    for name, ev in results.items():
        v = verdicts[name]
        kink = np.isin(ev.shape, KINKS)
        outside = kink & np.isin(v.reason, (Reason.KINK_UNSETTLED, Reason.KINK_INSIDE_STEP))
        coarse_kink = kink & (v.status == code(Status.UNVERIFIED)) & ~outside
        failing = (v.status == code(Status.FAILED)) & (v.reason == Reason.MISMATCH)
        # undecided at the point: its looks straddled a kink, or it lands between agreeing
        # and failing, or its error bar is too wide, where a kink inside the step (a ReLU
        # input of 1e-3 under a float32 step of 5e-3) adds to the rounding
        undecided = ((v.status == code(Status.UNVERIFIED)) & ~kink
                     & (ev.straddled | np.isin(v.reason, (Reason.GRAY, Reason.ROUGH,
                                                          Reason.ROUNDING))))
        # failed as a tie: wrong at jittered points too (no tie there), it is no tie's
        tied = np.flatnonzero(ev.tie)
        ev.why[outside] = Why.OUTSIDE_HULL
        ev.why[failing] = Why.FAILING
        undecided |= coarse_kink  # inside its hull, too coarsely to vouch
        ev.why[undecided] = Why.UNDECIDED
        moved = _off_an_exact_kink(calls, name, ev, targets[name].judge,
                                   _worst_first(ev, np.flatnonzero(failing)))
        jittered[name] = np.concatenate([np.flatnonzero(outside),
                                         _worst_first(ev, np.flatnonzero(undecided)), moved,
                                         tied])
    _jitter(calls, results, targets, resolution, rng, jittered)


def _off_an_exact_kink(calls: Calls, name: str, ev: Evidence, judge: Judge,
                       positions: np.ndarray) -> np.ndarray:
    """The failing elements at ``positions`` (worst first), each moved alone by a quarter
    of its last step each way: right where its analytic value there is the numeric value
    the point measured (within what agreement allows there). Where the analytic values
    on the two sides are far apart (kinks inside the step, which two looks that both
    reach across them can read as smooth), the point's reading decides nothing: those
    are returned, undecided, for the jittered points."""
    moved: list[int] = []
    first, rest = positions[:RECHECK_SAMPLE], positions[RECHECK_SAMPLE:]
    for batch in (first, rest):
        if batch is rest and not np.all(ev.nearby[first] == Nearby.RIGHT):
            break
        for position in batch:
            flat = ev.flat[position:position + 1]
            value = calls.point.values(name, flat)
            allowed = float(judge.detect(ev.numeric[position:position + 1])[0]
                            + ev.agree[position])
            found = _gradient_each_way(calls, name, flat, value, ev.step[position] / 4)
            # the derivative's own change over a quarter step each way (L'' h / 4) cancels
            # in the mean of the two; the two differ by about twice that (half the spread of
            # the one-sided slopes), and a wrong gradient stays wrong in both
            spread = abs(float(ev.forward[position]) - float(ev.backward[position]))
            mean = (found[0] + found[1]) / 2
            right = (abs(mean - ev.numeric[position]) <= allowed
                     and abs(found[0] - found[1]) <= 2 * allowed + spread)
            # a smooth gradient, right or wrong, changes about as much each way: the mean of
            # the two is its value at the point
            jumped = abs(mean - float(ev.analytic[position])) > 2 * allowed + spread
            bends = spread > KINK_FLOORS * float(ev.floor[position])
            if not right and not jumped and bends:
                # the same a whole step each way, where the looks reached (only where the
                # loss bends within the step: a straight line hides no kink): the mean's
                # departure grows 16-fold from a quarter step for a smooth gradient (its
                # h^2 term); a kink inside the step that the quarter steps stop short of
                # (a float32 weight with ReLU kinks 1.0e-3 and 3.7e-3 away, under steps of
                # 4.9e-3 and 2.5e-3 whose two readings agreed far from the derivative)
                # moves it by a whole jump on one side only
                far = _gradient_each_way(calls, name, flat, value, ev.step[position])
                smooth_part = 16 * abs(mean - float(ev.analytic[position]))
                jumped = (abs((far[0] + far[1]) / 2 - float(ev.analytic[position]))
                          > 2 * allowed + smooth_part)
            if not right and jumped:
                # neither one convention at an exact kink nor a gradient wrong all along:
                # the gradient jumps within the step (kinks inside it), where the looks at
                # the point measured a mixture
                ev.why[position] = Why.UNDECIDED
                moved.append(int(position))
                continue
            ev.nearby[position] = Nearby.RIGHT if right else Nearby.WRONG
            ev.near_analytic[position], ev.near_numeric[position] = mean, ev.numeric[position]
    return np.array(moved, dtype=np.intp)


def _gradient_each_way(calls: Calls, name: str, flat: np.ndarray, value: np.ndarray,
                       offset: float) -> list[float]:
    """The analytic gradient of one coordinate (``flat``, of one element, at ``value``)
    with the coordinate moved up by ``offset`` and down by it: one gradient call each."""
    found = []
    for sign in (1.0, -1.0):
        with calls.point.moved({name: (flat, value + sign * offset)}):
            found.append(float(calls.grads(copy=False)[name].reshape(-1)[flat[0]]))
    return found


def _jitter(calls: Calls, results: Mapping[str, Evidence], targets: Mapping[str, Target],
            resolution: Resolution, rng: np.random.Generator,
            pending: dict[str, np.ndarray]) -> None:
    """Measure the coordinates at ``pending`` at mirrored pairs of jittered points."""
    for attempt in range(JITTER_ROUNDS):
        pending = {name: p for name, p in pending.items() if len(p)}
        if not pending:
            return
        offsets = {}
        for name, p in pending.items():
            values = calls.point.values(name, results[name].flat[p])
            base = base_steps(values, resolution.step_eps(targets[name].model_eps))
            offsets[name] = jitter_offsets(base, rng, attempt)
        sides = [_measured_at(calls, results, targets, resolution, pending, offsets, sign)
                 for sign in (1.0, -1.0)]
        if sides[0] is None or sides[1] is None:
            continue
        for name, positions in pending.items():
            settled = _record_nearby(results[name], positions, sides[0][name],
                                     sides[1][name], targets[name].judge)
            pending[name] = positions[~settled]
    for name, positions in pending.items():
        ev = results[name]
        ev.nearby[positions[ev.nearby[positions] == Nearby.NOT_LOOKED]] = Nearby.UNDECIDED


def _worst_first(ev: Evidence, positions: np.ndarray) -> np.ndarray:
    error = np.abs(ev.analytic[positions] - ev.numeric[positions])
    return positions[np.argsort(-np.nan_to_num(error, nan=np.inf), kind="stable")]


def _measured_at(calls: Calls, results: Mapping[str, Evidence], targets: Mapping[str, Target],
                 resolution: Resolution, pending: Mapping[str, np.ndarray],
                 offsets: Mapping[str, np.ndarray], sign: float
                 ) -> dict[str, tuple[Evidence, Verdicts]] | None:
    """Move every pending coordinate by sign * its offset, and measure them there."""
    moves = {name: (results[name].flat[p],
                    calls.point.values(name, results[name].flat[p]) + sign * offsets[name])
             for name, p in pending.items()}
    with calls.point.moved(moves):
        loss_there = calls.loss()
        if not np.isfinite(loss_there):
            return None
        analytic = calls.grads()
        found = {}
        for name, positions in pending.items():
            flat = results[name].flat[positions]
            target = targets[name]
            judge = replace(target.judge, kinks="strict")
            there = replace(target, flat=flat, analytic=analytic[name].reshape(-1)[flat],
                            judge=judge)
            ev = measure(calls, there, resolution, loss_there)
            found[name] = (ev, decide(ev, judge))
    return found


def _record_nearby(ev: Evidence, positions: np.ndarray, plus: tuple[Evidence, Verdicts],
                   minus: tuple[Evidence, Verdicts], judge: Judge) -> np.ndarray:
    """What the mirrored pair of jittered points found; returns which coordinates are
    settled (right at both points, or wrong off a kink at one); the rest want a fresh
    jitter (a jittered point on a kink decides nothing)."""
    (ev_plus, v_plus), (ev_minus, v_minus) = plus, minus
    ok, failed = code(Status.OK), code(Status.FAILED)
    # a jittered point vouches only as sharply as the point could: there a wrong gradient
    # that stays wrong cannot agree (it would, within a wider error bar: float16 noise)
    kink = np.isin(ev.shape[positions], KINKS)
    sharp = np.where(kink, judge.hull_slack(ev.numeric[positions], ev.floor[positions]),
                     ev.agree[positions])
    right = ((v_plus.status == ok) & (v_minus.status == ok)
             & (np.maximum(ev_plus.bar, ev_minus.bar) <= sharp))
    wrong = (((v_plus.status == failed) & ~np.isin(ev_plus.shape, KINKS))
             | ((v_minus.status == failed) & ~np.isin(ev_minus.shape, KINKS)))
    settled = right | wrong
    found = np.where(right, Nearby.RIGHT, np.where(wrong, Nearby.WRONG, Nearby.UNDECIDED))
    take = positions[settled]
    ev.nearby[take] = found[settled]
    minus_side = v_minus.status != ok
    ev.near_analytic[take] = np.where(minus_side, ev_minus.analytic, ev_plus.analytic)[settled]
    ev.near_numeric[take] = np.where(minus_side, ev_minus.numeric, ev_plus.numeric)[settled]
    return settled
