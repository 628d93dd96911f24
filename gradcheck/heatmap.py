"""The picture of a check: per failing tensor, analytic, numeric and their difference as
heatmaps side by side, kinks marked, the diagnosis above. A transposed gradient shows as a
difference mirrored across the diagonal, a missing mask as a difference exactly where the
numeric panel is blank.

matplotlib is optional (``pip install matplotlib``, or gradcheck's ``plot`` extra) and
imported only here, only when a picture is asked for; drawing uses the Agg canvas
directly, so pyplot's global backend in the caller's process is left alone.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

# A report draws itself through this module (Report.plot), so the report and its tensor
# results are typed here by what is read off them, not imported.
Report = Any
TensorResult = Any

#: works wherever gradcheck came from (an index, a git URL, a folder): the extra's
#: name alone would need the same source again
INSTALL_HINT = ("matplotlib is needed to draw pictures: pip install matplotlib (gradcheck's "
                "plot extra)")
MARKED_MAX = 4000  # kinks marked one by one up to this many per tensor
WRONG_MARKED_SHARE = 0.25  # wrong elements outlined up to this share of the tensor


def require_matplotlib() -> Any:
    """Import matplotlib or raise ImportError naming the extra to install (every picture
    of the package comes through here)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return matplotlib


def as_matrix(array: np.ndarray) -> np.ndarray:
    """A tensor as a 2-D picture: a scalar as 1 x 1, a vector as one row, more axes folded
    into the rows (the last axis stays the columns).

    >>> as_matrix(np.zeros((2, 3, 4))).shape, as_matrix(np.zeros(5)).shape
    ((6, 4), (1, 5))
    """
    if array.ndim == 0:
        return array.reshape(1, 1)
    if array.ndim == 1:
        return array.reshape(1, -1)
    return array.reshape(-1, array.shape[-1])


def plot_report(report: Report, path: str | Path) -> Path:
    """Draw ``report`` into a PNG at ``path`` (the failing tensors, or every tensor when
    none failed); return the path.

    Example::

        >>> report = gc.check_layer(layer, x)   # doctest: +SKIP
        >>> report.plot("check.png")             # doctest: +SKIP
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [t for t in report.tensors if not t.ok and t.analytic.shape == t.shape]
    if not shown:
        shown = [t for t in report.tensors if t.analytic.shape == t.shape]
    causes = {d.tensor: d for d in getattr(report, "diagnoses", [])}
    heights = [_row_height(t) for t in shown] or [1.0]
    fig = Figure(figsize=(13, sum(heights) + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    verdict = "ok" if report.ok else "FAILED"
    fig.suptitle(f"gradcheck {verdict}: {report.title}", fontsize=11)
    if not shown:
        fig.text(0.5, 0.5, "no tensor to show", ha="center")
    else:
        rows = fig.subfigures(len(shown), 1, height_ratios=heights, squeeze=False)[:, 0]
        for row, t in zip(rows, shown, strict=True):
            _draw_tensor(row, t, causes.get(t.name))
    path = Path(path)
    fig.savefig(path)
    return path


def _row_height(t: TensorResult) -> float:
    rows, cols = as_matrix(t.analytic).shape
    return 1.6 + min(3.2, max(0.6, 3.6 * rows / max(cols, 1)))


def _draw_tensor(fig: Any, t: TensorResult, cause: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    analytic = as_matrix(np.asarray(t.analytic, dtype=np.float64))
    numeric = as_matrix(np.asarray(t.numeric, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        difference = analytic - numeric
    kink = as_matrix(np.asarray(t.kink, dtype=bool)) if t.kink.shape == t.shape else None
    failed = as_matrix(np.asarray(t.failed, dtype=bool)) if t.failed.shape == t.shape else None
    title = f"{t.name} {t.shape}: {t.status}, {t.mismatched} of {t.size} elements wrong"
    if cause is not None:
        title += "\n" + "\n".join(textwrap.wrap(f"likely cause ({cause.kind}): {cause.text}",
                                                 170, break_long_words=False))
    fig.suptitle(title, fontsize=9, x=0.01, ha="left")
    axes = fig.subplots(1, 3)
    both = np.concatenate([analytic[np.isfinite(analytic)], numeric[np.isfinite(numeric)]])
    scale = float(np.max(np.abs(both), initial=0.0)) or 1.0
    spread = float(np.max(np.abs(difference[np.isfinite(difference)]), initial=0.0)) or scale
    panels = (("analytic", analytic, scale), ("numeric", numeric, scale),
              ("analytic - numeric", difference, spread))
    for ax, (label, values, limit) in zip(axes, panels, strict=True):
        image = ax.imshow(np.ma.masked_invalid(values), cmap=_cmap(), vmin=-limit, vmax=limit,
                          interpolation="nearest", aspect="auto")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if kink is not None and 0 < kink.sum() <= MARKED_MAX:
            rows, cols = np.nonzero(kink)
            ax.scatter(cols, rows, marker="x", s=18, c="black", linewidths=0.8,
                       label="kink")
        # wrong elements outlined where they are few (one wrong element in a large tensor is
        # a single pixel); where most are wrong the difference panel shows them already
        if (label.startswith("analytic -") and failed is not None
                and 0 < failed.sum() <= min(MARKED_MAX, WRONG_MARKED_SHARE * failed.size)):
            rows, cols = np.nonzero(failed)
            ax.scatter(cols, rows, marker="s", s=30, facecolors="none", edgecolors="black",
                       linewidths=0.6, label="wrong")
    handles, labels = axes[2].get_legend_handles_labels()
    if handles:
        axes[2].legend(handles, labels, fontsize=7, loc="upper right", framealpha=0.8)


def _cmap() -> Any:
    from matplotlib import colormaps

    return colormaps["RdBu_r"].with_extremes(bad="0.8")  # not measured (fast mode): grey
