"""What the rules read: one tensor's arrays (a View), the report's facts (a Context), and
the two tests every rule is built from (clearly nonzero; a prediction within the bars)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.text import element, general

if TYPE_CHECKING:
    from gradcheck.report import Report, TensorResult

ISOLATED_MAX = 10  # "a few": at most this many wrong elements ...
ISOLATED_SHARE = 0.25  # ... and at most this share of the measured ones
CLEAR = 4.0  # a value is clearly nonzero beyond this many error bars
FIT_EVIDENCE = 3  # clearly nonzero elements a fitted factor (or a shift) needs
# clearly nonzero elements a factor from a list (0, -1, a named c) needs: the ratio at one
# element picks a candidate, a second must confirm it (a factor of a single element of many
# is whatever that element's ratio happens to be, and a list of ~40 named factors holds one
# within a float32 bar by chance). A tensor of one element is its own whole evidence for 0
# and -1, never for a named factor.
NAMED_EVIDENCE = 2
# wrong elements a threshold on x must single out among the zeros of the numeric gradient
# before it is named as a missing mask (two could be the two largest x by chance)
SUBSET_EVIDENCE = 3
LISTED = 8  # elements quoted in a text
# misbehaviour that makes the numeric gradient itself untrustworthy: no diagnosis then
UNRELIABLE = ("nondeterministic", "state_changed", "in_place")
KEPT = 50  # elements kept in Diagnosis.elements


@dataclass
class View:
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
    def of(t: TensorResult) -> View | None:
        shape = tuple(t.shape)
        arrays = [getattr(t, name, None) for name in ("analytic", "numeric", "error_bar")]
        if any(array is None for array in arrays):
            return None
        a, n, bar = (np.asarray(array, dtype=np.float64) for array in arrays)
        if not (a.shape == n.shape == bar.shape == shape):
            return None
        kink = bool_like(getattr(t, "kink", None), shape)
        failed = bool_like(getattr(t, "failed", None), shape)
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
        return View(t.name, shape, status, t.mode, bool(t.mismatched_is_lower_bound), a, n,
                     bar, kink, failed & measured, measured, measured & ~kink, value,
                     int(getattr(t, "unverified", 0) or 0))

    def element(self, index: tuple[int, ...]) -> str:
        return element(self.name, index)

    def slice_name(self, axis: int, index: int) -> str:
        """``W[:, 2]``: every element with ``index`` along ``axis``."""
        places = (str(index) if i == axis else ":" for i in range(len(self.shape)))
        return f"{self.name}[{', '.join(places)}]"


def bool_like(array: object, shape: tuple[int, ...]) -> np.ndarray:
    if array is None:
        return np.zeros(shape, dtype=bool)
    result = np.asarray(array, dtype=bool)
    return result if result.shape == shape else np.zeros(shape, dtype=bool)


@dataclass(frozen=True)
class TieGroup:
    """Tied elements the engine failed together (``report.ties``)."""

    count: int  # elements in the group (in every tensor it spans)
    value: str  # the tied value, as a person reads it
    total: float  # their analytic gradients added up
    slope: float | None  # the loss's slope when they move together (None: judged off it)
    across: bool  # the group spans several tensors


def tie_groups(findings: Iterable[Any]) -> dict[str, list[TieGroup]]:
    """The failed tie groups of each tensor they touch."""
    groups: dict[str, list[TieGroup]] = {}
    for finding in findings:
        tensors = finding.tensors
        group = TieGroup(len(finding.members), general(finding.value), float(finding.total),
                          None if finding.slope is None else float(finding.slope),
                          len(tensors) > 1)
        for name in tensors:
            groups.setdefault(name, []).append(group)
    return groups


@dataclass
class Context:
    """What the report says about the check as a whole."""

    views: list[View]
    kinks: str
    input_name: str | None
    dims: list[tuple[int, str]]  # (dimension, "the batch size (axis 0 of x)")
    ties: dict[str, list[TieGroup]]  # failed tie groups per tensor
    door: str = ""  # the front door that made the report ("check_layer")
    # integer arrays passed through the front door (labels, indices), by parameter name
    index_arguments: dict[str, np.ndarray] = field(default_factory=dict)
    output_shape: tuple[int, ...] | None = None
    _report: Any = None  # for the upstream gradient, drawn again only when a rule asks
    _upstream: Any = None

    def upstream(self) -> np.ndarray | None:
        """The upstream gradient g the check drew (check_layer, check_pair), or None."""
        if self._upstream is None and self._report is not None:
            from gradcheck.diagnosis.upstream import drawn

            self._upstream = drawn(self._report, self.door)
            self._report = None
        return self._upstream

    @staticmethod
    def of(report: Report, views: list[View]) -> Context:
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
        door = _door(report)
        batch = batch_owner(input_name, by_name, output_shape, door)
        kinks = str(getattr(report, "options", {}).get("kinks", "subgradient"))
        indices = {str(name): np.asarray(array) for name, array
                   in dict(getattr(report, "index_arguments", None) or {}).items()
                   if np.asarray(array).dtype.kind in "iu"}
        return Context(views, kinks, input_name, dimensions(shapes, batch),
                       tie_groups(getattr(report, "ties", [])), door, indices,
                       None if output_shape is None else tuple(output_shape), report)


def _door(report: Report) -> str:
    """The front door that made the report (``check_layer``)."""
    return str(getattr(report, "door", "") or "")


def batch_owner(input_name: str | None, by_name: dict[str, View],
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


def dimensions(shapes: list[tuple[str, tuple[int, ...]]],
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


def clearly(values: np.ndarray, bar: np.ndarray) -> np.ndarray:
    """Clearly nonzero: beyond CLEAR error bars (False where not measured)."""
    return np.abs(values) > CLEAR * bar


def fits(a: np.ndarray, predicted: np.ndarray, bar: np.ndarray, mask: np.ndarray) -> bool:
    return bool(mask.any() and np.all(np.abs(a[mask] - predicted[mask]) <= bar[mask]))


def mostly_nonzero(moved: np.ndarray, bar: np.ndarray, mask: np.ndarray) -> bool:
    """The values a rearrangement (a reversal, a shift) moves are clearly nonzero at two
    elements of mask or more, and at more than half of them: in a sparse gradient (one
    nonzero per pooling window) a rearrangement can line up the few nonzeros by chance."""
    carried = int((mask & clearly(moved, bar)).sum())
    return carried >= 2 and 2 * carried > int(mask.sum())
