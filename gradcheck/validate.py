"""What the user hands gradcheck, and what the user's code hands back, checked once at the
boundary: the callables and the params dict before any call, a loss value and a gradient
dict after each. Every refusal is a usage error that names the argument and the fix.

Nothing here judges a gradient; it only makes sure the engine compares the right numbers.

>>> check_params_argument({"w": np.zeros(2, dtype=int)}, "loss()")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
gradcheck.errors.GradcheckUsageError: params['w'] has dtype int64: gradients need a real ...
"""
from __future__ import annotations

import difflib
import inspect
import types
from collections.abc import Iterator, Mapping

import numpy as np

from gradcheck.errors import GradcheckUsageError, GradientShapeError

COMPARE_CHUNK = 1 << 16  # elements compared per numpy call
UINTS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # bit patterns by itemsize
FLOAT64_EPS = float(np.finfo(np.float64).eps)
# A tensor this large with strides that could overlap is checked element by element
# for overlap; above it, only the sufficient test on the strides runs.
OVERLAP_CHECK_MAX = 1 << 22


def check_callable(fn: object, label: str, n_args: int, hint: str) -> None:
    """Refuse, before any call, a ``fn`` that is not callable or cannot take ``n_args``
    positional arguments, with a usage error naming ``label`` (its role) and ``hint``.

    >>> check_callable(lambda: 0.0, "loss", 1, "x")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradcheckUsageError: loss must take 1 positional argument (x), ...
    """
    if not callable(fn):
        raise GradcheckUsageError(f"{label} must be callable, got {type(fn).__name__}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and C callables without a signature
        return
    try:
        signature.bind(*range(n_args))
    except TypeError:
        takes = (f"must take no arguments ({hint})" if n_args == 0 else
                 f"must take {n_args} positional argument{'s' * (n_args != 1)} ({hint})")
        raise GradcheckUsageError(
            f"{label} {takes}, but {getattr(fn, '__name__', type(fn).__name__)}{signature} "
            "does not") from None


def overlaps_itself(array: np.ndarray) -> bool:
    """True when two elements of ``array`` are the same memory (``as_strided`` with a
    stride of 0, or strides smaller than the extent of the axes inside them): moving one
    element then moves another, and no gradient of it can be checked.

    >>> from numpy.lib.stride_tricks import as_strided
    >>> overlaps_itself(as_strided(np.zeros(1), shape=(3,), strides=(0,)))
    True
    >>> overlaps_itself(np.zeros((3, 4))[:, ::2])
    False
    """
    axes = sorted((abs(stride), size) for stride, size in zip(array.strides, array.shape,
                                                             strict=True) if size > 1)
    reach = array.itemsize  # bytes spanned by one element of the axes seen so far
    for stride, size in axes:
        if stride < reach:
            break
        reach += stride * (size - 1)
    else:
        return False  # each axis steps past everything inside it: no element is shared
    if array.size > OVERLAP_CHECK_MAX:
        return True
    offsets = np.zeros(1, dtype=np.int64)
    for stride, size in zip(array.strides, array.shape, strict=True):
        offsets = (offsets[:, None] + stride * np.arange(size, dtype=np.int64)).reshape(-1)
    return bool(np.unique(offsets).size < offsets.size)


def check_params_argument(params: object, loss_label: str) -> dict[str, np.ndarray]:
    """The params dict as the engine needs it: named, writeable, real float arrays that
    share no memory with each other or within themselves (a move of one element would
    move another)."""
    if not isinstance(params, Mapping) or not params:
        raise GradcheckUsageError("params must be a non-empty dict mapping names to numpy "
                                  f"float arrays, got {type(params).__name__}"
                                  + (" (empty)" if isinstance(params, Mapping) else ""))
    arrays: dict[str, np.ndarray] = {}
    for name, array in params.items():
        if not isinstance(name, str):
            raise GradcheckUsageError(f"params keys must be strings, got {name!r}")
        if not isinstance(array, np.ndarray):
            raise GradcheckUsageError(
                f"params[{name!r}] is a {type(array).__name__}, not a numpy array: the checker "
                f"perturbs it in place, so pass the very array {loss_label} reads")
        if isinstance(array, np.ma.MaskedArray | np.matrix):
            raise GradcheckUsageError(
                f"params[{name!r}] is a {type(array).__name__}: its arithmetic differs from a "
                "plain array's; pass a plain numpy array (np.asarray, or .filled() for a "
                "masked array) and the same array to the code under test")
        if not np.issubdtype(array.dtype, np.floating):
            raise GradcheckUsageError(
                f"params[{name!r}] has dtype {array.dtype}: gradients need a real float array; "
                f"convert it, e.g. params[{name!r}] = params[{name!r}].astype(np.float64)")
        if not array.flags.writeable:
            raise GradcheckUsageError(f"params[{name!r}] is read-only: the checker perturbs it "
                                      "in place; pass a writeable array (array.copy())")
        if array.size == 0:
            raise GradcheckUsageError(f"params[{name!r}] is empty (shape {array.shape}): "
                                      "leave it out")
        if overlaps_itself(array):
            raise GradcheckUsageError(
                f"params[{name!r}] (shape {array.shape}, strides {array.strides}) has elements "
                "that share memory (a view made with as_strided or broadcast_to): moving one "
                "moves the others, so its gradient cannot be checked element by element; pass "
                f"the array it views, or a copy (params[{name!r}].copy()) and the same copy "
                "to the code under test")
        for other, seen in arrays.items():
            if np.shares_memory(array, seen):
                raise GradcheckUsageError(
                    f"params[{other!r}] and params[{name!r}] share memory (the same array, or "
                    "overlapping views): moving one element moves both, so neither gradient "
                    "can be checked; pass separate arrays (e.g. a .copy() of one)")
        arrays[name] = array
    return arrays


def returned(value: object) -> str:
    """How a message names a value the user's code returned where an array was due:
    ``None (a missing return?)``, ``a generator``, ``a str``.

    >>> returned(None), returned("x")
    ('None (a missing return?)', 'a str')
    """
    if value is None:
        return "None (a missing return?)"
    if isinstance(value, types.GeneratorType | Iterator):
        return f"a {type(value).__name__} (a yield instead of a return?)"
    return f"a {type(value).__name__}"


def not_an_array(value: object) -> bool:
    """True for what no gradient or output can be: None, text, a dict, an iterator."""
    return value is None or isinstance(value, str | bytes | dict | Iterator)


def as_scalar(value: object, label: str) -> float:
    """The loss as a Python float; anything but a real scalar is a usage error.

    >>> as_scalar(np.float32(2.5), "loss()")
    2.5
    """
    if type(value) is float:  # the common case, once per evaluation: no numpy on the way
        return value
    if isinstance(value, float):  # a float subclass (a loss value that knows its rounding)
        return float(value)
    if not_an_array(value):
        raise GradcheckUsageError(f"{label} returned {returned(value)}: it must return the "
                                  "scalar loss")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged sequences
        raise GradcheckUsageError(f"{label} must return a real scalar, got "
                                  f"{type(value).__name__} ({error})") from None
    if array.size != 1 or not (np.issubdtype(array.dtype, np.floating)
                               or np.issubdtype(array.dtype, np.integer)):
        raise GradcheckUsageError(
            f"{label} must return a real scalar, got {type(value).__name__} "
            f"with shape {array.shape} and dtype {array.dtype}: reduce it to a scalar loss "
            "(for a layer with an array output use check_layer, which does this for you)")
    return float(array.reshape(()))


def loss_precision(value: object) -> float:
    """eps of the float type a loss came back in (float64 for Python numbers): a loss
    rounded to float32 carries float32's rounding, whatever the inputs were.

    >>> loss_precision(np.float32(1.0)) == float(np.finfo(np.float32).eps)
    True
    """
    if isinstance(value, float):
        return FLOAT64_EPS
    dtype = getattr(value, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating):
        return float(np.finfo(dtype).eps)
    return FLOAT64_EPS


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """True when ``a`` and ``b`` hold the same values bit for bit (a NaN equals itself),
    compared chunk by chunk: no temporary of their size.

    >>> same_bits(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))
    True
    """
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if not (a.flags.c_contiguous and b.flags.c_contiguous) or a.dtype.itemsize not in UINTS:
        return bool(np.array_equal(a, b, equal_nan=True))  # longdouble: padding bytes
    bits_a = a.reshape(-1).view(UINTS[a.dtype.itemsize])
    bits_b = b.reshape(-1).view(UINTS[b.dtype.itemsize])
    return all(np.array_equal(bits_a[lo:lo + COMPARE_CHUNK], bits_b[lo:lo + COMPARE_CHUNK])
               for lo in range(0, bits_a.size, COMPARE_CHUNK))


def _stray_keys(missing: list[str], extra: list[str]) -> str:
    """For a gradient dict whose keys differ from the params': each stray key beside the
    parameter it most likely means (``'w'`` for ``'W'``)."""
    pairs = []
    for key in extra:
        close = difflib.get_close_matches(key, missing, n=1, cutoff=0.0) or (
            [m for m in missing if m.lower() == key.lower()])
        pairs.append(f"{key!r}" + (f" (for {close[0]!r}?)" if close else ""))
    return ", ".join(pairs)


def check_grads(grads: object, arrays: dict[str, np.ndarray], label: str, copy: bool = True
                ) -> dict[str, np.ndarray]:
    """The gradient dict as float64 arrays keyed and shaped like params (copies, unless
    ``copy`` is False: then the user's own arrays where they are float64 already, for a
    look that keeps nothing), or a GradientShapeError that says what differs.

    >>> check_grads({"w": np.ones(2)}, {"W": np.ones(2)}, "grads()")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gradcheck.errors.GradientShapeError: grads() has no gradient for 'W' but has 'w' (for 'W'?)...
    """
    if not isinstance(grads, Mapping):
        raise GradientShapeError(f"{label} must return a dict of arrays keyed like params, got "
                                 f"{type(grads).__name__}")
    missing = [name for name in arrays if name not in grads]
    extra = [name for name in grads if name not in arrays]
    if missing:
        stray = f" but has {_stray_keys(missing, extra)}" if extra else ""
        raise GradientShapeError(
            f"{label} has no gradient for {', '.join(map(repr, missing))}{stray} (params has "
            f"{', '.join(map(repr, arrays))}): return a gradient for every parameter, keyed "
            "exactly as in params")
    if extra:
        raise GradientShapeError(
            f"{label} returned {', '.join(map(repr, extra))}, which is not in params "
            f"({', '.join(map(repr, arrays))}): keep the keys of the two dicts the same")
    checked = {}
    for name, array in arrays.items():
        if not_an_array(grads[name]):
            raise GradientShapeError(
                f"{label}[{name!r}] is {returned(grads[name])}: return dL/d{name}, a float "
                "array like the parameter")
        try:
            gradient = np.asarray(grads[name])
        except (ValueError, TypeError) as error:  # ragged sequences
            raise GradientShapeError(f"{label}[{name!r}] is not an array: {error}") from None
        if gradient.shape != array.shape:
            raise GradientShapeError(
                f"{label}[{name!r}] has shape {gradient.shape}, expected {array.shape} like the "
                f"parameter {name!r}: a gradient has the shape of what it differentiates")
        if not (np.issubdtype(gradient.dtype, np.floating)
                or np.issubdtype(gradient.dtype, np.integer)):
            raise GradientShapeError(f"{label}[{name!r}] has dtype {gradient.dtype}: "
                                     "return a real float array")
        # a copy: user buffers get reused by the next backward
        checked[name] = np.array(gradient, dtype=np.float64, copy=copy or None)
    return checked
