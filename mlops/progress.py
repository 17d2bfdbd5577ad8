"""Progress lines for the person running a pipeline: one line per step event.

They go through :func:`mlops.console.say`: a reader that closed the stream stops them, not the
run.
"""

from __future__ import annotations

import sys
import threading
from typing import IO

from .console import say

__all__ = ["Progress"]


class Progress:
    """One line per step event on a stream: started, cached, done, failed."""

    def __init__(self, total: int, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.width = 12
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}

    def event(self, step: str, what: str, seconds: float | None = None, note: str = "") -> None:
        if not self.enabled:
            return
        with self._lock:
            n = self._index.setdefault(step, len(self._index) + 1)
            t = f"{seconds:7.2f}s" if seconds is not None else " " * 8
            line = f"  [{n}/{self.total}] {step:<{self.width}} {what:<8}{t}"
            say(line + (f"  {note}" if note else ""), self.stream)
