"""recurrence: right at the last step of an axis and wrong at the steps before it.

Backpropagation through time sums, at step t, what step t's own output sends back and
what every later step sends back through the recurrence (dh_next). A gradient that
forgets the second term is right at the last step, which has no later step, and wrong at
nearly every element of every earlier one. Run the other way (a backward-direction
recurrence, a reversed cumulative sum), the first step is the right one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import clearly
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import listing

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View

MIN_STEPS = 3  # two steps are one right and one wrong: a slice, said elsewhere
# A corruption that hits elements at random leaves an end step right and the rest wrong
# with a chance of about (m / (m + M))^m (M / (m + M))^M for m elements at the end and M
# before: 2e-6 for 6 and 16, so both are required
END_EVIDENCE = 6  # clearly nonzero elements the right end step must show
WRONG_EVIDENCE = 16  # wrong elements the earlier steps must hold, together
NEARLY_ALL = 0.75  # share of an earlier step's elements that must be wrong


def recurrence(v: View, ctx: Context) -> Diagnosis | None:
    """Along one axis of the input (not the last of several: that holds features), the end
    step right with clearly nonzero values, and every other step wrong at nearly all its
    elements. Only the input is a sequence: a weight's rows are no steps in time."""
    wrong = v.failed & ~v.kink
    if v.name != ctx.input_name or int(wrong.sum()) < WRONG_EVIDENCE:
        return None
    axes = range(v.a.ndim - 1) if v.a.ndim >= 2 else range(v.a.ndim)
    for axis in axes:
        size = v.shape[axis]
        if size < MIN_STEPS:
            continue
        steps_wrong = _per_step(wrong, axis)
        steps_usable = _per_step(v.usable, axis)
        steps_clear = _per_step(v.usable & clearly(v.n, v.bar), axis)
        for end in (size - 1, 0):
            earlier = np.arange(size) != end
            if steps_wrong[end] or steps_clear[end] < END_EVIDENCE:
                continue
            if np.any(steps_usable[earlier] == 0) or np.any(
                    steps_wrong[earlier] < NEARLY_ALL * steps_usable[earlier]):
                continue
            return _diagnosis(v, wrong, axis, end)
    return None


def _per_step(mask: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(mask, axis, 0).reshape(mask.shape[axis], -1).sum(axis=1)


def _diagnosis(v: View, wrong: np.ndarray, axis: int, end: int) -> Diagnosis:
    size = v.shape[axis]
    last = end == size - 1
    k = int(wrong.sum())
    usable = int((v.usable & ~_step(v.shape, axis, end)).sum())
    end_name = _index_text(v, axis, -1 if last else 0)
    rest_name = _index_text(v, axis, slice(None, -1) if last else slice(1, None))
    growing = _grows_away_from(v, axis, end)
    grows = "; the difference grows at every step away from it" if growing else ""
    if last:
        why = ("the gradient that later steps send back through the recurrence (dh_next, "
               "carried from step t+1 to step t) is missing from this gradient: take it from "
               "the sum of the step's own upstream gradient and dh_next, as the weights' "
               "gradients do")
    else:
        why = ("a term carried from the earlier steps (a recurrence run from the end back, as "
               "in a backward-direction RNN or a reversed cumulative sum) is missing from this "
               "gradient")
    _, indices = listing(v, wrong)
    return Diagnosis(
        v.name, "recurrence",
        f"{end_name} (the {'last' if last else 'first'} of {size} steps along axis {axis}) is "
        f"right, and {rest_name}, every step {'before' if last else 'after'} it, is "
        f"wrong at {k} of its {usable} elements{grows}: {why}",
        where=f"{rest_name} (steps {'0' if last else '1'}..{size - 2 if last else size - 1} "
              f"along axis {axis})", elements=indices, count=k)


def _step(shape: tuple[int, ...], axis: int, index: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[(slice(None),) * axis + (index,)] = True
    return mask


def _index_text(v: View, axis: int, index: int | slice) -> str:
    """``x[:, -1, :]``, ``x[:, :-1, :]``."""
    if isinstance(index, slice):
        start = "" if index.start is None else str(index.start)
        stop = "" if index.stop is None else str(index.stop)
        at = f"{start}:{stop}"
    else:
        at = str(index)
    places = (at if i == axis else ":" for i in range(v.a.ndim))
    return f"{v.name}[{', '.join(places)}]"


def _grows_away_from(v: View, axis: int, end: int) -> bool:
    """The root mean square of analytic - numeric rises at every step away from ``end``."""
    d = np.where(v.usable, v.a - v.n, 0.0)
    per_step = np.sqrt(_per_step_sum(d ** 2, axis) / np.maximum(_per_step(v.usable, axis), 1))
    away = per_step[::-1] if end == v.shape[axis] - 1 else per_step
    return bool(np.all(np.diff(away) > 0))


def _per_step_sum(values: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1).sum(axis=1)
