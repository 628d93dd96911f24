"""analytic = numeric rearranged: swapped with another tensor, transposed, reversed,
shifted by one."""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck.diagnosis.evidence import (
    CLEAR,
    FIT_EVIDENCE,
    ISOLATED_SHARE,
    clearly,
    fits,
    mostly_nonzero,
)
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import every

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View


def swapped(v: View, ctx: Context) -> Diagnosis | None:
    """This tensor's analytic is another tensor's numeric."""
    for u in ctx.views:
        if u is v or u.shape != v.shape:
            continue
        both = v.usable & u.usable
        if both.sum() < max(1, v.usable.sum() // 2) or not (both & clearly(u.n, u.bar)).any():
            continue
        if not fits(v.a, u.n, u.bar, both):
            continue
        mutual = fits(u.a, v.n, v.bar, both) and (both & clearly(v.n, v.bar)).any()
        k = int(both.sum())
        text = (f"the analytic gradient of {v.name} equals the numeric gradient of {u.name} "
                f"in {every(k, v)}: ")
        text += (f"the gradients of {v.name} and {u.name} are swapped" if mutual else
                 f"{v.name} was given {u.name}'s gradient (a copy-paste, or the wrong key)")
        return Diagnosis(v.name, "swapped", text, other=u.name, count=k)
    return None


def transpose(v: View, ctx: Context) -> Diagnosis | None:
    """analytic = numeric.T on a square matrix that is not symmetric."""
    if len(v.shape) != 2 or v.shape[0] != v.shape[1] or v.shape[0] < 2:
        return None
    both = v.usable & v.usable.T
    bar = np.maximum(v.bar, v.bar.T)
    asymmetric = both & (np.abs(v.n - v.n.T) > CLEAR * (v.bar + v.bar.T))
    if not asymmetric.any() or not fits(v.a, v.n.T, bar, both):
        return None
    k, size = int(both.sum()), v.shape[0]
    return Diagnosis(
        v.name, "transpose",
        f"analytic = numeric transposed in {every(k, v)}: {v.name}[i, j] holds the value of "
        f"{v.name}[j, i], and the {size} diagonal elements, which a transpose leaves in place, "
        "are right (a product in the wrong order, e.g. g.T @ x for x.T @ g, or a missing .T)",
        count=k)


def reversed_(v: View, ctx: Context) -> Diagnosis | None:
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
        if not asymmetric.any() or not mostly_nonzero(flipped_n, flipped_bar, both):
            continue
        if not fits(v.a, flipped_n, np.maximum(v.bar, flipped_bar), both):
            continue
        k = int(both.sum())
        along = (f"along axis {axis[0]}" if len(axis) == 1
                 else f"along axes {axis[0]} and {axis[1]} (rotated by 180 degrees)"
                 if len(axis) == 2 else "along every axis (rotated by 180 degrees)")
        return Diagnosis(
            v.name, "reversed",
            f"analytic = numeric reversed {along} in {every(k, v)}: element i holds the value "
            "of element n-1-i (a kernel flipped: convolution where cross-correlation was "
            "meant, or the other way round; or an index counted from the wrong end)",
            where=along, count=k)
    return None


def shifted(v: View, ctx: Context) -> Diagnosis | None:
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
            if not mostly_nonzero(moved_n, moved_bar, both):
                continue
            bar = np.maximum(v.bar, moved_bar)
            if not fits(v.a, moved_n, bar, inside):
                continue
            edge_text = _edge_text(v, moved_n, bar, both & edge, axis, edge_index)
            if edge_text is None:
                continue
            k = int(inside.sum())
            way = "i - 1" if shift == 1 else "i + 1"
            return Diagnosis(
                v.name, "shifted",
                f"analytic = numeric shifted by one along axis {axis}: element i holds the value "
                f"of element {way} in {every(k, v)} that have one ({edge_text}): an index off "
                "by one", where=f"axis {axis}, by {shift:+d}", count=k)
    return None


def _edge_text(v: View, moved_n: np.ndarray, bar: np.ndarray, edge: np.ndarray, axis: int,
               edge_index: int) -> str | None:
    """What the slice a shift leaves over holds: the wrapped-around values, 0, or other
    values; None when other values would leave more than a quarter of the tensor
    unexplained (an axis of 3)."""
    where = v.slice_name(axis, edge_index)
    if fits(v.a, moved_n, bar, edge):
        return f"{where} wraps around"
    if edge.any() and np.all(v.a[edge] == 0):
        return f"{where} is 0"
    if v.shape[axis] * ISOLATED_SHARE < 1:
        return None
    return f"{where} holds other values, neither 0 nor wrapped around"
