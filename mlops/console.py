"""The one writer for what mlops prints: a closed stdout or stderr stops printing, not the run.

``python -m mlops +pipeline=NAME | head -3`` closes the pipe after three lines; every later write
to it raises ``BrokenPipeError`` (Python ignores ``SIGPIPE``), which would fail whatever step or
summary line happened to print. :func:`say` and :class:`SafeStream` swallow that error, and point
the stream's file descriptor at ``/dev/null`` so that the interpreter's own flush at exit (and
any library that writes to the descriptor) cannot raise it again. The command line wraps
``sys.stdout`` and ``sys.stderr`` in a :class:`SafeStream` (:func:`protect_std_streams`), so
Hydra's log lines and a step's own ``print`` are covered too.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

__all__ = ["SafeStream", "protect_std_streams", "say"]


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


def say(text: str, stream: IO[str] | None = None, *, err: bool = False) -> None:
    """Print one line of mlops output to ``stream`` (default stdout, or stderr with ``err``).

    A reader that closed the stream makes this a no-op, never an error.

    Examples:
        >>> import io
        >>> out = io.StringIO()
        >>> say("mlops: hello", out)
        >>> out.getvalue()
        'mlops: hello\\n'
    """
    target: Any = stream if stream is not None else (sys.stderr if err else sys.stdout)
    if target is None:
        return
    safe = target if isinstance(target, SafeStream) else SafeStream(target)
    safe.write(text + "\n")
    safe.flush()
