"""diagonal_only: the diagonal of a row-wise map's Jacobian taken for the whole of it.

softmax (and log-softmax) make each output of a row depend on every input of the row: the
Jacobian of s = softmax(x) is diag(s) - s s^T, and backward owes s * (g - sum(g * s)). A
backward that looks elementwise, s (1 - s) g, keeps the diagonal alone.

From the arrays alone: with s = softmax(x) along an axis, the numeric gradient of a softmax
is n = s (g - m) (m = sum(g s) per row), and the diagonal-only analytic is a = s (1 - s) g;
so a - (1 - s) n = s (1 - s) m, one unknown m per row, held to every element of it. The
same identity holds for log-softmax (n = g - s sum(g), a = (1 - s) g, m = sum(g)). Where
the upstream gradient g is known (check_layer, check_pair), it tells the two apart.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import CLEAR, FIT_EVIDENCE, fits
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import every

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View


def diagonal_only(v: View, ctx: Context) -> Diagnosis | None:
    """a - (1 - s) n = s (1 - s) m_row for s = softmax(value) along one axis, one m per
    row, at every usable element; m clearly nonzero in some row."""
    if v.value is None or v.a.ndim == 0:
        return None
    for axis in reversed(range(v.a.ndim)):
        if v.shape[axis] < 2:
            continue
        s = _softmax(v.value, axis)
        if _fits_diagonal(v, s, axis):
            return _diagnosis(v, ctx, s, axis)
    return None


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _fits_diagonal(v: View, s: np.ndarray, axis: int) -> bool:
    e = v.a - (1 - s) * v.n
    c = s * (1 - s)
    weight = np.where(v.usable, 1.0 / v.bar ** 2, 0.0)
    information = np.sum(weight * c * c, axis=axis, keepdims=True)
    with np.errstate(all="ignore"):
        m = np.sum(weight * c * np.where(v.usable, e, 0.0), axis=axis, keepdims=True) / information
        sigma = 1.0 / np.sqrt(information)
    rows = np.sum(v.usable, axis=axis, keepdims=True)
    # evidence: each row fits one m to its elements, so a row of k elements tests k - 1
    if int(np.sum(np.maximum(rows - 1, 0))) < FIT_EVIDENCE:
        return False
    if not np.any((rows >= 2) & (np.abs(m) > CLEAR * sigma)):
        return False  # m = 0 everywhere: a = (1 - s) n, some other story
    predicted = np.where(np.isfinite(m), c * m, np.nan)
    slack = v.bar + 2 * np.where(np.isfinite(sigma), sigma, np.inf) * c
    return fits(e, predicted, slack, v.usable & (rows >= 2)) and _rows_covered(v, rows)


def _rows_covered(v: View, rows: np.ndarray) -> bool:
    """Every wrong element lies in a row the fit tested (two elements or more)."""
    return bool(np.all((np.broadcast_to(rows, v.shape) >= 2)[v.failed & ~v.kink]))


def _diagnosis(v: View, ctx: Context, s: np.ndarray, axis: int) -> Diagnosis:
    k = int(v.usable.sum())
    which = _which(v, ctx, s)
    along = "the last axis" if axis == v.a.ndim - 1 else f"axis {axis}"
    if which == "softmax":
        head = (f"analytic = s (1 - s) x dout in {every(k, v)}, s = softmax({v.name}) along "
                f"{along}: the diagonal of the softmax Jacobian alone")
        fix = f"s * (dout - (dout * s).sum(axis={axis}, keepdims=True))"
    elif which == "log_softmax":
        head = (f"analytic = (1 - s) x dout in {every(k, v)}, s = softmax({v.name}) along "
                f"{along}: the diagonal of the log-softmax Jacobian alone")
        fix = f"dout - s * dout.sum(axis={axis}, keepdims=True)"
    else:
        head = (f"analytic is the diagonal of the Jacobian of softmax (s (1 - s) x dout) or of "
                f"log-softmax ((1 - s) x dout) alone, s = softmax({v.name}) along {along}, in "
                f"{every(k, v)}")
        fix = (f"s * (dout - (dout * s).sum(axis={axis}, keepdims=True)) for softmax, "
               f"dout - s * dout.sum(axis={axis}, keepdims=True) for log-softmax")
    return Diagnosis(
        v.name, "diagonal_only",
        f"{head}: each output depends on every input of its row, and backward drops the "
        f"off-diagonal terms (-s_i s_j); use {fix}", where=f"axis {axis}", count=k)


def _which(v: View, ctx: Context, s: np.ndarray) -> str:
    """softmax or log_softmax, where the upstream gradient says which; "" otherwise."""
    if v.name != ctx.input_name:
        return ""
    g = ctx.upstream()
    if g is None or g.shape != v.shape:
        return ""
    for name, diagonal in (("softmax", s * (1 - s)), ("log_softmax", 1 - s)):
        if fits(v.a, diagonal * g, v.bar, v.usable):
            return name
    return ""
