"""The diagnosis as data: one named mistake in one tensor's gradient."""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("tie_counted", "tie_dropped", "kink_convention", "at_kinks", "swapped", "zero", "sign",
         "scale", "transpose", "reversed", "shifted", "missing_mask", "inverted_mask", "offset",
         "value_term", "one_index", "repeated_index", "recurrence", "block_member",
         "diagonal_only", "mode_mismatch", "epsilon", "slice", "isolated", "location",
         "needs_full")


@dataclass
class Diagnosis:
    """A named mistake in one tensor's gradient, with its evidence.

    ``kind`` is one of :data:`KINDS`; ``text`` is one sentence for a person. Kind-specific
    fields: ``factor`` (scale; -1 for sign, 0 for zero; value_term's c; slice's c;
    epsilon's eps), ``other`` (swapped: the tensor whose gradient this one holds),
    ``constant`` (offset), ``where`` (the input's condition a pattern follows, e.g. "x < 0";
    offset's subset; the axis of reversed, shifted, one_index, diagonal_only; slice's "row
    3"; the wrong steps of recurrence; block_member's stride; the statistics' axes of
    mode_mismatch; the repeated rows of repeated_index; location's support, e.g.
    "x[:, :-1, :]"), ``elements`` (isolated, offset, missing_mask, kink_convention,
    tie_counted, tie_dropped, needs_full, recurrence, repeated_index, location: index tuples,
    at most 50), ``count`` (elements the evidence covers).

    >>> d = Diagnosis("W", "sign", "analytic = -numeric in all 12 elements", factor=-1.0)
    >>> d.to_dict()["factor"]
    -1.0
    """

    tensor: str
    kind: str
    text: str
    factor: float | None = None
    other: str | None = None
    constant: float | None = None
    where: str | None = None
    elements: list[tuple[int, ...]] = field(default_factory=list)
    count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Strict JSON: every key always present, indices as lists, non-finite as strings."""
        def number(value: float | None) -> float | str | None:
            if value is None or math.isfinite(value):
                return value
            return str(value)

        return {"tensor": self.tensor, "kind": self.kind, "text": self.text,
                "factor": number(self.factor), "other": self.other,
                "constant": number(self.constant), "where": self.where,
                "elements": [list(index) for index in self.elements], "count": self.count}

    def __str__(self) -> str:
        return f"{self.tensor}: {self.kind}: {self.text}"


def kinds(diagnoses: Iterable[Diagnosis]) -> dict[str, str]:
    """``{tensor: kind}``: a compact view for tests and summaries.

    >>> kinds([Diagnosis("W", "sign", "...")])
    {'W': 'sign'}
    """
    return {d.tensor: d.kind for d in diagnoses}
