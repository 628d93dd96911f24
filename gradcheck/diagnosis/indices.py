"""repeated_index: the wrong rows are exactly those an index array names more than once.

``grad[idx] += upd`` with numpy's fancy indexing reads ``grad[idx]``, adds, and writes
back: an index named twice is written twice with the same old value plus one update, so
only one of its updates counts. ``np.add.at(grad, idx, upd)`` adds every one. The integer
arrays passed through check_pair and check_loss (``Report.index_arguments``) say which rows
each index array names, and how often.
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
            if found is not None:
                return _diagnosis(v, name, axis, times, found)
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


def _diagnosis(v: View, name: str, axis: int, times: np.ndarray,
               repeated: np.ndarray) -> Diagnosis:
    rows = np.flatnonzero(repeated)
    other = tuple(i for i in range(v.a.ndim) if i != axis)
    count = np.expand_dims(times, other) if other else times
    region = np.expand_dims(repeated, other) if other else repeated
    region = np.broadcast_to(region, v.shape) & v.usable
    # each update of a repeated row alike (a negative sample drawn twice): analytic is the
    # numeric gradient over the times the row is named
    divided = (fits(v.a, v.n / count, v.bar, region)
               and bool((region & clearly(v.n, v.bar)).any()))
    if v.a.ndim <= 2:
        noun = ("row", "column")[axis] if v.a.ndim == 2 else "element"
        plural = noun + "s"
    else:
        noun, plural = f"index along axis {axis}", f"indices along axis {axis}"
    target = f"{v.name}[{', '.join([':'] * axis + [name])}]"
    shown = ", ".join(f"{int(r)} ({int(times[r])} times)" for r in rows[:SHOWN_ROWS])
    more = ", ..." if len(rows) > SHOWN_ROWS else ""
    evidence = ("; there analytic = numeric / (times named), and every one it names once is "
                "right" if divided else "; every one it names once is right")
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
