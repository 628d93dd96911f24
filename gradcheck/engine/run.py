"""The engine: every front door (check_params, check_layer, check_function, check_pair,
check_loss, check_elementwise, the pytest plugin, the command line) ends in
:func:`run_check`.

Order of work, and why:
1. The point: loss() twice (a loss that answers differently, or that draws from the global
   random generators without seeding, cannot be checked), grads() twice (a backward that
   answers differently the second time accumulates, unless the loss is random). After each
   call the params are compared with their saved values: code that writes into its input
   is named, not used.
2. The first look at every coordinate of the full-mode tensors (gradcheck.engine.ladder).
3. The resolution (gradcheck.engine.resolution), measured once, when the first looks leave
   something to settle (or fast mode's directions need it); everything after reads it.
4. The ladders of the coordinates the first looks did not settle; fast mode's random
   directions (gradcheck.engine.fast).
5. Kinks (gradcheck.engine.kinks): tied elements checked together along the tie; in
   "subgradient" mode what the point cannot settle re-checked at jittered points.
6. loss() once more at the point, and the params compared with their saved values: state
   that changed during the check is named, never excused as a kink.
7. The verdict (gradcheck.engine.verdict), once per element, and the report.
Params are restored bit for bit in a ``finally``, whatever the user's code raised.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gradcheck.engine.calls import Calls, GradsFn, LossFn
from gradcheck.engine.fast import FastResult, Part, check_fast
from gradcheck.engine.kinks import FailedTie, check_ties, recheck_nearby
from gradcheck.engine.ladder import (
    FirstLook,
    Target,
    first_look,
    kinks_at_first_look,
    mark_resolved,
    measure,
    settled_at_once,
)
from gradcheck.engine.point import Point
from gradcheck.engine.resolution import Resolution, calibrate, dtype_of_eps
from gradcheck.engine.tolerance import (
    gradient_scale,
    precision_dtype,
    relative_error,
    tolerance_for,
)
from gradcheck.engine.verdict import (
    KINKS,
    REASON_ORDER,
    Context,
    Evidence,
    How,
    Judge,
    Reason,
    Status,
    Verdicts,
    Why,
    code,
    decide,
    reason_text,
)
from gradcheck.options import Options, Subject
from gradcheck.report import (
    WORST_SHOWN,
    KinkTally,
    Mismatch,
    Note,
    Problem,
    Report,
    TensorResult,
    TieFinding,
)
from gradcheck.text import flat_element, unravel
from gradcheck.validate import (
    FLOAT64_EPS,
    check_callable,
    check_params_argument,
    same_bits,
)

AUTO_FULL_MAX = 4096  # "auto": tensors up to this many elements are measured in full
# Two evaluations at the same point may differ by this much (relative) and still count as
# the same: summation order inside BLAS can move the last bits between calls.
REPEAT_RTOL = 8 * FLOAT64_EPS
# A loss measured this many times coarser than its theory has its rounding named as the
# loss's coarseness (not its size) where it limits an element.
COARSE_REASON_EXCESS = 4.0


def run_check(loss: LossFn, grads: GradsFn, params: dict[str, np.ndarray], options: Options,
              subject: Subject) -> Report:
    """The engine: check ``grads()`` against ``loss()`` over ``params`` with ``options``,
    and build the report (with its diagnosis) in the words of ``subject``."""
    from gradcheck.diagnosis.rules import diagnose
    from gradcheck.progress import ProgressBar, progress_callback

    check_callable(loss, "loss", 0, "it reads the params the checker perturbs in place")
    check_callable(grads, "grads", 0, "it returns the gradient dict at the current params")
    point = Point(check_params_argument(params, subject.loss_label))
    progress = progress_callback(options.progress)
    calls = Calls(loss, grads, point, options, subject, progress)
    try:
        found = _Run(calls, options, subject).run()
        calls.tick(calls.planned, calls.planned)
    finally:
        point.restore()
        if options.reset_random:  # the user's generators as the check found them
            calls.random.reset()
        if isinstance(progress, ProgressBar):
            progress.close()
    report = Report(title=subject.title, tensors=found.tensors, problems=found.problems,
                    notes=found.notes, ties=found.ties, options=options.as_dict(),
                    evaluations={"loss": calls.n_loss, "grads": calls.n_grads},
                    repeat=options.call_text(subject.call), door=subject.door,
                    input_name=subject.input_name, output_shape=output_shape_of(subject))
    report.diagnoses = diagnose(report)
    return report


@dataclass
class _Found:
    """What one run of the engine found."""

    tensors: list[TensorResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    ties: list[TieFinding] = field(default_factory=list)


class _Lazy:
    """The resolution: the theory until it is needed, then measured once."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.value: Resolution | None = None

    def __call__(self) -> Resolution:
        if self.value is None:
            self.value = self.run.calibrate()
        return self.value

    @property
    def known(self) -> Resolution:
        return self.value if self.value is not None else Resolution()


class _Run:
    """One check, from the point to the verdicts."""

    def __init__(self, calls: Calls, options: Options, subject: Subject) -> None:
        self.calls, self.options, self.subject = calls, options, subject
        self.found = _Found()
        self.resolution = _Lazy(self)
        self.analytic: dict[str, np.ndarray] = {}  # flat analytic gradients
        self.first: dict[str, FirstLook] = {}
        self._indices: dict[str, np.ndarray] = {}  # coordinates of the full-mode tensors
        self.loss_at_point = float("nan")

    # ------------------------------------------------------------------ the steps

    def run(self) -> _Found:
        calls, found = self.calls, self.found
        if not self._point_is_sound():
            return found
        plan = {name: _pick_mode(self.options.mode, array.size)
                for name, array in calls.arrays.items()}
        self._indices = {name: np.arange(array.size) for name, array in calls.arrays.items()
                         if plan[name] == "full"}
        calls.planned = sum(a.size for a in calls.arrays.values())
        targets = self._targets()
        full = [name for name in calls.arrays if plan[name] == "full"]
        for name in full:
            self.first[name] = first_look(calls, targets[name], Resolution())
        if any(not self._settled_at_once(targets[name], self.first[name]) for name in full):
            self.resolution()
        targets = self._targets()  # with the tolerances of the precision measured
        results: dict[str, Evidence] = {}
        for name in full:
            results[name] = measure(calls, targets[name], self.resolution.known,
                                    self.loss_at_point, self.first[name])
        fast = self._fast([name for name in calls.arrays if plan[name] == "fast"], targets)
        for name, result in fast.items():
            results[name] = result.measured
        targets = self._targets(results)  # judged against the scales measured
        self._non_finite_losses(results)
        failed_ties: list[FailedTie] = []
        if self.options.kinks in ("subgradient", "hull"):
            failed_ties = check_ties(calls, results, self._decide(results, targets), targets,
                                     self.resolution.known, self.loss_at_point,
                                     self.options.rng(), found.notes)
        if self.options.kinks == "subgradient":
            recheck_nearby(calls, results, self._decide(results, targets), targets,
                           self.resolution.known, self.options.rng())
        # a group whose members are wrong where no tie holds too is no tie's doing
        failed_ties = [t for t in failed_ties if not t.wrong_off_the_tie(results)]
        found.ties = [t.finding for t in failed_ties]
        found.notes.extend(Note("tie", t.finding.tensors[0], t.note) for t in failed_ties)
        if self._state_changed() or self._unrepeatable():
            found.notes = [n for n in found.notes if n.kind == "problem"]
            return found  # no verdict, and no kink, off a moving target
        self._mark_resolved(results, targets)
        verdicts = self._decide(results, targets)
        for name in calls.arrays:
            found.tensors.append(self._tensor_result(name, plan[name], results[name],
                                                     verdicts[name], targets[name],
                                                     fast.get(name)))
        found.notes[:0] = self._resolution_notes()
        found.notes.extend(self._nearby_notes(results, verdicts))
        found.notes.extend(Note("fast", name, f"{name}: {result.note}")
                           for name, result in fast.items() if result.note)
        found.notes.extend(Note("parallel", None, text) for text in calls.notes)
        return found

    # ------------------------------------------------------------------ the point

    def _point_is_sound(self) -> bool:
        """The loss and the gradient at the point, each asked twice: deterministic, no
        writes into the params, finite. False when nothing can be checked."""
        calls, problems = self.calls, self.found.problems
        loss0 = calls.loss_at_point = self.loss_at_point = calls.loss()
        if self._changed_in_place(calls.loss_label):
            return False
        if not np.isfinite(loss0):
            problems.append(Problem("non_finite_loss", f"{calls.loss_label} is {loss0} at the "
                                    "given point: nothing can be checked; look for log(0), "
                                    "overflow in exp, or 0/0"))
            return False
        again = calls.loss()
        if not _same(loss0, again) or "loss" in calls.draws_randomly():
            problems.append(self._random(
                f"two calls at the same point gave {loss0:.17g} and {again:.17g}"))
            return False
        analytic = calls.grads()
        if self._changed_in_place(calls.grads_label):
            return False
        second = calls.grads(copy=False)
        differs = [name for name in analytic if not _same_gradient(analytic[name],
                                                                   second[name])]
        if "grads" in calls.draws_randomly():
            problems.append(self._random(f"{calls.grads_label} left the global random "
                                         "generators in a new state after each call"))
            return False
        if differs:
            third = calls.loss()
            if not _same(loss0, third):
                problems.append(self._random(
                    f"{calls.grads_label} answered differently when called twice, and a "
                    f"third call of {calls.loss_label} gave {third:.17g}"))
                return False
            for name in differs:
                problems.append(_accumulates(calls.grads_label, name, analytic[name],
                                             second[name]))
        for name, gradient in analytic.items():
            bad = ~np.isfinite(gradient)
            if bad.any():
                first = flat_element(name, int(np.flatnonzero(bad.reshape(-1))[0]),
                                     gradient.shape)
                problems.append(Problem("non_finite_grad", f"{calls.grads_label}[{name!r}] has "
                                        f"{int(bad.sum())} non-finite value(s) (first at "
                                        f"{first})", name))
        self.analytic = {name: g.reshape(-1) for name, g in analytic.items()}
        return True

    def _random(self, evidence: str) -> Problem:
        calls = self.calls
        drawing = calls.draws_randomly()
        draws = (" It draws from the global random generators (Python's random or "
                 "np.random) without seeding them: pass reset_random=True to restore their "
                 "state before every call (the way a sampled loss is checked), or seed them "
                 "inside the call." if drawing and not calls.reset_random else
                 " Fix the randomness (seed it inside the call, or pass reset_random=True if "
                 "it draws from Python's random or np.random) and check again.")
        return Problem("nondeterministic",
                       f"{calls.loss_label} is not deterministic: {evidence} (random masks, "
                       f"sampling, or state kept between calls?); a gradient cannot be checked "
                       f"against it.{draws} Nothing else was checked.")

    def _changed_in_place(self, label: str) -> bool:
        """Name (and undo) writes into the params made by the call just made."""
        changed = self.calls.point.changed()
        if changed:
            self.found.problems.append(Problem(
                "in_place",
                f"calling {label} changed {', '.join(map(repr, changed))} in place: code under "
                "test must not write into its inputs or parameters (copy before modifying, "
                "e.g. x = x.copy()). Nothing else was checked.", changed[0]))
            self.calls.point.restore()
        return bool(changed)

    # ------------------------------------------------------------------ settings

    @property
    def _outputs_seen(self) -> bool:
        """The front door sees the outputs (check_layer, check_pair, check_elementwise)."""
        return output_shape_of(self.subject) is not None

    @property
    def _elementwise_input(self) -> str | None:
        """The tensor that is the input of an output shaped like it (check_layer,
        check_pair, check_elementwise: known once a forward ran), or None."""
        subject = self.subject
        shape = output_shape_of(subject)
        name = subject.input_name
        if name is None or shape is None or name not in self.calls.arrays:
            return None
        return name if tuple(shape) == self.calls.arrays[name].shape else None

    def _targets(self, results: Mapping[str, Evidence] | None = None) -> dict[str, Target]:
        """What each tensor is measured and judged by: its precision, its tolerance, the
        scales default atols and small elements are held to (from the analytic values and
        the looks so far; from the evidence once measured)."""
        calls = self.calls
        resolution = self.resolution.known
        scales = {}
        for name in calls.arrays:
            seen = [self.analytic[name]]
            if results is not None and name in results:
                ev = results[name]
                smooth = ~np.isin(ev.shape, KINKS)
                seen += [ev.numeric, ev.forward[smooth], ev.backward[smooth]]
            elif name in self.first:
                look = self.first[name].look
                seen += [(look.loss_plus - look.loss_minus) / (look.step_plus + look.step_minus)]
            scales[name] = gradient_scale(*seen)
        check_scale = max(scales.values(), default=0.0)
        atol_scale = max(check_scale, abs(self.loss_at_point))
        targets = {}
        for name, array in calls.arrays.items():
            model_eps = max(float(np.finfo(array.dtype).eps), calls.loss_eps)
            precision = precision_dtype(array.dtype, dtype_of_eps(calls.loss_eps),
                                        dtype_of_eps(resolution.inside_eps or FLOAT64_EPS))
            tolerance = tolerance_for(precision, self.options.rtol, self.options.atol)
            judge = Judge(tolerance, self.options.kinks, scales[name], check_scale, atol_scale)
            # every coordinate's index, for the tensors measured coordinate by coordinate
            # (fast mode's tensors get none: an index array is as large as the tensor)
            flat = self._indices.get(name, np.zeros(0, dtype=np.intp))
            targets[name] = Target(name, flat, self.analytic[name], model_eps, judge,
                                   elementwise_input=name == self._elementwise_input)
        return targets

    def _settled_at_once(self, target: Target, first: FirstLook) -> bool:
        """Whether the first look settles every coordinate, the loss's rounding as its
        theory says."""
        return bool(np.all(settled_at_once(self.calls, target, first, Resolution(),
                                           self.loss_at_point)))

    def calibrate(self) -> Resolution:
        """The probe (gradcheck.engine.resolution), off the kinks the first looks saw."""
        avoid = {name: kinks_at_first_look(first, self.loss_at_point, FLOAT64_EPS)
                 for name, first in self.first.items()}
        model_eps = {name: max(float(np.finfo(a.dtype).eps), self.calls.loss_eps)
                     for name, a in self.calls.arrays.items()}
        return calibrate(self.calls, self.analytic, self.loss_at_point, self.options.rng(),
                         model_eps, avoid)

    def _fast(self, names: list[str], targets: Mapping[str, Target]) -> dict[str, FastResult]:
        if not names:
            return {}
        rng = self.options.rng()
        parts = [Part(targets[name], int(rng.integers(2 ** 63)),
                      self.resolution.known.step_eps(targets[name].model_eps),
                      may_measure_all=self.options.mode == "auto")
                 for name in names]
        fast = check_fast(self.calls, parts, self.loss_at_point, self.resolution)
        for name in names:
            if self.options.mode == "auto":
                auto = (f"auto picked fast ({self.calls.arrays[name].size} elements > "
                        f"{AUTO_FULL_MAX})")
                fast[name].note = f"{auto}; {fast[name].note}" if fast[name].note else auto
        return fast

    # ------------------------------------------------------------------ problems

    def _non_finite_losses(self, results: Mapping[str, Evidence]) -> None:
        """A loss that was not finite a step away from a finite coordinate (a coordinate
        that is itself NaN or inf cannot be moved: it is unverified, not a problem of the
        loss)."""
        for name, ev in results.items():
            bad = ~np.isfinite(ev.numeric) & ev.finite
            if np.any(bad):
                first = flat_element(name, int(ev.flat[np.flatnonzero(bad)[0]]),
                                     self.calls.arrays[name].shape)
                self.found.problems.append(Problem(
                    "non_finite_loss",
                    f"the loss was not finite at {int(bad.sum())} perturbed point(s) of "
                    f"{name!r} (first {first}): the function overflows or leaves its domain "
                    "within a step of the given point", name))

    def _unrepeatable(self) -> bool:
        """A look the engine repeated that answered differently: the loss is not
        deterministic, however often it agrees at the given point."""
        calls = self.calls
        if not calls.unrepeatable:
            return False
        self.found.problems.append(self._random(
            "evaluated twice at the same perturbed point, it answered differently ("
            f"{'; '.join(calls.unrepeatable[:3])}); it agreed with itself at the given "
            "point, so it changes only now and then"))
        return True

    def _state_changed(self) -> bool:
        """After the scan, the point must still be the point: params as saved, and the
        loss there as at the start. Code that changes its own state mid-check is named;
        a loss that answers differently at the point is named as random."""
        calls, problems = self.calls, self.found.problems

        def params_changed() -> bool:
            changed = calls.point.changed()
            if changed:
                problems.append(Problem(
                    "state_changed",
                    f"{', '.join(map(repr, changed))} changed in place during the check (not "
                    "by the checker): the code under test writes into its parameters after "
                    "some calls, so the numeric gradients measure a moving target. Nothing can "
                    "be verified.", changed[0]))
                calls.point.restore()
            return bool(changed)

        if params_changed():
            return True
        after = calls.loss()
        if params_changed():
            return True
        if _same(self.loss_at_point, after):
            return False
        again = calls.loss()
        if params_changed():
            return True
        if not _same(after, again):
            problems.append(self._random(
                f"at the given point it gave {self.loss_at_point:.17g}, then {after:.17g} "
                f"and {again:.17g}"))
            return True
        problems.append(Problem(
            "state_changed",
            f"{calls.loss_label} at the given point changed during the check, from "
            f"{self.loss_at_point:.17g} to {after:.17g} (and stays there): the code under "
            "test keeps state between calls (a counter, a cache, a parameter updated as it "
            "runs). Nothing can be verified."))
        return True

    # ------------------------------------------------------------------ verdicts

    def _mark_resolved(self, results: Mapping[str, Evidence], targets: Mapping[str, Target]
                       ) -> None:
        """Each element's ``resolved`` again, against every change the whole check saw."""
        for name, ev in results.items():
            mark_resolved(ev, self.calls, self.resolution.known, targets[name].model_eps,
                          self.loss_at_point)

    def _rounding_reason(self) -> Reason:
        tiny = float(np.finfo(dtype_of_eps(self.calls.loss_eps)).tiny)
        if abs(self.loss_at_point) < tiny:
            return Reason.SUBNORMAL
        if self.resolution.known.excess >= COARSE_REASON_EXCESS:
            return Reason.COARSE
        return Reason.ROUNDING

    def _decide(self, results: Mapping[str, Evidence], targets: Mapping[str, Target]
                ) -> dict[str, Verdicts]:
        rounding = self._rounding_reason()
        return {name: decide(ev, targets[name].judge, rounding) for name, ev in results.items()}

    def _tensor_result(self, name: str, mode: str, ev: Evidence, v: Verdicts, target: Target,
                       fast: FastResult | None) -> TensorResult:
        array = self.calls.point.saved[name]
        judge = target.judge
        ok, failed = v.status == code(Status.OK), v.status == code(Status.FAILED)
        unverified = v.status == code(Status.UNVERIFIED)
        kink = np.isin(ev.shape, KINKS)
        with np.errstate(invalid="ignore"):
            hull = np.maximum(0.0, np.maximum(np.minimum(ev.forward, ev.backward) - ev.analytic,
                                              ev.analytic - np.maximum(ev.forward, ev.backward)))
            error = np.where(kink & ok & (v.how == How.HULL), hull,
                             np.abs(ev.analytic - ev.numeric))
        compared = ok | failed
        rel = relative_error(ev.numeric[compared] + error[compared], ev.numeric[compared])
        worst = []
        order = np.argsort(-np.nan_to_num(error[failed], nan=np.inf), kind="stable")
        for position in np.flatnonzero(failed)[order][:WORST_SHOWN]:
            nearby = v.reason[position] == Reason.NEARBY
            note = ("tied: counted together" if v.reason[position] == Reason.TIE
                    else "at a jittered point" if nearby
                    else _outside_slopes(ev, position)
                    if v.reason[position] == Reason.KINK_CONVENTION else "")
            a = ev.near_analytic[position] if nearby else ev.analytic[position]
            n = ev.near_numeric[position] if nearby else ev.numeric[position]
            worst.append(Mismatch(index=unravel(int(ev.flat[position]), array.shape),
                                  analytic=float(a), numeric=float(n),
                                  abs_err=float(abs(a - n)), note=note))
        failure = (Reason(int(v.reason[np.flatnonzero(failed)[order[0]]])).name
                   if failed.any() else "")
        near = ok & (v.how == How.NEARBY)
        tally = KinkTally(
            met=int(np.sum(kink | near)), by_hull=int(np.sum(ok & (v.how == How.HULL))),
            by_jitter=int(near.sum()), unverified=int(np.sum((kink | near) & unverified)),
            skipped=int(np.sum(v.status == code(Status.SKIPPED))),
            outside_hull=int(np.sum(ev.why == Why.OUTSIDE_HULL)))
        unresolved = fast.unresolved if fast is not None else ""
        status = (Status.FAILED if failed.any() else
                  Status.UNVERIFIED if unverified.any() or unresolved else Status.OK)
        reason = next((r for r in REASON_ORDER if np.any(v.reason == r)), None)
        text = unresolved
        if reason is not None and not text:
            text = reason_text(reason, ev, v, judge, self._context(name, target))
        finite_errors = np.nan_to_num(error[compared], nan=np.inf, posinf=np.inf)
        return TensorResult(
            name=name, shape=tuple(array.shape), dtype=array.dtype.name, mode=mode,
            size=int(array.size), mismatched=int(failed.sum()),
            max_abs_err=float(np.max(finite_errors, initial=0.0)),
            max_rel_err=float(np.max(np.nan_to_num(rel, nan=np.inf, posinf=np.inf),
                                     initial=0.0)),
            worst=worst, kinks=tally, rtol=judge.tolerance.rtol, atol=judge.tolerance.atol,
            detect_rtol=judge.tolerance.detect_rtol, detect_atol=judge.tolerance.detect_atol,
            tolerance_source=judge.tolerance.source,
            relative_step=float(self.resolution.known.step_eps(target.model_eps)) ** (1 / 3),
            mismatched_is_lower_bound=bool(fast is not None and fast.stopped),
            measured=int(compared.sum()), status=status, unverified=int(unverified.sum()),
            unverified_reason=text,
            reason=(reason.name if reason is not None else
                    "FAST_UNRESOLVED" if unresolved else ""),
            failure=failure,
            **_full_arrays(array, self.analytic[name].reshape(array.shape), ev, v, judge))

    def _context(self, name: str, target: Target) -> Context:
        resolution = self.resolution.known
        eps = self.calls.loss_eps
        note = (" (the loss comes back in float32 or coarser: return it as float64)"
                if eps > FLOAT64_EPS else "")
        return Context(name=name, shape=self.calls.point.saved[name].shape,
                       tolerance=target.judge.tolerance, loss_at_point=self.loss_at_point,
                       loss_coarse=resolution.measured, excess=resolution.excess,
                       loss_tiny=float(np.finfo(dtype_of_eps(eps)).tiny), dtype_note=note)

    # ------------------------------------------------------------------ notes

    def _resolution_notes(self) -> list[Note]:
        resolution = self.resolution.known
        if resolution.inside_eps:
            kind = dtype_of_eps(resolution.inside_eps).name
            return [Note("resolution", None,
                         f"the loss does not see moves of its inputs finer than {kind}'s "
                         f"resolution (eps {resolution.inside_eps:.1e}), though its values come "
                         f"back as float64: it computes in {kind} inside. Checked with {kind}'s "
                         "steps and tolerances.")]
        if resolution.excess >= COARSE_REASON_EXCESS:
            return [Note("resolution", None,
                         f"the loss resolves its changes only to about {resolution.measured:.1e} "
                         f"near the point (measured), {resolution.excess:.0f} times the rounding "
                         f"of its values (|L| = {abs(self.loss_at_point):.1e}): it moves in steps "
                         "or carries noise of that size, as arithmetic that rounds at a larger "
                         "scale than its value does (-log(p) or 1 - p with p a float near 1, a "
                         "saturated softmax or sigmoid, terms that cancel). Checked with error "
                         "bars that count it"
                         + (", and steps chosen for it" if resolution.coarse else "")
                         + "; compute the loss in a stable form (from the logits: log-sum-exp, "
                         "log1p) to check it more finely.")]
        return []

    def _nearby_notes(self, results: Mapping[str, Evidence],
                      verdicts: Mapping[str, Verdicts]) -> list[Note]:
        notes = []
        for name, ev in results.items():
            v = verdicts[name]
            shape = self.calls.point.saved[name].shape
            outside = np.flatnonzero(ev.why == Why.OUTSIDE_HULL)
            near_ok = (v.status == code(Status.OK)) & (v.how == How.NEARBY)
            convention = np.flatnonzero(v.reason == Reason.KINK_CONVENTION)
            if len(convention):
                first = flat_element(name, int(ev.flat[convention[0]]), shape)
                elementwise = bool(np.all(ev.single[convention]))
                notes.append(Note("kink_convention", name,
                    f"{name}: {len(convention)} kink coordinate(s) (first {first}) have an "
                    "analytic value outside the one-sided derivatives at the given point"
                    + (", where a move changes only the element's own output (an elementwise "
                       "map): no valid convention of one kink gives such a value (ReLU'(0) "
                       "lies in [0, 1], LeakyReLU'(0) in [alpha, 1], sign(0) in [-1, 1]). The "
                       "chain rule through kinks stacked on one zero (|x| after a ReLU) can; "
                       "if that is the layer, kinks='skip' leaves kink coordinates out"
                       if elementwise else " (kinks='hull' holds every kink to them)")
                    + "."))
            if len(outside):
                left = int(np.sum(v.status[outside] == code(Status.UNVERIFIED)))
                first = flat_element(name, int(ev.flat[outside[0]]), shape)
                # where the door sees the outputs, an elementwise map was judged by its
                # exact hull already: these coordinates moved other outputs too
                why_outside = (
                    ". Their moves change other outputs too (no elementwise map): several "
                    "kinks crossed within one step do that (ReLU inputs within a step of 0 "
                    "behind a Dense layer)" if self._outputs_seen else
                    ". Correct when several kinks are crossed at once (a zero row through a "
                    "bias-free Dense + ReLU); for an elementwise layer it is a bug: re-run "
                    "with kinks='hull'")
                notes.append(Note("kink_outside_hull", name,
                    f"{name}: {len(outside)} kink coordinate(s) (first {first}) have an analytic "
                    "value outside the one-sided derivatives at the given point; they were "
                    "re-checked at a jittered point where the loss is differentiable"
                    + (f" ({left} could not be: left unverified)" if left else "")
                    + why_outside + "."))
            for why, kind, text in (
                    (Why.FAILING, "verified_nearby",
                     "disagree with the loss at the given point but agree at a jittered point "
                     "nearby: kinks the loss does not show (ReLU -> negate -> ReLU at 0 is flat "
                     "on both sides, yet ReLU'(0) > 0 gives a nonzero chain rule)"),
                    (Why.UNDECIDED, "verified_nearby",
                     "could not be decided at the given point (a kink lies within their steps: "
                     "an input closer to a ReLU's 0 than the step, a value within a step of "
                     "another it is compared with, or rounding at the step's scale) and "
                     "agree at a jittered point nearby")):
                cleared = np.flatnonzero(near_ok & (ev.why == why))
                if len(cleared):
                    first = flat_element(name, int(ev.flat[cleared[0]]), shape)
                    notes.append(Note(kind, name,
                        f"{name}: {len(cleared)} element(s) (first {first}) {text}. Verified "
                        "nearby, not at the point; re-run with kinks='hull' to hold the point "
                        "itself to account."))
        return notes


# ---------------------------------------------------------------------------- helpers


def output_shape_of(subject: Subject) -> tuple[int, ...] | None:
    """The shape of the outputs the front door sees (known once a forward ran), or None."""
    shape = subject.output_shape() if callable(subject.output_shape) else subject.output_shape
    return None if shape is None else tuple(shape)


def _outside_slopes(ev: Evidence, position: int) -> str:
    low, high = sorted((float(ev.backward[position]), float(ev.forward[position])))
    return f"outside the one-sided [{low:.6g}, {high:.6g}]"


def _pick_mode(mode: str, size: int) -> str:
    if mode == "auto":
        return "full" if size <= AUTO_FULL_MAX else "fast"
    return mode


def _same(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= REPEAT_RTOL * max(abs(a), abs(b))


def _same_gradient(a: np.ndarray, b: np.ndarray) -> bool:
    if same_bits(a, b):
        return True
    scale = max(float(np.max(np.abs(a), initial=0.0)), np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore"):
        change = float(np.max(np.abs(a - b), initial=0.0))
    return change <= 1e-12 * scale or bool(np.array_equal(a, b, equal_nan=True))


def _accumulates(label: str, name: str, first: np.ndarray, second: np.ndarray) -> Problem:
    with np.errstate(invalid="ignore"):
        change = float(np.max(np.abs(first - second), initial=0.0))
    return Problem(
        "accumulates",
        f"{label} answered differently when called twice at the same point ({name!r} "
        f"changed by up to {change:.3g}): does backward accumulate into its gradients (+=) "
        "instead of overwriting them, or keep state between calls?", name)



def _full_arrays(array: np.ndarray, analytic: np.ndarray, ev: Evidence, v: Verdicts,
                 judge: Judge) -> dict[str, np.ndarray]:
    """The measured numbers spread over the tensor's shape (nan where not measured).

    Nothing of the tensor's size is allocated that is not needed: the analytic gradient
    is the engine's own copy, the value its saved copy (when float64), and a tensor
    verified by random directions alone (fast mode) gets read-only broadcast fills."""
    def spread(values: np.ndarray, fill: float | bool, dtype: type) -> np.ndarray:
        if not len(ev.flat):
            return np.broadcast_to(np.array(fill, dtype=dtype), array.shape)
        out: np.ndarray = np.full(array.size, fill, dtype=dtype)
        out[ev.flat] = values
        return out.reshape(array.shape)

    kink = np.isin(ev.shape, KINKS)
    with np.errstate(invalid="ignore"):
        allowed = np.where(kink, judge.hull_slack(ev.numeric, ev.floor),
                           judge.detect(ev.numeric) + ev.agree)
    near = (v.how == How.NEARBY) & (v.status == code(Status.OK))
    value = array.view() if array.dtype == np.float64 else array.astype(np.float64)
    value.flags.writeable = False
    return {"analytic": analytic,  # the user's, at the point (a float64 copy)
            "numeric": spread(ev.numeric, np.nan, np.float64),
            "error_bar": spread(allowed, np.nan, np.float64),
            "kink": spread(kink | near, False, bool),
            "failed": spread(v.status == code(Status.FAILED), False, bool),
            "value": value}
