"""location: where the wrong elements lie, when no kind of mistake fits.

The smallest of these supports that holds every wrong element of a tensor, and leaves out
right elements with clearly nonzero values (so "the rest is right" says something):

- a box, one index set per axis, each a plain slice: ``x[:, :-1, :]`` (every step but the
  last), ``W[2]``, ``x[:, 1::2]`` (a stride), ``b[[0, 3]]`` (a few indices);
- a threshold on the input, exact (``x > 0.5``), as the mask rules name them;
- the rows an integer argument names more than once;
- the element an integer label array picks in each row (``x[i, y[i]]``).

It says how many of the support's elements are wrong and what share of the summed
|analytic - numeric| lies in it: a place to look, not a cause.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.conditions import threshold
from gradcheck.diagnosis.evidence import clearly
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.indices import label_pick, pick_text
from gradcheck.diagnosis.words import counted, listing

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View

LISTED_INDICES = 4  # an axis's index set given as a list up to this many
RIGHT_EVIDENCE = 2  # clearly nonzero right elements outside the support


@dataclass(frozen=True)
class Support:
    """A set of elements that holds every wrong one, and its words."""

    mask: np.ndarray
    where: str  # ``x[:, :-1, :]``, ``x > 0.5``
    words: str  # what it is, for a person: "(indices 0..3 along axis 1)"


def location(v: View, ctx: Context) -> Diagnosis | None:
    """The smallest support of the wrong elements, with the right ones outside it."""
    wrong = v.failed & ~v.kink
    if not wrong.any():
        return None
    right = v.usable & ~wrong & clearly(v.n, v.bar)
    supports = [s for s in (_box(v, wrong), _condition(v, ctx, wrong),
                            _repeated(v, ctx, wrong), _picked(v, ctx, wrong)) if s is not None]
    supports = [s for s in supports if int((right & ~s.mask).sum()) >= RIGHT_EVIDENCE]
    if not supports:
        return None
    best = min(supports, key=lambda s: int((s.mask & v.usable).sum()))
    return _diagnosis(v, wrong, best)


def _box(v: View, wrong: np.ndarray) -> Support | None:
    """One plain index set per axis: the indices along it where some element is wrong."""
    places, words, mask = [], [], np.ones(v.shape, dtype=bool)
    for axis, size in enumerate(v.shape):
        indices = np.unique(np.nonzero(wrong)[axis])
        place, word = _index_set(indices, size)
        if place is None:  # no plain words for it: the whole axis
            place, word = ":", ""
        places.append(place)
        if word:
            words.append(f"{word} along axis {axis}" if v.a.ndim > 1 else word)
        along = np.zeros(size, dtype=bool)
        along[indices if place != ":" else slice(None)] = True
        mask &= np.expand_dims(along, tuple(i for i in range(v.a.ndim) if i != axis))
    if all(place == ":" for place in places):
        return None
    while len(places) > 1 and places[-1] == ":":
        places.pop()
    return Support(mask, f"{v.name}[{', '.join(places)}]", "; ".join(words))


def _index_set(indices: np.ndarray, size: int) -> tuple[str | None, str]:
    """A slice's text for a set of indices along an axis of ``size``, with words."""
    k = len(indices)
    first, last = int(indices[0]), int(indices[-1])
    if k == size:
        return ":", ""
    if k == 1:
        return str(first), f"index {first} only"
    if last - first + 1 == k:  # contiguous
        start = "" if first == 0 else str(first)
        stop = "" if last == size - 1 else ("-1" if last == size - 2 else str(last + 1))
        outside = _outside_words(first, last, size)
        return f"{start}:{stop}", f"indices {first}..{last}{outside}"
    step = int(indices[1] - indices[0])
    if step >= 2 and np.array_equal(indices, np.arange(first % step, size, step)):
        return f"{first if first else ''}::{step}", f"every {_ordinal(step)} index from {first}"
    if k <= LISTED_INDICES:
        listed = ", ".join(map(str, indices.tolist()))
        return f"[{listed}]", f"indices {listed}"
    return None, ""


def _outside_words(first: int, last: int, size: int) -> str:
    if first == 0 and last == size - 2:
        return f" (all but the last, {size - 1})"
    if first == 1 and last == size - 1:
        return " (all but the first, 0)"
    return ""


def _ordinal(n: int) -> str:
    return {2: "second", 3: "third", 4: "fourth"}.get(n, f"{n}th")


def _condition(v: View, ctx: Context, wrong: np.ndarray) -> Support | None:
    found = threshold(v, ctx, wrong, v.usable & ~wrong)
    if found is None:
        return None
    condition, mask = found
    return Support(mask, str(condition), f"the elements with {condition}, exactly")


def _repeated(v: View, ctx: Context, wrong: np.ndarray) -> Support | None:
    """The rows (along axis 0) that an integer argument names more than once."""
    if v.a.ndim == 0:
        return None
    size = v.shape[0]
    for name, array in ctx.index_arguments.items():
        flat = np.asarray(array).reshape(-1).astype(np.int64)
        if flat.size < 2 or not np.all((flat >= -size) & (flat < size)):
            continue
        repeated = np.bincount(flat % size, minlength=size) >= 2
        mask = np.broadcast_to(repeated.reshape((size,) + (1,) * (v.a.ndim - 1)), v.shape)
        if repeated.any() and not (wrong & ~mask).any():
            return Support(np.array(mask), f"the rows {name} names more than once",
                           f"{counted(int(repeated.sum()), 'row')} of {size}")
    return None


def _picked(v: View, ctx: Context, wrong: np.ndarray) -> Support | None:
    """The element a label array picks in each row."""
    found = label_pick(v, ctx, wrong)
    if found is None:
        return None
    name, picked = found
    return Support(picked, pick_text(v, name), f"the element {name} picks in each row")


def _diagnosis(v: View, wrong: np.ndarray, support: Support) -> Diagnosis:
    k = int(wrong.sum())
    inside = int((support.mask & v.usable).sum())
    outside = int((v.usable & ~support.mask).sum())
    error = np.where(v.usable, np.abs(v.a - v.n), 0.0)
    total = float(error.sum())
    share = float(error[support.mask].sum()) / total if total > 0 else 1.0
    words = f" ({support.words})" if support.words else ""
    filled = (f"all {inside} of its elements wrong" if inside == k
              else f"{k} of its {inside} elements wrong")
    _, indices = listing(v, wrong)
    return Diagnosis(
        v.name, "location",
        f"no known kind fits, but every wrong element lies in {support.where}{words}: "
        f"{filled}, holding {_percent(share)} of the summed |analytic - numeric|; the "
        f"{outside} elements outside it are right. Look at what this part of {v.name} has "
        "that the rest has not", where=support.where, elements=indices, count=k)


def _percent(share: float) -> str:
    if share >= 0.9995:
        return "all"
    return f"{100 * share:.3g}%"
