"""Objectives for the ``executor=`` benchmarks: module-level classes, so that process-pool
and Dask workers can unpickle them (the engine sends the loss and its params together).

* :class:`WaitingObjective`: a loss that waits 1 ms (I/O, a simulator, a remote call)
  and then does almost no arithmetic: parallel workers overlap the waits.
* :class:`BlasObjective`: a loss dominated by a 300x300 matrix product (BLAS-bound): two
  workers share the same two cores that serial numpy already uses with two BLAS threads.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

#: coordinates checked in the benchmarks: full mode, 2 loss evaluations each
WAITING_COORDINATES = 200
BLAS_COORDINATES = 150


class WaitingObjective:
    """``L = sum(sin(x))`` after a 1 ms wait; gradient ``cos(x)``."""

    def __init__(self, n: int = WAITING_COORDINATES, wait: float = 1e-3, seed: int = 0) -> None:
        self.wait = wait
        self.params = {"x": np.random.default_rng(seed).standard_normal(n)}

    def loss(self) -> float:
        time.sleep(self.wait)
        return float(np.sum(np.sin(self.params["x"])))

    def grads(self) -> dict[str, np.ndarray]:
        return {"x": np.cos(self.params["x"])}


class BlasObjective:
    """``L = sum(tanh(A @ B + b))`` with A, B 300x300 (the product is recomputed every
    evaluation, as a layer's forward would); checked over b, gradient ``sum_rows(1 - t^2)``.
    """

    def __init__(self, n: int = BLAS_COORDINATES, size: int = 300, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.standard_normal((size, size)) / np.sqrt(size)
        self.b_matrix = rng.standard_normal((size, n)) / np.sqrt(size)
        self.params = {"b": rng.standard_normal(n) * 0.1}

    def _t(self) -> np.ndarray:
        return np.tanh(self.a @ self.b_matrix + self.params["b"])

    def loss(self) -> float:
        return float(np.sum(self._t()))

    def grads(self) -> dict[str, np.ndarray]:
        t = self._t()
        return {"b": np.sum(1 - t * t, axis=0)}


def check(objective: Any, executor: Any = None) -> Any:
    """A full-mode check of ``objective`` (serial without an executor)."""
    import gradcheck as gc

    return gc.check_params(objective.loss, objective.grads, objective.params, mode="full",
                           executor=executor)


def loss_evaluations(objective: Any) -> int:
    """Full mode evaluates the loss twice per coordinate, plus once at the point."""
    return 2 * sum(p.size for p in objective.params.values()) + 1
