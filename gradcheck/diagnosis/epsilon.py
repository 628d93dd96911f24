"""epsilon: a small constant in the loss (log(p + 1e-7)) that backward leaves out.

-log(p + eps) has the derivative -1 / (p + eps); a backward written for -log(p) gives
-1 / p, so analytic = numeric x (p + eps) / p, that is analytic - numeric = eps x numeric /
p: one eps for every element, read off a weighted fit and held to each. p is the checked
value itself (probabilities passed in), 1 - p (the other log of a binary cross-entropy),
or, for logits x under softmax, the target's probability softmax(x)[target] of each row
(backward p - y, forward log(p + eps)); the target is the integer label passed through, or
the one column of a row whose numeric gradient has the other sign.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import CLEAR, FIT_EVIDENCE, clearly, fits
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import every, number

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View

LARGEST = 1e-2  # an eps beyond this is no guard against log(0), but a different loss


def epsilon(v: View, ctx: Context) -> Diagnosis | None:
    """analytic - numeric = eps x numeric / p for one small eps > 0 (see the module)."""
    if v.value is None or v.a.ndim == 0:
        return None
    d = v.a - v.n
    # evidence: several elements the check found wrong, each explained by the one eps (a
    # single wrong element would fit an eps of its own)
    if int((v.failed & v.usable).sum()) < FIT_EVIDENCE:
        return None
    for p, what, guard in _probabilities(v, ctx):
        fitted = _fit(v, d, p)
        if fitted is not None:
            return _diagnosis(v, fitted, what, guard)
    return None


def _probabilities(v: View, ctx: Context) -> Iterator[tuple[np.ndarray, str, str]]:
    """(p, what p is, the fix) for each reading of the checked value."""
    x = v.value
    assert x is not None
    name = v.name
    fix = "divide by {} + eps in backward, as the derivative of forward's log does"
    itself = f"p = {name}" if name != "p" else "p the checked values themselves"
    yield x, itself + f": log({name} + eps)", fix.format(name)
    yield (1 - x, f"p = 1 - {name}: log(1 - {name} + eps)",
           f"divide by 1 - {name} + eps in backward, as the derivative of forward's log does")
    for sign in (1.0, -1.0):  # binary cross-entropy: log(p) where y = 1, log(1 - p) else
        yield (np.where(sign * v.n < 0, x, 1 - x),
               f"p = {name} or 1 - {name} by the label: log({name} + eps) and "
               f"log(1 - {name} + eps)", "divide by p + eps in backward as forward does")
    if v.a.ndim >= 1 and v.shape[-1] >= 2:
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        s = e / np.sum(e, axis=-1, keepdims=True)
        for target in _targets(v, ctx):
            p_target = np.take_along_axis(s, target[..., None], axis=-1)
            yield (np.broadcast_to(p_target, v.shape),
                   f"p = softmax({name})[target] of each row: log(p + eps) of the softmax, "
                   "backward p - y",
                   "scale each row of p - y by p / (p + eps), or compute the loss as "
                   f"-log_softmax({name})[target], which needs no guard")


def _targets(v: View, ctx: Context) -> Iterator[np.ndarray]:
    """The target column of each row: an integer label array passed through, shaped like
    the rows; or the one column whose numeric gradient has the other sign (s - y)."""
    rows = v.shape[:-1]
    classes = v.shape[-1]
    for labels in ctx.index_arguments.values():
        if labels.shape == rows and np.all((labels >= 0) & (labels < classes)):
            yield labels.astype(np.int64)
    if classes >= 3:
        negative = v.n < 0
        count = negative.sum(axis=-1)
        lone = np.where(count == 1, np.argmax(negative, axis=-1),
                        np.where(count == classes - 1, np.argmin(negative, axis=-1), -1))
        if np.all(lone >= 0):
            yield lone


def _fit(v: View, d: np.ndarray, p: np.ndarray) -> float | None:
    """eps with d = eps x numeric / p at every usable element, clearly > 0 and small."""
    clear_n = v.usable & clearly(v.n, v.bar)
    if not np.all(p[clear_n] > 0):
        return None
    with np.errstate(all="ignore"):
        r = np.where(v.usable & (p > 0), v.n / p, 0.0)
    weight = np.where(v.usable, 1.0 / v.bar ** 2, 0.0)
    information = float(np.sum(weight * r * r))
    if not information > 0:
        return None
    eps = float(np.sum(weight * r * np.where(v.usable, d, 0.0)) / information)
    sigma = 1.0 / math.sqrt(information)
    if not (math.isfinite(eps) and CLEAR * sigma < eps <= LARGEST):
        return None
    if not fits(d, eps * r, v.bar + 2 * sigma * np.abs(r), v.usable):
        return None
    return _rounded(eps, sigma)


def _rounded(eps: float, sigma: float) -> float:
    """The roundest value within two sigmas (1e-07, not 1.00003e-07)."""
    for digits in range(1, 7):
        rounded = float(f"{eps:.{digits - 1}e}")
        if abs(rounded - eps) <= 2 * sigma:
            return rounded
    return eps


def _diagnosis(v: View, eps: float, what: str, fix: str) -> Diagnosis:
    k = int(v.usable.sum())
    shown = number(eps)
    return Diagnosis(
        v.name, "epsilon",
        f"analytic = numeric x (p + eps) / p with one eps = {shown} in {every(k, v)} ({what}): "
        f"the loss adds {shown} to p before the log (a guard against log(0)) and backward "
        f"differentiates the log without it, which shows where p is small; "
        f"{fix.replace('eps', shown)}", factor=eps, count=k)
