"""Shared builders for the speed benchmarks (pytest-benchmark tests and bench_table.py).

The network under test is the reference ReLU MLP, built from ``reference_nets``
as it is trained::

    Dense(d0, d1, input_grad=False) -> ReLU -> Dense(d1, d2) -> ReLU -> Dense(d2, d3)
    -> SoftmaxCrossEntropy

in float32 or float64 (the torch comparison uses the very same weights, inputs, labels and
dtype). Three sizes: 784-256-256-10 at batch 64 and 512, 1024-1024-1024-10 at batch 256.

What each timing covers:

* ``fwd_bwd``   ``net.forward(x); net.backward()``: one training step's gradients, as a
  user calls it. The first Dense has ``input_grad=False``, so backward returns None and
  computes no ``dL/dx`` for the data, as torch does for an input that does not require grad.
* ``backward``  ``net.backward()`` alone, after a forward.
* ``floor``     the training floor: exactly the matrix products a training backward needs,
  and nothing else: ``dW = a.T @ delta`` for every Dense layer and ``dx = delta @ W.T`` for
  every Dense layer but the first, on the real activations and deltas of one
  forward/backward, written into preallocated outputs (``np.matmul(..., out=)``), so the
  figure is the GEMMs alone: no allocation, no elementwise work, no Python layers.
* ``step_floor`` every matrix product of the whole training step, timed alone the same
  way: the forward's ``a @ W`` per Dense layer, then the training floor. numpy's GEMMs
  (OpenBLAS) against torch's (MKL in the CPU wheel): when these products alone take
  nearly as long as torch's whole step, no numpy code can match torch's step.
* ``torch``     torch CPU's training step on the same weights (``F.linear``, ``relu``,
  ``cross_entropy``; grads reset to None each call, as ``zero_grad`` does); ``x`` does not
  require grad, so torch computes no input gradient either.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import reference_nets as rn

DTYPE = np.float32
DTYPES = (np.float32, np.float64)

#: benchmark group name -> (layer widths, batch size)
SIZES: dict[str, tuple[tuple[int, int, int, int], int]] = {
    "mlp-784-256-256-10-b64": ((784, 256, 256, 10), 64),
    "mlp-784-256-256-10-b512": ((784, 256, 256, 10), 512),
    "mlp-1024-1024-1024-10-b256": ((1024, 1024, 1024, 10), 256),
}

#: the small MLP of the checker-speed benchmark (full mode, per coordinate)
SMALL_MLP: tuple[tuple[int, int, int], int] = ((20, 30, 10), 4)


def build_mlp(widths: tuple[int, ...], batch: int, dtype: Any = DTYPE, seed: int = 0,
              input_grad: bool = True) -> tuple[rn.Sequential, np.ndarray, np.ndarray]:
    """A Dense-ReLU-...-Dense + SoftmaxCrossEntropy net, its input and its labels.

    ``input_grad`` is the first Dense layer's: False for a training net (backward returns
    None), True for a net whose ``dL/dx`` is checked.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, widths[0])).astype(dtype)
    labels = rng.integers(0, widths[-1], size=batch)
    layers: list[Any] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        if i:
            layers.append(rn.ReLU())
        dense = rn.Dense(n_in, n_out, rng=seed + 1 + i, dtype=dtype,
                         input_grad=input_grad or i > 0)
        dense.params["b"][...] = rng.standard_normal(n_out) * 0.1  # non-zero biases
        layers.append(dense)
    layers.append(rn.SoftmaxCrossEntropy(labels))
    return rn.Sequential(*layers), x, labels


@dataclass
class Case:
    """One size and dtype: the training net, its input and labels, its GEMM floor operands."""

    name: str
    widths: tuple[int, ...]
    batch: int
    dtype: Any
    net: rn.Sequential
    x: np.ndarray
    labels: np.ndarray
    # GEMM floor: (a, delta, W, dW_out, dx_out or None for the first layer) per Dense layer
    operands: list[tuple[Any, ...]] = field(default_factory=list)
    # forward products: (a, W, y_out) per Dense layer
    forward_operands: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def dense(self) -> list[rn.Dense]:
        return [layer for layer in self.net.layers if isinstance(layer, rn.Dense)]

    @property
    def label(self) -> str:
        """``<size>-<dtype>``, e.g. ``mlp-784-256-256-10-b64-float32``."""
        return f"{self.name}-{self.dtype.name}"

    def fwd_bwd(self) -> Any:
        self.net.forward(self.x)
        return self.net.backward()

    def forward(self) -> None:
        """Forward only; returns None so it can be a ``benchmark.pedantic`` setup."""
        self.net.forward(self.x)

    def backward(self) -> Any:
        return self.net.backward()

    def floor(self) -> None:
        for a, delta, w, dw, dx in self.operands:
            np.matmul(a.T, delta, out=dw)
            if dx is not None:
                np.matmul(delta, w.T, out=dx)

    def step_floor(self) -> None:
        for a, w, y in self.forward_operands:
            np.matmul(a, w, out=y)
        self.floor()


def make_case(name: str, dtype: Any = DTYPE) -> Case:
    """The training net of size ``name`` (first Dense input_grad=False) and its floor."""
    widths, batch = SIZES[name]
    net, x, labels = build_mlp(widths, batch, dtype, input_grad=False)
    case = Case(name, widths, batch, np.dtype(dtype), net, x, labels)
    # Sequential's forward and backward written out, recording what each Dense layer
    # receives: its input a on the way forward, its upstream delta on the way back
    inputs: dict[int, np.ndarray] = {}
    h: Any = x
    for layer in net.layers:
        if isinstance(layer, rn.Dense):
            inputs[id(layer)] = h
            w = layer.params["W"]
            case.forward_operands.append((h, w, np.empty((h.shape[0], w.shape[1]), w.dtype)))
        h = layer.forward(h)
    g: Any = 1.0
    for layer in reversed(net.layers):
        if isinstance(layer, rn.Dense):
            a, w = inputs[id(layer)], layer.params["W"]
            delta = np.ascontiguousarray(g)
            dx = None if layer is case.dense[0] else np.empty_like(a)
            case.operands.insert(0, (a, delta, w, np.empty_like(w), dx))
        g = layer.backward(g)
    return case


# ------------------------------------------------------------------------------ checker


#: fast mode against torch's fast_mode: Dense(n_in, n_out) at batch 8, float64, x, W and b
#: checked; label -> (n_in, n_out)
FAST_SIZES: dict[str, tuple[int, int]] = {
    "10k": (100, 100), "100k": (316, 316), "1M": (1000, 1000), "4M": (2000, 2000)}


def fast_dense(n_in: int, n_out: int) -> tuple[rn.Dense, np.ndarray]:
    """reference_nets.Dense(n_in, n_out), float64, a non-zero bias, and a batch-8 input."""
    layer = rn.Dense(n_in, n_out, rng=0)
    layer.params["b"][...] = np.random.default_rng(1).standard_normal(n_out) * 0.1
    return layer, np.random.default_rng(2).standard_normal((8, n_in))


def torch_dense_gradcheck_args(torch: Any, layer: rn.Dense, x: np.ndarray
                               ) -> tuple[Any, tuple[Any, ...]]:
    """``x @ W + b`` as a torch function of (x, W, b), float64, the same values, each
    requiring grad: what ``torch.autograd.gradcheck(..., fast_mode=True)`` checks."""
    inputs = tuple(torch.from_numpy(np.array(a)).requires_grad_()
                   for a in (x, layer.params["W"], layer.params["b"]))

    def dense(x: Any, w: Any, b: Any) -> Any:
        return x @ w + b

    return dense, inputs


def checked_bytes(layer: rn.Dense, x: np.ndarray) -> int:
    """The bytes of the tensors a check of the layer moves: x, W and b."""
    return int(x.nbytes + sum(p.nbytes for p in layer.params.values()))


def small_mlp() -> tuple[rn.Sequential, np.ndarray, np.ndarray]:
    """The full-mode MLP: Dense(20, 30) - ReLU - Dense(30, 10) + softmax CE, batch 4, f64."""
    widths, batch = SMALL_MLP
    return build_mlp(widths, batch, dtype=np.float64)


class FullCheck:
    """A full-mode ``check_layer`` of a net, and the floor of the forward-only protocol:
    the 2n + 1 evaluations of the loss it checks (n = checked coordinates: x and every
    parameter), timed alone, with no perturbation and no bookkeeping.

    The loss is check_layer's: ``L = sum(g * net.forward(x))`` for a fixed ``g``.
    """

    def __init__(self, net: rn.Sequential, x: np.ndarray) -> None:
        self.net, self.x = net, x
        self.coordinates = x.size + sum(p.size for p in net.params.values())
        self.g = np.random.default_rng(0).standard_normal(np.shape(net.forward(x)))

    def check(self) -> Any:
        import gradcheck as gc

        return gc.check_layer(self.net, self.x, mode="full")

    def loss(self) -> float:
        return float(np.sum(self.g * self.net.forward(self.x), dtype=np.float64))

    def loss_floor(self) -> None:
        for _ in range(2 * self.coordinates + 1):
            self.loss()


def torch_mlp_gradcheck_args(torch: Any, net: rn.Sequential, x: np.ndarray,
                             labels: np.ndarray) -> tuple[Any, tuple[Any, ...]]:
    """The same MLP as a torch function of (x, W0, b0, W1, b1), float64, same values."""
    functional = torch.nn.functional
    dense = [layer for layer in net.layers if isinstance(layer, rn.Dense)]
    inputs = [torch.from_numpy(x.copy()).requires_grad_()]
    for layer in dense:
        inputs.append(torch.from_numpy(np.ascontiguousarray(layer.params["W"].T))
                      .requires_grad_())
        inputs.append(torch.from_numpy(layer.params["b"].copy()).requires_grad_())
    target = torch.from_numpy(labels.astype(np.int64))

    def mlp(x: Any, *weights: Any) -> Any:
        h = x
        pairs = list(zip(weights[::2], weights[1::2], strict=True))
        for i, (w, b) in enumerate(pairs):
            h = functional.linear(h, w, b)
            if i < len(pairs) - 1:
                h = torch.relu(h)
        return functional.cross_entropy(h, target)

    return mlp, tuple(inputs)


# ------------------------------------------------------------------------------ torch


class TorchMLP:
    """The same MLP in torch, on copies of the reference's weights (same dtype, values).

    ``input_grad=False`` (the default) is torch's training step: x does not require grad.
    """

    def __init__(self, case: Case, input_grad: bool = False) -> None:
        import torch

        self.torch = torch
        self.F = torch.nn.functional
        # torch's Linear layout is (out, in): W.T, made contiguous as nn.Linear holds it
        self.weights = [torch.from_numpy(np.ascontiguousarray(d.params["W"].T)).requires_grad_()
                        for d in case.dense]
        self.biases = [torch.from_numpy(d.params["b"].copy()).requires_grad_()
                       for d in case.dense]
        self.x = torch.from_numpy(case.x.copy()).requires_grad_(input_grad)
        self.labels = torch.from_numpy(case.labels.astype(np.int64))

    def fwd_bwd(self) -> float:
        h = self.x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = self.F.linear(h, w, b)
            if i < last:
                h = self.torch.relu(h)
        loss = self.F.cross_entropy(h, self.labels)
        for p in (*self.weights, *self.biases):
            p.grad = None
        self.x.grad = None
        loss.backward()
        return float(loss.detach())


# ------------------------------------------------------------------------------ timing


def median_ms(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 3
              ) -> dict[str, float]:
    """Median wall time of each callable in ms, the callables taking turns
    (gradcheck.timing.alternate: ``repeats`` blocks of one timed call after an untimed one,
    after ``warmup`` untimed calls of each).

    Taking turns puts every contender under the same machine load (other processes, CPU
    frequency), so the ratios of the medians are far steadier than the absolute times.
    For numpy-only contenders: numpy and torch taking turns call by call slow each other
    down (each one's idle worker threads keep spinning; see gradcheck.timing.PAUSE).
    """
    from gradcheck.timing import Contender, alternate

    for _ in range(warmup):
        for fn in fns.values():
            fn()
    timings = alternate({k: Contender(fn) for k, fn in fns.items()}, rounds=repeats, reps=1)
    return {k: 1e3 * t.median for k, t in timings.items()}
