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


class ProgressBar:
    """A one-line bar, redrawn in place: ``checking [#####.....] 512/1024 (50%)  3 s``.

    Nothing is drawn before ``delay`` seconds have passed (a short check stays silent);
    :meth:`close` erases the line, so the report that follows starts on a clean line.

    >>> import io
    >>> stream = io.StringIO()
    >>> bar = ProgressBar(stream, width=10)
    >>> bar(5, 10); bar.close()
    >>> "[#####.....] 5/10 (50%)" in stream.getvalue(), stream.getvalue().endswith("\\r")
    (True, True)
    """

    def __init__(self, stream: TextIO, label: str = "checking", width: int = 30,
                 delay: float = 0.0) -> None:
        self.stream, self.label, self.width, self.delay = stream, label, width, delay
        self.started = time.monotonic()
        self._drawn = 0  # length of the line on screen

    def __call__(self, done: int, total: int) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed < self.delay:
            return
        total = max(total, done)
        filled = self.width * done // total if total else self.width
        percent = f" ({100 * done // total}%)" if total else ""
        text = (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done}/{total}{percent}  {elapsed:.0f} s")
        self.stream.write("\r" + text.ljust(self._drawn))
        self.stream.flush()
        self._drawn = max(self._drawn, len(text))

    def close(self) -> None:
        """Erase the bar (if one was drawn)."""
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0


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
