"""ReLU'(0) convention sensitivity: does the choice ReLU'(0) = 0 or 1 change the gradients?

It can only matter where a ReLU input is exactly 0.0. Random floats practically never are;
zero input rows through a bias-free Dense (or one with zero biases) always are. A ReLU layer
here is any layer with a ``grad_at_zero`` attribute (``reference_nets.ReLU`` and user layers
that follow the same convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gradcheck.diagnostics._common import (
    as_batch,
    cast_floats,
    is_relu_like,
    leaf_layers,
    norm,
    private_copy,
    trace_passes,
)
from gradcheck.errors import GradcheckUsageError
from gradcheck.text import sci, strict_json, table


@dataclass(frozen=True)
class ReluZeros:
    """How many inputs of one ReLU layer were exactly zero, in one dtype."""

    path: str  # the layer's position, "3" (or "1.0" inside a nested Sequential)
    layer: str
    dtype: str
    zeros: int
    size: int

    def to_dict(self) -> dict[str, Any]:
        return strict_json(asdict(self))


@dataclass(frozen=True)
class ParamDifference:
    """One gradient (a parameter's, or "x": the input's) under ReLU'(0) = 0 (g0) and
    ReLU'(0) = 1 (g1), in one dtype.

    ``max_abs_diff = max|g1 - g0|``; ``rel_diff = ||g1 - g0|| / max(||g0||, ||g1||)``
    (0.0 when both are zero); ``differing`` counts elements with g1 != g0.
    """

    name: str  # "0.W", "2.b", ...: the Sequential's keys; "x" for the input gradient
    shape: tuple[int, ...]
    dtype: str  # dtype of the run ("float64" / "float32")
    grad_dtype: str  # dtype of the gradient the layer returned
    max_abs_diff: float
    rel_diff: float
    differing: int
    norm0: float
    norm1: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields; non-finite numbers appear as "inf" / "nan"."""
        return strict_json(asdict(self))


@dataclass(frozen=True)
class ConventionReport:
    """What :func:`convention_sensitivity` measured. ``str(report)`` is the table."""

    dtypes: tuple[str, ...]
    relu_layers: list[tuple[str, str]]  # (path, class name)
    zeros: list[ReluZeros]
    diffs: list[ParamDifference]
    input_diffs: list[ParamDifference]  # dL/dx (name "x"), one per dtype
    input_shape: tuple[int, ...]
    upstream: str
    warnings: list[str] = field(default_factory=list)

    def total_zeros(self, dtype: str | None = None) -> int:
        """Exact zeros at ReLU inputs, over all ReLU layers, in ``dtype`` (default: the most
        found in any dtype)."""
        if dtype is not None:
            return sum(z.zeros for z in self.zeros if z.dtype == dtype)
        return max((self.total_zeros(d) for d in self.dtypes), default=0)

    @property
    def matters(self) -> bool:
        """True when some parameter gradient differs between the two conventions."""
        return any(d.differing for d in self.diffs)

    @property
    def input_matters(self) -> bool:
        """True when the gradient w.r.t. the network's input differs between the conventions
        (it matters when the network is a block of a bigger one: the layers before it see it).
        """
        return any(d.differing for d in self.input_diffs)

    @property
    def max_rel_diff(self) -> float:
        """The largest relative difference over all parameters and dtypes."""
        return max((d.rel_diff for d in self.diffs), default=0.0)

    def diff(self, name: str, dtype: str = "float64") -> ParamDifference:
        """The :class:`ParamDifference` of parameter ``name`` (e.g. "0.W") in ``dtype``."""
        for d in self.diffs:
            if d.name == name and d.dtype == dtype:
                return d
        raise KeyError(f"{name!r} in {dtype}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; non-finite numbers appear as the strings "inf" / "nan"."""
        return strict_json({
            "matters": self.matters,
            "max_rel_diff": self.max_rel_diff,
            "dtypes": self.dtypes,
            "relu_layers": [{"path": p, "layer": n} for p, n in self.relu_layers],
            "total_zeros": {d: self.total_zeros(d) for d in self.dtypes},
            "zeros": [z.to_dict() for z in self.zeros],
            "diffs": [d.to_dict() for d in self.diffs],
            "input_matters": self.input_matters,
            "input_diffs": [d.to_dict() for d in self.input_diffs],
            "input_shape": self.input_shape,
            "upstream": self.upstream,
            "warnings": self.warnings,
        })

    def __str__(self) -> str:
        lines = [
            f"ReLU'(0) convention sensitivity  ({len(self.relu_layers)} ReLU layers, "
            f"input {self.input_shape}, upstream {self.upstream})",
            "",
        ]
        if not self.relu_layers:
            lines.append(
                "no ReLU layer (no layer with a grad_at_zero attribute): nothing to compare"
            )
            return "\n".join(lines + [f"warning: {w}" for w in self.warnings])
        zt: list[tuple[str, ...]] = [("exact zeros at ReLU inputs", *self.dtypes)]
        for i, name in self.relu_layers:
            cells = [f"  {i} {name}"]
            for d in self.dtypes:
                z = next(z for z in self.zeros if z.path == i and z.dtype == d)
                cells.append(f"{z.zeros} / {z.size}")
            zt.append(tuple(cells))
        zt.append(("  total", *(str(self.total_zeros(d)) for d in self.dtypes)))
        lines += table(zt, right=range(1, len(self.dtypes) + 1))
        lines += ["", "parameter gradients, ReLU'(0)=0 vs ReLU'(0)=1"]
        pt: list[tuple[str, ...]] = [
            ("param", "shape", "dtype", "max|g1-g0|", "|g1-g0|/|g|", "differing")
        ]
        for pd in [*self.diffs, *self.input_diffs]:
            n = int(np.prod(pd.shape))
            pt.append(
                (
                    pd.name,
                    str(pd.shape),
                    pd.dtype,
                    sci(pd.max_abs_diff),
                    sci(pd.rel_diff),
                    f"{pd.differing} / {n}",
                )
            )
        lines += table(pt, right={3, 4, 5})
        lines.append("")
        if self.matters:
            changed = {d.name for d in self.diffs if d.differing}
            names = {d.name for d in self.diffs}
            lines.append(
                f"verdict: the convention MATTERS for this batch: it changes {len(changed)} of "
                f"{len(names)} parameter gradients (max relative difference "
                f"{sci(self.max_rel_diff)})"
            )
        elif self.input_matters:
            changed_x = max(d.differing for d in self.input_diffs)
            lines.append(
                f"verdict: the convention changes no parameter gradient, only dL/dx ({changed_x} "
                "elements): it matters where this network is a block of a bigger one"
            )
        elif self.total_zeros() == 0:
            lines.append(
                "verdict: the convention does not matter for this batch: no ReLU input is "
                "exactly zero"
            )
        else:
            lines.append(
                "verdict: the convention does not matter for this batch: ReLU inputs are exactly "
                "zero, but no gradient reaching them gets through to a parameter or to x"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _difference(name: str, dtype: str, g0: np.ndarray, g1: np.ndarray) -> ParamDifference:
    delta = np.asarray(g1, dtype=np.float64) - np.asarray(g0, dtype=np.float64)
    n0, n1 = norm(g0), norm(g1)
    denom = max(n0, n1)
    return ParamDifference(
        name=name,
        shape=tuple(np.shape(g0)),
        dtype=dtype,
        grad_dtype=str(np.asarray(g0).dtype),
        max_abs_diff=float(np.max(np.abs(delta))) if delta.size else 0.0,
        rel_diff=norm(delta) / denom if denom > 0 else 0.0,
        differing=int(np.count_nonzero(np.asarray(g1) != np.asarray(g0))),
        norm0=n0,
        norm1=n1,
    )


def convention_sensitivity(
    net: Any,
    x: Any,
    upstream: Any = None,
    *,
    seed: int = 0,
    dtypes: Sequence[str] = ("float64", "float32"),
) -> ConventionReport:
    """Count exact zeros at ReLU inputs and compare parameter gradients under ReLU'(0) = 0
    and ReLU'(0) = 1, once per dtype in ``dtypes``.

    Every run uses a deep copy of ``net`` whose floating arrays (params, grads, caches) are
    cast to the dtype, and ``x``/``upstream`` cast likewise: the network you pass, including
    each ReLU's ``grad_at_zero``, is left unchanged. The upstream gradient is ``upstream``,
    or 1.0 for a loss head, or a standard normal draw seeded by ``seed``.

    Example::

        >>> import numpy as np, reference_nets as rn
        >>> from gradcheck.diagnostics import convention_sensitivity
        >>> net = rn.Sequential(rn.Dense(4, 3, rng=0, bias=False), rn.ReLU(), rn.Dense(3, 2, rng=1))
        >>> x = np.random.default_rng(2).standard_normal((5, 4)); x[:2] = 0.0
        >>> rep = convention_sensitivity(net, x)      # 2 zero rows x 3 units on the kink
        >>> rep.total_zeros("float64"), rep.matters, rep.input_matters
        (6, False, True)

    (dW = x^T g gets nothing from zero rows: only dL/dx changes here. With a zero bias in
    the first Dense, its gradient would change too.)
    """
    xb = as_batch(x)
    dts: list[np.dtype[Any]] = []
    for d in dtypes:
        try:
            dt = np.dtype(d)
        except TypeError as exc:
            raise GradcheckUsageError(f"dtypes: {d!r} is not a numpy dtype") from exc
        if dt.kind != "f":
            raise GradcheckUsageError(f"dtypes: expected floating dtypes; got {dt}")
        dts.append(dt)
    if not dts:
        raise GradcheckUsageError("dtypes: give at least one dtype, e.g. ('float64',)")
    leaves = leaf_layers(net)
    relus = [
        (i, path, type(layer).__name__)
        for i, (path, layer) in enumerate(leaves)
        if is_relu_like(layer)
    ]
    zeros: list[ReluZeros] = []
    diffs: list[ParamDifference] = []
    input_diffs: list[ParamDifference] = []
    warnings: list[str] = []
    up_desc = ""
    for dt in dts:
        grads: list[list[dict[str, np.ndarray]]] = []
        dx: list[np.ndarray] = []
        for grad_at_zero in (0.0, 1.0):
            copy_layers = [layer for _, layer in leaf_layers(private_copy(net))]
            cast_floats(copy_layers, dt)
            for layer in copy_layers:
                if is_relu_like(layer):
                    layer.grad_at_zero = grad_at_zero
            up = None if upstream is None else np.asarray(upstream)
            if up is not None and up.ndim > 0 and up.dtype.kind == "f":
                up = up.astype(dt)
            with np.errstate(all="ignore"):
                trace = trace_passes(copy_layers, xb.astype(dt), up, seed)
            up_desc = trace.upstream
            grads.append(trace.param_grads)
            dx.append(np.asarray(trace.grad_in[0]))
            if grad_at_zero == 0.0:
                for i, path, name in relus:
                    zeros.append(
                        ReluZeros(
                            path, name, dt.name, trace.zeros_at_input[i] or 0, trace.input_sizes[i]
                        )
                    )
        for i, (g0s, g1s) in enumerate(zip(grads[0], grads[1], strict=True)):
            for key, g0 in g0s.items():
                if g0.dtype != dt:
                    warnings.append(
                        f"{dt.name} run: layer {leaves[i][0]} ({type(leaves[i][1]).__name__}) "
                        f"returned a {g0.dtype} gradient for {key!r}: "
                        f"it does not compute in {dt.name}"
                    )
                diffs.append(_difference(f"{leaves[i][0]}.{key}", dt.name, g0, g1s[key]))
        input_diffs.append(_difference("x", dt.name, dx[0], dx[1]))
    return ConventionReport(
        dtypes=tuple(dt.name for dt in dts),
        relu_layers=[(p, n) for _, p, n in relus],
        zeros=zeros,
        diffs=diffs,
        input_diffs=input_diffs,
        input_shape=tuple(xb.shape),
        upstream=up_desc,
        warnings=warnings,
    )
