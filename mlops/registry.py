"""The model registry: model versions, their linked artifacts and metadata, and stages.

Layout under the registry root (see the README's "Registry" section)::

    models/<name>/versions/00000007/version.json          created once, never rewritten
    models/<name>/versions/00000007/artifacts/<out>.json  one record per linked output
    models/<name>/versions/00000007/metadata/<key>.json   one record per metadata key
    models/<name>/stages/00000012.json                    the stage history, append-only

Version numbers are allocated by creating ``version.json`` with a create-if-absent write: of
several writers racing for number 8 exactly one wins, the others try 9. Stage changes are the same
trick on the history: change ``n`` is created only if nobody created it first, and carries the
whole resulting assignment (who holds ``staging`` and ``production``, who is archived), so the
current stages are one read of the last record and concurrent promotions are totally ordered.
"""

from __future__ import annotations

import enum
import getpass
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidNameError, ModelNotFoundError, StageError
from .storage import open_storage
from .store import ArtifactRef, ArtifactStore

if TYPE_CHECKING:
    from .runs import Run
    from .steps import StepContext

__all__ = ["ModelStages", "ModelVersion", "Registry", "StageChange", "check_name"]


class ModelStages(str, enum.Enum):
    """Stages a model version can be in; ``LATEST`` is accepted wherever a stage is read."""

    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    LATEST = "latest"

    def __str__(self) -> str:
        return self.value


_EXCLUSIVE = ("staging", "production")
_SETTABLE = ("none", "staging", "production", "archived")
_UNSET: Any = object()  # "not given", where None is a meaningful value
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def check_name(kind: str, name: Any) -> str:
    """Return ``name`` if it can be a path segment in the registry, else raise InvalidNameError.

    Examples:
        >>> check_name("model", "iris_classifier")
        'iris_classifier'
    """
    if not isinstance(name, str) or not name or not _NAME_RE.match(name) or ".." in name:
        raise InvalidNameError(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '-' and '.', starting "
            "with a letter, digit or '_' (no '/', '..', spaces or control characters)"
        )
    return name


def _vdir(name: str, number: int) -> str:
    return f"models/{name}/versions/{number:08d}"


@dataclass(frozen=True)
class StageChange:
    """One record of a model's stage history."""

    seq: int
    stage: str
    version: int | None
    previous: int | None
    holders: dict[str, int | None]
    archived: tuple[int, ...]
    run_id: str | None
    user: str
    time: float
    reason: str

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> StageChange:
        return cls(
            seq=int(doc["seq"]),
            stage=str(doc["stage"]),
            version=doc.get("version"),
            previous=doc.get("previous"),
            holders={k: doc["holders"].get(k) for k in _EXCLUSIVE},
            archived=tuple(doc.get("archived", ())),
            run_id=doc.get("run_id"),
            user=str(doc.get("user", "")),
            time=float(doc.get("time", 0.0)),
            reason=str(doc.get("reason", "promote")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "stage": self.stage,
            "version": self.version,
            "previous": self.previous,
            "holders": self.holders,
            "archived": list(self.archived),
            "run_id": self.run_id,
            "user": self.user,
            "time": self.time,
            "reason": self.reason,
        }

    def stage_of(self, number: int) -> str:
        for stage in _EXCLUSIVE:
            if self.holders.get(stage) == number:
                return stage
        return "archived" if number in self.archived else "none"


@dataclass
class ModelVersion:
    """An immutable model version: name, number, the run that made it, artifacts and metadata.

    Its stage is a pointer kept elsewhere; :attr:`stage` reads the current one.
    """

    name: str
    number: int
    run_id: str | None
    created: float
    registry: Registry = field(repr=False)
    _created_by_run: bool = field(default=False, repr=False)
    _context: StepContext | None = field(default=None, repr=False, compare=False)

    @property
    def stage(self) -> str:
        """The version's current stage: ``staging``, ``production``, ``archived`` or ``none``."""
        current = self.registry._current_stages(self.name)
        return current.stage_of(self.number) if current else "none"

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata logged for this version (metrics such as ``accuracy``)."""
        st = self.registry.storage
        folder = f"{_vdir(self.name, self.number)}/metadata"
        out: dict[str, Any] = {}
        for entry in st.list(folder):
            if entry.endswith(".json") and not entry.startswith("."):
                doc = st.read_json(f"{folder}/{entry}")
                if doc is not None:
                    out[doc["key"]] = doc["value"]
        return out

    @property
    def artifacts(self) -> dict[str, ArtifactRef]:
        """The linked artifacts by output name."""
        st = self.registry.storage
        folder = f"{_vdir(self.name, self.number)}/artifacts"
        out: dict[str, ArtifactRef] = {}
        for entry in st.list(folder):
            if entry.endswith(".json") and not entry.startswith("."):
                doc = st.read_json(f"{folder}/{entry}")
                if doc is not None:
                    out[entry[: -len(".json")]] = ArtifactRef.from_json(doc["artifact"])
        return out

    def get_artifact_ref(self, name: str) -> ArtifactRef:
        doc = self.registry.storage.read_json(
            f"{_vdir(self.name, self.number)}/artifacts/{name}.json"
        )
        if doc is None:
            linked = sorted(self.artifacts)
            raise ModelNotFoundError(
                f"model '{self.name}' version {self.number} has no artifact '{name}'; "
                f"linked artifacts: {', '.join(linked) if linked else '(none)'}"
            )
        return ArtifactRef.from_json(doc["artifact"])

    def get_model_artifact(self, name: str) -> Any:
        """Load the artifact linked to this version under ``name`` (e.g. ``trained_model``)."""
        return self.registry.store.get(self.get_artifact_ref(check_name("artifact", name)))

    def link_artifact(self, name: str, ref: ArtifactRef, step: str | None = None) -> None:
        """Link ``ref`` to this version as ``name`` (done by the executor for each output)."""
        self.registry.storage.write_json(
            f"{_vdir(self.name, self.number)}/artifacts/{check_name('artifact', name)}.json",
            {"artifact": ref.to_json(), "step": step},
        )

    def log_metadata(self, values: dict[str, Any]) -> None:
        """Record metadata (JSON-able values) for this version."""
        for key, value in values.items():
            self.registry.storage.write_json(
                f"{_vdir(self.name, self.number)}/metadata/{check_name('metadata key', key)}.json",
                {"key": key, "value": value},
            )
        if self._context is not None:
            self._context.logged_metadata.update(values)

    def set_stage(self, stage: str | ModelStages, force: bool = False) -> None:
        """Move this version to ``stage``.

        ``staging`` and ``production`` have one holder each: if another version holds the
        stage, ``force=True`` moves it to ``archived``; without it this is a StageError.
        """
        run_id = self._context.run_id if self._context is not None else None
        self.registry.set_stage(self.name, self.number, stage, force=force, run_id=run_id)

    def __mlops_token__(self) -> Any:
        return [self.name, self.number]


class Registry:
    """Model versions, stages, runs, cache entries and artifacts under one fsspec URL.

    Args:
        uri: a local folder or any fsspec URL (``s3://bucket/prefix``).
        allow_pickle: store values no safe format handles with pickle, and load such artifacts.
        **storage_options: passed to the fsspec filesystem (endpoint, credentials, ...).

    Raises:
        RegistryError: for a remote URI whose bucket does not exist or that cannot be reached
            (checked once, with one listing, when the registry is opened).

    Examples:
        >>> reg = Registry("memory://doctest-registry")
        >>> reg.list_model_versions("iris_classifier")
        []
    """

    def __init__(self, uri: str = ".mlops", *, allow_pickle: bool = False, **storage_options: Any):
        self.storage = open_storage(uri, storage_options)
        self.uri = self.storage.uri
        self.store = ArtifactStore(self.storage, allow_pickle=allow_pickle)
        if self.storage.remote:
            self.storage.check()

    def __repr__(self) -> str:
        return f"Registry({self.uri!r})"

    # -- bounded lookups --------------------------------------------------------------------------

    def _last(self, folder: str, record: Callable[[int], str]) -> int:
        """The highest n such that ``record(n)`` exists (0 if none), in O(log lag) probes.

        Records 1..N are created in order with create-if-absent writes (n+1 is only attempted
        by a writer that saw n exist), so the set of existing records is always a prefix: probe
        forward from ``<folder>/head.json`` (a hint that may lag, never lead) by doubling steps,
        then bisect.
        """
        st = self.storage
        doc = st.read_json(f"{folder}/head.json")
        lo = int(doc["n"]) if isinstance(doc, dict) and isinstance(doc.get("n"), int) else 0
        if not st.has_record(record(lo + 1)):
            return lo
        lo, step = lo + 1, 1
        while True:
            hi = lo + step
            if not st.has_record(record(hi)):
                break
            lo, step = hi, step * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if st.has_record(record(mid)):
                lo = mid
            else:
                hi = mid
        if step > 4:  # the hint lagged far behind: move it up for the next reader
            self._advance_head(folder, lo)
        return lo

    def _advance_head(self, folder: str, n: int) -> None:
        """Point ``<folder>/head.json`` at record ``n``, which exists, unless it is further on.

        Two writers may still interleave and move it back a little; readers probe forward from
        it, so a lagging head costs a few reads, never a wrong answer.
        """
        doc = self.storage.read_json(f"{folder}/head.json")
        if isinstance(doc, dict) and isinstance(doc.get("n"), int) and doc["n"] >= n:
            return
        self.storage.write_json(f"{folder}/head.json", {"n": n})

    # -- versions ---------------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Names of the models that have a folder in the registry, sorted."""
        return [n for n in self.storage.list("models") if not n.startswith(".")]

    def _latest_number(self, name: str) -> int:
        return self._last(f"models/{name}/versions", lambda n: f"{_vdir(name, n)}/version.json")

    def _numbers(self, name: str) -> list[int]:
        return list(range(1, self._latest_number(name) + 1))

    def _version_from_json(self, name: str, number: int, doc: dict[str, Any]) -> ModelVersion:
        return ModelVersion(
            name=name,
            number=number,
            run_id=doc.get("run_id"),
            created=float(doc.get("created", 0.0)),
            registry=self,
        )

    def _read_version(self, name: str, number: int) -> ModelVersion | None:
        doc = self.storage.read_json(f"{_vdir(name, number)}/version.json")
        return None if doc is None else self._version_from_json(name, number, doc)

    def create_model_version(self, name: str, run_id: str | None = None) -> ModelVersion:
        """Register the next version of model ``name`` (1 for the first).

        Safe with any number of concurrent writers, in one process or many machines: each
        number is taken by exactly one create-if-absent write of its ``version.json``.
        """
        check_name("model", name)
        number = self._latest_number(name)
        created = time.time()
        while True:
            number += 1
            doc = {"name": name, "number": number, "run_id": run_id, "created": created}
            if self.storage.create_json(f"{_vdir(name, number)}/version.json", doc):
                break
            # another writer took this number; the next one is free unless it was taken too
        self._advance_head(f"models/{name}/versions", number)
        mv = self._version_from_json(name, number, doc)
        mv._created_by_run = True
        return mv

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, ordered by number ([] for an unknown model)."""
        check_name("model", name)
        last = self._latest_number(name)
        paths = {n: f"{_vdir(name, n)}/version.json" for n in range(1, last + 1)}
        docs = self.storage.read_json_many(list(paths.values()))
        return [self._version_from_json(name, n, docs[p]) for n, p in paths.items() if p in docs]

    def get_model_version(
        self, name: str, version: int | str | ModelStages = "latest"
    ) -> ModelVersion:
        """Resolve ``version`` -- a number, ``"latest"`` or a stage -- to a concrete version.

        Reads a bounded number of records however many versions the model has.

        Raises:
            ModelNotFoundError: no such model or version, or nothing holds the stage.
            StageError: ``version`` is neither a number, ``latest`` nor a stage.
        """
        check_name("model", name)
        spec = version.value if isinstance(version, ModelStages) else version
        if isinstance(spec, str) and spec.isdigit():
            spec = int(spec)
        if isinstance(spec, bool) or not isinstance(spec, (int, str)):
            raise StageError(f"model version must be a number or a stage, got {version!r}")
        if isinstance(spec, int):
            mv = self._read_version(name, spec) if spec > 0 else None
            if mv is None:
                last = self._latest_number(name)
                have = _have(last)
                raise ModelNotFoundError(f"model '{name}' has no version {spec} (it has {have})")
            return mv
        if spec == "latest":
            last = self._latest_number(name)
            mv = self._read_version(name, last) if last else None
            if mv is None:
                raise ModelNotFoundError(self._no_versions(name))
            return mv
        stage = _check_stage(spec, allow=("staging", "production", "archived"))
        current = self._current_stages(name)
        number: int | None = None
        if current is not None:
            number = (
                max(current.archived, default=None)
                if stage == "archived"
                else current.holders.get(stage)
            )
        if number is None:
            if not self._latest_number(name):
                raise ModelNotFoundError(self._no_versions(name))
            raise ModelNotFoundError(
                f"model '{name}' has no version in stage '{stage}'. {self._how_to_promote(name)}"
            )
        mv = self._read_version(name, number)
        if mv is None:  # pragma: no cover - history names a version that was never created
            raise ModelNotFoundError(
                f"model '{name}': stage '{stage}' names missing version {number}"
            )
        return mv

    def _no_versions(self, name: str) -> str:
        known = self.list_models()
        from .errors import did_you_mean

        hint = did_you_mean(name, known)
        return (
            f"model '{name}' has no versions yet.{hint} Run the pipeline that trains it "
            "(e.g. python -m mlops +pipeline=train_and_promote) to register one."
        )

    def _how_to_promote(self, name: str) -> str:
        last = self._latest_number(name)
        pipeline = None
        if last:
            mv = self._read_version(name, last)
            if mv is not None and mv.run_id:
                doc = self.storage.read_json(f"runs/{mv.run_id}/run.json")
                pipeline = doc.get("pipeline") if doc else None
        train = (
            f"python -m mlops +pipeline={pipeline}"
            if pipeline
            else "the pipeline that trains it (e.g. python -m mlops +pipeline=train_and_promote)"
        )
        return (
            f"Run {train} to register and promote a version, promote one with "
            f"`mlops promote {name} VERSION production`, or pass model.version=latest."
        )

    # -- stages -----------------------------------------------------------------------------------

    @staticmethod
    def _change_path(name: str, seq: int) -> str:
        return f"models/{name}/stages/{seq:08d}.json"

    def _current_stages(self, name: str) -> StageChange | None:
        """The last stage change of ``name`` (it holds the whole current assignment)."""
        last = self._last(f"models/{name}/stages", lambda n: self._change_path(name, n))
        while last > 0:
            doc = self.storage.read_json(self._change_path(name, last))
            if doc is not None:
                return StageChange.from_json(doc)
            last -= 1  # pragma: no cover - only a hand-damaged record is unreadable
        return None

    def stage_history(self, name: str) -> list[StageChange]:
        """Every stage change of model ``name``, oldest first."""
        check_name("model", name)
        last = self._last(f"models/{name}/stages", lambda n: self._change_path(name, n))
        paths = [self._change_path(name, n) for n in range(1, last + 1)]
        docs = self.storage.read_json_many(paths)
        return [StageChange.from_json(docs[p]) for p in paths if p in docs]

    def set_stage(
        self,
        name: str,
        number: int,
        stage: str | ModelStages,
        *,
        force: bool = False,
        run_id: str | None = None,
        reason: str = "promote",
        expect: Any = _UNSET,
    ) -> StageChange:
        """Put version ``number`` of ``name`` in ``stage``; returns the recorded change.

        ``staging`` and ``production`` hold one version each: if another version holds the
        stage, ``force=True`` moves it to ``archived``, otherwise this is a StageError. Moving
        a version to ``none`` takes it out of every stage.

        Concurrent calls are ordered by the history: each records change ``seq`` only if no
        other writer recorded it first, and otherwise re-reads the stages and decides again, so
        at most one version ever holds ``production``.

        Args:
            expect: for internal callers (rollback): the version that must still hold the stage
                when the change is recorded; otherwise a StageError asks to retry.
        """
        check_name("model", name)
        target = _check_stage(stage.value if isinstance(stage, ModelStages) else stage, _SETTABLE)
        if isinstance(number, bool) or not isinstance(number, int):
            raise StageError(f"model version must be a number, got {number!r}")
        if self._read_version(name, number) is None:
            last = self._latest_number(name)
            have = _have(last)
            raise ModelNotFoundError(f"model '{name}' has no version {number} (it has {have})")
        while True:
            current = self._current_stages(name)
            seq = current.seq + 1 if current else 1
            holders: dict[str, int | None] = (
                dict(current.holders) if current else dict.fromkeys(_EXCLUSIVE)
            )
            archived = set(current.archived) if current else set()
            previous = holders.get(target) if target in _EXCLUSIVE else None
            if expect is not _UNSET and previous != expect:
                raise StageError(
                    f"model '{name}': stage '{target}' changed while rolling back (now "
                    f"version {previous}); check `mlops history {name}` and try again"
                )
            now = current.stage_of(number) if current else "none"
            if now == target:
                if current is None:
                    raise StageError(f"model '{name}' version {number} is already in no stage")
                return current  # already there: nothing to record
            if target in _EXCLUSIVE and previous is not None and not force:
                raise StageError(
                    f"model '{name}' version {previous} is in '{target}'; pass force=True "
                    f"(or --force) to move it to 'archived' and put version {number} in '{target}'"
                )
            for s in _EXCLUSIVE:
                if holders.get(s) == number:
                    holders[s] = None
            archived.discard(number)
            if target in _EXCLUSIVE:
                if previous is not None:
                    archived.add(previous)
                holders[target] = number
            elif target == "archived":
                archived.add(number)
            change = StageChange(
                seq=seq,
                stage=target,
                version=number,
                previous=previous,
                holders=holders,
                archived=tuple(sorted(archived)),
                run_id=run_id,
                user=_user(),
                time=time.time(),
                reason=reason,
            )
            if self.storage.create_json(self._change_path(name, seq), change.to_json()):
                self._advance_head(f"models/{name}/stages", seq)
                return change
            # another writer recorded change `seq` first: re-read and decide again

    def rollback(
        self, name: str, stage: str | ModelStages, run_id: str | None = None
    ) -> StageChange:
        """Return ``stage`` to the version that held it before the current holder.

        Rollbacks undo promotions one at a time: after v1 -> v2 -> v3 in ``production``, one
        rollback gives v2, a second gives v1. The version moved out goes to ``archived``; the
        rollback is itself a recorded change (``reason: rollback``).
        """
        check_name("model", name)
        target = _check_stage(stage.value if isinstance(stage, ModelStages) else stage, _EXCLUSIVE)
        history = self.stage_history(name)
        holders = _holder_stack(history, target)
        current = history[-1].holders.get(target) if history else None
        earlier = [h for h in holders if h != current]
        if not earlier:
            raise StageError(
                f"model '{name}': stage '{target}' has no earlier holder to roll back to "
                f"(see `mlops history {name}`)"
            )
        return self.set_stage(
            name, earlier[-1], target, force=True, run_id=run_id, reason="rollback", expect=current
        )

    # -- runs and cache (thin accessors; see runs.py) ---------------------------------------------

    def list_runs(self, pipeline: str | None = None) -> list[Run]:
        """Runs, oldest first, optionally only those of ``pipeline``."""
        from .runs import list_runs

        return list_runs(self, pipeline)

    def get_run(self, run_id: str) -> Run:
        from .runs import get_run

        return get_run(self, run_id)


def _holder_stack(history: list[StageChange], stage: str) -> list[int]:
    """The holders of ``stage`` that a rollback can return to, oldest first.

    Each promotion pushes its version; a rollback pops the version it moved out.

    Examples:
        >>> h = [StageChange(i, "production", v, None, {"production": v}, (), None, "", 0.0, r)
        ...      for i, (v, r) in enumerate([(1, "promote"), (2, "promote"), (3, "promote"),
        ...                                  (2, "rollback")], 1)]
        >>> _holder_stack(h, "production")
        [1, 2]
    """
    stack: list[int] = []
    for change in history:
        holder = change.holders.get(stage)
        if change.reason == "rollback" and change.stage == stage and stack:
            stack.pop()
        if holder is not None and (not stack or stack[-1] != holder):
            if holder in stack:
                stack.remove(holder)
            stack.append(holder)
    return stack


def _have(last: int) -> str:
    """How many versions a model has, for messages: "versions 1 to 3", "only version 1"."""
    if not last:
        return "no versions yet"
    return "only version 1" if last == 1 else f"versions 1 to {last}"


def _check_stage(stage: Any, allow: Iterable[str]) -> str:
    allowed = list(allow)
    if isinstance(stage, str) and stage.lower() in allowed:
        return stage.lower()
    from .errors import did_you_mean

    hint = did_you_mean(str(stage), allowed)
    raise StageError(
        f"unknown stage {stage!r}: use a version number, 'latest', or one of "
        f"{', '.join(repr(a) for a in allowed)}.{hint}"
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return os.environ.get("USER", "unknown")
