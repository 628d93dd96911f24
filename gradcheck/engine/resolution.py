"""What the loss can resolve near the point: measured once, read by everything after.

In theory a loss value is off by one rounding of itself: eps |L| at the coarsest precision
it passed through (the tensor's dtype, or the dtype the value came back in), or the bound
the front door reports (check_layer and check_pair sum g * y in float64 from outputs
rounded in their own dtype: one rounding of each output a move changed). Below the
smallest normal number |L| counts as that (subnormals keep few digits).

In practice a loss can be far coarser than that: it computes in float32 inside and
returns a Python float; it is a small number computed through intermediates near 1
(-log p with p a float near 1, 1 - sigmoid(23): its values move in steps of p's
rounding); its terms cancel. :func:`calibrate` measures by how much, once, with a probe: a
few coordinates moved together toward their gradient's sign, by relative moves growing
8-fold from 4.7e-10 (below float32's resolution) to 7.8e-3 (above float16's). The probe's
odd part, (L(+m) - L(-m)) / 2, is compared with the change the analytic gradient predicts
for the moves actually taken, from the smallest move up:

- two moves in a row that follow the prediction (within a quarter) where the prediction
  clears the loss's rounding end the probe (an ordinary loss: the first two);
- below it, whatever the
  loss shows beyond the prediction is its own error: noise, a part that stays put (a
  component whose change rounds away), rounding in float32; beyond the prediction, that
  is, and beyond the share of it a wrong slope leaves at every move alike (a gradient off
  by 0.1 % is a wrong gradient, not a coarse loss);
- a probe that nowhere follows the prediction claims nothing (a wrong gradient is never
  excused as a coarse loss): the theory stands;
- along a coordinate the first look saw a kink at (probed alone), only a loss that does
  not move at the finest move shows its resolution: one that moves there resolves such
  moves, and what it leaves beyond the prediction at larger ones is the kinks' (at the
  point and crossed on the way: a share of the move, and constants), not its error.

The result, :class:`Resolution`, scales every rounding bound of the check
(``excess``), raises the step where the loss is far coarser than its theory (so that the
rounding over h stays below the tolerance), and says when the loss computes in a coarser
float type than its values show (its tolerances are then that type's).

>>> r = Resolution(excess=4.0)
>>> float(r.value_error(np.array([2.0]), np.array([np.nan]), 2.0 ** -52)[0]) == 8 * 2.0 ** -52
True
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.validate import FLOAT64_EPS

if TYPE_CHECKING:
    from gradcheck.engine.calls import Calls

PROBE_COORDINATES = 64  # coordinates the probe moves per tensor, at most
SINGLE_PROBES = 4  # kink coordinates probed one at a time, where the probe off them saw nothing
PROBE_SAMPLE = 4096  # coordinates of a large tensor the probe chooses among
# relative moves PROBE_LARGEST * PROBE_RATIO**-k, k = PROBE_RUNGS - 1 .. 0: from 4.7e-10
# (below float32's resolution) to 7.8e-3 (above float16's) as a rule, and on to 0.5 while
# the loss has not moved at all (its steps are coarser than any smaller move shows)
PROBE_RUNGS = 11
PROBE_RATIO = 8.0
PROBE_LARGEST = 2.0 ** -1
PROBE_USUAL = 2.0 ** -7
# A move shows the loss's resolution where its predicted change is this many roundings.
PROBE_SHOWN = 4.0
FOLLOWS = 0.25  # a move follows the prediction within this share of it (and rounding)
# The share of the prediction a wrong slope leaves at the largest following move counts
# this many times at the smaller ones (it is measured there with their rounding).
SLOPE_SLACK = 2.0
# A loss measured this many times coarser than its theory is stepped by its measured
# precision: the steps of its tensors are eps**(1/3) of excess x eps, not of eps.
COARSE_EXCESS = 64.0
# A loss whose measured relative precision is within this factor of a float type's eps,
# and which follows moves only from that eps up, computes in that type (float32 inside a
# float64 loss): its tolerances are that type's.
INSIDE_FACTOR = 16.0
# A change smaller than this many roundings of max(|L|, 1) may be rounded away by
# intermediates of order 1 (p near 1 in -log p), whatever the probe saw.
HIDDEN_ROUNDINGS = 64.0
FLOATS = (np.float16, np.float32, np.float64)


def normal_magnitude(eps: float, values: np.ndarray | float) -> np.ndarray:
    """|L|, or the smallest normal number of the float type of this eps where |L| is less:
    eps times it is the spacing of the subnormals.

    >>> float(normal_magnitude(FLOAT64_EPS, 1e-316)) == float(np.finfo(np.float64).tiny)
    True
    """
    tiny = next((float(np.finfo(t).tiny) for t in (*FLOATS, np.longdouble)
                 if float(np.finfo(t).eps) == eps), 0.0)
    return np.maximum(np.abs(np.asarray(values, dtype=np.float64)), tiny)


def theory(values: np.ndarray, reported: np.ndarray, model_eps: float) -> np.ndarray:
    """One rounding of each loss value: the front door's bound where it gave one (plus the
    float64 sum's), else eps |L| at the coarsest precision the loss passed through."""
    values = np.asarray(values, dtype=np.float64)
    reported = np.asarray(reported, dtype=np.float64)
    from_dtype = model_eps * normal_magnitude(model_eps, values)
    with np.errstate(invalid="ignore"):
        told = reported + FLOAT64_EPS * normal_magnitude(FLOAT64_EPS, values)
    return np.where(np.isfinite(reported), told, from_dtype)


def dtype_of_eps(eps: float) -> np.dtype:
    """The float type whose eps is ``eps`` or the next finer one (float64 for finer).

    >>> dtype_of_eps(float(np.finfo(np.float32).eps)).name
    'float32'
    """
    for dtype in FLOATS:
        if eps >= float(np.finfo(dtype).eps):
            return np.dtype(dtype)
    return np.dtype(np.float64)


@dataclass(frozen=True)
class Resolution:
    """What the loss resolves near the point (see the module docstring).

    - excess: the error of a loss value over its theory, measured (>= 1);
    - inside_eps: eps of a float type coarser than its values' that the loss computes in
      (0.0: none found);
    - measured: the error of one loss value the probe saw beyond the prediction, in loss
      units (0.0: none, or not probed);
    - probed: whether the probe ran.
    """

    excess: float = 1.0
    inside_eps: float = 0.0
    measured: float = 0.0
    probed: bool = False

    def value_error(self, values: np.ndarray, reported: np.ndarray, model_eps: float
                    ) -> np.ndarray:
        """The error of each loss value: its theory, times the measured excess."""
        return self.excess * theory(values, reported, model_eps)

    def step_eps(self, model_eps: float) -> float:
        """The eps a tensor's steps are chosen from: its own, or the loss's measured
        precision where that is far coarser (eps**(1/3) balances them again)."""
        eps = max(model_eps, self.inside_eps)
        if self.excess >= COARSE_EXCESS:
            eps = max(eps, self.excess * model_eps)
        return min(eps, 1e-2)  # a step of a fifth of |v| at most

    @property
    def claims(self) -> bool:
        """The probe measured the loss coarser than its theory."""
        return self.excess > 1.0 or self.inside_eps > 0

    @property
    def coarse(self) -> bool:
        """The loss was measured far coarser than its theory (its steps are re-chosen)."""
        return self.inside_eps > 0 or self.excess >= COARSE_EXCESS

    def hidden(self, loss_at_point: float, model_eps: float) -> float:
        """A change of the loss this small may be rounded away where nothing shows it is
        not: HIDDEN_ROUNDINGS roundings of max(|L|, 1), or what the probe measured."""
        return max(HIDDEN_ROUNDINGS * model_eps * max(abs(loss_at_point), 1.0),
                   4 * self.measured)


def calibrate(calls: Calls, analytic: Mapping[str, np.ndarray], loss_at_point: float,
              rng: np.random.Generator, model_eps: Mapping[str, float],
              avoid: Mapping[str, np.ndarray] | None = None) -> Resolution:
    """Measure the loss's resolution with the probe (module docstring).

    ``analytic``: flat analytic gradients per tensor; ``avoid``: flat coordinates the probe
    keeps off (kinks seen at the first looks: crossing one reads as noise); where the probe
    off them claims nothing, the largest of them are probed one at a time (a loss that
    rounds coarsely reads as kinks at the first look); ``model_eps``: each tensor's
    precision."""
    avoid = avoid or {}
    found = _probe(calls, analytic, loss_at_point, model_eps, _pick(calls, analytic, rng, avoid))
    if found.claims:
        return found
    # one at a time: moved together, kinks at different distances change the odd part's
    # share of the prediction from move to move; along one coordinate a kink on the point
    # leaves it linear, and one further off lies beyond the first moves that follow
    for single in _singles(calls, analytic, avoid):
        alone = _probe(calls, analytic, loss_at_point, model_eps, single, along_kink=True)
        if alone.excess > found.excess or alone.inside_eps > found.inside_eps:
            found = alone
    return found


def _probe(calls: Calls, analytic: Mapping[str, np.ndarray], loss_at_point: float,
           model_eps: Mapping[str, float],
           picked: dict[str, tuple[np.ndarray, np.ndarray]], along_kink: bool = False
           ) -> Resolution:
    """One probe along the picked coordinates.

    The moves are tried from the smallest up, 2 loss evaluations each, until two in a row
    follow the prediction where the prediction clears the loss's rounding: an ordinary loss
    settles at the first two; a loss that cannot see small moves shows it on the way up. The
    last move is taken once more (a loss that answers differently there is named, not
    measured)."""
    if not picked:
        return Resolution(probed=True)
    finest = min(model_eps[name] for name in picked)
    rows = []
    values: list[float] = []  # every loss value the probe saw
    following = 0  # consecutive moves that followed the prediction
    for k in range(PROBE_RUNGS):
        move = PROBE_LARGEST * PROBE_RATIO ** (k - PROBE_RUNGS + 1)
        odd, predicted, rounding, up = _odd_part(calls, analytic, picked, move,
                                                 loss_at_point, finest)
        rows.append((odd, predicted, rounding, move, up))
        values += [up, up - 2 * odd]
        shown = np.isfinite(odd) and abs(predicted) > PROBE_SHOWN * rounding
        follows = shown and abs(odd - predicted) <= FOLLOWS * abs(predicted) + 2 * rounding
        following = following + 1 if follows else 0
        if following == 2:
            again = _odd_part(calls, analytic, picked, move, loss_at_point, finest,
                              plus_only=True)[3]
            if np.isfinite(again) and again != up:
                calls.note_unrepeatable(
                    f"a joint move of {sum(len(i) for i, _ in picked.values())} "
                    f"coordinate(s) gave {up:.17g} and then {again:.17g}")
            break
        if move >= PROBE_USUAL and odd != 0:
            break  # beyond the usual moves only while the loss has not moved at all
    if following < 2:
        return Resolution(probed=True)  # never followed the prediction twice: claim nothing
    # A wrong slope (a gradient off by a share, a kink crossed at the larger moves) leaves
    # the same share of the prediction at every move; the loss's own error does not shrink
    # with the move. What the largest move leaves, as a share, is the slope's.
    odd, predicted, rounding, _, _ = rows[-1]
    slope_share = max(0.0, abs(odd - predicted) - 2 * rounding) / abs(predicted)
    # the odd part's residual is half the two values' errors: one value may carry twice it
    if along_kink and _moved_at_finest(rows, loss_at_point):
        return Resolution(probed=True)
    finer = [(2 * max(0.0, abs(o - p) - SLOPE_SLACK * slope_share * abs(p)), th, move, up)
             for o, p, th, move, up in rows[:-1] if np.isfinite(o)]
    if not finer:
        return Resolution(probed=True)
    measured, at, move, _ = max(finer)
    excess = max(1.0, measured / at) if at > 0 else 1.0
    if excess > 1.0:  # the move that claims it is taken again: a glitch is no resolution
        repeated = _odd_part(calls, analytic, picked, move, loss_at_point, finest)[0]
        claimed = next(o for o, _, _, m, _ in rows if m == move)
        if np.isfinite(repeated) and repeated != claimed:
            calls.note_unrepeatable(
                f"a joint move of {sum(len(i) for i, _ in picked.values())} coordinate(s) "
                f"changed the loss by {claimed:.17g} and then by {repeated:.17g}")
            return Resolution(probed=True)
    # a loss that computes in a coarser float type inside, and returns its result (as a
    # Python float: every value it gave is a number of that type), is blind to relative
    # moves of its inputs below that type's eps and follows from above it; its error is of
    # the order of that eps (a loss near 0 made of numbers near 1 is coarse too, but its
    # values are no such numbers, and its tolerances stay its dtype's)
    followed_at = PROBE_LARGEST * PROBE_RATIO ** (len(rows) - PROBE_RUNGS - 1)
    seen = np.array([loss_at_point, *values])
    inside = 0.0
    for dtype in (np.float16, np.float32):
        eps = float(np.finfo(dtype).eps)
        with np.errstate(over="ignore"):
            in_type = bool(np.all(seen.astype(dtype).astype(np.float64) == seen))
        if (eps > finest and in_type and followed_at >= eps / PROBE_RATIO
                and INSIDE_FACTOR * excess * finest >= eps):
            inside = eps
            break
    return Resolution(excess=excess, inside_eps=inside, measured=measured, probed=True)


def _moved_at_finest(rows: list[tuple[float, float, float, float, float]],
                     loss_at_point: float) -> bool:
    """Whether the loss moved at the finest move of a probe: it resolves moves that small,
    so along one kink coordinate what it leaves beyond the prediction at larger ones is
    the kinks' (at the point and crossed on the way), not its resolution."""
    if not rows:
        return False
    odd, _, _, _, up = rows[0]
    return bool(np.isfinite(odd) and (up != loss_at_point or up - 2 * odd != loss_at_point))


def _singles(calls: Calls, analytic: Mapping[str, np.ndarray],
             avoid: Mapping[str, np.ndarray]) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The SINGLE_PROBES avoided coordinates with the largest |gradient| x max(1, |value|),
    each as a probe of its own."""
    weighted = []
    for name, mask in avoid.items():
        indices = np.flatnonzero(mask)
        if not len(indices):
            continue
        values = calls.point.values(name, indices)
        gradient = analytic[name][indices]
        weight = np.abs(gradient) * np.maximum(1.0, np.abs(values))
        for i, v, g, w in zip(indices, values, gradient, weight, strict=True):
            if np.isfinite(w) and w > 0:
                weighted.append((float(w), name, int(i), float(np.sign(g) * max(1.0, abs(v)))))
    weighted.sort(key=lambda item: -item[0])
    return [{name: (np.array([i]), np.array([d]))} for _, name, i, d in
            weighted[:SINGLE_PROBES]]


def _pick(calls: Calls, analytic: Mapping[str, np.ndarray], rng: np.random.Generator,
          avoid: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per tensor, the coordinates the probe moves and their direction: those with the
    largest |gradient| x max(1, |value|) (among PROBE_SAMPLE random ones of a larger
    tensor), off the kinks seen, each moved toward its gradient's sign by max(1, |value|)
    per unit of the move."""
    picked = {}
    for name, gradient in analytic.items():
        size = gradient.size
        sample = (np.arange(size) if size <= PROBE_SAMPLE
                  else np.unique(rng.integers(0, size, PROBE_SAMPLE)))
        if name in avoid:
            sample = sample[~avoid[name][sample]]
        values = calls.point.values(name, sample)
        finite = np.isfinite(values) & np.isfinite(gradient[sample])
        sample, values = sample[finite], values[finite]
        weight = np.abs(gradient[sample]) * np.maximum(1.0, np.abs(values))
        top = np.argsort(-weight, kind="stable")[:PROBE_COORDINATES]
        top = top[weight[top] > 0]
        if len(top):
            signs = np.sign(gradient[sample[top]])
            picked[name] = (sample[top], signs * np.maximum(1.0, np.abs(values[top])))
    return picked


def _odd_part(calls: Calls, analytic: Mapping[str, np.ndarray],
              picked: Mapping[str, tuple[np.ndarray, np.ndarray]], move: float,
              loss_at_point: float, model_eps: float, plus_only: bool = False
              ) -> tuple[float, float, float, float]:
    """(odd part of the loss's change, the prediction for the moves taken, one rounding
    of the values, the loss at +move) for one move of the probe."""
    found = []
    for sign in (1.0,) if plus_only else (1.0, -1.0):
        moves = {name: (indices, calls.point.values(name, indices) + sign * move * direction)
                 for name, (indices, direction) in picked.items()}
        with calls.point.moved(moves) as taken:
            value = calls.loss()
            rounding = calls.last.rounding
        projection = sum(float(analytic[name][indices] @ taken[name])
                         for name, (indices, _) in picked.items())
        found.append((value, projection, float(theory(np.array([value]),
                                                      np.array([rounding]), model_eps)[0])))
    if plus_only:
        return float("nan"), float("nan"), float("nan"), found[0][0]
    (up, p_up, th_up), (down, p_down, th_down) = found
    return (up - down) / 2, (p_up - p_down) / 2, (th_up + th_down) / 2, up
