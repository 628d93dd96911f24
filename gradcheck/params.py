"""The front door for a dict of parameters: ``check_params(loss, grads, params)``, the one
every other door is built on (each makes a loss, a gradient and a params dict and hands
them to the engine, :func:`gradcheck.engine.run.run_check`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Unpack

import numpy as np

from gradcheck.engine.calls import GradsFn, LossFn
from gradcheck.engine.run import run_check
from gradcheck.options import CheckOptions, Options, Subject, check_subject, front_door
from gradcheck.report import Report


@front_door
def check_params(
    loss: LossFn,
    grads: GradsFn,
    params: dict[str, np.ndarray],
    *,
    subject: Subject | None = None,
    **options: Unpack[CheckOptions],
) -> Report:
    """Check ``grads()`` against finite differences of ``loss()`` for every entry of params.

    ``params`` is perturbed in place, one coordinate (full) or one group (fast) at a time,
    and restored bit for bit before this returns, also when the user's code raises.
    ``subject`` names what is checked in the report (labels, title, the repeat line).

    >>> import numpy as np, gradcheck as gc
    >>> p = {"w": np.array([1.0, -2.0, 3.0])}
    >>> rep = gc.check_params(lambda: float(np.sum(p["w"] ** 3)), lambda: {"w": 3 * p["w"] ** 2}, p)
    >>> rep.ok
    True
    """
    checking = Options(**options)
    subject = check_subject(subject)
    if subject is None:
        names = ", ".join(map(str, params)) if isinstance(params, Mapping) else "?"
        subject = Subject(title=f"params {names}")
    return run_check(loss, grads, params, checking, subject)
