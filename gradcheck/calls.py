"""The boundary around the user's code: every call to loss() and grads() goes through
:class:`Calls`, which counts it, checks what came back, notices writes into the params,
and puts the params back bit for bit.

Nothing here judges a gradient; it only makes sure the engine compares the right numbers
and that misbehaviour (in-place writes, wrong keys or shapes, a non-scalar loss) is named.
"""
from __future__ import annotations

import inspect
import time
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from gradcheck.errors import GradcheckUsageError, GradientShapeError
from gradcheck.numeric import Stencil, central_difference_scan
from gradcheck.options import Options, Subject
from gradcheck.parallel import scan_on_executor
from gradcheck.report import Problem

LossFn = Callable[[], Any]
GradsFn = Callable[[], Mapping[str, Any]]
ProgressFn = Callable[[int, int], None]

PROGRESS_INTERVAL = 0.5  # seconds between progress callbacks
COMPARE_CHUNK = 1 << 16  # elements compared per numpy call
UINTS = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # bit patterns by itemsize
FLOAT64_EPS = float(np.finfo(np.float64).eps)


def check_callable(fn: object, label: str, n_args: int, hint: str) -> None:
    """Refuse, before any call, a ``fn`` that is not callable or cannot take ``n_args``
    positional arguments, with a usage error naming ``label`` (its role) and ``hint``."""
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


def check_params_argument(params: object, loss_label: str) -> dict[str, np.ndarray]:
    """The params dict as the engine needs it: named, writeable, real float arrays that
    share no memory (a move of one would move the other)."""
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
    ``None (a missing return?)``, ``a generator``, ``a str``."""
    if value is None:
        return "None (a missing return?)"
    if isinstance(value, types.GeneratorType | Iterator):
        return f"a {type(value).__name__} (a yield instead of a return?)"
    return f"a {type(value).__name__}"


def not_an_array(value: object) -> bool:
    """True for what no gradient or output can be: None, text, a dict, an iterator."""
    return value is None or isinstance(value, str | bytes | dict | Iterator)


class LossValue(float):
    """A loss value that knows a bound on its own rounding, beyond float64's: check_layer
    sums g * y in float64, and a float16 or float32 y is rounded only in the outputs a move
    changed, so the loss is far finer than its dtype times |L| (``rounding``: the absolute
    error bound, in loss units)."""

    rounding: float

    def __new__(cls, value: float, rounding: float) -> LossValue:
        self = super().__new__(cls, value)
        self.rounding = rounding
        return self


def as_scalar(value: object, label: str) -> float:
    """The loss as a Python float; anything but a real scalar is a usage error."""
    if type(value) is float:  # the common case, once per evaluation: no numpy on the way
        return value
    if isinstance(value, LossValue):
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
    rounded to float32 carries float32's rounding, whatever the inputs were."""
    if type(value) is float:
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


def check_grads(grads: object, arrays: dict[str, np.ndarray], label: str, copy: bool = True
                ) -> dict[str, np.ndarray]:
    """The gradient dict as float64 arrays keyed and shaped like params (copies, unless
    ``copy`` is False: then the user's own arrays where they are float64 already, for a
    look that keeps nothing), or a GradientShapeError that says what differs."""
    if not isinstance(grads, Mapping):
        raise GradientShapeError(f"{label} must return a dict of arrays keyed like params, got "
                                 f"{type(grads).__name__}")
    missing = [name for name in arrays if name not in grads]
    extra = [name for name in grads if name not in arrays]
    if missing:
        raise GradientShapeError(
            f"{label} has no gradient for {', '.join(map(repr, missing))} (params has "
            f"{', '.join(map(repr, arrays))}): return a gradient for every parameter")
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


class Calls:
    """The user's loss() and grads(), counted, validated, and (optionally) spread out."""

    def __init__(self, loss: LossFn, grads: GradsFn, arrays: dict[str, np.ndarray],
                 options: Options, subject: Subject,
                 progress: ProgressFn | None = None) -> None:
        self._loss, self._grads = loss, grads
        self.arrays = arrays
        self.originals = {name: array.copy() for name, array in arrays.items()}
        self.loss_label, self.grads_label = subject.loss_label, subject.grads_label
        self.executor = options.executor
        self.progress = progress
        self.n_loss = self.n_grads = 0
        self.loss_eps = FLOAT64_EPS  # coarsest precision seen in a loss
        self.loss_quantum = 0.0  # steps the loss's values move in, where measured coarser
        self.scanned = 0  # coordinates measured or verified so far, for progress
        self.planned = 0  # coordinates of every tensor, for progress
        self._last_progress = 0.0
        self._last_done = -1
        self._payload: bytes | None = None
        self.unrepeatable: list[str] = []  # evaluations that came out differently when repeated
        self.loss_at_point = float("nan")  # the loss at the given point, once evaluated
        # the smallest non-zero |L - loss_at_point| any evaluation gave: the loss resolves
        # changes this small (a loss rounded in coarse steps never shows a smaller one)
        self.smallest_change = float("inf")
        self.last_rounding = float("nan")  # the rounding bound the last loss value gave

    def note_unrepeatable(self, what: str) -> None:
        """Record that an evaluation repeated at the same point answered differently."""
        self.unrepeatable.append(what)

    def _evaluate(self) -> float:
        if self.progress is not None and self.planned:  # a slow loss still reports
            self.tick(self.scanned, self.planned)
        value = self._loss()
        self.loss_eps = max(self.loss_eps, loss_precision(value))
        self.last_rounding = value.rounding if isinstance(value, LossValue) else float("nan")
        return as_scalar(value, self.loss_label)

    def loss(self) -> float:
        self.n_loss += 1
        value = self._evaluate()
        self._saw(np.array([value]))
        return value

    def _saw(self, *values: np.ndarray) -> None:
        """Keep the smallest non-zero change from the point among these loss values."""
        for found in values:
            with np.errstate(invalid="ignore"):
                change = np.abs(found - self.loss_at_point)
            moved = change[change > 0]  # nan (no point yet, a non-finite loss) drops out
            if moved.size:
                self.smallest_change = min(self.smallest_change, float(moved.min()))

    def grads(self, copy: bool = True) -> dict[str, np.ndarray]:
        """The gradient at the current params, validated; as copies unless ``copy`` is
        False (a second look that is compared and dropped: no memory of the params' size)."""
        self.n_grads += 1
        return check_grads(self._grads(), self.arrays, self.grads_label, copy)

    def changed(self) -> list[str]:
        """Names of params that differ from their saved copies."""
        return [name for name, array in self.arrays.items()
                if not same_bits(array, self.originals[name])]

    def restore(self) -> None:
        for name, array in self.arrays.items():
            np.copyto(array, self.originals[name])

    def changed_in_place(self, label: str, problems: list[Problem]) -> bool:
        """Name (and undo) writes into the params made by the call just made."""
        changed = self.changed()
        if changed:
            problems.append(Problem(
                "in_place",
                f"calling {label} changed {', '.join(map(repr, changed))} in place: code under "
                "test must not write into its inputs or parameters (copy before modifying, "
                "e.g. x = x.copy()). Nothing else was checked.", changed[0]))
            self.restore()
        return bool(changed)

    def tick(self, done: int, total: int) -> None:
        """Progress: every coordinate counts; the callback fires about twice a second."""
        self.scanned = done
        if self.progress is None:
            return
        now = time.monotonic()
        finished = done >= total > 0 and done != self._last_done
        if now - self._last_progress >= PROGRESS_INTERVAL or finished:
            self._last_progress, self._last_done = now, done
            self.progress(done, max(total, done))

    def scan(self, name: str, flat_indices: np.ndarray, steps: np.ndarray) -> Stencil:
        """Central differences over the listed coordinates: 2 loss evaluations each."""
        done_before = self.scanned

        def on_step(done: int) -> None:
            self.tick(done_before + done, max(self.planned, done_before + done))

        self.n_loss += 2 * len(flat_indices)
        if self.executor is None or len(flat_indices) < 2:
            roundings: list[float] = []

            def evaluate() -> float:
                value = self._evaluate()
                roundings.append(self.last_rounding)
                return value

            stencil = central_difference_scan(evaluate, self.arrays[name], flat_indices,
                                              steps, on_step)
            pairs = np.array(roundings).reshape(-1, 2)
            stencil = stencil._replace(rounding_plus=pairs[:, 0], rounding_minus=pairs[:, 1])
        else:
            stencil = scan_on_executor(self.executor, self._pickled(), name, flat_indices,
                                       steps, on_step)
        self._saw(stencil.loss_plus, stencil.loss_minus)
        return stencil

    def _pickled(self) -> bytes:
        import pickle

        if self._payload is None:
            try:  # loss and params in one pickle, so the copy loss reads is the one moved
                self._payload = pickle.dumps((self._loss, self.arrays, self.loss_label))
            except Exception as error:
                raise GradcheckUsageError(
                    "executor= sends the loss to other workers, so loss and params must pickle "
                    "together (a module-level callable or a bound method of an object holding "
                    f"the params, as check_layer uses): {type(error).__name__}: {error}"
                ) from error
        return self._payload
