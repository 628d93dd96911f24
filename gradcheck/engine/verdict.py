"""The verdict: the evidence gathered for each element goes in, one pure function decides a
status and a reason, and the reason's text is written from the reason and its numbers.

Evidence (:class:`Evidence`, one array per field, one entry per measured element of a
tensor) comes from the looks at the point (gradcheck.engine.ladder), the ties and the
jittered points (gradcheck.engine.kinks). :func:`decide` reads it with the tolerances
(:class:`Judge`) and returns per element a :class:`Status`, how an ok was reached
(:class:`How`) and why anything else was not (:class:`Reason`). The measuring code may
call it too, to choose what to look at next; nothing else sets a status.

>>> Status.FAILED == "FAILED", str(Status.OK)
(True, 'ok')
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum, StrEnum

import numpy as np

from gradcheck.engine.slope import Shape, distance_to_hull
from gradcheck.engine.tolerance import SCALE_FLOOR, Tolerance
from gradcheck.text import flat_element, general

# A kink's analytic value may lie outside its hull by the kink tolerance and this many
# roundings of the loss values over h (the one-sided slopes straddle a jump).
HULL_FLOORS = 64.0


class Status(StrEnum):
    """A tensor's (and an element's) verdict, from the engine to the report."""

    OK = "ok"  # verified: the numbers vouch for the analytic value at the tolerance
    FAILED = "FAILED"  # a wrong gradient: off by more than any error the numbers carry
    UNVERIFIED = "UNVERIFIED"  # the numbers are too coarse to tell (never reported ok)
    SKIPPED = "skipped"  # kinks="skip": a kink coordinate left out, and counted


STATUSES = tuple(Status)  # an element's status code is its index here


def code(status: Status) -> int:
    return STATUSES.index(status)


class How(IntEnum):
    """How an ok was reached."""

    AT_POINT = 0  # the looks at the point agree
    HULL = 1  # a kink at the point; the analytic value inside the one-sided slopes
    NEARBY = 2  # right at a mirrored pair of jittered points (not at the point itself)


class Reason(IntEnum):
    """Why an element is FAILED or UNVERIFIED (NONE for ok and skipped)."""

    NONE = 0
    MISMATCH = 1  # FAILED: off by more than any error of the numbers
    TIE = 2  # FAILED: tied elements whose gradients do not add up along the tie
    KINK_CONVENTION = 3  # FAILED: a kink whose hull is exact, the analytic value outside
    AT_KINK = 4  # FAILED: kinks="strict", a kink judged as an ordinary point
    NEARBY = 5  # FAILED: wrong at a jittered point, where the loss is differentiable
    NOT_FINITE = 10  # the coordinate is NaN or inf: it cannot be moved
    STILL = 11  # the loss never moved where the analytic value says it does
    SUBNORMAL = 12  # the loss and its changes are subnormal numbers
    COARSE = 13  # the loss resolves far less than its values' rounding (measured)
    ROUNDING = 14  # the rounding of the loss values, over the step, is too large
    ROUGH = 15  # the looks move by more than the tolerance (noise, curvature)
    GRAY = 16  # off by more than measured, by less than rounding could carry
    KINK_UNSETTLED = 17  # a kink outside its hull that no jittered point settled
    KINK_INSIDE_STEP = 18  # the looks straddle a kink at every step rounding allows
    TIE_UNDECIDED = 19  # tied elements whose sum the loss's rounding leaves unchecked


FAILING = (Reason.MISMATCH, Reason.TIE, Reason.KINK_CONVENTION, Reason.AT_KINK,
           Reason.NEARBY)
# The order in which a tensor's unverified elements give it its reason: the most
# specific first.
REASON_ORDER = (Reason.NOT_FINITE, Reason.TIE_UNDECIDED, Reason.STILL, Reason.SUBNORMAL,
                Reason.COARSE,
                Reason.KINK_INSIDE_STEP, Reason.KINK_UNSETTLED, Reason.ROUGH, Reason.GRAY,
                Reason.ROUNDING)


class Nearby(IntEnum):
    """What the re-check at a mirrored pair of jittered points found."""

    NOT_LOOKED = 0
    RIGHT = 1  # right on both sides
    WRONG = 2  # wrong on at least one side
    UNDECIDED = 3  # too coarse on a side, or still on a kink after every jitter


class Why(IntEnum):
    """Why an element was re-checked nearby (for the report's notes)."""

    NOT_RECHECKED = 0
    OUTSIDE_HULL = 1  # a kink coordinate outside its one-sided slopes
    FAILING = 2  # wrong at the point, with no kink showing (kinks the loss hides)
    UNDECIDED = 3  # its looks straddle a kink


@dataclass
class Evidence:
    """What was measured for the listed elements of one tensor (arrays of equal length)."""

    flat: np.ndarray  # flat indices into the tensor
    analytic: np.ndarray
    numeric: np.ndarray  # the estimate (a kink's: the central difference of its last look)
    bar: np.ndarray  # the estimate's error: truncation measured and rounding
    agree: np.ndarray  # the mismatch agreement allows beyond the detection tolerance
    safe: np.ndarray  # the mismatch a bug must clear beyond the detection tolerance
    floor: np.ndarray  # the rounding part of the bar (the loss values' error over h)
    gap: np.ndarray  # the last two looks' difference (0 where one look settled it)
    step: np.ndarray  # the step of the last look
    forward: np.ndarray  # the last look's one-sided slopes
    backward: np.ndarray
    shape: np.ndarray  # Shape codes; AT_ONCE where the first look settled it
    still: np.ndarray  # bool: every look came back bit for bit as at the point
    # bool: the estimate's error is measured, not guessed: a third look confirmed how the
    # gap shrinks, or the gap is within rounding, or the mismatch dwarfs the gap (two looks
    # at steps beyond the loss's curvature scale can lie close together, both far off)
    converged: np.ndarray
    resolved: np.ndarray  # bool: the check saw the loss resolve this element's change
    single: np.ndarray  # bool: its moves changed only its own output: an elementwise map
    straddled: np.ndarray  # bool: some look reached across a kink (a pair read rough or
    # jumped, or the first look's one-sided slopes were apart like a kink's)
    finite: np.ndarray  # bool: the coordinate itself is finite
    tie: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # bool: tied, and along the tie the gradients miss the loss's slope by less than what its
    # unchanged outputs could hide
    tie_undecided: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    nearby: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    why: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    # the numbers at the jittered point that decided (the side that failed, if one did)
    near_analytic: np.ndarray = field(default_factory=lambda: np.zeros(0))
    near_numeric: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # how far the one-sided slopes moved between the last two looks: their truncation
    # (curvature beside a kink), which the hull of one look carries
    sides: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        count = len(self.flat)
        for name, dtype, fill in (("tie", bool, False), ("tie_undecided", bool, False),
                                  ("nearby", np.intp, Nearby.NOT_LOOKED),
                                  ("why", np.intp, Why.NOT_RECHECKED),
                                  ("near_analytic", np.float64, np.nan),
                                  ("near_numeric", np.float64, np.nan),
                                  ("sides", np.float64, 0.0)):
            if len(getattr(self, name)) != count:
                setattr(self, name, np.full(count, fill, dtype=dtype))

    @staticmethod
    def empty() -> Evidence:
        floats = {f.name: np.zeros(0) for f in fields(Evidence)}
        for name in ("flat", "shape", "nearby", "why"):
            floats[name] = np.zeros(0, dtype=np.intp)
        for name in ("still", "converged", "resolved", "single", "straddled", "finite", "tie",
                     "tie_undecided"):
            floats[name] = np.zeros(0, dtype=bool)
        return Evidence(**floats)

    @staticmethod
    def concat(parts: list[Evidence]) -> Evidence:
        if not parts:
            return Evidence.empty()
        return Evidence(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                           for f in fields(Evidence)})

    def __len__(self) -> int:
        return len(self.flat)


AT_ONCE = 3  # a shape code beside Shape's: the first look agreed, no second was needed
KINKS = (Shape.JUMP, Shape.ROUGH)


@dataclass(frozen=True)
class Judge:
    """The tolerances one tensor's elements are judged by, and the scales they are
    relative to."""

    tolerance: Tolerance
    kinks: str  # the kinks mode
    tensor_scale: float  # the tensor's largest |gradient|: small elements are held to a tenth
    check_scale: float  # the check's largest |gradient|: an error bar is vouched against it
    atol_scale: float  # what default atols are relative to (|L|, the largest |gradient|)

    def detect(self, numeric: np.ndarray) -> np.ndarray:
        """The mismatch allowed before the error bars are consulted."""
        return self.tolerance.detect(np.maximum(np.abs(numeric),
                                                SCALE_FLOOR * self.tensor_scale), self.atol_scale)

    def limit(self, magnitude: np.ndarray) -> np.ndarray:
        """The widest error bar that can vouch for an element of this magnitude."""
        return self.tolerance.verify(np.nan_to_num(magnitude), self.check_scale,
                                     self.atol_scale)

    def hull_slack(self, numeric: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """How far outside its hull a kink's analytic value may lie."""
        return self.tolerance.at_kink(numeric, self.atol_scale) + HULL_FLOORS * floor


@dataclass(frozen=True)
class Verdicts:
    """Per element: status codes (index into STATUSES), How and Reason codes."""

    status: np.ndarray
    how: np.ndarray
    reason: np.ndarray

    def count(self, status: Status) -> int:
        return int(np.sum(self.status == code(status)))


def magnitude(ev: Evidence) -> np.ndarray:
    """What an element's error bar is vouched against: |numeric|, or at a kink the largest
    of it and the one-sided slopes."""
    kink = np.isin(ev.shape, KINKS)
    return np.where(kink, np.maximum.reduce([np.abs(ev.numeric), np.abs(ev.forward),
                                             np.abs(ev.backward)]), np.abs(ev.numeric))


def decide(ev: Evidence, judge: Judge, rounding: Reason = Reason.ROUNDING) -> Verdicts:
    """The verdict of every element from its evidence (module docstring). Pure.

    ``rounding``: the reason an element whose error bar is its rounding gets (ROUNDING;
    SUBNORMAL for a loss below the smallest normal number; COARSE for a loss measured
    coarser than its values' rounding)."""
    count = len(ev)
    status = np.full(count, code(Status.UNVERIFIED), dtype=np.intp)
    how = np.full(count, How.AT_POINT, dtype=np.intp)
    reason = np.full(count, Reason.NONE, dtype=np.intp)
    if not count:
        return Verdicts(status, how, reason)

    def settle(mask: np.ndarray, to: Status, why: Reason | np.ndarray = Reason.NONE,
               by: How = How.AT_POINT) -> None:
        """Give the still open elements of ``mask`` their verdict (the first rule that
        applies to an element decides it)."""
        open_ = mask & (reason == Reason.NONE) & (status == code(Status.UNVERIFIED))
        status[open_] = code(to)
        reason[open_] = why[open_] if isinstance(why, np.ndarray) else why
        how[open_] = by

    with np.errstate(invalid="ignore"):
        off = np.abs(ev.analytic - ev.numeric)
        detect = judge.detect(ev.numeric)
        limit = judge.limit(magnitude(ev))
        kink = np.isin(ev.shape, KINKS)
        smooth = ~kink
        mode = judge.kinks

        settle(~ev.finite, Status.UNVERIFIED, Reason.NOT_FINITE)
        settle(kink & (mode == "skip"), Status.SKIPPED)
        near_right = (ev.nearby == Nearby.RIGHT) & (mode == "subgradient")
        near_wrong = (ev.nearby == Nearby.WRONG) & (mode == "subgradient")
        # a tied element wrong at jittered points too, where no tie holds, is wrong itself
        settle(ev.tie & near_wrong, Status.FAILED, Reason.NEARBY)
        settle(ev.tie, Status.FAILED, Reason.TIE)
        settle(ev.tie_undecided, Status.UNVERIFIED, Reason.TIE_UNDECIDED)

        # a kink: strict judges it as an ordinary point; else the hull of its slopes
        if mode == "strict":
            fine = off <= judge.hull_slack(ev.numeric, ev.floor)
            settle(kink & fine & (ev.floor <= limit), Status.OK)
            settle(kink & fine, Status.UNVERIFIED, rounding)
            settle(kink, Status.FAILED, Reason.AT_KINK)
        inside = distance_to_hull(ev.analytic, np.minimum(ev.forward, ev.backward),
                                  np.maximum(ev.forward, ev.backward)) <= judge.hull_slack(
            ev.numeric, ev.floor) + ev.sides
        settle(kink & inside & (ev.floor <= limit), Status.OK, by=How.HULL)
        exact_hull = ((ev.shape == Shape.JUMP) & ev.single) | (mode == "hull")
        settle(kink & ~inside & exact_hull, Status.FAILED, Reason.KINK_CONVENTION)
        settle(kink & near_right, Status.OK, by=How.NEARBY)
        settle(kink & near_wrong, Status.FAILED, Reason.NEARBY)
        settle(kink & inside, Status.UNVERIFIED, rounding)
        settle(kink & (ev.shape == Shape.JUMP), Status.UNVERIFIED, Reason.KINK_UNSETTLED)
        settle(kink, Status.UNVERIFIED, Reason.KINK_INSIDE_STEP)

        # a smooth reading (or the first look at once): agree, fail, or in between
        agrees = off <= detect + ev.agree
        wrong = off > detect + ev.safe
        settle(smooth & agrees & (ev.bar <= limit), Status.OK)
        settle(smooth & near_right, Status.OK, by=How.NEARBY)
        settle(smooth & near_wrong & (ev.why == Why.UNDECIDED), Status.FAILED, Reason.NEARBY)
        settle(smooth & agrees, Status.UNVERIFIED,
               np.where(ev.gap > ev.floor, Reason.ROUGH, rounding))
        settle(smooth & wrong & ev.still & ~ev.resolved, Status.UNVERIFIED, Reason.STILL)
        settle(smooth & wrong & ev.converged, Status.FAILED, Reason.MISMATCH)
        settle(smooth, Status.UNVERIFIED, Reason.GRAY)
    return Verdicts(status, how, reason)


@dataclass(frozen=True)
class Context:
    """What a reason's text quotes besides the element's own numbers."""

    name: str
    shape: tuple[int, ...]
    tolerance: Tolerance
    loss_at_point: float
    loss_coarse: float  # what the loss resolves, measured (0.0: as its rounding says)
    excess: float  # by how much that exceeds its values' rounding
    loss_tiny: float  # the smallest normal number of the loss's precision
    dtype_note: str  # e.g. " (the loss comes back in float32 or coarser: ...)"


def reason_text(reason: Reason, ev: Evidence, verdicts: Verdicts, judge: Judge,
                ctx: Context) -> str:
    """The text of a tensor's reason, from the element of that reason whose error bar is
    widest next to what it may be (so every figure quoted is that element's own)."""
    members = np.flatnonzero(verdicts.reason == reason)
    if not len(members):
        return ""
    limit = judge.limit(magnitude(ev))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nan_to_num(ev.bar / limit, nan=np.inf, posinf=np.inf)
    worst = int(members[np.argmax(ratio[members])])
    first = flat_element(ctx.name, int(ev.flat[members[0]]), ctx.shape)
    where = flat_element(ctx.name, int(ev.flat[worst]), ctx.shape)
    n = len(members)
    tol = ctx.tolerance
    tolerance = f"(rtol {tol.rtol:g}, atol {tol.atol:g})"
    bar, allowed = float(ev.bar[worst]), float(limit[worst])
    if reason == Reason.NOT_FINITE:
        return (f"{n} element(s) are NaN or inf at the given point (first {first}): a "
                "coordinate that is not finite cannot be moved by a finite step; give them "
                "finite values (the loss may ignore them) to check them")
    if reason == Reason.STILL:
        return (f"the loss stayed as it was, bit for bit, at every step of {n} element(s) "
                f"(first {first}), where their analytic values say it changes, and no "
                "evaluation of the check moved it by so little: its arithmetic may round "
                "such changes away (-log(p) or 1 - p with p a float near 1, a saturated "
                "softmax or sigmoid), or the loss is flat there, and the numbers cannot tell "
                "which; compute the loss in a stable form (from the logits: log-sum-exp, "
                "log1p), or check at a less saturated point")
    if reason == Reason.SUBNORMAL:
        return (f"the loss ({ctx.loss_at_point:.1e} at the point) and its changes are below "
                f"the smallest normal number of its precision ({ctx.loss_tiny:.1e}), where "
                f"values keep only a few digits: at {where} they limit the numeric derivative "
                f"to about {beyond(bar, allowed)} the tolerance allows there; "
                "scale the loss up (a constant factor on the loss and its gradient) to check it")
    if reason == Reason.COARSE:
        return (f"the loss resolves its changes only to about {ctx.loss_coarse:.1e} near the "
                f"point (it moves in steps, or carries noise, {ctx.excess:.0f} times the rounding "
                f"of its values; see the warnings): at {where} that limits the numeric derivative "
                "to about "
                f"{beyond(bar, allowed)} the tolerance {tolerance} allows "
                "there; compute the loss in a stable form (from the logits: log-sum-exp, "
                "log1p), or check at a less saturated point")
    if reason == Reason.ROUNDING:
        return (f"the loss is large next to its changes: the rounding of its values "
                f"(|L| = {abs(ctx.loss_at_point):.1e}) alone limits the numeric derivative at "
                f"{where} to about {beyond(bar, allowed)} the tolerance "
                f"{tolerance} allows there{ctx.dtype_note}; remove a constant offset from the "
                "loss, or pass a larger atol")
    if reason == Reason.ROUGH:
        step = float(ev.step[worst])
        return (f"the numeric derivative at {where} moves by {float(ev.gap[worst]):.1e} "
                f"between steps {2 * step:.1e} and {step:.1e} (rounding in low-precision "
                "arithmetic, noise, or strong curvature), so it is known to about "
                f"{beyond(bar, allowed)} the tolerance {tolerance} allows "
                "there; evaluate in float64, or pass rtol/atol that match that precision")
    if reason == Reason.GRAY:
        off = float(abs(ev.analytic[worst] - ev.numeric[worst]))
        a, num = float(ev.analytic[worst]), float(ev.numeric[worst])
        # re-checked at jittered points and still undecided: kinks crowd its steps there
        crowded = ("kinks crowding its steps (ReLU inputs closer to 0 than the step on either "
                   "side: re-checked at jittered points nearby, it did not settle there "
                   "either; float64 steps are about 800 times finer), "
                   if ev.why[worst] == Why.UNDECIDED else "")
        return (f"{n} element(s) disagree with the loss by more than the error its numbers "
                f"measured, yet by less than the rounding it could carry (worst {where}: "
                f"analytic {digits(a, num)} vs numeric {digits(num, a)}, off by {off:.1e}): "
                f"{crowded}a loss that rounds more than its value shows (a difference of "
                "nearly equal numbers inside it, a - y or 1 - p; an output whose change over "
                "the step is below its spacing, as a float32 output of 100 beside a weight "
                "of 1e-4) and a small bug look alike there; check at a point where these "
                "gradients are larger next to the loss, or pass an atol above "
                f"{off:.1e} if that difference is acceptable")
    if reason == Reason.TIE_UNDECIDED:
        return (f"{n} tied element(s) (first {first}) may not add up along their tie: moved "
                "together, their gradients miss the loss's slope by less than the rounding "
                "of its values could account for (the outputs' spacing: a change below it "
                "leaves an output as it was, or moves it by a whole spacing), so the sum of "
                "their gradients cannot be checked against it; check in float64, or at a "
                "point without ties")
    if reason == Reason.KINK_UNSETTLED:
        return (f"{n} kink coordinate(s) (first {first}) have analytic values outside the "
                "one-sided derivatives, and no jittered point could settle them; re-run with "
                "another seed, or kinks='hull' for an elementwise layer")
    if reason == Reason.KINK_INSIDE_STEP:
        return (f"the steps of {n} element(s) (first {first}) straddle a kink (an input "
                "closer to a ReLU's 0 than the step, or a value within a step of another it "
                f"is compared with; step {float(ev.step[members[0]]):.1e}) at every step the "
                "loss's rounding allows, and no jittered point settled them; re-run with "
                "another seed, or check in float64")
    return ""


def beyond(bar: float, allowed: float) -> str:
    """"±bar, more than the allowed", with the digits that show the difference.

    >>> beyond(5.14e-2, 5.1e-2)
    '±5.14e-02, more than the 5.10e-02'
    """
    for precision in range(1, 7):
        quoted, bound = f"{bar:.{precision}e}", f"{allowed:.{precision}e}"
        if quoted != bound:
            break
    return f"±{quoted}, more than the {bound}"


def digits(value: float, beside: float) -> str:
    """``value`` with enough significant digits to differ from ``beside`` where it does
    (six at least): a headline never reads "-0.192597 vs -0.192597".

    >>> digits(-0.19259712, -0.19259731), digits(1.5, 2.5)
    ('-0.1925971', '1.5')
    """
    value, beside = float(value), float(beside)
    for precision in range(6, 18):
        if f"{value:.{precision}g}" != f"{beside:.{precision}g}" or value == beside:
            return f"{value:.{precision}g}"
    return general(value)
