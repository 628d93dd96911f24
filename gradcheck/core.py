"""The one engine. Every front door (check_params, check_layer, check_function,
check_pair, check_loss, the pytest plugin, the command line) ends in :func:`run_check`.

Order of work, and why:
1. loss() twice at the given point (a loss that answers differently cannot be checked),
   then grads() twice (a backward that accumulates answers differently the second time).
   After each call the params are compared with their saved copies: code that writes
   into its input is named, not used.
2. Per tensor, "full" measures every coordinate (measure.py: 2 loss evaluations each, a
   second look at h/2 for each element that does not agree at once); "fast" tests random
   directions and splits failing groups in halves (fast.py).
3. Kinks (kinks.py): tied elements are checked together along the tie; in "subgradient"
   mode kink coordinates outside the hull and failing elements are re-checked at a
   jittered pair of points where the loss is differentiable.
4. loss() once more at the given point, and the params compared with their copies: state
   that changed during the check is named, never excused as a kink.
5. Params are restored bit for bit in a ``finally``, whatever the user's code raised.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Unpack

import numpy as np

from gradcheck.calls import (
    FLOAT64_EPS,
    Calls,
    GradsFn,
    LossFn,
    check_callable,
    check_params_argument,
    same_bits,
)
from gradcheck.fast import check_fast
from gradcheck.kinks import check_ties, settle_by_jitter
from gradcheck.measure import (
    BAD,
    HULL,
    OK,
    SKIPPED,
    UNVERIFIED,
    Measured,
    Setting,
    input_resolution,
    judge_still,
    loss_quantum,
    measure,
    vouch,
)
from gradcheck.numeric import relative_step
from gradcheck.options import CheckOptions, Options, Subject, check_subject, front_door
from gradcheck.report import (
    FAILED,
    WORST_SHOWN,
    KinkTally,
    Mismatch,
    Problem,
    Report,
    TensorResult,
    TieFinding,
)
from gradcheck.report import OK as TENSOR_OK
from gradcheck.report import UNVERIFIED as TENSOR_UNVERIFIED
from gradcheck.text import flat_element, unravel
from gradcheck.tolerances import (
    Tolerance,
    gradient_scale,
    precision_dtype,
    relative_error,
    tolerance_for,
)

AUTO_FULL_MAX = 4096  # "auto": tensors up to this many elements are measured in full
# Two evaluations at the same point may differ by this much (relative) and still count as
# the same: summation order inside BLAS can move the last bits between calls.
REPEAT_RTOL = 8 * FLOAT64_EPS


@front_door
def check_params(
    loss: LossFn,
    grads: GradsFn,
    params: dict[str, np.ndarray],
    *,
    subject: Subject | None = None,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check ``grads()`` against finite differences of ``loss()`` for every entry of params.

    ``params`` is perturbed in place, one coordinate (full) or one group (fast) at a time,
    and restored bit for bit before this returns, also when the user's code raises.
    ``subject`` names what is checked in the report (labels, title, the repeat line).

    >>> import numpy as np, gradcheck as gc
    >>> p = {"w": np.array([1.0, -2.0, 3.0])}
    >>> rep = gc.check_params(lambda: float(np.sum(p["w"] ** 3)), lambda: {"w": 3 * p["w"] ** 2}, p)
    >>> rep.ok
    True
    """
    checking = Options(**options)
    subject = check_subject(subject)
    if subject is None:
        names = ", ".join(map(str, params)) if isinstance(params, Mapping) else "?"
        subject = Subject(title=f"params {names}")
    return run_check(loss, grads, params, checking, subject)


def run_check(loss: LossFn, grads: GradsFn, params: dict[str, np.ndarray], options: Options,
              subject: Subject) -> Report:
    """The engine: check ``grads()`` against ``loss()`` over ``params`` with ``options``,
    and build the report (with its diagnosis) in the words of ``subject``."""
    from gradcheck.diagnosis import diagnose
    from gradcheck.progress import ProgressBar, progress_callback

    check_callable(loss, "loss", 0, "it reads the params the checker perturbs in place")
    check_callable(grads, "grads", 0, "it returns the gradient dict at the current params")
    arrays = check_params_argument(params, subject.loss_label)
    progress = progress_callback(options.progress)
    calls = Calls(loss, grads, arrays, options, subject, progress)
    try:
        found = _run(calls, options)
        measured_again: list[str] = []
        for probe in (_coarser_than_it_says, _quantized):
            warning = probe(calls, found.tensors, found.problems, options)
            if warning:  # measure again, at the resolution the loss really has
                measured_again.append(warning)
                calls.scanned = 0
                found = _run(calls, options)
                found.warnings[:0] = measured_again
        calls.tick(calls.planned, calls.planned)
    finally:
        calls.restore()
        if isinstance(progress, ProgressBar):
            progress.close()
    report = Report(title=subject.title, tensors=found.tensors, problems=found.problems,
                    warnings=found.warnings, ties=found.ties, options=options.as_dict(),
                    evaluations={"loss": calls.n_loss, "grads": calls.n_grads},
                    repeat=options.call_text(subject.call), input_name=subject.input_name,
                    output_shape=(subject.output_shape() if callable(subject.output_shape)
                                  else subject.output_shape))
    report.diagnoses = diagnose(report)
    return report


# ---------------------------------------------------------------------------- the run


@dataclass
class _Findings:
    """What one run of the engine found."""

    tensors: list[TensorResult]
    problems: list[Problem]
    warnings: list[str]
    ties: list[TieFinding] = field(default_factory=list)


def _run(calls: Calls, options: Options) -> _Findings:
    problems: list[Problem] = []
    warnings: list[str] = []

    loss0 = calls.loss_at_point = calls.loss()
    if calls.changed_in_place(calls.loss_label, problems):
        return _Findings([], problems, warnings)
    if not np.isfinite(loss0):
        problems.append(Problem("non_finite_loss", f"{calls.loss_label} is {loss0} at the "
                                "given point: nothing can be checked; look for log(0), "
                                "overflow in exp, or 0/0"))
        return _Findings([], problems, warnings)
    again = calls.loss()
    if not _same(loss0, again):
        problems.append(Problem(
            "nondeterministic",
            f"{calls.loss_label} is not deterministic: two calls at the same point gave "
            f"{loss0:.17g} and {again:.17g} (random masks, sampling, or state kept between "
            "calls?); a gradient cannot be checked against it. Fix the randomness (seed it "
            "inside the call) and check again. Nothing else was checked."))
        return _Findings([], problems, warnings)
    analytic = calls.grads()
    if calls.changed_in_place(calls.grads_label, problems):
        return _Findings([], problems, warnings)
    _compare_repeated_grads(analytic, calls.grads(copy=False), calls.grads_label, problems)
    for name, gradient in analytic.items():
        finite = np.isfinite(gradient)
        if finite.all():
            continue
        bad = ~finite
        first = flat_element(name, int(np.flatnonzero(bad.reshape(-1))[0]), gradient.shape)
        problems.append(Problem("non_finite_grad", f"{calls.grads_label}[{name!r}] has "
                                f"{int(bad.sum())} non-finite value(s) (first at {first})",
                                name))

    rng = options.rng()
    plan = {name: _pick_mode(options.mode, array.size) for name, array in calls.arrays.items()}
    calls.planned = sum(a.size for a in calls.arrays.values())
    results: dict[str, Measured] = {}
    notes: dict[str, str] = {}
    lower_bound: dict[str, bool] = {}
    reasons: dict[str, str] = {}
    settings = {name: _setting(calls, array, analytic[name], options)
                for name, array in calls.arrays.items()}
    for name, array in calls.arrays.items():
        if plan[name] == "full":
            results[name] = measure(calls, name, np.arange(array.size),
                                    analytic[name].reshape(-1), loss0, settings[name])
    fast_names = [name for name in calls.arrays if plan[name] == "fast"]
    if fast_names:
        fast = check_fast(calls, {name: analytic[name].reshape(-1) for name in fast_names},
                          loss0, settings, rng, gradient_scale(*analytic.values()))
        for name, found in fast.items():
            results[name], notes[name], lower_bound[name] = (found.measured, found.note,
                                                             found.stopped)
            reasons[name] = found.unverified_reason
            if options.mode == "auto":
                notes[name] = (f"auto picked fast ({calls.arrays[name].size} elements > "
                               f"{AUTO_FULL_MAX}); " + notes[name])
    for name in calls.arrays:
        _non_finite_losses(name, results[name], calls.originals[name], problems)
    ties = []
    if options.kinks in ("subgradient", "hull"):  # across every tensor, located elements too
        ties = check_ties(calls, results, settings, loss0, rng, warnings)

    if options.kinks == "subgradient":
        settle_by_jitter(calls, results, settings, rng, warnings)
    if _unrepeatable(calls, problems) or _state_changed(calls, loss0, problems):
        return _Findings([], problems, [])  # no verdict, and no kink, off a moving target
    judge_still(results, settings, calls.originals, loss0, calls.smallest_change)
    vouch(results, settings, loss0)

    tensors = [_tensor_result(name, calls, plan[name], results[name], settings[name],
                              analytic[name], lower_bound.get(name, False), reasons.get(name, ""))
               for name in calls.arrays]
    warnings.extend(f"{name}: {note}" for name, note in notes.items() if note)
    return _Findings(tensors, problems, warnings, ties)


def _coarser_than_it_says(calls: Calls, tensors: list[TensorResult], problems: list[Problem],
                          options: Options) -> str:
    """When a check of float64 tensors did not verify every one, whether the loss sees its
    inputs only at float32's (or float16's) resolution: it casts them inside, though its
    value comes back as a Python float. If so, ``calls.loss_eps`` takes that precision (the
    check is to be measured again with its steps and tolerances) and the warning that says
    so is returned; else "". Costs two loss evaluations, and none when all is ok."""
    coarse = float(np.finfo(np.float32).eps)
    if problems or all(t.ok for t in tensors) or calls.loss_eps >= coarse or not any(
            np.finfo(a.dtype).eps < coarse for a in calls.arrays.values()):
        return ""
    analytic = {t.name: t.analytic for t in tensors}
    eps = input_resolution(calls, analytic, calls.loss_at_point, options.rng())
    if eps < coarse:
        return ""
    calls.loss_eps = eps
    name = _dtype_of_eps(eps).name
    return (f"the loss does not see moves of its inputs finer than {name}'s resolution "
            f"(eps {eps:.1e}), though its values come back as float64: it computes in {name} "
            f"inside. Checked again with {name}'s steps and tolerances.")


def _quantized(calls: Calls, tensors: list[TensorResult], problems: list[Problem],
               options: Options) -> str:
    """When a check did not verify every tensor, whether the loss's values move in steps
    far coarser than its precision at |L| (:func:`loss_quantum`): a wrong-looking or
    undecided gradient may be the steps'. If so, ``calls.loss_quantum`` takes them (the
    check is to be measured again with each loss value off by up to half a step: the
    error bars the steps really give, wider where they were too narrow to decide) and the
    warning that says so is returned; else "". Costs a few loss evaluations, and none
    when all is ok."""
    if problems or calls.loss_quantum or all(t.ok for t in tensors):
        return ""
    model_eps = max([calls.loss_eps] + [float(np.finfo(a.dtype).eps)
                                        for a in calls.arrays.values()])
    analytic = {t.name: t.analytic for t in tensors}
    quantum = loss_quantum(calls, analytic, calls.loss_at_point, options.rng(), model_eps)
    if not quantum:
        return ""
    calls.loss_quantum = quantum
    return (f"the loss moves in steps of about {quantum:.1e}, far coarser than its precision "
            f"at |L| = {abs(calls.loss_at_point):.1e}: it stayed put, bit for bit, under a "
            "move its gradient says changes it, and followed the gradient at larger moves. "
            "Its arithmetic rounds at a larger scale than its value (-log(p) or 1 - p with p "
            "a float near 1, a saturated softmax or sigmoid). Checked again with each loss "
            "value off by up to half a step; compute the loss in a stable form (from the "
            "logits: log-sum-exp, log1p) to check it more finely.")


def _setting(calls: Calls, array: np.ndarray, analytic: np.ndarray, options: Options) -> Setting:
    """Tolerances and precisions for one tensor: the coarser of its dtype and the loss's."""
    precision = precision_dtype(array.dtype, _dtype_of_eps(calls.loss_eps))
    tolerance = tolerance_for(precision, options.rtol, options.atol)
    return Setting(tolerance=tolerance, kinks=options.kinks, loss_eps=calls.loss_eps,
                   model_eps=max(float(np.finfo(array.dtype).eps), calls.loss_eps),
                   loss_quantum=calls.loss_quantum)


def _dtype_of_eps(eps: float) -> np.dtype:
    for dtype in (np.float16, np.float32, np.float64):
        if eps >= float(np.finfo(dtype).eps):
            return np.dtype(dtype)
    return np.dtype(np.float64)


def _same(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= REPEAT_RTOL * max(abs(a), abs(b))


def _pick_mode(mode: str, size: int) -> str:
    if mode == "auto":
        return "full" if size <= AUTO_FULL_MAX else "fast"
    return mode


def _unrepeatable(calls: Calls, problems: list[Problem]) -> bool:
    """A look the engine repeated (a central difference that stood out from the others at
    its coordinate) that answered differently: the loss is not deterministic, however
    often it agrees at the given point."""
    if not calls.unrepeatable:
        return False
    problems.append(Problem(
        "nondeterministic",
        f"{calls.loss_label} is not deterministic: evaluated twice at the same perturbed "
        f"point, it answered differently ({'; '.join(calls.unrepeatable[:3])}); it agreed "
        "with itself at the given point, so it changes only now and then (random masks, "
        "sampling, a cache, state kept between calls?). A gradient cannot be checked "
        "against it: fix the randomness (seed it inside the call) and check again."))
    return True


def _state_changed(calls: Calls, loss0: float, problems: list[Problem]) -> bool:
    """After the scan, the point must still be the point: params as saved, and the loss
    there as at the start. Code that changes its own state mid-check is named."""
    changed = calls.changed()
    if changed:
        problems.append(Problem(
            "state_changed",
            f"{', '.join(map(repr, changed))} changed in place during the check (not by the "
            f"checker): the code under test writes into its parameters after some calls, so "
            "the numeric gradients measure a moving target. Nothing can be verified.",
            changed[0]))
        calls.restore()
        return True
    after = calls.loss()
    if not _same(loss0, after):
        problems.append(Problem(
            "state_changed",
            f"{calls.loss_label} at the given point changed during the check, from "
            f"{loss0:.17g} to {after:.17g}: the code under test keeps state between calls "
            "(a counter, a cache, a parameter updated as it runs). Nothing can be verified."))
        return True
    return False


def _compare_repeated_grads(first: dict[str, np.ndarray], second: dict[str, np.ndarray],
                            label: str, problems: list[Problem]) -> None:
    for name in first:
        a, b = first[name], second[name]
        if same_bits(a, b):
            continue
        scale = max(float(np.max(np.abs(a), initial=0.0)), np.finfo(np.float64).tiny)
        with np.errstate(invalid="ignore"):
            change = float(np.max(np.abs(a - b), initial=0.0))
        if not (change <= 1e-12 * scale) and not np.array_equal(a, b, equal_nan=True):
            problems.append(Problem(
                "accumulates",
                f"{label} answered differently when called twice at the same point "
                f"({name!r} changed by up to {change:.3g}): does backward accumulate into its "
                "gradients (+=) instead of overwriting them, or keep state between calls?",
                name))


def _non_finite_losses(name: str, m: Measured, values: np.ndarray, problems: list[Problem]
                       ) -> None:
    """A loss that was not finite a step away from a finite coordinate (a coordinate that is
    itself NaN or inf cannot be moved: it is unverified, not a problem of the loss)."""
    bad = ~np.isfinite(m.numeric) & np.isfinite(values.reshape(-1)[m.flat_indices])
    if np.any(bad):
        problems.append(Problem(
            "non_finite_loss",
            f"the loss was not finite at {int(bad.sum())} perturbed point(s) of {name!r}: the "
            f"function overflows or leaves its domain within a step (h = "
            f"{relative_step(np.float64):.1e}-relative) of the given point", name))


# ---------------------------------------------------------------------------- results


def _tensor_result(name: str, calls: Calls, mode: str, m: Measured, setting: Setting,
                   analytic: np.ndarray, lower_bound: bool, fast_reason: str) -> TensorResult:
    array = calls.originals[name]
    tolerance = setting.tolerance
    bad = m.status == BAD
    unverified = m.status == UNVERIFIED
    compared = (m.status == OK) | (m.status == HULL) | bad
    errors = m.error[compared]
    # relative to |numeric|, of the error that counts (the distance to the hull at a kink)
    rel = relative_error(m.numeric[compared] + errors, m.numeric[compared])
    worst = []
    order = np.argsort(-np.nan_to_num(m.error[bad], nan=np.inf), kind="stable")[:WORST_SHOWN]
    for position in np.flatnonzero(bad)[order]:
        note = ("tied: counted together" if m.tied[position]
                else "at a jittered point" if m.jittered[position] else "")
        worst.append(Mismatch(index=unravel(int(m.flat_indices[position]), array.shape),
                              analytic=float(m.analytic[position]),
                              numeric=float(m.numeric[position]),
                              abs_err=float(m.error[position]), note=note))
    on_kink = m.status[m.kink & ~m.jittered]
    tally = KinkTally(
        met=int(m.kink.sum()),
        by_hull=int(np.sum((on_kink == HULL) | (on_kink == OK))),
        by_jitter=int(np.sum(m.jittered & (m.status == OK))),
        unverified=int(np.sum(m.kink & unverified)),
        skipped=int(np.sum(on_kink == SKIPPED)),
        outside_hull=int(np.sum(m.jittered)),
    )
    status = (FAILED if bad.any() else
              TENSOR_UNVERIFIED if unverified.any() or fast_reason else TENSOR_OK)
    return TensorResult(
        name=name, shape=tuple(array.shape), dtype=array.dtype.name, mode=mode,
        size=int(array.size), mismatched=int(bad.sum()),
        max_abs_err=float(np.max(np.nan_to_num(errors, nan=np.inf, posinf=np.inf), initial=0.0)),
        max_rel_err=float(np.max(np.nan_to_num(rel, nan=np.inf, posinf=np.inf), initial=0.0)),
        worst=worst, kinks=tally, rtol=tolerance.rtol, atol=tolerance.atol,
        detect_rtol=tolerance.detect_rtol, detect_atol=tolerance.detect_atol,
        tolerance_source=tolerance.source,
        relative_step=setting.relative_step,
        mismatched_is_lower_bound=lower_bound, measured=int(compared.sum()), status=status,
        unverified=int(unverified.sum()),
        unverified_reason=fast_reason or _unverified_reason(
            name, array, m, unverified, tolerance, setting, calls.loss_at_point),
        **_full_arrays(array, analytic, m))


def _full_arrays(array: np.ndarray, analytic: np.ndarray, m: Measured) -> dict[str, np.ndarray]:
    """The measured numbers spread over the tensor's shape (nan where not measured).

    Nothing of the tensor's size is allocated that is not needed: the analytic gradient
    is the engine's own copy, the value its saved copy (when float64), and a tensor
    verified by random directions alone (fast mode) gets read-only broadcast fills."""
    def spread(values: np.ndarray, fill: float | bool, dtype: type) -> np.ndarray:
        if not len(m.flat_indices):
            return np.broadcast_to(np.array(fill, dtype=dtype), array.shape)
        out: np.ndarray = np.full(array.size, fill, dtype=dtype)
        out[m.flat_indices] = values
        return out.reshape(array.shape)

    value = array.view() if array.dtype == np.float64 else array.astype(np.float64)
    value.flags.writeable = False
    return {"analytic": analytic,  # the user's, at the point (a float64 copy)
            "numeric": spread(m.numeric, np.nan, np.float64),
            "error_bar": spread(m.allowed, np.nan, np.float64),
            "kink": spread(m.kink, False, bool),
            "failed": spread(m.status == BAD, False, bool),
            "value": value}


def _unverified_reason(name: str, values: np.ndarray, m: Measured, unverified: np.ndarray,
                       tolerance: Tolerance, setting: Setting, loss_at_point: float) -> str:
    if not unverified.any():
        return ""
    stuck = unverified & ~np.isfinite(values.reshape(-1)[m.flat_indices])
    if stuck.any():
        first = flat_element(name, int(m.flat_indices[np.flatnonzero(stuck)[0]]), values.shape)
        return (f"{int(stuck.sum())} element(s) are NaN or inf at the given point (first "
                f"{first}): a coordinate that is not finite cannot be moved by a finite step; "
                "give them finite values (the loss may ignore them) to check them")
    still = unverified & m.still
    if still.any():
        first = flat_element(name, int(m.flat_indices[np.flatnonzero(still)[0]]), values.shape)
        return (f"the loss stayed as it was, bit for bit, at steps h and h/2 of these (first "
                f"{first}), where their analytic values say it changes, and no evaluation of "
                "the check moved it by so little: its arithmetic may round such changes "
                "away (-log(p) or 1 - p with p a float near 1, a saturated softmax or "
                "sigmoid), or the loss is flat there, and the numbers cannot tell which; "
                "compute the loss in a stable form (from the logits: log-sum-exp, "
                "log1p), or check at a less saturated point")
    tiny = float(np.finfo(_dtype_of_eps(setting.loss_eps)).tiny)
    subnormal_bar = float(np.max(np.nan_to_num(m.bar[unverified], nan=np.inf)))
    if abs(loss_at_point) < tiny and subnormal_bar < tiny:
        return (f"the loss ({loss_at_point:.1e} at the point) and its changes are below the "
                f"smallest normal number of its precision ({tiny:.1e}), where values keep "
                f"only a few digits: they limit the numeric derivative to about "
                f"±{subnormal_bar:.1e}; scale the loss up (a constant factor on the loss and "
                "its gradient) to check it")
    smooth = unverified & ~m.kink
    if not smooth.any():
        return ("kink coordinates outside the one-sided derivatives that no jittered point "
                "could settle; re-run with another seed, or kinks='hull' for an elementwise "
                "layer")
    bar = float(np.max(m.bar[smooth]))
    if np.any(m.rough[smooth]):
        return (f"the numeric derivative moves by up to {bar:.1e} between steps h and h/2 "
                "(rounding in low-precision arithmetic, noise, or strong curvature), more than "
                f"the tolerance (rtol {tolerance.rtol:g}, atol {tolerance.atol:g}) allows; "
                "evaluate in float64, or pass rtol/atol that match that precision")
    gray = smooth & (m.error > m.allowed) & ~m.rough
    if gray.any() and not setting.loss_quantum:
        worst = np.flatnonzero(gray)[np.argmax(m.error[gray])]
        first = flat_element(name, int(m.flat_indices[worst]), values.shape)
        return ("these disagree with the loss by more than the error its numbers measured, "
                "yet by less than the rounding it could carry (worst "
                f"{first}: analytic {m.analytic[worst]:.6g} vs numeric {m.numeric[worst]:.6g})"
                ": a loss that rounds more than its value shows (a difference of nearly equal "
                "numbers inside it, a - y or 1 - p) and a small bug look alike there; check "
                "at a point where these gradients are larger next to the loss, or pass an "
                f"atol above {m.error[worst]:.1e} if that difference is acceptable")
    if setting.loss_quantum:
        return (f"the loss moves only in steps of about {setting.loss_quantum:.1e} (see the "
                f"warnings): they limit the numeric derivative to about ±{bar:.1e}, more "
                f"than the tolerance (rtol {tolerance.rtol:g}, atol {tolerance.atol:g}) "
                "allows; compute the loss in a stable form (from the logits: log-sum-exp, "
                "log1p), or check at a less saturated point")
    coarse = " (the loss comes back in float32 or coarser: return it as float64)" if (
        setting.loss_eps > FLOAT64_EPS) else ""
    return (f"the loss is large next to its changes: the rounding of its values alone "
            f"limits the numeric derivative to about ±{bar:.1e}, more than the tolerance "
            f"(rtol {tolerance.rtol:g}, atol {tolerance.atol:g}) allows{coarse}; remove a "
            "constant offset from the loss, or pass a larger atol")
