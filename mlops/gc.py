"""Garbage collection: delete the artifacts nothing references, and leftover temporary files.

What is referenced is asked of the stores that own the records (:meth:`Registry.referenced_ids`:
cache entries, run records, model versions), never worked out by matching their paths. An object
is kept if any of them names it, or if it was written in the last ``grace`` seconds.

**Safe under concurrent runs.** A running pipeline may store an object, or reuse an orphaned one
by its content hash (which does not refresh its age), and record it a moment later. So gc
honours the runs' leases (a run is ``running`` and beating, see :mod:`mlops.run_store`; a run
writes its lease before its first step):

1. gc lists the runs, then reads what is referenced. If any run holds a live lease, it deletes
   no objects and no unfinished payloads (``objects/tmp/``) -- only records' temporary files --
   and says which runs it waited for.
2. Otherwise it moves the unreferenced objects aside (``objects/tmp/gc-<id>/``) and lists the
   runs again: if a run's record appeared since the first listing (running or already
   finished), every object is put back, since that run may have found one before it was moved;
   otherwise they are deleted. Runs are told by their records, not their folders: a folder
   appears a moment before its record (and stays without one if the run died right then).

A run that reuses an object does so after writing its lease; gc's second listing comes after the
move. So either the second listing sees the run and the object is put back, or the run looked
after the move, found no object and stored it again. The price is that an object can be absent
for the moment between the move and the put-back (a few small requests); a read of it in that
moment fails rather than a version linking something missing. Objects moved aside by a gc that
was killed are put back by the next gc. Abandoned runs hold no lease.

Temporary files: an unfinished payload (``objects/tmp/``) is deleted like an object (older than
the grace period, no lease, no new run at the second listing). A record's ``.tmp-*`` file is
written by writers that hold no lease too (a run's first record, ``mlops promote``), so it is
deleted only once it is older than :data:`RECORD_TMP_AGE` as well, whatever the grace period.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .run_store import RunStatus

if TYPE_CHECKING:
    from .registry import Registry

__all__ = [
    "ASIDE_PREFIX",
    "DEFAULT_GRACE",
    "GcReport",
    "collect_garbage",
    "moved_aside",
    "put_back",
]

DEFAULT_GRACE = 3600.0
TMP = "objects/tmp"
#: a record's temporary file (``.tmp-*``) lives for the moment of one small write, also for writers
#: that hold no lease (the first write of a run's record, ``mlops promote``): younger ones may be
#: in use whatever the grace period
RECORD_TMP_AGE = 60.0
#: the folder (under ``objects/tmp/``) where a gc moves objects before deleting them
ASIDE_PREFIX = "gc-"


@dataclass(frozen=True)
class GcReport:
    deleted: list[tuple[str, int]] = field(default_factory=list)
    kept_objects: int = 0
    running: tuple[str, ...] = ()
    dry_run: bool = False

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.deleted)

    def to_json(self) -> dict[str, Any]:
        return {
            "deleted": [list(d) for d in self.deleted],
            "bytes": self.bytes,
            "kept_objects": self.kept_objects,
            "running": list(self.running),
            "dry_run": self.dry_run,
        }


def _new_runs(registry: Registry, seen: set[str]) -> tuple[str, ...]:
    """The runs that have a record now and were not in ``seen``. A run's folder can exist a
    moment before its record (and forever, if it was killed during that first write), so what
    counts is the record."""
    runs = registry.runs
    fresh = [r for r in runs.ids() if r not in seen]
    return tuple(r for r in fresh if runs.has_record(r))


def _move(registry: Registry, src: str, dst: str) -> None:
    """Move one file within the registry (a rename locally; copy and delete on object stores)."""
    registry.storage.move(src, dst)


def put_back(registry: Registry, moved: dict[str, str]) -> None:
    """Return objects moved aside (aside path -> object path); an object stored again since is
    the same bytes, so either copy will do."""
    for aside, path in moved.items():
        with contextlib.suppress(FileNotFoundError):
            _move(registry, aside, path)


def moved_aside(registry: Registry) -> dict[str, str]:
    """Objects a gc moved aside and never deleted or put back (it was killed, or is running):
    aside path -> object path."""
    out = {}
    for folder in registry.storage.list(TMP):
        if folder.startswith(ASIDE_PREFIX):
            for oid in registry.storage.list(f"{TMP}/{folder}"):
                out[f"{TMP}/{folder}/{oid}"] = f"objects/{oid[:2]}/{oid}"
    return out


def collect_garbage(
    registry: Registry,
    *,
    dry_run: bool = False,
    grace: float = DEFAULT_GRACE,
    ignore_running: bool = False,
) -> GcReport:
    """Delete unreferenced objects and stale temporary files (see the module docstring).

    Args:
        dry_run: only say what would be deleted.
        grace: keep files younger than this many seconds.
        ignore_running: delete unreferenced objects even while runs hold a lease.

    Raises:
        DamagedRecordError: a record that might reference objects cannot be read; nothing is
            deleted (it names the record).
    """
    if not dry_run:
        put_back(registry, moved_aside(registry))
    # the first look: which runs exist (by their records), and which hold a live lease
    listed = registry.runs.list()
    seen = {r.id for r in listed}
    running = tuple(r.id for r in listed if r.status is RunStatus.RUNNING)
    referenced = registry.referenced_ids()
    hold_objects = bool(running) and not ignore_running
    now = time.time()
    records: list[tuple[str, int]] = []  # `.tmp-*` of record writes that never finished
    payloads: list[tuple[str, int]] = []  # objects/tmp/*: artifact writes that never finished
    objects: list[tuple[str, int, str]] = []
    kept = 0
    for path, (size, mtime) in registry.storage.walk("").items():
        age = now - mtime if mtime is not None else float("inf")
        if path.rsplit("/", 1)[-1].startswith(".tmp-") and age >= max(grace, RECORD_TMP_AGE):
            records.append((path, size))
    for path, size, mtime, is_object, object_id in registry.artifacts.files():
        if is_object and object_id in referenced:
            kept += 1
            continue
        if hold_objects or path.startswith(f"{TMP}/{ASIDE_PREFIX}"):
            continue  # (another gc's objects moved aside are only put back, never deleted)
        if mtime is not None and now - mtime < grace:
            continue
        if is_object and object_id is not None:
            objects.append((path, size, object_id))
        else:
            payloads.append((path, size))
    if dry_run:
        doomed = records + payloads + [(p, n) for p, n, _ in objects]
        return GcReport(doomed, kept, running, True)
    for path, _ in records:
        registry.storage.delete(path)
    deleted = list(records)
    if objects or payloads:
        gone, new_runs = _delete_objects(registry, objects, payloads, seen, ignore_running)
        running = running or new_runs
        deleted += [(p, n) for p, n, _ in objects if p in gone]
        deleted += [(p, n) for p, n in payloads if p in gone]
    return GcReport(deleted, kept, running if not ignore_running else (), False)


def _delete_objects(
    registry: Registry,
    objects: list[tuple[str, int, str]],
    payloads: list[tuple[str, int]],
    seen: set[str],
    ignore_running: bool,
) -> tuple[set[str], tuple[str, ...]]:
    """Move ``objects`` aside, list the runs again, and delete or put them back (see the module
    docstring); unfinished ``payloads`` are deleted only if no run appeared either. Returns the
    paths deleted and the runs that appeared since ``seen``."""
    aside = f"{TMP}/{ASIDE_PREFIX}{uuid.uuid4().hex}"
    moved: dict[str, str] = {}
    try:
        for path, _, oid in objects:
            with contextlib.suppress(FileNotFoundError):  # deleted by another gc meanwhile
                _move(registry, path, f"{aside}/{oid}")
                moved[f"{aside}/{oid}"] = path
        new_runs = _new_runs(registry, seen)
        if ignore_running:  # still keep what a run that finished meanwhile recorded
            referenced = registry.referenced_ids() if new_runs else set()
            keep = {a for a in moved if a.rsplit("/", 1)[-1] in referenced}
        else:
            keep = set(moved) if new_runs else set()
    except BaseException:
        put_back(registry, moved)  # a failed second look: keep everything
        raise
    put_back(registry, {a: p for a, p in moved.items() if a in keep})
    registry.storage.delete(aside)
    gone = {p for a, p in moved.items() if a not in keep}
    if ignore_running or not new_runs:
        for path, _ in payloads:
            registry.storage.delete(path)
            gone.add(path)
    return gone, new_runs
