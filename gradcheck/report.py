"""Result objects of a check and their text: per tensor, like assert_allclose's report."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.engine.verdict import Status, digits
from gradcheck.errors import GradientMismatch
from gradcheck.text import element, general, sci, strict_json, table

if TYPE_CHECKING:
    from gradcheck.diagnosis.found import Diagnosis

#: How many of a tensor's wrong elements a result keeps (worst first) and its text lists.
WORST_SHOWN = 5
ARRAY_FIELDS = ("analytic", "numeric", "error_bar", "kink", "failed", "value")

# A tensor's verdict: every element verified; a wrong gradient found; or the numeric error
# bar too wide to tell right from wrong at the tolerance (never reported as ok).
OK, FAILED, UNVERIFIED = Status.OK, Status.FAILED, Status.UNVERIFIED


@dataclass(frozen=True)
class Problem:
    """Misbehaviour of the code under test, named by kind.

    kinds: "in_place" (writes into its inputs or params), "accumulates" (grads differ when
    asked twice), "nondeterministic" (the loss differs at the same point), "state_changed"
    (the loss at the point changed during the check), "non_finite_loss", "non_finite_grad".
    """

    kind: str
    text: str
    tensor: str | None = None

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Note:
    """Something the report says beside the verdicts, by kind, about a tensor (None: the
    whole check).

    kinds: "resolution" (the loss resolves less than its values show), "tie" (tied
    elements failed together, or an artifact of the point), "kink_outside_hull" (kink
    coordinates re-checked at jittered points), "verified_nearby" (elements verified at
    jittered points, not at the point), "fast" (what fast mode did), "parallel" (what
    executor= did).
    """

    kind: str
    tensor: str | None
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class TieFinding:
    """Tied elements the engine failed together: moved together (a tie stays a tie), their
    analytic gradients do not add up to the loss's slope, here and on both sides along the
    tie (or, where that direction crosses another kink at the point, on a side of it)."""

    members: tuple[tuple[str, tuple[int, ...]], ...]  # (tensor, index) of every element
    value: float  # the value the first member is tied at
    total: float  # their analytic gradients added up along the tie
    slope: float | None  # the loss's slope along the tie at the point (None: judged off it)

    @property
    def tensors(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _ in self.members))


@dataclass
class Mismatch:
    """One element whose analytic gradient disagrees with the numeric one."""

    index: tuple[int, ...]
    analytic: float
    numeric: float
    abs_err: float
    note: str = ""  # e.g. "at a jittered point", "loss not finite"


@dataclass
class KinkTally:
    """Kink coordinates met in one tensor and how each was settled."""

    met: int = 0
    by_hull: int = 0  # analytic inside the hull of the one-sided derivatives
    by_jitter: int = 0  # re-checked at a nearby point where the loss is differentiable
    unverified: int = 0  # still on a kink after every jitter: listed as a warning
    skipped: int = 0  # kinks="skip": left out
    outside_hull: int = 0  # subgradient mode: verified by jitter, but outside the hull here


@dataclass
class TensorResult:
    """The verdict for one tensor (a parameter, or the input x)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    mode: str  # "full" or "fast"
    size: int  # elements in the tensor, every one of them checked
    mismatched: int
    max_abs_err: float
    max_rel_err: float
    worst: list[Mismatch] = field(default_factory=list)
    kinks: KinkTally = field(default_factory=KinkTally)
    rtol: float = 0.0  # verification: how narrow an error bar vouches for an element
    atol: float = 0.0
    detect_rtol: float = 0.0  # detection: a mismatch beyond this and the bar is a bug
    detect_atol: float = 0.0
    tolerance_source: str = ""
    relative_step: float = 0.0  # eps**(1/3) of the precision in play: h = it * max(1, |v|)
    mismatched_is_lower_bound: bool = False  # fast mode stopped localizing early
    measured: int = 0  # elements compared one by one (fast mode: only localized groups)
    status: Status = OK  # OK, FAILED or UNVERIFIED
    unverified: int = 0  # elements whose numeric error bar is too wide to decide
    unverified_reason: str = ""  # why, and what to do
    # the reason's name (gradcheck.engine.verdict.Reason: "ROUNDING", "STILL", ...; or
    # "FAST_UNRESOLVED"), "" when every element is verified or failed
    reason: str = ""
    # why its worst failed element failed ("MISMATCH", "TIE", "KINK_CONVENTION", "AT_KINK",
    # "NEARBY": gradcheck.engine.verdict.Reason), "" when none failed
    failure: str = ""
    # Full arrays, shaped like the tensor (float64): the user's gradient, the central
    # difference (nan where not measured), the largest |analytic - numeric| accepted there
    # (tolerance + numeric error bar; nan where not measured), kink and failed masks, and
    # the tensor's value at the checked point.
    analytic: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    numeric: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    error_bar: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    kink: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)
    failed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool), repr=False)
    value: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def element(self, index: tuple[int, ...]) -> str:
        """``W[1, 0]``: an element named the way the user indexes it."""
        return element(self.name, index)


@dataclass
class Report:
    """What a check found. Truthy when every gradient is right and nothing misbehaved.

    >>> import gradcheck as gc, numpy as np
    >>> rep = gc.check_function(lambda v: float(np.sum(v ** 2)), lambda v: 2 * v, np.ones(3))
    >>> rep.ok, bool(rep)
    (True, True)
    """

    title: str
    tensors: list[TensorResult]
    problems: list[Problem]
    notes: list[Note]
    options: dict[str, Any]
    evaluations: dict[str, int]
    repeat: str = ""
    diagnoses: list[Diagnosis] = field(default_factory=list)  # the likely cause per tensor
    ties: list[TieFinding] = field(default_factory=list)  # tie groups failed together
    input_name: str | None = None  # the tensor that is the input x (check_layer/function)
    output_shape: tuple[int, ...] | None = None  # the layer's output (check_layer)
    door: str = ""  # the front door that made it: "check_layer", "check_pair", ...
    # integer arrays passed through check_pair/check_loss (labels, indices), by parameter name
    index_arguments: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        """The notes' texts, in order."""
        return [note.text for note in self.notes]

    @property
    def status(self) -> Status:
        """FAILED (a wrong gradient or misbehaviour), UNVERIFIED, or ok (all verified)."""
        if self.problems or any(t.status == FAILED for t in self.tensors):
            return FAILED
        return UNVERIFIED if any(t.status == UNVERIFIED for t in self.tensors) else OK

    @property
    def ok(self) -> bool:
        return self.status == OK

    def __bool__(self) -> bool:
        return self.ok

    def raise_if_failed(self) -> None:
        """Raise GradientMismatch with the report's table when the check failed."""
        __tracebackhide__ = True  # pytest shows the table, not this frame
        if not self.ok:
            raise GradientMismatch(str(self), self)

    def to_dict(self, arrays: bool = False) -> dict[str, Any]:
        """A JSON-ready dict of everything in the report (strict JSON: an infinite or
        undefined number is the string "inf", "-inf" or "nan").

        ``arrays=True`` adds each tensor's full arrays (analytic, numeric, error_bar, kink,
        failed, value) as nested lists; by default only the worst elements are kept.
        """
        tensors = []
        for t in self.tensors:
            entry = strict_json({k: v for k, v in asdict(t).items()
                                 if not isinstance(v, np.ndarray)})
            entry["shape"] = list(t.shape)
            entry["ok"] = t.ok
            entry["status"] = str(t.status)
            for w in entry["worst"]:
                w["index"] = list(w["index"])
            if arrays:
                entry.update({name: strict_json(getattr(t, name).tolist())
                              for name in ARRAY_FIELDS})
            tensors.append(entry)
        return {
            "ok": self.ok,
            "title": self.title,
            "options": dict(self.options),
            "evaluations": dict(self.evaluations),
            "status": str(self.status),
            "problems": [asdict(p) for p in self.problems],
            "warnings": list(self.warnings),
            "notes": [asdict(note) for note in self.notes],
            "door": self.door,
            "ties": [strict_json({"members": [[name, list(index)] for name, index in t.members],
                                  "value": t.value, "total": t.total, "slope": t.slope})
                     for t in self.ties],
            "tensors": tensors,
            "diagnoses": [d.to_dict() for d in self.diagnoses],
            "repeat": self.repeat,
        }

    def plot(self, path: str | Path) -> Path:
        """Draw the failing tensors' analytic, numeric and difference heatmaps, kinks and
        wrong elements marked and the likely cause above, into a PNG at ``path``; return
        the path. Needs matplotlib (``pip install "gradcheck[plot]"``); ImportError naming
        the extra otherwise.

        Example::

            >>> gc.check_layer(layer, x).plot("check.png")   # doctest: +SKIP
        """
        from gradcheck.heatmap import plot_report

        return plot_report(self, path)

    def __str__(self) -> str:
        return render(self)


def render(report: Report) -> str:
    """The table a person reads in a failing pytest run."""
    failed = [t for t in report.tensors if t.status == FAILED]
    n = len(report.tensors)
    worst = [(t, t.worst[0]) for t in failed if t.worst]
    unverified = [t for t in report.tensors if t.status == UNVERIFIED]
    if report.ok:
        verdict = "the tensor is ok" if n == 1 else f"all {n} tensors ok"
    elif report.status == UNVERIFIED:
        verdict = (f"UNVERIFIED {', '.join(t.name for t in unverified)}: the finite "
                   "differences cannot tell right from wrong there (reason below)")
    elif worst:  # first: pytest's short summary shows only the start of the headline
        t, m = max(worst, key=lambda pair: pair[1].abs_err)
        verdict = (f"FAILED {t.element(m.index)}: analytic {digits(m.analytic, m.numeric)} vs "
                   f"numeric {digits(m.numeric, m.analytic)}; {len(failed)} of {n} tensors "
                   "failed")
    elif failed:
        verdict = f"{len(failed)} of {n} tensors FAILED"
    else:
        verdict = "FAILED (misbehaviour below)"
    opts = report.options
    lines = [f"gradcheck: {verdict}  ({report.title}, mode {opts.get('mode')}, "
             f"kinks {opts.get('kinks')}, seed {opts.get('seed')})", ""]
    rows = [["tensor", "shape", "dtype", "mode", "status", "max|a-n|", "max rel",
             "mismatched", "kinks"]]
    for t in report.tensors:
        bound = ">=" if t.mismatched_is_lower_bound else ""
        by_element = t.measured > 0  # else verified by random directions only
        rows.append([t.name, str(t.shape), t.dtype, t.mode, t.status,
                     sci(t.max_abs_err) if by_element else "-",
                     sci(t.max_rel_err) if by_element else "-",
                     f"{bound}{t.mismatched} / {t.size}", str(t.kinks.met)])
    lines += table(rows)
    for t in failed:
        lines.append("")
        rows = [[f"{t.name}: worst elements", "analytic", "numeric", "abs err", "rel err", ""]]
        for m in t.worst[:WORST_SHOWN]:
            rel = m.abs_err / abs(m.numeric) if m.numeric else float("inf")
            rows.append([f"  {t.element(m.index)}", digits(m.analytic, m.numeric),
                         digits(m.numeric, m.analytic), sci(m.abs_err), sci(rel), m.note])
        lines += table(rows)
    if report.diagnoses:
        lines += ["", "likely cause:"] + [f"  - {d.tensor} ({d.kind}): {d.text}"
                                          for d in report.diagnoses]
    for t in unverified:
        lines += ["", f"{t.name}: UNVERIFIED at {t.unverified} element(s): {t.unverified_reason}"]
    if report.problems:
        lines += ["", "problems:"] + [f"  - {p}" for p in report.problems]
    if report.warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in report.warnings]
    if any(t.mode == "fast" and t.measured == 0 for t in report.tensors):
        lines += ["", "'-': verified by a random-direction test (two steps, error estimated "
                  "from both), no element needed a separate look."]
    lines.append("")
    lines.append(_kink_line(report.tensors, str(report.options.get("kinks"))))
    lines.extend(_tolerance_lines(report.tensors))
    ev = report.evaluations
    lines.append(f"evaluations: {ev.get('loss', 0)} loss, {ev.get('grads', 0)} gradient")
    if report.repeat:
        lines.append(f"repeat with: {report.repeat}")
    return "\n".join(lines)


def _kink_line(tensors: list[TensorResult], mode: str) -> str:
    total = KinkTally()
    for t in tensors:
        for key in vars(total):
            setattr(total, key, getattr(total, key) + getattr(t.kinks, key))
    if total.met == 0:
        return "kinks: 0 met."
    if mode == "strict":
        return f"kinks: {total.met} met, checked as ordinary points (kinks='strict')."
    return (f"kinks: {total.met} met: {total.by_hull} settled by the hull of one-sided "
            f"derivatives, {total.by_jitter} by a re-check at a jittered point, "
            f"{total.unverified} unverified, {total.skipped} skipped.")


def _tolerance_lines(tensors: list[TensorResult]) -> list[str]:
    """The steps and both tolerance levels, once per distinct setting: what an element
    must clear to be wrong, and how narrow its error bar must be to be verified."""
    seen: dict[tuple[Any, ...], list[str]] = {}
    for t in tensors:
        key = (t.dtype, t.relative_step, t.detect_rtol, t.detect_atol, t.rtol, t.atol,
               t.tolerance_source)
        seen.setdefault(key, []).append(t.name)
    lines = []
    for (dtype, step, detect_rtol, detect_atol, rtol, atol, source), names in seen.items():
        which = "" if len(seen) == 1 else f" [{', '.join(names)}]"
        lines.append(f"steps: h = {sci(step)} * max(1, |v|) ({dtype}); wrong if |a-n| > "
                     f"{general(detect_rtol)}*|n| + {general(detect_atol)} + its measured error "
                     f"bar; verified if that bar <= {general(rtol)}*|n| + {general(atol)} "
                     f"({source}){which}")
    return lines
