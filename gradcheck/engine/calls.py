"""The boundary around the user's code: every call of loss() and grads() goes through
:class:`Calls`, which counts it, checks what came back (gradcheck.validate), keeps what the
front door said about each loss value (:class:`LossValue`), watches the global random
generators, and reports progress.

Nothing here judges a gradient, and nothing here moves the params: that is the point's
(gradcheck.engine.point).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from gradcheck.engine.point import Point
from gradcheck.engine.slope import Look
from gradcheck.engine.value import LossValue
from gradcheck.errors import GradcheckUsageError
from gradcheck.options import Options, Subject
from gradcheck.validate import FLOAT64_EPS, as_scalar, check_grads, loss_precision

LossFn = Callable[[], Any]
GradsFn = Callable[[], Mapping[str, Any]]
ProgressFn = Callable[[int, int], None]

PROGRESS_INTERVAL = 0.5  # seconds between progress callbacks
WATCHED_CALLS = 2  # calls of each callable whose use of the global generators is watched


class GlobalRandom:
    """Python's ``random`` and numpy's legacy ``np.random``: saved when a check starts,
    put back before each call of the user's code when asked (``reset_random=True``), and
    fingerprinted after each watched call (a loss that draws from them without seeding
    leaves them different after every call; one that seeds itself, the same)."""

    def __init__(self) -> None:
        # the user's own global state, which their code may draw from: not ours to replace
        self.saved = (random.getstate(), np.random.get_state())  # noqa: NPY002

    def reset(self) -> None:
        random.setstate(self.saved[0])
        np.random.set_state(self.saved[1])  # noqa: NPY002

    @staticmethod
    def fingerprint() -> tuple[int, int]:
        keys = np.random.get_state()  # noqa: NPY002
        python = hash(random.getstate())
        legacy = hash((keys[1].tobytes(), keys[2], keys[3], keys[4]))  # type: ignore[index]
        return python, legacy


class Calls:
    """The user's loss() and grads(): counted, validated, watched; their scans of one
    coordinate at a time (spread over an executor when one is given)."""

    def __init__(self, loss: LossFn, grads: GradsFn, point: Point, options: Options,
                 subject: Subject, progress: ProgressFn | None = None) -> None:
        self._loss, self._grads = loss, grads
        self.point = point
        self.arrays = point.arrays
        self.loss_label, self.grads_label = subject.loss_label, subject.grads_label
        self.executor = options.executor
        if options.executor is not None and options.reset_random:
            # the generators put back before each call are this process's own, and threads
            # would put them back under each other's feet: scan here, one call at a time
            self.executor = None
        self.progress = progress
        self.n_loss = self.n_grads = 0
        self.loss_eps = FLOAT64_EPS  # coarsest precision a loss value came back in
        self.scanned = 0  # coordinates measured or verified so far, for progress
        self.planned = 0  # coordinates of every tensor, for progress
        self._last_progress = 0.0
        self._last_done = -1
        self._payload: bytes | None = None
        self.unrepeatable: list[str] = []  # looks that came out differently when repeated
        self.loss_at_point = float("nan")  # the loss at the given point, once evaluated
        # the smallest non-zero |L - loss_at_point| any evaluation gave: the loss resolves
        # changes this small (a loss rounded in coarse steps never shows a smaller one)
        self.smallest_change = float("inf")
        self.last = LossValue(float("nan"))  # the last loss value, with what came with it
        self.random = GlobalRandom()
        self.reset_random = options.reset_random
        # fingerprints of the global generators after each watched call, per callable
        self._after: dict[str, list[tuple[int, int]]] = {"loss": [], "grads": []}
        self.notes: list[str] = []  # what the scan wants said in the report's warnings
        if self.executor is None and options.executor is not None:
            self.notes.append("reset_random=True: the executor was not used; the loss was "
                              "called in this process, one call at a time, so that the "
                              "global random generators put back before each call are the "
                              "ones it draws from")

    # ------------------------------------------------------------------ the user's code

    def _call(self, fn: Callable[[], Any], which: str) -> Any:
        if self.reset_random:
            self.random.reset()
        value = fn()
        after = self._after[which]
        if not self.reset_random and len(after) < WATCHED_CALLS:
            after.append(GlobalRandom.fingerprint())
        return value

    def draws_randomly(self) -> list[str]:
        """The callables ("loss", "grads") that left the global generators in a different
        state after each of their watched calls: they draw without seeding."""
        return [which for which, seen in self._after.items()
                if len(seen) == WATCHED_CALLS and len(set(seen)) > 1]

    def _evaluate(self) -> float:
        if self.progress is not None and self.planned:  # a slow loss still reports
            self.tick(self.scanned, self.planned)
        value = self._call(self._loss, "loss")
        if isinstance(value, LossValue):  # a front door's (a Python float: float64's eps)
            self.last = value
            return float(value)
        self.loss_eps = max(self.loss_eps, loss_precision(value))
        number = as_scalar(value, self.loss_label)
        self.last = LossValue(number)
        return number

    def loss(self) -> float:
        """One evaluation of the loss at the params as they are now."""
        self.n_loss += 1
        value = self._evaluate()
        self._saw(np.array([value]))
        return value

    def grads(self, copy: bool = True) -> dict[str, np.ndarray]:
        """The gradient at the current params, validated; as copies unless ``copy`` is
        False (a second look that is compared and dropped: no memory of the params' size)."""
        self.n_grads += 1
        return check_grads(self._call(self._grads, "grads"), self.arrays, self.grads_label,
                           copy)

    def _saw(self, values: np.ndarray) -> None:
        """Keep the smallest non-zero change from the point among these loss values."""
        with np.errstate(invalid="ignore"):
            change = np.abs(values - self.loss_at_point)
        moved = change[change > 0]  # nan (no point yet, a non-finite loss) drops out
        if moved.size:
            self.smallest_change = min(self.smallest_change, float(moved.min()))

    def note_unrepeatable(self, what: str) -> None:
        """Record that a look repeated at the same point answered differently."""
        self.unrepeatable.append(what)

    # ------------------------------------------------------------------ scans

    def scan(self, name: str, flat_indices: np.ndarray, steps: np.ndarray) -> Look:
        """The loss at v + h and v - h of the listed coordinates: 2 evaluations each."""
        done_before = self.scanned

        def on_step(done: int) -> None:
            self.tick(done_before + done, max(self.planned, done_before + done))

        self.n_loss += 2 * len(flat_indices)
        if self.executor is None or len(flat_indices) < 2:
            seen: list[LossValue] = []

            def evaluate() -> float:
                value = self._evaluate()
                seen.append(self.last)
                return value

            values = self.point.scan(evaluate, name, flat_indices, steps, on_step)
            look = Look.with_values(*values, seen)
        else:
            from gradcheck.parallel import scan_on_executor

            look = Look.bare(*scan_on_executor(self.executor, self._pickled(), name,
                                               flat_indices, steps, on_step, self.notes.append))
        self._saw(look.loss_plus)
        self._saw(look.loss_minus)
        return look

    def _pickled(self) -> bytes:
        import pickle

        if self._payload is None:
            try:  # loss and params in one pickle, so the copy loss reads is the one moved
                self._payload = pickle.dumps((self._loss, self.arrays, self.loss_label))
            except Exception as error:
                raise GradcheckUsageError(
                    "executor= sends the loss to other workers, so loss and params must pickle "
                    "together (a module-level callable or a bound method of an object holding "
                    f"the params, as check_layer uses): {type(error).__name__}: {error}"
                ) from error
        return self._payload

    # ------------------------------------------------------------------ progress

    def tick(self, done: int, total: int) -> None:
        """Progress: every coordinate counts; the callback fires about twice a second."""
        self.scanned = done
        if self.progress is None:
            return
        now = time.monotonic()
        finished = done >= total > 0 and done != self._last_done
        if now - self._last_progress >= PROGRESS_INTERVAL or finished:
            self._last_progress, self._last_done = now, done
            self.progress(done, max(total, done))
