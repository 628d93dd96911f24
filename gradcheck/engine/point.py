"""The point: the only code that moves the user's arrays, and puts them back bit for bit.

Every look the engine takes is a move away from the point and back: one coordinate at a
time (:func:`coordinate_scan`, also run by the workers of an executor), a few coordinates
together (:meth:`Point.moved`: ties, jitters, the resolution probe), or every coordinate of
a tensor chunk by chunk (:class:`Walk`: fast mode's random directions, with no temporary
of the tensor's size). Each returns the steps actually taken, read back from the arrays
after the write: rounding of v + h in the array's own dtype never biases a quotient.

>>> a = np.array([1.0, 2.0])
>>> point = Point({"a": a})
>>> with point.moved({"a": (np.array([1]), np.array([2.5]))}) as taken:
...     float(a[1]), float(taken["a"][0])
(2.5, 0.5)
>>> a.tolist()
[1.0, 2.0]
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from gradcheck.validate import same_bits

CHUNK = 1 << 16  # coordinates moved per numpy call by a Walk: temporaries stay this size


def coordinate_scan(
    loss: Callable[[], float],
    array: np.ndarray,
    flat_indices: np.ndarray,
    steps: np.ndarray,
    on_step: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``loss()`` at v + h and at v - h for each listed coordinate of ``array``: the loss
    values and the steps taken, ``(loss_plus, loss_minus, step_plus, step_minus)``.

    ``array`` is written in place; every coordinate is put back to its exact old value
    before the next is moved (also when ``loss()`` raises). Two evaluations per coordinate.

    >>> a = np.array([1.0, 2.0])
    >>> lp, lm, hp, hm = coordinate_scan(lambda: float(np.sum(a ** 2)), a, np.arange(2),
    ...                                  np.full(2, 1e-3))
    >>> np.allclose((lp - lm) / (hp + hm), [2.0, 4.0])
    True
    """
    count = len(flat_indices)
    loss_plus, loss_minus = np.empty(count), np.empty(count)
    step_plus, step_minus = np.empty(count), np.empty(count)
    flat = array.flat
    for k, (i, h) in enumerate(zip(flat_indices.tolist(), steps.tolist(), strict=True)):
        old = flat[i]
        v = float(old)
        try:
            flat[i] = v + h
            step_plus[k] = float(flat[i]) - v
            loss_plus[k] = loss()
            flat[i] = v - h
            step_minus[k] = v - float(flat[i])
            loss_minus[k] = loss()
        finally:
            flat[i] = old
        if on_step is not None:
            on_step(k + 1)
    return loss_plus, loss_minus, step_plus, step_minus


Moves = Mapping[str, tuple[np.ndarray, np.ndarray]]  # name -> (flat indices, new values)


class Point:
    """The user's arrays (moved in place) and their saved values (never moved)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays
        self.saved = {name: array.copy() for name, array in arrays.items()}

    def values(self, name: str, flat_indices: np.ndarray | None = None) -> np.ndarray:
        """The saved values of ``name`` (at ``flat_indices``), as float64."""
        flat = self.saved[name].reshape(-1)
        chosen = flat if flat_indices is None else flat[flat_indices]
        return np.asarray(chosen, dtype=np.float64)

    def changed(self) -> list[str]:
        """Names of arrays that differ from their saved values."""
        return [name for name, array in self.arrays.items()
                if not same_bits(array, self.saved[name])]

    def restore(self) -> None:
        """Every array back to its saved values, bit for bit."""
        for name, array in self.arrays.items():
            np.copyto(array, self.saved[name])

    def scan(self, loss: Callable[[], float], name: str, flat_indices: np.ndarray,
             steps: np.ndarray, on_step: Callable[[int], None] | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:func:`coordinate_scan` of one of the arrays."""
        return coordinate_scan(loss, self.arrays[name], flat_indices, steps, on_step)

    @contextmanager
    def moved(self, moves: Moves) -> Iterator[dict[str, np.ndarray]]:
        """Inside the block, the listed coordinates hold the given values (as their dtype
        rounds them); yields the offsets taken from the saved values, per array (float64).
        The coordinates get their saved bits back on the way out, whatever happened."""
        try:
            taken = {}
            for name, (flat_indices, new) in moves.items():
                flat = self.arrays[name].reshape(-1) if self.arrays[name].flags.c_contiguous \
                    else None
                if flat is not None:
                    flat[flat_indices] = new
                    stored = flat[flat_indices]
                else:
                    self.arrays[name].flat[flat_indices] = new
                    stored = np.asarray(self.arrays[name].flat[flat_indices])
                taken[name] = (np.asarray(stored, dtype=np.float64)
                               - self.values(name, flat_indices))
            yield taken
        finally:
            for name, (flat_indices, _) in moves.items():
                self.arrays[name].flat[flat_indices] = self.saved[name].reshape(-1)[flat_indices]


@dataclass(frozen=True)
class Segment:
    """The flat range lo:hi of one array that a :class:`Walk` moves."""

    name: str
    lo: int
    hi: int


def chunks(lo: int, hi: int) -> Iterator[tuple[int, int]]:
    """(a, z): the pieces of lo:hi that lie in one CHUNK of a tensor each.

    >>> list(chunks(CHUNK - 2, CHUNK + 1))
    [(65534, 65536), (65536, 65537)]
    """
    start = lo
    while start < hi:
        end = min(hi, (start // CHUNK + 1) * CHUNK)
        yield start, end
        start = end


# The direction of a walk over a:z of a segment: float values, to be scaled by max(1, |v|).
DirectionFn = Callable[[int, int, int], np.ndarray]
# Told, chunk by chunk, the offsets actually taken from the point: (segment, a, z, taken).
TakenFn = Callable[[int, int, int, np.ndarray], None]


@dataclass
class Walk:
    """Moves whole segments along a direction, chunk by chunk: no temporary of a tensor's
    size. Every move leaves from the point (:meth:`leave`) or from where the last one went
    (:meth:`turn`), and reports the offsets taken, chunk by chunk, to ``on_taken``."""

    point: Point
    segments: list[Segment]
    _buffers: dict[str, np.ndarray] = field(default_factory=dict)

    def _buffer(self, kind: str, dtype: np.dtype, count: int) -> np.ndarray:
        key = f"{kind}-{np.dtype(dtype).str}"
        if key not in self._buffers:
            self._buffers[key] = np.empty(CHUNK, dtype=dtype)
        return self._buffers[key][:count]

    def _parts(self) -> Iterator[tuple[int, np.ndarray, np.ndarray | None, np.ndarray, int, int]]:
        """(segment, array, flat view or None, saved flat, a, z) for every chunk."""
        for k, segment in enumerate(self.segments):
            array = self.point.arrays[segment.name]
            flat = array.reshape(-1) if array.flags.c_contiguous else None
            saved = self.point.saved[segment.name].reshape(-1)
            for a, z in chunks(segment.lo, segment.hi):
                yield k, array, flat, saved, a, z

    def _write(self, array: np.ndarray, flat: np.ndarray | None, a: int, z: int,
               target: np.ndarray) -> None:
        if flat is None:
            array.flat[a:z] = target

    def _target(self, flat: np.ndarray | None, dtype: np.dtype, a: int, z: int) -> np.ndarray:
        return flat[a:z] if flat is not None else self._buffer("own", dtype, z - a)

    def leave(self, direction: DirectionFn, on_taken: TakenFn) -> None:
        """From the point to point + max(1, |v|) * direction, chunk by chunk."""
        for k, array, flat, saved, a, z in self._parts():
            base = saved[a:z]
            work = np.result_type(base.dtype, np.float64)
            step = self._buffer("step", work, z - a)
            np.abs(base, out=step)
            np.maximum(step, 1.0, out=step)
            step *= direction(k, a, z)
            target = self._target(flat, base.dtype, a, z)
            np.add(base, step, out=target, casting="unsafe")
            self._write(array, flat, a, z, target)
            self._report(k, base, target, work, a, z, on_taken)

    def turn(self, factor: float, on_taken: TakenFn) -> None:
        """To the point plus ``factor`` times the present offset from it (-1: the mirror
        image through the point; -0.5: that, halved)."""
        for k, array, flat, saved, a, z in self._parts():
            base = saved[a:z]
            work = np.result_type(base.dtype, np.float64)
            offset = self._buffer("step", work, z - a)
            current = flat[a:z] if flat is not None else np.asarray(array.flat[a:z])
            np.subtract(current, base, out=offset, dtype=work)
            offset *= factor
            target = self._target(flat, base.dtype, a, z)
            np.add(base, offset, out=target, casting="unsafe")
            self._write(array, flat, a, z, target)
            self._report(k, base, target, work, a, z, on_taken)

    def _report(self, k: int, base: np.ndarray, target: np.ndarray, work: np.dtype, a: int,
                z: int, on_taken: TakenFn) -> None:
        taken = self._buffer("taken", work, z - a)
        np.subtract(target, base, out=taken, dtype=work)
        on_taken(k, a, z, taken)

    def restore(self) -> None:
        """Every segment back to its saved values, bit for bit."""
        for _, array, flat, saved, a, z in self._parts():
            if flat is not None:
                np.copyto(flat[a:z], saved[a:z])
            else:
                array.flat[a:z] = saved[a:z]
