"""The config schema (structured configs in Hydra's ConfigStore) and the reference syntax.

A composed config has these top-level keys; unknown keys are rejected by Hydra::

    pipeline:  {name, enable_cache}
    model:     {name, version}          version: null (register a new one), N, latest, or a stage
    steps:     {<step>: {_target_: pkg.module.fn, <param>: value | reference, ...}}
    registry:  {uri, storage_options, allow_pickle}
    executor:  {name, num_workers, address, n_workers, threads_per_worker}
    cache:     {enabled, refresh}
    plan:      false                    true: compile and look up the cache, run nothing

References are OmegaConf resolvers that return marker objects, read by the compiler:

    ${step:split.X_train}                       output X_train of step split (``${step:load}``
                                                for a step's only output)
    ${model:trained_model}                      artifact of the pipeline's model version
    ${artifact:iris_classifier,production,trained_model}
                                                artifact of any model at a version or stage
    ${file:data/train.csv}                      a file (or folder) the step reads: the step gets
                                                the path, the key gets the content's identity
    ${object:ID,FORMAT,SIZE}                    a value stored in the artifact store by content
                                                (what ``ExternalArtifact(value=...)`` becomes)

A pipeline declared in Python (``mlops.pipeline``) is named by ``pipeline._target_``: its traced
steps, model and cache setting are the base that the YAML and the overrides then change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional  # noqa: UP035 - OmegaConf reads these

from omegaconf import MISSING, OmegaConf

__all__ = [
    "ArtifactInputRef",
    "FileRef",
    "Keys",
    "MlopsConfig",
    "ModelArtifactRef",
    "ObjectRef",
    "StepOutputRef",
    "register",
]


class Keys:
    """Reserved keys of a step's config."""

    TARGET = "_target_"


@dataclass(frozen=True)
class StepOutputRef:
    """``${step:NAME.OUTPUT}``: an upstream step's output (OUTPUT None: its only output)."""

    step: str
    output: str | None

    def __str__(self) -> str:
        return "${step:%s}" % (self.step + (f".{self.output}" if self.output else ""))


@dataclass(frozen=True)
class ModelArtifactRef:
    """``${model:OUTPUT}``: an artifact linked to the pipeline's model version."""

    output: str

    def __str__(self) -> str:
        return f"${{model:{self.output}}}"


@dataclass(frozen=True)
class ArtifactInputRef:
    """``${artifact:MODEL,VERSION,OUTPUT}``: an artifact of any model at a version or stage."""

    model: str
    version: str
    output: str

    def __str__(self) -> str:
        return f"${{artifact:{self.model},{self.version},{self.output}}}"


@dataclass(frozen=True)
class FileRef:
    """``${file:PATH}``: a file or folder read by the step (a project path or an fsspec URL)."""

    path: str

    def __str__(self) -> str:
        return f"${{file:{self.path}}}"


def _file_ref(path: Any) -> FileRef:
    return FileRef(str(path).strip())


@dataclass(frozen=True)
class ObjectRef:
    """``${object:ID,FORMAT,SIZE}``: a value stored once by content in the artifact store.

    What ``ExternalArtifact(value=...)`` of a Python pipeline becomes: the value is stored when
    the pipeline is built for a run, and the reference names its content hash, serializer and
    size (what :class:`mlops.store.ArtifactRef` holds), so equal values give equal keys.

    .. versionadded:: 0.2.0
    """

    id: str
    format: str
    size: int

    def __str__(self) -> str:
        return f"${{object:{self.id},{self.format},{self.size}}}"


def _step_ref(spec: str) -> StepOutputRef:
    step, _, output = str(spec).partition(".")
    return StepOutputRef(step.strip(), output.strip() or None)


def _model_ref(output: str) -> ModelArtifactRef:
    return ModelArtifactRef(str(output).strip())


def _artifact_ref(model: str, version: Any, output: str) -> ArtifactInputRef:
    return ArtifactInputRef(str(model).strip(), str(version).strip(), str(output).strip())


def _object_ref(id: str, format: str, size: Any) -> ObjectRef:
    return ObjectRef(str(id).strip(), str(format).strip(), int(size))


@dataclass
class PipelineConf:
    name: str = MISSING
    enable_cache: bool = True
    # a Python pipeline (``@mlops.pipeline``) to trace, e.g. my_pipelines.do_predictions
    _target_: Optional[str] = None  # noqa: UP007, UP045 - OmegaConf reads Optional[...]


@dataclass
class ModelConf:
    name: Optional[str] = None  # noqa: UP007, UP045 - OmegaConf reads Optional[...]
    version: Any = None
    description: Optional[str] = None  # noqa: UP007, UP045 - for a new version
    tags: List[str] = field(default_factory=list)  # noqa: UP006 - for a new version


@dataclass
class RegistryConf:
    uri: str = ".mlops"
    storage_options: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006
    allow_pickle: bool = False


@dataclass
class ExecutorConf:
    name: str = "threads"
    num_workers: Optional[int] = None  # noqa: UP007, UP045 - OmegaConf reads Optional[...]
    address: Optional[str] = None  # noqa: UP007, UP045 - OmegaConf reads Optional[...]
    n_workers: Optional[int] = None  # noqa: UP007, UP045 - OmegaConf reads Optional[...]
    threads_per_worker: Optional[int] = None  # noqa: UP007, UP045 - OmegaConf reads Optional[...]


@dataclass
class CacheConf:
    enabled: bool = True
    refresh: List[str] = field(default_factory=list)  # noqa: UP006
    track_libraries: bool = True


@dataclass
class MlopsConfig:
    pipeline: PipelineConf = field(default_factory=PipelineConf)
    model: ModelConf = field(default_factory=ModelConf)
    steps: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006
    registry: RegistryConf = field(default_factory=RegistryConf)
    executor: ExecutorConf = field(default_factory=ExecutorConf)
    cache: CacheConf = field(default_factory=CacheConf)
    plan: bool = False
    report: Optional[str] = None  # noqa: UP007, UP045 - plan=true report=FILE: the plan as HTML


_registered = False


def register() -> None:
    """Register the schema in Hydra's ConfigStore and the reference resolvers (idempotent)."""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    OmegaConf.register_new_resolver("step", _step_ref, replace=True)
    OmegaConf.register_new_resolver("model", _model_ref, replace=True)
    OmegaConf.register_new_resolver("artifact", _artifact_ref, replace=True)
    OmegaConf.register_new_resolver("file", _file_ref, replace=True)
    OmegaConf.register_new_resolver("object", _object_ref, replace=True)
    schema = OmegaConf.structured(MlopsConfig)
    # Hydra composes in struct mode, where overriding a key that is not in the config fails with
    # its own "Could not override" message. A step's arguments are checked by the compiler
    # against the function's signature instead, which can name the step's real parameters and
    # suggest the nearest one (`steps.train.Cc=10` -> "Did you mean 'C'?").
    OmegaConf.set_struct(schema.steps, False)
    ConfigStore.instance().store(name="mlops_schema", node=schema)
    _registered = True
