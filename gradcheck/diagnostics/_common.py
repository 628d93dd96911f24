"""Shared plumbing of the diagnostics: walking a network's layers on a private copy.

Every diagnostic works on ``copy.deepcopy(net)``: forward caches, ``grads`` dicts,
``ReLU.grad_at_zero`` and parameter dtypes of the user's network are never touched.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.errors import GradcheckUsageError
from gradcheck.upstream import drawn_upstream


def layers_of(net: Any) -> list[Any]:
    """The layers of ``net``: its ``.layers``, the items of a list/tuple, or ``[net]``.

    A single object with ``forward``/``backward`` counts as a one-layer network.
    """
    if hasattr(net, "layers"):
        layers = list(net.layers)
    elif isinstance(net, list | tuple):
        layers = list(net)
    elif hasattr(net, "forward") and hasattr(net, "backward"):
        layers = [net]
    else:
        raise GradcheckUsageError(
            f"net: expected a Sequential (an object with .layers), a list of layers or a "
            f"layer with forward/backward; got {type(net).__name__}"
        )
    if not layers:
        raise GradcheckUsageError("net: the network has no layers")
    for i, layer in enumerate(layers):
        fwd, bwd = getattr(layer, "forward", None), getattr(layer, "backward", None)
        if not (callable(fwd) and callable(bwd)):
            raise GradcheckUsageError(
                f"net: layer {i} ({type(layer).__name__}) has no forward/backward methods"
            )
    return layers


def leaf_layers(net: Any) -> list[tuple[str, Any]]:
    """The layers of ``net`` with nested containers (anything with ``.layers``, which is taken
    to apply its layers in order, as ``Sequential`` does) flattened, each with its path:
    ``"3"``, or ``"1.0"`` inside a nested Sequential (the prefixes of ``Sequential.params``).
    """
    out: list[tuple[str, Any]] = []

    def walk(prefix: str, layer: Any) -> None:
        if hasattr(layer, "layers"):
            for j, sub in enumerate(layers_of(layer)):
                walk(f"{prefix}.{j}", sub)
        else:
            out.append((prefix, layer))

    for i, layer in enumerate(layers_of(net)):
        walk(str(i), layer)
    return out


def private_copy(net: Any) -> Any:
    """``copy.deepcopy(net)``, or a usage error saying why a copy is needed."""
    try:
        return copy.deepcopy(net)
    except Exception as exc:  # deepcopy raises whatever the object's __reduce__ raises
        raise GradcheckUsageError(
            f"net: copy.deepcopy failed ({type(exc).__name__}: {exc}); the diagnostics run on a "
            f"copy so that your network (parameters, grads, caches) is left unchanged"
        ) from exc


def norm(a: Any) -> float:
    """Frobenius norm in float64, scaled so that large float32/float64 values do not overflow.

    ``inf`` if any element is infinite, ``nan`` if any is nan.
    """
    arr = np.asarray(a, dtype=np.float64)
    if arr.size == 0:
        return 0.0
    with np.errstate(all="ignore"):
        big = float(np.max(np.abs(arr)))
        if not math.isfinite(big):
            return math.nan if np.isnan(arr).any() else math.inf
        if big == 0.0:
            return 0.0
        return big * float(np.sqrt(np.sum(np.square(arr / big))))


def is_relu_like(layer: Any) -> bool:
    """A layer whose ReLU'(0) convention can be switched: it has a ``grad_at_zero`` attribute."""
    return hasattr(layer, "grad_at_zero")


@dataclass
class Trace:
    """One forward and backward pass through the layers, recorded per layer."""

    input_shape: tuple[int, ...]
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    grad_out: list[Any] = field(default_factory=list)  # dL/d output of layer i
    grad_in: list[Any] = field(default_factory=list)  # dL/d input of layer i
    param_grads: list[dict[str, np.ndarray]] = field(default_factory=list)
    params: list[dict[str, np.ndarray]] = field(default_factory=list)
    zeros_at_input: list[int | None] = field(default_factory=list)  # ReLU-like layers only
    input_sizes: list[int] = field(default_factory=list)
    loss_head: bool = False
    upstream: str = ""


def make_upstream(y: Any, upstream: Any, seed: int) -> tuple[Any, str]:
    """The gradient fed to the last layer's backward, and a description for the report.

    A scalar output is a loss head: ``backward(1.0)`` unless ``upstream`` gives the scalar.
    Otherwise the upstream is drawn as check_layer draws its own
    (:func:`gradcheck.upstream.drawn_upstream`): the same seed gives the same g.
    """
    if np.ndim(y) == 0:
        if upstream is None:
            return 1.0, "loss head (backward(1.0))"
        if np.ndim(upstream) != 0:
            raise GradcheckUsageError(
                f"upstream: the network ends in a loss head (scalar output), so upstream must be "
                f"a scalar; got shape {np.shape(upstream)}"
            )
        return float(upstream), f"loss head (backward({float(upstream)!r}))"
    g = drawn_upstream(np.asarray(y), upstream, seed, "the network")
    return g, "given" if upstream is not None else f"random normal (seed {seed})"


def as_batch(x: Any) -> np.ndarray:
    """A private float copy of the input batch (a layer writing into its input cannot reach
    the caller's array)."""
    arr = np.array(x, copy=True)
    if arr.dtype.kind not in "fc":
        if arr.dtype.kind not in "iub":
            raise GradcheckUsageError(f"x: expected a numeric array, got dtype {arr.dtype}")
        arr = arr.astype(np.float64)
    return arr


def trace_passes(layers: list[Any], x: np.ndarray, upstream: Any, seed: int) -> Trace:
    """Forward ``x`` through ``layers`` one by one, then backward; record everything.

    The upstream gradient is ``upstream`` (checked against the output shape), or 1.0 when the
    last layer is a loss head (scalar output), or a seeded standard normal draw.

    >>> from gradcheck.diagnostics import make_chain
    >>> net = make_chain(2, activation="relu", width=3, rng=0)
    >>> trace = trace_passes(layers_of(net), np.ones((4, 3)), None, seed=0)
    >>> trace.output_shapes[-1], len(trace.grad_in) == len(layers_of(net))
    ((4, 3), True)
    """
    trace = Trace(input_shape=tuple(np.shape(x)))
    h: Any = x
    for layer in layers:
        trace.input_sizes.append(int(np.size(h)))
        trace.zeros_at_input.append(
            int(np.count_nonzero(np.asarray(h) == 0)) if is_relu_like(layer) else None
        )
        h = layer.forward(h)
        trace.output_shapes.append(tuple(np.shape(h)))
    g, trace.upstream = make_upstream(h, upstream, seed)
    trace.loss_head = np.ndim(h) == 0
    n = len(layers)
    grad_out: list[Any] = [None] * n
    grad_in: list[Any] = [None] * n
    pgrads: list[dict[str, np.ndarray]] = [{} for _ in range(n)]
    for i in reversed(range(n)):
        grad_out[i] = g
        g = layers[i].backward(g)
        grad_in[i] = g
        grads = getattr(layers[i], "grads", None) or {}
        pgrads[i] = {k: np.array(v, copy=True) for k, v in grads.items()}
    trace.grad_out, trace.grad_in, trace.param_grads = grad_out, grad_in, pgrads
    trace.params = [dict(getattr(layer, "params", None) or {}) for layer in layers]
    return trace
def cast_floats(layers: list[Any], dtype: np.dtype[Any]) -> None:
    """Cast, IN PLACE on (copied!) layers, every floating array attribute and every floating
    array in a dict attribute (``params``, ``grads``, caches) to ``dtype``.

    Arrays shared between layers stay shared. A ``dtype`` attribute holding a float dtype
    (``Dense(dtype=...)``) is switched too.
    """
    memo: dict[int, np.ndarray] = {}

    def cast(v: Any) -> Any:
        if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.dtype != dtype:
            if id(v) not in memo:
                memo[id(v)] = v.astype(dtype)
            return memo[id(v)]
        return v

    for layer in layers:
        try:
            attrs = vars(layer)
        except TypeError:  # __slots__ without __dict__: leave it as it is
            continue
        for name, value in list(attrs.items()):
            if isinstance(value, np.ndarray):
                setattr(layer, name, cast(value))
            elif isinstance(value, dict):
                for k, v in list(value.items()):
                    value[k] = cast(v)
            elif name == "dtype":
                try:
                    is_float = np.dtype(value).kind == "f"
                except TypeError:
                    is_float = False
                if is_float:
                    setattr(layer, name, dtype.type if isinstance(value, type) else dtype)
