"""Garbage collection: delete the artifacts nothing references, and leftover temporary files.

What is referenced is asked of the stores that own the records (:meth:`Registry.referenced_ids`:
cache entries, run records, model versions), never worked out by matching their paths. An object
is kept if any of them names it, or if it was written in the last ``grace`` seconds.

**Safe under concurrent runs.** A running pipeline may store an object, or reuse an orphaned one
by its content hash, and record it a moment later; between gc's listing of references and its
deletions, that record would be missed. So while any run holds a live lease (it is ``running``
and beating, see :mod:`mlops.run_store`), gc deletes no objects -- only temporary files older than
the grace period -- and says which runs it waited for. Abandoned runs hold no lease.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .run_store import RunStatus

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["DEFAULT_GRACE", "GcReport", "collect_garbage"]

DEFAULT_GRACE = 3600.0


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


def collect_garbage(
    registry: Registry,
    *,
    dry_run: bool = False,
    grace: float = DEFAULT_GRACE,
    ignore_running: bool = False,
) -> GcReport:
    """Delete unreferenced objects and stale temporary files (see the module docstring).

    Raises:
        DamagedRecordError: a record that might reference objects cannot be read; nothing is
            deleted (it names the record).
    """
    running = tuple(r.id for r in registry.runs.list() if r.status is RunStatus.RUNNING)
    referenced = registry.referenced_ids()
    hold_objects = bool(running) and not ignore_running
    now = time.time()
    doomed: list[tuple[str, int]] = []
    kept = 0
    files: list[tuple[str, int, float | None, bool, str | None]] = [
        (path, size, mtime, False, None)
        for path, (size, mtime) in registry.storage.walk("").items()
        if path.rsplit("/", 1)[-1].startswith(".tmp-")  # a write that never finished
    ]
    files += registry.artifacts.files()
    for path, size, mtime, is_object, object_id in files:
        if is_object and object_id in referenced:
            kept += 1
            continue
        if is_object and hold_objects:
            continue
        if mtime is not None and now - mtime < grace:
            continue
        doomed.append((path, size))
    if not dry_run:
        for path, _ in doomed:
            registry.storage.delete(path)
    return GcReport(doomed, kept, running if hold_objects else (), dry_run)
