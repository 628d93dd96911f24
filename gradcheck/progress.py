"""Progress of a long check: the ``progress`` option as a callback.

``progress=True`` draws a bar on stderr when stderr is a terminal (and nothing otherwise);
a callable is called as ``progress(done, total)`` about twice a second (the engine
throttles), counting the coordinates of every tensor. The command line draws the same
bar, from the first second of a check on.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

ProgressFn = Callable[[int, int], None]

#: The time left is shown once this share of the work is done and this many seconds have
#: passed: before that, the rate of a few coordinates (the first ones pay for setting up
#: the check) says little about the rest.
ETA_AFTER_FRACTION = 0.05
ETA_AFTER_SECONDS = 2.0


class ProgressBar:
    """A one-line bar, redrawn in place:
    ``checking [#####.....] 512/1024 (50%)  3 s, about 3 s left``.

    Nothing is drawn before ``delay`` seconds have passed (a short check stays silent);
    the time left (from the rate so far, done / elapsed) joins once it means something
    (:data:`ETA_AFTER_FRACTION`, :data:`ETA_AFTER_SECONDS`); :meth:`close` erases the line,
    so the report that follows starts on a clean line. ``clock`` is for tests.

    >>> import io
    >>> stream, now = io.StringIO(), [0.0]
    >>> bar = ProgressBar(stream, width=10, clock=lambda: now[0])
    >>> bar(5, 10)
    >>> stream.getvalue().split("\\r")[-1]
    'checking [#####.....] 5/10 (50%)  0 s'
    >>> now[0] = 150.0; bar(6, 10)
    >>> stream.getvalue().split("\\r")[-1]
    'checking [######....] 6/10 (60%)  2 min 30 s, about 1 min 40 s left'
    >>> bar.close(); stream.getvalue().endswith("\\r")
    True
    """

    def __init__(self, stream: TextIO, label: str = "checking", width: int = 30,
                 delay: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.label, self.width, self.delay = stream, label, width, delay
        self.clock = clock
        self.started = clock()
        self._drawn = 0  # length of the line on screen

    def __call__(self, done: int, total: int) -> None:
        elapsed = self.clock() - self.started
        if elapsed < self.delay:
            return
        total = max(total, done)
        filled = self.width * done // total if total else self.width
        percent = f" ({100 * done // total}%)" if total else ""
        text = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done}/{total}{percent}  {duration(elapsed)}")
        left = time_left(done, total, elapsed)
        if left is not None:
            text += f", about {duration(left)} left"
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = max(self._drawn, len(text))

    def close(self) -> None:
        """Erase the bar (if one was drawn)."""
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0


def time_left(done: int, total: int, elapsed: float) -> float | None:
    """Seconds left at the rate so far, or None while that rate means little (too little
    done, too little time passed) or when nothing is left.

    >>> time_left(50, 100, 10.0), time_left(2, 100, 10.0), time_left(50, 100, 1.0)
    (10.0, None, None)
    """
    if (done <= 0 or done >= total or done < ETA_AFTER_FRACTION * total
            or elapsed < ETA_AFTER_SECONDS):
        return None
    return elapsed * (total - done) / done


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 10 min``: rounded to what a person reads.

    >>> duration(4.4), duration(185), duration(7800)
    ('4 s', '3 min 05 s', '2 h 10 min')
    """
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def progress_callback(option: ProgressFn | bool | None, delay: float = 0.0
                      ) -> ProgressFn | None:
    """The callback for a ``progress`` option value: a bar on a terminal for True.

    >>> progress_callback(None) is None, progress_callback(False) is None
    (True, True)
    """
    if option is None or option is False:
        return None
    if option is True:
        return ProgressBar(sys.stderr, delay=delay) if sys.stderr.isatty() else None
    return option
