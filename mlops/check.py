"""``mlops check``: verify every record and object of a registry, like ``git fsck``.

Readers raise :class:`~mlops.errors.DamagedRecordError` at the first damaged record they meet;
this module reads *everything* and reports every problem at once, with what depends on it:

* objects -- ``objects/<aa>/<id>`` must hash (xxh3-128) to ``id``; a damaged or missing object
  is listed with the cache entries, runs and model versions that name it;
* models -- every ``version.json``, ``complete.json``, note and stage change, the numbering of
  each sequence (a gap hides the records after it), the stage holders (they must be complete
  versions) and the ``head.json`` hints;
* runs -- ``run.json`` and ``heartbeat.json``;
* cache -- entries (``cache/<aa>/<key>.json``), the per-step index and the file stamps;
* temporary files (``.tmp-*``, ``objects/tmp/``) left by writes that never finished.

A :class:`Finding` is *damage* (``mlops check`` exits 1) when a reader would refuse or mislead
because of it. Incomplete versions, lagging hints and temporary files are normal after a crash
and are listed without being damage.

``repair=True`` does only what cannot lose information or invent state: it rewrites damaged or
lagging hints from the records, deletes cache entries, indexes and file stamps that are damaged or
name objects that are missing or damaged (the step simply runs again), deletes objects whose bytes
do not match their name (nothing can ever load them, and a rerun can only store them again once
they are gone), deletes damaged heartbeats (a damaged lease already reads as expired) and stale
temporary files. It never writes a version, a completion record, a note or a stage change: for
those it says how to recover.
"""

from __future__ import annotations

import argparse
import enum
import json
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from .errors import DamagedRecordError, MlopsError, RunNotFoundError
from .gc import ASIDE_PREFIX, DEFAULT_GRACE, moved_aside, put_back
from .hashing import Hasher
from .names import check_name
from .records import RecordSequence, read_record
from .run_store import RunStatus

if TYPE_CHECKING:
    from .registry import Registry
    from .storage import Storage

__all__ = ["CheckReport", "Finding", "Severity", "check_command", "check_registry"]

_OBJECT_ID = re.compile(r"^[0-9a-f]{32}$")
_SEQ_FILE = re.compile(r"^(\d{8})\.json$")
_SEQ_DIR = re.compile(r"^\d{8}$")
_BLOCK = 8 << 20
#: objects between two progress lines on a terminal
PROGRESS_EVERY = 500


class Severity(str, enum.Enum):
    """How much a finding matters."""

    #: a reader refuses or would mislead: ``mlops check`` exits 1
    DAMAGED = "damaged"
    #: normal after a crash or a race (incomplete version, lagging hint, temporary file)
    NOTICE = "notice"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Finding:
    """One problem: the file (relative to the registry root), what is wrong, who is affected.

    Attributes:
        path: the record or object.
        problem: what is wrong with it.
        severity: damage, or a notice.
        affects: what depends on it (cache entries, runs, versions, stage resolution).
        fix: how to recover, when ``--repair`` cannot.
        repaired: what ``--repair`` did about it ("" if nothing).
        fixed: whether that dealt with it (a complete version's missing artifact is not).
    """

    path: str
    problem: str
    severity: Severity = Severity.DAMAGED
    affects: tuple[str, ...] = ()
    fix: str = ""
    repaired: str = ""
    fixed: bool = False

    @property
    def damaged(self) -> bool:
        return self.severity is Severity.DAMAGED

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "problem": self.problem,
            "severity": str(self.severity),
            "affects": list(self.affects),
            "fix": self.fix,
            "repaired": self.repaired,
            "fixed": self.fixed,
        }


@dataclass(frozen=True)
class CheckReport:
    """Everything :func:`check_registry` found."""

    uri: str
    findings: tuple[Finding, ...]
    objects: int
    records: int
    repair: bool

    @property
    def damage(self) -> tuple[Finding, ...]:
        """The findings that are damage (unrepaired or not)."""
        return tuple(f for f in self.findings if f.damaged)

    @property
    def ok(self) -> bool:
        """True if nothing is damaged, or ``--repair`` dealt with every damage."""
        return all(f.fixed for f in self.damage)

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "ok": self.ok,
            "objects": self.objects,
            "records": self.records,
            "repair": self.repair,
            "damaged": sum(1 for f in self.findings if f.damaged),
            "findings": [f.to_json() for f in self.findings],
        }

    def text(self) -> str:
        lines = []
        for f in self.findings:
            lines.append(f"{f.severity.value.upper():8}  {f.path}: {f.problem}")
            if f.affects:
                lines.append(f"          affects: {'; '.join(f.affects)}")
            if f.repaired:
                lines.append(f"          repaired: {f.repaired}")
            if f.fix and not f.fixed:
                lines.append(f"          fix: {f.fix}")
        n = len(self.damage)
        unrepaired = sum(1 for f in self.damage if not f.fixed)
        summary = f"checked {self.objects} objects and {self.records} records in {self.uri}: " + (
            f"{n} damaged" if n else "no damage"
        )
        if self.repair and n:
            summary += f" ({n - unrepaired} repaired, {unrepaired} left)"
        notices = len(self.findings) - n
        if notices:
            summary += f", {notices} notice{'s' if notices != 1 else ''}"
        if unrepaired and not self.repair:
            summary += ". `mlops check --repair` fixes what is safe to fix"
        lines.append(summary)
        return "\n".join(lines)


class _Checker:
    """One pass over a registry; collects findings and the object dependency map."""

    def __init__(
        self,
        registry: Registry,
        *,
        repair: bool,
        grace: float,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.reg = registry
        self.storage: Storage = registry.storage
        self.repair = repair
        self.grace = grace
        self.progress = progress
        self.findings: list[Finding] = []
        self.records = 0
        #: object id -> who names it ("model iris v3 (trained_model)", "run R step S", ...)
        self.users: dict[str, list[str]] = defaultdict(list)
        #: object id -> the cache entries naming it (deleted by --repair if it is bad)
        self.cache_users: dict[str, list[str]] = defaultdict(list)
        #: object id -> the versions naming it, as (model, number, output, run id)
        self.version_users: dict[str, list[tuple[str, int, str, str | None]]] = defaultdict(list)
        self.bad_objects: dict[str, str] = {}  # object id -> "missing" / "damaged"

    # -- helpers ------------------------------------------------------------------------------

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def damaged(self, e: DamagedRecordError, affects: Iterable[str] = (), fix: str = "") -> None:
        path = e.path or "?"
        problem = str(e)
        m = re.search(r"is damaged \((.*)\)\. Run `mlops check`", problem, re.S)
        self.add(Finding(path, m.group(1) if m else problem, affects=tuple(affects), fix=fix))

    def read(self, rel: str, required: Iterable[str] = ()) -> dict[str, Any] | None:
        """A record, counted; a damaged one is raised to the caller."""
        self.records += 1
        return read_record(self.storage, rel, required)

    def delete(self, rel: str) -> str:
        self.storage.delete(rel)
        return f"deleted {rel}"

    # -- models -------------------------------------------------------------------------------

    def check_sequence(
        self,
        seq: RecordSequence,
        folder: str,
        numbers: list[int],
        what: str,
        affects: tuple[str, ...],
    ) -> int:
        """Numbering and hint of one record sequence; returns the last number readers see."""
        last = seq.last()
        present = set(numbers)
        top = max(present, default=0)
        for n in range(1, top + 1):
            if n not in present:
                self.add(
                    Finding(
                        seq.path_of(n),
                        f"{what} {n} is missing, though {what}s up to {top} exist; readers "
                        f"stop at {what} {min(last, n - 1)}",
                        affects=affects,
                        fix="restore it from a backup",
                    )
                )
                break
        self.check_hint(seq, f"{folder}/head.json", last, what)
        return max(last, top)

    def check_hint(self, seq: RecordSequence, rel: str, last: int, what: str) -> None:
        try:
            data = self.storage.read(rel)
        except FileNotFoundError:
            if last:
                self.hint(rel, last, f"absent while {what}s 1 to {last} exist", Severity.NOTICE)
            return
        self.records += 1
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            self.hint(rel, last, "not valid JSON", Severity.DAMAGED)
            return
        n = doc.get("n") if isinstance(doc, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            self.hint(rel, last, "not a hint ({'n': NUMBER})", Severity.DAMAGED)
        elif n > last:
            self.hint(rel, last, f"says {n}, but the last {what} is {last}", Severity.DAMAGED)
        elif n < last:
            self.hint(rel, last, f"lags: says {n}, the last {what} is {last}", Severity.NOTICE)

    def hint(self, rel: str, last: int, problem: str, severity: Severity) -> None:
        repaired = ""
        if self.repair:
            if last:
                self.storage.write_json(rel, {"n": last})
                repaired = f"rewrote it: {{'n': {last}}}"
            else:
                repaired = self.delete(rel)
        self.add(
            Finding(
                rel,
                f"hint {problem}",
                severity,
                fix="`mlops check --repair` rewrites it (a hint only saves probes)",
                repaired=repaired,
                fixed=self.repair,
            )
        )

    def check_model(self, name: str) -> None:
        check_name("model", name)
        models = self.reg.models
        base = f"models/{name}"
        what_reads = (f"model '{name}': versions, latest, stages",)
        vfolder = f"{base}/versions"
        vnums = [int(e) for e in self.storage.list(vfolder) if _SEQ_DIR.match(e)]
        seq = models._versions(name)
        top = self.check_sequence(seq, vfolder, vnums, "version", what_reads)
        complete: set[int] = set()
        existing: set[int] = set()
        for n in range(1, top + 1):
            vrel = seq.path_of(n)
            try:
                doc = self.read(vrel)
            except DamagedRecordError as e:
                self.damaged(e, what_reads, "restore it from a backup")
                existing.add(n)
                continue
            if doc is None:
                self.add(
                    Finding(
                        vrel,
                        f"missing, though versions up to {top} exist",
                        affects=what_reads,
                        fix="restore it from a backup",
                    )
                )
                continue
            existing.add(n)
            try:
                doc = models._version_doc(name, n, doc)
                crel = f"{models._vdir(name, n)}/complete.json"
                done = self.read(crel, ("artifacts", "metadata"))
                tomb = read_record(self.storage, f"{models._vdir(name, n)}/deleted.json")
                mv = models._build(name, n, doc, done, "none", (), tomb)
            except DamagedRecordError as e:
                self.damaged(e, (f"model '{name}' version {n}", *what_reads), "restore it")
                continue
            if not mv.complete:
                self.add(Finding(vrel, self.incomplete(mv), Severity.NOTICE))
                continue
            complete.add(n)
            for out, ref in mv.artifacts.items():
                self.users[ref.id].append(f"model '{name}' version {n} ('{out}')")
                self.version_users[ref.id].append((name, n, out, mv.run_id))
        self.check_notes(name, complete)
        self.check_stages(name, existing, complete)

    def incomplete(self, mv: Any) -> str:
        status = "unknown"
        if mv.run_id:
            try:
                status = str(self.reg.runs.get(mv.run_id).status)
            except RunNotFoundError:
                status = "not found"
            except MlopsError:
                status = "damaged"
        return (
            f"version {mv.number} of '{mv.name}' is incomplete (run {mv.run_id}: {status}); "
            "it is never listed as complete, resolved or staged"
        )

    def check_notes(self, name: str, complete: set[int]) -> None:
        models = self.reg.models
        folder = f"models/{name}/notes"
        nums = [int(m.group(1)) for e in self.storage.list(folder) if (m := _SEQ_FILE.match(e))]
        seq = models._notes(name)
        top = self.check_sequence(seq, folder, nums, "note", (f"model '{name}': notes",))
        for n in range(1, top + 1):
            rel = seq.path_of(n)
            try:
                doc = self.read(rel, ("version", "values"))
                if doc is None:
                    continue
                note = models._note(rel, doc, name, n)
            except DamagedRecordError as e:
                self.damaged(e, (f"model '{name}': versions (notes)",), "restore it from a backup")
                continue
            if note.version not in complete:
                self.add(
                    Finding(
                        rel,
                        f"a note on version {note.version}, which is not a complete version",
                        affects=(f"model '{name}': versions (notes)",),
                        fix="restore it from a backup",
                    )
                )

    def check_stages(self, name: str, existing: set[int], complete: set[int]) -> None:
        models = self.reg.models
        folder = f"models/{name}/stages"
        nums = [int(m.group(1)) for e in self.storage.list(folder) if (m := _SEQ_FILE.match(e))]
        seq = models._stages(name)
        resolution = (f"model '{name}': stage resolution (production, staging), history, rollback",)
        last = seq.last()
        top = self.check_sequence(seq, folder, nums, "stage change", resolution)
        for n in range(1, top + 1):
            rel = seq.path_of(n)
            self.records += 1
            if not self.storage.has_record(rel):
                continue
            try:
                change = models._change(rel, n)
            except DamagedRecordError as e:
                self.damaged(
                    e,
                    resolution if n == last else (f"model '{name}': history, rollback",),
                    "restore it from a backup; `mlops check --repair` never rewrites stages",
                )
                continue
            named = [v for v in (*change.holders.values(), *change.archived) if v is not None]
            for v in named:
                if v in complete:
                    continue
                state = "incomplete" if v in existing else "missing"
                self.add(
                    Finding(
                        rel,
                        f"stage change {n} names version {v}, which is {state}",
                        affects=resolution,
                        fix="restore the record (or the version) from a backup; stages are "
                        "never rewritten by --repair",
                    )
                )

    # -- runs ---------------------------------------------------------------------------------

    def check_runs(self) -> None:
        runs = self.reg.runs
        for rid in runs.ids():
            rel = runs._path(rid)
            affects = ("mlops runs, show-run, gc",)
            try:
                self.records += 1
                run = runs.get(rid)
            except RunNotFoundError:
                self.add(
                    Finding(
                        rel,
                        "missing: the run's folder has no record",
                        affects=affects,
                        fix="restore it from a backup",
                    )
                )
                continue
            except DamagedRecordError as e:
                self.damaged(e, affects, "restore it from a backup")
                continue
            except MlopsError as e:  # an invalid folder name
                self.add(Finding(f"runs/{rid}", str(e), affects=affects))
                continue
            beat = runs._beat_path(rid)
            try:
                self.read(beat)
            except DamagedRecordError as e:
                repaired = self.delete(beat) if self.repair else ""
                self.add(
                    Finding(
                        beat,
                        f"{_problem(e)}; it reads as an expired lease",
                        fix="`mlops check --repair` deletes it",
                        repaired=repaired,
                        fixed=self.repair,
                    )
                )
            for step, rec in run.step_records.items():
                for out, ref in (rec.get("outputs") or {}).items():
                    self.users[str(ref["id"])].append(f"run {rid} step '{step}' ('{out}')")
            if run.status is RunStatus.RUNNING:
                self.add(Finding(rel, f"run {rid} is running", Severity.NOTICE))

    # -- cache --------------------------------------------------------------------------------

    def check_cache(self) -> None:
        from .cache_store import CacheEntry

        cache = self.reg.cache
        for key in cache.entry_keys():
            rel = cache.entry_path(key)
            problem = ""
            try:
                doc = self.read(rel)
                if doc is not None:
                    entry = CacheEntry.from_json(doc)
                    if entry.cache_key != key:
                        problem = f"it is the entry of another key ({entry.cache_key})"
                    for out, ref in entry.outputs.items():
                        self.users[ref.id].append(f"cache entry {key[:12]} ('{out}')")
                        self.cache_users[ref.id].append(rel)
            except DamagedRecordError as e:
                problem = _problem(e)
            except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
                problem = f"wrong shape: {type(e).__name__}: {e}"
            if problem:
                self.add(
                    Finding(
                        rel,
                        problem,
                        affects=("gc (refuses to run)", f"the step with cache key {key[:12]}"),
                        fix="`mlops check --repair` deletes it (the step runs again)",
                        repaired=self.delete(rel) if self.repair else "",
                        fixed=self.repair,
                    )
                )
        for path in self.storage.walk("cache"):
            parts = path.split("/")
            if (
                parts[-1].startswith(".tmp-")
                or len(parts) < 3
                or parts[1] not in ("steps", "files")
            ):
                continue
            try:
                doc = self.read(path)
            except DamagedRecordError as e:
                doc, problem = None, _problem(e)
            else:
                problem = "" if doc is None else _cache_side_problem(parts[1], doc)
            if problem:
                what = "a step's cache index" if parts[1] == "steps" else "a file's stamp"
                self.add(
                    Finding(
                        path,
                        f"{what}: {problem}",
                        affects=("plans (why a step runs)",)
                        if parts[1] == "steps"
                        else ("the hash of a declared input file",),
                        fix="`mlops check --repair` deletes it (it is rebuilt by the next run)",
                        repaired=self.delete(path) if self.repair else "",
                        fixed=self.repair,
                    )
                )

    # -- objects ------------------------------------------------------------------------------

    def check_objects(self) -> int:
        files = self.reg.artifacts.files()
        objects = [(p, oid) for p, _, _, is_obj, oid in files if is_obj and oid is not None]
        total = len(objects)
        seen: set[str] = set()
        for i, (path, oid) in enumerate(objects, 1):
            seen.add(oid)
            problem = ""
            if not _OBJECT_ID.match(oid) or path.split("/")[1] != oid[:2]:
                problem = "not an object: its name is not a content hash in its folder"
            elif not self.hashes_to(path, oid):
                problem = "its bytes do not hash to its name (corrupted)"
                self.bad_objects[oid] = "damaged"
            if problem:
                self.object_finding(path, oid, problem)
            if self.progress is not None and (i % PROGRESS_EVERY == 0 or i == total):
                self.progress(i, total)
        aside = {p.rsplit("/", 1)[-1]: (a, p) for a, p in moved_aside(self.reg).items()}
        for oid in sorted(set(self.users) - seen):
            path = f"objects/{oid[:2]}/{oid}"
            if oid in aside:
                self.add(
                    Finding(
                        path,
                        f"missing: a gc moved it aside to {aside[oid][0]} and has not put it "
                        "back (it is still running, or was killed)",
                        affects=tuple(self.users[oid]),
                        fix="`mlops gc` or `mlops check --repair` puts it back",
                        repaired=f"put back from {aside[oid][0]}" if self.repair else "",
                        fixed=self.repair,
                    )
                )
                if self.repair:
                    put_back(self.reg, {aside[oid][0]: path})
                continue
            self.bad_objects[oid] = "missing"
            self.object_finding(path, oid, "missing")
        return total

    def hashes_to(self, path: str, oid: str) -> bool:
        h = Hasher()
        with self.storage.open(path) as f:
            while block := f.read(_BLOCK):
                h.update(block)
        return h.hexdigest() == oid

    def object_finding(self, path: str, oid: str, problem: str) -> None:
        done: list[str] = []
        if self.repair:
            for rel in self.cache_users.get(oid, []):
                done.append(self.delete(rel))
            if problem != "missing":
                done.append(self.delete(path))
        fixes = []
        for name, n, out, run_id in self.version_users.get(oid, []):
            fixes.append(
                f"model '{name}' version {n} links it as '{out}' and its completion record is "
                f"never rewritten: restore {path} from a backup, or re-run the pipeline of run "
                f"{run_id} with the same config (same inputs store the same bytes again"
                + ("" if problem == "missing" or self.repair else f" once {path} is deleted")
                + f"); meanwhile move its stages away (`mlops rollback {name} production`)"
            )
        if not fixes and not self.repair:
            fixes.append("`mlops check --repair` deletes it and the cache entries that name it")
        self.add(
            Finding(
                path,
                problem,
                affects=tuple(self.users.get(oid, ())),
                fix="; ".join(fixes),
                repaired="; ".join(done),
                # the records of versions and runs are never rewritten: what they name stays
                # damage until the object is back
                fixed=self.repair
                and not any(u.startswith(("model ", "run ")) for u in self.users.get(oid, ())),
            )
        )

    # -- temporary files ----------------------------------------------------------------------

    def check_temporary(self) -> None:
        now = time.time()
        for path, (_, mtime) in sorted(self.storage.walk("").items()):
            name = path.rsplit("/", 1)[-1]
            if not (name.startswith(".tmp-") or path.startswith("objects/tmp/")):
                continue
            if path.startswith(f"objects/tmp/{ASIDE_PREFIX}"):
                self.add(
                    Finding(
                        path,
                        "an object a gc moved aside before deleting it; if that gc was killed, "
                        "the next `mlops gc` puts it back",
                        Severity.NOTICE,
                    )
                )
                continue
            if mtime is not None and now - mtime < self.grace:
                continue  # a write may be in progress
            self.add(
                Finding(
                    path,
                    "a temporary file left by a write that never finished",
                    Severity.NOTICE,
                    fix="`mlops check --repair` (or `mlops gc`) deletes it",
                    repaired=self.delete(path) if self.repair else "",
                    fixed=self.repair,
                )
            )

    def run(self) -> CheckReport:
        for name in self.reg.models.list_models():
            try:
                self.check_model(name)
            except DamagedRecordError as e:  # met outside the records checked one by one
                self.damaged(e, (f"model '{name}'",))
            except MlopsError as e:  # a folder that cannot be a model (an invalid name)
                self.add(Finding(f"models/{name}", f"not a model: {e}"))
        self.check_runs()
        self.check_cache()
        objects = self.check_objects()
        self.check_temporary()
        return CheckReport(self.reg.uri, tuple(self.findings), objects, self.records, self.repair)


def _problem(e: DamagedRecordError) -> str:
    m = re.search(r"is damaged \((.*)\)\. Run `mlops check`", str(e), re.S)
    return m.group(1) if m else str(e)


def _cache_side_problem(kind: str, doc: Mapping[str, Any]) -> str:
    if kind == "steps":
        if not isinstance(doc.get("key"), str) or not isinstance(doc.get("ingredients"), dict):
            return "wrong shape: needs a string 'key' and an object 'ingredients'"
        return ""
    if not all(isinstance(doc.get(k), str) for k in ("path", "stamp", "digest")):
        return "wrong shape: needs strings 'path', 'stamp' and 'digest'"
    return ""


def check_registry(
    registry: Registry,
    *,
    repair: bool = False,
    grace: float = DEFAULT_GRACE,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Verify every record and object of ``registry`` (see the module docstring).

    Args:
        repair: also do what is safe to do about what is found.
        grace: temporary files younger than this (seconds) may belong to a running write.
        progress: called with (objects checked, objects in all) while objects are hashed.

    Returns:
        What was found; ``report.ok`` is False if anything is damaged (and not repaired).

    .. versionadded:: 0.3
    """
    return _Checker(registry, repair=repair, grace=grace, progress=progress).run()


def _terminal_progress(stream: IO[str]) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        print(f"checked {done}/{total} objects", file=stream, flush=True)

    return show


class DamageFoundError(MlopsError):
    """``mlops check`` found damage (the report is printed before this)."""


def check_command(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """The ``mlops check`` command: print the report; exit 1 (via an error) if damaged."""
    progress = _terminal_progress(sys.stderr) if sys.stderr.isatty() else None
    report = check_registry(reg, repair=args.repair, grace=args.grace, progress=progress)
    if report.ok:
        return report.to_json(), report.text()
    if args.json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True, default=str))
    else:
        print(report.text())
    left = sum(1 for f in report.damage if not f.fixed)
    raise DamageFoundError(
        f"registry '{reg.uri}': {left} damaged record{'s' if left != 1 else ''} or object"
        f"{'s' if left != 1 else ''} (listed above)"
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``mlops check``."""
    p.add_argument(
        "--repair",
        action="store_true",
        help="do what is safe: rewrite hints, delete damaged cache entries and those naming "
        "missing or damaged objects, corrupted objects, damaged heartbeats and stale "
        "temporary files; never rewrites a version or a stage",
    )
    p.add_argument(
        "--grace",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_GRACE,
        help=f"temporary files younger than this may be in use (default {DEFAULT_GRACE:.0f})",
    )
