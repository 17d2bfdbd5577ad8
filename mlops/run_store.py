"""Run records: one execution of a pipeline. The run store owns ``runs/`` and nothing else::

    runs/<run-id>/run.json        the record: written when the run starts (``running``) and
                                  rewritten by its own run when it ends
    runs/<run-id>/heartbeat.json  the run's lease: host, pid and the time of its last beat

A record holds the resolved config (secrets redacted), each step's status, timings and output
artifacts, and the model version the run made or used. A run that died without ending its record
stops beating: it reads as ``abandoned`` (at once when its process is gone from this host,
otherwise once its last beat is older than :data:`STALE_AFTER` seconds), never ``running`` forever.

A step that ran (or failed) also names why it ran (``steps.<name>.why``: the plan's reasons, a list
of strings). It is optional: records written before 0.2.0 have none, and readers show nothing.
"""

from __future__ import annotations

import contextlib
import enum
import os
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .errors import MlopsError, RunNotFoundError, UnknownStepError, did_you_mean
from .names import check_name
from .records import damaged, read_record, read_records
from .storage import Storage
from .store import ArtifactRef

__all__ = [
    "BEAT_EVERY",
    "STALE_AFTER",
    "Heartbeat",
    "Run",
    "RunStatus",
    "RunStore",
    "StepStatus",
    "new_run_id",
]

#: seconds between two beats of a running run
BEAT_EVERY = 10.0
#: a running run whose last beat is older than this is ``abandoned``
STALE_AFTER = 60.0


class RunStatus(str, enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"

    def __str__(self) -> str:
        return self.value


class StepStatus(str, enum.Enum):
    PENDING = "pending"
    RAN = "ran"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"

    def __str__(self) -> str:
        return self.value


def new_run_id() -> str:
    """A sortable, unique run id: UTC time to the microsecond, then random hex."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1e6) % 1_000_000:06d}-{secrets.token_hex(3)}"


class RunActions(Protocol):
    """What a :class:`Run` value's loading methods use; given by whoever handed it out."""

    def load(self, ref: ArtifactRef) -> Any: ...

    def model_version(self, name: str, number: int) -> Any: ...


@dataclass(frozen=True)
class Run:
    """One execution of a pipeline, as recorded in the registry: a frozen value."""

    id: str
    pipeline: str
    status: RunStatus
    started: float
    finished: float | None
    config: Mapping[str, Any]
    step_records: Mapping[str, Mapping[str, Any]]
    model: Mapping[str, Any] | None
    error: str | None = None
    host: str = ""
    pid: int | None = None
    beat: float | None = None
    actions: RunActions | None = field(default=None, repr=False, compare=False)

    @property
    def steps(self) -> dict[str, str]:
        """Each step's status: ``ran``, ``cached``, ``failed``, ``skipped`` (or ``pending``)."""
        return {name: str(rec.get("status")) for name, rec in self.step_records.items()}

    @property
    def model_version(self) -> Any:
        """The model version this run registered or used, if its pipeline has a model."""
        if not self.model or self.model.get("number") is None or self.actions is None:
            return None
        return self.actions.model_version(str(self.model["name"]), int(self.model["number"]))

    def output_refs(self, step: str) -> dict[str, ArtifactRef]:
        if step not in self.step_records:
            raise UnknownStepError(
                f"run {self.id} has no step '{step}'.{did_you_mean(step, self.step_records)}"
            )
        outs = self.step_records[step].get("outputs") or {}
        return {k: ArtifactRef.from_json(v) for k, v in outs.items()}

    def load(self, step: str, output: str | None = None) -> Any:
        """Load an output of ``step`` (the only one when ``output`` is omitted)."""
        refs = self.output_refs(step)
        if output is None:
            if len(refs) != 1:
                raise MlopsError(
                    f"step '{step}' has outputs {sorted(refs)}; name one: "
                    f"run.load({step!r}, OUTPUT)"
                )
            (ref,) = refs.values()
        else:
            if output not in refs:
                raise UnknownStepError(
                    f"step '{step}' of run {self.id} has no output '{output}'; outputs: "
                    f"{', '.join(sorted(refs)) or '(none)'}.{did_you_mean(output, refs)}"
                )
            ref = refs[output]
        if self.actions is None:
            raise MlopsError(f"run {self.id} was not read from a registry")
        return self.actions.load(ref)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "status": str(self.status),
            "started": self.started,
            "finished": self.finished,
            "config": dict(self.config),
            "steps": {k: dict(v) for k, v in self.step_records.items()},
            "model": dict(self.model) if self.model is not None else None,
            "error": self.error,
            "host": self.host,
            "pid": self.pid,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Run:
        """The run in a record; TypeError or ValueError if the record does not hold one."""
        steps = _opt(doc.get("steps"), Mapping, "steps") or {}
        for name, rec in steps.items():
            _opt(rec, Mapping, f"steps.{name}", required=True)
            outs = _opt(rec.get("outputs"), Mapping, f"steps.{name}.outputs") or {}
            for out, ref in outs.items():
                ArtifactRef.from_json(_opt(ref, Mapping, f"outputs.{out}", required=True))
                if not isinstance(ref["id"], str):
                    raise TypeError(f"steps.{name}.outputs.{out}.id is not a string")
        model = _opt(doc.get("model"), Mapping, "model")
        if model is not None:
            number = model.get("number")
            if not isinstance(model.get("name"), str) or (
                number is not None and (isinstance(number, bool) or not isinstance(number, int))
            ):
                raise TypeError("model needs a 'name' and a version 'number'")
        finished = doc.get("finished")
        pid = doc.get("pid")
        return cls(
            id=_opt(doc["id"], str, "id", required=True),
            pipeline=_opt(doc["pipeline"], str, "pipeline", required=True),
            status=RunStatus(_opt(doc["status"], str, "status", required=True)),
            started=_time(doc["started"], "started"),
            finished=None if finished is None else _time(finished, "finished"),
            config=_opt(doc.get("config"), Mapping, "config") or {},
            step_records=steps,
            model=model,
            error=_opt(doc.get("error"), str, "error"),
            host=_opt(doc.get("host"), str, "host") or "",
            pid=None if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 else pid,
        )


def _opt(value: Any, kind: Any, what: str, *, required: bool = False) -> Any:
    """``value`` if it is a ``kind`` (or None, unless ``required``); else a TypeError."""
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{what} is {value!r:.60}")
    return value


def _time(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} is {value!r:.60}, not a time")
    t = float(value)  # OverflowError for a huge int: the caller reports it as damage
    if t != t or t in (float("inf"), float("-inf")):
        raise ValueError(f"{what} is not a finite time")
    return t


_HOST = socket.gethostname()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):  # no such process (or pid)
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Run records under ``runs/`` of a storage."""

    REQUIRED = ("id", "pipeline", "status", "started")

    def __init__(self, storage: Storage, actions: RunActions | None = None) -> None:
        self.storage = storage
        self.actions = actions

    @staticmethod
    def _path(run_id: str) -> str:
        return f"runs/{run_id}/run.json"

    @staticmethod
    def _beat_path(run_id: str) -> str:
        return f"runs/{run_id}/heartbeat.json"

    def save(self, run: Run) -> None:
        """Write ``run``'s record (only the run itself does, at its start and its end)."""
        self.storage.write_json(self._path(run.id), run.to_json())

    def has_record(self, run_id: str) -> bool:
        """Whether the run has written its record (its folder appears a moment before it)."""
        return self.storage.has_record(self._path(run_id))

    def delete(self, run_id: str) -> None:
        """Remove a run's records (its artifacts stay until gc finds nothing else names them)."""
        self.storage.delete(f"runs/{check_name('run id', run_id)}")

    def beat(self, run_id: str) -> None:
        """Renew the run's lease."""
        self.storage.write_json(
            self._beat_path(run_id), {"time": time.time(), "host": _HOST, "pid": os.getpid()}
        )

    def _value(self, rel: str, doc: Mapping[str, Any], beat: Mapping[str, Any] | None) -> Run:
        try:
            run = Run.from_json(doc)
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raise damaged(self.storage, rel, f"wrong shape: {e}") from None
        if f"runs/{run.id}/run.json" != rel:
            raise damaged(self.storage, rel, f"it is the record of another run ({run.id:.40})")
        run = replace(run, actions=self.actions)
        if run.status is not RunStatus.RUNNING:
            return run
        last = beat.get("time") if beat else None
        try:
            last = float(last) if isinstance(last, (int, float)) else run.started
        except OverflowError:  # a damaged lease is an expired one
            last = run.started
        gone = run.host == _HOST and isinstance(run.pid, int) and not _pid_alive(run.pid)
        if gone or time.time() - last > STALE_AFTER:
            return replace(run, status=RunStatus.ABANDONED, beat=last)
        return replace(run, beat=last)

    def get(self, run_id: str) -> Run:
        """The run ``run_id``; RunNotFoundError if there is none."""
        check_name("run id", run_id)
        rel = self._path(run_id)
        doc = read_record(self.storage, rel, self.REQUIRED)
        if doc is None:
            raise RunNotFoundError(f"no run '{run_id}' in registry {self.storage.uri}")
        beat = None
        if doc.get("status") == RunStatus.RUNNING:
            beat = self._read_beat(run_id)
        return self._value(rel, doc, beat)

    def _read_beat(self, run_id: str) -> dict[str, Any] | None:
        try:
            return read_record(self.storage, self._beat_path(run_id))
        except MlopsError:  # a damaged lease is an expired one
            return None

    def ids(self) -> list[str]:
        """Every run id, oldest first (ids sort by start time)."""
        return [r for r in self.storage.list("runs") if not r.startswith(".")]

    def list(self, pipeline: str | None = None) -> list[Run]:
        """The runs, oldest first, optionally only those of ``pipeline``.

        Raises:
            DamagedRecordError: a run record cannot be read (it is named).
        """
        ids = self.ids()
        paths = [self._path(r) for r in ids]
        docs = read_records(self.storage, paths, self.REQUIRED)
        out = []
        for rid, p in zip(ids, paths, strict=True):
            doc = docs.get(p)
            if doc is None:
                left = [e for e in self.storage.list(f"runs/{rid}") if not e.startswith(".")]
                # a run writes its record before anything else, but it may have done so since
                # the batch read above
                doc = read_record(self.storage, p, self.REQUIRED) if left else None
                if doc is None and left:
                    raise damaged(self.storage, p, "missing, though the run's folder exists")
                if doc is None:
                    continue
            beat = self._read_beat(rid) if doc["status"] == RunStatus.RUNNING else None
            run = self._value(p, doc, beat)
            if pipeline is None or run.pipeline == pipeline:
                out.append(run)
        return out

    def referenced_ids(self) -> set[str]:
        """The ids of every artifact a run record names."""
        ids: set[str] = set()
        for run in self.list():
            for rec in run.step_records.values():
                # a step's outputs, and its captured log (mlops.logs)
                for ref in [*(rec.get("outputs") or {}).values(), rec.get("log")]:
                    if isinstance(ref, Mapping) and isinstance(ref.get("id"), str):
                        ids.add(ref["id"])
        return ids


class Heartbeat:
    """Beats for a run in a background thread until stopped (a context manager)."""

    def __init__(self, store: RunStore, run_id: str, every: float = BEAT_EVERY) -> None:
        self.store = store
        self.run_id = run_id
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mlops-heartbeat", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            # a missed beat only makes the run look older; it never fails the run
            with contextlib.suppress(Exception):
                self.store.beat(self.run_id)

    def __enter__(self) -> Heartbeat:
        self.store.beat(self.run_id)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
