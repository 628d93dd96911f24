"""``assert_*``: the check_* front doors for tests. Each takes the same arguments as the
check of the same name, returns the report when it is ok, and otherwise raises
:class:`~gradcheck.errors.GradientMismatch` (an AssertionError) whose message is the
report's text — the way numpy.testing, torch and jax fail loudly where people test.

An UNVERIFIED report (the finite differences could not decide: the report says why and
what to do) raises too: only a verified gradient passes.

(No ``from __future__ import annotations``: help() then shows the allowed values of mode
and kinks.)
"""
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np

from gradcheck.adapters import check_function, check_layer
from gradcheck.core import check_params
from gradcheck.errors import GradientMismatch
from gradcheck.options import (
    DEFAULT_KINKS,
    DEFAULT_MODE,
    DEFAULT_SEED,
    KinkMode,
    Mode,
    ProgressCallback,
    front_door,
)
from gradcheck.pairs import check_loss, check_pair
from gradcheck.protocols import Layer
from gradcheck.report import Report


def _verified(report: Report) -> Report:
    __tracebackhide__ = True  # pytest shows the report, not this frame
    if not report.ok:
        raise GradientMismatch(str(report), report)
    return report


@front_door
def assert_layer(
    layer: Layer,
    x: np.ndarray,
    *,
    upstream: np.ndarray | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    mode: Mode = DEFAULT_MODE,
    kinks: KinkMode = DEFAULT_KINKS,
    seed: int | None = DEFAULT_SEED,
    executor: Executor | None = None,
    progress: ProgressCallback | bool | None = None,
) -> Report:
    """:func:`gradcheck.check_layer`, raising GradientMismatch (with the report's text)
    unless the report is ok; an UNVERIFIED report raises too. Returns the ok report.

    >>> import numpy as np, gradcheck as gc
    >>> class Square:
    ...     def forward(self, x): self.x = x; return x ** 2
    ...     def backward(self, g): return 3 * self.x * g
    >>> gc.assert_layer(Square(), np.array([[1.0, -2.0]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradientMismatch: gradcheck: FAILED x[...
    """
    __tracebackhide__ = True
    return _verified(check_layer(layer, x, upstream=upstream, rtol=rtol, atol=atol, mode=mode,
                                 kinks=kinks, seed=seed, executor=executor, progress=progress))


@front_door
def assert_function(
    f: Callable[[np.ndarray], Any],
    grad: Callable[[np.ndarray], Any],
    x: np.ndarray,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    mode: Mode = DEFAULT_MODE,
    kinks: KinkMode = DEFAULT_KINKS,
    seed: int | None = DEFAULT_SEED,
    executor: Executor | None = None,
    progress: ProgressCallback | bool | None = None,
) -> Report:
    """:func:`gradcheck.check_function`, raising GradientMismatch (with the report's text)
    unless the report is ok; an UNVERIFIED report raises too. Returns the ok report.

    >>> import numpy as np, gradcheck as gc
    >>> gc.assert_function(lambda v: float(np.sum(v ** 2)), lambda v: 2 * v, np.ones(3)).ok
    True
    """
    __tracebackhide__ = True
    return _verified(check_function(f, grad, x, rtol=rtol, atol=atol, mode=mode, kinks=kinks,
                                    seed=seed, executor=executor, progress=progress))


@front_door
def assert_params(
    loss: Callable[[], Any],
    grads: Callable[[], Any],
    params: dict[str, np.ndarray],
    *,
    rtol: float | None = None,
    atol: float | None = None,
    mode: Mode = DEFAULT_MODE,
    kinks: KinkMode = DEFAULT_KINKS,
    seed: int | None = DEFAULT_SEED,
    executor: Executor | None = None,
    progress: ProgressCallback | bool | None = None,
) -> Report:
    """:func:`gradcheck.check_params`, raising GradientMismatch (with the report's text)
    unless the report is ok; an UNVERIFIED report raises too. Returns the ok report.

    >>> import numpy as np, gradcheck as gc
    >>> p = {"w": np.array([1.0, -2.0])}
    >>> gc.assert_params(lambda: float(np.sum(p["w"] ** 2)), lambda: {"w": 2 * p["w"]}, p).ok
    True
    """
    __tracebackhide__ = True
    return _verified(check_params(loss, grads, params, rtol=rtol, atol=atol, mode=mode,
                                  kinks=kinks, seed=seed, executor=executor, progress=progress))


@front_door
def assert_pair(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    *args: Any,
    upstream: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
    mode: Mode = DEFAULT_MODE,
    kinks: KinkMode = DEFAULT_KINKS,
    seed: int | None = DEFAULT_SEED,
    executor: Executor | None = None,
    progress: ProgressCallback | bool | None = None,
) -> Report:
    """:func:`gradcheck.check_pair`, raising GradientMismatch (with the report's text)
    unless the report is ok; an UNVERIFIED report raises too. Returns the ok report.

    >>> import numpy as np, gradcheck as gc
    >>> relu_forward = lambda x: (np.maximum(x, 0), x)
    >>> relu_backward = lambda dout, x: dout * (x > 0)
    >>> gc.assert_pair(relu_forward, relu_backward, np.array([[1.0, -2.0, 0.5]])).ok
    True
    """
    __tracebackhide__ = True
    return _verified(check_pair(forward, backward, *args, upstream=upstream, rtol=rtol,
                                atol=atol, mode=mode, kinks=kinks, seed=seed, executor=executor,
                                progress=progress))


@front_door
def assert_loss(
    fn: Callable[..., Any],
    x: np.ndarray,
    *args: Any,
    rtol: float | None = None,
    atol: float | None = None,
    mode: Mode = DEFAULT_MODE,
    kinks: KinkMode = DEFAULT_KINKS,
    seed: int | None = DEFAULT_SEED,
    executor: Executor | None = None,
    progress: ProgressCallback | bool | None = None,
) -> Report:
    """:func:`gradcheck.check_loss`, raising GradientMismatch (with the report's text)
    unless the report is ok; an UNVERIFIED report raises too. Returns the ok report.

    >>> import numpy as np, gradcheck as gc
    >>> def square_loss(x, target):
    ...     return float(np.sum((x - target) ** 2)), 2 * (x - target)
    >>> gc.assert_loss(square_loss, np.array([1.0, 2.0]), np.array([0.5, 0.5])).ok
    True
    """
    __tracebackhide__ = True
    return _verified(check_loss(fn, x, *args, rtol=rtol, atol=atol, mode=mode, kinks=kinks,
                                seed=seed, executor=executor, progress=progress))
