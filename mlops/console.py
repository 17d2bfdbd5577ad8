"""The one writer for what mlops prints: through :mod:`logging`, and a closed pipe stops printing.

**mlops's own lines are log records.** Progress, the run's summary, warnings and errors go to
loggers under ``mlops`` (``mlops.run``, ``mlops.progress``, ``mlops.cache`` ...). The ``mlops``
logger has one handler of mlops's own (:data:`HANDLER`): it writes the bare message, INFO to
stdout and WARNING and above to stderr, so the command line reads as plain lines. It does not
propagate to the root logger, where Hydra's job logging (``hydra/job_logging``) would print each
line a second time in its own format. So:

* silence or tune it like any logger: ``logging.getLogger("mlops").setLevel(logging.WARNING)``
  (only warnings and errors), ``MLOPS_LOG_LEVEL=WARNING`` on the command line, or Hydra's
  ``hydra.verbose=mlops`` (DEBUG);
* route it: replace the handler (``logging.getLogger("mlops").handlers = [mine]``), or remove it
  and set ``propagate = True`` to send mlops's records to the root logger's handlers. Hydra's
  job logging takes it over the same way: a ``loggers: {mlops: ...}`` entry replaces this
  handler (``dictConfig``), so it names ``handlers`` or sets ``propagate: true``
  (``+hydra.job_logging.loggers.mlops.propagate=true`` on the command line).

A line is written outside any step's log capture (:mod:`mlops.logs`), so mlops's messages never
end up in a step's log, and a step's own records never reach this handler (they are not under
``mlops``).

**A closed pipe.** ``python -m mlops +pipeline=NAME | head -3`` closes the pipe after three
lines; every later write to it raises ``BrokenPipeError`` (Python ignores ``SIGPIPE``), which
would fail whatever step or summary line happened to print. :class:`SafeStream` swallows that
error, and points the stream's file descriptor at ``/dev/null`` so that the interpreter's own
flush at exit (and any library that writes to the descriptor) cannot raise it again. The command
line wraps ``sys.stdout`` and ``sys.stderr`` in a :class:`SafeStream`
(:func:`protect_std_streams`), so Hydra's log lines and a step's own ``print`` are covered too.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import threading
from typing import IO, Any, Protocol

__all__ = [
    "HANDLER",
    "TERMINAL_LOCK",
    "ConsoleHandler",
    "SafeStream",
    "output",
    "protect_std_streams",
    "say",
    "set_live_line",
]

#: held while anything mlops draws is written to the terminal (lines, the live progress line)
TERMINAL_LOCK = threading.RLock()


class LiveLine(Protocol):
    """A line drawn in place at the bottom of the terminal (:mod:`mlops.progress`)."""

    def clear_line(self) -> None:
        """Erase the line (the cursor goes back to its start) if it is shown."""


def _silence(stream: Any) -> None:
    """Point the file descriptor behind ``stream`` at /dev/null (if it has one)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # pragma: no cover - no /dev/null
        return
    try:
        os.dup2(devnull, fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(devnull)


class SafeStream:
    """A text stream whose writes and flushes never raise because the reader went away.

    Everything else (``fileno``, ``isatty``, ``encoding`` ...) is the wrapped stream's.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self.closed_by_reader = False

    @property
    def wrapped(self) -> IO[str]:
        return self._stream

    def write(self, text: str) -> int:
        if self.closed_by_reader:
            return len(text)
        try:
            return self._stream.write(text)
        except (BrokenPipeError, ValueError):  # ValueError: the file object was closed
            self._reader_gone()
            return len(text)
        except OSError as e:
            if _is_closed_pipe(e):
                self._reader_gone()
                return len(text)
            raise

    def flush(self) -> None:
        if self.closed_by_reader:
            return
        try:
            self._stream.flush()
        except (BrokenPipeError, ValueError):
            self._reader_gone()
        except OSError as e:
            if not _is_closed_pipe(e):
                raise
            self._reader_gone()

    def _reader_gone(self) -> None:
        self.closed_by_reader = True
        _silence(self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _is_closed_pipe(e: OSError) -> bool:
    import errno

    return e.errno in (errno.EPIPE, errno.EBADF)


def protect_std_streams() -> None:
    """Wrap ``sys.stdout`` and ``sys.stderr`` in :class:`SafeStream` (idempotent)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, SafeStream):
            setattr(sys, name, SafeStream(stream))


_live: LiveLine | None = None


def set_live_line(line: LiveLine | None) -> None:
    """Make ``line`` the one erased before each line mlops writes (None: no such line)."""
    global _live
    with TERMINAL_LOCK:
        _live = line


class ConsoleHandler(logging.Handler):
    """mlops's own handler: the bare message, INFO to stdout, WARNING and above to stderr.

    A record may name the stream it is for (``extra={"mlops_stream": stream}``: a sweep job's
    prefixed stream, a quiet run's buffer); the live progress line is erased first.
    """

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record) if self.formatter else record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format must not fail the run
            self.handleError(record)
            return
        if getattr(record, "mlops_drawn", False):
            return  # the live progress line shows it
        stream = getattr(record, "mlops_stream", None)
        if stream is None:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
        if stream is None:
            return
        safe = stream if isinstance(stream, SafeStream) else SafeStream(stream)
        with TERMINAL_LOCK:
            if _live is not None:
                _live.clear_line()
            # an empty context: a step's log capture (a context variable) does not see the line
            contextvars.Context().run(_write_line, safe, text)


def _write_line(stream: SafeStream, text: str) -> None:
    stream.write(text + "\n")
    stream.flush()


#: the handler mlops puts on its ``mlops`` logger (see the module docstring)
HANDLER = ConsoleHandler()


def _setup() -> None:
    """Give the ``mlops`` logger its handler and level, once per process, on first import."""
    logger = logging.getLogger("mlops")
    if not logger.handlers:
        logger.addHandler(HANDLER)
        logger.propagate = False
    level = os.environ.get("MLOPS_LOG_LEVEL", "").strip().upper()
    if level:
        try:
            logger.setLevel(int(level) if level.isdigit() else level)
        except (TypeError, ValueError):
            logger.warning("MLOPS_LOG_LEVEL=%s is not a logging level (e.g. WARNING)", level)
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # the root's WARNING would hide the run's own lines


_setup()


def say(
    text: str,
    stream: IO[str] | None = None,
    *,
    err: bool = False,
    logger: str = "mlops",
    level: int | None = None,
    drawn: bool = False,
) -> None:
    """Log one line of mlops output on ``logger`` (INFO, or WARNING with ``err``).

    mlops's handler writes it to ``stream`` (default stdout, or stderr from WARNING on), unless
    ``drawn``: the live progress line shows it already, and only other handlers get the record.
    A reader that closed the stream makes this a no-op, never an error.

    Examples:
        >>> import io
        >>> out = io.StringIO()
        >>> say("mlops: hello", out)
        >>> out.getvalue()
        'mlops: hello\\n'
    """
    lvl = level if level is not None else (logging.WARNING if err else logging.INFO)
    log = logging.getLogger(logger)
    if log.isEnabledFor(lvl):
        # an empty context: no handler (a user's, or a step's log capture) takes the record for
        # the step whose thread this is
        extra = {"mlops_stream": stream, "mlops_drawn": drawn}
        contextvars.Context().run(log.log, lvl, text, extra=extra)


def output(text: str, stream: IO[str] | None = None) -> None:
    """Write a command's result (``plan=true``'s plan): not a log message, never silenced.

    Examples:
        >>> import io
        >>> out = io.StringIO()
        >>> output("plan for p (nothing is run):", out)
        >>> out.getvalue()
        'plan for p (nothing is run):\\n'
    """
    target: Any = stream if stream is not None else sys.stdout
    if target is None:
        return
    with TERMINAL_LOCK:
        _write_line(target if isinstance(target, SafeStream) else SafeStream(target), text)
