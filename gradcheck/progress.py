"""Progress of a long check: the ``progress`` option as a callback.

``progress=True`` draws a bar on stderr when stderr is a terminal (and nothing otherwise);
a callable is called as ``progress(done, total)`` about twice a second, counting the
coordinates of every tensor.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

ProgressFn = Callable[[int, int], None]


class ProgressBar:
    """A one-line bar, redrawn in place: ``checking [#####.....] 512/1024``."""

    def __init__(self, stream: TextIO, label: str = "checking", width: int = 30) -> None:
        self.stream, self.label, self.width = stream, label, width
        self.drawn = False
        self.started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        filled = int(self.width * done / total) if total else self.width
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{done}/{total}  {elapsed:.0f} s")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def progress_callback(option: ProgressFn | bool | None) -> ProgressFn | None:
    """The callback for a ``progress`` option value.

    >>> progress_callback(None) is None, progress_callback(False) is None
    (True, True)
    """
    if option is None or option is False:
        return None
    if option is True:
        return ProgressBar(sys.stderr) if sys.stderr.isatty() else None
    return option
