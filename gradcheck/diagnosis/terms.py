"""analytic - numeric is a term: one constant on a structured subset (offset), c x the
tensor's value (value_term), or one constant per index along an axis (one_index)."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import CLEAR, FIT_EVIDENCE, LISTED, clearly, fits
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import every, listing, number

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View


def offset(v: View, ctx: Context) -> Diagnosis | None:
    """analytic - numeric is one constant on a structured subset, 0 elsewhere. Where numeric
    is 0 at every element, analytic is just that constant: a term added to the gradient
    cannot be told from a gradient replaced by it, and nothing is claimed."""
    wrong = v.failed & ~v.kink
    k = int(wrong.sum())
    if k < 2 or not (v.usable & clearly(v.n, v.bar)).any():
        return None
    d = v.a - v.n
    constant = float(np.median(d[wrong]))
    if not fits(d, np.full(v.shape, constant), v.bar, wrong):
        return None
    structure = structure_of(wrong, v.usable)
    if structure is None:
        return None
    shown, indices = listing(v, wrong)
    named = ""
    for dim, where in ctx.dims:
        if abs(abs(constant) * dim - 1) < 1e-6:
            named = f" (= {'-' if constant < 0 else ''}1/{dim}, {dim} being {where})"
            break
    per_row = structure.shape == "per_row"
    why = ("a term missing from, or added to, these elements only, like the one-hot targets a "
           "softmax cross-entropy backward subtracts (p - y)" if per_row
           else "a constant term missing from, or added to, these elements")
    everywhere = structure.shape == "every"
    listed = "" if per_row or everywhere else f" ({shown})"
    rest = "" if everywhere else ", and 0 everywhere else"
    if everywhere:
        why = "a constant term added to, or missing from, every element of the gradient"
    return Diagnosis(
        v.name, "offset",
        f"analytic - numeric = {number(constant)}{named} at {structure.text}{listed}{rest}: "
        f"{why}", constant=constant, where=structure.text, elements=indices, count=k)


def value_term(v: View, ctx: Context) -> Diagnosis | None:
    """analytic - numeric = c x the tensor's own value: a term like weight decay missing."""
    if v.value is None:
        return None
    d = v.a - v.n
    value = v.value
    clear = v.usable & (value != 0) & clearly(v.a - v.n, v.bar)
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
    if not fits(d, c * value, v.bar + 2 * sigma * np.abs(value), v.usable):
        return None
    k = int(v.usable.sum())
    return Diagnosis(
        v.name, "value_term",
        f"analytic - numeric = {number(c)} x {v.name} (its own value) in {every(k, v)}: "
        + _value_term_reason(c, v.name), factor=c, count=k)


def _value_term_reason(c: float, name: str) -> str:
    """What a term c x W is, by its sign. With an L2 penalty (lambda/2) sum(W^2) in the
    loss, backward owes +lambda W: forgotten, c = -lambda; added with its sign flipped,
    c = -2 lambda; added where the loss has none, or twice, c = +lambda."""
    size = number(abs(c))
    if c < 0:
        return (f"backward lacks a term {size} x {name}, like the weight decay lambda {name} "
                f"of an L2 penalty (lambda/2) sum({name}^2): forgotten (lambda = {size}), or "
                f"added with the wrong sign (lambda = {number(abs(c) / 2)})")
    return (f"backward has a term {size} x {name} too many, like a weight decay lambda {name} "
            f"(lambda = {size}) that the loss does not have, or that was added twice")


def one_index(v: View, ctx: Context) -> Diagnosis | None:
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
        if not fits(d, expanded, v.bar, v.usable):
            continue
        if np.ptp(per_index) <= CLEAR * float(np.max(v.bar[v.usable])):
            continue  # one constant: an offset on every element, said above if it held
        # each index's constant needs two elements to stand on
        counts = np.moveaxis(v.usable, axis, 0).reshape(size, -1).sum(axis=1)
        if np.any(counts < 2):
            continue
        shown = ", ".join(number(float(c)) for c in per_index[:LISTED])
        more = ", ..." if size > LISTED else ""
        k = int(v.usable.sum())
        return Diagnosis(
            v.name, "one_index",
            f"analytic - numeric depends on the index along axis {axis} only ({shown}{more}), "
            f"the same along every other axis, in {every(k, v)}: a term broadcast along the "
            "wrong axis, or a per-row/per-column quantity (a bias, a mean) added or left out",
            where=f"axis {axis}", count=k)
    return None


@dataclass(frozen=True)
class Subset:
    """A structured set of elements: its shape ("every", "column", "per_row", "row",
    "per_column") and its words ("every element of column 2")."""

    shape: str
    text: str


def structure_of(wrong: np.ndarray, usable: np.ndarray) -> Subset | None:
    """Name the subset: one element per row, one column, one row, every element."""
    if np.array_equal(wrong, usable) and wrong.size >= 2:
        return Subset("every", "every element")
    if wrong.ndim < 2:
        return None
    rows = wrong.reshape(-1, wrong.shape[-1])
    n_rows, n_cols = rows.shape
    if n_rows < 2 or n_cols < 2:
        return None
    full_columns = np.flatnonzero(rows.all(axis=0))
    if len(full_columns) == 1 and rows.sum() == n_rows:
        return Subset("column", f"every element of column {int(full_columns[0])}")
    if np.all(rows.sum(axis=1) == 1):
        columns = np.argmax(rows, axis=1)
        listed = ", ".join(map(str, columns[:LISTED])) + (", ..." if n_rows > LISTED else "")
        return Subset("per_row",
                      f"exactly one element in each of the {n_rows} rows (columns {listed})")
    full_rows = np.flatnonzero(rows.all(axis=1))
    if len(full_rows) == 1 and rows.sum() == n_cols:
        return Subset("row", f"every element of row {int(full_rows[0])}")
    if np.all(rows.sum(axis=0) == 1):
        return Subset("per_column", f"exactly one element in each of the {n_cols} columns")
    return None
