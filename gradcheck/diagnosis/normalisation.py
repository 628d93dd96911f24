"""mode_mismatch: a normalisation whose backward differentiates the other mode's formula.

Batch normalisation has two forwards: training normalises with the batch's own mean and
variance, y = gamma (x - mean) / sqrt(var + eps) + beta, whose gradient is

    dx = alpha (g - mean(g)) - beta' (x - mean) mean(g (x - mean))   per feature,
    alpha = gamma / sqrt(var + eps), beta' = gamma / (var + eps)^(3/2);

evaluation ("test", frozen) mode normalises with running statistics, constants for the
gradient: dx = k g per feature. A layer run in one mode and differentiated in the other
has one of the two formulas in analytic and the other in numeric. Each is tested as a fit,
two unknowns (alpha, beta') or one (k) per feature, held to every element; alpha / beta'
must be var + eps for a small eps >= 0. The same over other axes is layer normalisation.
Needs the upstream gradient g (check_layer, check_pair) and the input's value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import CLEAR, FIT_EVIDENCE, clearly, fits
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import every

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View

MIN_GROUP = 4  # elements a feature's statistics run over: two unknowns, two left to test
EPS_SHARE = 0.1  # eps may be up to this share of the variance (plus EPS_FLOOR)
EPS_FLOOR = 1e-3


@dataclass(frozen=True)
class _Axes:
    reduced: tuple[int, ...]  # the axes the statistics run over
    name: str  # "batch normalisation over axis 0"


def mode_mismatch(v: View, ctx: Context) -> Diagnosis | None:
    """analytic fits one mode's gradient and numeric the other's (see the module)."""
    if v.name != ctx.input_name or v.value is None or v.a.ndim < 2:
        return None
    g = ctx.upstream()
    if g is None or g.shape != v.shape:
        return None
    for axes in _candidates(v.a.ndim):
        group = int(np.prod([v.shape[a] for a in axes.reduced]))
        if group < MIN_GROUP:
            continue
        batch_a, batch_n = _batch_fit(v, g, v.a, axes), _batch_fit(v, g, v.n, axes)
        frozen_a, frozen_n = _frozen_fit(v, g, v.a, axes), _frozen_fit(v, g, v.n, axes)
        if batch_a and frozen_n and not frozen_a:
            return _diagnosis(v, axes, forward="fixed", backward="batch")
        if frozen_a and batch_n and not batch_a:
            return _diagnosis(v, axes, forward="batch", backward="fixed")
    return None


def _candidates(ndim: int) -> list[_Axes]:
    every_but = lambda keep: tuple(a for a in range(ndim) if a != keep)  # noqa: E731
    found = [_Axes((0,), "batch normalisation over axis 0")]
    if ndim >= 3:
        found.insert(0, _Axes(every_but(1), "spatial batch normalisation over every axis "
                                            "but 1 (the channels)"))
        found.append(_Axes(every_but(0), "layer normalisation over every axis but 0"))
    found.append(_Axes((ndim - 1,), "layer normalisation over the last axis"))
    unique: dict[tuple[int, ...], _Axes] = {}
    for axes in found:
        unique.setdefault(axes.reduced, axes)
    return list(unique.values())


def _mean(values: np.ndarray, axes: _Axes) -> np.ndarray:
    return np.mean(values, axis=axes.reduced, keepdims=True)


def _sum(values: np.ndarray, axes: _Axes) -> np.ndarray:
    return np.sum(values, axis=axes.reduced, keepdims=True)


def _batch_fit(v: View, g: np.ndarray, y: np.ndarray, axes: _Axes) -> bool:
    """y = alpha (g - mean g) - beta' z mean(g z) per feature, z = x - mean x, with
    alpha / beta' = var + eps, eps small and >= 0."""
    assert v.value is not None
    z = v.value - _mean(v.value, axes)
    var = _mean(z * z, axes)
    b1 = g - _mean(g, axes)
    b2 = -z * _mean(g * z, axes)
    w = np.where(v.usable, 1.0 / v.bar ** 2, 0.0)
    y0 = np.where(v.usable, y, 0.0)
    s11, s12, s22 = _sum(w * b1 * b1, axes), _sum(w * b1 * b2, axes), _sum(w * b2 * b2, axes)
    t1, t2 = _sum(w * b1 * y0, axes), _sum(w * b2 * y0, axes)
    det = s11 * s22 - s12 * s12
    if not np.all(det > 0):
        return False
    alpha, beta = (s22 * t1 - s12 * t2) / det, (s11 * t2 - s12 * t1) / det
    sa, sb = np.sqrt(s22 / det), np.sqrt(s11 / det)
    dof = int(np.sum(np.maximum(_sum(v.usable.astype(float), axes) - 2, 0)))
    if dof < FIT_EVIDENCE or not (v.usable & clearly(y, v.bar)).any():
        return False
    if not fits(y, alpha * b1 + beta * b2, v.bar + 2 * (sa * np.abs(b1) + sb * np.abs(b2)),
                v.usable):
        return False
    shown = (np.abs(alpha) > CLEAR * sa) & (np.abs(beta) > CLEAR * sb)
    if not shown.any():
        return False  # no feature pins its statistics down
    eps = (alpha / np.where(beta == 0, np.nan, beta) - var)[shown]
    var_shown = np.broadcast_to(var, alpha.shape)[shown]
    return bool(np.all((eps >= -1e-6 * var_shown) & (eps <= EPS_SHARE * var_shown + EPS_FLOOR)))


def _frozen_fit(v: View, g: np.ndarray, y: np.ndarray, axes: _Axes) -> bool:
    """y = k g per feature (fixed statistics: the gradient a constant per feature)."""
    w = np.where(v.usable, 1.0 / v.bar ** 2, 0.0)
    information = _sum(w * g * g, axes)
    if not np.all(information > 0):
        return False
    k = _sum(w * g * np.where(v.usable, y, 0.0), axes) / information
    sigma = 1.0 / np.sqrt(information)
    dof = int(np.sum(np.maximum(_sum(v.usable.astype(float), axes) - 1, 0)))
    if dof < FIT_EVIDENCE or not np.any(np.abs(k) > CLEAR * sigma):
        return False
    return fits(y, k * g, v.bar + 2 * sigma * np.abs(g), v.usable)


def _diagnosis(v: View, axes: _Axes, forward: str, backward: str) -> Diagnosis:
    k = int(v.usable.sum())
    over = ", ".join(map(str, axes.reduced))
    batch = (f"the gradient of {axes.name} with the batch's own mean and variance (the "
             f"training formula: gamma/sigma (dout - mean(dout) - x_hat mean(dout x_hat)), "
             f"means over axis {over})")
    fixed = ("dout x one factor per feature (fixed statistics, the running mean and variance: "
             "the evaluation formula)")
    if backward == "batch":
        head = f"analytic is {batch}, while numeric is {fixed}"
        why = ("forward normalises with the running statistics (evaluation or frozen mode) and "
               "backward differentiates the training formula; in that mode dx = dout * gamma / "
               "sqrt(running_var + eps)")
    else:
        head = f"analytic is {fixed}, while numeric is {batch}"
        why = ("forward normalises with the batch's statistics (training mode) and backward "
               "treats them as constants (the evaluation formula); in training mode the "
               "gradient flows through the batch mean and variance too")
    return Diagnosis(v.name, "mode_mismatch", f"{head}, in {every(k, v)}: {why}",
                     where=f"statistics over axis {over}", count=k)
