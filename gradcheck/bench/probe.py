"""Seeing inside a network while it runs: each sublayer's calls timed, recorded, traced.

A network is any layer that exposes its sublayers as a ``layers`` list or tuple
(``reference_nets.Sequential`` does); :func:`sublayers` finds them. A :class:`LayerProbe`
wraps each sublayer's ``forward`` and ``backward`` on the instance (an attribute that
shadows the method, removed again by :meth:`LayerProbe.uninstall`) while the *network's
own* forward and backward run: whatever order, arguments (``out=``) and topology the
network uses, each sublayer is timed where it really runs, and the rest of the network's
time is its own code between the layers.

>>> import numpy as np
>>> from reference_nets import Dense, ReLU, Sequential
>>> net = Sequential(Dense(3, 4, rng=0), ReLU())
>>> probe = LayerProbe(sublayers(net))
>>> with probe.installed():
...     probe.record = True
...     _ = net.backward(np.ones((2, 4))) if net.forward(np.ones((2, 3))) is not None else 0
>>> sorted(probe.calls), "forward" in vars(net.layers[0])
([(0, 'backward'), (0, 'forward'), (1, 'backward'), (1, 'forward')], False)
"""
from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gradcheck.bench.memory import AllocationTracer

__all__ = ["KINDS", "NETWORK", "LayerProbe", "sublayers"]

KINDS = ("forward", "backward")
#: the key of the network's own times among the sublayers' indices
NETWORK = -1


def sublayers(layer: Any) -> list[Any] | None:
    """The sublayers of a network: its ``layers`` attribute when that is a non-empty list
    or tuple of objects with ``forward`` and ``backward``; else None (a single layer).

    >>> from reference_nets import Dense, ReLU, Sequential
    >>> len(sublayers(Sequential(Dense(2, 2, rng=0), ReLU()))), sublayers(ReLU())
    (2, None)
    """
    found = getattr(layer, "layers", None)
    if not isinstance(found, list | tuple) or not found:
        return None
    if not all(callable(getattr(s, k, None)) for s in found for k in KINDS):
        return None
    return list(found)


class LayerProbe:
    """Wrappers around the sublayers' methods, and what they saw.

    * ``pending[i][kind]``: seconds spent in sublayer ``i``'s ``kind`` during the current
      call of the network; :meth:`keep` moves them to ``samples`` (or drops them);
    * ``record = True``: the first call of each sublayer method is kept in ``calls`` as
      deep copies of (its first argument, its result);
    * ``tracer``: an :class:`AllocationTracer` that is told when each sublayer method
      starts and ends, so that the bytes it allocates are attributed to ``(i, kind)``.

    A sublayer object listed twice is wrapped once, under its first index.
    """

    def __init__(self, layers: list[Any]) -> None:
        self.layers = layers
        self.index: dict[int, int] = {}
        for i, layer in enumerate(layers):
            self.index.setdefault(id(layer), i)
        self.unique = [i for i, layer in enumerate(layers) if self.index[id(layer)] == i]
        self.pending: dict[int, dict[str, float]] = {}
        self.samples: dict[int, dict[str, list[float]]] = {}
        #: the network's own calls in the same runs, key NETWORK (see :meth:`time_network`)
        self.calls: dict[tuple[int, str], tuple[Any, Any]] = {}
        self.record = False
        self.tracer: AllocationTracer | None = None
        self._saved: list[tuple[Any, str, Any]] = []
        self.reset()

    def reset(self) -> None:
        """Forget the samples (a new attempt of a measurement)."""
        keys = [*self.unique, NETWORK]
        self.pending = {i: dict.fromkeys(KINDS, 0.0) for i in keys}
        self.samples = {i: {k: [] for k in KINDS} for i in keys}

    def time_network(self, kind: str, call: Any) -> Any:
        """``call()`` (the network's forward or backward), timed as ``samples[NETWORK]``:
        the sublayers' shares and the time between them are read off the same calls."""
        t0 = time.perf_counter()
        result = call()
        self.pending[NETWORK][kind] += time.perf_counter() - t0
        return result

    def keep(self, timed: bool) -> None:
        """End of one call of the network: keep its per-layer seconds if it was timed."""
        for i, spent in self.pending.items():
            if timed:
                for kind in KINDS:
                    self.samples[i][kind].append(spent[kind])
            for kind in KINDS:
                spent[kind] = 0.0

    def _wrap(self, i: int, method: Any, kind: str) -> Any:
        clock = time.perf_counter
        pending = self.pending

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            tracer = self.tracer
            if tracer is not None:
                tracer.enter((i, kind))
            t0 = clock()
            try:
                result = method(*args, **kwargs)
            finally:
                elapsed = clock() - t0
                if tracer is not None:
                    tracer.leave()
            pending[i][kind] += elapsed
            if self.record and (i, kind) not in self.calls:
                self.calls[i, kind] = copy.deepcopy((args[0] if args else None, result))
            return result

        return timed_call

    def install(self) -> None:
        """Shadow each sublayer's forward and backward with a wrapper (AttributeError or
        TypeError: a sublayer whose attributes cannot be set, e.g. ``__slots__``)."""
        try:
            for i in self.unique:
                layer = self.layers[i]
                for kind in KINDS:
                    own = vars(layer).get(kind, _ABSENT)
                    wrapper = self._wrap(i, getattr(layer, kind), kind)
                    setattr(layer, kind, wrapper)
                    self._saved.append((layer, kind, own))
        except (AttributeError, TypeError):
            self.uninstall()
            raise

    def uninstall(self) -> None:
        """Put every sublayer's own methods back."""
        while self._saved:
            layer, kind, own = self._saved.pop()
            if own is _ABSENT:
                delattr(layer, kind)
            else:
                setattr(layer, kind, own)

    @contextmanager
    def installed(self) -> Iterator[LayerProbe]:
        self.install()
        try:
            yield self
        finally:
            self.uninstall()


class _Absent:
    pass


_ABSENT = _Absent()
