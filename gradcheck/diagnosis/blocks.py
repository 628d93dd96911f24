"""block_member: one element per block of a regular grid where the whole block was meant.

Two shapes of one mistake, a strided slice (``[::2, ::2]``) where each block of a grid
should be gathered or spread:

- in the gradient's own grid (a pooling or subsampling layer: each output gathers a block of
  inputs, so backward must spread its gradient over the block): analytic is right at one
  member of every block and 0 (or wrong, the numeric gradient being the same over each
  block) at the others;
- against the upstream gradient g (an upsampling layer: each input feeds a block of
  outputs, so backward must sum g over the block): analytic is exactly g at one member of
  each block. Needs g, which check_layer and check_pair draw from the seed.
"""
from __future__ import annotations

import itertools
import warnings
from typing import TYPE_CHECKING

import numpy as np

from gradcheck.diagnosis.evidence import FIT_EVIDENCE, clearly, fits
from gradcheck.diagnosis.found import Diagnosis
from gradcheck.diagnosis.words import every

if TYPE_CHECKING:
    from gradcheck.diagnosis.evidence import Context, View

PERIODS = (2, 3, 4)  # block sides tried in the gradient's own grid
MAX_FACTOR = 8  # the largest block side read against the upstream gradient
# clearly nonzero elements off the members that the pattern must cover: a few zeros where
# a grid happens to put them are a coincidence, not a stride
OTHERS_EVIDENCE = 2 * FIT_EVIDENCE


def block_member(v: View, ctx: Context) -> Diagnosis | None:
    """Either shape of the mistake (see the module's docstring)."""
    return _own_grid(v) or _upstream_grid(v, ctx)


# --------------------------------------------------------------------------- own grid


def _own_grid(v: View) -> Diagnosis | None:
    wrong = v.failed & ~v.kink
    right = v.usable & ~wrong & clearly(v.n, v.bar)
    if not right.any() or not wrong.any():
        return None
    first_right = tuple(int(i[0]) for i in np.nonzero(right))
    for axes, period in _grids(v.shape):
        # the member of each block is where the first right element sits in its block
        offsets = {axis: first_right[axis] % period for axis in axes}
        members = _members(v.shape, axes, period, offsets)
        others = v.usable & ~members
        if not fits(v.a, v.n, v.bar, v.usable & members):
            continue
        if int((v.usable & members & clearly(v.n, v.bar)).sum()) < FIT_EVIDENCE:
            continue
        if int((others & clearly(v.n, v.bar)).sum()) < OTHERS_EVIDENCE:
            continue
        zero = bool(np.all(v.a[others] == 0))
        if not zero and not (np.array_equal(wrong & others, others)
                             and _constant_per_block(v, axes, period)):
            continue
        return _own_diagnosis(v, axes, period, offsets, members, zero)
    return None


def _grids(shape: tuple[int, ...]) -> list[tuple[tuple[int, ...], int]]:
    """(axes, period) pairs: each axis alone, then the last two and every axis together,
    where each axis holds two blocks or more."""
    found: list[tuple[tuple[int, ...], int]] = []
    for period in PERIODS:
        fitting = [axis for axis, size in enumerate(shape)
                   if size % period == 0 and size >= 2 * period]
        groups: list[tuple[int, ...]] = [(axis,) for axis in fitting]
        if len(fitting) >= 2:
            groups.append(tuple(fitting[-2:]))
        if len(fitting) >= 3:
            groups.append(tuple(fitting))
        found += [(axes, period) for axes in groups]
    return found


def _members(shape: tuple[int, ...], axes: tuple[int, ...], period: int,
             offsets: dict[int, int]) -> np.ndarray:
    members = np.ones(shape, dtype=bool)
    for axis in axes:
        along = (np.arange(shape[axis]) % period) == offsets[axis]
        members &= np.expand_dims(along, tuple(i for i in range(len(shape)) if i != axis))
    return members


def _constant_per_block(v: View, axes: tuple[int, ...], period: int) -> bool:
    """The numeric gradient is one value over each block (its bars apart at most): the
    block shares one upstream value, which backward must spread to every member."""
    n, bar = np.where(v.usable, v.n, np.nan), np.where(v.usable, v.bar, np.nan)
    shape: list[int] = []
    for axis, size in enumerate(v.shape):
        shape += [size // period, period] if axis in axes else [size]
    blocks = tuple(axes.index(axis) + axis + 1 for axis in axes)  # each block's own axes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a block with nothing measured
        low = np.nanmin(n.reshape(shape), axis=blocks)
        high = np.nanmax(n.reshape(shape), axis=blocks)
        widest = np.nanmax(bar.reshape(shape), axis=blocks)
    return bool(np.all((high - low <= 2 * widest) | np.isnan(widest)))


def _own_diagnosis(v: View, axes: tuple[int, ...], period: int, offsets: dict[int, int],
                   members: np.ndarray, zero: bool) -> Diagnosis:
    stride = _stride_text(v.name, v.a.ndim, axes, period, offsets)
    block = " x ".join([str(period)] * len(axes))
    k_members = int((v.usable & members).sum())
    k_others = int((v.usable & ~members).sum())
    others = ("0 at the other" if zero else "wrong at every other")
    return Diagnosis(
        v.name, "block_member",
        f"analytic is right at one element of each {block} block, {stride} ({k_members} "
        f"elements), and {others} {k_others} elements, where numeric is not 0: backward gives "
        f"each block's gradient to one member (a strided slice, {stride} = ...) where every "
        "member of the block was meant to get it (an average pooling spreads it, divided by "
        "the block's size; a sum over the block, all of it)",
        where=stride, count=k_members + k_others)


def _stride_text(name: str, ndim: int, axes: tuple[int, ...], period: int,
                 offsets: dict[int, int]) -> str:
    """``x[:, ::2, ::2]``, ``x[1::2]``."""
    places = []
    for axis in range(ndim):
        if axis in axes:
            start = offsets[axis]
            places.append(f"{start if start else ''}::{period}")
        else:
            places.append(":")
    while len(places) > 1 and places[-1] == ":":
        places.pop()
    return f"{name}[{', '.join(places)}]"


# --------------------------------------------------------------------------- upstream grid


def _upstream_grid(v: View, ctx: Context) -> Diagnosis | None:
    out = ctx.output_shape
    if out is None or len(out) != v.a.ndim or v.a.ndim == 0:
        return None
    factors = []
    for size, big in zip(v.shape, out, strict=True):
        if size == 0 or big % size or not 1 <= big // size <= MAX_FACTOR:
            return None
        factors.append(big // size)
    axes = tuple(axis for axis, f in enumerate(factors) if f > 1)
    if not axes or not (v.usable & clearly(v.a, v.bar)).any():
        return None
    g = ctx.upstream()
    if g is None or g.shape != tuple(out):
        return None
    split: list[int] = []
    for size, f in zip(v.shape, factors, strict=True):
        split += [size, f]
    blocks = g.reshape(split)  # (s0, f0, s1, f1, ...)
    inner = tuple(2 * axis + 1 for axis in range(v.a.ndim))
    for offset in itertools.product(*(range(f) for f in factors)):
        picked = blocks[tuple(x for o in offset for x in (slice(None), o))]
        if not fits(v.a, picked, v.bar, v.usable):
            continue
        summed = blocks.sum(axis=inner)
        return _upstream_diagnosis(v, axes, factors, offset, fits(v.n, summed, v.bar, v.usable))
    return None


def _upstream_diagnosis(v: View, axes: tuple[int, ...], factors: list[int],
                        offset: tuple[int, ...], sums: bool) -> Diagnosis:
    places = []
    for axis, f in enumerate(factors):
        places.append(f"{offset[axis] if offset[axis] else ''}::{f}" if f > 1 else ":")
    while len(places) > 1 and places[-1] == ":":
        places.pop()
    stride = f"dout[{', '.join(places)}]"
    block = " x ".join(str(factors[axis]) for axis in axes)
    k = int(v.usable.sum())
    split = ", ".join(f"{size}, {f}" if f > 1 else str(size)
                      for size, f in zip(v.shape, factors, strict=True))
    summed = ", ".join(str(axis + axes.index(axis) + 1) for axis in axes)
    if sums:
        numeric = (f"while numeric is the sum of dout over each {block} block: a strided slice "
                   "where a sum over the block was meant (each element feeds every output of "
                   f"its block): dout.reshape({split}).sum(axis=({summed}))")
    else:
        numeric = ("while numeric is not: each element feeds more outputs than that one, and "
                   "its gradient must gather from all of them")
    return Diagnosis(
        v.name, "block_member",
        f"analytic = {stride}, one element of each {block} block of the upstream gradient "
        f"dout, in {every(k, v)}, {numeric}", where=stride, count=k)
