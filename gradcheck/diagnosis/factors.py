"""analytic = c x numeric: zero (c = 0), sign (c = -1), scale (one c, with its reason
where it is one plain fact), on the whole tensor or on a region of it."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import CLEAR, FIT_EVIDENCE, NAMED_EVIDENCE, clearly, fits
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import counted, every, factor_text, fitted_text, number

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View


def zero(v: View, ctx: Context, where: np.ndarray | None = None,
          condition: str = "") -> Diagnosis | None:
    """Analytic exactly 0 (on the region), numeric not."""
    mask = v.usable if where is None else v.usable & where
    region = v.a if where is None else v.a[where]
    if region.size == 0 or np.any(region != 0) or not _shown(v, mask):
        return None
    k = int(mask.sum())
    worst = np.unravel_index(int(np.argmax(np.where(mask, np.abs(v.n), -1.0))), v.shape)
    worst_text = (f"largest numeric {number(float(v.n[worst]))} at "
                  f"{v.element(tuple(int(i) for i in worst))}")
    if where is None:
        text = (f"analytic is 0 in {every(k, v)} while numeric is not ({worst_text}): this "
                "gradient is never computed (left at zeros, or overwritten)")
    else:
        text = (f"analytic is 0 at all {counted(k)} where {condition} while numeric is not "
                f"({worst_text}), and right where it is not: the derivative on that side is "
                "dropped in backward")
    return Diagnosis(v.name, "zero", text, factor=0.0, where=condition or None, count=k)


def sign(v: View, ctx: Context, where: np.ndarray | None = None,
          condition: str = "") -> Diagnosis | None:
    mask = v.usable if where is None else v.usable & where
    if not _shown(v, mask) or not fits(v.a, -v.n, v.bar, mask):
        return None
    k = int(mask.sum())
    if where is None:
        text = (f"analytic = -numeric in {every(k, v)}: the sign is flipped (a minus sign lost or "
                "added, or a - b written as b - a)")
    else:
        text = (f"analytic = -numeric at all {counted(k)} where {condition}, right elsewhere: "
                "the sign of the derivative on that side is flipped")
    return Diagnosis(v.name, "sign", text, factor=-1.0, where=condition or None, count=k)


def _shown(v: View, mask: np.ndarray) -> bool:
    """Enough clearly nonzero elements in mask to read 0 or -1 off (NAMED_EVIDENCE, or the
    one element of a one-element tensor)."""
    needed = 1 if v.a.size == 1 else NAMED_EVIDENCE
    return int((mask & clearly(v.n, v.bar)).sum()) >= needed


def candidates(ctx: Context) -> list[tuple[float, str]]:
    """Scale factors with a plain reason each: 2, one dimension, a number of elements (and
    their inverses). Anything composite (2 x 5, 8/2) would be a story, not a fact."""
    mean = "a sum where a mean was meant, or the other way round"
    two = "the 2 of d/dx x^2 = 2x"
    dims = [(d, where) for d, where in ctx.dims if d != 2]
    two_is = next((where for d, where in ctx.dims if d == 2), None)
    if two_is is None:
        named = [(2.0, f"a factor 2 ({two}, or a 1/2 in the loss)"),
                 (0.5, f"a factor 1/2 ({two} lost, or a 1/2 in the loss)")]
    else:  # both are plain facts; which one it is, the numbers cannot tell
        why = f"2 is {two_is}, and also {two}: {mean}, or a factor 2 lost or added"
        named = [(2.0, why), (0.5, why)]
    for d, where in dims:
        named += [(float(d), f"{d} is {where}; {mean}"), (1.0 / d, f"{d} is {where}; {mean}")]
    return named + [(-c, why + ", and the sign flipped") for c, why in named]


def scale(v: View, ctx: Context, where: np.ndarray | None = None,
           condition: str = "") -> Diagnosis | None:
    """analytic = c x numeric, one c."""
    mask = v.usable if where is None else v.usable & where
    if not (mask & clearly(v.n, v.bar)).any():
        return None
    k = int(mask.sum())
    over = f"in {every(k, v)}" if where is None else f"at all {counted(k)} where {condition}"
    rest = "" if where is None else ", right elsewhere"
    named = named_factor(v, ctx, mask)
    if named is not None:
        c, why = named
        return Diagnosis(v.name, "scale",
                         f"analytic = {factor_text(c)} x numeric {over}{rest}: {why}",
                         factor=c, where=condition or None, count=k)
    fitted = fitted_factor(v, mask)
    if fitted is None:
        return None
    why = ("one factor in every element: a constant multiplied in, or missing, in backward"
           if where is None else "the slope backward uses on that side is off by this factor")
    return Diagnosis(v.name, "scale",
                     f"analytic = {fitted_text(fitted)} x numeric {over}{rest}: {why}",
                     factor=fitted, where=condition or None, count=k)


def named_factor(v: View, ctx: Context, mask: np.ndarray) -> tuple[float, str] | None:
    """The first candidate factor (with its reason) that holds at every element of mask,
    shown by NAMED_EVIDENCE elements where both sides are clearly nonzero."""
    clear = mask & clearly(v.n, v.bar)
    # the most telling element (largest |numeric| in error bars) rules out most candidates
    # with one comparison each, before any is held to every element
    best = int(np.argmax(np.where(clear, np.abs(v.n) / v.bar, -1.0)))
    a0, n0, bar0 = v.a.flat[best], v.n.flat[best], v.bar.flat[best]
    for c, why in candidates(ctx):
        if not abs(a0 - c * n0) <= abs(c) * bar0:
            continue
        shows = int((clear & clearly(v.a, abs(c) * v.bar)).sum()) >= NAMED_EVIDENCE
        if shows and fits(v.a, c * v.n, abs(c) * v.bar, mask):
            return c, why
    return None


def fitted_factor(v: View, mask: np.ndarray) -> float | None:
    """One factor c with analytic = c x numeric at every element of mask, fitted from the
    clearly nonzero ones (weighted by their error bars) and held to all of them with the
    fit's own uncertainty added; None when it does not hold, or is 1 or 0."""
    clear = mask & clearly(v.n, v.bar)
    if int(clear.sum()) < FIT_EVIDENCE:
        return None
    weights = 1.0 / v.bar[clear] ** 2
    information = float(np.sum(weights * v.n[clear] ** 2))
    c = float(np.sum(weights * v.a[clear] * v.n[clear]) / information)
    sigma = 1.0 / math.sqrt(information)
    if not math.isfinite(c) or not (clear & clearly(v.a, abs(c) * v.bar)).any():
        return None
    if abs(c - 1.0) <= CLEAR * sigma or abs(c) <= CLEAR * sigma:
        return None  # not told apart from a right gradient, nor from zero
    if not fits(v.a, c * v.n, max(abs(c), 1.0) * v.bar + 2 * sigma * np.abs(v.n), mask):
        return None
    return c


def relation_of(v: View, mask: np.ndarray) -> tuple[float, str] | None:
    """What analytic is at every element of mask, in terms of numeric: 0, -numeric or one
    c x numeric (no reason given: the elements may be any subset), with that c."""
    clear = mask & clearly(v.n, v.bar)
    if not clear.any():
        return None
    if np.all(v.a[mask] == 0):
        return 0.0, "analytic is 0"
    if fits(v.a, -v.n, v.bar, mask):
        return -1.0, "analytic = -numeric"
    c = fitted_factor(v, mask)
    return None if c is None else (c, f"analytic = {fitted_text(c)} x numeric")
