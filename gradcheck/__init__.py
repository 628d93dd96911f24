"""gradcheck: a finite-difference gradient checker for hand-written backpropagation.

>>> import numpy as np, gradcheck as gc
>>> gc.check_function(lambda v: float(np.sum(v ** 2)), lambda v: 2 * v, np.ones(3)).ok
True

Names are imported on first use (PEP 562): the pytest plugin, loaded by every pytest run
where gradcheck is installed, must not pay for numpy and the engine when it is not used.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gradcheck.errors import (
    GradcheckArgumentError,
    GradcheckUsageError,
    GradientMismatch,
    GradientShapeError,
)

if TYPE_CHECKING:
    __version__: str
    from gradcheck.adapters import check_function, check_layer
    from gradcheck.asserts import (
        assert_elementwise,
        assert_function,
        assert_layer,
        assert_loss,
        assert_pair,
        assert_params,
    )
    from gradcheck.bench import BenchmarkReport, benchmark_layer
    from gradcheck.diagnostics import (
        ConventionReport,
        FlowReport,
        convention_sensitivity,
        gradient_flow,
        make_chain,
    )
    from gradcheck.elementwise import check_elementwise
    from gradcheck.engine.verdict import Status
    from gradcheck.options import KinkMode, Mode, Options, Subject
    from gradcheck.pairs import check_loss, check_pair
    from gradcheck.params import check_params
    from gradcheck.protocols import Layer, LayerWithParams
    from gradcheck.report import KinkTally, Mismatch, Note, Report, TensorResult

_HOME = {
    "check_params": "gradcheck.params",
    "check_layer": "gradcheck.adapters",
    "check_function": "gradcheck.adapters",
    "check_pair": "gradcheck.pairs",
    "check_elementwise": "gradcheck.elementwise",
    "check_loss": "gradcheck.pairs",
    "assert_layer": "gradcheck.asserts",
    "assert_function": "gradcheck.asserts",
    "assert_params": "gradcheck.asserts",
    "assert_pair": "gradcheck.asserts",
    "assert_loss": "gradcheck.asserts",
    "assert_elementwise": "gradcheck.asserts",
    "Layer": "gradcheck.protocols",
    "LayerWithParams": "gradcheck.protocols",
    "Options": "gradcheck.options",
    "Subject": "gradcheck.options",
    "Mode": "gradcheck.options",
    "KinkMode": "gradcheck.options",
    "Report": "gradcheck.report",
    "TensorResult": "gradcheck.report",
    "Mismatch": "gradcheck.report",
    "KinkTally": "gradcheck.report",
    "Note": "gradcheck.report",
    "Status": "gradcheck.engine.verdict",
    "gradient_flow": "gradcheck.diagnostics",
    "FlowReport": "gradcheck.diagnostics",
    "convention_sensitivity": "gradcheck.diagnostics",
    "ConventionReport": "gradcheck.diagnostics",
    "make_chain": "gradcheck.diagnostics",
    "benchmark_layer": "gradcheck.bench",
    "BenchmarkReport": "gradcheck.bench",
}

__all__ = [
    "BenchmarkReport",
    "ConventionReport",
    "FlowReport",
    "GradcheckArgumentError",
    "GradcheckUsageError",
    "GradientMismatch",
    "GradientShapeError",
    "KinkMode",
    "KinkTally",
    "Layer",
    "LayerWithParams",
    "Mismatch",
    "Mode",
    "Note",
    "Options",
    "Report",
    "Status",
    "Subject",
    "TensorResult",
    "assert_elementwise",
    "assert_function",
    "assert_layer",
    "assert_loss",
    "assert_pair",
    "assert_params",
    "benchmark_layer",
    "check_elementwise",
    "check_function",
    "check_layer",
    "check_loss",
    "check_pair",
    "check_params",
    "convention_sensitivity",
    "gradient_flow",
    "make_chain",
]
assert sorted(__all__) == sorted([*_HOME, "GradcheckArgumentError", "GradcheckUsageError",
                                  "GradientMismatch", "GradientShapeError"])


def _version() -> str:
    """The installed distribution's version (importlib.metadata): pyproject.toml is its one
    source. Read on first use, like the names above; "0+unknown" for a source tree that
    was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradcheck")
    except PackageNotFoundError:
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":  # gradcheck.__version__, e.g. "0.1.0"
        globals()[name] = _version()
        return globals()[name]
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
