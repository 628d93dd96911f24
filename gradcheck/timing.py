"""Wall-clock timing that survives a shared machine: the one toolkit behind
:func:`gradcheck.benchmark_layer`, ``gradcheck bench`` and ``tests/benchmarks/bench_table.py``.

* **Alternating blocks.** Things that are compared (a backward and its matrix products
  alone) are timed in turns, ``rounds`` blocks of ``reps`` calls each: every contender sees
  the same machine load over the run, so the ratio of their medians is far steadier than
  either time. The first call of every block is not timed (it wakes the BLAS thread pool
  and refills the caches); an optional pause before each block lets another library's
  worker threads stop spinning (numpy's OpenBLAS and torch's OpenMP slow each other down
  for ~0.1 s after their last call).
* **Medians and spread.** A :class:`Timing` keeps every timed call; it reports the median
  and the interquartile range, which a few calls interrupted by another process do not move.
* **Who else used the CPU.** :func:`cpu_snapshot` / :func:`others_cpu_percent` read
  /proc/stat (Linux): the share of the machine's CPU time used by *other* processes while
  we measured. :func:`measure_calmly` measures again when that share is above a threshold
  and keeps the least disturbed attempt, marked disturbed if it is still above.

>>> calls = []
>>> m = measure_calmly({"a": Contender(lambda: calls.append("a")),
...                     "b": Contender(lambda: calls.append("b"))}, rounds=2, reps=3)
>>> sorted(m.timings), len(m.timings["a"].samples), "".join(calls)
(['a', 'b'], 6, 'aaaabbbbaaaabbbb')
"""
from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PAUSE",
    "Contender",
    "Measurement",
    "Timing",
    "alternate",
    "calibrate_reps",
    "cpu_snapshot",
    "measure_calmly",
    "others_cpu_percent",
]

#: seconds between blocks when numpy is compared with another library (torch): OpenBLAS
#: worker threads keep spinning for ~0.1 s after numpy's last product, and torch's OpenMP
#: threads after torch's; a torch block started right after a numpy block ran 2x slower
PAUSE = 0.25

CpuSnapshot = tuple[int, int, float]


@dataclass(frozen=True)
class Timing:
    """The timed calls of one contender, in seconds, and what they say.

    >>> t = Timing((1.0, 2.0, 3.0, 4.0, 100.0))
    >>> t.median, t.q1, t.q3, round(t.spread, 3)
    (3.0, 2.0, 4.0, 0.333)
    """

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan

    @property
    def q1(self) -> float:
        """The lower quartile (the median when there are fewer than 2 calls)."""
        if len(self.samples) < 2:
            return self.median
        return statistics.quantiles(self.samples, n=4, method="inclusive")[0]

    @property
    def q3(self) -> float:
        """The upper quartile."""
        if len(self.samples) < 2:
            return self.median
        return statistics.quantiles(self.samples, n=4, method="inclusive")[2]

    @property
    def spread(self) -> float:
        """Half the interquartile range relative to the median: 0.05 reads "±5 %"."""
        median = self.median
        return (self.q3 - self.q1) / 2 / median if median > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """Seconds: median, quartiles, min, max and the number of timed calls."""
        return {"median": self.median, "q1": self.q1, "q3": self.q3,
                "min": min(self.samples, default=math.nan),
                "max": max(self.samples, default=math.nan), "calls": len(self.samples)}


@dataclass
class Contender:
    """One thing to time: ``run()``, after ``setup()`` (untimed) when given.

    ``after(timed)`` is told, after every call, whether that call was timed (the first
    call of each block is not): a contender that records figures of its own during
    ``run`` (per-layer times) keeps those of the timed calls only.
    """

    run: Callable[[], object]
    setup: Callable[[], object] | None = None
    after: Callable[[bool], object] | None = None


def alternate(contenders: Mapping[str, Contender], rounds: int, reps: int | Mapping[str, int],
              pause: float = 0.0) -> dict[str, Timing]:
    """Time the contenders in alternating blocks: ``rounds`` times, each contender in turn
    runs ``reps`` timed calls (an int for all, or one per contender) after one untimed call.

    >>> alternate({"noop": Contender(lambda: None)}, rounds=3, reps=2)["noop"].samples.__len__()
    6
    """
    samples: dict[str, list[float]] = {key: [] for key in contenders}
    clock = time.perf_counter
    for _ in range(rounds):
        for key, contender in contenders.items():
            if pause:
                time.sleep(pause)
            n = reps if isinstance(reps, int) else reps[key]
            setup, run, after = contender.setup, contender.run, contender.after
            for rep in range(n + 1):
                if setup is not None:
                    setup()
                t0 = clock()
                run()
                elapsed = clock() - t0
                if rep:  # the first call of a block wakes the thread pool: untimed
                    samples[key].append(elapsed)
                if after is not None:
                    after(rep > 0)
    return {key: Timing(tuple(v)) for key, v in samples.items()}


def calibrate_reps(contender: Contender, min_time: float, max_reps: int = 10_000) -> int:
    """Calls per block so that a block lasts at least ``min_time`` seconds (at least 1),
    from two calls of the contender (the first one a warm-up)."""
    clock = time.perf_counter
    elapsed = math.inf
    for _ in range(2):
        if contender.setup is not None:
            contender.setup()
        t0 = clock()
        contender.run()
        elapsed = clock() - t0
        if contender.after is not None:
            contender.after(False)
    if elapsed <= 0:
        return max_reps
    return max(1, min(max_reps, math.ceil(min_time / elapsed)))


def cpu_snapshot() -> CpuSnapshot | None:
    """(all jiffies, idle jiffies, this process's CPU seconds) from /proc/stat, or None
    where there is no /proc/stat."""
    try:
        with open("/proc/stat") as stat:
            jiffies = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    times = os.times()  # every thread of this process (the BLAS pool included)
    return sum(jiffies), jiffies[3] + jiffies[4], times.user + times.system


def others_cpu_percent(before: CpuSnapshot | None, after: CpuSnapshot | None) -> float | None:
    """Share (%) of the machine's CPU time used by *other* processes between two snapshots
    (steal time counts as theirs: the hypervisor gave our cores to someone else); None
    when unknown."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    total = (after[0] - before[0]) / hz
    busy = total - (after[1] - before[1]) / hz
    return max(0.0, 100.0 * (busy - (after[2] - before[2])) / total)


@dataclass
class Measurement:
    """The timings of the least disturbed attempt, the share of the CPU other processes
    used meanwhile (None where unknown), whether that share stayed above ``busy``, which
    attempt was kept (0 for the first) and how many were made."""

    timings: dict[str, Timing]
    others_cpu_percent: float | None
    disturbed: bool
    kept: int = 0
    attempts: int = 1
    busy: float = 10.0


def measure_calmly(contenders: Mapping[str, Contender], rounds: int,
                   reps: int | Mapping[str, int], *, pause: float = 0.0, busy: float = 10.0,
                   retries: int = 0, on_retry: Callable[[float], object] | None = None,
                   before_attempt: Callable[[], object] | None = None) -> Measurement:
    """:func:`alternate`, measured again (at most ``retries`` times) while other processes
    took more than ``busy`` percent of the CPU; the least disturbed attempt is kept.

    ``on_retry(percent)`` is called before each new attempt (to say so on stderr);
    ``before_attempt()`` before every attempt (a contender that records figures of its own
    starts a new record; ``Measurement.kept`` says which one to read).
    """
    best: Measurement | None = None
    best_score = math.inf
    for attempt in range(1 + retries):
        if before_attempt is not None:
            before_attempt()
        before = cpu_snapshot()
        timings = alternate(contenders, rounds, reps, pause)
        others = others_cpu_percent(before, cpu_snapshot())
        score = others if others is not None else 0.0
        if score < best_score:
            best_score = score
            best = Measurement(timings, others, score > busy, attempt, attempt + 1, busy)
        assert best is not None
        best.attempts = attempt + 1
        if score <= busy:
            break
        if attempt < retries and on_retry is not None:
            on_retry(score)
    assert best is not None
    return best


def format_seconds(seconds: float | None) -> str:
    """A time with a unit that keeps 3 significant digits.

    >>> format_seconds(2.5e-5), format_seconds(0.0123), format_seconds(1.5)
    ('25.0 µs', '12.3 ms', '1.50 s')
    """
    if seconds is None or not math.isfinite(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale or unit == "µs":
            value = seconds / scale
            digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
            return f"{value:.{digits}f} {unit}"
    return f"{seconds:g} s"  # pragma: no cover
