"""The one engine: check_params. Every front door (check_layer, check_function, the pytest
plugin, the command line) ends here.

Order of work, and why:
1. loss() and grads() at the given point; grads() twice, since a backward that
   accumulates answers differently the second time. After each call the params are
   compared with their saved copies: code that writes into its input is named, not used.
2. Per tensor, "full" scans every coordinate (2 loss evaluations each, plus the one
   above); "fast" tests random directions and splits failing groups in halves.
3. Coordinates where the one-sided differences show a kink are settled by the kinks
   mode; in "subgradient" mode the ones outside the hull are re-checked together at a
   jittered point where the loss is differentiable.
4. Params are restored bit for bit in a ``finally``, whatever the user's code raised.
"""
from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from gradcheck.compare import (
    Tolerance,
    check_tolerance_argument,
    relative_error,
    rounding_noise,
    tolerance_for,
)
from gradcheck.errors import GradcheckUsageError, GradientShapeError
from gradcheck.kinks import KINK_MODES, distance_to_hull, is_jump, jitter_offsets, kink_mask
from gradcheck.numeric import Stencil, central_difference_scan, relative_step, step_sizes
from gradcheck.report import KinkTally, Mismatch, Report, TensorResult

MODES = ("full", "fast", "auto")
AUTO_FULL_MAX = 4096  # "auto": tensors up to this many elements are scanned in full
LEAF_SIZE = 8  # "fast": groups this small are scanned coordinate by coordinate
MAX_LOCATED = 10  # "fast": stop localizing a tensor after this many wrong elements
JITTER_ROUNDS = 4  # "subgradient": fresh jitters tried before a kink is left unverified
RECHECK_SAMPLE = 16  # "subgradient": failing elements per tensor re-checked nearby first
WORST_KEPT = 5

# The accumulation problem's words: check_layer drops it when forward is not deterministic.
ANSWERED_DIFFERENTLY = "answered differently when called twice"

# Per-coordinate verdicts.
OK, HULL, PENDING, SKIPPED, BAD, UNVERIFIED = range(6)

LossFn = Callable[[], Any]
GradsFn = Callable[[], Mapping[str, Any]]
Progress = Callable[[int, int], None]


def check_params(
    loss: LossFn,
    grads: GradsFn,
    params: dict[str, np.ndarray],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    mode: str = "auto",
    kinks: str = "subgradient",
    seed: int | None = 0,
    executor: Executor | None = None,
    progress: Progress | None = None,
    _labels: tuple[str, str] = ("loss()", "grads()"),
    _title: str | None = None,
    _repeat: str | None = None,
) -> Report:
    """Check ``grads()`` against finite differences of ``loss()`` for every entry of params.

    ``params`` is perturbed in place, one coordinate (full) or one group (fast) at a time,
    and restored bit for bit before this returns, also when the user's code raises.

    >>> import numpy as np, gradcheck as gc
    >>> p = {"w": np.array([1.0, -2.0, 3.0])}
    >>> rep = gc.check_params(lambda: float(np.sum(p["w"] ** 3)), lambda: {"w": 3 * p["w"] ** 2}, p)
    >>> rep.ok
    True
    """
    _check_options(loss, grads, mode, kinks, rtol, atol, seed, executor, progress)
    arrays = _check_params_argument(params, _labels[0])
    originals = {name: array.copy() for name, array in arrays.items()}
    calls = _Calls(loss, grads, arrays, originals, _labels, executor, progress)
    options: dict[str, Any] = {"mode": mode, "kinks": kinks, "seed": seed, "rtol": rtol,
                               "atol": atol}
    title = _title or f"params {', '.join(arrays)}"
    repeat = _repeat or (f"check_params(loss, grads, params, seed={seed!r}, mode={mode!r}, "
                         f"kinks={kinks!r})")
    try:
        findings = _run(calls, rtol, atol, mode, kinks, np.random.default_rng(seed))
    finally:
        calls.restore()
    tensors, problems, warnings = findings
    return Report(title=title, tensors=tensors, problems=problems, warnings=warnings,
                  options=options, evaluations={"loss": calls.n_loss, "grads": calls.n_grads},
                  repeat=repeat)


# ---------------------------------------------------------------------------- arguments


def _check_options(
    loss: object, grads: object, mode: str, kinks: str, rtol: float | None,
    atol: float | None, seed: object, executor: object, progress: object,
) -> None:
    if not callable(loss):
        raise GradcheckUsageError(f"loss must be a callable taking no arguments, got "
                                  f"{type(loss).__name__}")
    if not callable(grads):
        raise GradcheckUsageError(f"grads must be a callable taking no arguments and returning "
                                  f"a dict of arrays, got {type(grads).__name__}")
    if mode not in MODES:
        raise GradcheckUsageError(f"mode must be one of {', '.join(map(repr, MODES))}; "
                                  f"got {mode!r}")
    if kinks not in KINK_MODES:
        raise GradcheckUsageError(f"kinks must be one of {', '.join(map(repr, KINK_MODES))}; "
                                  f"got {kinks!r}")
    check_tolerance_argument("rtol", rtol)
    check_tolerance_argument("atol", atol)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise GradcheckUsageError(f"seed must be an int or None, got {seed!r}")
    if executor is not None and not isinstance(executor, Executor):
        raise GradcheckUsageError("executor must be a concurrent.futures.Executor (e.g. a "
                                  f"ProcessPoolExecutor), got {type(executor).__name__}")
    if progress is not None and not callable(progress):
        raise GradcheckUsageError("progress must be a callable(done, total) or None")


def _check_params_argument(params: object, loss_label: str) -> dict[str, np.ndarray]:
    if not isinstance(params, Mapping) or not params:
        raise GradcheckUsageError("params must be a non-empty dict mapping names to numpy "
                                  f"float arrays, got {type(params).__name__}"
                                  + (" (empty)" if isinstance(params, Mapping) else ""))
    arrays: dict[str, np.ndarray] = {}
    for name, array in params.items():
        if not isinstance(name, str):
            raise GradcheckUsageError(f"params keys must be strings, got {name!r}")
        if not isinstance(array, np.ndarray):
            raise GradcheckUsageError(
                f"params[{name!r}] is a {type(array).__name__}, not a numpy array: the checker "
                f"perturbs it in place, so pass the very array {loss_label} reads")
        if not np.issubdtype(array.dtype, np.floating):
            raise GradcheckUsageError(
                f"params[{name!r}] has dtype {array.dtype}: gradients need a real float array; "
                f"convert it, e.g. params[{name!r}] = params[{name!r}].astype(np.float64)")
        if not array.flags.writeable:
            raise GradcheckUsageError(f"params[{name!r}] is read-only: the checker perturbs it "
                                      "in place; pass a writeable array (array.copy())")
        if array.size == 0:
            raise GradcheckUsageError(f"params[{name!r}] is empty (shape {array.shape}): "
                                      "leave it out")
        arrays[name] = array
    return arrays


# ---------------------------------------------------------------------------- user calls


class _Calls:
    """The user's loss() and grads(), counted, validated, and (optionally) spread out."""

    def __init__(
        self, loss: LossFn, grads: GradsFn, arrays: dict[str, np.ndarray],
        originals: dict[str, np.ndarray], labels: tuple[str, str],
        executor: Executor | None, progress: Progress | None,
    ) -> None:
        self._loss, self._grads = loss, grads
        self.arrays, self.originals = arrays, originals
        self.loss_label, self.grads_label = labels
        self.executor, self.progress = executor, progress
        self.n_loss = self.n_grads = 0
        self.scanned = 0  # coordinates scanned so far, for progress
        self.planned = 0  # coordinates the scans will cover, for progress
        self._payload: bytes | None = None

    def loss(self) -> float:
        self.n_loss += 1
        return _as_scalar(self._loss(), self.loss_label)

    def grads(self) -> dict[str, np.ndarray]:
        self.n_grads += 1
        return _check_grads(self._grads(), self.arrays, self.grads_label)

    def changed(self) -> list[str]:
        """Names of params that differ from their saved copies."""
        return [name for name, array in self.arrays.items()
                if not np.array_equal(array, self.originals[name], equal_nan=True)]

    def restore(self) -> None:
        for name, array in self.arrays.items():
            np.copyto(array, self.originals[name])

    def scan(self, name: str, flat_indices: np.ndarray, steps: np.ndarray) -> Stencil:
        """Central differences over the listed coordinates: 2 loss evaluations each."""
        done_before = self.scanned

        def report_progress(done: int) -> None:
            self.scanned = done_before + done
            if self.progress is not None and (done % 64 == 0 or done == len(flat_indices)):
                self.progress(self.scanned, max(self.planned, self.scanned))

        self.n_loss += 2 * len(flat_indices)
        if self.executor is None or len(flat_indices) < 2:
            return central_difference_scan(
                lambda: _as_scalar(self._loss(), self.loss_label),
                self.arrays[name], flat_indices, steps, report_progress)
        return self._scan_on_executor(name, flat_indices, steps, report_progress)

    def _scan_on_executor(
        self, name: str, flat_indices: np.ndarray, steps: np.ndarray,
        report_progress: Callable[[int], None],
    ) -> Stencil:
        assert self.executor is not None
        if self._payload is None:
            try:  # loss and params in one pickle, so the copy loss reads is the one moved
                self._payload = pickle.dumps((self._loss, self.arrays, self.loss_label))
            except Exception as error:
                raise GradcheckUsageError(
                    "executor= sends the loss to other workers, so loss and params must pickle "
                    "together (a module-level callable or a bound method of an object holding "
                    f"the params, as check_layer uses): {type(error).__name__}: {error}"
                ) from error
        chunks = np.array_split(np.arange(len(flat_indices)), min(32, len(flat_indices)))
        futures = [self.executor.submit(_scan_chunk, self._payload, name,
                                        flat_indices[chunk], steps[chunk]) for chunk in chunks]
        parts = []
        done = 0
        for future in futures:
            parts.append(future.result())
            done += len(parts[-1].loss_plus)
            report_progress(done)
        return Stencil(*(np.concatenate(column) for column in zip(*parts, strict=True)))


def _scan_chunk(payload: bytes, name: str, flat_indices: np.ndarray, steps: np.ndarray) -> Stencil:
    """Worker side of executor=: its own copy of loss and params, scanned as usual."""
    loss, arrays, label = pickle.loads(payload)
    return central_difference_scan(lambda: _as_scalar(loss(), label), arrays[name],
                                   flat_indices, steps)


def _as_scalar(value: object, label: str) -> float:
    array = np.asarray(value)
    if array.size != 1 or not (np.issubdtype(array.dtype, np.floating)
                               or np.issubdtype(array.dtype, np.integer)):
        raise GradcheckUsageError(
            f"{label} must return a real scalar, got {type(value).__name__} "
            f"with shape {array.shape} and dtype {array.dtype}: reduce it to a scalar loss "
            "(for a layer with an array output use check_layer, which does this for you)")
    return float(array.reshape(()))


def _check_grads(
    grads: object, arrays: dict[str, np.ndarray], label: str
) -> dict[str, np.ndarray]:
    if not isinstance(grads, Mapping):
        raise GradientShapeError(f"{label} must return a dict of arrays keyed like params, got "
                                 f"{type(grads).__name__}")
    missing = [name for name in arrays if name not in grads]
    extra = [name for name in grads if name not in arrays]
    if missing:
        raise GradientShapeError(
            f"{label} has no gradient for {', '.join(map(repr, missing))} (params has "
            f"{', '.join(map(repr, arrays))}): return a gradient for every parameter")
    if extra:
        raise GradientShapeError(
            f"{label} returned {', '.join(map(repr, extra))}, which is not in params "
            f"({', '.join(map(repr, arrays))}): keep the keys of the two dicts the same")
    checked = {}
    for name, array in arrays.items():
        gradient = np.asarray(grads[name])
        if gradient.shape != array.shape:
            raise GradientShapeError(
                f"{label}[{name!r}] has shape {gradient.shape}, expected {array.shape} like the "
                f"parameter {name!r}: a gradient has the shape of what it differentiates")
        if not (np.issubdtype(gradient.dtype, np.floating)
                or np.issubdtype(gradient.dtype, np.integer)):
            raise GradientShapeError(f"{label}[{name!r}] has dtype {gradient.dtype}: "
                                     "return a real float array")
        checked[name] = np.array(gradient, dtype=np.float64)  # a copy: user buffers get reused
    return checked


# ---------------------------------------------------------------------------- the run


@dataclass
class _Measured:
    """Coordinates of one tensor evaluated by central differences, and their verdicts."""

    flat_indices: np.ndarray
    analytic: np.ndarray
    numeric: np.ndarray
    forward: np.ndarray  # one-sided differences
    backward: np.ndarray
    allowed: np.ndarray
    kink: np.ndarray  # bool: one-sided differences disagree beyond curvature
    status: np.ndarray  # OK, HULL, PENDING, SKIPPED, BAD, UNVERIFIED
    error: np.ndarray  # |a - n|, or the distance to the hull where the hull settled it
    jittered: np.ndarray  # bool: verdict (and numbers) from a re-check at a jittered point


def _measure(
    calls: _Calls, name: str, flat_indices: np.ndarray, analytic_flat: np.ndarray,
    loss_at_point: float, tolerance: Tolerance, kinks: str,
) -> _Measured:
    """Central differences at the listed coordinates, and a verdict for each.

    An element is only called wrong (or on a kink, unless the jump is clear) after a
    second look at half the step:
    - if the two central differences disagree, the stencil held kinks (two kinks, one each
      side, can spoil a central difference without widening the one-sided spread): a kink,
      judged on the half-step numbers;
    - if the one-sided spread does not shrink with the step, a kink sits on the point;
    - otherwise the loss is smooth there, and the gap between the two steps is the error
      bar of the numeric value: an element outside it is wrong.
    A correct gradient costs 2 evaluations per coordinate; each element that fails costs 2
    more.
    """
    array = calls.arrays[name]
    values = np.asarray(array.flat[flat_indices])
    steps = step_sizes(values)
    analytic = analytic_flat[flat_indices]
    numbers = _differences(calls, name, flat_indices, steps, analytic, loss_at_point, tolerance)
    numeric, forward, backward, allowed, agree, kink, floor = numbers
    # every failing element gets the second look: one step cannot tell a smooth minimum
    # (x^2 at 0: d+- = +-h) from a V (|x| at 0), nor strong curvature from a kink nearby
    suspects = np.flatnonzero(~agree & np.isfinite(numeric))
    if len(suspects):
        half = _differences(calls, name, flat_indices[suspects], 0.5 * steps[suspects],
                            analytic[suspects], loss_at_point, tolerance)
        seen_noise = np.abs(half.numeric - numeric[suspects])
        rough = seen_noise > allowed[suspects] + half.allowed
        jump = is_jump(np.abs(forward - backward)[suspects], np.abs(half.forward - half.backward),
                       seen_noise, floor[suspects])
        # Where the two steps agree, the gap between them is the numeric value's own error
        # bar (truncation O(h) where L'' jumps, O(h^2) where L is smooth): an element within
        # it at h/2 is right. A wrong element at a smooth point has a gap of ~h^2 L'''.
        refined = ~rough & ~jump & (
            np.abs(analytic[suspects] - half.numeric) <= half.allowed + seen_noise)
        half.allowed[refined] += seen_noise[refined]
        half.agree[refined] = True
        for column, values_half in zip(numbers, half, strict=True):
            column[suspects[rough | refined]] = values_half[rough | refined]
        kink[suspects] = rough | jump

    error = np.abs(analytic - numeric)
    status = np.where(agree, OK, BAD)
    hull_gap = distance_to_hull(analytic, forward, backward)
    in_hull = hull_gap <= allowed
    if kinks == "skip":
        status = np.where(kink, SKIPPED, status)
    elif kinks in ("hull", "subgradient"):
        status = np.where(kink & ~agree & in_hull, HULL, status)
        error = np.where(kink & in_hull, np.minimum(error, hull_gap), error)
        if kinks == "subgradient":
            status = np.where(kink & ~agree & ~in_hull, PENDING, status)
    return _Measured(flat_indices, analytic, numeric, forward, backward, allowed, kink,
                     status, error, np.zeros(len(flat_indices), dtype=bool))


class _Differences(NamedTuple):
    """One stencil's numbers per coordinate."""

    numeric: np.ndarray  # central difference
    forward: np.ndarray  # d+
    backward: np.ndarray  # d-
    allowed: np.ndarray  # largest |a - n| accepted
    agree: np.ndarray  # bool
    kink: np.ndarray  # bool: a clear jump (final for elements that agree)
    floor: np.ndarray  # rounding floor a jump must clear


def _differences(
    calls: _Calls, name: str, flat_indices: np.ndarray, steps: np.ndarray,
    analytic: np.ndarray, loss_at_point: float, tolerance: Tolerance,
) -> _Differences:
    """Central and one-sided differences at the given steps, and their verdicts."""
    dtype = calls.arrays[name].dtype
    stencil = calls.scan(name, flat_indices, steps)
    numeric = stencil.central()
    forward, backward = stencil.one_sided(loss_at_point)
    loss_scale = np.maximum(abs(loss_at_point),
                            np.maximum(np.abs(stencil.loss_plus), np.abs(stencil.loss_minus)))
    taken = 0.5 * (stencil.step_plus + stencil.step_minus)
    rounding = rounding_noise(1.0, taken, dtype) * loss_scale
    allowed = tolerance.allowed(numeric, rounding)
    with np.errstate(invalid="ignore"):
        agree = np.abs(analytic - numeric) <= allowed  # False for nan
        finite = np.isfinite(numeric)
        clear = kink_mask(forward, backward, dtype)
    # a jump must clear the rounding of one-sided differences: eps |L| / h, a few times
    floor = tolerance.atol + rounding / 8
    return _Differences(numeric, forward, backward, allowed, agree, clear & finite, floor)


def _run(
    calls: _Calls, rtol: float | None, atol: float | None, mode: str, kinks: str,
    rng: np.random.Generator,
) -> tuple[list[TensorResult], list[str], list[str]]:
    problems: list[str] = []
    warnings: list[str] = []

    loss0 = calls.loss()
    if _changed_in_place(calls, calls.loss_label, problems):
        return [], problems, warnings
    if not np.isfinite(loss0):
        problems.append(f"{calls.loss_label} is {loss0} at the given point: nothing can be "
                        "checked; look for log(0), overflow in exp, or 0/0")
        return [], problems, warnings
    analytic = calls.grads()
    if _changed_in_place(calls, calls.grads_label, problems):
        return [], problems, warnings
    _compare_repeated_grads(analytic, calls.grads(), calls.grads_label, problems)
    for name, gradient in analytic.items():
        bad = int(np.sum(~np.isfinite(gradient)))
        if bad:
            problems.append(f"{calls.grads_label}[{name!r}] has {bad} non-finite value(s) "
                            f"(first at {name}{_index_text(_first(~np.isfinite(gradient)))})")

    plan = {name: _pick_mode(mode, array.size) for name, array in calls.arrays.items()}
    calls.planned = sum(a.size for n, a in calls.arrays.items() if plan[n] == "full")
    results: dict[str, _Measured] = {}
    notes: dict[str, str] = {}
    lower_bound: dict[str, bool] = {}
    tolerances = {name: tolerance_for(a.dtype, rtol, atol) for name, a in calls.arrays.items()}
    for name, array in calls.arrays.items():
        flat_analytic = analytic[name].reshape(-1)
        if plan[name] == "full":
            results[name] = _measure(calls, name, np.arange(array.size), flat_analytic, loss0,
                                     tolerances[name], kinks)
        else:
            results[name], notes[name], lower_bound[name] = _fast(
                calls, name, flat_analytic, loss0, tolerances[name], kinks, rng)
        if mode == "auto" and plan[name] == "fast":
            notes[name] = (f"auto picked fast ({array.size} elements > {AUTO_FULL_MAX}); "
                           + notes[name])
        _non_finite_losses(name, results[name], problems)

    if kinks == "subgradient":
        _settle_by_jitter(calls, results, tolerances, rng, warnings)

    tensors = [_tensor_result(name, calls.arrays[name], plan[name], results[name],
                              tolerances[name], lower_bound.get(name, False))
               for name in calls.arrays]
    warnings.extend(f"{name}: {note}" for name, note in notes.items() if note)
    return tensors, problems, warnings


def _pick_mode(mode: str, size: int) -> str:
    if mode == "auto":
        return "full" if size <= AUTO_FULL_MAX else "fast"
    return mode


def _changed_in_place(calls: _Calls, label: str, problems: list[str]) -> bool:
    changed = calls.changed()
    if changed:
        problems.append(
            f"calling {label} changed {', '.join(map(repr, changed))} in place: code under test "
            "must not write into its inputs or parameters (copy before modifying, e.g. "
            "x = x.copy()). Nothing else was checked.")
        calls.restore()
    return bool(changed)


def _compare_repeated_grads(
    first: dict[str, np.ndarray], second: dict[str, np.ndarray], label: str,
    problems: list[str],
) -> None:
    for name in first:
        a, b = first[name], second[name]
        scale = max(float(np.max(np.abs(a), initial=0.0)), np.finfo(np.float64).tiny)
        with np.errstate(invalid="ignore"):
            change = float(np.max(np.abs(a - b), initial=0.0))
        if not (change <= 1e-12 * scale) and not np.array_equal(a, b, equal_nan=True):
            problems.append(
                f"{label} {ANSWERED_DIFFERENTLY} at the same point "
                f"({name!r} changed by up to {change:.3g}): does backward accumulate into its "
                f"gradients (+=) instead of overwriting them, or keep state between calls?")


def _non_finite_losses(name: str, measured: _Measured, problems: list[str]) -> None:
    bad = ~np.isfinite(measured.numeric)
    if np.any(bad):
        problems.append(f"the loss was not finite at {int(bad.sum())} perturbed point(s) of "
                        f"{name!r}: the function overflows or leaves its domain within a step "
                        f"(h = {relative_step(np.float64):.1e}-relative) of the given point")


def _settle_by_jitter(
    calls: _Calls, results: dict[str, _Measured], tolerances: dict[str, Tolerance],
    rng: np.random.Generator, warnings: list[str],
) -> None:
    """Re-check, together, the coordinates the given point cannot settle.

    Those are kink coordinates whose analytic value is outside the hull, and failing
    elements: a multi-kink point can hide its kinks entirely (ReLU -> negate -> ReLU at 0
    is flat on both sides, yet a valid ReLU'(0) = 0.5 gives a nonzero chain rule). Failing
    elements are re-checked worst first, RECHECK_SAMPLE per tensor; the rest only if every
    one of those turns out right nearby, so a buggy layer costs little more.

    Each round moves all of them by a random 16-32 steps (so a stencil no longer reaches
    the kink), once each way (x + d and x - d), asks for the gradient at both points, and
    compares as usual. A coordinate still on a kink gets a fresh jitter next round; after
    JITTER_ROUNDS it is left unverified.
    """
    outside = {name: np.flatnonzero(m.status == PENDING) for name, m in results.items()}
    failing = {name: _worst_first(m, np.flatnonzero(m.status == BAD))
               for name, m in results.items()}
    pending = {name: np.concatenate([outside[name], failing[name][:RECHECK_SAMPLE]])
               for name in results}
    later = {name: failing[name][RECHECK_SAMPLE:] for name in results}
    for _round in range(JITTER_ROUNDS):
        pending = {name: positions for name, positions in pending.items() if len(positions)}
        if not pending:
            break
        offsets = {name: jitter_offsets(step_sizes(
            calls.originals[name].reshape(-1)[results[name].flat_indices[positions]]), rng)
            for name, positions in pending.items()}
        plus, minus = (_measure_jittered(calls, results, pending, offsets, tolerances, sign)
                       for sign in (1.0, -1.0))
        if plus is None or minus is None:
            continue
        for name, positions in pending.items():
            m = results[name]
            _record_jittered(m, positions, plus[name], minus[name])
            pending[name] = positions[plus[name].kink | minus[name].kink]
            if len(later[name]) and not np.any(m.status[failing[name]] == BAD):
                pending[name] = np.concatenate([pending[name], later[name]])
                failing[name] = np.concatenate([failing[name], later[name]])
                later[name] = later[name][:0]
    for name, m in results.items():
        m.status[outside[name][m.status[outside[name]] == PENDING]] = UNVERIFIED
        _jitter_warnings(name, m, outside[name], failing[name], calls.arrays[name].shape,
                         warnings)


def _worst_first(m: _Measured, positions: np.ndarray) -> np.ndarray:
    return positions[np.argsort(-np.nan_to_num(m.error[positions], nan=np.inf), kind="stable")]


def _measure_jittered(
    calls: _Calls, results: dict[str, _Measured], pending: dict[str, np.ndarray],
    offsets: dict[str, np.ndarray], tolerances: dict[str, Tolerance], sign: float,
) -> dict[str, _Measured] | None:
    """Move every pending coordinate by sign * its offset, and measure them there."""
    for name, positions in pending.items():
        flat_indices = results[name].flat_indices[positions]
        original = calls.originals[name].reshape(-1)[flat_indices].astype(np.float64)
        calls.arrays[name].flat[flat_indices] = original + sign * offsets[name]
    try:
        loss_j = calls.loss()
        if not np.isfinite(loss_j):
            return None
        analytic_j = calls.grads()
        return {name: _measure(calls, name, results[name].flat_indices[positions],
                               analytic_j[name].reshape(-1), loss_j, tolerances[name], "strict")
                for name, positions in pending.items()}
    finally:
        calls.restore()


def _record_jittered(m: _Measured, positions: np.ndarray, plus: _Measured,
                     minus: _Measured) -> None:
    """Verdicts at the two mirrored jittered points, x + d and x - d.

    A coordinate is settled where neither point is on a kink, and right only if right at
    both. A kink coordinate takes the new numbers (from the side that failed, if one did):
    the old ones straddle a kink. A failing element keeps its own numbers and is cleared
    only if right on both sides, as a kink the loss did not show: a bug that holds on one
    side of a nearby kink (a dropped ReLU derivative just below 0) stays a bug.
    """
    settled = ~plus.kink & ~minus.kink
    right_both = settled & (plus.status == OK) & (minus.status == OK)
    was_failing = m.status[positions] == BAD
    take = settled & (~was_failing | right_both)
    minus_failed = minus.status != OK
    for field_name in ("analytic", "numeric", "error"):
        chosen = np.where(minus_failed, getattr(minus, field_name), getattr(plus, field_name))
        getattr(m, field_name)[positions[take]] = chosen[take]
    m.status[positions[take]] = np.where(right_both, OK, BAD)[take]
    m.jittered[positions[take]] = True
    m.kink[positions[take & was_failing]] = True


def _jitter_warnings(
    name: str, m: _Measured, outside: np.ndarray, failing: np.ndarray,
    shape: tuple[int, ...], warnings: list[str],
) -> None:
    if len(outside):
        unverified = int(np.sum(m.status[outside] == UNVERIFIED))
        first = _unravel(int(m.flat_indices[outside[0]]), shape)
        warnings.append(
            f"{name}: {len(outside)} kink coordinate(s) (first {name}{_index_text(first)}) "
            "have an analytic value outside the one-sided derivatives at the given point; "
            "they were re-checked at a jittered point where the loss is differentiable"
            + (f" ({unverified} could not be: left unverified)" if unverified else "")
            + ". Correct when several kinks are crossed at once (a zero row through a "
            "bias-free Dense + ReLU); for an elementwise layer it is a bug: re-run with "
            "kinks='hull'.")
    hidden = failing[m.jittered[failing]]
    if len(hidden):
        first = _unravel(int(m.flat_indices[hidden[0]]), shape)
        warnings.append(
            f"{name}: {len(hidden)} element(s) (first {name}{_index_text(first)}) disagree "
            "with the loss at the given point but agree at a jittered point nearby: kinks "
            "the loss does not show (ReLU -> negate -> ReLU at 0 is flat on both sides, yet "
            "ReLU'(0) > 0 gives a nonzero chain rule). Verified nearby, not at the point; "
            "re-run with kinks='hull' to hold the point itself to account.")


def _fast(
    calls: _Calls, name: str, analytic_flat: np.ndarray, loss0: float, tolerance: Tolerance,
    kinks: str, rng: np.random.Generator,
) -> tuple[_Measured, str, bool]:
    """Random-direction test of one tensor; failing groups are split in halves down to
    LEAF_SIZE, whose coordinates are scanned one by one: O(k log n) evaluations for k
    wrong elements instead of 2n.
    """
    array = calls.arrays[name]
    base = calls.originals[name].reshape(-1)
    base64 = base.astype(np.float64)
    # random signs and magnitudes in [1, 2]: one wrong element always moves the
    # directional derivative, and two wrong elements cannot cancel exactly
    direction = rng.choice(np.array([-1.0, 1.0]), size=base.size) * rng.uniform(1, 2, base.size)
    delta = step_sizes(base) * direction
    eps = float(np.finfo(array.dtype).eps)
    stack = [(0, base.size)]
    leaves: list[_Measured] = []
    failed_groups = 0
    located = 0
    while stack and located < MAX_LOCATED:
        lo, hi = stack.pop()
        if hi - lo <= LEAF_SIZE:
            leaves.append(_measure(calls, name, np.arange(lo, hi), analytic_flat, loss0,
                                   tolerance, kinks))
            located += int(np.sum(leaves[-1].status == BAD))
            continue
        if _direction_agrees(calls, name, lo, hi, base, base64, delta, analytic_flat, loss0,
                             eps):
            continue
        failed_groups += 1
        mid = (lo + hi) // 2
        stack.extend([(mid, hi), (lo, mid)])
    stopped = bool(stack)
    merged = _concat(leaves)
    note = ""
    if failed_groups and not located and not np.any(merged.kink):
        note = ("a random-direction check disagreed but no single element did: errors spread "
                "below the per-element tolerance, or rounding noise; re-run with mode='full'")
    if stopped:
        note = f"stopped localizing after {MAX_LOCATED} wrong elements; more may be wrong"
    return merged, note, stopped


def _direction_agrees(
    calls: _Calls, name: str, lo: int, hi: int, base: np.ndarray, base64: np.ndarray,
    delta: np.ndarray, analytic_flat: np.ndarray, loss0: float, eps: float,
) -> bool:
    """Does <grad, d> match the central difference along d (support lo:hi)?

    Two step sizes (d and d/2) give the numeric error estimate: a wrong gradient leaves a
    step-independent mismatch, truncation shrinks 4x, rounding grows 2x (DESIGN.md).
    """
    array = calls.arrays[name]
    flat = array.flat
    estimates, projections, scale = [], [], abs(loss0)
    for fraction in (1.0, 0.5):
        step = fraction * delta[lo:hi]
        try:
            flat[lo:hi] = base64[lo:hi] + step
            up = np.asarray(flat[lo:hi], dtype=np.float64) - base64[lo:hi]
            loss_plus = calls.loss()
            flat[lo:hi] = base64[lo:hi] - step
            down = base64[lo:hi] - np.asarray(flat[lo:hi], dtype=np.float64)
            loss_minus = calls.loss()
        finally:
            flat[lo:hi] = base[lo:hi]
        estimates.append((loss_plus - loss_minus) / (2 * fraction))
        projections.append(float(analytic_flat[lo:hi] @ (up + down)) / (2 * fraction))
        scale = max(scale, abs(loss_plus), abs(loss_minus))
    coarse, fine = estimates
    analytic = projections[1]
    if not (np.isfinite(coarse) and np.isfinite(fine) and np.isfinite(analytic)):
        return False
    rounding = float(rounding_noise(scale, np.ones(1), array.dtype)[0])
    rounding += 64 * np.finfo(np.float64).eps * float(
        np.abs(analytic_flat[lo:hi]) @ np.abs(delta[lo:hi]))
    truncation = abs(coarse - fine)
    smooth = truncation <= 1e-2 * (abs(fine) + abs(analytic)) + rounding
    mismatch = abs(fine - analytic)
    allowed = 4 * truncation + rounding
    return bool(smooth and mismatch <= allowed)


def _concat(parts: list[_Measured]) -> _Measured:
    if not parts:
        empty = np.zeros(0)
        return _Measured(np.zeros(0, dtype=np.intp), empty, empty, empty, empty, empty,
                         np.zeros(0, dtype=bool), np.zeros(0, dtype=np.intp), empty,
                         np.zeros(0, dtype=bool))
    return _Measured(*(np.concatenate([getattr(p, f.name) for p in parts])
                       for f in fields(_Measured)))


# ---------------------------------------------------------------------------- results


def _tensor_result(
    name: str, array: np.ndarray, mode: str, m: _Measured, tolerance: Tolerance,
    lower_bound: bool,
) -> TensorResult:
    bad = m.status == BAD
    compared = (m.status == OK) | (m.status == HULL) | bad
    errors = m.error[compared]
    # relative to |numeric|, of the error that counts (the distance to the hull at a kink)
    rel = relative_error(m.numeric[compared] + errors, m.numeric[compared])
    worst = []
    order = np.argsort(-np.nan_to_num(m.error[bad], nan=np.inf))[:WORST_KEPT]
    for position in np.flatnonzero(bad)[order]:
        worst.append(Mismatch(
            index=_unravel(int(m.flat_indices[position]), array.shape),
            analytic=float(m.analytic[position]), numeric=float(m.numeric[position]),
            abs_err=float(m.error[position]),
            note="at a jittered point" if m.jittered[position] else ""))
    on_kink = m.status[m.kink & ~m.jittered]
    tally = KinkTally(
        met=int(m.kink.sum()),
        by_hull=int(np.sum((on_kink == HULL) | (on_kink == OK))),
        by_jitter=int(np.sum(m.jittered & (m.status == OK))),
        unverified=int(np.sum(m.status == UNVERIFIED)),
        skipped=int(np.sum(on_kink == SKIPPED)),
        outside_hull=int(np.sum(m.jittered)),
    )
    return TensorResult(
        name=name, shape=tuple(array.shape), dtype=array.dtype.name, mode=mode,
        checked=int(array.size), mismatched=int(bad.sum()),
        max_abs_err=float(np.max(np.nan_to_num(errors, nan=np.inf, posinf=np.inf), initial=0.0)),
        max_rel_err=float(np.max(np.nan_to_num(rel, nan=np.inf, posinf=np.inf), initial=0.0)),
        worst=worst, kinks=tally, rtol=tolerance.rtol, atol=tolerance.atol,
        tolerance_source=tolerance.source, step=relative_step(array.dtype),
        mismatched_is_lower_bound=lower_bound, measured=int(compared.sum()))


def _unravel(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat_index, shape)) if shape else ()


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return _unravel(int(np.flatnonzero(mask.reshape(-1))[0]), mask.shape)


def _index_text(index: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, index))}]" if index else ""
