"""What kind of mistake a wrong gradient is: named from the full analytic and numeric arrays.

``diagnose(report)`` looks at each failing tensor and tests a short list of hypotheses, the
classic hand-derivation mistakes, in a fixed order; the first that holds is the diagnosis:

=================  ==========================================================================
kind               evidence (over every measured element, to each element's error bar)
=================  ==========================================================================
kink_convention    every mismatch sits on a kink (kinks="hull"): a convention outside the
                   one-sided derivatives, like ReLU'(0) = 2
at_kinks           every mismatch sits on a kink checked as an ordinary point (kinks="strict")
swapped            analytic = another tensor's numeric (same shape)
zero               analytic is 0 everywhere, numeric is not
sign               analytic = -numeric
scale              analytic = c x numeric for one c (named when c or 1/c is 2, a dimension of
                   the input or output or their number of elements, or a product of two)
transpose          analytic = numeric.T (square 2-D; the diagonal right, the rest mirrored)
reversed           analytic = numeric reversed along an axis, or all axes (a flipped kernel)
shifted            analytic = numeric shifted by one along an axis (an index off by one)
missing_mask       analytic nonzero exactly where numeric is 0, right elsewhere (the
                   condition named when it is a threshold on the input: "x < 0")
inverted_mask      analytic nonzero exactly where numeric is 0, and 0 where numeric is not
offset             analytic - numeric is one constant on one element per row, one column,
                   one row, or every element; 0 elsewhere
value_term         analytic - numeric = c x the tensor's own value (weight decay forgotten)
one_index          analytic - numeric depends on one index only (one constant per column)
zero / sign /      the same, on a region of the input only ("where x < 0"), right elsewhere
scale (``where``)
isolated           a few elements wrong (at most 10, at most a quarter), the rest right
needs_full         fast mode measured too few elements: mode="full" would diagnose
=================  ==========================================================================

Rules that keep a diagnosis honest (a wrong diagnosis is worse than none):

- only failing tensors get a diagnosis, at most one each;
- a hypothesis must hold at every measured element off the kinks, with the error bar the
  engine accepted at that element (``TensorResult.error_bar``), scaled where the hypothesis
  scales the numeric value (c x numeric is allowed |c| x the bar);
- it needs evidence: elements where the numbers are clearly nonzero (4 error bars), and
  patterns that cannot arise by accident (a constant over several elements, a structure);
- where the hypothesis cannot be told apart from a right gradient (a symmetric matrix
  under transpose; an all-zero numeric gradient under sign or scale), it is not claimed.

Fast mode measures only the groups its random-direction tests localize: from those,
"zero", "sign" and "scale" are claimed when at least 8 clearly nonzero elements agree, and
"isolated" when localization finished; otherwise the diagnosis is "needs_full".

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

if TYPE_CHECKING:
    from gradcheck.report import Report, TensorResult

KINDS = ("kink_convention", "at_kinks", "swapped", "zero", "sign", "scale", "transpose",
         "reversed", "shifted", "missing_mask", "inverted_mask", "offset", "value_term",
         "one_index", "isolated", "needs_full")
ISOLATED_MAX = 10  # "a few": at most this many wrong elements ...
ISOLATED_SHARE = 0.25  # ... and at most this share of the measured ones
CLEAR = 4.0  # a value is clearly nonzero beyond this many error bars
FAST_EVIDENCE = 8  # clearly nonzero elements fast mode needs to claim sign or scale
FIT_EVIDENCE = 3  # clearly nonzero elements an unnamed (fitted) scale factor needs
LISTED = 8  # elements quoted in a text
# misbehaviour that makes the numeric gradient itself untrustworthy: no diagnosis then
UNRELIABLE = ("nondeterministic", "state_changed", "in_place")
KEPT = 50  # elements kept in Diagnosis.elements


@dataclass
class Diagnosis:
    """A named mistake in one tensor's gradient, with its evidence.

    ``kind`` is one of :data:`KINDS`; ``text`` is one sentence for a person. Kind-specific
    fields: ``factor`` (scale; -1 for sign, 0 for zero; value_term's c), ``other`` (swapped:
    the tensor whose gradient this one holds), ``constant`` (offset), ``where`` (the input's
    condition a pattern follows, e.g. "x < 0"; offset's subset; the axis of reversed,
    shifted, one_index), ``elements`` (isolated, offset, missing_mask, kink_convention:
    index tuples, at most 50), ``count`` (elements the evidence covers).

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
    ``kink``, ``failed``); a tensor without them, or ok, gets none. Never raises: a
    diagnosis is an aid to reading the report, and the verdict must not be lost to it.

    >>> import numpy as np, gradcheck as gc
    >>> p = {"w": np.array([1.0, -2.0, 3.0])}
    >>> rep = gc.check_params(lambda: float(np.sum(p["w"] ** 2)), lambda: {"w": -2 * p["w"]}, p)
    >>> [(d.tensor, d.kind) for d in diagnose(rep)]
    [('w', 'sign')]
    """
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
        with np.errstate(all="ignore"):
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
            with np.errstate(invalid="ignore"):
                unsure = measured & ~failed & (np.abs(a - n) > bar)
            measured = measured & ~unsure
        return _View(t.name, shape, status, t.mode, bool(t.mismatched_is_lower_bound), a, n,
                     bar, kink, failed & measured, measured, measured & ~kink, value,
                     int(getattr(t, "unverified", 0) or 0))

    def element(self, index: tuple[int, ...]) -> str:
        return f"{self.name}[{', '.join(map(str, index))}]" if index else self.name


def _bool_like(array: object, shape: tuple[int, ...]) -> np.ndarray:
    if array is None:
        return np.zeros(shape, dtype=bool)
    result = np.asarray(array, dtype=bool)
    return result if result.shape == shape else np.zeros(shape, dtype=bool)


@dataclass
class _Context:
    """What the report says about the check as a whole."""

    views: list[_View]
    kinks: str
    input_name: str | None
    dims: list[tuple[int, str]]  # (dimension, "the batch size (axis 0 of x)")

    @staticmethod
    def of(report: Report, views: list[_View]) -> _Context:
        input_name = getattr(report, "input_name", None)
        output_shape = getattr(report, "output_shape", None)
        dims: list[tuple[int, str]] = []
        shapes: list[tuple[str, tuple[int, ...]]] = []
        by_name = {v.name: v for v in views}
        if input_name is not None and input_name in by_name:
            shapes.append((input_name, by_name[input_name].shape))
        if output_shape is not None:
            shapes.append(("the output", tuple(output_shape)))
        if input_name is None:  # check_params: no input; the tensors' own dimensions
            shapes += [(v.name, v.shape) for v in views]
        named: list[tuple[int, str]] = []
        for owner, shape in shapes:
            for axis, size in enumerate(shape):
                where = f"axis {axis} of {owner}"
                batch = owner == input_name and axis == 0 and len(shape) >= 2
                named.append((int(size), f"the batch size ({where})" if batch else where))
        for owner, shape in shapes:  # a mean over every element divides by their number
            if len(shape) >= 2:
                named.append((int(np.prod(shape)), f"the number of elements of {owner} ("
                              + " x ".join(map(str, shape)) + ")"))
        for size, where in named:
            if size >= 2 and all(size != d for d, _ in dims):
                dims.append((size, where))
        kinks = str(getattr(report, "options", {}).get("kinks", "subgradient"))
        return _Context(views, kinks, input_name, dims)


# ---------------------------------------------------------------------------- the tests


def _diagnose_tensor(v: _View, ctx: _Context) -> Diagnosis | None:
    if v.status != "FAILED" or v.a.size == 0:
        return None
    partial = v.mode == "fast" and int(v.measured.sum()) < v.a.size
    if partial:
        return _fast(v, ctx)
    if not v.failed.any():
        return None
    if not (v.failed & ~v.kink).any():
        # only kinks fail: the numbers there straddle a kink, so no pattern can be read from
        # them; what they are, the kinks mode says
        return _kinks_only(v, ctx) or _isolated(v, ctx)
    tests = (_swapped, _zero, _sign, _scale, _transpose, _reversed, _shifted, _missing_mask,
             _inverted_mask, _offset, _value_term, _one_index, _region, _isolated)
    for test in tests:
        found = test(v, ctx)
        if found is not None:
            return found
    return None


def _fast(v: _View, ctx: _Context) -> Diagnosis:
    """Fast mode: the pattern from the localized groups, or a word that full mode would tell."""
    if v.failed.any():
        evidence = int(np.sum(v.usable & _clear(v.n, v.bar)))
        if evidence >= FAST_EVIDENCE:
            for test in (_zero, _sign, _scale):
                found = test(v, ctx)
                if found is not None:
                    found.text += (f" (fast mode measured {int(v.measured.sum())} of "
                                   f"{v.a.size} elements one by one, to localize the "
                                   "mismatches; mode='full' would check every element)")
                    return found
        if not v.lower_bound:  # localization finished: every wrong element is known
            found = _isolated(v, ctx)
            if found is not None:
                return found
    return Diagnosis(
        v.name, "needs_full",
        f"fast mode measured {int(v.measured.sum())} of {v.a.size} elements of {v.name}, too "
        "few to name the mistake; mode='full' would diagnose it (2 loss evaluations per "
        "element)", count=int(v.measured.sum()))


def _clear(values: np.ndarray, bar: np.ndarray) -> np.ndarray:
    """Clearly nonzero: beyond CLEAR error bars (False where not measured)."""
    with np.errstate(invalid="ignore"):
        return np.abs(values) > CLEAR * bar


def _fits(a: np.ndarray, predicted: np.ndarray, bar: np.ndarray, mask: np.ndarray) -> bool:
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(mask.any() and np.all(np.abs(a[mask] - predicted[mask]) <= bar[mask]))


def _count(n: int, noun: str = "element", plural: str = "") -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _all(n: int, v: _View | None = None) -> str:
    """``all 37 elements``, saying so when elements on kinks were left out."""
    off = " off the kinks" if v is not None and (v.measured & v.kink).any() else ""
    return f"the only element{off}" if n == 1 else f"all {n} elements{off}"


def _g(value: float) -> str:
    return f"{value:.4g}"


def _pair(a: float, n: float) -> str:
    """``analytic 1.9453 vs numeric 1.9452``: as many digits as it takes to tell them apart."""
    for digits in range(4, 17):
        shown_a, shown_n = f"{a:.{digits}g}", f"{n:.{digits}g}"
        if shown_a != shown_n:
            break
    return f"analytic {shown_a} vs numeric {shown_n}"


def _element_note(a: float, n: float, bar: float) -> str:
    """What one wrong element's two numbers say on their own: a flipped sign, a zero."""
    if abs(n) > CLEAR * bar and abs(a + n) <= bar:
        return ", the sign flipped"
    if a == 0 and abs(n) > CLEAR * bar:
        return ", analytic 0"
    return ""


def _listing(v: _View, mask: np.ndarray) -> tuple[str, list[tuple[int, ...]]]:
    flat = np.flatnonzero(mask.reshape(-1))
    indices = [tuple(int(i) for i in np.unravel_index(int(k), v.shape)) for k in flat[:KEPT]]
    shown = ", ".join(v.element(i) for i in indices[:LISTED])
    return shown + (", ..." if len(flat) > LISTED else ""), indices


def _kinks_only(v: _View, ctx: _Context) -> Diagnosis | None:
    """Every mismatch on a kink, everything else right."""
    if not np.all(v.kink[v.failed]):
        return None
    shown, indices = _listing(v, v.failed)
    k = int(v.failed.sum())
    first = indices[0]
    at = ""
    if v.value is not None:
        values = np.unique(v.value[v.failed])
        if len(values) == 1:
            at = f", where {v.name} = {_g(float(values[0]))}"
    # "the one mismatch sits", "all 3 mismatches sit"
    mismatches = ("the one mismatch sits on a kink" if k == 1
                  else f"all {_count(k, 'mismatch', 'mismatches')} sit on kinks")
    example = (f"e.g. {v.element(first)}: analytic {_g(float(v.a[first]))}, central difference "
               f"{_g(float(v.n[first]))}")
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
    worst_text = (f"largest numeric {_g(float(v.n[worst]))} at "
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
    """Named scale factors, each with the reason it is a natural mistake."""
    named: list[tuple[float, str]] = [(2.0, "a factor 2 (the 2 of d/dx x^2 = 2x, or a 1/2 in "
                                       "the loss)"), (0.5, "a factor 1/2 (the 2 of d/dx x^2 = 2x "
                                                      "lost, or a 1/2 in the loss)")]
    mean = "a sum where a mean was meant, or the other way round"
    for d, where in ctx.dims:
        if d != 2:
            named += [(float(d), f"{d} is {where}; {mean}"),
                      (1.0 / d, f"{d} is {where}; {mean}")]
    for d, where in ctx.dims:  # two mistakes at once: a factor 2 too, or the mean taken twice
        named += [(2.0 * d, f"{2 * d} = 2 x {d}, {d} being {where}; a factor 2 and {mean}"),
                  (0.5 / d, f"1/{2 * d} = 1/(2 x {d}), {d} being {where}; a factor 2 and "
                   f"{mean}"),
                  (d / 2.0, f"{d}/2, {d} being {where}; a factor 2 and {mean}"),
                  (2.0 / d, f"2/{d}, {d} being {where}; a factor 2 and {mean}"),
                  (float(d * d), f"{d * d} = {d}^2, {d} being {where}; divided or multiplied "
                   "by it twice"),
                  (1.0 / (d * d), f"1/{d * d} = 1/{d}^2, {d} being {where}; divided or "
                   "multiplied by it twice")]
    unique: list[tuple[float, str]] = []
    for c, why in named:  # the first, simplest reason for each value
        if all(abs(c - seen) > 1e-12 * abs(c) for seen, _ in unique):
            unique.append((c, why))
    return unique + [(-c, why + ", and the sign flipped") for c, why in unique]


def _scale(v: _View, ctx: _Context, where: np.ndarray | None = None,
           condition: str = "") -> Diagnosis | None:
    """analytic = c x numeric, one c."""
    mask = v.usable if where is None else v.usable & where
    clear = mask & _clear(v.n, v.bar)
    if not clear.any():
        return None
    k = int(mask.sum())
    over = f"in {_all(k, v)}" if where is None else f"at all {_count(k)} where {condition}"
    rest = "" if where is None else ", right elsewhere"
    # the most telling element (largest |numeric| in error bars) rules out most candidates
    # with one comparison each, before any is held to every element
    with np.errstate(invalid="ignore", divide="ignore"):
        best = int(np.argmax(np.where(clear, np.abs(v.n) / v.bar, -1.0)))
    a0, n0, bar0 = v.a.flat[best], v.n.flat[best], v.bar.flat[best]
    for c, why in _candidates(ctx):
        if not abs(a0 - c * n0) <= abs(c) * bar0:
            continue
        shows = (clear & _clear(v.a, abs(c) * v.bar)).any()
        if shows and _fits(v.a, c * v.n, abs(c) * v.bar, mask):
            factor = _factor_text(c)
            return Diagnosis(v.name, "scale", f"analytic = {factor} x numeric {over}{rest}: {why}",
                             factor=c, where=condition or None, count=k)
    if int(clear.sum()) < FIT_EVIDENCE:
        return None
    # one factor fitted from the clearly nonzero elements (weighted by their error bars),
    # then held to every element, with the fit's own uncertainty sigma added to the bars
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
    why = ("one factor in every element: a constant multiplied in, or missing, in backward"
           if where is None else "the slope backward uses on that side is off by this factor")
    shown = _g(c) if abs(c - 1) > 0.01 else f"{c:.{_digits(c)}f}"  # 1.00002, not 1
    return Diagnosis(v.name, "scale", f"analytic = {shown} x numeric {over}{rest}: {why}",
                     factor=c, where=condition or None, count=k)


def _digits(c: float) -> int:
    """Decimals that show how far c is from 1 (two significant digits of c - 1)."""
    return max(2, min(12, 1 - math.floor(math.log10(abs(c - 1)))))


def _factor_text(c: float) -> str:
    if abs(c) < 1 and abs(round(1 / c) - 1 / c) < 1e-12:
        return f"{_g(c)} (= 1/{round(1 / c)})" if c > 0 else f"{_g(c)} (= -1/{round(-1 / c)})"
    return _g(c)


def _transpose(v: _View, ctx: _Context) -> Diagnosis | None:
    """analytic = numeric.T on a square matrix that is not symmetric."""
    if len(v.shape) != 2 or v.shape[0] != v.shape[1] or v.shape[0] < 2:
        return None
    both = v.usable & v.usable.T
    bar = np.maximum(v.bar, v.bar.T)
    with np.errstate(invalid="ignore"):
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
        with np.errstate(invalid="ignore"):
            asymmetric = both & (np.abs(v.n - flipped_n) > CLEAR * (v.bar + flipped_bar))
        if not asymmetric.any() or not _fits(v.a, flipped_n, np.maximum(v.bar, flipped_bar),
                                             both):
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


def _shifted(v: _View, ctx: _Context) -> Diagnosis | None:
    """analytic[i] = numeric[i - s] along one axis (s = +-1): an index off by one. The slice
    the shift leaves empty must wrap around, or be 0."""
    for axis, size in enumerate(v.shape):
        if size < 3:
            continue
        for shift in (1, -1):
            moved_n = np.roll(v.n, shift, axis)
            moved_bar = np.roll(v.bar, shift, axis)
            moved_usable = np.roll(v.usable, shift, axis)
            edge = np.zeros(v.shape, dtype=bool)
            index: list[Any] = [slice(None)] * len(v.shape)
            index[axis] = 0 if shift == 1 else -1
            edge[tuple(index)] = True
            both = v.usable & moved_usable
            with np.errstate(invalid="ignore"):
                differs = both & (np.abs(v.n - moved_n) > CLEAR * (v.bar + moved_bar))
            if not differs.any():
                continue  # constant along the axis: a shift cannot be told apart
            bar = np.maximum(v.bar, moved_bar)
            if not _fits(v.a, moved_n, bar, both & ~edge):
                continue
            wraps = _fits(v.a, moved_n, bar, both & edge)
            if not (wraps or np.all(v.a[edge] == 0)):
                continue
            k = int((both & ~edge).sum())
            way = "i - 1" if shift == 1 else "i + 1"
            end = ("wrapping around" if wraps else
                   f"and the {'first' if shift == 1 else 'last'} is 0")
            return Diagnosis(
                v.name, "shifted",
                f"analytic = numeric shifted by one along axis {axis}: element i holds the value "
                f"of element {way} in {_all(k, v)} it can ({end}): an index off by one",
                where=f"axis {axis}, by {shift:+d}", count=k)
    return None


def _missing_mask(v: _View, ctx: _Context) -> Diagnosis | None:
    """Analytic nonzero exactly where numeric is 0; right elsewhere."""
    with np.errstate(invalid="ignore"):
        zero = v.usable & (np.abs(v.n) <= v.bar)
    wrong = v.failed & ~v.kink
    k = int(wrong.sum())
    if k < 2 or not np.all(zero[wrong]) or k < 0.75 * int(zero.sum()):
        return None
    condition = _input_condition(v, ctx, wrong, zero)
    shown, indices = _listing(v, wrong)
    if condition:
        where = f"exactly the elements with {condition}"
        why = (f"the mask ({_negate(condition)}) that zeroes them, an activation's derivative "
               "like ReLU's, is missing")
    else:
        where = shown
        why = "a mask that zeroes them, an activation's derivative like ReLU's, is missing"
    return Diagnosis(
        v.name, "missing_mask",
        f"analytic is nonzero at the {_count(k)} where numeric is 0 ({where}) and right "
        f"everywhere else: {why} in backward", where=condition or None, elements=indices,
        count=k)


def _inverted_mask(v: _View, ctx: _Context) -> Diagnosis | None:
    """Analytic nonzero exactly where numeric is 0, and 0 where numeric is not."""
    clear_a, clear_n = _clear(v.a, v.bar), _clear(v.n, v.bar)
    with np.errstate(invalid="ignore"):
        small_a, small_n = np.abs(v.a) <= v.bar, np.abs(v.n) <= v.bar
    only_a = v.usable & clear_a & small_n
    only_n = v.usable & clear_n & small_a
    neither = v.usable & small_a & small_n
    if not (only_a.any() and only_n.any()) or not np.all((only_a | only_n | neither)[v.usable]):
        return None
    condition = _input_condition(v, ctx, only_a, ~only_n)
    ka, kn = int(only_a.sum()), int(only_n.sum())
    where = f", {condition}" if condition else ""
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
        f"analytic - numeric = {_g(constant)}{named} at {structure}{listed}{rest}: {why}",
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
        f"analytic - numeric = {_g(c)} x {v.name} (its own value) in {_all(k, v)}: a term "
        f"proportional to {v.name} is missing or extra, such as the weight decay of an L2 "
        f"penalty (lambda = {_g(abs(c))}), or the derivative of a term in {v.name}^2",
        factor=c, count=k)


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
        shown = ", ".join(_g(float(c)) for c in per_index[:LISTED])
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


def _isolated(v: _View, ctx: _Context) -> Diagnosis | None:
    """A few wrong elements, all the others right."""
    k = int(v.failed.sum())
    measured = int(v.measured.sum())
    total = v.a.size
    if v.lower_bound or k == 0 or k > ISOLATED_MAX or k >= total or (
            v.mode != "fast" and k > ISOLATED_SHARE * measured):
        return None
    flat = np.flatnonzero(v.failed.reshape(-1))
    indices = [tuple(int(i) for i in np.unravel_index(int(f), v.shape)) for f in flat]
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


def _input_condition(v: _View, ctx: _Context, inside: np.ndarray,
                     allowed: np.ndarray) -> str:
    """A threshold condition on the input's values that holds at every ``inside`` element and
    at no usable element outside ``allowed`` ("x < 0"), or ""."""
    if v.name != ctx.input_name or v.value is None:
        return ""
    found = _threshold(v, ctx, inside & v.usable, v.usable & ~allowed)
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
        shown = _g(bound + 0.0)  # + 0.0: no "-0"
        condition = text.replace("x", v.name, 1).format(shown)
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
