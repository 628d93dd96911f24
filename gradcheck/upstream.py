"""The upstream gradient g a front door sums the outputs against: given by the user, or drawn
from the check's seed at the first forward and rounded to the output's dtype, so that the g
backward sees is exactly the g the loss uses (:class:`Upstream`); and the same g for the
diagnostics (:func:`drawn_upstream`)."""
from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.errors import GradcheckUsageError, short_repr
from gradcheck.options import Options


def upstream_array(upstream: object, output: str) -> np.ndarray:
    """A user-given upstream gradient as float64 (its shape is checked at the first forward);
    ``output`` names what it must be shaped like: ``layer.forward(x)``.

    >>> upstream_array(np.array([1j]), "f(x)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: upstream has dtype complex128 (its imaginary part ...
    """
    wanted = (f"upstream must be a real float array shaped like {output} (or None for a "
              "random one), got")
    if isinstance(upstream, str | bytes | dict) or callable(upstream):
        raise GradcheckUsageError(f"{wanted} {type(upstream).__name__} {short_repr(upstream)}")
    try:
        raw = np.asarray(upstream)
    except (ValueError, TypeError):
        raw = np.empty(0, dtype=object)  # ragged: refused below, with the object dtype
    if raw.dtype.kind not in "fiu":  # complex would lose its imaginary part, objects fail later
        why = {"c": "its imaginary part would be dropped", "b": "booleans, not gradients",
               "O": "not numbers: a ragged or mixed sequence?"}.get(raw.dtype.kind, "not numbers")
        raise GradcheckUsageError(
            f"upstream has dtype {raw.dtype} ({why}): {wanted} {type(upstream).__name__} "
            f"{short_repr(upstream)}")
    array = raw.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise GradcheckUsageError("upstream has non-finite values: pass finite numbers")
    return array


class Upstream:
    """The upstream gradient g of one output: drawn at the first forward (when the output's
    shape is known) unless given, and rounded to the output's dtype once, so that the g
    backward sees is exactly the g the loss uses."""

    def __init__(self, given: np.ndarray | None, label: str) -> None:
        self.value, self.label = given, label
        self._fitted: np.dtype | None = None  # the output's dtype at the last forward

    def fit(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self._fitted is not None and self._fitted == y.dtype and self.value is not None \
                and self.value.shape == y.shape:
            return self.value
        if self.value is None:
            self.value = rng.standard_normal(y.shape)
        if self.value.shape != y.shape:
            if self._fitted is not None:  # fitted once already
                raise GradcheckUsageError(
                    f"{self.label} returned shape {y.shape} now but {self.value.shape} before: "
                    "the output shape must not change between calls (state kept between "
                    "calls, or a shape taken from something other than the input?)")
            raise GradcheckUsageError(f"upstream has shape {self.value.shape} but {self.label} "
                                      f"has shape {y.shape}: pass one shaped like the output")
        if np.issubdtype(y.dtype, np.floating):
            self.value = self.value.astype(y.dtype).astype(np.float64)
        self._fitted = y.dtype
        return self.value

    def for_backward(self, y: np.ndarray) -> Any:
        """g in the output's dtype (a float for a 0-d output)."""
        assert self.value is not None
        g = self.value.astype(y.dtype) if np.issubdtype(y.dtype, np.floating) else self.value
        return float(g) if g.ndim == 0 else g


def drawn_upstream(y: np.ndarray, upstream: object, seed: int | None, what: str) -> Any:
    """The upstream gradient g of one pass through ``what`` (whose output is ``y``), as
    check_layer draws it for the same seed: ``upstream`` (refused unless finite and shaped
    like ``y``), or the first standard normal draw of ``Options(seed=seed).rng()``; rounded
    to ``y``'s dtype (a float for a 0-d output). The diagnostics use it, so one seed gives
    one g there and in check_layer.
    """
    g = Upstream(None if upstream is None else upstream_array(upstream, f"{what}'s output"),
                 f"{what}'s output")
    g.fit(y, Options(seed=seed).rng())
    return g.for_backward(y)
