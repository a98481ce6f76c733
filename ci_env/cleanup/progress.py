"""Progress of a long run: a live bar on a terminal, a line now and then in CI logs.

Planning counts tags (resolved of listed), applying counts operations (done of planned); a
total may `grow` while the run goes (tags listed as repositories are, plans as they are final).
CI logs are not terminals: carriage returns pile up there, so off a TTY we print one plain
line (done/total, rate, ETA) every `interval` seconds instead. On a terminal one bar holds the
line at a time: a bar `held` counts silently until `release` (the deletions' bar waits for the
planning bar to close). Thread-safe: workers advance it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

_BAR = 30


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    def __init__(
        self,
        total: int,
        out: TextIO,
        *,
        tty: bool,
        interval: float = 10.0,
        label: str = "cleanup",
        clock: Callable[[], float] = time.monotonic,
        unit: str = "",
        held: bool = False,
    ) -> None:
        self.total = total
        self.out = out
        self.tty = tty
        self.interval = interval if not tty else 0.2
        self.label = label
        self.clock = clock
        self.unit = f" {unit}" if unit else ""
        self.held = held
        self.done = 0
        self.start = clock()
        self.last = self.start
        self._lock = threading.Lock()

    def line(self) -> str:
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.done / elapsed
        left = self.total - self.done
        eta = _eta(left / rate) if rate > 0 else "?"
        text = f"{self.done}/{self.total}{self.unit} {rate:.1f}/s ETA {eta}"
        if self.tty:
            filled = _BAR * self.done // max(self.total, 1)
            return f"\r{self.label} [{'#' * filled}{'.' * (_BAR - filled)}] {text}"
        return f"{self.label}: {text}"

    def grow(self, count: int) -> None:
        """More to do than first known (tags listed, plans made final)."""
        with self._lock:
            self.total += count

    def release(self) -> None:
        with self._lock:
            self.held = False

    def advance(self, count: int = 1) -> None:
        with self._lock:
            self.done += count
            now = self.clock()
            if now - self.last >= self.interval and not self.held:
                self.last = now
                self._emit()

    def _emit(self) -> None:
        self.out.write(self.line() if self.tty else self.line() + "\n")
        self.out.flush()

    def close(self) -> None:
        with self._lock:
            if self.total == 0:
                return
            if self.tty:
                self.out.write(self.line() + "\n")
                self.out.flush()
            elif self.done and self.clock() - self.start >= self.interval:
                self._emit()
