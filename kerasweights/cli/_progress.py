"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 80


class Progress:
    """``with Progress(total, "export") as bar: bar.advance()``; silent when not a TTY."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None, delay: float = 0.0) -> None:
        """``delay``: seconds before the first draw, so quick work shows no bar at all."""
        self.total = max(total, 0)
        self.label = label
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty()) and self.total > 0
        self._drawn = 0.0
        self._quiet_until = time.monotonic() + delay

    def advance(self, step: int = 1) -> None:
        self.done = min(self.total, self.done + step)
        now = time.monotonic()
        if (
            self.enabled and now >= self._quiet_until and (now - self._drawn > 0.1 or self.done == self.total)
        ):  # no flicker on fast steps
            self._drawn = now
            self._draw()

    def _draw(self) -> None:
        counts = f" {self.done}/{self.total}"
        bar_width = max(10, WIDTH - 1 - len(self.label) - len(counts) - 3)
        filled = bar_width * self.done // self.total
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (bar_width - filled)}]{counts}")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the bar (so a line can be printed); the next :meth:`advance` draws it again."""
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * (WIDTH - 1) + "\r")
            self.stream.flush()

    def close(self) -> None:
        self.clear()  # leave the line clean for what follows

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
