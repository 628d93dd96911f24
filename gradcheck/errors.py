"""The exceptions gradcheck raises: usage errors are ValueErrors, a failed check an
AssertionError."""
from __future__ import annotations


class GradcheckUsageError(ValueError):
    """A bad argument to a check: the message names the argument and says how to fix it."""


class GradientShapeError(GradcheckUsageError):
    """The analytic gradient has missing/extra keys or a shape unlike its parameter's."""


class GradientMismatch(AssertionError):
    """Raised by ``Report.raise_if_failed()``; its message is the report's table."""
