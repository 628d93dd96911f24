"""mode="fast": random directions instead of every coordinate.

The fast-mode tensors that share a precision are first tested together along one random
direction d through all of them: the slope of the loss along d against <analytic, d>. A
tensor is verified by that test only where it resolves one element: where a single element
off by its tolerance would have moved the slope by more than the test's error bar. That
holds in float64 for a million coordinates; it does not in float32, where the rounding of
one loss value outweighs one element's share of the slope. A tensor the joint test cannot
vouch for is tested alone; one that still cannot be vouched for is measured coordinate by
coordinate (gradcheck.engine.ladder) when mode="auto" chose fast mode and that is
affordable, and left UNVERIFIED with the reason otherwise (mode="fast" was asked for: it
never turns into 2n evaluations on its own). A tensor whose direction disagrees is split
in halves, down to LEAF_SIZE coordinates, which are measured one by one: O(k log n)
evaluations for k wrong elements instead of 2n.

A direction is judged by its measured error, not by a fixed rtol:
- step d alone decides when the slope agrees with the projection within the rounding of
  one loss value and of the projection itself: no truncation is left to hide a mismatch
  (a loss linear or quadratic along d, such as a dense layer's, needs no more);
- otherwise step d/2 as well, read with d by the one error-bar rule of
  gradcheck.engine.slope: a wrong gradient leaves a step-independent mismatch, truncation
  shrinks, noise grows. The direction agrees within the error bar the two steps measure,
  and disagrees beyond it.

Memory: the params are moved in place chunk by chunk by a gradcheck.engine.point.Walk and
put back from the saved copy bit for bit. The direction is drawn per chunk (float32, from
a seed per tensor) when the params leave the point; every later step is read off the
params themselves. Nothing of a tensor's size is allocated.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from gradcheck.engine.calls import Calls
from gradcheck.engine.ladder import Target, measure
from gradcheck.engine.point import CHUNK, Segment, Walk
from gradcheck.engine.resolution import Resolution
from gradcheck.engine.slope import Shape, Slopes, read_pair, relative_step
from gradcheck.engine.verdict import Evidence
from gradcheck.validate import FLOAT64_EPS

LEAF_SIZE = 8  # groups this small are scanned coordinate by coordinate
# A tensor the directions cannot vouch for is measured coordinate by coordinate when it
# has at most this many elements (2 loss evaluations each), and left UNVERIFIED above.
FULL_FALLBACK_MAX = 1 << 16
MAX_LOCATED = 10  # stop localizing a tensor after this many wrong elements
# The magnitudes of a direction's coordinates, by position in a chunk: 1 + the fractional
# parts of k times the golden ratio, all different, spread evenly over [1, 2).
MAGNITUDES = (1.0 + (np.arange(CHUNK) * ((5 ** 0.5 - 1) / 2)) % 1.0).astype(np.float32)
# Roundings of float64 allowed in the projection <analytic, d> (a dot product of n terms).
PROJECTION_ROUNDINGS = 64.0
# The analytic values' own roundings (each independent, in their precision) add up along d
# like a random walk: this many standard deviations of that sum count.
ANALYTIC_SIGMAS = 6.0
# A mismatch beyond this many roundings of the loss (at the coarsest precision it passed
# through) and of the projection is no rounding: the direction disagrees.
GENEROUS_ROUNDINGS = 64.0


@dataclass
class FastResult:
    """What fast mode found in one tensor."""

    measured: Evidence  # the coordinates measured one by one (leaves, or all of them)
    note: str = ""  # for the report's warnings
    stopped: bool = False  # localizing stopped early: wrong elements counted are a lower bound
    unresolved: str = ""  # why the directions could not vouch (the tensor is UNVERIFIED)


@dataclass(frozen=True)
class Part:
    """One tensor's share of the random directions."""

    target: Target  # the tensor (its analytic gradient covers every coordinate)
    seed: int  # the directions' seed
    step_eps: float  # the eps its steps come from
    may_measure_all: bool = False  # auto mode: measure it in full where directions cannot vouch

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def size(self) -> int:
        return int(self.target.analytic.size)

    @property
    def relative_step(self) -> float:
        return relative_step(self.step_eps)

    def resolves_one_element(self, bar: float) -> bool:
        """Whether a single element off by the smallest error it may carry moves the slope
        along a direction of this tensor by more than twice ``bar``: each coordinate moves
        by at least the relative step, and the smallest error allowed is the verification
        tolerance of an element held to a tenth of the largest gradient."""
        smallest = float(self.target.judge.limit(np.zeros(1))[0])
        return 2 * bar <= smallest * self.relative_step


class _Direction:
    """The random direction of one walk: per segment a generator of random signs, one bit
    each (a random float costs 20 times as much), on magnitudes in [1, 2) that never repeat
    within a chunk, so one wrong element always moves the slope and two cannot cancel but
    by chance; times the relative step."""

    def __init__(self, parts: list[Part], segments: list[Segment]) -> None:
        self.parts, self.segments = parts, segments
        self._signs: dict[int, np.random.Generator] = {}

    def __call__(self, k: int, a: int, z: int) -> np.ndarray:
        if a == self.segments[k].lo:
            self._signs[k] = np.random.Generator(np.random.SFC64([self.parts[k].seed, a]))
        count = z - a
        bits = np.unpackbits(np.frombuffer(self._signs[k].bytes((count + 7) // 8),
                                           dtype=np.uint8), count=count)
        d = bits.astype(np.float32)
        d -= np.float32(0.5)
        np.copysign(MAGNITUDES[a % CHUNK:a % CHUNK + count], d, out=d)
        d *= np.float32(self.parts[k].relative_step)
        return d


@dataclass
class _Sums:
    """What a walk's steps add up to per segment: <analytic, taken> (the projection), and
    for the error bars sum |d| and sum |analytic| |d|."""

    parts: list[Part]
    segments: list[Segment]
    projection: list[float] = field(default_factory=list)
    span: list[float] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)  # sum |analytic| |d|
    weight2: list[float] = field(default_factory=list)  # sum (|analytic| |d|)^2

    def start(self, with_sizes: bool) -> Callable[[int, int, int, np.ndarray], None]:
        count = len(self.segments)
        self.projection = [0.0] * count
        if with_sizes:
            self.span, self.weight, self.weight2 = [0.0] * count, [0.0] * count, [0.0] * count

        def on_taken(k: int, a: int, z: int, taken: np.ndarray) -> None:
            analytic = self.parts[k].target.analytic[a:z]
            self.projection[k] += float(analytic @ taken)
            if with_sizes:
                size = np.abs(taken)
                self.span[k] += float(size.sum())
                size *= np.abs(analytic)
                self.weight[k] += float(size.sum())
                self.weight2[k] += float(size @ size)

        return on_taken


@dataclass
class _Test:
    """The outcome of a test along one direction."""

    agrees: bool  # the slope matches the projection within the error bar
    bar: float  # the slope's error bar (loss units per unit of d)
    vouched: list[bool]  # per segment: a single element off by its tolerance would show


@dataclass(frozen=True)
class _Scope:
    """What every test of one check's fast-mode tensors shares."""

    calls: Calls
    loss_at_point: float
    resolution: Callable[[], Resolution]  # measured at the first need, once per check


def check_fast(calls: Calls, parts: list[Part], loss_at_point: float,
               resolution: Callable[[], Resolution]) -> dict[str, FastResult]:
    """Random-direction tests of the parts, with localization of what fails. Parts with
    the same step precision are tested together first (one direction through all)."""
    scope = _Scope(calls, loss_at_point, resolution)
    by_eps: dict[float, list[Part]] = {}
    for part in parts:
        by_eps.setdefault(part.step_eps, []).append(part)
    results: dict[str, FastResult] = {}
    for group in by_eps.values():
        results.update(_check_together(scope, group))
    return {part.name: results[part.name] for part in parts}


def _check_together(scope: _Scope, parts: list[Part]) -> dict[str, FastResult]:
    """One direction through all parts; each part the joint test cannot vouch for is
    tested (and searched, or measured) on its own."""
    alone = parts
    if len(parts) > 1:
        test = _test_direction(scope, parts, [Segment(p.name, 0, p.size) for p in parts])
        if test.agrees:
            alone = [p for p, vouched in zip(parts, test.vouched, strict=True) if not vouched]
    results = {p.name: FastResult(Evidence.empty()) for p in parts}
    calls = scope.calls
    calls.tick(calls.scanned + sum(p.size for p in parts if p not in alone), calls.planned)
    for part in alone:
        results[part.name] = _search(scope, part)
        calls.tick(calls.scanned + part.size, calls.planned)
    return results


def _search(scope: _Scope, part: Part) -> FastResult:
    """Random-direction test of one tensor; groups that disagree are split in halves."""
    stack = [(0, part.size)]
    leaves: list[Evidence] = []
    failed_groups = located = 0
    while stack and located < MAX_LOCATED:
        lo, hi = stack.pop()
        if hi - lo <= LEAF_SIZE:
            leaf = _measure(scope, part, np.arange(lo, hi))
            leaves.append(leaf)
            located += int(np.sum(np.abs(leaf.analytic - leaf.numeric)
                                  > part.target.judge.detect(leaf.numeric) + leaf.safe))
            continue
        test = _test_direction(scope, [part], [Segment(part.name, lo, hi)])
        if test.agrees and test.vouched[0]:
            continue  # verified: the wrong elements lie elsewhere
        if test.agrees:  # agrees, but one element off by its tolerance could hide in it
            return _unresolved(scope, part, test.bar)
        failed_groups += 1
        mid = (lo + hi) // 2
        stack.extend([(mid, hi), (lo, mid)])
    stopped = bool(stack)
    merged = Evidence.concat(leaves)
    if failed_groups and not located and not np.any(np.isin(merged.shape,
                                                            (Shape.JUMP, Shape.ROUGH))):
        # the directions disagreed, and no element they led to did: nothing is verified
        return _unresolved(scope, part, float("nan"), disagreed=True)
    note = (f"stopped localizing after {MAX_LOCATED} wrong elements; more may be wrong"
            if stopped else "")
    return FastResult(merged, note, stopped)


def _measure(scope: _Scope, part: Part, flat: np.ndarray) -> Evidence:
    target = replace(part.target, flat=flat, analytic=part.target.analytic[flat])
    return measure(scope.calls, target, scope.resolution(), scope.loss_at_point)


def _unresolved(scope: _Scope, part: Part, bar: float, disagreed: bool = False
                ) -> FastResult:
    """A tensor the random directions cannot settle (they agree, but one element off by
    its tolerance could hide in their error bar; or they disagree, and no element they led
    to does): measured coordinate by coordinate where auto mode chose fast mode and that is
    affordable, else unverified with the reason."""
    needed = float(part.target.judge.limit(np.zeros(1))[0]) * part.relative_step / 2
    what = ("a random-direction test disagreed, yet no element it led to did (errors spread "
            "below the per-element tolerance, kinks along the direction, or rounding)"
            if disagreed else
            f"along a random direction the numeric error bar ({bar:.1e}) could hide one "
            f"element off by its tolerance (that needs {needed:.1e} or less)")
    if part.may_measure_all and part.size <= FULL_FALLBACK_MAX:
        return FastResult(_measure(scope, part, np.arange(part.size)),
                          f"measured element by element: {what}")
    why = ("mode='fast' does not measure element by element on its own"
           if not part.may_measure_all else
           f"{part.size} elements are more than the {FULL_FALLBACK_MAX} auto mode measures "
           "one by one")
    return FastResult(Evidence.empty(), unresolved=(
        f"{what}, and {why}: use mode='full' (2 evaluations per element), or evaluate in "
        "float64"))


def _test_direction(scope: _Scope, parts: list[Part], segments: list[Segment]) -> _Test:
    """Does <grad, d> match the slope along d (through the segments)? 2 loss evaluations
    when step d settles it, 4 when it takes d/2 as well."""
    calls = scope.calls
    seg_parts = [next(p for p in parts if p.name == s.name) for s in segments]
    walk = Walk(calls.point, segments)
    sums = _Sums(seg_parts, segments)
    model_eps = max(p.target.model_eps for p in seg_parts)
    try:
        walk.leave(_Direction(seg_parts, segments), sums.start(with_sizes=True))
        plus = list(sums.projection)
        loss_plus, error_plus = calls.loss(), calls.last.rounding
        walk.turn(-1.0, sums.start(with_sizes=False))
        minus = list(sums.projection)
        loss_minus, error_minus = calls.loss(), calls.last.rounding
        per_segment = [(p - m) / 2 for p, m in zip(plus, minus, strict=True)]
        slope = (loss_plus - loss_minus) / 2
        tight = _tight(scope, sums, model_eps, (loss_plus, loss_minus),
                       (error_plus, error_minus), Resolution())
        if np.isfinite(slope) and abs(slope - sum(per_segment)) <= tight:
            return _judge(tight, seg_parts, sums)
        walk.turn(-0.5, sums.start(with_sizes=False))
        half_plus = list(sums.projection)
        loss_half_plus, error_half_plus = calls.loss(), calls.last.rounding
        walk.turn(-1.0, sums.start(with_sizes=False))
        half_minus = list(sums.projection)
        loss_half_minus, error_half_minus = calls.loss(), calls.last.rounding
    finally:
        walk.restore()
    per_segment = [p - m for p, m in zip(half_plus, half_minus, strict=True)]
    analytic = sum(per_segment)  # d/2 moves: the slope per unit of d is twice their odd part
    losses = (loss_plus, loss_minus, loss_half_plus, loss_half_minus)
    reported = (error_plus, error_minus, error_half_plus, error_half_minus)
    test = _read_halves(scope, seg_parts, sums, model_eps, losses, reported, analytic,
                        Resolution())
    if test.agrees and all(test.vouched):
        return test  # the loss's rounding, as its theory says, settles it
    return _read_halves(scope, seg_parts, sums, model_eps, losses, reported, analytic,
                        scope.resolution())


def _read_halves(scope: _Scope, parts: list[Part], sums: _Sums, model_eps: float,
                 losses: tuple[float, float, float, float],
                 reported: tuple[float, float, float, float], analytic: float,
                 resolution: Resolution) -> _Test:
    """The looks at d and d/2 read together by the one error-bar rule, with the loss
    values' error as ``resolution`` says."""
    coarse_error = _tight(scope, sums, model_eps, losses[:2], reported[:2], resolution)
    fine_error = 2 * _tight(scope, sums, model_eps, losses[2:], reported[2:], resolution)
    at = np.array([scope.loss_at_point])
    coarse = Slopes.from_values(np.array([losses[0]]), np.array([losses[1]]), at,
                                np.array([1.0]), np.array([coarse_error]))
    fine = Slopes.from_values(np.array([losses[2]]), np.array([losses[3]]), at,
                              np.array([0.5]), np.array([fine_error]))
    if not (np.isfinite(coarse.central[0]) and np.isfinite(fine.central[0])
            and np.isfinite(analytic)):
        return _Test(False, float("inf"), [False] * len(parts))
    reading = read_pair(coarse, fine, np.array([fine_error]))
    mismatch = abs(float(reading.estimate[0]) - analytic)
    bar = float(reading.bar[0])
    generous = GENEROUS_ROUNDINGS * fine_error
    if int(reading.shape[0]) != Shape.SMOOTH and float(reading.gap[0]) > max(
            1e-2 * (abs(float(fine.central[0])) + abs(analytic)), generous):
        return _Test(False, bar, [False] * len(parts))  # not smooth along d
    if mismatch > max(float(reading.agree[0]), fine_error):
        return _Test(False, bar, [False] * len(parts))  # a bug, or more to look at
    return _judge(bar, parts, sums)


def _tight(scope: _Scope, sums: _Sums, model_eps: float, losses: tuple[float, float],
           reported: tuple[float, float], resolution: Resolution) -> float:
    """What the slope along d carries for certain (loss units per unit of d): the error of
    the two loss values (half their sum), the rounding of the analytic values in their own
    precision (independent roundings: their root sum of squares, ANALYTIC_SIGMAS times),
    and the projection's sum's."""
    errors = resolution.value_error(np.array(losses), np.array(reported), model_eps)
    weight = sum(sums.weight)
    analytic = ANALYTIC_SIGMAS * model_eps * float(np.sqrt(sum(sums.weight2)))
    return (float(np.sum(errors)) / 2 + min(analytic, model_eps * weight)
            + PROJECTION_ROUNDINGS * FLOAT64_EPS * weight)


def _judge(bar: float, parts: list[Part], sums: _Sums) -> _Test:
    """A direction whose slope agrees within ``bar``: which segments it vouches for."""
    return _Test(True, bar, [part.resolves_one_element(bar) for part in parts])
