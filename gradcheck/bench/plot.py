"""The picture of a benchmark: per dtype, the backward time of each layer of a network as a
horizontal bar (the slowest in another colour, its share written beside it, the matrix
products alone as a thin bar where a floor is known); for a single layer, its forward,
backward and floor. matplotlib is optional (``pip install "gradcheck[plot]"``), imported
only here through :func:`gradcheck.heatmap.require_matplotlib`; drawing uses the Agg canvas
directly, so pyplot's global backend in the caller's process is left alone."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from gradcheck.heatmap import require_matplotlib
from gradcheck.timing import format_seconds

# a report draws itself through this module: typed by what is read off it, not imported
BenchmarkReport = Any
DtypeBenchmark = Any

__all__ = ["plot_benchmark"]

_BAR, _SLOWEST, _FLOOR = "#4c72b0", "#c44e52", "#333333"


def plot_benchmark(report: BenchmarkReport, path: str | Path) -> Path:
    """Draw ``report`` into a PNG at ``path``; return the path.

    Example::

        >>> report = gc.benchmark_layer(net, x)     # doctest: +SKIP
        >>> report.plot("backward.png")             # doctest: +SKIP
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    runs = report.runs
    rows = max((len(run.layers) or 3) for run in runs) if runs else 1
    fig = Figure(figsize=(9, 1.2 + 0.45 * rows * len(runs) + 0.6 * len(runs)), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(runs), 1, squeeze=False)[:, 0]
    for ax, run in zip(axes, runs, strict=True):
        _draw_run(ax, run)
    fig.suptitle(f"{report.layer}: backward time per layer (BLAS threads: {report.threads})",
                 fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    return out


def _draw_run(ax: object, run: DtypeBenchmark) -> None:

    slowest = run.slowest
    if run.layers:
        labels = [f"{row.index} {row.name}" for row in run.layers]
        values = [row.backward.median for row in run.layers]
        floors = [None if row.floor is None else row.floor.median for row in run.layers]
        colours = [_SLOWEST if row is slowest else _BAR for row in run.layers]
        notes = [f"{format_seconds(v)}  {100 * (row.share or 0):.0f}%"
                 for v, row in zip(values, run.layers, strict=True)]
        title = (f"{run.dtype}, input {run.input_shape}: network backward "
                 f"{format_seconds(run.whole.backward.median)}"
                 + (f", slowest: layer {slowest.index}" if slowest is not None else ""))
    else:
        whole = run.whole
        labels = ["forward", "backward"]
        values = [whole.forward.median, whole.backward.median]
        floors = [None, None if whole.floor is None else whole.floor.median]
        colours = [_BAR, _SLOWEST]
        notes = [format_seconds(v) for v in values]
        title = f"{run.dtype}, input {run.input_shape}: {whole.name}"
    if run.disturbed:
        title += " (DISTURBED: other processes were busy)"
    positions = list(range(len(labels)))[::-1]  # first layer on top
    ax.barh(positions, [1e3 * v for v in values], color=colours)  # type: ignore[attr-defined]
    floored = [(p, 1e3 * f) for p, f in zip(positions, floors, strict=True) if f is not None]
    if floored:
        ax.barh([p for p, _ in floored], [f for _, f in floored], height=0.25,  # type: ignore[attr-defined]
                color=_FLOOR, label="its matrix products alone (floor)")
        ax.legend(loc="lower right", fontsize=8)  # type: ignore[attr-defined]
    for p, v, note in zip(positions, values, notes, strict=True):
        ax.text(1e3 * v, p, "  " + note, va="center", fontsize=8)  # type: ignore[attr-defined]
    ax.set_yticks(positions)  # type: ignore[attr-defined]
    ax.set_yticklabels(labels, fontsize=8)  # type: ignore[attr-defined]
    ax.set_xlabel("median ms per call")  # type: ignore[attr-defined]
    ax.set_xlim(0, 1e3 * max(values, default=1.0) * 1.35)  # type: ignore[attr-defined]
    ax.set_title(title, fontsize=9, loc="left")  # type: ignore[attr-defined]
