"""mode="fast": random directions instead of every coordinate.

One tensor is tested along a random direction d (the central difference of the loss along
d against <analytic, d>); a group that disagrees is split in halves, down to LEAF_SIZE
coordinates, which are measured one by one: O(k log n) evaluations for k wrong elements
instead of 2n.

A random direction dilutes one element's error by about 1/sqrt(n), so the tolerance of a
direction comes from the numeric error itself, measured with two steps (d and d/2): a
wrong gradient leaves a step-independent mismatch, truncation shrinks 4x, rounding grows
2x. When that error bar is too wide to vouch for the tensor at all, the tensor is
unverified instead of being searched element by element.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck.calls import Calls
from gradcheck.measure import BAD, Measured, Setting, measure
from gradcheck.numeric import step_sizes
from gradcheck.tolerances import rounding_allowance

LEAF_SIZE = 8  # groups this small are scanned coordinate by coordinate
MAX_LOCATED = 10  # stop localizing a tensor after this many wrong elements


@dataclass
class FastResult:
    """What fast mode found in one tensor."""

    measured: Measured  # the leaves scanned one by one
    note: str  # for the report's warnings
    stopped: bool  # localizing stopped early: the count of wrong elements is a lower bound
    unverified_reason: str = ""  # the directions' error bar was too wide to vouch


@dataclass(frozen=True)
class Direction:
    """One random direction through one tensor, and what a test along it needs."""

    name: str
    base: np.ndarray  # the tensor's values at the point, flat, own dtype
    base64: np.ndarray  # the same in float64
    delta: np.ndarray  # the step along the direction, per coordinate
    analytic: np.ndarray  # the analytic gradient, flat
    loss_at_point: float
    setting: Setting


def check_fast(calls: Calls, name: str, analytic_flat: np.ndarray, loss_at_point: float,
               setting: Setting, rng: np.random.Generator) -> FastResult:
    """Random-direction test of one tensor with localization of what fails."""
    base = calls.originals[name].reshape(-1)
    # random signs and magnitudes in [1, 2]: one wrong element always moves the
    # directional derivative, and two wrong elements cannot cancel exactly
    direction = rng.choice(np.array([-1.0, 1.0]), size=base.size) * rng.uniform(1, 2, base.size)
    eps = max(float(np.finfo(base.dtype).eps), setting.loss_eps)
    line = Direction(name, base, base.astype(np.float64), step_sizes(base, eps) * direction,
                     analytic_flat, loss_at_point, setting)
    stack = [(0, base.size)]
    leaves: list[Measured] = []
    failed_groups = 0
    located = 0
    while stack and located < MAX_LOCATED:
        lo, hi = stack.pop()
        if hi - lo <= LEAF_SIZE:
            leaves.append(measure(calls, name, np.arange(lo, hi), analytic_flat, loss_at_point,
                                  setting))
            located += int(np.sum(leaves[-1].status == BAD))
            continue
        verdict, bar = _test_direction(calls, line, lo, hi)
        if verdict == "agrees":
            continue
        if verdict == "undecided" and (lo, hi) == (0, base.size):
            return FastResult(Measured.concat([]), "", False, (
                f"along a random direction the numeric error bar ({bar:.1e}) is wider than "
                "the tolerance: rounding of a large loss, float16/float32 arithmetic or "
                "noise; remove a constant offset, evaluate in float64, or use mode='full'"))
        failed_groups += 1
        mid = (lo + hi) // 2
        stack.extend([(mid, hi), (lo, mid)])
    stopped = bool(stack)
    merged = Measured.concat(leaves)
    note = ""
    if failed_groups and not located and not np.any(merged.kink):
        note = ("a random-direction check disagreed but no single element did: errors spread "
                "below the per-element tolerance, or rounding noise; re-run with mode='full'")
    if stopped:
        note = f"stopped localizing after {MAX_LOCATED} wrong elements; more may be wrong"
    return FastResult(merged, note, stopped)


def _test_direction(calls: Calls, line: Direction, lo: int, hi: int) -> tuple[str, float]:
    """"agrees", "disagrees" or "undecided": does <grad, d> match the central difference
    along d (support lo:hi)? Also returns the numeric error bar."""
    flat = calls.arrays[line.name].flat  # writes through, contiguous or not
    estimates, projections, scale = [], [], abs(line.loss_at_point)
    for fraction in (1.0, 0.5):
        step = fraction * line.delta[lo:hi]
        try:
            flat[lo:hi] = line.base64[lo:hi] + step
            up = np.asarray(flat[lo:hi], dtype=np.float64) - line.base64[lo:hi]
            loss_plus = calls.loss()
            flat[lo:hi] = line.base64[lo:hi] - step
            down = line.base64[lo:hi] - np.asarray(flat[lo:hi], dtype=np.float64)
            loss_minus = calls.loss()
        finally:
            flat[lo:hi] = line.base[lo:hi]
        estimates.append((loss_plus - loss_minus) / (2 * fraction))
        projections.append(float(line.analytic[lo:hi] @ (up + down)) / (2 * fraction))
        scale = max(scale, abs(loss_plus), abs(loss_minus))
    coarse, fine = estimates
    analytic = projections[1]
    if not (np.isfinite(coarse) and np.isfinite(fine) and np.isfinite(analytic)):
        return "disagrees", float("inf")
    setting = line.setting
    # in loss units (the quotient is taken per unit of d): rounding of the loss values and
    # of the projection itself, and the truncation the two steps show
    rounding = float(rounding_allowance(setting.model_eps, scale, np.ones(1))[0])
    rounding += 64 * np.finfo(np.float64).eps * float(
        np.abs(line.analytic[lo:hi]) @ np.abs(line.delta[lo:hi]))
    truncation = abs(coarse - fine)
    bar = 4 * truncation + rounding
    smooth = truncation <= 1e-2 * (abs(fine) + abs(analytic)) + rounding
    # what the tolerance allows along d: every element within rtol * |n| + atol
    span = float(np.abs(line.delta[lo:hi]).sum())
    tol = setting.tolerance
    allowed = tol.rtol * abs(fine) + tol.atol * span
    if smooth and abs(fine - analytic) <= bar and bar <= allowed + 1e-300:
        return "agrees", bar
    if smooth and abs(fine - analytic) <= bar:
        return "undecided", bar
    return "disagrees", bar
