"""The model registry: model versions, their artifacts and metadata, and their stages.

It owns ``models/`` under the registry root, and nothing else::

    models/<name>/versions/head.json                      hint: the last version number
    models/<name>/versions/00000007/version.json          the number, taken when the run starts
    models/<name>/versions/00000007/complete.json         the version's artifacts and metrics,
                                                          written once, when its run has made them
    models/<name>/versions/00000007/deleted.json          a tombstone (who, when): the version was
                                                          deleted; its number is never reused
    models/<name>/notes/00000003.json                     metadata added later (append-only)
    models/<name>/stages/00000012.json                    the stage history (append-only)

**Whole or invisible.** A run takes its version number first (a create-if-absent write of
``version.json``: of several writers racing for number 8 exactly one wins) and writes
``complete.json`` -- every artifact and metric the run links -- once everything is made. Until
then, and forever if the run dies, the version is ``incomplete``: listed as such, skipped by
``latest``, refused by stages. Records are never rewritten; metadata logged after a version is
complete is an appended note with who and when.

**Reads never write**: resolving ``latest`` or a stage reads a bounded number of records and moves
no hint. **Damage is loud**: a record that exists but does not read raises
:class:`~mlops.errors.DamagedRecordError` naming it, never an older state.

Registries written by mlops 0.1 (artifacts and metadata as one record each under the version's
folder, no ``complete.json``) are read as they are: such a version counts as complete when it has
at least one linked artifact.
"""

from __future__ import annotations

import enum
import getpass
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ModelNotFoundError, StageError, did_you_mean
from .names import check_name
from .records import RecordSequence, damaged, read_record, read_records
from .stages import (
    EXCLUSIVE,
    SETTABLE,
    ChangeReason,
    ModelStages,
    StageChange,
    check_stage,
    holder_stack,
    next_assignment,
)
from .storage import Storage
from .store import ArtifactRef

__all__ = [
    "ModelRegistry",
    "ModelVersion",
    "Note",
    "VersionActions",
    "VersionStatus",
]

_FORMAT = 2  # version.json of this layout; 0.1 wrote none
_OBJECT_ID = re.compile(r"^[0-9a-f]{32}$")


class VersionStatus(str, enum.Enum):
    """Whether a version's run finished making it (only complete versions can be used)."""

    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    #: deleted by ``mlops versions delete``: its number stays taken, its contents are gone
    DELETED = "deleted"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Note:
    """Metadata added to a version after it was complete: never overwrites what its run wrote."""

    version: int
    values: Mapping[str, Any]
    user: str
    time: float
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "values": dict(self.values),
            "user": self.user,
            "time": self.time,
            "run_id": self.run_id,
        }


class VersionActions(Protocol):
    """What a :class:`ModelVersion` value's methods do; given by whoever handed the value out."""

    def load(self, ref: ArtifactRef) -> Any: ...

    def log_metadata(self, mv: ModelVersion, values: Mapping[str, Any]) -> None: ...

    def set_stage(self, mv: ModelVersion, stage: str, force: bool) -> StageChange | None: ...


@dataclass(frozen=True)
class ModelVersion:
    """A model version as read from the registry: a frozen value.

    Attributes:
        name, number: which version.
        run_id: the run that made it.
        created: when its number was taken (seconds since the epoch).
        status: ``complete`` once its run wrote every artifact and metric; else ``incomplete``.
        stage: its stage when it was read (``staging``, ``production``, ``archived``, ``none``).
        artifacts: the artifacts its run linked, by output name.
        metadata: the metrics and metadata its run recorded.
        notes: metadata added afterwards, oldest first.
    """

    name: str
    number: int
    run_id: str | None
    created: float
    status: VersionStatus = VersionStatus.COMPLETE
    stage: str = "none"
    artifacts: Mapping[str, ArtifactRef] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[Note, ...] = ()
    actions: VersionActions | None = field(default=None, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        return self.status is VersionStatus.COMPLETE

    def get_artifact_ref(self, name: str) -> ArtifactRef:
        """The reference of the artifact linked as ``name``."""
        check_name("artifact", name)
        if name not in self.artifacts:
            linked = sorted(self.artifacts)
            raise ModelNotFoundError(
                f"model '{self.name}' version {self.number} has no artifact '{name}'; "
                f"linked artifacts: {', '.join(linked) if linked else '(none)'}."
                f"{did_you_mean(name, linked)}"
            )
        return self.artifacts[name]

    def _actions(self) -> VersionActions:
        if self.actions is None:
            raise ModelNotFoundError(
                f"model '{self.name}' version {self.number} was not read from a registry"
            )
        return self.actions

    def get_model_artifact(self, name: str) -> Any:
        """Load the artifact linked to this version under ``name`` (e.g. ``trained_model``)."""
        return self._actions().load(self.get_artifact_ref(name))

    def log_metadata(self, values: Mapping[str, Any]) -> None:
        """Record metadata (JSON-able values) for this version.

        Inside the run that creates the version it becomes part of the version; afterwards it
        is an appended note with who and when (the version's own metadata never changes).
        """
        for key in values:
            check_name("metadata key", key)
        self._actions().log_metadata(self, values)

    def set_stage(self, stage: str | ModelStages, force: bool = False) -> None:
        """Move this version to ``stage``.

        ``staging`` and ``production`` have one holder each: if another version holds the
        stage, ``force=True`` moves it to ``archived``; without it this is a StageError. Asked
        by the run that creates the version, the change is made once the version is complete.
        """
        self._actions().set_stage(self, check_stage(stage, SETTABLE), force)

    def __mlops_token__(self) -> Any:
        return [self.name, self.number]


def _stage_map(change: StageChange | None) -> dict[int, str]:
    """Version number -> stage after ``change``, for every version not in ``none``.

    The same answers as :meth:`StageChange.stage_of`, computed once for all versions.
    """
    if change is None:
        return {}
    out = dict.fromkeys(change.archived, "archived")
    for stage, number in change.holders.items():
        if number is not None and change.stage_of(number) == stage:
            out[number] = stage
    return out


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _ref(doc: Any) -> ArtifactRef:
    """An artifact reference from a record; TypeError if the record does not hold one."""
    d = _mapping(doc)
    oid, fmt, size = d["id"], d["format"], d["size"]
    if (
        not isinstance(oid, str)
        or not _OBJECT_ID.match(oid)
        or not isinstance(fmt, str)
        or isinstance(size, bool)
        or not isinstance(size, int)
        or size < 0
    ):
        raise TypeError(f"not an artifact reference: {dict(d)!r:.100}")
    return ArtifactRef(oid, fmt, size)


def _contradiction(change: StageChange, doc: Mapping[str, Any]) -> str:
    """What makes a well-typed stage change impossible ("" if nothing): its assignment must
    name real version numbers and agree with the change it records."""
    holders = doc["holders"]
    if any(stage not in holders for stage in EXCLUSIVE):
        return f"wrong shape: holders must name {' and '.join(EXCLUSIVE)}"
    named = [v for v in (*change.holders.values(), *change.archived, change.version) if v]
    if any(v < 1 for v in named) or any(v is not None and v < 1 for v in change.holders.values()):
        return "it names a version number below 1"
    if change.version is None:
        return "wrong shape: it names no version"
    if change.stage in EXCLUSIVE and change.holders.get(change.stage) != change.version:
        return f"it moves version {change.version} to {change.stage!r}, but its holders disagree"
    if change.stage == "archived" and change.version not in change.archived:
        return f"it archives version {change.version}, but its archived list disagrees"
    if change.stage == "none" and change.stage_of(change.version) != "none":
        return f"it takes version {change.version} out of every stage, but it still has one"
    return ""


def _have(last: int) -> str:
    """How many versions a model has, for messages: "versions 1 to 3", "only version 1"."""
    if not last:
        return "no versions yet"
    return "only version 1" if last == 1 else f"versions 1 to {last}"


class ModelRegistry:
    """Model versions and stages under ``models/`` of a storage (see the module docstring).

    Examples:
        >>> from mlops.storage import open_storage
        >>> models = ModelRegistry(open_storage("memory://doctest-models"))
        >>> n = models.create_version("iris", run_id="r1")
        >>> models.resolve("iris", "latest")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mlops.errors.ModelNotFoundError: model 'iris' has no complete version yet: ...
        >>> models.complete_version("iris", n, {}, {"accuracy": 0.9}).status
        <VersionStatus.COMPLETE: 'complete'>
        >>> models.resolve("iris", "latest").metadata
        {'accuracy': 0.9}
    """

    def __init__(self, storage: Storage, actions: VersionActions | None = None) -> None:
        self.storage = storage
        #: what the methods of the versions this registry hands out do (load, stage, note)
        self.actions = actions

    # -- paths (this module is the only one that spells them) ----------------------------------

    @staticmethod
    def _vdir(name: str, number: int) -> str:
        return f"models/{name}/versions/{number:08d}"

    def _versions(self, name: str) -> RecordSequence:
        return RecordSequence(
            self.storage,
            f"models/{name}/versions",
            lambda n: f"{self._vdir(name, n)}/version.json",
        )

    def _stages(self, name: str) -> RecordSequence:
        return RecordSequence(
            self.storage, f"models/{name}/stages", lambda n: f"models/{name}/stages/{n:08d}.json"
        )

    def _notes(self, name: str) -> RecordSequence:
        return RecordSequence(
            self.storage, f"models/{name}/notes", lambda n: f"models/{name}/notes/{n:08d}.json"
        )

    # -- reading ------------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Names of the models that have a folder in the registry, sorted."""
        return [n for n in self.storage.list("models") if not n.startswith(".")]

    def last_number(self, name: str) -> int:
        """The highest version number taken (complete or not); 0 if none."""
        return self._versions(check_name("model", name)).last()

    def _version_doc(self, name: str, number: int, doc: dict[str, Any] | None) -> dict[str, Any]:
        rel = f"{self._vdir(name, number)}/version.json"
        if doc is None:
            raise damaged(self.storage, rel, "missing, though later versions exist")
        got, owner = doc.get("number"), doc.get("name")
        if isinstance(got, bool) or not isinstance(got, int) or not isinstance(owner, str):
            raise damaged(self.storage, rel, "wrong shape: needs a 'number' and a 'name'")
        if got != number or owner != name:
            raise damaged(self.storage, rel, "it belongs to another version or model")
        fmt = doc.get("format")
        if fmt is not None and (isinstance(fmt, bool) or not isinstance(fmt, int)):
            raise damaged(self.storage, rel, f"wrong shape: format is {fmt!r}")
        return doc

    def _build(
        self,
        name: str,
        number: int,
        doc: dict[str, Any],
        done: dict[str, Any] | None,
        stage: str,
        notes: tuple[Note, ...],
        tombstone: dict[str, Any] | None = None,
    ) -> ModelVersion:
        vrel = f"{self._vdir(name, number)}/version.json"
        rel = f"{self._vdir(name, number)}/complete.json"
        try:
            created = float(doc.get("created", 0.0))
            run_id = doc.get("run_id")
            if run_id is not None and not isinstance(run_id, str):
                raise TypeError(f"run_id is a {type(run_id).__name__}")
        except (TypeError, ValueError, ArithmeticError) as e:
            raise damaged(self.storage, vrel, f"wrong shape: {e}") from None
        artifacts: dict[str, ArtifactRef] = {}
        metadata: dict[str, Any] = {}
        status = VersionStatus.INCOMPLETE
        try:
            if tombstone is not None:
                status = VersionStatus.DELETED
                metadata = {"deleted_by": tombstone.get("user"), "deleted": tombstone.get("time")}
            elif done is not None:
                if done.get("number", number) != number or done.get("name", name) != name:
                    raise damaged(self.storage, rel, "it belongs to another version or model")
                status = VersionStatus.COMPLETE
                artifacts = {
                    str(k): _ref(v["artifact"]) for k, v in _mapping(done["artifacts"]).items()
                }
                metadata = dict(_mapping(done["metadata"]))
            elif doc.get("format") is None:  # written by mlops 0.1
                artifacts, metadata = self._legacy_contents(name, number)
                if artifacts:
                    status = VersionStatus.COMPLETE
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
            raise damaged(self.storage, rel, f"wrong shape: {e}") from None
        return ModelVersion(
            name=name,
            number=number,
            run_id=run_id,
            created=created,
            status=status,
            stage=stage,
            artifacts=artifacts,
            metadata=metadata,
            notes=notes,
            actions=self.actions,
        )

    def _legacy_contents(
        self, name: str, number: int
    ) -> tuple[dict[str, ArtifactRef], dict[str, Any]]:
        folder = self._vdir(name, number)
        arts = [f"{folder}/artifacts/{e}" for e in self.storage.list(f"{folder}/artifacts")]
        metas = [f"{folder}/metadata/{e}" for e in self.storage.list(f"{folder}/metadata")]
        arts = [p for p in arts if p.endswith(".json") and "/." not in p]
        metas = [p for p in metas if p.endswith(".json") and "/." not in p]
        artifacts: dict[str, ArtifactRef] = {}
        metadata: dict[str, Any] = {}
        for p, d in read_records(self.storage, arts, ("artifact",)).items():
            try:
                artifacts[p.rsplit("/", 1)[-1][: -len(".json")]] = _ref(d["artifact"])
            except (TypeError, ValueError, KeyError) as e:
                raise damaged(self.storage, p, f"wrong shape: {e}") from None
        for p, d in read_records(self.storage, metas, ("key", "value")).items():
            if not isinstance(d["key"], str):
                raise damaged(self.storage, p, "wrong shape: its key is not a string")
            metadata[d["key"]] = d["value"]
        return artifacts, metadata

    def _note(self, rel: str, doc: dict[str, Any], name: str, seq: int) -> Note:
        """The note in record ``seq`` of model ``name``; damaged if it is not one."""
        try:
            version, values, run_id = doc["version"], doc["values"], doc.get("run_id")
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise TypeError(f"version is {version!r}, not a version number")
            if not isinstance(values, Mapping):
                raise TypeError("values is not an object")
            if run_id is not None and not isinstance(run_id, str):
                raise TypeError("run_id is not a string")
            if doc.get("name", name) != name or doc.get("seq", seq) != seq:
                raise ValueError("it belongs to another model or position")
            return Note(
                version, dict(values), str(doc.get("user", "")), float(doc.get("time", 0.0)), run_id
            )
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raise damaged(self.storage, rel, f"wrong shape: {e}") from None

    def _read_notes(self, name: str) -> list[Note]:
        seq = self._notes(name)
        last = seq.last()
        if not last:
            return []
        paths = [seq.path_of(n) for n in range(1, last + 1)]
        docs = read_records(self.storage, paths, ("version", "values"))
        out = []
        versions = self.last_number(name)
        for n, p in enumerate(paths, 1):
            d = docs.get(p)
            if d is None:
                raise damaged(self.storage, p, "missing, though later notes exist")
            note = self._note(p, d, name, n)
            if note.version > versions:
                raise damaged(
                    self.storage, p, f"a note on version {note.version}, which does not exist"
                )
            out.append(note)
        return out

    def read_version(self, name: str, number: int) -> ModelVersion | None:
        """Version ``number`` of ``name`` whatever its status, or None if it was never taken."""
        check_name("model", name)
        doc = read_record(self.storage, f"{self._vdir(name, number)}/version.json")
        if doc is None:
            return None
        doc = self._version_doc(name, number, doc)
        done = read_record(
            self.storage, f"{self._vdir(name, number)}/complete.json", ("artifacts", "metadata")
        )
        tomb = read_record(self.storage, f"{self._vdir(name, number)}/deleted.json")
        stages = self.current_stages(name)
        notes = tuple(n for n in self._read_notes(name) if n.version == number)
        return self._build(
            name, number, doc, done, stages.stage_of(number) if stages else "none", notes, tomb
        )

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name`` (complete or not), by number; [] for an unknown model."""
        check_name("model", name)
        last = self.last_number(name)
        vpaths = [f"{self._vdir(name, n)}/version.json" for n in range(1, last + 1)]
        cpaths = [f"{self._vdir(name, n)}/complete.json" for n in range(1, last + 1)]
        vdocs = read_records(self.storage, vpaths)
        cdocs = read_records(self.storage, cpaths, ("artifacts", "metadata"))
        tpaths = [f"{self._vdir(name, n)}/deleted.json" for n in range(1, last + 1)]
        tdocs = read_records(self.storage, tpaths)
        stages = self.current_stages(name)
        stage_of = _stage_map(stages)
        all_notes = self._read_notes(name)
        notes: dict[int, list[Note]] = {}
        for note in all_notes:
            notes.setdefault(note.version, []).append(note)
        # the stage and notes of every version come from one pass over the stage record and the
        # notes, not a scan of them per version (which made listing quadratic)
        versions = [
            self._build(
                name,
                n,
                self._version_doc(name, n, vdocs.get(v)),
                cdocs.get(c),
                stage_of.get(n, "none"),
                tuple(notes.get(n, ())),
                tdocs.get(t),
            )
            for n, v, c, t in zip(range(1, last + 1), vpaths, cpaths, tpaths, strict=True)
        ]

        def kept(v: int) -> bool:  # complete, or complete once and since deleted
            return versions[v - 1].status is not VersionStatus.INCOMPLETE

        for i, note in enumerate(all_notes, 1):
            if not kept(note.version):
                raise damaged(
                    self.storage,
                    self._notes(name).path_of(i),
                    f"a note on version {note.version}, which is incomplete",
                )
        if stages is not None:
            # a staging or production holder is complete; an archived one may since be deleted
            for v, ok in [
                *((h, lambda v: versions[v - 1].complete) for h in stages.holders.values()),
                *((a, kept) for a in stages.archived),
            ]:
                if v is not None and (v > last or not ok(v)):
                    raise damaged(
                        self.storage,
                        self._stages(name).path_of(stages.seq),
                        f"it gives a stage to version {v}, which "
                        + ("does not exist" if v > last else "is incomplete"),
                    )
        return versions

    def resolve(self, name: str, version: int | str | ModelStages = "latest") -> ModelVersion:
        """Resolve ``version`` -- a number, ``"latest"`` or a stage -- to a complete version.

        ``latest`` is the highest complete version. Reads a bounded number of records however
        many versions the model has, and writes nothing.

        Raises:
            ModelNotFoundError: no such model or version, nothing holds the stage, or the
                version named is incomplete.
            StageError: ``version`` is neither a number, ``latest`` nor a stage.
        """
        check_name("model", name)
        spec: Any = version.value if isinstance(version, ModelStages) else version
        if isinstance(spec, str) and spec.isdigit():
            spec = int(spec)
        if isinstance(spec, bool) or not isinstance(spec, (int, str)):
            raise StageError(f"model version must be a number or a stage, got {version!r}")
        if isinstance(spec, int):
            mv = self.read_version(name, spec) if spec > 0 else None
            if mv is None:
                have = _have(self.last_number(name))
                raise ModelNotFoundError(f"model '{name}' has no version {spec} (it has {have})")
            if mv.status is VersionStatus.DELETED:
                who = mv.metadata.get("deleted_by")
                raise ModelNotFoundError(
                    f"model '{name}' version {spec} was deleted (by {who}); see "
                    f"`mlops versions {name}` for the versions there are"
                )
            if not mv.complete:
                raise ModelNotFoundError(self._incomplete(mv))
            return mv
        if spec == "latest":
            last = self.last_number(name)
            for n in range(last, 0, -1):
                mv = self.read_version(name, n)
                if mv is not None and mv.complete:
                    return mv
            raise ModelNotFoundError(self._no_versions(name, last))
        stage = check_stage(spec, ("staging", "production", "archived"), resolving=True)
        current = self.current_stages(name)
        number: int | None = None
        if current is not None:
            number = (
                max(current.archived, default=None)
                if stage == "archived"
                else current.holders.get(stage)
            )
        if number is None:
            last = self.last_number(name)
            if not last:
                raise ModelNotFoundError(self._no_versions(name, last))
            raise ModelNotFoundError(
                f"model '{name}' has no version in stage '{stage}'. "
                f"{self._how_to_promote(name, stage, last)}"
            )
        mv = self.read_version(name, number)
        if mv is None:
            raise damaged(
                self.storage,
                self._stages(name).path_of(current.seq if current else 0),
                f"it puts version {number}, which does not exist, in '{stage}'",
            )
        if not mv.complete:
            raise damaged(
                self.storage,
                self._stages(name).path_of(current.seq if current else 0),
                f"it puts version {number}, which is incomplete, in '{stage}'",
            )
        return mv

    def _incomplete(self, mv: ModelVersion) -> str:
        return (
            f"model '{mv.name}' version {mv.number} is incomplete: its run {mv.run_id} has not "
            "finished, or failed, so some of its artifacts may be missing. Use a complete "
            f"version (see `mlops versions {mv.name}`), e.g. model.version=latest."
        )

    def _no_versions(self, name: str, last: int) -> str:
        if last:
            return (
                f"model '{name}' has no complete version yet: version{'s' if last > 1 else ''} "
                f"{'1 to ' + str(last) if last > 1 else '1'} "
                f"{'are' if last > 1 else 'is'} incomplete"
                + (
                    f" (its run {self._run_of(name, last)} has not finished, or failed)"
                    if last == 1
                    else ""
                )
                + ". Run the pipeline that trains it to register one."
            )
        hint = did_you_mean(name, self.list_models())
        return (
            f"model '{name}' has no versions yet.{hint} Run the pipeline that trains it "
            "(e.g. python -m mlops +pipeline=train_and_promote) to register one."
        )

    def _run_of(self, name: str, number: int) -> str | None:
        doc = read_record(self.storage, f"{self._vdir(name, number)}/version.json")
        return doc.get("run_id") if doc else None

    def _how_to_promote(self, name: str, stage: str, last: int) -> str:
        doc = read_record(self.storage, f"{self._vdir(name, last)}/version.json") if last else None
        pipeline = doc.get("pipeline") if doc else None
        train = (
            f"python -m mlops +pipeline={pipeline}"
            if isinstance(pipeline, str)
            else "the pipeline that trains it"
        )
        return (
            f"Run {train} to register and promote a version, promote one with "
            f"`mlops promote {name} VERSION {stage}`, or pass model.version=latest."
        )

    # -- writing a version --------------------------------------------------------------------

    def create_version(
        self, name: str, run_id: str | None = None, pipeline: str | None = None
    ) -> int:
        """Take the next version number of ``name`` for a run; the version is incomplete.

        Safe with any number of concurrent writers, in one process or many machines: each
        number is taken by exactly one create-if-absent write of its ``version.json``.
        """
        check_name("model", name)
        created = time.time()
        return self._versions(name).create_next(
            lambda n: {
                "format": _FORMAT,
                "name": name,
                "number": n,
                "run_id": run_id,
                "pipeline": pipeline,
                "created": created,
                "user": _user(),
            }
        )

    def complete_version(
        self,
        name: str,
        number: int,
        artifacts: Mapping[str, tuple[ArtifactRef, str | None]],
        metadata: Mapping[str, Any],
    ) -> ModelVersion:
        """Write version ``number``'s contents, once; from then on it is complete.

        Args:
            artifacts: output name -> (artifact, the step that made it).
            metadata: metrics and metadata (JSON-able).

        Raises:
            StageError: the version was already completed.
        """
        check_name("model", name)
        for out in artifacts:
            check_name("artifact", out)
        doc = {
            "name": name,
            "number": number,
            "artifacts": {
                k: {"artifact": ref.to_json(), "step": step} for k, (ref, step) in artifacts.items()
            },
            "metadata": dict(metadata),
            "completed": time.time(),
        }
        if not self.storage.create_json(f"{self._vdir(name, number)}/complete.json", doc):
            raise StageError(f"model '{name}' version {number} is already complete")
        mv = self.read_version(name, number)
        assert mv is not None
        return mv

    def delete_version(self, name: str, number: int) -> None:
        """Delete version ``number``'s contents, keeping its number taken (a tombstone).

        The tombstone is written first: a crash in between leaves a version marked deleted,
        never a hole in the numbers (which must stay 1..N, see :class:`RecordSequence`). Callers
        check that no stage holds the version (:meth:`set_stage` it to ``archived`` first).
        """
        check_name("model", name)
        folder = self._vdir(name, number)
        if read_record(self.storage, f"{folder}/version.json") is None:
            have = _have(self.last_number(name))
            raise ModelNotFoundError(f"model '{name}' has no version {number} (it has {have})")
        self.storage.write_json(
            f"{folder}/deleted.json", {"number": number, "user": _user(), "time": time.time()}
        )
        for entry in self.storage.list(folder):
            if entry not in ("version.json", "deleted.json"):
                self.storage.delete(f"{folder}/{entry}")

    def add_note(
        self, name: str, number: int, values: Mapping[str, Any], run_id: str | None = None
    ) -> Note:
        """Append metadata to a complete version (its own metadata never changes)."""
        mv = self.resolve(name, number)
        note = Note(mv.number, dict(values), _user(), time.time(), run_id)
        self._notes(name).create_next(lambda n: {**note.to_json(), "name": name, "seq": n})
        return note

    # -- stages -------------------------------------------------------------------------------

    def current_stages(self, name: str) -> StageChange | None:
        """The last stage change of ``name`` (it holds the whole current assignment)."""
        seq = self._stages(name)
        last = seq.last()
        if not last:
            return None
        return self._change(seq.path_of(last), last)

    def _change(self, rel: str, expect_seq: int) -> StageChange:
        doc = read_record(self.storage, rel, StageChange.REQUIRED)
        if doc is None:
            raise damaged(self.storage, rel, "missing, though later changes exist")
        try:
            change = StageChange.from_json(doc)
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raise damaged(self.storage, rel, f"wrong shape: {e}") from None
        if change.seq != expect_seq:
            raise damaged(self.storage, rel, f"it says it is change {change.seq}")
        problem = _contradiction(change, doc)
        if problem:
            raise damaged(self.storage, rel, problem)
        return change

    def stage_history(self, name: str) -> list[StageChange]:
        """Every stage change of model ``name``, oldest first."""
        check_name("model", name)
        seq = self._stages(name)
        last = seq.last()
        paths = [seq.path_of(n) for n in range(1, last + 1)]
        read_records(self.storage, paths, StageChange.REQUIRED)  # damage is reported up front
        return [self._change(p, n) for n, p in enumerate(paths, 1)]

    def set_stage(
        self,
        name: str,
        number: int,
        stage: str | ModelStages,
        *,
        force: bool = False,
        run_id: str | None = None,
        reason: ChangeReason = ChangeReason.PROMOTE,
        expect: int | None | object = ...,
    ) -> StageChange:
        """Put version ``number`` of ``name`` in ``stage``; returns the recorded change.

        ``staging`` and ``production`` hold one version each: if another version holds the
        stage, ``force=True`` moves it to ``archived``, otherwise this is a StageError. Moving
        a version to ``none`` takes it out of every stage. Only complete versions can be staged.

        Concurrent calls are ordered by the history: each records change ``seq`` only if no
        other writer recorded it first, and otherwise re-reads the stages and decides again, so
        at most one version ever holds ``production``.

        Args:
            expect: for rollbacks: the version that must still hold the stage when the change
                is recorded; otherwise a StageError asks to retry.
        """
        check_name("model", name)
        target = check_stage(stage, SETTABLE)
        if isinstance(number, bool) or not isinstance(number, int):
            raise StageError(f"model version must be a number, got {number!r}")
        mv = self.read_version(name, number)
        if mv is None:
            have = _have(self.last_number(name))
            raise ModelNotFoundError(f"model '{name}' has no version {number} (it has {have})")
        if not mv.complete:
            raise StageError(
                f"model '{name}' version {number} is incomplete (its run {mv.run_id} did not "
                "finish); only complete versions can be given a stage"
            )
        seq = self._stages(name)
        while True:
            current = self.current_stages(name)
            previous = current.holders.get(target) if current and target in EXCLUSIVE else None
            if expect is not ... and previous != expect:
                raise StageError(
                    f"model '{name}': stage '{target}' changed while rolling back (now "
                    f"version {previous}); check `mlops history {name}` and try again"
                )
            nxt = next_assignment(current, number, target, force=force, name=name)
            if nxt is None:
                if current is None:
                    raise StageError(f"model '{name}' version {number} is already in no stage")
                return current  # already there: nothing to record
            holders, archived, previous = nxt
            change = StageChange(
                seq=current.seq + 1 if current else 1,
                stage=target,
                version=number,
                previous=previous,
                holders=holders,
                archived=archived,
                run_id=run_id,
                user=_user(),
                time=time.time(),
                reason=str(reason),
            )
            if self.storage.create_json(seq.path_of(change.seq), change.to_json()):
                seq.advance(change.seq)
                return change
            # another writer recorded change `seq` first: re-read (it exists now, so the next
            # read sees a later last change) and decide again

    def rollback(
        self, name: str, stage: str | ModelStages, run_id: str | None = None
    ) -> StageChange:
        """Return ``stage`` to the version that held it before the current holder.

        Rollbacks undo promotions one at a time: after v1 -> v2 -> v3 in ``production``, one
        rollback gives v2, a second gives v1. The version moved out goes to ``archived``; the
        rollback is itself a recorded change (``reason: rollback``).
        """
        check_name("model", name)
        target = check_stage(stage, EXCLUSIVE)
        if not self.last_number(name):
            raise ModelNotFoundError(self._no_versions(name, 0))
        history = self.stage_history(name)
        current = history[-1].holders.get(target) if history else None
        earlier = [h for h in holder_stack(history, target) if h != current]
        if not earlier:
            raise StageError(
                f"model '{name}': stage '{target}' has no earlier holder to roll back to "
                f"(see `mlops history {name}`)"
            )
        return self.set_stage(
            name,
            earlier[-1],
            target,
            force=True,
            run_id=run_id,
            reason=ChangeReason.ROLLBACK,
            expect=current,
        )

    # -- what it references -------------------------------------------------------------------

    def referenced_ids(self) -> set[str]:
        """The ids of every artifact a version links (complete or not: an incomplete version's
        links of 0.1 registries still name objects)."""
        ids: set[str] = set()
        for name in self.list_models():
            for mv in self.list_versions(name):
                ids.update(ref.id for ref in mv.artifacts.values())
        return ids
