"""The upstream gradient g of check_layer and check_pair, for the rules that compare the
analytic gradient with it (a strided slice of g; a normalisation's other formula).

The report does not carry g, but the seed fixes it: g is the first standard normal draw of
the seed's generator, shaped like the (first) output, as
:func:`gradcheck.upstream.drawn_upstream` makes it for the diagnostics. Where the user passed
``upstream=`` this g is not theirs: a rule that reads it then finds no exact fit and claims
nothing, so a wrong g can cost a diagnosis, never give a wrong one.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gradcheck.report import Report

DOORS = ("check_layer", "check_pair")  # the doors that draw a g for an array output


def drawn(report: Report, door: str) -> np.ndarray | None:
    """g as the check drew it (float64), or None where the door draws none, the output is a
    scalar (a loss head: g is one number, read by no rule) or the seed is not known.

    >>> import numpy as np, gradcheck as gc
    >>> seen = {}
    >>> def forward(x):
    ...     return 2 * x, None
    >>> def backward(dout, cache):
    ...     seen["g"] = dout
    ...     return 2 * dout
    >>> rep = gc.check_pair(forward, backward, np.ones((2, 3)), seed=5)
    >>> bool(np.array_equal(drawn(rep, "check_pair"), seen["g"]))
    True
    """
    shape: Any = getattr(report, "output_shape", None)
    seed = getattr(report, "options", {}).get("seed")
    if door not in DOORS or shape is None or len(shape) == 0 or not isinstance(seed, int):
        return None
    from gradcheck.upstream import drawn_upstream  # the engine's side: loaded when needed

    g = drawn_upstream(np.zeros(tuple(shape)), None, seed, "the output")
    return np.asarray(g, dtype=np.float64)
