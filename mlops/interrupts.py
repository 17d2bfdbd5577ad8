"""Ctrl-C during a run: finish the running step, start no other, record the run ``interrupted``.

Dask's local schedulers wait for their results in the main thread (``queue.get`` in
``dask.local.get_async``); a ``KeyboardInterrupt`` raised there leaves the scheduler while worker
threads go on running their step and process pools are joined in a ``finally``, so the run record
would be written while a step is still writing its outputs. Instead, for the duration of a run,
:class:`InterruptHandler` replaces Python's SIGINT handler:

1. The first Ctrl-C sets a :class:`StopFlag` and prints one line naming the step(s) it waits for.
   Every task is wrapped in a :class:`StepGuard`, which checks the flag *before* starting its step
   and returns a :class:`NotStarted` marker instead (so do the steps after it, which receive the
   marker). The graph drains in moments; the running step finishes and is recorded; then the
   executor records the run ``interrupted``, leaves its model version incomplete (it is only
   completed after every step succeeded) and the command exits with status 130.
2. A second Ctrl-C stops at once: it saves the ``interrupted`` run record if that takes under
   :data:`ABORT_SAVE_SECONDS` (otherwise the run shows as abandoned once its heartbeat stops),
   ends this process's worker processes, and exits with status 130.

The flag must be readable where the guard runs: in this process for ``sync`` and ``threads``
(:class:`LocalFlag`), in spawned worker processes for ``processes`` (:class:`FileFlag`, a file in
a temporary folder), on cluster workers for ``distributed`` (:class:`ClusterFlag`, a
``distributed.Event``). Worker processes ignore SIGINT (:func:`ignore_sigint`), so that a Ctrl-C
sent to the whole process group by a terminal reaches only this process.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .console import say

__all__ = [
    "ABORT_SAVE_SECONDS",
    "EXIT_INTERRUPTED",
    "ClusterFlag",
    "FileFlag",
    "InterruptHandler",
    "LocalFlag",
    "NotStarted",
    "RunInterrupted",
    "StepGuard",
    "StopFlag",
    "ignore_sigint",
    "interrupt_message",
    "stop_flag",
    "waiting_for",
]

#: the exit status of a process stopped by SIGINT (128 + 2), as shells report it
EXIT_INTERRUPTED = 130
#: how long a second Ctrl-C waits for the run record to be saved before exiting anyway
ABORT_SAVE_SECONDS = 2.0


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C: it is recorded ``interrupted`` and its version stays incomplete.

    A ``KeyboardInterrupt``, so that code that stops on Ctrl-C keeps doing so.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"interrupted (Ctrl-C): run {run_id} started no more steps")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class NotStarted:
    """What a guarded task returns for a step it did not start because the run was interrupted."""

    step: str


class StopFlag:
    """Set once when the run must start no more steps; read by every :class:`StepGuard`."""

    def set(self) -> None:
        raise NotImplementedError

    def is_set(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the flag holds (a file, a cluster event)."""

    def mark_running(self, step: str, running: bool) -> None:
        """Note that ``step`` started (True) or ended (False), where the flag can tell."""

    def running(self) -> list[str] | None:
        """The steps that started and have not ended; None where the flag cannot tell."""
        return None


class LocalFlag(StopFlag):
    """A flag in this process: ``sync`` and ``threads``."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._running: list[str] = []

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def mark_running(self, step: str, running: bool) -> None:
        with self._lock:
            if running:
                self._running.append(step)
            else:
                self._running.remove(step)

    def running(self) -> list[str] | None:
        with self._lock:
            return list(self._running)


class FileFlag(StopFlag):
    """A flag that worker processes on this machine read: a file that exists once it is set."""

    def __init__(self, path: str | None = None) -> None:
        if path is None:
            import tempfile

            path = os.path.join(tempfile.mkdtemp(prefix="mlops-run-"), "stop")
        self.path = path
        self._set = False

    def set(self) -> None:
        self._set = True
        try:
            with open(self.path, "w"):
                pass
        except OSError:  # pragma: no cover - the temporary folder is gone
            pass

    def is_set(self) -> bool:
        return self._set or os.path.exists(self.path)

    def mark_running(self, step: str, running: bool) -> None:
        # one empty file per running step, next to the flag: the main process lists them
        path = os.path.join(os.path.dirname(self.path), f"running-{step}")
        with contextlib.suppress(OSError):
            if running:
                open(path, "w").close()
            else:
                os.remove(path)

    def running(self) -> list[str] | None:
        try:
            names = os.listdir(os.path.dirname(self.path))
        except OSError:
            return []
        return sorted(n[len("running-") :] for n in names if n.startswith("running-"))

    def close(self) -> None:
        import shutil

        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_set": False}


#: the cluster flags this process knows to be set: set here, or told by the process that set
#: them (:meth:`ClusterFlag.set` broadcasts to every worker), or read from the cluster
_STOPPED: set[str] = set()


def _mark_stopped(name: str) -> None:
    """Run on every worker by :meth:`ClusterFlag.set`: the flag ``name`` is set."""
    _STOPPED.add(name)


class ClusterFlag(StopFlag):
    """A flag on a dask.distributed cluster (a named ``distributed.Event``), read by workers.

    Reading the event is a round trip to the scheduler (milliseconds on a busy machine, more
    than a small step costs), so a worker does not read it before every step. :meth:`set`
    tells every worker at once (``client.run``) and returns once they know, so a step that
    checks after the Ctrl-C sees it; the event itself is read at most every
    :attr:`POLL_SECONDS` by each worker, for a worker that the message did not reach (one that
    joined later, or was busy reconnecting).
    """

    #: how long a worker trusts its last reading of the event when no message came
    POLL_SECONDS = 0.5

    def __init__(self, name: str, client: Any = None) -> None:
        self.name = name
        self._client = client
        self._event: Any = None
        self._read_at = -math.inf  # time.monotonic() of the last reading of the event here

    def _get(self) -> Any:
        if self._event is None:
            from distributed import Event

            self._event = Event(self.name, client=self._client)
        return self._event

    def set(self) -> None:
        _STOPPED.add(self.name)
        self._get().set()
        if self._client is not None:
            with contextlib.suppress(Exception):  # a worker that missed it reads the event
                self._client.run(_mark_stopped, self.name)

    def is_set(self) -> bool:
        if self.name in _STOPPED:
            return True
        now = time.monotonic()
        if now - self._read_at < self.POLL_SECONDS:
            return False
        if self._get().is_set():
            _STOPPED.add(self.name)
            return True
        self._read_at = now
        return False

    def close(self) -> None:
        _STOPPED.discard(self.name)
        if self._event is not None:
            with contextlib.suppress(Exception):  # the cluster may be gone already
                self._event.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "_client": None, "_event": None, "_read_at": -math.inf}


class StepGuard:
    """The task of every step: start the step only if the run was not interrupted.

    ``guard(step_name, *upstream)`` returns :class:`NotStarted` if the flag is set or an upstream
    step was not started, else what ``task(step_name, *upstream)`` returns. A step is marked
    running *before* the flag is read, so the interrupt message, which is made after the flag is
    set, names every step that will go on running.
    """

    def __init__(self, task: Callable[..., Any], flag: StopFlag) -> None:
        self.task = task
        self.flag = flag

    def __call__(self, step: str, *upstream: Any) -> Any:
        if any(isinstance(u, NotStarted) for u in upstream):
            return NotStarted(step)
        self.flag.mark_running(step, True)
        try:
            if self.flag.is_set():
                return NotStarted(step)
            return self.task(step, *upstream)
        finally:
            self.flag.mark_running(step, False)


def stop_flag(get: Any, run_id: str) -> StopFlag:
    """The kind of flag the scheduler ``get``'s workers can read."""
    # dask.distributed (workers anywhere) has a client; the in-process scheduler reports results
    # too, but runs here
    if getattr(get, "reports_results", False) and hasattr(type(get), "client"):
        with _sigint_ignored():  # a local cluster's processes, started now, inherit it
            client = get.client
        return ClusterFlag(f"mlops-stop-{run_id}", client=client)
    if getattr(get, "spawns_processes", False):  # a process pool on this machine
        return FileFlag()
    return LocalFlag()


def waiting_for(plan: Any, records: Mapping[str, Mapping[str, Any]], flag: StopFlag) -> list[str]:
    """The steps a run waits for after Ctrl-C.

    Those the flag saw start; on a cluster, where it cannot tell, the steps not finished whose
    upstream steps all finished.
    """
    running = flag.running()
    if running is not None:
        return running
    done = {"ran", "cached"}
    return [
        name
        for name, sp in plan.steps.items()
        if str(records.get(name, {}).get("status")) not in done | {"failed"}
        and all(str(records.get(d, {}).get("status")) in done for d in sp.deps)
    ]


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while worker processes start: a process started by fork and exec keeps an
    ignored signal ignored (Python then installs no KeyboardInterrupt handler), so a terminal's
    Ctrl-C, sent to the whole process group, stops the run through this process only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def ignore_sigint() -> None:
    """Make this (worker) process ignore SIGINT: the main process decides what Ctrl-C means."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class InterruptHandler:
    """SIGINT handling for the duration of one run (a context manager; main thread only).

    Args:
        flag: set on the first Ctrl-C.
        waiting_for: returns the steps the run waits for (named in the message).
        on_abort: called on the second Ctrl-C, before exiting (saves the run record).
        hard_exit: the second Ctrl-C ends the process (the command line); otherwise it raises
            ``KeyboardInterrupt`` where the run is, as Python does (a notebook or a script that
            called :func:`mlops.run` goes on, and the executor records the run interrupted).
    """

    def __init__(
        self,
        flag: StopFlag,
        waiting_for: Callable[[], Sequence[str]],
        on_abort: Callable[[], object],
        *,
        hard_exit: bool = False,
    ) -> None:
        self.flag = flag
        self.waiting_for = waiting_for
        self.on_abort = on_abort
        self.hard_exit = hard_exit
        self._previous: Any = None
        self._installed = False

    @property
    def interrupted(self) -> bool:
        return self.flag.is_set()

    def __enter__(self) -> InterruptHandler:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.flag.is_set():
            self.flag.set()
            say(interrupt_message(self.waiting_for()), err=True)
            return
        self.abort()

    def abort(self) -> None:
        """The second Ctrl-C: save the run record if that is quick, end workers, exit 130.

        Without ``hard_exit``: end the worker processes and raise ``KeyboardInterrupt``.
        """
        if not self.hard_exit:
            _end_worker_processes()
            raise KeyboardInterrupt("interrupted twice: stopped without waiting for the step")
        saver = threading.Thread(target=self._save_quietly, daemon=True)
        saver.start()
        saver.join(ABORT_SAVE_SECONDS)
        _end_worker_processes()
        for stream in ("stdout", "stderr"):
            with contextlib.suppress(Exception):  # exiting: nothing left to report to
                getattr(sys, stream).flush()
        os._exit(EXIT_INTERRUPTED)

    def _save_quietly(self) -> None:
        with contextlib.suppress(Exception):  # the heartbeat marks the run abandoned instead
            self.on_abort()


def interrupt_message(steps: Sequence[str]) -> str:
    """The one line the first Ctrl-C prints.

    Examples:
        >>> interrupt_message(["train"])
        'interrupted: waiting for step train to finish; Ctrl-C again to stop now'
        >>> interrupt_message(["a", "b"])
        'interrupted: waiting for steps a, b to finish; Ctrl-C again to stop now'
        >>> interrupt_message([])
        'interrupted: starting no more steps; Ctrl-C again to stop now'
    """
    if not steps:
        what = "starting no more steps"
    elif len(steps) == 1:
        what = f"waiting for step {steps[0]} to finish"
    else:
        what = f"waiting for steps {', '.join(steps)} to finish"
    return f"interrupted: {what}; Ctrl-C again to stop now"


#: how long a second Ctrl-C waits for multiprocessing's exit finalizers
FINALIZERS_SECONDS = 4.0


def _end_worker_processes() -> None:
    """Terminate the worker processes this process started (a process pool, a local cluster).

    Then run multiprocessing's exit finalizers (in a thread, bounded in time): they release the
    pool's semaphores, which multiprocessing's resource tracker would otherwise report as leaked
    on stderr after this process is gone.
    """
    import multiprocessing

    children = multiprocessing.active_children()
    if not children:
        return
    for child in children:
        with contextlib.suppress(Exception):  # it may have exited already
            child.terminate()
    for child in children:
        with contextlib.suppress(Exception):
            child.join(1.0)
    from multiprocessing import util

    exit_function = getattr(util, "_exit_function", None)  # private; absent: skip it
    if exit_function is None:
        return
    finalizers = threading.Thread(target=exit_function, daemon=True)
    finalizers.start()
    # they take well under a second on a quiet machine, but several on a loaded one; cut short,
    # the tracker prints "leaked semaphore" warnings after mlops' last line
    finalizers.join(FINALIZERS_SECONDS)
