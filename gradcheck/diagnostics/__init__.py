"""Diagnostics beyond pass/fail: gradient flow and ReLU'(0) convention sensitivity.

>>> import numpy as np
>>> from gradcheck.diagnostics import gradient_flow, convention_sensitivity, make_chain
>>> net = make_chain(30, activation="relu", width=256, init="he", rng=0)
>>> x = np.random.default_rng(1).standard_normal((32, 256))
>>> gradient_flow(net, x).verdict
'healthy'
>>> convention_sensitivity(net, x).matters      # random floats never hit ReLU's kink
False

Command line (registered by ``gradcheck.cli``): ``python -m gradcheck flow ...`` and
``python -m gradcheck convention ...``; see :mod:`gradcheck.diagnostics.commands`.
"""

from gradcheck.diagnostics.chains import make_chain
from gradcheck.diagnostics.commands import register_commands
from gradcheck.diagnostics.convention import (
    ConventionReport,
    ParamDifference,
    ReluZeros,
    convention_sensitivity,
)
from gradcheck.diagnostics.flow import FlowReport, FlowRow, gradient_flow
from gradcheck.diagnostics.plotting import plot_flows

__all__ = [
    "ConventionReport",
    "FlowReport",
    "FlowRow",
    "ParamDifference",
    "ReluZeros",
    "convention_sensitivity",
    "gradient_flow",
    "make_chain",
    "plot_flows",
    "register_commands",
]
