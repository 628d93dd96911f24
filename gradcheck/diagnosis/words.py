"""How the diagnoses word numbers, counts and element lists."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import CLEAR, KEPT, LISTED
from gradcheck.text import general, unravel

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import View


def counted(n: int, noun: str = "element", plural: str = "") -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def every(n: int, v: View | None = None) -> str:
    """``all 37 elements``, saying so when elements on kinks were left out."""
    off = " off the kinks" if v is not None and (v.measured & v.kink).any() else ""
    return f"the only element{off}" if n == 1 else f"all {n} elements{off}"


def number(value: float) -> str:
    """``general``, with 0 for -0 (a sign on a zero says nothing to a reader)."""
    return general(value + 0.0)


def pair_text(a: float, n: float) -> str:
    """``analytic 1.94531 vs numeric 1.94532``: general()'s six digits, more where it takes
    more to tell them apart."""
    shown_a, shown_n = number(a), number(n)
    for digits in range(7, 18):
        if shown_a != shown_n:
            break
        shown_a, shown_n = f"{a + 0.0:.{digits}g}", f"{n + 0.0:.{digits}g}"
    return f"analytic {shown_a} vs numeric {shown_n}"


def element_note(a: float, n: float, bar: float) -> str:
    """What one wrong element's two numbers say that they do not show: a flipped sign, a
    numeric value that is 0 within its error bar."""
    if abs(n) > CLEAR * bar and abs(a + n) <= bar:
        return ", the sign flipped"
    if n != 0 and abs(n) <= bar:
        return ", numeric 0 within its error bar"
    return ""


def listing(v: View, mask: np.ndarray) -> tuple[str, list[tuple[int, ...]]]:
    flat = np.flatnonzero(mask.reshape(-1))
    indices = [unravel(int(k), v.shape) for k in flat[:KEPT]]
    shown = ", ".join(v.element(i) for i in indices[:LISTED])
    return shown + (", ..." if len(flat) > LISTED else ""), indices


def fitted_text(c: float) -> str:
    """A fitted factor: 1/n shown as such; 1.00002, not 1, when it is near 1."""
    if abs(c - 1) > 1e-4:
        return factor_text(c)
    return f"{c:.{digits(c)}f}"


def digits(c: float) -> int:
    """Decimals that show how far c is from 1 (two significant digits of c - 1)."""
    return max(2, min(12, 1 - math.floor(math.log10(abs(c - 1)))))


def factor_text(c: float) -> str:
    """``0.125 (= 1/8)``: a factor below 1 that is the inverse of a whole number (to the
    precision a fitted factor has) shown as such."""
    if abs(c) < 1 and abs(round(1 / c) - 1 / c) < 1e-9 * abs(1 / c):
        inverse = f"1/{round(1 / c)}" if c > 0 else f"-1/{round(-1 / c)}"
        return f"{number(c)} (= {inverse})"
    return number(c)
