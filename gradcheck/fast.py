"""mode="fast": random directions instead of every coordinate.

The fast-mode tensors that share a setting (a dtype, so a tolerance) are first tested
together along one random direction d through all of them: the central difference of the
loss along d against <analytic, d>. When that agrees, and its error bar is within each
tensor's tolerance, every one of them is verified by that one test (2 loss evaluations, or
4). Otherwise each tensor is tested along its own part of d, and a tensor that disagrees
is split in halves, down to LEAF_SIZE coordinates, which are measured one by one (as in
full mode): O(k log n) evaluations for k wrong elements instead of 2n.

A random direction dilutes one element's error by about 1/sqrt(n), so a direction is
judged by its measured error, not by a fixed rtol:
- step d alone decides when the central difference agrees with the projection within the
  rounding of one loss value and of the projection itself: no truncation is left to hide a
  mismatch (a loss linear or quadratic along d, such as a dense layer's, needs no more);
- otherwise step d/2 as well: a wrong gradient leaves a step-independent mismatch,
  truncation shrinks 4x, noise grows 2x (Richardson). The direction agrees within the
  error bar the two steps measure, disagrees beyond a generous rounding bound, and is
  undecided in between (never a pass).
When the error bar is too wide to vouch for a tensor at all, the tensor is unverified
instead of being searched element by element.

Memory: the params are moved in place chunk by chunk and put back from the engine's saved
copy (``Calls.originals``) bit for bit. The direction is drawn per chunk (float32, from a
seed per tensor) when the params leave the point; every later step is read off the params
themselves (reflected through the point, halved). Nothing of a tensor's size is allocated.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from gradcheck.calls import FLOAT64_EPS, Calls
from gradcheck.measure import BAD, Measured, Setting, measure
from gradcheck.tolerances import rounding_allowance, rounding_floor

LEAF_SIZE = 8  # groups this small are scanned coordinate by coordinate
# A tensor this small whose direction cannot be vouched for (a wide error bar: low
# precision, kinks along the direction) is measured element by element instead.
ELEMENTWISE_MAX = 256
MAX_LOCATED = 10  # stop localizing a tensor after this many wrong elements
CHUNK = 1 << 16  # coordinates moved per numpy call: temporaries stay this size
# The magnitudes of a direction's coordinates, by position in a chunk: 1 + the fractional
# parts of k times the golden ratio, all different, spread evenly over [1, 2).
MAGNITUDES = (1.0 + (np.arange(CHUNK) * ((5 ** 0.5 - 1) / 2)) % 1.0).astype(np.float32)
# Roundings of float64 allowed in the projection <analytic, d> (a dot product of n terms).
PROJECTION_ROUNDINGS = 64.0
GAP_FACTOR = 4.0  # the measured error bar is this many times the d vs d/2 gap


@dataclass
class FastResult:
    """What fast mode found in one tensor."""

    measured: Measured  # the leaves scanned one by one
    note: str  # for the report's warnings
    stopped: bool  # localizing stopped early: the count of wrong elements is a lower bound
    unverified_reason: str = ""  # the directions' error bar was too wide to vouch


@dataclass(frozen=True)
class Part:
    """One tensor's share of the random direction."""

    name: str
    array: np.ndarray  # the live parameter, moved in place
    flat: np.ndarray | None  # a flat view of it; None when it is not contiguous
    base: np.ndarray  # the saved values, flat, own dtype
    analytic: np.ndarray  # the analytic gradient, flat float64
    seed: int  # the direction's seed
    setting: Setting  # its precisions (model_eps: of the analytic values too) and step

    @property
    def size(self) -> int:
        return int(self.base.size)

    @property
    def work(self) -> np.dtype:
        """The dtype the steps are computed in (float64, longdouble for longdouble)."""
        return np.result_type(self.base.dtype, np.float64)

    def signs(self, lo: int) -> np.random.Generator:
        """The generator of the random signs of one move that starts at ``lo``."""
        return np.random.Generator(np.random.SFC64([self.seed, lo]))

    def direction(self, signs: np.random.Generator, a: int, z: int) -> np.ndarray:
        """The direction over a:z (within one chunk), times the relative step: random
        signs, one random bit each (a random float costs 20 times as much), on magnitudes
        in [1, 2) that never repeat within a chunk, so one wrong element always moves the
        directional derivative and two cannot cancel but by chance."""
        count = z - a
        bits = np.unpackbits(np.frombuffer(signs.bytes((count + 7) // 8), dtype=np.uint8),
                             count=count)
        d = bits.astype(np.float32)
        d -= np.float32(0.5)
        np.copysign(MAGNITUDES[a % CHUNK:a % CHUNK + count], d, out=d)
        d *= np.float32(self.setting.relative_step)
        return d

    def current(self, lo: int, hi: int) -> np.ndarray:
        """The values now in the parameter at lo:hi (a view when contiguous)."""
        return self.flat[lo:hi] if self.flat is not None else np.asarray(self.array.flat[lo:hi])

    def restore(self, lo: int, hi: int) -> None:
        """Put lo:hi back to the saved values, bit for bit."""
        if self.flat is not None:
            np.copyto(self.flat[lo:hi], self.base[lo:hi])
        else:
            self.array.flat[lo:hi] = self.base[lo:hi]


Segment = tuple[Part, int, int]  # a part and the flat range lo:hi of it that moves


def _chunks(lo: int, hi: int) -> Iterator[tuple[int, int, int]]:
    """(chunk, a, z): the pieces of lo:hi that lie in one CHUNK of the tensor each."""
    chunk = lo // CHUNK
    while chunk * CHUNK < hi:
        yield chunk, max(lo, chunk * CHUNK), min(hi, (chunk + 1) * CHUNK)
        chunk += 1


@dataclass
class _Walk:
    """Moves the segments of one direction together; every step leaves from the point or
    from where the previous step went, and the projections <analytic, step taken> are
    summed per segment."""

    segments: list[Segment]
    atol_scale: float  # what default atols are relative to (|L|, the largest |gradient|)
    span: list[float] = field(default_factory=list)  # sum |d| per segment
    abs_projection: float = 0.0  # sum |analytic| |d| over every segment
    analytic_rounding: float = 0.0  # sum model_eps |analytic| |d|: the analytic's rounding
    _buffers: dict[str, np.ndarray] = field(default_factory=dict)

    def _buffer(self, kind: str, dtype: np.dtype, count: int) -> np.ndarray:
        key = f"{kind}-{np.dtype(dtype).str}"
        if key not in self._buffers:
            self._buffers[key] = np.empty(CHUNK, dtype=dtype)
        return self._buffers[key][:count]

    def _target(self, part: Part, lo: int, hi: int) -> np.ndarray:
        return (part.flat[lo:hi] if part.flat is not None
                else self._buffer("own", part.base.dtype, hi - lo))

    def _taken(self, part: Part, target: np.ndarray, lo: int, hi: int) -> float:
        """Write target into the parameter (when it is a buffer) and return <analytic,
        the step actually taken>, read off the values written."""
        if part.flat is None:
            part.array.flat[lo:hi] = target
        taken = self._buffer("taken", part.work, hi - lo)
        np.subtract(target, part.base[lo:hi], out=taken, dtype=part.work)
        return float(part.analytic[lo:hi] @ taken)

    def leave(self) -> list[float]:
        """From the point along +d (drawn here): the projections per segment. Also sums
        |d| (per segment) and |analytic| |d|, for the tolerance and the rounding bar."""
        projections = []
        self.span, self.abs_projection, self.analytic_rounding = [], 0.0, 0.0
        for part, lo, hi in self.segments:
            projection = span = 0.0
            signs = part.signs(lo)
            for _, a, z in _chunks(lo, hi):
                base = part.base[a:z]
                step = self._buffer("step", part.work, z - a)
                np.abs(base, out=step)
                np.maximum(step, 1.0, out=step)
                step *= part.direction(signs, a, z)
                target = self._target(part, a, z)
                np.add(base, step, out=target, casting="unsafe")
                projection += self._taken(part, target, a, z)
                np.abs(step, out=step)
                span += float(step.sum())
                magnitude = self._buffer("taken", part.work, z - a)
                np.abs(part.analytic[a:z], out=magnitude)
                weight = float(magnitude @ step)
                self.abs_projection += weight
                self.analytic_rounding += part.setting.model_eps * weight
            projections.append(projection)
            self.span.append(span)
        return projections

    def turn(self, factor: float) -> list[float]:
        """To the point plus ``factor`` times the present offset from it (-1: the mirror
        image through the point; -0.5: that, halved): the projections per segment."""
        projections = []
        for part, lo, hi in self.segments:
            projection = 0.0
            for _, a, z in _chunks(lo, hi):
                base = part.base[a:z]
                offset = self._buffer("step", part.work, z - a)
                np.subtract(part.current(a, z), base, out=offset, dtype=part.work)
                offset *= factor
                target = self._target(part, a, z)
                np.add(base, offset, out=target, casting="unsafe")
                projection += self._taken(part, target, a, z)
            projections.append(projection)
        return projections

    def restore(self) -> None:
        for part, lo, hi in self.segments:
            part.restore(lo, hi)

    def tight_rounding(self, setting: Setting, scale: float) -> float:
        """What the numbers carry for certain, in loss units (the quotient is per unit of
        d): one rounding of each loss value (a measured step of them where it is coarser),
        the rounding of the analytic values in their own precision, and of the projection's
        sum."""
        return (max(float(rounding_floor(setting.loss_eps, scale, np.ones(1))[0]),
                    setting.loss_quantum)
                + self.analytic_rounding + PROJECTION_ROUNDINGS * FLOAT64_EPS * self.abs_projection)

    def generous_rounding(self, setting: Setting, scale: float) -> float:
        """The bound a mismatch must clear to be called a bug: many roundings of the loss
        at the coarsest precision it passed through, and the projection's rounding."""
        return (float(rounding_allowance(setting.model_eps, scale, np.ones(1))[0])
                + self.tight_rounding(setting, scale))


@dataclass(frozen=True)
class _Scope:
    """What every test of one group of tensors shares."""

    calls: Calls
    loss_at_point: float
    setting: Setting
    atol_scale: float  # what default atols are relative to (|L|, the largest |gradient|)


@dataclass
class _Test:
    """The outcome of a test along one direction."""

    # "agrees"; "disagrees" (beyond rounding, or within rounding but beyond the error bar
    # the two steps measured: elements are measured one by one); "undecided" (agrees, but
    # the error bar is too wide for the tolerance to vouch)
    verdict: str
    bar: float  # the numeric error bar
    vouched: list[bool]  # per segment: the bar is within that segment's tolerance


# ---------------------------------------------------------------------------- entry


def check_fast(calls: Calls, analytic: dict[str, np.ndarray], loss_at_point: float,
               settings: dict[str, Setting], rng: np.random.Generator, gradient_scale: float
               ) -> dict[str, FastResult]:
    """Random-direction tests of the tensors in ``analytic`` (name -> flat analytic
    gradient), with localization of what fails. Tensors with the same setting are tested
    together first (one direction through all of them). ``gradient_scale`` is the largest
    |analytic| of the check: default atols are relative to it and to |L|."""
    atol_scale = max(gradient_scale, abs(loss_at_point))
    by_setting: dict[Setting, list[Part]] = {}
    for name, analytic_flat in analytic.items():
        part = _part(calls, name, analytic_flat, settings[name], int(rng.integers(2 ** 63)))
        by_setting.setdefault(settings[name], []).append(part)
    results: dict[str, FastResult] = {}
    for setting, parts in by_setting.items():
        results.update(_check_together(_Scope(calls, loss_at_point, setting, atol_scale),
                                       parts))
    return {name: results[name] for name in analytic}


def _part(calls: Calls, name: str, analytic_flat: np.ndarray, setting: Setting, seed: int
          ) -> Part:
    array = calls.arrays[name]
    flat = array.reshape(-1) if array.flags.c_contiguous else None  # a view
    return Part(name, array, flat, calls.originals[name].reshape(-1), analytic_flat, seed,
                setting)


def _check_together(scope: _Scope, parts: list[Part]) -> dict[str, FastResult]:
    """One direction through all parts; each part the joint test cannot vouch for is
    tested (and searched) on its own."""
    alone = parts
    if len(parts) > 1:
        test = _test_direction(scope, [(p, 0, p.size) for p in parts])
        if test.verdict == "agrees":
            alone = [p for p, vouched in zip(parts, test.vouched, strict=True) if not vouched]
    results = {p.name: FastResult(Measured.concat([]), "", False) for p in parts}
    calls = scope.calls
    verified = sum(p.size for p in parts if p not in alone)
    calls.tick(calls.scanned + verified, calls.planned)
    for part in alone:
        results[part.name] = _search(scope, part)
        calls.tick(calls.scanned + part.size, calls.planned)
    return results


# ---------------------------------------------------------------------------- search


def _search(scope: _Scope, part: Part) -> FastResult:
    """Random-direction test of one tensor; groups that disagree are split in halves."""
    stack = [(0, part.size)]
    leaves: list[Measured] = []
    failed_groups = 0
    located = 0
    while stack and located < MAX_LOCATED:
        lo, hi = stack.pop()
        if hi - lo <= LEAF_SIZE:
            leaves.append(measure(scope.calls, part.name, np.arange(lo, hi), part.analytic,
                                  scope.loss_at_point, scope.setting))
            located += int(np.sum(leaves[-1].status == BAD))
            continue
        test = _test_direction(scope, [(part, lo, hi)])
        if test.verdict == "agrees":
            continue
        if test.verdict == "undecided" and part.size <= ELEMENTWISE_MAX:
            # cheaper to measure one by one than to give up
            every = measure(scope.calls, part.name, np.arange(part.size), part.analytic,
                            scope.loss_at_point, scope.setting)
            return FastResult(every, "measured element by element: along a random direction "
                              f"the error bar ({test.bar:.1e}) was too wide to vouch", False)
        if test.verdict == "undecided" and (lo, hi) == (0, part.size):
            return FastResult(Measured.concat([]), "", False, (
                f"along a random direction the numeric error bar ({test.bar:.1e}) is too wide "
                "to tell a right gradient from a wrong one at the tolerance: rounding of a "
                "large loss, float16/float32 arithmetic or noise; remove a constant offset, "
                "evaluate in float64, or use mode='full'"))
        failed_groups += 1
        mid = (lo + hi) // 2
        stack.extend([(mid, hi), (lo, mid)])
    stopped = bool(stack)
    merged = Measured.concat(leaves)
    note = ""
    if failed_groups and not located and not np.any(merged.kink):
        note = ("a random-direction check disagreed but no single element did: errors spread "
                "below the per-element tolerance, or rounding noise; re-run with mode='full'")
    if stopped:
        note = f"stopped localizing after {MAX_LOCATED} wrong elements; more may be wrong"
    return FastResult(merged, note, stopped)


def _test_direction(scope: _Scope, segments: list[Segment]) -> _Test:
    """Does <grad, d> match the central difference along d (through the segments)?
    2 loss evaluations when step d settles it, 4 when it takes d/2 as well."""
    calls, setting = scope.calls, scope.setting
    walk = _Walk(segments, scope.atol_scale)
    try:
        plus = walk.leave()
        loss_plus = calls.loss()
        minus = walk.turn(-1.0)
        loss_minus = calls.loss()
        scale = max(abs(scope.loss_at_point), abs(loss_plus), abs(loss_minus))
        coarse = (loss_plus - loss_minus) / 2
        per_segment = [(p - m) / 2 for p, m in zip(plus, minus, strict=True)]
        projection = sum(per_segment)
        tight = walk.tight_rounding(setting, scale)
        if (np.isfinite(coarse) and np.isfinite(projection)
                and abs(coarse - projection) <= tight):
            return _judge(tight, per_segment, walk, setting)
        half_plus = walk.turn(-0.5)
        loss_half_plus = calls.loss()
        half_minus = walk.turn(-1.0)
        loss_half_minus = calls.loss()
    finally:
        walk.restore()
    fine = loss_half_plus - loss_half_minus  # (L+ - L-) / (2 * 0.5)
    per_segment = [p - m for p, m in zip(half_plus, half_minus, strict=True)]
    analytic = sum(per_segment)
    if not (np.isfinite(coarse) and np.isfinite(fine) and np.isfinite(analytic)):
        return _Test("disagrees", float("inf"), [False] * len(segments))
    scale = max(scale, abs(loss_half_plus), abs(loss_half_minus))
    mismatch = abs(fine - analytic)
    # the error of the d/2 value: the truncation and noise the two steps show, and the
    # roundings that are there for certain (a rounding of |L| at d/2 counts twice)
    bar = GAP_FACTOR * abs(coarse - fine) + 2 * walk.tight_rounding(setting, scale)
    generous = max(bar, 2 * walk.generous_rounding(setting, scale))
    if abs(coarse - fine) > 1e-2 * (abs(fine) + abs(analytic)) + generous:  # not smooth
        return _Test("disagrees", bar, [False] * len(segments))
    if mismatch > bar:  # a bug, or rounding beyond what was measured: look closer
        return _Test("disagrees", bar, [False] * len(segments))
    return _judge(bar, per_segment, walk, setting)


def _judge(bar: float, per_segment: list[float], walk: _Walk, setting: Setting) -> _Test:
    """The verdict for a direction whose mismatch is within its error bar: can the bar
    vouch? What the tolerance allows along d: every element within rtol * |n| + atol; a
    segment's share of n is taken as its analytic share less the bar (the joint mismatch
    is within the bar)."""
    tol = setting.tolerance
    atol = tol.verify_atol(walk.atol_scale)
    allowed = [tol.rtol * max(0.0, abs(share) - bar) + atol * span
               for share, span in zip(per_segment, walk.span, strict=True)]
    if len(per_segment) == 1:
        allowed = [tol.rtol * abs(per_segment[0]) + atol * walk.span[0]]
    vouched = [bar <= a + 1e-300 for a in allowed]
    joint_helps = len(per_segment) > 1 and any(vouched)
    return _Test("agrees" if all(vouched) or joint_helps else "undecided", bar, vouched)
