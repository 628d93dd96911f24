"""The exceptions gradcheck raises: usage errors are ValueErrors, a failed check an
AssertionError."""
from __future__ import annotations

from typing import Any


class GradcheckUsageError(ValueError):
    """A bad argument to a check: the message names the argument and says how to fix it.

    >>> import numpy as np, gradcheck as gc
    >>> gc.check_function(np.sum, np.ones_like, np.arange(3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: x has dtype int64: gradients need floats; ...
    """


class GradcheckArgumentError(GradcheckUsageError, TypeError):
    """A call that does not fit the function's signature (an unknown or misspelled option, a
    missing argument, an option passed by position). Also a TypeError, like the error Python
    raises for such a call, so code that catches either keeps working.

    >>> raise GradcheckArgumentError("check_layer() got an unexpected option 'rtl'")
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckArgumentError: check_layer() got an unexpected option 'rtl'
    """


class GradientShapeError(GradcheckUsageError):
    """The analytic gradient has missing/extra keys or a shape unlike its parameter's.

    >>> import numpy as np, gradcheck as gc
    >>> gc.check_function(np.sum, lambda v: np.ones(2), np.ones(3))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradientShapeError: grad(x)['x'] has shape (2,), expected (3,) like ...
    """


class GradientMismatch(AssertionError):
    """Raised by ``Report.raise_if_failed()`` and the ``assert_*`` functions; its message is
    the report's text, and ``.report`` the report itself (its tensors, diagnoses,
    ``to_dict()``), so a test can look further than the message.

    >>> import numpy as np, gradcheck as gc
    >>> try:
    ...     gc.assert_function(lambda v: float(np.sum(v ** 2)), lambda v: 3 * v, np.ones(3))
    ... except gc.GradientMismatch as error:
    ...     print(error.report.tensors[0].status, error.report.diagnoses[0].kind)
    FAILED scale
    """

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)`` on one line, cut at ``limit`` characters: how a message quotes a
    value the user passed (a dict's repr may run over lines and pages).

    >>> short_repr({"a": "x" * 50}, 20)
    "{'a': 'xxxxxxxxxxxx…"
    """
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
