"""``assert_*``: the check_* front doors for tests. Each takes the same arguments as the
check of the same name, returns the report when it is ok, and otherwise raises
:class:`~gradcheck.errors.GradientMismatch` (an AssertionError) whose message is the
report's text — the way numpy.testing, torch and jax fail loudly where people test.

An UNVERIFIED report (the finite differences could not decide: the report says why and
what to do) raises too: only a verified gradient passes.

Each assert_* is built from its check by :func:`_asserting`: the signature (what help(),
IDEs and mypy see) is the check's own, so an option added to a check reaches its assert.
"""
import inspect
from collections.abc import Callable
from typing import ParamSpec

from gradcheck.adapters import check_function, check_layer
from gradcheck.elementwise import check_elementwise
from gradcheck.errors import GradientMismatch
from gradcheck.options import front_door
from gradcheck.pairs import check_loss, check_pair
from gradcheck.params import check_params
from gradcheck.report import Report

P = ParamSpec("P")


def _asserting(check: Callable[P, Report], example: str) -> Callable[P, Report]:
    """The assert_* of ``check``: the same signature, raising GradientMismatch (with the
    report's text, and the report) unless the report is ok. ``example`` is the doctest its
    docstring shows.

    It is a front door of its own: a call that does not fit (``rtl=``) names assert_*.
    """
    name = "assert_" + check.__name__.removeprefix("check_")
    engine = inspect.unwrap(check)  # past its door: the assert's own door admits the call

    def asserting(*args: P.args, **kwargs: P.kwargs) -> Report:
        __tracebackhide__ = True  # pytest shows the user's call and the report
        report = engine(*args, **kwargs)
        if not report.ok:
            raise GradientMismatch(str(report), report)
        return report

    asserting.__name__ = asserting.__qualname__ = name
    asserting.__module__ = __name__
    asserting.__doc__ = (
        f":func:`gradcheck.{check.__name__}`, raising GradientMismatch (with the report's "
        f"text)\nunless the report is ok; an UNVERIFIED report raises too. Returns the ok "
        f"report.\n\n{inspect.cleandoc(example)}\n")
    return front_door(asserting, like=check)


assert_layer = _asserting(check_layer, """
    >>> import numpy as np, gradcheck as gc
    >>> class Square:
    ...     def forward(self, x): self.x = x; return x ** 2
    ...     def backward(self, g): return 3 * self.x * g
    >>> gc.assert_layer(Square(), np.array([[1.0, -2.0]]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradientMismatch: gradcheck: FAILED x[...
    """)

assert_function = _asserting(check_function, """
    >>> import numpy as np, gradcheck as gc
    >>> gc.assert_function(lambda v: float(np.sum(v ** 2)), lambda v: 2 * v, np.ones(3)).ok
    True
    """)

assert_params = _asserting(check_params, """
    >>> import numpy as np, gradcheck as gc
    >>> p = {"w": np.array([1.0, -2.0])}
    >>> gc.assert_params(lambda: float(np.sum(p["w"] ** 2)), lambda: {"w": 2 * p["w"]}, p).ok
    True
    """)

assert_pair = _asserting(check_pair, """
    >>> import numpy as np, gradcheck as gc
    >>> relu_forward = lambda x: (np.maximum(x, 0), x)
    >>> relu_backward = lambda dout, x: dout * (x > 0)
    >>> gc.assert_pair(relu_forward, relu_backward, np.array([[1.0, -2.0, 0.5]])).ok
    True
    """)

assert_loss = _asserting(check_loss, """
    >>> import numpy as np, gradcheck as gc
    >>> def square_loss(x, target):
    ...     return float(np.sum((x - target) ** 2)), 2 * (x - target)
    >>> gc.assert_loss(square_loss, np.array([1.0, 2.0]), np.array([0.5, 0.5])).ok
    True
    """)

assert_elementwise = _asserting(check_elementwise, """
    >>> import numpy as np, gradcheck as gc
    >>> sigmoid = lambda z: 1 / (1 + np.exp(-z))
    >>> sigmoid_prime = lambda z: sigmoid(z) * (1 - sigmoid(z))
    >>> gc.assert_elementwise(sigmoid, sigmoid_prime, np.array([-3.0, 0.0, 2.5])).ok
    True
    """)
