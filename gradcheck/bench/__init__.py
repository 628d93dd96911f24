"""Benchmark a layer's backward pass: forward and backward timed apart, per dtype; for a
network each sublayer's share, so the slow one is named; bytes allocated per backward;
and the matrix products it cannot do without (its floor) where one is known.

What is timed, per dtype, in alternating blocks (:mod:`gradcheck.timing`):

* ``forward``: ``layer.forward(x)``;
* ``backward``: ``layer.backward(g)``, each call after a fresh, untimed ``forward(x)``, as
  in training (``g``: the upstream gradient, drawn as ``check_layer`` draws it for the
  same seed, or ``upstream=``);
* for a network (a layer with a ``layers`` list: :func:`~gradcheck.bench.probe.sublayers`),
  the network's forward and backward again with each sublayer's methods timed where the
  network calls them (:class:`~gradcheck.bench.probe.LayerProbe`);
* the floor (:mod:`gradcheck.bench.floor`): for a Dense-like layer its matrix products
  alone, for a network those of its Dense-like sublayers when every sublayer with params
  is Dense-like, and the step's products (the forward's ``x @ W`` too).

Allocations are measured after the timing, on one more backward, with tracemalloc
(:mod:`gradcheck.bench.memory`): they slow the code down and are never mixed with times.

>>> import numpy as np, gradcheck as gc
>>> from reference_nets import Dense, ReLU, Sequential
>>> net = Sequential(Dense(4, 8, rng=0), ReLU(), Dense(8, 3, rng=1))
>>> report = gc.benchmark_layer(net, np.ones((16, 4)), rounds=2, min_time=0)
>>> [row.name for row in report.runs[0].layers]
['Dense(4, 8, dtype=float64)', 'ReLU(grad_at_zero=0.0)', 'Dense(8, 3, dtype=float64)']
>>> report.runs[0].whole.floor is not None   # every layer with params is Dense-like
True
"""
from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.bench.floor import DenseFloor, NoFloor, dense_floor
from gradcheck.bench.memory import AllocationTracer, measure_allocations
from gradcheck.bench.probe import NETWORK, LayerProbe, sublayers
from gradcheck.bench.report import BenchmarkReport, DtypeBenchmark, LayerTimes
from gradcheck.errors import GradcheckUsageError
from gradcheck.timing import Contender, Measurement, Timing, calibrate_reps, measure_calmly

__all__ = ["BenchmarkReport", "Case", "Settings", "benchmark_cases", "benchmark_layer",
           "blas_threads"]

#: blocks per contender
ROUNDS = 7
#: seconds a block of one contender lasts at least (calls per block are set from this)
MIN_TIME = 0.02
#: a measurement while other processes used more than this % of the CPU is repeated
BUSY = 10.0
THREADPOOLCTL_HINT = "pip install threadpoolctl"


@dataclass(frozen=True)
class Settings:
    """How to measure (the keyword options of :func:`benchmark_layer`)."""

    rounds: int = ROUNDS
    min_time: float = MIN_TIME
    threads: int | None = None
    busy: float = BUSY
    retries: int = 1
    pause: float = 0.0
    seed: int = 0
    upstream: Any = None
    per_layer: bool = True

    def validate(self) -> None:
        if not isinstance(self.rounds, int) or self.rounds < 1:
            raise GradcheckUsageError(f"rounds={self.rounds!r}: give a whole number >= 1")
        if not self.min_time >= 0:
            raise GradcheckUsageError(f"min_time={self.min_time!r}: give seconds >= 0")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise GradcheckUsageError(f"retries={self.retries!r}: give a whole number >= 0")
        if not self.pause >= 0:
            raise GradcheckUsageError(f"pause={self.pause!r}: give seconds >= 0")
        if self.threads is not None:
            if not isinstance(self.threads, int) or self.threads < 1:
                raise GradcheckUsageError(f"threads={self.threads!r}: give a whole number "
                                          ">= 1, or None for the BLAS library's default")
            if importlib.util.find_spec("threadpoolctl") is None:
                raise GradcheckUsageError(
                    f"threads={self.threads}: pinning numpy's BLAS threads needs threadpoolctl, "
                    f"which is not installed: {THREADPOOLCTL_HINT} (or set "
                    f"OPENBLAS_NUM_THREADS={self.threads} and OMP_NUM_THREADS={self.threads} "
                    "before Python starts, and leave threads unset)")


@dataclass(frozen=True)
class Case:
    """One layer and input to time: ``dtype`` names the run in the report."""

    dtype: str
    layer: Any
    x: np.ndarray


def blas_threads() -> str:
    """The BLAS thread pools numpy uses now, as threadpoolctl sees them ("2 (openblas)"),
    or what is known without threadpoolctl."""
    if importlib.util.find_spec("threadpoolctl") is None:
        import os

        pinned = [f"{v}={os.environ[v]}" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                   "MKL_NUM_THREADS") if v in os.environ]
        known = f"{', '.join(pinned)}; " if pinned else ""
        return (f"{known}not known ({THREADPOOLCTL_HINT} to see and pin them; this machine "
                f"has {os.cpu_count()} CPUs)")
    import threadpoolctl

    pools = [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
    if not pools:
        return "no BLAS thread pool found"
    return ", ".join(f"{p['num_threads']} ({p.get('internal_api', '?')})" for p in pools)


def benchmark_layer(
    layer: Any,
    x: Any,
    *,
    dtypes: Sequence[str] | None = None,
    upstream: Any = None,
    seed: int = 0,
    rounds: int = ROUNDS,
    min_time: float = MIN_TIME,
    threads: int | None = None,
    busy: float = BUSY,
    retries: int = 1,
    pause: float = 0.0,
    per_layer: bool = True,
    name: str | None = None,
) -> BenchmarkReport:
    """Time ``layer``'s forward and backward on ``x``; see :mod:`gradcheck.bench`.

    ``layer`` is a layer (timed in ``x``'s dtype), or with ``dtypes=("float32",
    "float64")`` a factory that takes ``dtype=`` and returns a fresh layer (``x`` is cast
    to each dtype). ``rounds`` blocks per contender, each lasting at least ``min_time``
    seconds (``rounds=2, min_time=0`` for a quick look, as tests use); ``threads`` pins
    numpy's BLAS threads for the measurement (needs threadpoolctl); a measurement during
    which other processes took more than ``busy`` percent of the CPU is made again, at
    most ``retries`` times, and marked disturbed if it stays above. ``pause`` seconds
    before each block (when another library's threads must quiet down first).
    ``per_layer=False`` times a network as a whole only (its floor is still found).

    >>> import numpy as np, gradcheck as gc
    >>> from gradcheck.examples.layers import Dense
    >>> report = gc.benchmark_layer(Dense, np.ones((8, 4)), dtypes=["float32", "float64"],
    ...                             rounds=2, min_time=0)
    >>> [run.dtype for run in report.runs], report.runs[0].whole.floor_text
    (['float32', 'float64'], 'dW = x.T @ g, dx = g @ W.T at x (8, 4), W (4, 3)')
    """
    settings = Settings(rounds, min_time, threads, busy, retries, pause, seed, upstream,
                        per_layer)
    settings.validate()
    array = np.asarray(x)
    if not np.issubdtype(array.dtype, np.floating):
        raise GradcheckUsageError(f"x: a float array is needed, got dtype {array.dtype}")
    if dtypes is None:
        _check_layer_protocol(layer)
        cases = [Case(array.dtype.name, layer, array)]
        label = name or _layer_name(layer)
    else:
        cases = _factory_cases(layer, array, dtypes)
        label = name or str(getattr(layer, "__qualname__", type(layer).__name__))
    return benchmark_cases(cases, label, settings)


def _factory_cases(factory: Any, x: np.ndarray, dtypes: Sequence[str]) -> list[Case]:
    from gradcheck.loading import _accepts

    if isinstance(dtypes, str):
        dtypes = [d.strip() for d in dtypes.split(",")]
    if callable(getattr(factory, "forward", None)) and not isinstance(factory, type):
        raise GradcheckUsageError(
            "dtypes: a layer instance is timed in x's dtype only; to time several dtypes "
            "pass a factory that takes dtype= (a class such as Dense works) instead")
    if not callable(factory) or not _accepts(factory, "dtype"):
        raise GradcheckUsageError(
            f"dtypes: {getattr(factory, '__name__', factory)!r} must be a factory that takes "
            "dtype= and returns a fresh layer")
    cases = []
    for dtype in dtypes:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise GradcheckUsageError(f"dtypes: {dtype!r} is not a dtype") from None
        if not np.issubdtype(dt, np.floating):
            raise GradcheckUsageError(f"dtypes: {dt} is not a float dtype")
        layer = factory(dtype=dt)
        _check_layer_protocol(layer)
        cases.append(Case(dt.name, layer, x.astype(dt)))
    return cases


def _check_layer_protocol(layer: Any) -> None:
    if isinstance(layer, type):
        raise GradcheckUsageError(
            f"layer is the class {layer.__qualname__}, not a layer: pass an instance, or "
            "pass the class with dtypes=[...] to build one per dtype")
    for method in ("forward", "backward"):
        if not callable(getattr(layer, method, None)):
            raise GradcheckUsageError(
                f"layer ({type(layer).__name__}) has no {method}() method: a layer needs "
                "forward(x) -> y and backward(grad_y) -> grad_x")


def _layer_name(layer: Any) -> str:
    """A short name: the repr when it is short and informative, else the class name."""
    text = repr(layer)
    if len(text) > 60 or " object at 0x" in text:
        text = type(layer).__name__
    inner = sublayers(layer)
    return f"{text} ({len(inner)} layers)" if inner and len(text) > 40 else text


def benchmark_cases(cases: Sequence[Case], label: str, settings: Settings | None = None,
                    progress: Callable[[str], object] | None = None) -> BenchmarkReport:
    """Measure each case (one per dtype) with ``settings``; the report calls the layer
    ``label``. ``progress(text)`` hears about re-measurements of a disturbed run."""
    from gradcheck.parallel import limited_threads

    settings = settings or Settings()
    settings.validate()
    runs = []
    with limited_threads(settings.threads):
        threads = blas_threads()
        for case in cases:
            runs.append(_measure_case(case, label, settings, progress))
    return BenchmarkReport(label, runs, threads, {
        "rounds": settings.rounds, "min_time": settings.min_time,
        "threads": settings.threads, "busy": settings.busy, "retries": settings.retries,
        "pause": settings.pause, "seed": settings.seed})


# --------------------------------------------------------------------------- one dtype


def _measure_case(case: Case, label: str, settings: Settings,
                  progress: Callable[[str], object] | None) -> DtypeBenchmark:
    from gradcheck.upstream import drawn_upstream

    layer, x = case.layer, case.x
    y = layer.forward(x)
    if y is None:
        raise GradcheckUsageError(f"{label}: forward returned None; it must return the output")
    g = drawn_upstream(np.asarray(y), settings.upstream, settings.seed, label)
    dx = layer.backward(g)
    notes: list[str] = []

    # a network: one pass with its sublayers' methods wrapped records what each receives
    # (for their floors); per_layer adds their times to the measurement
    inner = sublayers(layer)
    probe: LayerProbe | None = None
    if inner is not None:
        probe = LayerProbe(inner)
        try:
            probe.install()
        except (AttributeError, TypeError):
            notes.append("its sublayers' methods cannot be wrapped (__slots__?): no per-layer "
                         "figures and no floor")
            probe = None
        else:
            try:
                probe.record = True
                layer.forward(x)
                layer.backward(g)
            finally:
                probe.record = False
                probe.uninstall()

    floors: dict[int, DenseFloor | NoFloor] = {}
    if probe is not None:
        for i in probe.unique:
            fwd, bwd = probe.calls.get((i, "forward")), probe.calls.get((i, "backward"))
            if fwd is None or bwd is None:
                floors[i] = NoFloor("the network did not call its forward and backward")
            else:
                floors[i] = dense_floor(getattr(probe.layers[i], "params", None), fwd[0],
                                        fwd[1], bwd[0], bwd[1])
        whole_floor = _network_floor(probe, floors)
    else:
        single = dense_floor(getattr(layer, "params", None), np.asarray(x), y, g, dx)
        whole_floor = single if isinstance(single, NoFloor) else _Floors([(None, single)])

    contenders: dict[str, Contender] = {
        "forward": Contender(lambda: layer.forward(x)),
        "backward": Contender(lambda: layer.backward(g), setup=lambda: layer.forward(x)),
    }
    if isinstance(whole_floor, _Floors):
        contenders["floor"] = Contender(whole_floor.backward)
        contenders["step_floor"] = Contender(whole_floor.step)
    timed_layers = probe if settings.per_layer else None
    if timed_layers is not None:
        for i, floor in floors.items():
            if isinstance(floor, DenseFloor):
                contenders[f"floor:{i}"] = Contender(floor.backward)
        p = timed_layers

        def instrumented() -> None:
            p.time_network("forward", lambda: layer.forward(x))
            p.time_network("backward", lambda: layer.backward(g))

        def after(timed: bool) -> None:
            p.uninstall()
            p.keep(timed)

        contenders["layers"] = Contender(instrumented, setup=p.install, after=after)
    records: list[dict[int, dict[str, list[float]]]] = []

    def new_attempt() -> None:
        if timed_layers is not None:
            timed_layers.reset()
            records.append(timed_layers.samples)

    def say(percent: float) -> None:
        if progress is not None:
            progress(f"{label} {case.dtype}: other processes took {percent:.0f}% of the CPU; "
                     "measuring again")

    try:
        reps = {key: calibrate_reps(c, settings.min_time) for key, c in contenders.items()}
        m = measure_calmly(contenders, settings.rounds, reps, pause=settings.pause,
                           busy=settings.busy, retries=settings.retries, on_retry=say,
                           before_attempt=new_attempt)
    finally:  # the layer's own methods back, also when its code raised
        if probe is not None:
            probe.uninstall()
    whole = _whole_times(label if probe is None else "network", m, whole_floor)
    layer.forward(x)
    whole.allocated, whole.peak = measure_allocations(lambda: layer.backward(g))
    rows: list[LayerTimes] = []
    between: float | None = None
    if timed_layers is not None:
        seen = records[m.kept]
        rows = _layer_rows(layer, x, g, timed_layers, seen, floors, m)
        # per call: the network's backward less its sublayers' (never below 0), then median
        between = Timing(tuple(
            t - math.fsum(seen[i]["backward"][k] for i in timed_layers.unique)
            for k, t in enumerate(seen[NETWORK]["backward"]))).median
    return DtypeBenchmark(case.dtype, tuple(np.shape(x)), whole, rows, m.others_cpu_percent,
                          m.disturbed, m.attempts, settings.busy, notes, between)


class _Floors:
    """The floor of a network: its Dense-like sublayers' products, one after the other."""

    def __init__(self, floors: Sequence[tuple[int | None, DenseFloor]]) -> None:
        self.floors = floors  # (sublayer index, its floor); index None: the layer itself

    def backward(self) -> None:
        for _, floor in self.floors:
            floor.backward()

    def step(self) -> None:
        for _, floor in self.floors:
            floor.forward()
        self.backward()

    def describe(self) -> str:
        if len(self.floors) == 1 and self.floors[0][0] is None:
            return self.floors[0][1].describe()
        layers = ", ".join(str(i) for i, _ in self.floors)
        kinds = sorted({f.describe().split(" at ")[0] for _, f in self.floors})
        return f"the matrix products of layers {layers} ({'; '.join(kinds)})"


def _network_floor(probe: LayerProbe, floors: dict[int, DenseFloor | NoFloor]
                   ) -> _Floors | NoFloor:
    """The network's floor when every sublayer with params is Dense-like (parameter-free
    sublayers, activations and loss heads, add only elementwise work, left out as in any
    floor); else why not."""
    dense: list[tuple[int | None, DenseFloor]] = []
    for i in probe.unique:
        floor = floors[i]
        if isinstance(floor, DenseFloor):
            dense.append((i, floor))
        elif getattr(probe.layers[i], "params", None):
            return NoFloor(f"layer {i} {_layer_name(probe.layers[i])} has params and is not "
                           f"Dense-like: {floor.reason}")
    if not dense:
        return NoFloor("no layer uses its params as a matrix product")
    return _Floors(dense)


def _whole_times(name: str, m: Measurement, floor: _Floors | NoFloor) -> LayerTimes:
    t = m.timings
    if isinstance(floor, _Floors):
        return LayerTimes(name, t["forward"], t["backward"], floor=t["floor"],
                          step_floor=t["step_floor"], floor_text=floor.describe())
    return LayerTimes(name, t["forward"], t["backward"], floor_text=floor.reason)


def _layer_rows(layer: Any, x: Any, g: Any, probe: LayerProbe,
                samples: dict[int, dict[str, list[float]]],
                floors: dict[int, DenseFloor | NoFloor], m: Measurement) -> list[LayerTimes]:
    tracer = AllocationTracer()
    layer.forward(x)
    with probe.installed():
        probe.tracer = tracer
        try:
            tracer.run("network", lambda: layer.backward(g))
        finally:
            probe.tracer = None
    rows = []
    # shares: of the network's backward in the same (instrumented) calls as the sublayers'
    network = samples[NETWORK]["backward"]
    total = Timing(tuple(network)).median
    for i in probe.unique:
        sub = probe.layers[i]
        backward = Timing(tuple(samples[i]["backward"]))
        floor = floors[i]
        tally = tracer.results.get((i, "backward"))
        rows.append(LayerTimes(
            _layer_name(sub), Timing(tuple(samples[i]["forward"])), backward,
            allocated=None if tally is None else tally.allocated,
            peak=None if tally is None else tally.peak,
            floor=m.timings.get(f"floor:{i}"),
            floor_text=floor.describe() if isinstance(floor, DenseFloor) else floor.reason,
            index=i, share=backward.median / total if total > 0 else None))
    return rows
