"""Bytes a call allocates, and the most it holds at once, measured with tracemalloc.

numpy reports every array it allocates to tracemalloc, so the figures cover arrays and
Python objects alike. tracemalloc itself only knows the memory held now and its peak, not
how much was allocated in all; :class:`AllocationTracer` therefore reads both at every
line the measured code executes (``sys.settrace``) and adds up, line by line, how far the
held memory rose above where the line began. That counts every array that is kept or
handed on; a temporary created and freed inside one line (``a * b + c``) counts once, at
its largest: the total is a lower bound, exact for code that holds its arrays in names.
Rises smaller than :data:`NOISE_BYTES` per line are left out: they are the tracer's own
bookkeeping (a few Python ints per line), not the code's.

Owners attribute the bytes to whoever was running (a network and each of its layers):
:meth:`AllocationTracer.enter` / :meth:`~AllocationTracer.leave` around a sublayer's call.

>>> import numpy as np
>>> a = np.ones(100_000)
>>> def three_copies():
...     c1 = a.copy()
...     c2 = a.copy()
...     c3 = a.copy()
>>> allocated, peak = measure_allocations(three_copies)
>>> allocated // a.nbytes, peak // a.nbytes
(3, 3)
"""
from __future__ import annotations

import sys
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["NOISE_BYTES", "AllocationTracer", "Allocations", "measure_allocations"]

#: a line whose held memory rose by less than this is not counted (the tracer's own ints)
NOISE_BYTES = 512


@dataclass
class Allocations:
    """What one owner allocated during one traced call: bytes in all (line by line), and
    the most it held at once above what was held when it started."""

    allocated: int = 0
    peak: int = 0


@dataclass
class _Active:
    key: Any
    base: int
    tally: Allocations = field(default_factory=Allocations)


class AllocationTracer:
    """Line-by-line allocation accounting while active (see the module docstring)."""

    def __init__(self) -> None:
        self.results: dict[Any, Allocations] = {}
        self._stack: list[_Active] = []
        self._mark = 0
        self._started = False

    # -- the tracer ---------------------------------------------------------------------
    def _flush(self) -> None:
        """Account for the interval since the last flush, to every active owner."""
        current, peak = tracemalloc.get_traced_memory()
        rise = peak - self._mark
        for active in self._stack:
            if rise >= NOISE_BYTES:
                active.tally.allocated += rise
            active.tally.peak = max(active.tally.peak, peak - active.base)
        self._mark = current
        tracemalloc.reset_peak()

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        self._flush()
        return self._trace

    # -- owners -------------------------------------------------------------------------
    def enter(self, key: Any) -> None:
        """Start attributing to ``key`` (nested inside the owners already active)."""
        self._flush()
        self._stack.append(_Active(key, self._mark))

    def leave(self) -> None:
        """Stop attributing to the innermost owner; add its tally to its results."""
        self._flush()
        active = self._stack.pop()
        total = self.results.setdefault(active.key, Allocations())
        total.allocated += active.tally.allocated
        total.peak = max(total.peak, active.tally.peak)

    def run(self, key: Any, call: Callable[[], object]) -> object:
        """``call()`` traced, its bytes attributed to ``key``."""
        self._started = not tracemalloc.is_tracing()
        if self._started:
            tracemalloc.start()
        previous = sys.gettrace()
        try:
            self._mark = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            self.enter(key)
            sys.settrace(self._trace)
            try:
                return call()
            finally:
                sys.settrace(previous)
                self.leave()
        finally:
            if self._started:
                tracemalloc.stop()


def measure_allocations(call: Callable[[], object]) -> tuple[int, int]:
    """(bytes allocated in all, most bytes held at once) during ``call()``; what the call
    returns is held until it returns, so it counts in both."""
    tracer = AllocationTracer()
    tracer.run("call", call)
    tally = tracer.results["call"]
    return tally.allocated, tally.peak
