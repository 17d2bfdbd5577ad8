"""Open a registry: the stores that share one storage location, and the API people use.

A registry URI (a local folder or any fsspec URL) holds four parts, each owned by one store that
alone spells its paths::

    objects/   ArtifactStore   (mlops.store)        artifact bytes by content hash
    cache/     CacheStore      (mlops.cache_store)  cache entries and the per-step index
    runs/      RunStore        (mlops.run_store)    run records and their leases
    models/    ModelRegistry   (mlops.models)       model versions and the stage history

:class:`Registry` assembles them over one :class:`~mlops.storage.Storage` -- the command line and
:func:`mlops.run` do this once -- and the compiler, executor and cache get the stores they need
passed explicitly. Its methods are the public, ZenML-named API (``get_model_version``,
``list_model_versions``, ``set_stage`` ...), implemented on the stores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cache_store import CacheStore
from .models import ModelRegistry, ModelVersion, Note, VersionStatus
from .names import check_name
from .run_store import Run, RunStore
from .stages import ModelStages, StageChange
from .storage import open_storage
from .store import ArtifactRef, ArtifactStore

__all__ = [
    "ModelStages",
    "ModelVersion",
    "Note",
    "Registry",
    "StageChange",
    "VersionStatus",
    "check_name",
    "open_registry",
]


def open_registry(cfg: Any) -> Registry:
    """The registry named by a composed config's ``registry`` block (uri, storage_options,
    allow_pickle); a relative local path is taken from the current folder."""
    from omegaconf import OmegaConf

    reg = cfg.registry
    options = OmegaConf.to_container(reg.storage_options, resolve=True) or {}
    assert isinstance(options, dict)
    storage_options = {str(k): v for k, v in options.items()}
    allow_pickle = bool(reg.get("allow_pickle", False))
    return Registry(str(reg.uri), allow_pickle=allow_pickle, **storage_options)


class _Actions:
    """What the values a registry hands out can do: load artifacts, note, stage, look up."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def load(self, ref: ArtifactRef) -> Any:
        return self.registry.artifacts.get(ref)

    def log_metadata(self, mv: ModelVersion, values: Mapping[str, Any]) -> None:
        self.registry.models.add_note(mv.name, mv.number, values)

    def set_stage(self, mv: ModelVersion, stage: str, force: bool) -> StageChange | None:
        return self.registry.models.set_stage(mv.name, mv.number, stage, force=force)

    def model_version(self, name: str, number: int) -> ModelVersion:
        return self.registry.models.resolve(name, number)


class Registry:
    """The stores of one registry location, and the API to read and change it.

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
        actions = _Actions(self)
        self.artifacts = ArtifactStore(self.storage, allow_pickle=allow_pickle)
        self.cache = CacheStore(self.storage)
        self.runs = RunStore(self.storage, actions)
        self.models = ModelRegistry(self.storage, actions)
        if self.storage.remote:
            self.storage.check()

    def __repr__(self) -> str:
        return f"Registry({self.uri!r})"

    # -- models -------------------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Names of the registry's models, sorted."""
        return self.models.list_models()

    def list_model_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name`` by number, complete or not (see ``ModelVersion.status``)."""
        return self.models.list_versions(name)

    def get_model_version(
        self, name: str, version: int | str | ModelStages = "latest"
    ) -> ModelVersion:
        """Resolve ``version`` -- a number, ``"latest"`` or a stage -- to a complete version."""
        return self.models.resolve(name, version)

    def set_stage(
        self,
        name: str,
        number: int,
        stage: str | ModelStages,
        *,
        force: bool = False,
        run_id: str | None = None,
    ) -> StageChange:
        """Put version ``number`` of ``name`` in ``stage`` (see :meth:`ModelRegistry.set_stage`)."""
        return self.models.set_stage(name, number, stage, force=force, run_id=run_id)

    def rollback(
        self, name: str, stage: str | ModelStages, run_id: str | None = None
    ) -> StageChange:
        """Return ``stage`` to the version that held it before the current holder."""
        return self.models.rollback(name, stage, run_id)

    def stage_history(self, name: str) -> list[StageChange]:
        """Every stage change of model ``name``, oldest first."""
        return self.models.stage_history(name)

    def register_model_version(
        self,
        name: str,
        artifacts: Mapping[str, ArtifactRef] | None = None,
        metadata: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
    ) -> ModelVersion:
        """Register a complete version of ``name`` from artifacts already in the store."""
        number = self.models.create_version(name, run_id)
        return self.models.complete_version(
            name, number, {k: (v, None) for k, v in (artifacts or {}).items()}, metadata or {}
        )

    # -- runs ---------------------------------------------------------------------------------

    def list_runs(self, pipeline: str | None = None) -> list[Run]:
        """Runs, oldest first, optionally only those of ``pipeline``."""
        return self.runs.list(pipeline)

    def get_run(self, run_id: str) -> Run:
        """The run ``run_id``."""
        return self.runs.get(run_id)

    def referenced_ids(self) -> set[str]:
        """Every artifact id that a cache entry, a run or a model version names."""
        return (
            self.cache.referenced_ids() | self.runs.referenced_ids() | self.models.referenced_ids()
        )
