"""The benchmark report: data (per dtype, the layer and each of its sublayers), a readable
table (``str``), ``to_dict()`` for JSON, and ``plot(path)``: the per-layer backward times
as bars."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradcheck.timing import Timing, format_seconds

__all__ = ["BenchmarkReport", "DtypeBenchmark", "LayerTimes", "format_bytes", "format_seconds"]


def format_bytes(n: int | None) -> str:
    """Bytes in B, KB, MB or GB (powers of 1000).

    >>> format_bytes(0), format_bytes(2_048), format_bytes(3_500_000)
    ('0 B', '2.0 KB', '3.5 MB')
    """
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def _ratio(a: Timing | None, b: Timing | None) -> float | None:
    if a is None or b is None or not b.median > 0:
        return None
    return a.median / b.median


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


@dataclass
class LayerTimes:
    """Forward and backward of one layer (the whole layer, or one sublayer of a network).

    ``allocated``/``peak``: bytes one backward call allocates in all and holds at most at
    once (see :mod:`gradcheck.bench.memory`). ``floor``: its matrix products alone
    (:mod:`gradcheck.bench.floor`), ``floor_text`` says which, or why none is known.
    ``share``: this sublayer's part of the network's backward time, both timed in the
    same calls (the network run with its sublayers' methods wrapped).
    """

    name: str
    forward: Timing
    backward: Timing
    allocated: int | None = None
    peak: int | None = None
    floor: Timing | None = None
    step_floor: Timing | None = None
    floor_text: str = ""
    index: int | None = None
    share: float | None = None

    @property
    def backward_over_forward(self) -> float | None:
        return _ratio(self.backward, self.forward)

    @property
    def backward_over_floor(self) -> float | None:
        """Backward's median over its matrix products' median; None without a floor."""
        return _ratio(self.backward, self.floor)

    @property
    def step_over_floor(self) -> float | None:
        """(forward + backward) over the step's matrix products alone; None without one."""
        if self.step_floor is None or not self.step_floor.median > 0:
            return None
        return (self.forward.median + self.backward.median) / self.step_floor.median

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "name": self.name,
            "forward": self.forward.to_dict(), "backward": self.backward.to_dict(),
            "backward_over_forward": _number(self.backward_over_forward),
            "allocated_bytes": self.allocated, "peak_bytes": self.peak,
            "floor": None if self.floor is None else self.floor.to_dict(),
            "step_floor": None if self.step_floor is None else self.step_floor.to_dict(),
            "backward_over_floor": _number(self.backward_over_floor),
            "step_over_floor": _number(self.step_over_floor),
            "floor_text": self.floor_text, "share": _number(self.share),
        }


@dataclass
class DtypeBenchmark:
    """One dtype: the layer as a whole, and its sublayers when it is a network."""

    dtype: str
    input_shape: tuple[int, ...]
    whole: LayerTimes
    layers: list[LayerTimes] = field(default_factory=list)
    others_cpu_percent: float | None = None
    disturbed: bool = False
    attempts: int = 1
    busy: float = 10.0
    notes: list[str] = field(default_factory=list)
    #: seconds of the network's backward spent outside its sublayers (its own code between
    #: them), the median over the same calls that timed the sublayers
    between_layers: float | None = None

    @property
    def slowest(self) -> LayerTimes | None:
        """The sublayer with the largest backward time (None for a single layer)."""
        return max(self.layers, key=lambda row: row.backward.median, default=None)

    def to_dict(self) -> dict[str, Any]:
        slowest = self.slowest
        return {
            "dtype": self.dtype, "input_shape": list(self.input_shape),
            "whole": self.whole.to_dict(), "layers": [row.to_dict() for row in self.layers],
            "slowest_layer": None if slowest is None else slowest.index,
            "between_layers_seconds": self.between_layers,
            "others_cpu_percent": self.others_cpu_percent, "disturbed": self.disturbed,
            "attempts": self.attempts, "busy_percent": self.busy, "notes": list(self.notes),
        }


_HEAD = ("layer", "forward", "backward", "bwd/fwd", "bwd/floor", "share", "allocated",
         "peak")


@dataclass
class BenchmarkReport:
    """What :func:`gradcheck.benchmark_layer` measured: one :class:`DtypeBenchmark` per
    dtype in ``runs``; ``str(report)`` is the table, ``to_dict()`` JSON-ready data,
    ``plot(path)`` a bar chart of the per-layer backward times."""

    layer: str
    runs: list[DtypeBenchmark]
    threads: str
    settings: dict[str, Any] = field(default_factory=dict)

    def run(self, dtype: str) -> DtypeBenchmark:
        """The figures of one dtype ("float32")."""
        for run in self.runs:
            if run.dtype == dtype:
                return run
        raise KeyError(f"no figures for {dtype}: measured {[r.dtype for r in self.runs]}")

    @property
    def slowest(self) -> LayerTimes | None:
        """The slowest sublayer's backward in the first dtype measured (None: no sublayers)."""
        return self.runs[0].slowest if self.runs else None

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "threads": self.threads, "settings": dict(self.settings),
                "runs": [run.to_dict() for run in self.runs]}

    def plot(self, path: str | Path) -> Path:
        """Draw the per-layer backward times (or forward, backward and floor of a single
        layer) as bars, one panel per dtype, into a PNG at ``path``; return the path."""
        from gradcheck.bench.plot import plot_benchmark

        return plot_benchmark(self, path)

    def __str__(self) -> str:
        rounds, min_time = self.settings.get("rounds"), self.settings.get("min_time")
        shape = self.runs[0].input_shape if self.runs else ()
        blocks = (f"blocks of at least {format_seconds(min_time)}" if min_time
                  else "blocks of 1 timed call")
        lines = [f"gradcheck bench: {self.layer}, input {shape}; BLAS threads: {self.threads}; "
                 f"{rounds} rounds of {blocks} per contender; medians, ± half the "
                 "interquartile range"]
        for run in self.runs:
            lines += ["", *_run_lines(run)]
        return "\n".join(lines)


def _cells(row: LayerTimes, indent: str, label: str) -> list[str]:
    def timing(t: Timing) -> str:
        spread = f" ±{100 * t.spread:.0f}%" if math.isfinite(t.spread) else ""
        return format_seconds(t.median) + spread

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    share = "-" if row.share is None else f"{100 * row.share:.0f}%"
    return [indent + label, timing(row.forward), timing(row.backward),
            ratio(row.backward_over_forward), ratio(row.backward_over_floor), share,
            format_bytes(row.allocated), format_bytes(row.peak)]


def _run_lines(run: DtypeBenchmark) -> list[str]:
    others = ("other processes' share of the CPU not known (too short to tell)"
              if run.others_cpu_percent is None
              else f"other processes used {run.others_cpu_percent:.0f}% of the CPU")
    state = (f"DISTURBED (above {run.busy:g}%), measured {run.attempts} times"
             if run.disturbed else f"measured {run.attempts} time{'s' * (run.attempts > 1)}")
    lines = [f"{run.dtype}: {others}; {state}"]
    whole = run.whole
    rows = [_cells(whole, "", "network" if run.layers else whole.name)]
    if run.layers:
        rows[0][5] = "100%"
        for row in run.layers:
            rows.append(_cells(row, "  ", f"{row.index} {row.name}"))
        between = run.between_layers
        measured = sum(row.backward.median for row in run.layers) + (between or 0.0)
        share = "-" if between is None or not measured > 0 else (
            f"{100 * between / measured:.0f}%")
        rows.append(["  (between layers)", "", format_seconds(between), "", "", share, "", ""])
    widths = [max(len(r[i]) for r in [list(_HEAD), *rows]) for i in range(len(_HEAD))]
    for r in [list(_HEAD), *rows]:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    slowest = run.slowest
    if slowest is not None and slowest.share is not None:
        lines.append(f"slowest backward: layer {slowest.index} {slowest.name}, "
                     f"{format_seconds(slowest.backward.median)}, {100 * slowest.share:.0f}% "
                     "of the network's backward")
    if whole.floor is not None:
        lines.append(f"floor: {whole.floor_text}, timed alone: "
                     f"{format_seconds(whole.floor.median)}; backward / floor = "
                     f"{whole.backward_over_floor:.2f}")
        if whole.step_floor is not None and whole.step_over_floor is not None:
            lines.append(f"forward + backward / the step's matrix products alone "
                         f"({format_seconds(whole.step_floor.median)}) = "
                         f"{whole.step_over_floor:.2f}")
    else:
        lines.append(f"floor: none known ({whole.floor_text})")
    lines += [f"note: {note}" for note in run.notes]
    return lines
