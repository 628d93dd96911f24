"""gradcheck: a finite-difference gradient checker for hand-written backpropagation.

>>> import numpy as np, gradcheck as gc
>>> gc.check_function(lambda v: float(np.sum(v ** 2)), lambda v: 2 * v, np.ones(3)).ok
True
"""
from gradcheck.adapters import check_function, check_layer
from gradcheck.core import check_params
from gradcheck.diagnostics import (
    ConventionReport,
    FlowReport,
    convention_sensitivity,
    gradient_flow,
    make_chain,
)
from gradcheck.errors import GradcheckUsageError, GradientMismatch, GradientShapeError
from gradcheck.report import KinkTally, Mismatch, Report, TensorResult

__all__ = [
    "ConventionReport",
    "FlowReport",
    "GradcheckUsageError",
    "GradientMismatch",
    "GradientShapeError",
    "KinkTally",
    "Mismatch",
    "Report",
    "TensorResult",
    "check_function",
    "check_layer",
    "check_params",
    "convention_sensitivity",
    "gradient_flow",
    "make_chain",
]
