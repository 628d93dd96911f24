"""Mismatches that are all ties or all kinks: tie_counted, tie_dropped, kink_convention,
at_kinks."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import counted, listing, number

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, TieGroup, View


def tie(v: View, ctx: Context) -> Diagnosis | None:
    """Every mismatch a tied element the engine failed along the tie: the gradients of a
    tie add up to more than the loss gives it (counted for every element), or to 0.

    The engine fails a group's every element, so when the groups of this tensor hold as
    many elements as failed, the failed elements are exactly the tied ones."""
    groups = ctx.ties.get(v.name, [])
    k = int(v.failed.sum())
    if not groups or any(g.across for g in groups) or sum(g.count for g in groups) != k:
        return None
    shown, indices = listing(v, v.failed)
    values = ", ".join(dict.fromkeys(g.value for g in groups))
    head = (f"the {counted(k, 'mismatch', 'mismatches')} are tied elements ({shown}; tied at "
            f"{values})")
    if ctx.kinks == "hull":  # the engine only ties elements inside their hulls then
        head += ", each within its one-sided derivatives alone"
    if all(g.total == 0 for g in groups):
        return Diagnosis(
            v.name, "tie_dropped",
            f"{head}, but together they get 0 while the loss moves when they move together: "
            "the upstream gradient of a tied maximum reaches none of them (a strict comparison "
            "finds no single maximum); give it to one tied element, or split it",
            elements=indices, count=k)
    ratios = [g.total / g.slope for g in groups if g.slope]
    if len(ratios) != len(groups) or not all(r > 1.001 for r in ratios):
        return None  # less than the loss gives, or no slope to compare: no story to tell
    return Diagnosis(
        v.name, "tie_counted",
        f"{head}, but moved together their gradients add up to {_times(ratios)} the slope of "
        f"the loss ({_sums(groups)}): the upstream gradient of a tied maximum is counted more "
        "than once, where the tied elements must share it (give it to one element, or split "
        "it; (window == window.max()) * dout gives it to every one)", elements=indices, count=k)


def _times(ratios: list[float]) -> str:
    """``2 times``, ``1.33333 times``, ``2 to 4 times``."""
    rounded = [round(r) if abs(r - round(r)) <= 1e-4 * r else r for r in ratios]
    low, high = min(rounded), max(rounded)
    return f"{number(low)} times" if low == high else f"{number(low)} to {number(high)} times"


def _sums(groups: list[TieGroup]) -> str:
    slope = groups[0].slope
    if len(groups) == 1 and slope is not None:
        return f"{number(groups[0].total)} against {number(slope)}"
    return f"in each of the {len(groups)} tie groups"


def kinks_only(v: View, ctx: Context) -> Diagnosis | None:
    """Every mismatch on a kink, everything else right."""
    if not np.all(v.kink[v.failed]) or ctx.ties.get(v.name):
        # a tie failed as a group: each of its elements is inside its one-sided range, so
        # "outside every valid convention" would be false for it
        return None
    shown, indices = listing(v, v.failed)
    k = int(v.failed.sum())
    first = indices[0]
    at = ""
    if v.value is not None:
        values = np.unique(v.value[v.failed])
        if len(values) == 1:
            at = f", where {v.name} = {number(float(values[0]))}"
    # "the one mismatch sits", "all 3 mismatches sit"
    mismatches = ("the one mismatch sits on a kink" if k == 1
                  else f"all {counted(k, 'mismatch', 'mismatches')} sit on kinks")
    example = (f"e.g. {v.element(first)}: analytic {number(float(v.a[first]))}, central "
               f"difference {number(float(v.n[first]))}")
    if ctx.kinks == "hull":
        return Diagnosis(
            v.name, "kink_convention",
            f"{mismatches} ({shown}{at}) and every other element is "
            f"right: backward's value there lies outside the one-sided derivatives, so "
            f"outside every valid convention ({example}; ReLU'(0) must be in [0, 1], "
            "|x|'(0) in [-1, 1])", elements=indices, count=k)
    if ctx.kinks == "strict":
        return Diagnosis(
            v.name, "at_kinks",
            f"{mismatches} ({shown}{at}), checked as ordinary points "
            f"under kinks='strict' ({example}); every other element is right. A valid "
            "convention fails there too: re-run with kinks='hull' to tell", elements=indices,
            count=k)
    return None
