"""Reference chains for the gradient-flow questions: ``depth`` x (Dense -> activation)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.errors import GradcheckUsageError

ACTIVATIONS = ("sigmoid", "relu", "tanh")
INITS = ("he", "xavier", "normal")


def init_std(init: str, n_in: int, n_out: int) -> float:
    """Standard deviation of the normal weight draw for ``init``.

    - ``"he"``: sqrt(2 / n_in) (He et al. 2015, for ReLU),
    - ``"xavier"``: sqrt(2 / (n_in + n_out)) (Glorot & Bengio 2010, normal form),
    - ``"normal"``: 1.0 (N(0, 1) as in Nielsen's network.py).
    """
    if init == "he":
        return float(np.sqrt(2.0 / n_in))
    if init == "xavier":
        return float(np.sqrt(2.0 / (n_in + n_out)))
    if init == "normal":
        return 1.0
    raise GradcheckUsageError(f"init: expected one of {', '.join(INITS)}; got {init!r}")


def make_chain(
    depth: int,
    activation: str = "sigmoid",
    width: int = 64,
    init: str | None = None,
    rng: int | np.random.Generator | None = None,
    *,
    gain: float = 1.0,
    bias: bool = True,
    dtype: Any = np.float64,
) -> Any:
    """A ``reference_nets.Sequential`` of ``depth`` x (``Dense(width, width)`` -> activation).

    Weights are drawn N(0, (gain * std)^2) with ``std`` from ``init`` (see :func:`init_std`;
    default: "he" for relu, "xavier" for sigmoid and tanh); biases are zero. The layer list
    is ``[Dense, act, Dense, act, ...]`` (2 * depth layers); inputs have ``width`` features.

    Example::

        >>> from gradcheck.diagnostics import make_chain
        >>> net = make_chain(30, activation="relu", width=256, init="he", rng=0)
        >>> len(net.layers), net.layers[0].params["W"].shape
        (60, (256, 256))
    """
    import reference_nets as rn

    if not isinstance(depth, int | np.integer) or depth < 1:
        raise GradcheckUsageError(f"depth: expected a positive integer; got {depth!r}")
    if not isinstance(width, int | np.integer) or width < 1:
        raise GradcheckUsageError(f"width: expected a positive integer; got {width!r}")
    if activation not in ACTIVATIONS:
        raise GradcheckUsageError(
            f"activation: expected one of {', '.join(ACTIVATIONS)}; got {activation!r}"
        )
    if init is None:
        init = "he" if activation == "relu" else "xavier"
    std = gain * init_std(init, int(width), int(width))
    gen = np.random.default_rng(rng)
    act = {"sigmoid": rn.Sigmoid, "relu": rn.ReLU, "tanh": rn.Tanh}[activation]
    layers: list[Any] = []
    for _ in range(int(depth)):
        dense = rn.Dense(int(width), int(width), rng=gen, dtype=dtype, bias=bias)
        w = dense.params["W"]
        w[...] = gen.standard_normal(w.shape) * std
        if "b" in dense.params:
            dense.params["b"][...] = 0.0
        layers += [dense, act()]
    return rn.Sequential(*layers)
