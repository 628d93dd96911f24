"""Gradient flow: how the gradient's norm changes from the last layer back to the first.

The verdict compares the gradient at the network's input with the gradient at the output
of its last layer (the input of the loss head, if the network ends in one):

    ratio = ||dL/dx|| / ||dL/d(output of the last non-loss layer)||   (Frobenius norms)

    ratio <  vanishing_below (default 1e-2)   -> "vanishing"
    ratio >  exploding_above (default 1e2)    -> "exploding"
    otherwise                                 -> "healthy"
    ratio is nan (0/0, nan gradients)          -> "undefined"

Two orders of magnitude is the default line: past it, at one learning rate the first layers
learn a hundred times slower (or faster) than the last ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck.diagnostics._common import (
    as_batch,
    leaf_layers,
    norm,
    private_copy,
    trace_passes,
)
from gradcheck.errors import GradcheckUsageError
from gradcheck.text import general, sci, strict_json, table

VANISHING_BELOW = 1e-2
EXPLODING_ABOVE = 1e2


@dataclass(frozen=True)
class FlowRow:
    """One layer of a :class:`FlowReport` (norms are Frobenius norms over the whole batch)."""

    index: int  # position in the flattened layer list
    path: str  # "3", or "1.0" inside a nested Sequential (the prefix of its params' keys)
    layer: str  # class name
    output_shape: tuple[int, ...]
    grad_out_norm: float  # ||dL/d output||: the upstream gradient this layer receives
    grad_in_norm: float  # ||dL/d input||: what its backward passes down
    param_grad_norms: dict[str, float] = field(default_factory=dict)
    param_norms: dict[str, float] = field(default_factory=dict)

    @property
    def factor(self) -> float:
        """``grad_in_norm / grad_out_norm``: how much this layer scales the gradient."""
        with np.errstate(all="ignore"):
            return float(np.float64(self.grad_in_norm) / np.float64(self.grad_out_norm))

    @property
    def param_grad_norm(self) -> float:
        """Norm of all this layer's parameter gradients together (0.0 without parameters)."""
        return math.sqrt(sum(v * v for v in self.param_grad_norms.values()))

    def to_dict(self) -> dict[str, Any]:
        return strict_json({
            "index": self.index,
            "path": self.path,
            "layer": self.layer,
            "output_shape": self.output_shape,
            "grad_out_norm": self.grad_out_norm,
            "grad_in_norm": self.grad_in_norm,
            "factor": self.factor,
            "param_grad_norms": self.param_grad_norms,
            "param_norms": self.param_norms,
        })


@dataclass(frozen=True)
class FlowReport:
    """What :func:`gradient_flow` measured. ``str(report)`` is the table."""

    rows: list[FlowRow]
    ratio: float
    verdict: str  # "vanishing" | "healthy" | "exploding" | "undefined"
    input_shape: tuple[int, ...]
    dtype: str
    upstream: str
    loss_head: bool
    top_norm: float  # ||dL/d output|| of the last non-loss layer: the ratio's denominator
    bottom_norm: float  # ||dL/dx||: the gradient at the network's input, its numerator
    vanishing_below: float = VANISHING_BELOW
    exploding_above: float = EXPLODING_ABOVE
    label: str = ""

    @property
    def param_ratio(self) -> float | None:
        """Parameter-gradient norm of the first layer with parameters over the last one's
        (None with fewer than two such layers)."""
        with_params = [r for r in self.rows if r.param_grad_norms]
        if len(with_params) < 2:
            return None
        with np.errstate(all="ignore"):
            first = np.float64(with_params[0].param_grad_norm)
            return float(first / np.float64(with_params[-1].param_grad_norm))

    @property
    def ok(self) -> bool:
        """True when the verdict is "healthy"; a report is truthy when ok."""
        return self.verdict == "healthy"

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; non-finite numbers appear as the strings "inf" / "nan"."""
        return strict_json({
            "label": self.label,
            "verdict": self.verdict,
            "ratio": self.ratio,
            "param_ratio": self.param_ratio,
            "top_norm": self.top_norm,
            "bottom_norm": self.bottom_norm,
            "thresholds": {
                "vanishing_below": self.vanishing_below,
                "exploding_above": self.exploding_above,
            },
            "input_shape": self.input_shape,
            "dtype": self.dtype,
            "upstream": self.upstream,
            "loss_head": self.loss_head,
            "rows": [r.to_dict() for r in self.rows],
        })

    def plot(self, path: str | Path) -> Path:
        """Write the gradient-flow picture as a PNG (needs matplotlib: ``pip install
        matplotlib``, gradcheck's ``plot`` extra). Returns the path written."""
        from gradcheck.diagnostics.plotting import plot_flows

        return plot_flows([self], path)

    def __str__(self) -> str:
        head = (
            f"gradient flow{': ' + self.label if self.label else ''}  "
            f"({len(self.rows)} layers, input {self.input_shape} {self.dtype}, "
            f"upstream {self.upstream})"
        )
        rows = [("#", "layer", "output", "|dL/d out|", "|dL/d in|", "in/out", "parameter |grad|")]
        for r in self.rows:
            pg = "  ".join(f"{k} {sci(v)}" for k, v in r.param_grad_norms.items())
            rows.append(
                (
                    r.path,
                    r.layer,
                    str(r.output_shape),
                    sci(r.grad_out_norm),
                    sci(r.grad_in_norm),
                    sci(r.factor),
                    pg,
                )
            )
        lines = [head, "", *table(rows, right={0, 3, 4, 5}), ""]
        pr = self.param_ratio
        lines.append(
            f"verdict: {self.verdict.upper()}  ratio |dL/dx| / |dL/d out| = {sci(self.ratio)}"
            f"  ({sci(self.bottom_norm)} / {sci(self.top_norm)})"
        )
        if pr is not None:
            lines.append(f"first/last parameter-gradient norm: {sci(pr)}")
        lines.append(
            f"thresholds: vanishing below {general(self.vanishing_below)}, "
            f"exploding above {general(self.exploding_above)}"
        )
        return "\n".join(lines)


def verdict_for(ratio: float, vanishing_below: float, exploding_above: float) -> str:
    """The verdict for a first/last gradient-norm ratio (see the module docstring)."""
    if math.isnan(ratio):
        return "undefined"
    if ratio < vanishing_below:
        return "vanishing"
    if ratio > exploding_above:
        return "exploding"
    return "healthy"


def gradient_flow(
    net: Any,
    x: Any,
    upstream: Any = None,
    *,
    seed: int = 0,
    vanishing_below: float = VANISHING_BELOW,
    exploding_above: float = EXPLODING_ABOVE,
    label: str = "",
) -> FlowReport:
    """Per-layer norms of the upstream gradient and of each parameter gradient, with a verdict.

    ``net`` is a Sequential (anything with ``.layers``), a list of layers, or one layer. The
    pass runs on a deep copy: the network you pass is left unchanged. The upstream gradient
    is ``upstream``, or 1.0 when the last layer is a loss head, or a standard normal draw
    seeded by ``seed``.

    Example::

        >>> from gradcheck.diagnostics import gradient_flow, make_chain
        >>> import numpy as np
        >>> net = make_chain(30, activation="sigmoid", width=64, rng=0)
        >>> rep = gradient_flow(net, np.random.default_rng(1).standard_normal((32, 64)))
        >>> rep.verdict, rep.ratio < 1e-15
        ('vanishing', True)
    """
    if not (0 < vanishing_below <= 1 <= exploding_above):
        raise GradcheckUsageError(
            "vanishing_below/exploding_above: need 0 < vanishing_below <= 1 <= exploding_above; "
            f"got {vanishing_below!r}, {exploding_above!r}"
        )
    xb = as_batch(x)
    paths, layers = zip(*leaf_layers(private_copy(net)), strict=True)
    with np.errstate(all="ignore"):
        trace = trace_passes(list(layers), xb, upstream, seed)
    rows = []
    for i, layer in enumerate(layers):
        rows.append(
            FlowRow(
                index=i,
                path=paths[i],
                layer=type(layer).__name__,
                output_shape=trace.output_shapes[i],
                grad_out_norm=norm(trace.grad_out[i]),
                grad_in_norm=norm(trace.grad_in[i]),
                param_grad_norms={k: norm(v) for k, v in trace.param_grads[i].items()},
                param_norms={k: norm(v) for k, v in trace.params[i].items()},
            )
        )
    if trace.loss_head and len(rows) > 1:
        top = rows[-2].grad_out_norm
    elif trace.loss_head:
        top = rows[-1].grad_in_norm
    else:
        top = rows[-1].grad_out_norm
    bottom = rows[0].grad_in_norm
    with np.errstate(all="ignore"):
        ratio = float(np.float64(bottom) / np.float64(top))
    return FlowReport(
        rows=rows,
        ratio=ratio,
        verdict=verdict_for(ratio, vanishing_below, exploding_above),
        input_shape=tuple(xb.shape),
        dtype=str(xb.dtype),
        upstream=trace.upstream,
        loss_head=trace.loss_head,
        top_norm=top,
        bottom_norm=bottom,
        vanishing_below=vanishing_below,
        exploding_above=exploding_above,
        label=label,
    )
