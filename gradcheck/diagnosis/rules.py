"""The order in which the rules are tried, and ``diagnose``, which runs them."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

import gradcheck.diagnosis.blocks as blocks
import gradcheck.diagnosis.epsilon as epsilon
import gradcheck.diagnosis.factors as factors
import gradcheck.diagnosis.indices as indices
import gradcheck.diagnosis.jacobians as jacobians
import gradcheck.diagnosis.locate as locate
import gradcheck.diagnosis.masks as masks
import gradcheck.diagnosis.normalisation as normalisation
import gradcheck.diagnosis.partial as partial
import gradcheck.diagnosis.rearranged as rearranged
import gradcheck.diagnosis.sequences as sequences
import gradcheck.diagnosis.terms as terms
import gradcheck.diagnosis.ties as ties
from gradcheck.diagnosis.evidence import UNRELIABLE, Context, View
from gradcheck.diagnosis.found import Diagnosis

if TYPE_CHECKING:
    from gradcheck.report import Report

# the rules for a tensor with mismatches off the kinks, in order: the first that holds is
# the diagnosis. Whole-tensor relations first; then the structures of particular layers
# (an index array, a recurrence, a grid of blocks, a row-wise Jacobian, a normalisation's
# mode, a guarded log); then subsets, the few-elements listing, and where the wrong
# elements lie when nothing else fits
RULES: tuple[Callable[[View, Context], Diagnosis | None], ...] = (
    rearranged.swapped, factors.zero, factors.sign, factors.scale, rearranged.transpose,
    rearranged.reversed_, rearranged.shifted, masks.missing_mask, masks.inverted_mask,
    terms.offset, terms.value_term, terms.one_index, indices.repeated_index,
    sequences.recurrence, blocks.block_member, jacobians.diagonal_only,
    normalisation.mode_mismatch, epsilon.epsilon, masks.region, partial.slice_,
    partial.isolated, locate.location)


def diagnose(report: Report) -> list[Diagnosis]:
    """Name the mistake in each failing tensor of ``report``, where the evidence is solid.

    Needs the full arrays of each tensor (``analytic``, ``numeric``, ``error_bar``,
    ``kink``, ``failed``); a tensor without them, or ok, gets none. Never raises nor
    warns: a diagnosis is an aid to reading the report, and the verdict must not be lost
    to it.

    >>> import numpy as np, gradcheck as gc
    >>> p = {"w": np.array([1.0, -2.0, 3.0])}
    >>> rep = gc.check_params(lambda: float(np.sum(p["w"] ** 2)), lambda: {"w": -2 * p["w"]}, p)
    >>> [(d.tensor, d.kind) for d in diagnose(rep)]
    [('w', 'sign')]
    """
    # the numbers are the report's, NaN where unmeasured and as large or small as the
    # user's loss made them: every rule refuses a non-finite fit on its own
    with np.errstate(all="ignore"):
        return _diagnose_all(report)


def _diagnose_all(report: Report) -> list[Diagnosis]:
    try:
        if any(getattr(p, "kind", "") in UNRELIABLE for p in report.problems):
            return []  # the numeric gradient itself cannot be trusted
        if all(getattr(t, "ok", False) for t in report.tensors):
            return []  # nothing failed: nothing to name (and no arrays to read)
        views = [v for v in (View.of(t) for t in report.tensors) if v is not None]
        context = Context.of(report, views)
    except Exception:  # malformed report: nothing to say, and nothing to break
        return []
    found = []
    for view in views:
        try:
            diagnosis = _diagnose_tensor(view, context)
        except Exception:  # an aid must never cost the user the report itself
            diagnosis = None
        if diagnosis is not None:
            if view.unverified:
                diagnosis.text += (f" ({view.unverified} element(s) could not be verified; "
                                   "the pattern is read from the others)")
            found.append(diagnosis)
    return found


def _diagnose_tensor(v: View, ctx: Context) -> Diagnosis | None:
    if v.status != "FAILED" or v.a.size == 0:
        return None
    if v.mode == "fast" and int(v.measured.sum()) < v.a.size:
        return partial.fast(v, ctx)
    if not v.failed.any():
        return None
    tied = ties.tie(v, ctx)
    if tied is not None:
        return tied
    if not (v.failed & ~v.kink).any():
        # only kinks fail: the numbers there straddle a kink, so no pattern can be read from
        # them; what they are, the kinks mode says
        return ties.kinks_only(v, ctx) or partial.isolated(v, ctx)
    for test in RULES:
        found = test(v, ctx)
        if found is not None:
            return found
    return None
