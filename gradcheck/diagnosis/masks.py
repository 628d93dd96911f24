"""Masks: a derivative's mask missing or inverted, and zero/sign/scale on one side of a
threshold on the input."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.conditions import input_condition, threshold
from gradcheck.diagnosis.evidence import SUBSET_EVIDENCE, clearly
from gradcheck.diagnosis.factors import scale, sign, zero
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import counted, listing

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View


def missing_mask(v: View, ctx: Context) -> Diagnosis | None:
    """Analytic nonzero where numeric is 0, right elsewhere: at (nearly) all the zeros of
    numeric, or at exactly those a threshold on the input singles out (the x > 6 of a clip
    whose upper mask is missing, among the zeros of x < 0 it kept).

    A mask zeroes some elements and keeps others: right elements must be seen beside the
    wrong ones, and the wrong elements' numeric must be 0 in a sense they show (see
    :func:`numeric_zero`); a condition must leave right elements on its other side."""
    zero = v.usable & (np.abs(v.n) <= v.bar)
    wrong = v.failed & ~v.kink
    k = int(wrong.sum())
    if k < 2 or not np.all(zero[wrong]):
        return None
    if not numeric_zero(v, wrong, v.usable & ~wrong):
        return None
    condition = input_condition(v, ctx, wrong)
    most = k >= 0.75 * int(zero.sum())
    if not (most or (condition is not None and k >= SUBSET_EVIDENCE)):
        return None
    shown, indices = listing(v, wrong)
    others = int(zero.sum()) - k
    if condition is not None:
        where = f"exactly the elements with {condition}"
        why = (f"the mask ({condition.negated()}) that zeroes them, an activation's derivative "
               "like ReLU's, is missing")
    else:
        where = shown
        why = "a mask that zeroes them, an activation's derivative like ReLU's, is missing"
    at = f"the {counted(k)}" if not others else counted(k)
    also = f"; numeric is 0 at {others} more, and analytic with it" if others else ""
    return Diagnosis(
        v.name, "missing_mask",
        f"analytic is nonzero at {at} where numeric is 0 ({where}){also}; every other element "
        f"is right: {why} in backward", where=None if condition is None else str(condition),
        elements=indices, count=k)


def inverted_mask(v: View, ctx: Context) -> Diagnosis | None:
    """Analytic nonzero exactly where numeric is 0, and 0 where numeric is not."""
    clear_a, clear_n = clearly(v.a, v.bar), clearly(v.n, v.bar)
    small_a, small_n = np.abs(v.a) <= v.bar, np.abs(v.n) <= v.bar
    only_a = v.usable & clear_a & small_n
    only_n = v.usable & clear_n & small_a
    neither = v.usable & small_a & small_n
    if not (only_a.any() and only_n.any()) or not np.all((only_a | only_n | neither)[v.usable]):
        return None
    if not below(v, only_a, only_n):
        return None
    condition = input_condition(v, ctx, only_a)
    ka, kn = int(only_a.sum()), int(only_n.sum())
    where = f", exactly the elements with {condition}" if condition is not None else ""
    return Diagnosis(
        v.name, "inverted_mask",
        f"analytic is nonzero exactly where numeric is 0 ({counted(ka)}{where}) and 0 where "
        f"numeric is not ({counted(kn)}): the gradient goes to the wrong elements (an inverted "
        "mask, or routing to the wrong element, such as the argmin instead of the argmax)",
        where=None if condition is None else str(condition), count=ka + kn)


def numeric_zero(v: View, zeros: np.ndarray, right: np.ndarray) -> bool:
    """"Numeric is 0" at the ``zeros`` elements, with the ``right`` ones beside them, says
    something: there are right elements (with none, "every other element is right" is
    vacuous, and a mask separates nothing), and the numeric values at ``zeros`` are below
    those of every right element whose analytic value is nonzero (what the mask keeps). An
    error bar inflated by a huge analytic value holds numeric -0.8 "within 0"; beside kept
    elements of 1e-9 it is no zero."""
    if not right.any():
        return False
    return below(v, zeros, right & (v.a != 0))


def below(v: View, zeros: np.ndarray, nonzero: np.ndarray) -> bool:
    """Every |numeric| at ``zeros`` is below every one at ``nonzero`` (true when there are
    none there)."""
    if not nonzero.any():
        return True
    top = float(np.max(np.abs(v.n[zeros]), initial=0.0))
    return top < float(np.min(np.abs(v.n[nonzero])))


def region(v: View, ctx: Context) -> Diagnosis | None:
    """zero, sign or scale on a region of the input (x < 0), right elsewhere."""
    wrong = v.failed & ~v.kink
    if not wrong.any():
        return None
    # the region must leave out every clearly nonzero element that is right
    right = v.usable & ~wrong & clearly(v.n, v.bar)
    found = threshold(v, ctx, wrong, right)
    if found is None:
        return None
    condition, region = found
    if np.array_equal(region & v.usable, v.usable):
        return None  # the whole tensor: the tests above already said no
    for test in (zero, sign, scale):
        diagnosis = test(v, ctx, region, str(condition))
        if diagnosis is not None:
            return diagnosis
    return None
