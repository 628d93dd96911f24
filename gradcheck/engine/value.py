"""What a front door hands the engine for one loss value: the number, and what the door knows
of it (:class:`LossValue`)."""
from __future__ import annotations


class LossValue(float):
    """A loss value with what the front door knows about it beyond the number:

    - ``rounding``: a bound on its own rounding, in loss units (nan: unknown): check_layer
      sums g * y in float64, and a float32 output is rounded only in the outputs a move
      changed, far finer than float32's eps times |L|;
    - ``changed``: how many outputs differ from the outputs at the point (-1: unknown);
    - ``where``: the flat index of one output that changed (-1: none, or unknown).

    >>> v = LossValue(2.0, rounding=1e-7, changed=1, where=3)
    >>> float(v), v.changed
    (2.0, 1)
    """

    rounding: float
    changed: int
    where: int

    def __new__(cls, value: float, rounding: float = float("nan"), changed: int = -1,
                where: int = -1) -> LossValue:
        self = super().__new__(cls, value)
        self.rounding, self.changed, self.where = rounding, changed, where
        return self
