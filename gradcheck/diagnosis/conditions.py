"""Conditions on the input's values ("x < 0") that single out a set of elements exactly."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.words import number

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View


@dataclass(frozen=True)
class Condition:
    """``x < 0``, ``x > 6``, ``|x| > 1``: a threshold on one tensor's values."""

    name: str  # the tensor, as the user calls it
    of: str  # "x" (the value itself) or "|x|"
    above: bool  # value above the bound, or below it
    bound: float

    def __str__(self) -> str:
        return self._text(self.above, strict=True)

    def negated(self) -> str:
        """The complement (``x < 0`` -> ``x > 0``: at a round 0 the mask a ReLU keeps)."""
        return self._text(not self.above, strict=self.bound == 0)

    def _text(self, above: bool, strict: bool) -> str:
        subject = self.name if self.of == "x" else f"|{self.name}|"
        sign = (">" if above else "<") + ("" if strict else "=")
        return f"{subject} {sign} {number(self.bound)}"


def input_condition(v: View, ctx: Context, inside: np.ndarray) -> Condition | None:
    """A threshold condition on the input's values ("x < 0") that holds at exactly the
    ``inside`` elements among the usable ones: at every one of them and at no other (and
    there is another: a condition every usable element meets singles nothing out)."""
    found = threshold(v, ctx, inside & v.usable, v.usable & ~inside)
    return found[0] if found else None


def threshold(v: View, ctx: Context, inside: np.ndarray,
              outside: np.ndarray) -> tuple[Condition, np.ndarray] | None:
    """f(x) > t with f in (-x, x, |x|) and a round t: true on every ``inside`` element, false
    on every ``outside`` one; with the elements where it is true.

    Both sides must hold a measured element: with no ``outside`` one, any t below the
    smallest inside value would do ("x < 40" where every x is below 40), and the condition
    would separate nothing from nothing."""
    if v.name != ctx.input_name or v.value is None or not inside.any() or not outside.any():
        return None
    x = v.value
    for f, of, above in ((-x, "x", False), (x, "x", True), (np.abs(x), "|x|", True)):
        low = float(np.max(f[outside], initial=-np.inf))
        high = float(np.min(f[inside]))
        t = round_between(low, high)
        if t is None:
            continue
        return Condition(v.name, of, above, t if above else -t + 0.0), f > t
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
