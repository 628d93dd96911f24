"""Conditions on the input's values ("x < 0") that single out a set of elements exactly."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.words import number

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View


def input_condition(v: View, ctx: Context, inside: np.ndarray) -> str:
    """A threshold condition on the input's values ("x < 0") that holds at exactly the
    ``inside`` elements among the usable ones: at every one of them and at no other; or ""."""
    found = threshold(v, ctx, inside & v.usable, v.usable & ~inside)
    return found[0] if found else ""


def threshold(v: View, ctx: Context, inside: np.ndarray,
               outside: np.ndarray) -> tuple[str, np.ndarray] | None:
    """f(x) > t with f in (-x, x, |x|) and a round t: true on every ``inside`` element, false
    on every ``outside`` one."""
    if v.name != ctx.input_name or v.value is None or not inside.any():
        return None
    x = v.value
    for f, text in ((-x, "x < {}"), (x, "x > {}"), (np.abs(x), "|x| > {}")):
        low = float(np.max(f[outside], initial=-np.inf))
        high = float(np.min(f[inside]))
        t = round_between(low, high)
        if t is None:
            continue
        bound = -t if text.startswith("x <") else t
        condition = text.replace("x", v.name, 1).format(number(bound))
        return condition, f > t
    return None


def round_between(low: float, high: float) -> float | None:
    """The roundest t with low <= t < high (0 first, then fewest significant digits)."""
    if not (low < high) or not math.isfinite(high):
        return None
    if low <= 0 < high:
        return 0.0
    if low == -math.inf:
        low = high - max(1.0, abs(high))
    span = high - low
    exponent = math.floor(math.log10(max(abs(high), abs(low), span)))
    for e in range(exponent, exponent - 12, -1):
        step = 10.0 ** e
        t = math.ceil(low / step) * step
        if low <= t < high:
            return float(round(t, max(0, -e)))
    return None


def negate(condition: str) -> str:
    for a, b in ((" < ", " >= "), (" > ", " <= ")):
        if a in condition:
            negated = condition.replace(a, b)
            return negated.replace(" >= 0", " > 0").replace(" <= 0", " < 0") if (
                negated.endswith(" 0")) else negated
    return "condition"
