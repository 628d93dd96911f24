"""What a front door hands the engine for one loss value: the number, and what the door knows
of it (:class:`LossValue`)."""
from __future__ import annotations


class LossValue(float):
    """A loss value with what the front door knows about it beyond the number:

    - ``rounding``: a bound on its own rounding, in loss units (nan: unknown): check_layer
      sums g * y in float64, and a float32 output is rounded only in the outputs a move
      changed, far finer than float32's eps times |L|;
    - ``changed``: how many outputs differ from the outputs at the point (-1: unknown);
    - ``where``: the flat index of one output that changed (-1: none, or unknown);
    - ``hidden``: what the outputs that did not change could have lost, in loss units (one
      rounding of each: a change below half an output's spacing leaves it as it was; 0.0
      where nothing is hidden or unknown): a bound a mismatch must clear to be called a bug.

    >>> v = LossValue(2.0, rounding=1e-7, changed=1, where=3)
    >>> float(v), v.changed
    (2.0, 1)
    """

    rounding: float
    changed: int
    where: int
    hidden: float

    def __new__(cls, value: float, rounding: float = float("nan"), changed: int = -1,
                where: int = -1, hidden: float = 0.0) -> LossValue:
        self = super().__new__(cls, value)
        self.rounding, self.changed, self.where, self.hidden = rounding, changed, where, hidden
        return self
