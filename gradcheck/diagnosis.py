"""What kind of mistake a wrong gradient is: named from the full analytic and numeric arrays.

``diagnose(report)`` looks at each failing tensor and tests a short list of hypotheses, the
classic hand-derivation mistakes, in a fixed order; the first that holds is the diagnosis:

=================  ==========================================================================
kind               evidence (over every measured element, to each element's error bar)
=================  ==========================================================================
tie_counted        every mismatch is a tied element the engine failed along the tie (its
                   warnings say which): moved together, their gradients add up to more than
                   the loss's slope (a tied maximum's upstream given to every tied element)
tie_dropped        the same, and their gradients add up to 0 (a tie routed nowhere)
kink_convention    every mismatch sits on a kink (kinks="hull"): a convention outside the
                   one-sided derivatives, like ReLU'(0) = 2
at_kinks           every mismatch sits on a kink checked as an ordinary point (kinks="strict")
swapped            analytic = another tensor's numeric (same shape)
zero               analytic is 0 everywhere, numeric is not
sign               analytic = -numeric
scale              analytic = c x numeric for one c (a reason named only when c or 1/c is 2,
                   one dimension of the input or output, or their number of elements)
transpose          analytic = numeric.T (square 2-D; the diagonal right, the rest mirrored)
reversed           analytic = numeric reversed along an axis, or all axes (a flipped kernel)
shifted            analytic = numeric shifted by one along an axis (an index off by one), the
                   slice the shift leaves over wrapped around, 0, or said to hold other values
missing_mask       analytic nonzero where numeric is 0, right elsewhere: at (nearly) all the
                   zeros, or at exactly the zeros a threshold on the input singles out
                   ("x > 6": the upper mask of a clip); the condition named only when exact
inverted_mask      analytic nonzero exactly where numeric is 0, and 0 where numeric is not
offset             analytic - numeric is one constant on one element per row, one column,
                   one row, or every element; 0 elsewhere
value_term         analytic - numeric = c x the tensor's own value (weight decay forgotten)
one_index          analytic - numeric depends on one index only (one constant per column)
zero / sign /      the same, on a region of the input only ("where x < 0"), right elsewhere
scale (``where``)
slice              every wrong element in one row (column, index along an axis), and there
                   analytic = 0, -numeric or c x numeric; every other element right
isolated           a few elements wrong (at most 10, at most a quarter), the rest right
needs_full         fast mode measured too few elements, or not a fair sample of them:
                   mode="full" would diagnose (with what the measured ones show)
=================  ==========================================================================

Rules that keep a diagnosis honest (a wrong diagnosis is worse than none):

- only failing tensors get a diagnosis, at most one each;
- a hypothesis must hold at every measured element off the kinks, with the error bar the
  engine accepted at that element (``TensorResult.error_bar``), scaled where the hypothesis
  scales the numeric value (c x numeric is allowed |c| x the bar);
- it needs evidence: elements where the numbers are clearly nonzero (4 error bars), and
  patterns that cannot arise by accident (a constant over several elements, a structure);
- where the hypothesis cannot be told apart from a right gradient (a symmetric matrix
  under transpose; an all-zero numeric gradient under sign or scale), it is not claimed;
- a rearrangement (reversed, shifted) is read only off a mostly nonzero gradient: the few
  nonzeros of a sparse one (one per pooling window) can line up by chance;
- a condition on the input ("x < 0") is named only when it holds at exactly the elements
  it describes: at every one of them and at no other measured element;
- a reason for a scale factor is given only where it is one plain fact (8 is the batch
  size); "the batch size" is axis 0 of the input of check_layer or check_function, or of
  a first checked argument whose axis 0 the output shares (never a weight's rows).

Fast mode measures only the elements its random-direction tests point to, which are
biased toward the wrong ones: no pattern of the whole tensor is read from them. When
localization finished and few are wrong, they are "isolated"; otherwise the diagnosis is
"needs_full", with what the measured elements show (analytic = -numeric in each of them).

Every test is a few vectorized numpy passes over the elements, O(n) (one_index takes a
median per index, O(n log n)): about 0.4 s for a million-element tensor no pattern fits.
"""
from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.text import element, general, unravel

if TYPE_CHECKING:
    from gradcheck.report import Report, TensorResult

KINDS = ("tie_counted", "tie_dropped", "kink_convention", "at_kinks", "swapped", "zero", "sign",
         "scale", "transpose", "reversed", "shifted", "missing_mask", "inverted_mask", "offset",
         "value_term", "one_index", "slice", "isolated", "needs_full")
ISOLATED_MAX = 10  # "a few": at most this many wrong elements ...
ISOLATED_SHARE = 0.25  # ... and at most this share of the measured ones
CLEAR = 4.0  # a value is clearly nonzero beyond this many error bars
FIT_EVIDENCE = 3  # clearly nonzero elements a fitted factor (or a shift) needs
# wrong elements a threshold on x must single out among the zeros of the numeric gradient
# before it is named as a missing mask (two could be the two largest x by chance)
SUBSET_EVIDENCE = 3
LISTED = 8  # elements quoted in a text
# misbehaviour that makes the numeric gradient itself untrustworthy: no diagnosis then
UNRELIABLE = ("nondeterministic", "state_changed", "in_place")
KEPT = 50  # elements kept in Diagnosis.elements


@dataclass
class Diagnosis:
    """A named mistake in one tensor's gradient, with its evidence.

    ``kind`` is one of :data:`KINDS`; ``text`` is one sentence for a person. Kind-specific
    fields: ``factor`` (scale; -1 for sign, 0 for zero; value_term's c; slice's c),
    ``other`` (swapped: the tensor whose gradient this one holds), ``constant`` (offset),
    ``where`` (the input's condition a pattern follows, e.g. "x < 0"; offset's subset; the
    axis of reversed, shifted, one_index; slice's "row 3"), ``elements`` (isolated, offset,
    missing_mask, kink_convention, tie_counted, tie_dropped, needs_full: index tuples, at
    most 50), ``count`` (elements the evidence covers).

    >>> d = Diagnosis("W", "sign", "analytic = -numeric in all 12 elements", factor=-1.0)
    >>> d.to_dict()["factor"]
    -1.0
    """

    tensor: str
    kind: str
    text: str
    factor: float | None = None
    other: str | None = None
    constant: float | None = None
    where: str | None = None
    elements: list[tuple[int, ...]] = field(default_factory=list)
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: every key always present, indices as lists, non-finite as strings."""
        def number(value: float | None) -> float | str | None:
            if value is None or math.isfinite(value):
                return value
            return str(value)

        return {"tensor": self.tensor, "kind": self.kind, "text": self.text,
                "factor": number(self.factor), "other": self.other,
                "constant": number(self.constant), "where": self.where,
                "elements": [list(index) for index in self.elements], "count": self.count}

    def __str__(self) -> str:
        return f"{self.tensor}: {self.kind}: {self.text}"


def diagnose(report: Report) -> list[Diagnosis]:
    """Name the mistake in each failing tensor of ``report``, where the evidence is solid.

    Needs the full arrays of each tensor (``analytic``, ``numeric``, ``error_bar``,
    ``kink``, ``failed``); a tensor without them, or ok, gets none. Never raises nor
    warns: a diagnosis is an aid to reading the report, and the verdict must not be lost
    to it.

    >>> import numpy as np, gradcheck as gc
    >>> p = {"w": np.array([1.0, -2.0, 3.0])}
    >>> rep = gc.check_params(lambda: float(np.sum(p["w"] ** 2)), lambda: {"w": -2 * p["w"]}, p)
    >>> [(d.tensor, d.kind) for d in diagnose(rep)]
    [('w', 'sign')]
    """
    # the numbers are the report's, NaN where unmeasured and as large or small as the
    # user's loss made them: every rule refuses a non-finite fit on its own
    with np.errstate(all="ignore"):
        return _diagnose_all(report)


def _diagnose_all(report: Report) -> list[Diagnosis]:
    try:
        if any(getattr(p, "kind", "") in UNRELIABLE for p in report.problems):
            return []  # the numeric gradient itself cannot be trusted
        if all(getattr(t, "ok", False) for t in report.tensors):
            return []  # nothing failed: nothing to name (and no arrays to read)
        views = [v for v in (_View.of(t) for t in report.tensors) if v is not None]
        context = _Context.of(report, views)
    except Exception:  # malformed report: nothing to say, and nothing to break
        return []
    found = []
    for view in views:
        try:
            diagnosis = _diagnose_tensor(view, context)
        except Exception:  # an aid must never cost the user the report itself
            diagnosis = None
        if diagnosis is not None:
            if view.unverified:
                diagnosis.text += (f" ({view.unverified} element(s) could not be verified; "
                                   "the pattern is read from the others)")
            found.append(diagnosis)
    return found


# ---------------------------------------------------------------------------- inputs


@dataclass
class _View:
    """One tensor's arrays, flattened to what the tests need."""

    name: str
    shape: tuple[int, ...]
    status: str
    mode: str
    lower_bound: bool
    a: np.ndarray  # analytic, float64, full shape
    n: np.ndarray  # numeric (NaN where not measured)
    bar: np.ndarray  # error bar (NaN where not measured), with rounding slack
    kink: np.ndarray
    failed: np.ndarray  # judged wrong and measured
    measured: np.ndarray
    usable: np.ndarray  # measured and off the kinks: where a hypothesis is tested
    value: np.ndarray | None
    unverified: int = 0  # elements the engine could not decide (UNVERIFIED)

    @staticmethod
    def of(t: TensorResult) -> _View | None:
        shape = tuple(t.shape)
        arrays = [getattr(t, name, None) for name in ("analytic", "numeric", "error_bar")]
        if any(array is None for array in arrays):
            return None
        a, n, bar = (np.asarray(array, dtype=np.float64) for array in arrays)
        if not (a.shape == n.shape == bar.shape == shape):
            return None
        kink = _bool_like(getattr(t, "kink", None), shape)
        failed = _bool_like(getattr(t, "failed", None), shape)
        measured = np.isfinite(a) & np.isfinite(n) & np.isfinite(bar)
        # the analytic side rounds too: a product like c x numeric is exact only to eps
        bar = bar + 8 * np.finfo(np.float64).eps * (np.abs(a) + np.abs(n))
        value = getattr(t, "value", None)
        value = None if value is None else np.asarray(value, dtype=np.float64)
        if value is not None and value.shape != shape:
            value = None
        status = getattr(t, "status", None) or ("ok" if t.ok else "FAILED")
        unsure = np.zeros(shape, dtype=bool)
        if getattr(t, "unverified", 0):
            # elements the engine could not decide: their error bars are not to be trusted,
            # so those that disagree with their bar are left out like unmeasured ones
            unsure = measured & ~failed & (np.abs(a - n) > bar)
            measured = measured & ~unsure
        return _View(t.name, shape, status, t.mode, bool(t.mismatched_is_lower_bound), a, n,
                     bar, kink, failed & measured, measured, measured & ~kink, value,
                     int(getattr(t, "unverified", 0) or 0))

    def element(self, index: tuple[int, ...]) -> str:
        return element(self.name, index)

    def slice_name(self, axis: int, index: int) -> str:
        """``W[:, 2]``: every element with ``index`` along ``axis``."""
        places = (str(index) if i == axis else ":" for i in range(len(self.shape)))
        return f"{self.name}[{', '.join(places)}]"


def _bool_like(array: object, shape: tuple[int, ...]) -> np.ndarray:
    if array is None:
        return np.zeros(shape, dtype=bool)
    result = np.asarray(array, dtype=bool)
    return result if result.shape == shape else np.zeros(shape, dtype=bool)


@dataclass(frozen=True)
class _TieGroup:
    """Tied elements the engine failed together (``report.ties``)."""

    count: int  # elements in the group (in every tensor it spans)
    value: str  # the tied value, as a person reads it
    total: float  # their analytic gradients added up
    slope: float | None  # the loss's slope when they move together (None: judged off it)
    across: bool  # the group spans several tensors


def _tie_groups(findings: Iterable[Any]) -> dict[str, list[_TieGroup]]:
    """The failed tie groups of each tensor they touch."""
    groups: dict[str, list[_TieGroup]] = {}
    for finding in findings:
        tensors = finding.tensors
        group = _TieGroup(len(finding.members), general(finding.value), float(finding.total),
                          None if finding.slope is None else float(finding.slope),
                          len(tensors) > 1)
        for name in tensors:
            groups.setdefault(name, []).append(group)
    return groups


@dataclass
class _Context:
    """What the report says about the check as a whole."""

    views: list[_View]
    kinks: str
    input_name: str | None
    dims: list[tuple[int, str]]  # (dimension, "the batch size (axis 0 of x)")
    ties: dict[str, list[_TieGroup]]  # failed tie groups per tensor

    @staticmethod
    def of(report: Report, views: list[_View]) -> _Context:
        input_name = getattr(report, "input_name", None)
        output_shape = getattr(report, "output_shape", None)
        shapes: list[tuple[str, tuple[int, ...]]] = []
        by_name = {v.name: v for v in views}
        if input_name is not None and input_name in by_name:
            shapes.append((input_name, by_name[input_name].shape))
        if output_shape is not None:
            shapes.append(("the output", tuple(output_shape)))
        if input_name is None:  # check_params: no input; the tensors' own dimensions
            shapes += [(v.name, v.shape) for v in views]
        batch = _batch_owner(input_name, by_name, output_shape, _door(report))
        kinks = str(getattr(report, "options", {}).get("kinks", "subgradient"))
        return _Context(views, kinks, input_name, _dimensions(shapes, batch),
                        _tie_groups(getattr(report, "ties", [])))


def _door(report: Report) -> str:
    """The front door that made the report (``check_layer``)."""
    return str(getattr(report, "door", "") or "")


def _batch_owner(input_name: str | None, by_name: dict[str, _View],
                 output_shape: tuple[int, ...] | None, door: str) -> str | None:
    """The input whose axis 0 is the batch: the input x of check_layer or check_function,
    or a first checked argument whose axis 0 runs along the output's axis 0 too. Axis 0 of
    a first argument alone may be anything (check_loss(f, W, X, y): W's rows)."""
    if input_name is None or input_name not in by_name:
        return None
    shape = by_name[input_name].shape
    if len(shape) < 2:
        return None
    if door in ("check_layer", "check_function"):
        return input_name
    if output_shape is None or len(output_shape) < 1 or output_shape[0] != shape[0]:
        return None
    return input_name


def _dimensions(shapes: list[tuple[str, tuple[int, ...]]],
                batch: str | None) -> list[tuple[int, str]]:
    """Each dimension size with everything it is (``the batch size (axis 0 of x) and axis
    1 of the output``), and the number of elements of each shape of rank 2 or more."""
    names: dict[int, list[str]] = {}
    for owner, shape in shapes:
        for axis, size in enumerate(shape):
            if axis == 0 and batch is not None and owner == "the output":
                continue  # the batch again: said once, as the input's
            where = f"axis {axis} of {owner}"
            if axis == 0 and owner == batch:
                where = f"the batch size ({where})"
            names.setdefault(int(size), []).append(where)
    for owner, shape in shapes:  # a mean over every element divides by their number
        if len(shape) >= 2:
            names.setdefault(int(np.prod(shape)), []).append(
                f"the number of elements of {owner} (" + " x ".join(map(str, shape)) + ")")
    return [(size, " and ".join(dict.fromkeys(wheres))) for size, wheres in names.items()
            if size >= 2]


# ---------------------------------------------------------------------------- the tests


def _diagnose_tensor(v: _View, ctx: _Context) -> Diagnosis | None:
    if v.status != "FAILED" or v.a.size == 0:
        return None
    partial = v.mode == "fast" and int(v.measured.sum()) < v.a.size
    if partial:
        return _fast(v, ctx)
    if not v.failed.any():
        return None
    tie = _tie(v, ctx)
    if tie is not None:
        return tie
    if not (v.failed & ~v.kink).any():
        # only kinks fail: the numbers there straddle a kink, so no pattern can be read from
        # them; what they are, the kinks mode says
        return _kinks_only(v, ctx) or _isolated(v, ctx)
    tests = (_swapped, _zero, _sign, _scale, _transpose, _reversed, _shifted, _missing_mask,
             _inverted_mask, _offset, _value_term, _one_index, _region, _slice, _isolated)
    for test in tests:
        found = test(v, ctx)
        if found is not None:
            return found
    return None


def _fast(v: _View, ctx: _Context) -> Diagnosis:
    """Fast mode: the few wrong elements localization found, or a word that full mode would
    tell. The measured elements are those the random directions pointed to, mostly wrong
    ones: a pattern among them says nothing about the rest of the tensor."""
    if v.failed.any() and not v.lower_bound:  # localization finished: every wrong one known
        found = _tie(v, ctx) or _isolated(v, ctx)
        if found is not None:
            return found
    return _needs_full(v)


def _needs_full(v: _View) -> Diagnosis:
    measured, total = int(v.measured.sum()), v.a.size
    tail = "mode='full' would diagnose it (2 loss evaluations per element)"
    k = int(v.failed.sum())
    if not k:
        return Diagnosis(
            v.name, "needs_full",
            f"fast mode measured {measured} of {total} elements of {v.name}, too few to name "
            f"the mistake; {tail}", count=measured)
    more = "; it stopped looking there, and more may be wrong" if v.lower_bound else ""
    shown, indices = _listing(v, v.failed)
    relation = _relation(v, v.failed & ~v.kink)
    seen = f"; at every wrong one, {relation[1]}" if relation else ""
    return Diagnosis(
        v.name, "needs_full",
        f"fast mode measured {measured} of {total} elements of {v.name} one by one: those its "
        f"random-direction tests pointed to, {k} of them wrong ({shown}){more}{seen}. They "
        f"are not a fair sample of {v.name}, so no pattern is claimed for the whole tensor: "
        f"{tail}", elements=indices, count=measured)


def _clear(values: np.ndarray, bar: np.ndarray) -> np.ndarray:
    """Clearly nonzero: beyond CLEAR error bars (False where not measured)."""
    return np.abs(values) > CLEAR * bar


def _fits(a: np.ndarray, predicted: np.ndarray, bar: np.ndarray, mask: np.ndarray) -> bool:
    return bool(mask.any() and np.all(np.abs(a[mask] - predicted[mask]) <= bar[mask]))


def _count(n: int, noun: str = "element", plural: str = "") -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _all(n: int, v: _View | None = None) -> str:
    """``all 37 elements``, saying so when elements on kinks were left out."""
    off = " off the kinks" if v is not None and (v.measured & v.kink).any() else ""
    return f"the only element{off}" if n == 1 else f"all {n} elements{off}"


def _number(value: float) -> str:
    """``general``, with 0 for -0 (a sign on a zero says nothing to a reader)."""
    return general(value + 0.0)


def _pair(a: float, n: float) -> str:
    """``analytic 1.94531 vs numeric 1.94532``: general()'s six digits, more where it takes
    more to tell them apart."""
    shown_a, shown_n = _number(a), _number(n)
    for digits in range(7, 18):
        if shown_a != shown_n:
            break
        shown_a, shown_n = f"{a + 0.0:.{digits}g}", f"{n + 0.0:.{digits}g}"
    return f"analytic {shown_a} vs numeric {shown_n}"


def _element_note(a: float, n: float, bar: float) -> str:
    """What one wrong element's two numbers say that they do not show: a flipped sign, a
    numeric value that is 0 within its error bar."""
    if abs(n) > CLEAR * bar and abs(a + n) <= bar:
        return ", the sign flipped"
    if n != 0 and abs(n) <= bar:
        return ", numeric 0 within its error bar"
    return ""


def _listing(v: _View, mask: np.ndarray) -> tuple[str, list[tuple[int, ...]]]:
    flat = np.flatnonzero(mask.reshape(-1))
    indices = [unravel(int(k), v.shape) for k in flat[:KEPT]]
    shown = ", ".join(v.element(i) for i in indices[:LISTED])
    return shown + (", ..." if len(flat) > LISTED else ""), indices


def _tie(v: _View, ctx: _Context) -> Diagnosis | None:
    """Every mismatch a tied element the engine failed along the tie: the gradients of a
    tie add up to more than the loss gives it (counted for every element), or to 0.

    The engine fails a group's every element, so when the groups of this tensor hold as
    many elements as failed, the failed elements are exactly the tied ones."""
    groups = ctx.ties.get(v.name, [])
    k = int(v.failed.sum())
    if not groups or any(g.across for g in groups) or sum(g.count for g in groups) != k:
        return None
    shown, indices = _listing(v, v.failed)
    values = ", ".join(dict.fromkeys(g.value for g in groups))
    head = (f"the {_count(k, 'mismatch', 'mismatches')} are tied elements ({shown}; tied at "
            f"{values})")
    if ctx.kinks == "hull":  # the engine only ties elements inside their hulls then
        head += ", each within its one-sided derivatives alone"
    if all(g.total == 0 for g in groups):
        return Diagnosis(
            v.name, "tie_dropped",
            f"{head}, but together they get 0 while the loss moves when they move together: "
            "the upstream gradient of a tied maximum reaches none of them (a strict comparison "
            "finds no single maximum); give it to one tied element, or split it",
            elements=indices, count=k)
    ratios = [g.total / g.slope for g in groups if g.slope]
    if len(ratios) != len(groups) or not all(r > 1.001 for r in ratios):
        return None  # less than the loss gives, or no slope to compare: no story to tell
    return Diagnosis(
        v.name, "tie_counted",
        f"{head}, but moved together their gradients add up to {_times(ratios)} the slope of "
        f"the loss ({_sums(groups)}): the upstream gradient of a tied maximum is counted more "
        "than once, where the tied elements must share it (give it to one element, or split "
        "it; (window == window.max()) * dout gives it to every one)", elements=indices, count=k)


def _times(ratios: list[float]) -> str:
    """``2 times``, ``1.33333 times``, ``2 to 4 times``."""
    rounded = [round(r) if abs(r - round(r)) <= 1e-4 * r else r for r in ratios]
    low, high = min(rounded), max(rounded)
    return f"{_number(low)} times" if low == high else f"{_number(low)} to {_number(high)} times"


def _sums(groups: list[_TieGroup]) -> str:
    slope = groups[0].slope
    if len(groups) == 1 and slope is not None:
        return f"{_number(groups[0].total)} against {_number(slope)}"
    return f"in each of the {len(groups)} tie groups"


def _kinks_only(v: _View, ctx: _Context) -> Diagnosis | None:
    """Every mismatch on a kink, everything else right."""
    if not np.all(v.kink[v.failed]) or ctx.ties.get(v.name):
        # a tie failed as a group: each of its elements is inside its one-sided range, so
        # "outside every valid convention" would be false for it
        return None
    shown, indices = _listing(v, v.failed)
    k = int(v.failed.sum())
    first = indices[0]
    at = ""
    if v.value is not None:
        values = np.unique(v.value[v.failed])
        if len(values) == 1:
            at = f", where {v.name} = {_number(float(values[0]))}"
    # "the one mismatch sits", "all 3 mismatches sit"
    mismatches = ("the one mismatch sits on a kink" if k == 1
                  else f"all {_count(k, 'mismatch', 'mismatches')} sit on kinks")
    example = (f"e.g. {v.element(first)}: analytic {_number(float(v.a[first]))}, central "
               f"difference {_number(float(v.n[first]))}")
    if ctx.kinks == "hull":
        return Diagnosis(
            v.name, "kink_convention",
            f"{mismatches} ({shown}{at}) and every other element is "
            f"right: backward's value there lies outside the one-sided derivatives, so "
            f"outside every valid convention ({example}; ReLU'(0) must be in [0, 1], "
            "|x|'(0) in [-1, 1])", elements=indices, count=k)
    if ctx.kinks == "strict":
        return Diagnosis(
            v.name, "at_kinks",
            f"{mismatches} ({shown}{at}), checked as ordinary points "
            f"under kinks='strict' ({example}); every other element is right. A valid "
            "convention fails there too: re-run with kinks='hull' to tell", elements=indices,
            count=k)
    return None


def _swapped(v: _View, ctx: _Context) -> Diagnosis | None:
    """This tensor's analytic is another tensor's numeric."""
    for u in ctx.views:
        if u is v or u.shape != v.shape:
            continue
        both = v.usable & u.usable
        if both.sum() < max(1, v.usable.sum() // 2) or not (both & _clear(u.n, u.bar)).any():
            continue
        if not _fits(v.a, u.n, u.bar, both):
            continue
        mutual = _fits(u.a, v.n, v.bar, both) and (both & _clear(v.n, v.bar)).any()
        k = int(both.sum())
        text = (f"the analytic gradient of {v.name} equals the numeric gradient of {u.name} "
                f"in {_all(k, v)}: ")
        text += (f"the gradients of {v.name} and {u.name} are swapped" if mutual else
                 f"{v.name} was given {u.name}'s gradient (a copy-paste, or the wrong key)")
        return Diagnosis(v.name, "swapped", text, other=u.name, count=k)
    return None


def _zero(v: _View, ctx: _Context, where: np.ndarray | None = None,
          condition: str = "") -> Diagnosis | None:
    """Analytic exactly 0 (on the region), numeric not."""
    mask = v.usable if where is None else v.usable & where
    region = v.a if where is None else v.a[where]
    if region.size == 0 or np.any(region != 0) or not (mask & _clear(v.n, v.bar)).any():
        return None
    k = int(mask.sum())
    worst = np.unravel_index(int(np.argmax(np.where(mask, np.abs(v.n), -1.0))), v.shape)
    worst_text = (f"largest numeric {_number(float(v.n[worst]))} at "
                  f"{v.element(tuple(int(i) for i in worst))}")
    if where is None:
        text = (f"analytic is 0 in {_all(k, v)} while numeric is not ({worst_text}): this "
                "gradient is never computed (left at zeros, or overwritten)")
    else:
        text = (f"analytic is 0 at all {_count(k)} where {condition} while numeric is not "
                f"({worst_text}), and right where it is not: the derivative on that side is "
                "dropped in backward")
    return Diagnosis(v.name, "zero", text, factor=0.0, where=condition or None, count=k)


def _sign(v: _View, ctx: _Context, where: np.ndarray | None = None,
          condition: str = "") -> Diagnosis | None:
    mask = v.usable if where is None else v.usable & where
    if not (mask & _clear(v.n, v.bar)).any() or not _fits(v.a, -v.n, v.bar, mask):
        return None
    k = int(mask.sum())
    if where is None:
        text = (f"analytic = -numeric in {_all(k, v)}: the sign is flipped (a minus sign lost or "
                "added, or a - b written as b - a)")
    else:
        text = (f"analytic = -numeric at all {_count(k)} where {condition}, right elsewhere: "
                "the sign of the derivative on that side is flipped")
    return Diagnosis(v.name, "sign", text, factor=-1.0, where=condition or None, count=k)


def _candidates(ctx: _Context) -> list[tuple[float, str]]:
    """Scale factors with a plain reason each: 2, one dimension, a number of elements (and
    their inverses). Anything composite (2 x 5, 8/2) would be a story, not a fact."""
    mean = "a sum where a mean was meant, or the other way round"
    two = "the 2 of d/dx x^2 = 2x"
    dims = [(d, where) for d, where in ctx.dims if d != 2]
    two_is = next((where for d, where in ctx.dims if d == 2), None)
    if two_is is None:
        named = [(2.0, f"a factor 2 ({two}, or a 1/2 in the loss)"),
                 (0.5, f"a factor 1/2 ({two} lost, or a 1/2 in the loss)")]
    else:  # both are plain facts; which one it is, the numbers cannot tell
        why = f"2 is {two_is}, and also {two}: {mean}, or a factor 2 lost or added"
        named = [(2.0, why), (0.5, why)]
    for d, where in dims:
        named += [(float(d), f"{d} is {where}; {mean}"), (1.0 / d, f"{d} is {where}; {mean}")]
    return named + [(-c, why + ", and the sign flipped") for c, why in named]


def _scale(v: _View, ctx: _Context, where: np.ndarray | None = None,
           condition: str = "") -> Diagnosis | None:
    """analytic = c x numeric, one c."""
    mask = v.usable if where is None else v.usable & where
    if not (mask & _clear(v.n, v.bar)).any():
        return None
    k = int(mask.sum())
    over = f"in {_all(k, v)}" if where is None else f"at all {_count(k)} where {condition}"
    rest = "" if where is None else ", right elsewhere"
    named = _named_factor(v, ctx, mask)
    if named is not None:
        c, why = named
        return Diagnosis(v.name, "scale",
                         f"analytic = {_factor_text(c)} x numeric {over}{rest}: {why}",
                         factor=c, where=condition or None, count=k)
    fitted = _fitted_factor(v, mask)
    if fitted is None:
        return None
    why = ("one factor in every element: a constant multiplied in, or missing, in backward"
           if where is None else "the slope backward uses on that side is off by this factor")
    return Diagnosis(v.name, "scale",
                     f"analytic = {_fitted_text(fitted)} x numeric {over}{rest}: {why}",
                     factor=fitted, where=condition or None, count=k)


def _named_factor(v: _View, ctx: _Context, mask: np.ndarray) -> tuple[float, str] | None:
    """The first candidate factor (with its reason) that holds at every element of mask."""
    clear = mask & _clear(v.n, v.bar)
    # the most telling element (largest |numeric| in error bars) rules out most candidates
    # with one comparison each, before any is held to every element
    best = int(np.argmax(np.where(clear, np.abs(v.n) / v.bar, -1.0)))
    a0, n0, bar0 = v.a.flat[best], v.n.flat[best], v.bar.flat[best]
    for c, why in _candidates(ctx):
        if not abs(a0 - c * n0) <= abs(c) * bar0:
            continue
        shows = (clear & _clear(v.a, abs(c) * v.bar)).any()
        if shows and _fits(v.a, c * v.n, abs(c) * v.bar, mask):
            return c, why
    return None


def _fitted_factor(v: _View, mask: np.ndarray) -> float | None:
    """One factor c with analytic = c x numeric at every element of mask, fitted from the
    clearly nonzero ones (weighted by their error bars) and held to all of them with the
    fit's own uncertainty added; None when it does not hold, or is 1 or 0."""
    clear = mask & _clear(v.n, v.bar)
    if int(clear.sum()) < FIT_EVIDENCE:
        return None
    weights = 1.0 / v.bar[clear] ** 2
    information = float(np.sum(weights * v.n[clear] ** 2))
    c = float(np.sum(weights * v.a[clear] * v.n[clear]) / information)
    sigma = 1.0 / math.sqrt(information)
    if not math.isfinite(c) or not (clear & _clear(v.a, abs(c) * v.bar)).any():
        return None
    if abs(c - 1.0) <= CLEAR * sigma or abs(c) <= CLEAR * sigma:
        return None  # not told apart from a right gradient, nor from zero
    if not _fits(v.a, c * v.n, max(abs(c), 1.0) * v.bar + 2 * sigma * np.abs(v.n), mask):
        return None
    return c


def _relation(v: _View, mask: np.ndarray) -> tuple[float, str] | None:
    """What analytic is at every element of mask, in terms of numeric: 0, -numeric or one
    c x numeric (no reason given: the elements may be any subset), with that c."""
    clear = mask & _clear(v.n, v.bar)
    if not clear.any():
        return None
    if np.all(v.a[mask] == 0):
        return 0.0, "analytic is 0"
    if _fits(v.a, -v.n, v.bar, mask):
        return -1.0, "analytic = -numeric"
    c = _fitted_factor(v, mask)
    return None if c is None else (c, f"analytic = {_fitted_text(c)} x numeric")


def _fitted_text(c: float) -> str:
    """A fitted factor: 1/n shown as such; 1.00002, not 1, when it is near 1."""
    if abs(c - 1) > 1e-4:
        return _factor_text(c)
    return f"{c:.{_digits(c)}f}"


def _digits(c: float) -> int:
    """Decimals that show how far c is from 1 (two significant digits of c - 1)."""
    return max(2, min(12, 1 - math.floor(math.log10(abs(c - 1)))))


def _factor_text(c: float) -> str:
    """``0.125 (= 1/8)``: a factor below 1 that is the inverse of a whole number (to the
    precision a fitted factor has) shown as such."""
    if abs(c) < 1 and abs(round(1 / c) - 1 / c) < 1e-9 * abs(1 / c):
        inverse = f"1/{round(1 / c)}" if c > 0 else f"-1/{round(-1 / c)}"
        return f"{_number(c)} (= {inverse})"
    return _number(c)


def _transpose(v: _View, ctx: _Context) -> Diagnosis | None:
    """analytic = numeric.T on a square matrix that is not symmetric."""
    if len(v.shape) != 2 or v.shape[0] != v.shape[1] or v.shape[0] < 2:
        return None
    both = v.usable & v.usable.T
    bar = np.maximum(v.bar, v.bar.T)
    asymmetric = both & (np.abs(v.n - v.n.T) > CLEAR * (v.bar + v.bar.T))
    if not asymmetric.any() or not _fits(v.a, v.n.T, bar, both):
        return None
    k, size = int(both.sum()), v.shape[0]
    return Diagnosis(
        v.name, "transpose",
        f"analytic = numeric transposed in {_all(k, v)}: {v.name}[i, j] holds the value of "
        f"{v.name}[j, i], and the {size} diagonal elements, which a transpose leaves in place, "
        "are right (a product in the wrong order, e.g. g.T @ x for x.T @ g, or a missing .T)",
        count=k)


def _reversed(v: _View, ctx: _Context) -> Diagnosis | None:
    """analytic = numeric reversed along one axis, two axes (a conv kernel's (kh, kw): each
    kernel rotated by 180 degrees) or all axes."""
    long_axes = [axis for axis, size in enumerate(v.shape) if size >= 2]
    axes: list[tuple[int, ...]] = [
        *((axis,) for axis in long_axes),
        *itertools.combinations(long_axes, 2),
        *([tuple(long_axes)] if len(long_axes) > 2 else [])]
    for axis in axes:
        flipped_n, flipped_bar = np.flip(v.n, axis), np.flip(v.bar, axis)
        both = v.usable & np.flip(v.usable, axis)
        asymmetric = both & (np.abs(v.n - flipped_n) > CLEAR * (v.bar + flipped_bar))
        if not asymmetric.any() or not _mostly_nonzero(flipped_n, flipped_bar, both):
            continue
        if not _fits(v.a, flipped_n, np.maximum(v.bar, flipped_bar), both):
            continue
        k = int(both.sum())
        along = (f"along axis {axis[0]}" if len(axis) == 1
                 else f"along axes {axis[0]} and {axis[1]} (rotated by 180 degrees)"
                 if len(axis) == 2 else "along every axis (rotated by 180 degrees)")
        return Diagnosis(
            v.name, "reversed",
            f"analytic = numeric reversed {along} in {_all(k, v)}: element i holds the value "
            "of element n-1-i (a kernel flipped: convolution where cross-correlation was "
            "meant, or the other way round; or an index counted from the wrong end)",
            where=along, count=k)
    return None


def _mostly_nonzero(moved: np.ndarray, bar: np.ndarray, mask: np.ndarray) -> bool:
    """The values a rearrangement (a reversal, a shift) moves are clearly nonzero at two
    elements of mask or more, and at more than half of them: in a sparse gradient (one
    nonzero per pooling window) a rearrangement can line up the few nonzeros by chance."""
    carried = int((mask & _clear(moved, bar)).sum())
    return carried >= 2 and 2 * carried > int(mask.sum())


def _shifted(v: _View, ctx: _Context) -> Diagnosis | None:
    """analytic[i] = numeric[i - s] along one axis (s = +-1) at every element that has an
    i - s: an index off by one. The slice the shift leaves over (the edge) may hold
    anything: it wraps around, is 0, or is said to hold other values."""
    for axis, size in enumerate(v.shape):
        if size < 3:
            continue
        for shift in (1, -1):
            moved_n = np.roll(v.n, shift, axis)
            moved_bar = np.roll(v.bar, shift, axis)
            edge = np.zeros(v.shape, dtype=bool)
            edge_index = 0 if shift == 1 else size - 1
            index: list[Any] = [slice(None)] * len(v.shape)
            index[axis] = edge_index
            edge[tuple(index)] = True
            both = v.usable & np.roll(v.usable, shift, axis)
            inside = both & ~edge
            telling = inside & (np.abs(v.n - moved_n) > CLEAR * (v.bar + moved_bar))
            if int(telling.sum()) < FIT_EVIDENCE:
                continue  # nearly constant along the axis: a shift cannot be told apart
            if not _mostly_nonzero(moved_n, moved_bar, both):
                continue
            bar = np.maximum(v.bar, moved_bar)
            if not _fits(v.a, moved_n, bar, inside):
                continue
            edge_text = _edge_text(v, moved_n, bar, both & edge, axis, edge_index)
            if edge_text is None:
                continue
            k = int(inside.sum())
            way = "i - 1" if shift == 1 else "i + 1"
            return Diagnosis(
                v.name, "shifted",
                f"analytic = numeric shifted by one along axis {axis}: element i holds the value "
                f"of element {way} in {_all(k, v)} that have one ({edge_text}): an index off "
                "by one", where=f"axis {axis}, by {shift:+d}", count=k)
    return None


def _edge_text(v: _View, moved_n: np.ndarray, bar: np.ndarray, edge: np.ndarray, axis: int,
               edge_index: int) -> str | None:
    """What the slice a shift leaves over holds: the wrapped-around values, 0, or other
    values; None when other values would leave more than a quarter of the tensor
    unexplained (an axis of 3)."""
    where = v.slice_name(axis, edge_index)
    if _fits(v.a, moved_n, bar, edge):
        return f"{where} wraps around"
    if edge.any() and np.all(v.a[edge] == 0):
        return f"{where} is 0"
    if v.shape[axis] * ISOLATED_SHARE < 1:
        return None
    return f"{where} holds other values, neither 0 nor wrapped around"


def _missing_mask(v: _View, ctx: _Context) -> Diagnosis | None:
    """Analytic nonzero where numeric is 0, right elsewhere: at (nearly) all the zeros of
    numeric, or at exactly those a threshold on the input singles out (the x > 6 of a clip
    whose upper mask is missing, among the zeros of x < 0 it kept)."""
    zero = v.usable & (np.abs(v.n) <= v.bar)
    wrong = v.failed & ~v.kink
    k = int(wrong.sum())
    if k < 2 or not np.all(zero[wrong]):
        return None
    condition = _input_condition(v, ctx, wrong)
    most = k >= 0.75 * int(zero.sum())
    if not (most or (condition and k >= SUBSET_EVIDENCE)):
        return None
    shown, indices = _listing(v, wrong)
    others = int(zero.sum()) - k
    if condition:
        where = f"exactly the elements with {condition}"
        why = (f"the mask ({_negate(condition)}) that zeroes them, an activation's derivative "
               "like ReLU's, is missing")
    else:
        where = shown
        why = "a mask that zeroes them, an activation's derivative like ReLU's, is missing"
    at = f"the {_count(k)}" if not others else _count(k)
    also = f"; numeric is 0 at {others} more, and analytic with it" if others else ""
    return Diagnosis(
        v.name, "missing_mask",
        f"analytic is nonzero at {at} where numeric is 0 ({where}){also}; every other element "
        f"is right: {why} in backward", where=condition or None, elements=indices, count=k)


def _inverted_mask(v: _View, ctx: _Context) -> Diagnosis | None:
    """Analytic nonzero exactly where numeric is 0, and 0 where numeric is not."""
    clear_a, clear_n = _clear(v.a, v.bar), _clear(v.n, v.bar)
    small_a, small_n = np.abs(v.a) <= v.bar, np.abs(v.n) <= v.bar
    only_a = v.usable & clear_a & small_n
    only_n = v.usable & clear_n & small_a
    neither = v.usable & small_a & small_n
    if not (only_a.any() and only_n.any()) or not np.all((only_a | only_n | neither)[v.usable]):
        return None
    condition = _input_condition(v, ctx, only_a)
    ka, kn = int(only_a.sum()), int(only_n.sum())
    where = f", exactly the elements with {condition}" if condition else ""
    return Diagnosis(
        v.name, "inverted_mask",
        f"analytic is nonzero exactly where numeric is 0 ({_count(ka)}{where}) and 0 where "
        f"numeric is not ({_count(kn)}): the gradient goes to the wrong elements (an inverted "
        "mask, or routing to the wrong element, such as the argmin instead of the argmax)",
        where=condition or None, count=ka + kn)


def _offset(v: _View, ctx: _Context) -> Diagnosis | None:
    """analytic - numeric is one constant on a structured subset, 0 elsewhere."""
    wrong = v.failed & ~v.kink
    k = int(wrong.sum())
    if k < 2:
        return None
    d = v.a - v.n
    constant = float(np.median(d[wrong]))
    if not _fits(d, np.full(v.shape, constant), v.bar, wrong):
        return None
    structure = _structure(wrong, v.usable)
    if structure is None:
        return None
    shown, indices = _listing(v, wrong)
    named = ""
    for dim, where in ctx.dims:
        if abs(abs(constant) * dim - 1) < 1e-6:
            named = f" (= {'-' if constant < 0 else ''}1/{dim}, {dim} being {where})"
            break
    per_row = structure.endswith(")") and " rows (" in structure
    why = ("a term missing from, or added to, these elements only, like the one-hot targets a "
           "softmax cross-entropy backward subtracts (p - y)" if per_row
           else "a constant term missing from, or added to, these elements")
    everywhere = structure == "every element"
    listed = "" if per_row or everywhere else f" ({shown})"
    rest = "" if everywhere else ", and 0 everywhere else"
    if everywhere:
        why = "a constant term added to, or missing from, every element of the gradient"
    return Diagnosis(
        v.name, "offset",
        f"analytic - numeric = {_number(constant)}{named} at {structure}{listed}{rest}: {why}",
        constant=constant, where=structure, elements=indices, count=k)


def _value_term(v: _View, ctx: _Context) -> Diagnosis | None:
    """analytic - numeric = c x the tensor's own value: a term like weight decay missing."""
    if v.value is None:
        return None
    d = v.a - v.n
    value = v.value
    clear = v.usable & (value != 0) & _clear(v.a - v.n, v.bar)
    if int(clear.sum()) < FIT_EVIDENCE or np.ptp(value[v.usable]) == 0:
        return None  # a constant value: an offset, said above if it held
    weights = 1.0 / v.bar[v.usable] ** 2
    information = float(np.sum(weights * value[v.usable] ** 2))
    if not information > 0:
        return None
    c = float(np.sum(weights * d[v.usable] * value[v.usable]) / information)
    sigma = 1.0 / math.sqrt(information)
    if not math.isfinite(c) or abs(c) <= CLEAR * sigma:
        return None
    if not _fits(d, c * value, v.bar + 2 * sigma * np.abs(value), v.usable):
        return None
    k = int(v.usable.sum())
    return Diagnosis(
        v.name, "value_term",
        f"analytic - numeric = {_number(c)} x {v.name} (its own value) in {_all(k, v)}: "
        + _value_term_reason(c, v.name), factor=c, count=k)


def _value_term_reason(c: float, name: str) -> str:
    """What a term c x W is, by its sign. With an L2 penalty (lambda/2) sum(W^2) in the
    loss, backward owes +lambda W: forgotten, c = -lambda; added with its sign flipped,
    c = -2 lambda; added where the loss has none, or twice, c = +lambda."""
    size = _number(abs(c))
    if c < 0:
        return (f"backward lacks a term {size} x {name}, like the weight decay lambda {name} "
                f"of an L2 penalty (lambda/2) sum({name}^2): forgotten (lambda = {size}), or "
                f"added with the wrong sign (lambda = {_number(abs(c) / 2)})")
    return (f"backward has a term {size} x {name} too many, like a weight decay lambda {name} "
            f"(lambda = {size}) that the loss does not have, or that was added twice")


def _one_index(v: _View, ctx: _Context) -> Diagnosis | None:
    """analytic - numeric depends on one index only: one constant per row (or column, ...),
    the same along every other axis."""
    if len(v.shape) < 2:
        return None
    d = v.a - v.n
    for axis, size in enumerate(v.shape):
        if size < 2 or v.a.size // size < 2:
            continue
        moved = np.moveaxis(np.where(v.usable, d, np.nan), axis, 0).reshape(size, -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: no evidence
            per_index = np.nanmedian(moved, axis=1)
        if not np.all(np.isfinite(per_index)):
            continue
        rest = tuple(n for i, n in enumerate(v.shape) if i != axis)
        expanded = np.moveaxis(np.broadcast_to(per_index[:, None], moved.shape).reshape(
            (size, *rest)), 0, axis)
        if not _fits(d, expanded, v.bar, v.usable):
            continue
        if np.ptp(per_index) <= CLEAR * float(np.max(v.bar[v.usable])):
            continue  # one constant: an offset on every element, said above if it held
        # each index's constant needs two elements to stand on
        counts = np.moveaxis(v.usable, axis, 0).reshape(size, -1).sum(axis=1)
        if np.any(counts < 2):
            continue
        shown = ", ".join(_number(float(c)) for c in per_index[:LISTED])
        more = ", ..." if size > LISTED else ""
        k = int(v.usable.sum())
        return Diagnosis(
            v.name, "one_index",
            f"analytic - numeric depends on the index along axis {axis} only ({shown}{more}), "
            f"the same along every other axis, in {_all(k, v)}: a term broadcast along the "
            "wrong axis, or a per-row/per-column quantity (a bias, a mean) added or left out",
            where=f"axis {axis}", count=k)
    return None


def _structure(wrong: np.ndarray, usable: np.ndarray) -> str | None:
    """Name the subset: one element per row, one column, one row, every element."""
    if np.array_equal(wrong, usable) and wrong.size >= 2:
        return "every element"
    if wrong.ndim < 2:
        return None
    rows = wrong.reshape(-1, wrong.shape[-1])
    n_rows, n_cols = rows.shape
    if n_rows < 2 or n_cols < 2:
        return None
    full_columns = np.flatnonzero(rows.all(axis=0))
    if len(full_columns) == 1 and rows.sum() == n_rows:
        return f"every element of column {int(full_columns[0])}"
    if np.all(rows.sum(axis=1) == 1):
        columns = np.argmax(rows, axis=1)
        listed = ", ".join(map(str, columns[:LISTED])) + (", ..." if n_rows > LISTED else "")
        return f"exactly one element in each of the {n_rows} rows (columns {listed})"
    full_rows = np.flatnonzero(rows.all(axis=1))
    if len(full_rows) == 1 and rows.sum() == n_cols:
        return f"every element of row {int(full_rows[0])}"
    if np.all(rows.sum(axis=0) == 1):
        return f"exactly one element in each of the {n_cols} columns"
    return None


def _region(v: _View, ctx: _Context) -> Diagnosis | None:
    """zero, sign or scale on a region of the input (x < 0), right elsewhere."""
    wrong = v.failed & ~v.kink
    if not wrong.any():
        return None
    # the region must leave out every clearly nonzero element that is right
    right = v.usable & ~wrong & _clear(v.n, v.bar)
    found = _threshold(v, ctx, wrong, right)
    if found is None:
        return None
    condition, region = found
    if np.array_equal(region & v.usable, v.usable):
        return None  # the whole tensor: the tests above already said no
    for test in (_zero, _sign, _scale):
        diagnosis = test(v, ctx, region, condition)
        if diagnosis is not None:
            return diagnosis
    return None


def _slice(v: _View, ctx: _Context) -> Diagnosis | None:
    """Every wrong element in one row (one column, one index along an axis), and there
    analytic = 0, -numeric or c x numeric at every element; every other element right."""
    wrong = v.failed & ~v.kink
    if len(v.shape) < 2 or int(wrong.sum()) < 2:
        return None
    for axis, size in enumerate(v.shape):
        indices = np.unique(np.nonzero(wrong)[axis])
        if size < 2 or len(indices) != 1:
            continue
        index = int(indices[0])
        region = np.zeros(v.shape, dtype=bool)
        region[(slice(None),) * axis + (index,)] = True
        relation = _relation(v, v.usable & region)
        if relation is None or int((v.usable & region & _clear(v.n, v.bar)).sum()) < 2:
            continue
        factor, holds = relation
        where = (f"{('row', 'column')[axis]} {index}" if len(v.shape) == 2
                 else f"index {index} along axis {axis}")
        k = int((v.usable & region).sum())
        noun = ("row", "column")[axis] if len(v.shape) == 2 else "slice"
        why = (f"that {noun}'s gradient is never computed (a loop that skips it, a range one "
               "short)" if factor == 0 else
               "the sign is flipped for that index only (a special case, or a loop's first or "
               "last pass)" if factor == -1 else
               "it is scaled for that index only (counted twice, or a special case)")
        return Diagnosis(
            v.name, "slice",
            f"every wrong element is in {where} ({v.slice_name(axis, index)}), and there "
            f"{holds} in {_all(k, v)}; every other element is right: {why}",
            factor=factor, where=where, count=k)
    return None


def _isolated(v: _View, ctx: _Context) -> Diagnosis | None:
    """A few wrong elements, all the others right."""
    k = int(v.failed.sum())
    measured = int(v.measured.sum())
    total = v.a.size
    if v.lower_bound or k == 0 or k > ISOLATED_MAX or k >= total or (
            v.mode != "fast" and k > ISOLATED_SHARE * measured):
        return None
    flat = np.flatnonzero(v.failed.reshape(-1))
    indices = [unravel(int(f), v.shape) for f in flat]
    details = "; ".join(f"{v.element(i)}: {_pair(float(v.a[i]), float(v.n[i]))}"
                        + _element_note(float(v.a[i]), float(v.n[i]), float(v.bar[i]))
                        for i in indices[:LISTED])
    others = ("the random-direction tests cleared all the others" if v.mode == "fast"
              else f"all {total - k} others are right" if not v.unverified
              else "the others are right or could not be verified")
    if v.kink[v.failed].all():
        others = f"{'it sits' if k == 1 else 'all sit'} on kinks (ties, zeros); {others}"
    return Diagnosis(
        v.name, "isolated",
        f"{k} of {total} elements {'is' if k == 1 else 'are'} wrong ({details}); {others}: "
        "look at what is special about "
        + ("that element (an index off by one, an edge case)" if k == 1 else
           "those elements (an index off by one, an edge case)"),
        elements=indices, count=k)


# ---------------------------------------------------------------------------- conditions on x


def _input_condition(v: _View, ctx: _Context, inside: np.ndarray) -> str:
    """A threshold condition on the input's values ("x < 0") that holds at exactly the
    ``inside`` elements among the usable ones: at every one of them and at no other; or ""."""
    found = _threshold(v, ctx, inside & v.usable, v.usable & ~inside)
    return found[0] if found else ""


def _threshold(v: _View, ctx: _Context, inside: np.ndarray,
               outside: np.ndarray) -> tuple[str, np.ndarray] | None:
    """f(x) > t with f in (-x, x, |x|) and a round t: true on every ``inside`` element, false
    on every ``outside`` one."""
    if v.name != ctx.input_name or v.value is None or not inside.any():
        return None
    x = v.value
    for f, text in ((-x, "x < {}"), (x, "x > {}"), (np.abs(x), "|x| > {}")):
        low = float(np.max(f[outside], initial=-np.inf))
        high = float(np.min(f[inside]))
        t = _round_between(low, high)
        if t is None:
            continue
        bound = -t if text.startswith("x <") else t
        condition = text.replace("x", v.name, 1).format(_number(bound))
        return condition, f > t
    return None


def _round_between(low: float, high: float) -> float | None:
    """The roundest t with low <= t < high (0 first, then fewest significant digits)."""
    if not (low < high) or not math.isfinite(high):
        return None
    if low <= 0 < high:
        return 0.0
    if low == -math.inf:
        low = high - max(1.0, abs(high))
    span = high - low
    exponent = math.floor(math.log10(max(abs(high), abs(low), span)))
    for e in range(exponent, exponent - 12, -1):
        step = 10.0 ** e
        t = math.ceil(low / step) * step
        if low <= t < high:
            return float(round(t, max(0, -e)))
    return None


def _negate(condition: str) -> str:
    for a, b in ((" < ", " >= "), (" > ", " <= ")):
        if a in condition:
            negated = condition.replace(a, b)
            return negated.replace(" >= 0", " > 0").replace(" <= 0", " < 0") if (
                negated.endswith(" 0")) else negated
    return "condition"


def kinds(diagnoses: Iterable[Diagnosis]) -> dict[str, str]:
    """``{tensor: kind}``: a compact view for tests and summaries.

    >>> kinds([Diagnosis("W", "sign", "...")])
    {'W': 'sign'}
    """
    return {d.tensor: d.kind for d in diagnoses}
