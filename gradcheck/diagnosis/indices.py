"""repeated_index: the wrong rows are exactly those an index array names more than once.

``grad[idx] += upd`` with numpy's fancy indexing reads ``grad[idx]``, adds, and writes
back: an index named twice is written twice with the same old value plus one update, so
only one of its updates counts. ``np.add.at(grad, idx, upd)`` adds every one. The integer
arrays passed through check_pair and check_loss (``Report.index_arguments``) say which rows
each index array names, and how often.

That the wrong rows are the repeated ones is not evidence enough alone: a label array names
a class per row (an SVM's ``y``), and a backward that forgets the correct-class term is
wrong at the columns ``y`` names, repeated or not. The repeated rows must also hold what
fancy ``+=`` leaves there: every update alike (a negative drawn twice), analytic = numeric /
(times named); or, where the upstream gradient g is known (check_layer, check_pair) and the
output is the lookup ``W[idx]`` itself, analytic = g at one of the row's occurrences, the
update that was counted, and g at its one occurrence for a row named once.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import clearly, fits
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import listing

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View

SHOWN_ROWS = 6  # repeated rows quoted in a text


def repeated_index(v: View, ctx: Context) -> Diagnosis | None:
    """Every wrong element in a row (an index along some axis) that an index array names
    twice or more, every such row wrong, and the rows it names once right and nonzero."""
    wrong = v.failed & ~v.kink
    if not ctx.index_arguments or v.a.ndim == 0 or not wrong.any():
        return None
    for name, array in ctx.index_arguments.items():
        flat = np.asarray(array).reshape(-1).astype(np.int64)
        if flat.size < 2:
            continue
        for axis, size in enumerate(v.shape):
            if not np.all((flat >= -size) & (flat < size)):
                continue
            times = np.bincount(flat % size, minlength=size)
            found = _rows_named_twice(v, wrong, axis, times)
            if found is None:
                continue
            divided = _divided(v, axis, times, found)
            if divided or _one_update_counted(v, ctx, array, axis):
                return _diagnosis(v, name, axis, times, found, divided)
    return None


def _rows_named_twice(v: View, wrong: np.ndarray, axis: int,
                      times: np.ndarray) -> np.ndarray | None:
    """The repeated rows, when the wrong rows are exactly them and a row named once is
    right with a clearly nonzero gradient (the singles are summed right)."""
    other = tuple(i for i in range(v.a.ndim) if i != axis)
    wrong_rows = wrong.any(axis=other) if other else wrong
    usable_rows = v.usable.any(axis=other) if other else v.usable
    repeated = (times >= 2) & usable_rows
    if not repeated.any() or not np.array_equal(wrong_rows & usable_rows, repeated):
        return None
    once = np.expand_dims(times == 1, other) if other else times == 1
    if not (v.usable & once & clearly(v.n, v.bar)).any():
        return None  # no row named once shows that single updates are counted right
    return repeated


def _region(v: View, axis: int, rows: np.ndarray) -> np.ndarray:
    """The usable elements of the given rows (a boolean per index along axis)."""
    other = tuple(i for i in range(v.a.ndim) if i != axis)
    region = np.expand_dims(rows, other) if other else rows
    return np.broadcast_to(region, v.shape) & v.usable


def _divided(v: View, axis: int, times: np.ndarray, repeated: np.ndarray) -> bool:
    """Each update of a repeated row alike (a negative sample drawn twice): analytic is the
    numeric gradient over the times the row is named, at every element of those rows."""
    other = tuple(i for i in range(v.a.ndim) if i != axis)
    count = np.expand_dims(times, other) if other else times
    region = _region(v, axis, repeated)
    return (fits(v.a, v.n / np.maximum(count, 1), v.bar, region)
            and bool((region & clearly(v.n, v.bar)).any()))


def _one_update_counted(v: View, ctx: Context, array: np.ndarray, axis: int) -> bool:
    """The output is v[..., idx, ...] (the lookup along axis) and backward wrote one update
    per row: analytic along each row named by idx is the upstream gradient g at one of its
    occurrences (any one: which of them numpy's += keeps is not promised), at every usable
    element of the row. Needs g shaped v.shape[:axis] + idx.shape + v.shape[axis + 1:]."""
    g = ctx.upstream()
    idx = np.asarray(array).astype(np.int64)
    size = v.shape[axis]
    if g is None or g.shape != v.shape[:axis] + idx.shape + v.shape[axis + 1:]:
        return False
    before, after = int(np.prod(v.shape[:axis])), int(np.prod(v.shape[axis + 1:]))
    updates = g.reshape(before, idx.size, after)
    a, n, bar, usable = (values.reshape(before, size, after)
                         for values in (v.a, v.n, v.bar, v.usable))
    rows = idx.reshape(-1) % size
    telling = False
    for r in np.unique(rows):
        at = usable[:, r, :]
        if not at.any():
            continue
        if not any(fits(a[:, r, :], updates[:, p, :], bar[:, r, :], at)
                   for p in np.flatnonzero(rows == r)):
            return False
        telling = telling or bool((at & clearly(n[:, r, :], bar[:, r, :])).any())
    return telling


def _diagnosis(v: View, name: str, axis: int, times: np.ndarray,
               repeated: np.ndarray, divided: bool) -> Diagnosis:
    rows = np.flatnonzero(repeated)
    region = _region(v, axis, repeated)
    if v.a.ndim <= 2:
        noun = ("row", "column")[axis] if v.a.ndim == 2 else "element"
        plural = noun + "s"
    else:
        noun, plural = f"index along axis {axis}", f"indices along axis {axis}"
    target = f"{v.name}[{', '.join([':'] * axis + [name])}]"
    shown = ", ".join(f"{int(r)} ({int(times[r])} times)" for r in rows[:SHOWN_ROWS])
    more = ", ..." if len(rows) > SHOWN_ROWS else ""
    evidence = ("; there analytic = numeric / (times named), and every one it names once is "
                "right" if divided else "; there analytic is the upstream gradient of one "
                "occurrence alone, and every one it names once is right")
    _, indices = listing(v, region)
    return Diagnosis(
        v.name, "repeated_index",
        f"the wrong {plural} of {v.name} are exactly the {len(rows)} that {name} names more "
        f"than once ({shown}{more}){evidence}: {target} += ... (numpy's fancy-index +=) "
        f"counts a repeated index once; use np.add.at({v.name}, {_at(axis, name)}, ...), which "
        "adds every update", where=f"{plural} {name} repeats", elements=indices,
        count=int(region.sum()))


def _at(axis: int, name: str) -> str:
    """np.add.at's index for ``name`` along ``axis``: ``idx``, ``(slice(None), idx)``."""
    return name if axis == 0 else f"({', '.join(['slice(None)'] * axis + [name])})"


def label_pick(v: View, ctx: Context, wrong: np.ndarray) -> tuple[str, np.ndarray] | None:
    """An integer argument shaped like the rows of v (one class label per row, every label a
    valid index along the last axis) that picks every wrong element: ``x[i, y[i]]``, where a
    per-class term (the correct class's -num_pos of a hinge loss, the -1 of p - y) goes.
    With the elements it picks; None below two wrong elements (one is in some label's
    column by chance)."""
    if v.a.ndim < 2 or int(wrong.sum()) < 2:
        return None
    classes = v.shape[-1]
    for name, labels in ctx.index_arguments.items():
        if labels.shape != v.shape[:-1] or not np.all((labels >= 0) & (labels < classes)):
            continue
        picked = np.arange(classes) == np.asarray(labels, dtype=np.int64)[..., None]
        if not (wrong & ~picked).any():
            return name, picked
    return None


def pick_text(v: View, name: str) -> str:
    """``x[i, y[i]]``; ``x[i, j, y[i, j]]`` for more axes."""
    rows = "ijklmn"[:v.a.ndim - 1]
    return f"{v.name}[{', '.join(rows)}, {name}[{', '.join(rows)}]]"
