"""Hypothesis strategies for fuzzing hand-written layers with gradcheck.

Plain functions returning ``SearchStrategy`` objects, in the style of
``hypothesis.extra.numpy``. They draw what breaks backprop derivations: batch size 1 and
width 1, weights that are tiny, large or exactly zero, inputs that sit exactly on a ReLU
kink (``0.0``) or just beside it, and ReLU'(0) conventions. Arrays stay small on purpose:
a full check costs two loss evaluations per coordinate.

``import gradcheck`` does not import this module (nor hypothesis); import it explicitly::

    from hypothesis import given
    import gradcheck as gc
    from gradcheck import strategies as gst

    @given(x=gst.inputs((3, 4)), c=gst.relu_conventions())
    def test_my_relu(x, c):
        assert gc.check_layer(MyReLU(grad_at_zero=c), x, kinks="hull").ok
"""
from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import DTypeLike, NDArray

from gradcheck.errors import GradcheckUsageError

__all__ = [
    "WEIGHT_SCALES",
    "batch_shapes",
    "batch_sizes",
    "binary_targets",
    "float_dtypes",
    "inputs",
    "labels",
    "layer_sizes",
    "logits",
    "relu_conventions",
    "weight_scales",
    "weights",
]

Shape = int | tuple[int, ...] | st.SearchStrategy[tuple[int, ...]]

#: Scale of drawn weights: ``"normal"`` (unit), ``"tiny"`` and ``"large"``.
WEIGHT_SCALES: dict[str, float] = {"normal": 1.0, "tiny": 1e-3, "large": 1e2}


def _width(dtype: DTypeLike) -> int:
    dt = np.dtype(dtype)
    if not np.issubdtype(dt, np.floating):
        raise GradcheckUsageError(f"dtype must be a float dtype (float16, float32, float64), "
                                  f"got {dt}")
    return 8 * dt.itemsize


def _inside(value: float, dtype: np.dtype[Any], toward: float) -> float:
    """``value`` rounded to ``dtype``, nudged toward ``toward`` if rounding moved it out."""
    v = dtype.type(value)
    if (float(v) - value) * (toward - value) < 0:
        v = np.nextafter(v, dtype.type(toward))
    return float(v)


def _floats(lo: float, hi: float, dtype: DTypeLike) -> st.SearchStrategy[float]:
    dt = np.dtype(dtype)
    return st.floats(
        _inside(lo, dt, hi),
        _inside(hi, dt, lo),
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
        width=_width(dtype),  # type: ignore[arg-type]
    )


def layer_sizes(min_size: int = 1, max_size: int = 5) -> st.SearchStrategy[int]:
    """Widths of a layer, ``min_size..max_size`` (width 1 included by default).

    >>> layer_sizes().example() in range(1, 6)
    True
    """
    return st.integers(min_size, max_size)


def batch_sizes(min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[int]:
    """Mini-batch sizes, ``min_size..max_size`` (a batch of 1 included by default)."""
    return st.integers(min_size, max_size)


def batch_shapes(
    max_batch: int = 4, max_width: int = 5, n_features: int | None = None
) -> st.SearchStrategy[tuple[int, int]]:
    """``(batch, width)`` shapes for a layer's input; fix the width with ``n_features``.

    >>> batch_shapes(n_features=3).example()[1]
    3
    """
    width = st.just(n_features) if n_features is not None else layer_sizes(1, max_width)
    return st.tuples(batch_sizes(1, max_batch), width)


def float_dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    """float64 and float32 (the dtypes a checked layer should compute in)."""
    return st.sampled_from([np.dtype(np.float64), np.dtype(np.float32)])


def weight_scales() -> st.SearchStrategy[float]:
    """One of :data:`WEIGHT_SCALES`: normal (1), tiny (1e-3) or large (1e2)."""
    return st.sampled_from(list(WEIGHT_SCALES.values()))


def weights(
    shape: Shape,
    dtype: DTypeLike = np.float64,
    scale: float | None = None,
    zeros: bool = True,
) -> st.SearchStrategy[NDArray[Any]]:
    """Weight arrays: values in [-3, 3] times a scale, with exact zeros mixed in.

    ``scale=None`` draws the scale from :func:`weight_scales` (normal, tiny, large);
    ``zeros=False`` leaves out the deliberately drawn exact zeros.

    >>> w = weights((2, 3), scale=1.0).example()
    >>> w.shape, w.dtype, bool(np.all(np.abs(w) <= 3))
    ((2, 3), dtype('float64'), True)
    """
    dt = np.dtype(dtype)
    elements = _floats(-3.0, 3.0, dt)
    if zeros:
        elements = st.just(0.0) | elements
    scales = weight_scales() if scale is None else st.just(float(scale))
    return st.tuples(hnp.arrays(dt, shape, elements=elements), scales).map(
        lambda ws: (ws[0] * dt.type(ws[1])).astype(dt)
    )


def inputs(
    shape: Shape,
    dtype: DTypeLike = np.float64,
    max_value: float = 3.0,
    zeros: bool = True,
) -> st.SearchStrategy[NDArray[Any]]:
    """Input arrays in ``[-max_value, max_value]`` with exact zeros and values near zero.

    Random floats almost never hit 0.0, which is where ReLU'(0) lives, so zeros are drawn
    on purpose (``st.just(0.0) | ...``), and so are values within 1e-6 of zero, close
    enough that a finite-difference step crosses the kink. ``zeros=False`` draws neither.

    >>> x = inputs((4, 2)).example()
    >>> x.shape, bool(np.all(np.abs(x) <= 3))
    ((4, 2), True)
    """
    dt = np.dtype(dtype)
    elements = _floats(-max_value, max_value, dt)
    if zeros:
        elements = st.just(0.0) | _floats(-1e-6, 1e-6, dt) | elements
    return hnp.arrays(dt, shape, elements=elements)


def logits(
    shape: Shape, dtype: DTypeLike = np.float64, large: bool = True
) -> st.SearchStrategy[NDArray[Any]]:
    """Logits for a softmax head: moderate values, ties, and (``large=True``) +-1000.

    Logits of 1000 overflow a naive ``exp``: a stable head must stay finite on them.
    """
    dt = np.dtype(dtype)
    elements = st.just(0.0) | _floats(-10.0, 10.0, dt)
    if large:
        elements = elements | st.sampled_from([1000.0, -1000.0, 999.0])
    return hnp.arrays(dt, shape, elements=elements)


def relu_conventions(valid: bool = True) -> st.SearchStrategy[float]:
    """Values for ReLU'(0): ``valid=True`` gives 0, 1, 0.5 or any float in [0, 1].

    ``valid=False`` gives WRONG conventions, clearly outside [0, 1] (2.0, -0.5, and floats
    in [-10, -0.1] or [1.1, 10]): a checker in ``kinks="hull"`` mode must reject them.

    >>> 0.0 <= relu_conventions().example() <= 1.0
    True
    """
    if valid:
        return st.sampled_from([0.0, 1.0, 0.5]) | st.floats(0.0, 1.0)
    return (
        st.sampled_from([2.0, -0.5])
        | st.floats(1.1, 10.0, allow_nan=False)
        | st.floats(-10.0, -0.1, allow_nan=False)
    )


def labels(batch: int, n_classes: int) -> st.SearchStrategy[NDArray[np.int64]]:
    """Integer class labels of shape ``(batch,)`` in ``[0, n_classes)``, for a softmax head."""
    if n_classes < 1:
        raise GradcheckUsageError(f"n_classes must be >= 1, got {n_classes}")
    return hnp.arrays(np.int64, (batch,), elements=st.integers(0, n_classes - 1))


def binary_targets(shape: Shape, dtype: DTypeLike = np.float64) -> st.SearchStrategy[NDArray[Any]]:
    """Targets for a binary cross-entropy head: exact 0 and 1, and soft targets in [0, 1]."""
    dt = np.dtype(dtype)
    elements = st.sampled_from([0.0, 1.0]) | _floats(0.0, 1.0, dt)
    return hnp.arrays(dt, shape, elements=elements)
