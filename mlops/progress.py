"""Progress for the person running a pipeline: a live line on a terminal, plain lines otherwise.

**Plain lines** (piped, redirected, ``CI`` set, ``TERM=dumb``, ``MLOPS_PROGRESS=plain``, or
mlops's console handler not in use): one line per step event -- started, done, cached, failed --
each a record of the ``mlops.progress`` logger (:mod:`mlops.console`), exactly as before.
(``NO_COLOR`` asks for no colour; the live line has none, so it stays live.)

**On a terminal** the started lines are replaced by one status line at the bottom, redrawn in
place (``\\r`` and ``ESC[K``, erase to end of line) with each running step's elapsed time::

      running  train 3.2s, evaluate 0.4s

Several steps running at once (the threads executor) share that one line. When a step ends its
final line (``done 4.10s``, ``cached``, ``failed``) is printed above the status line, which is
then drawn again for the steps still running. A ticker thread refreshes the elapsed times four
times a second while something runs; :meth:`Progress.close` (the run's end, an error, Ctrl-C)
stops it and erases the line, so the cursor ends at the start of a fresh line.

Anything else written to the terminal meanwhile -- mlops's own lines, a step's ``print`` in this
process -- first erases the status line, which the ticker draws again once the cursor is back at
the start of a line. (Steps under ``executor=processes`` or ``distributed`` run in other
processes: they are shown when they end, and what they print is not coordinated with the line.)
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from typing import IO, Any

from . import console
from .console import TERMINAL_LOCK, say

__all__ = ["Progress", "live_terminal"]

#: seconds between two redraws of the status line
TICK = 0.25
_ERASE = "\r\x1b[K"
_LOGGER = "mlops.progress"


def live_terminal(stream: Any) -> bool:
    """Whether progress on ``stream`` may be drawn in place (see the module docstring)."""
    env = os.environ
    if env.get("MLOPS_PROGRESS", "").lower() == "plain" or env.get("TERM") == "dumb":
        return False
    if env.get("CI", "").lower() not in ("", "0", "false"):
        return False
    if console.HANDLER not in logging.getLogger("mlops").handlers:
        return False  # mlops's lines were routed elsewhere: records, not terminal drawing
    if not logging.getLogger(_LOGGER).isEnabledFor(logging.INFO):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class Progress:
    """Step events of one run, shown on ``stream`` (default stdout).

    Args:
        total: the number of steps (lines say ``[3/5]``).
        stream: where the lines go.
        enabled: False shows nothing (benchmarks, quiet runs).
    """

    def __init__(self, total: int, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.width = 12
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}
        self._live: _LiveLine | None = None
        self._live_decided = False

    def _line(self, step: str, what: str, seconds: float | None, note: str) -> str:
        n = self._index.setdefault(step, len(self._index) + 1)
        t = f"{seconds:7.2f}s" if seconds is not None else " " * 8
        line = f"  [{n}/{self.total}] {step:<{self.width}} {what:<8}{t}"
        return line + (f"  {note}" if note else "")

    def _live_line(self) -> _LiveLine | None:
        if not self._live_decided:  # decided on the first event: the logging setup is final
            self._live_decided = True
            if live_terminal(self.stream):
                self._live = _LiveLine(self.stream)
        return self._live

    def event(self, step: str, what: str, seconds: float | None = None, note: str = "") -> None:
        """A step ``started``, is ``done`` or ``cached`` (``seconds``), or ``failed`` (``note``)."""
        if not self.enabled:
            return
        with self._lock:
            live = self._live_line()
            line = self._line(step, what, seconds, note)
            if live is not None and what == "started":
                live.started(step)
        if live is not None and what == "started":
            # a handler of the user's beside mlops's still gets the record
            say(line, self.stream, logger=_LOGGER, drawn=True)
            return
        if live is not None:
            live.ended(step)
        say(line, self.stream, logger=_LOGGER)
        if live is not None:
            live.draw()

    def close(self) -> None:
        """Stop the live line (if any) and erase it; idempotent."""
        live = self._live
        if live is not None:
            live.close()


class _LiveLine:
    """The status line: the running steps and their elapsed time, redrawn by a ticker."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.running: dict[str, float] = {}
        self.shown = False
        self._drawn = ""  # the text on the line while shown: an unchanged line is not redrawn
        self.closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._streams = _LineAwareStreams(self)

    def started(self, step: str) -> None:
        with TERMINAL_LOCK:
            if self.closed:
                return
            self.running[step] = time.monotonic()
            if self._thread is None:
                console.set_live_line(self)
                self._streams.install()
                self._thread = threading.Thread(
                    target=self._tick, name="mlops-progress", daemon=True
                )
                self._thread.start()
            self.draw()

    def ended(self, step: str) -> None:
        with TERMINAL_LOCK:
            self.running.pop(step, None)

    def text(self, now: float | None = None) -> str:
        """The status line: ``  running  a 1.2s, b 0.3s``, cut to the terminal's width."""
        now = time.monotonic() if now is None else now
        parts = [f"{step} {now - t0:.1f}s" for step, t0 in self.running.items()]
        text = "  running  " + ", ".join(parts)
        width = shutil.get_terminal_size((80, 24)).columns - 1
        return text if len(text) <= width else text[: max(width - 3, 0)] + "..."

    def draw(self) -> None:
        """Draw the status line in place (nothing runs: erase it)."""
        with TERMINAL_LOCK:
            if self.closed or not self._streams.at_line_start:
                return
            if not self.running:
                self.clear_line()
                return
            text = self.text()
            if self.shown and text == self._drawn:
                return
            self._write(_ERASE + text)
            self.shown, self._drawn = True, text

    def clear_line(self) -> None:
        with TERMINAL_LOCK:
            if self.shown:
                self.shown = False
                self._write(_ERASE)

    def _write(self, text: str) -> None:
        stream = self.stream
        safe = stream if isinstance(stream, console.SafeStream) else console.SafeStream(stream)
        safe.write(text)
        safe.flush()

    def _tick(self) -> None:
        while not self._wake.wait(TICK):
            self.draw()

    def close(self) -> None:
        with TERMINAL_LOCK:
            if self.closed:
                return
            self.clear_line()
            self.closed = True
            self.running.clear()
            console.set_live_line(None)
            self._streams.uninstall()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2 * TICK + 1)


class _LineAwareStreams:
    """While the live line is shown, ``sys.stdout``/``sys.stderr`` erase it before any write
    (a step's ``print`` in this process) and say whether the cursor is at a line's start."""

    def __init__(self, live: _LiveLine) -> None:
        self.live: _LiveLine | None = live
        self.at_line_start = True
        self._saved: dict[str, Any] = {}

    def install(self) -> None:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None:
                self._saved[name] = stream
                setattr(sys, name, _Erasing(stream, self))

    def uninstall(self) -> None:
        for name, stream in self._saved.items():
            current = getattr(sys, name)
            if isinstance(current, _Erasing) and current.owner is self:
                setattr(sys, name, stream)
            # else something wrapped it since (a step log capture): it passes writes through
        self._saved.clear()
        self.live = None


class _Erasing:
    """A text stream that erases the live line before writing (see :class:`_LineAwareStreams`)."""

    def __init__(self, stream: Any, owner: _LineAwareStreams) -> None:
        self.wrapped = stream
        self.owner = owner

    def write(self, text: str) -> int:
        live = self.owner.live
        if live is None or not text:
            return int(self.wrapped.write(text) or 0)
        with TERMINAL_LOCK:
            live.clear_line()
            n = self.wrapped.write(text)
            self.owner.at_line_start = text.endswith("\n")
        return int(n or 0)

    def flush(self) -> None:
        self.wrapped.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
