"""PNG pictures of gradient flow. matplotlib is optional (``pip install matplotlib``, or
gradcheck's ``plot`` extra), imported only when a picture is asked for (the package's one guard:
:func:`gradcheck.heatmap.require_matplotlib`); drawing uses the Agg canvas directly, so
pyplot's global backend in the caller's process is left alone."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck.errors import GradcheckUsageError
from gradcheck.heatmap import require_matplotlib

# flow draws its reports through this module, so they are typed here, not imported
FlowReport = Any



def plot_flows(
    reports: Sequence[FlowReport],
    path: str | Path,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw one or more :class:`FlowReport` s into a PNG at ``path``; return the path.

    Top panel: ||dL/d(input of layer l)|| / ||dL/d output|| against l, on a log scale, with
    the verdict thresholds as dashed lines. Bottom panel: the parameter-gradient norm of each
    layer with parameters, relative to the last such layer.

    Example::

        >>> rep.plot("flow.png")                        # doctest: +SKIP
        >>> plot_flows([sig, relu], "both.png", labels=["sigmoid", "relu"])  # doctest: +SKIP
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not reports:
        raise GradcheckUsageError("reports: give at least one FlowReport")
    if labels is not None and len(labels) != len(reports):
        raise GradcheckUsageError(f"labels: {len(labels)} labels for {len(reports)} reports")
    fig = Figure(figsize=(8, 6.5), dpi=110)
    FigureCanvasAgg(fig)
    ax_g, ax_p = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    tiny = np.finfo(np.float64).tiny
    for k, rep in enumerate(reports):
        name = labels[k] if labels is not None else (rep.label or f"network {k}")
        body = rep.rows[:-1] if rep.loss_head and len(rep.rows) > 1 else rep.rows
        xs = np.arange(len(body) + 1)
        ys = np.array([r.grad_in_norm for r in body] + [rep.top_norm], dtype=np.float64)
        with np.errstate(all="ignore"):
            rel = np.maximum(ys / rep.top_norm, tiny)
        (line,) = ax_g.semilogy(
            xs, rel, marker=".", label=f"{name}: ratio {rep.ratio:.1e} ({rep.verdict})"
        )
        with_params = [r for r in body if r.param_grad_norms]
        if with_params:
            px = np.array([r.index for r in with_params])
            pn = np.array([r.param_grad_norm for r in with_params], dtype=np.float64)
            with np.errstate(all="ignore"):
                prel = np.maximum(pn / pn[-1], tiny)
            ax_p.semilogy(px, prel, marker="o", markersize=3, color=line.get_color(), label=name)
    rep0 = reports[0]
    for ax in (ax_g, ax_p):
        ax.axhline(rep0.vanishing_below, color="0.5", linestyle="--", linewidth=0.8)
        ax.axhline(rep0.exploding_above, color="0.5", linestyle="--", linewidth=0.8)
        ax.grid(True, which="major", alpha=0.3)
    ax_g.set_ylabel("‖∂L/∂ input of layer‖ / ‖∂L/∂ output‖")
    ax_g.set_title(title or "gradient flow (dashed: vanishing / exploding thresholds)")
    ax_g.legend(fontsize="small", loc="lower right")
    ax_p.set_ylabel("‖parameter grad‖ / last layer's")
    ax_p.set_xlabel("layer index (0 = input side; Dense and activation count as one each)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
