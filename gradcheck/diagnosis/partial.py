"""Part of a tensor wrong: one slice, a few isolated elements; and fast mode, which
measured only the elements its random directions pointed to."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import ISOLATED_MAX, ISOLATED_SHARE, LISTED, clearly
from gradcheck.diagnosis.factors import relation_of
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.indices import label_pick, pick_text
from gradcheck.diagnosis.ties import tie
from gradcheck.diagnosis.words import element_note, every, listing, pair_text
from gradcheck.text import unravel

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View


def slice_(v: View, ctx: Context) -> Diagnosis | None:
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
        relation = relation_of(v, v.usable & region)
        if relation is None or int((v.usable & region & clearly(v.n, v.bar)).sum()) < 2:
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
            f"{holds} in {every(k, v)}; every other element is right: {why}",
            factor=factor, where=where, count=k)
    return None


def isolated(v: View, ctx: Context) -> Diagnosis | None:
    """A few wrong elements, all the others right."""
    k = int(v.failed.sum())
    measured = int(v.measured.sum())
    total = v.a.size
    if v.lower_bound or k == 0 or k > ISOLATED_MAX or k >= total or (
            v.mode != "fast" and k > ISOLATED_SHARE * measured):
        return None
    flat = np.flatnonzero(v.failed.reshape(-1))
    indices = [unravel(int(f), v.shape) for f in flat]
    details = "; ".join(f"{v.element(i)}: {pair_text(float(v.a[i]), float(v.n[i]))}"
                        + element_note(float(v.a[i]), float(v.n[i]), float(v.bar[i]))
                        for i in indices[:LISTED])
    others = ("the random-direction tests cleared all the others" if v.mode == "fast"
              else f"all {total - k} others are right" if not v.unverified
              else "the others are right or could not be verified")
    if v.kink[v.failed].all():
        others = f"{'it sits' if k == 1 else 'all sit'} on kinks (ties, zeros); {others}"
    picked = label_pick(v, ctx, v.failed)
    if picked is not None:  # a fact about where they are, not a cause
        name = picked[0]
        others = f"each is the element {name} picks in its row, {pick_text(v, name)}; {others}"
    return Diagnosis(
        v.name, "isolated",
        f"{k} of {total} elements {'is' if k == 1 else 'are'} wrong ({details}); {others}: "
        "look at what is special about "
        + ("that element (an index off by one, an edge case)" if k == 1 else
           "those elements (an index off by one, an edge case)"),
        elements=indices, count=k)


def fast(v: View, ctx: Context) -> Diagnosis:
    """Fast mode: the few wrong elements localization found, or a word that full mode would
    tell. The measured elements are those the random directions pointed to, mostly wrong
    ones: a pattern among them says nothing about the rest of the tensor."""
    if v.failed.any() and not v.lower_bound:  # localization finished: every wrong one known
        found = tie(v, ctx) or isolated(v, ctx)
        if found is not None:
            return found
    return needs_full(v)


def needs_full(v: View) -> Diagnosis:
    measured, total = int(v.measured.sum()), v.a.size
    tail = "mode='full' would diagnose it (2 loss evaluations per element)"
    k = int(v.failed.sum())
    if not k:
        return Diagnosis(
            v.name, "needs_full",
            f"fast mode measured {measured} of {total} elements of {v.name}, too few to name "
            f"the mistake; {tail}", count=measured)
    more = "; it stopped looking there, and more may be wrong" if v.lower_bound else ""
    shown, indices = listing(v, v.failed)
    relation = relation_of(v, v.failed & ~v.kink)
    seen = f"; at every wrong one, {relation[1]}" if relation else ""
    return Diagnosis(
        v.name, "needs_full",
        f"fast mode measured {measured} of {total} elements of {v.name} one by one: those its "
        f"random-direction tests pointed to, {k} of them wrong ({shown}){more}{seen}. They "
        f"are not a fair sample of {v.name}, so no pattern is claimed for the whole tensor: "
        f"{tail}", elements=indices, count=measured)
