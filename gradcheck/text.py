"""How gradcheck writes numbers and tables, for people (``str(report)``) and for machines
(``report.to_dict()``). Every report of the package uses these, so a number reads the same
in the gradient check's table and in the diagnostics' tables.

>>> print("\\n".join(table([["tensor", "max|a-n|"], ["W", sci(0.00123)], ["b", sci(2.0)]],
...                        right={1})))
tensor  max|a-n|
W        1.2e-03
b        2.0e+00
>>> strict_json({"ratio": float("inf"), "shape": (2, 3)})
{'ratio': 'inf', 'shape': [2, 3]}
"""
from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from gradcheck.errors import GradcheckUsageError


def sci(value: float) -> str:
    """An error, norm or ratio in two significant digits: ``1.2e-03``; ``inf``, ``-inf`` and
    ``nan`` spelled out.

    >>> sci(0.0012345), sci(-3.0), sci(float("nan")), sci(float("-inf"))
    ('1.2e-03', '-3.0e+00', 'nan', '-inf')
    """
    value = float(value)
    return f"{value:.1e}" if math.isfinite(value) else str(value)


def general(value: float) -> str:
    """A gradient value in six significant digits, the way a person compares two of them:
    ``-2.36318``, ``1.5e-07``; also a setting a person chose (a tolerance, a threshold:
    ``1e-05``, ``100``).

    >>> general(-2.363184), general(1.5e-07), general(3.0), general(float("inf"))
    ('-2.36318', '1.5e-07', '3', 'inf')
    """
    return f"{float(value):.6g}"


def element(name: str, index: Sequence[int]) -> str:
    """An element named the way the user indexes it: ``W[1, 0]``; a 0-d tensor by its name.

    >>> element("W", (1, 0)), element("scale", ())
    ('W[1, 0]', 'scale')
    """
    return f"{name}[{', '.join(str(int(i)) for i in index)}]" if len(index) else name


def flat_element(name: str, flat_index: int, shape: Sequence[int]) -> str:
    """The element at a flat (C-order) index of a tensor of ``shape``, named as by
    :func:`element`.

    >>> flat_element("W", 5, (2, 3))
    'W[1, 2]'
    """
    return element(name, unravel(flat_index, shape))


def unravel(flat_index: int, shape: Sequence[int]) -> tuple[int, ...]:
    """The index, as Python ints, of a flat (C-order) index into a tensor of ``shape``; ``()``
    for a 0-d tensor.

    >>> unravel(5, (2, 3)), unravel(0, ())
    ((1, 2), ())
    """
    if not len(shape):
        return ()
    return tuple(int(i) for i in np.unravel_index(int(flat_index), tuple(shape)))


def table(rows: Sequence[Sequence[str]], *, right: Collection[int] = ()) -> list[str]:
    """Lay out ``rows`` (the first is the header) as aligned text lines: columns two spaces
    apart, padded to their widest cell, left-aligned except the column indices in ``right``;
    no trailing blanks.

    >>> for line in table([["#", "layer", "norm"], ["0", "Dense", "1.0e+00"],
    ...                    ["10", "ReLU", "2.5e-01"]], right={0, 2}):
    ...     print(line)
     #  layer     norm
     0  Dense  1.0e+00
    10  ReLU   2.5e-01
    """
    if not rows:
        return []
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise GradcheckUsageError(
                f"rows: row {i} has {len(row)} cells, the header {width}; give every row one "
                f"cell per column"
            )
    widths = [max(len(row[c]) for row in rows) for c in range(width)]
    return [
        "  ".join(
            cell.rjust(w) if c in right else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def strict_json(value: Any) -> Any:
    """``value`` made ready for strict JSON (RFC 8259 has no infinity or NaN): an infinite or
    undefined number becomes the string ``"inf"``, ``"-inf"`` or ``"nan"``; numpy scalars
    become Python numbers; tuples become lists; dicts and lists are converted item by item.

    >>> strict_json({"err": [np.float32(0.5), -math.inf, math.nan], "n": np.int64(3)})
    {'err': [0.5, '-inf', 'nan'], 'n': 3}
    """
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    return value
