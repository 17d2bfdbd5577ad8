"""Step logs: what a step prints and logs while it runs, captured and kept with the run.

:func:`capture` wraps one call of a step function. While it is open, everything the step writes
to ``sys.stdout`` and ``sys.stderr`` and every ``logging`` record emitted in the step's thread is
appended to that step's :class:`StepLog` -- and still reaches the terminal as before. The
executor stores the text as an artifact (:func:`store`) and names it in the step's record
(``steps.<name>.log``), so ``mlops show-run ID --logs STEP`` and the report can show it.

**Concurrent steps do not mix.** The current log is a :class:`contextvars.ContextVar`, and the
redirection is done once per process by replacing ``sys.stdout``/``sys.stderr`` with a proxy that
writes to the current context's log (if any) and to the stream it replaced. A thread sees only
the log of the step it runs; processes and ``dask.distributed`` workers install the proxy in
their own process the first time they run a step. Threads a step starts itself begin with an
empty context, so what they print reaches the terminal but not the step's log.

**Records below WARNING.** A logger passes a record to handlers only at or above its effective
level; the root logger's default is WARNING, so a step's ``log.info(...)`` would never reach the
capturing handler. While any step is being captured and the root logger has no handler of the
user's own (logging was not configured), its level is lowered to INFO and restored afterwards;
Python's last-resort handler still prints only warnings, so the terminal is unchanged. A user
who configures logging decides what is captured with the level they set.

**Size cap.** A step's log keeps at most :data:`LOG_LIMIT` characters: the first and last half,
with a line saying how much was left out in between.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import ArtifactRef, ArtifactStore

__all__ = ["LOG_LIMIT", "StepLog", "capture", "load_text", "store"]

#: the most characters of one step's log that are kept (1 MiB of text)
LOG_LIMIT = 1 << 20

_CURRENT: contextvars.ContextVar[StepLog | None] = contextvars.ContextVar(
    "mlops_step_log", default=None
)
_LOCK = threading.Lock()
_active = 0  # captures open in this process (guarded by _LOCK)
_saved_root_level: int | None = None


class StepLog:
    """The captured text of one step: the head and the tail, at most ``limit`` characters.

    Examples:
        >>> log = StepLog(limit=10)
        >>> log.write("0123456789abcdef")
        >>> print(log.text())
        01234
        [... 6 characters left out ...]
        bcdef
    """

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self.limit = limit
        self._head: list[str] = []
        self._head_size = 0
        self._tail: list[str] = []
        self._tail_size = 0
        self._dropped = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            room = self.limit // 2 - self._head_size
            if room > 0:
                self._head.append(text[:room])
                self._head_size += min(room, len(text))
                text = text[room:]
            if not text:
                return
            self._tail.append(text)
            self._tail_size += len(text)
            keep = self.limit - self.limit // 2
            if self._tail_size > 2 * keep:  # trim now and then, not on every write
                self._trim(keep)

    def _trim(self, keep: int) -> None:
        joined = "".join(self._tail)
        self._dropped += len(joined) - keep
        self._tail = [joined[-keep:]] if keep else []
        self._tail_size = min(keep, len(joined))

    def text(self) -> str:
        """The log as kept: head, a note of what was left out, tail."""
        with self._lock:
            keep = self.limit - self.limit // 2
            if self._tail_size > keep:
                self._trim(keep)
            head = "".join(self._head)
            tail = "".join(self._tail)
        if not self._dropped:
            return head + tail
        gap = f"\n[... {self._dropped} characters left out ...]\n"
        return head + gap + tail

    def __bool__(self) -> bool:
        return bool(self._head_size or self._tail_size)


class _Tee(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` while mlops runs steps: the real stream, plus the current
    step's log in the context that writes."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        log = _CURRENT.get()
        if log is not None:
            log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _Handler(logging.Handler):
    """Appends each record to the log of the step whose context emits it."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if not _user_configured(root):
            # Being a handler on the root logger, this one stops Python from using its
            # last-resort handler (warnings to stderr when logging is not configured): do its job.
            # Written past the capture: the step's log gets the record once, formatted below.
            last = logging.lastResort
            if last is not None and record.levelno >= last.level:
                err = sys.stderr.stream if isinstance(sys.stderr, _Tee) else sys.stderr
                with contextlib.suppress(Exception):
                    err.write(last.format(record) + "\n")
        log = _CURRENT.get()
        if log is None:
            return
        try:
            log.write(self.format(record) + "\n")
        except Exception:  # a bad format string must not fail the step
            self.handleError(record)


_HANDLER = _Handler()


def _install() -> None:
    """Put the proxies and the handler in place (once per process; idempotent)."""
    if not isinstance(sys.stdout, _Tee) and sys.stdout is not None:
        sys.stdout = _Tee(sys.stdout)
    if not isinstance(sys.stderr, _Tee) and sys.stderr is not None:
        sys.stderr = _Tee(sys.stderr)
    root = logging.getLogger()
    if _HANDLER not in root.handlers:
        root.addHandler(_HANDLER)


def _user_configured(root: logging.Logger) -> bool:
    return any(h is not _HANDLER for h in root.handlers)


def _open() -> None:
    global _active, _saved_root_level
    with _LOCK:
        _install()
        _active += 1
        root = logging.getLogger()
        if _active == 1 and not _user_configured(root) and root.level > logging.INFO:
            _saved_root_level = root.level
            root.setLevel(logging.INFO)


def _close() -> None:
    global _active, _saved_root_level
    with _LOCK:
        _active -= 1
        if _active == 0 and _saved_root_level is not None:
            logging.getLogger().setLevel(_saved_root_level)
            _saved_root_level = None


@contextlib.contextmanager
def capture(limit: int = LOG_LIMIT) -> Iterator[StepLog]:
    """Capture the current context's stdout, stderr and logging records into a new log.

    Examples:
        >>> import logging
        >>> with capture() as log:
        ...     print("hello")
        ...     logging.getLogger("user").warning("fitted")
        hello
        >>> print(log.text(), end="")
        hello
        WARNING user: fitted
    """
    log = StepLog(limit)
    _open()
    tok = _CURRENT.set(log)
    try:
        yield log
    finally:
        _CURRENT.reset(tok)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        _close()


def store(
    artifacts: ArtifactStore, log: StepLog, hide: Callable[[str], str] | None = None
) -> ArtifactRef | None:
    """Store a log's text as an artifact (a JSON string); None for an empty log.

    Args:
        hide: applied to the text first (e.g. to hide the config's secret values, which a step
            may print).
    """
    if not log:
        return None
    text = log.text()
    return artifacts.put(hide(text) if hide is not None else text)


def load_text(artifacts: ArtifactStore, ref_doc: Any) -> str | None:
    """The text of a log artifact named in a step record (``steps.<name>.log``), or None."""
    from .store import ArtifactRef

    if not isinstance(ref_doc, dict) or not isinstance(ref_doc.get("id"), str):
        return None
    value = artifacts.get(ArtifactRef.from_json(ref_doc))
    return value if isinstance(value, str) else str(value)
