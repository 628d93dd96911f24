"""gradcheck.text: the one table layout, number format and strict-JSON conversion."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gradcheck.errors import GradcheckUsageError
from gradcheck.text import general, sci, strict_json, table


def test_table_pads_columns_aligns_right_on_request_and_strips_trailing_blanks() -> None:
    lines = table([("name", "value", "note"), ("W", "1.0e+00", ""), ("bias", "2.5e-01", "x")],
                  right={1})
    assert lines == ["name    value  note",
                     "W     1.0e+00",
                     "bias  2.5e-01  x"]
    assert table([]) == []


def test_table_rejects_a_row_of_the_wrong_length() -> None:
    with pytest.raises(GradcheckUsageError, match="row 1 has 1 cells, the header 2"):
        table([("a", "b"), ("only",)])


@pytest.mark.parametrize(("value", "text"), [
    (0.0012345, "1.2e-03"), (0.0, "0.0e+00"), (-12345.0, "-1.2e+04"),
    (math.inf, "inf"), (-math.inf, "-inf"), (math.nan, "nan"), (np.float32(0.5), "5.0e-01"),
])
def test_sci(value: float, text: str) -> None:
    assert sci(value) == text


def test_general_keeps_six_significant_digits() -> None:
    assert [general(v) for v in (2.3631849, -1e-7, 100.0, math.nan)] == [
        "2.36318", "-1e-07", "100", "nan"]


def test_strict_json_output_loads_under_strict_json() -> None:
    raw = {"errors": (1.5, math.inf, -math.inf, math.nan), "count": np.int64(4),
           "ok": np.bool_(True), "norm": np.float32(0.25), "nested": [{"r": np.float64(math.nan)}],
           "label": "x", "none": None}
    clean = strict_json(raw)
    assert clean == {"errors": [1.5, "inf", "-inf", "nan"], "count": 4, "ok": True,
                     "norm": 0.25, "nested": [{"r": "nan"}], "label": "x", "none": None}
    assert json.loads(json.dumps(clean, allow_nan=False)) == clean
    assert type(clean["count"]) is int and type(clean["ok"]) is bool
