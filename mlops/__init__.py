"""mlops: declarative ML pipelines with content-hashed caching and a model registry on fsspec.

Importing :mod:`mlops` is cheap: pandas, scikit-learn, Dask and Hydra are imported only where
they are used.
"""

from typing import TYPE_CHECKING
from typing import Any as _Any

# first: it records when each module is imported, so that an edited one is reloaded before it runs
from . import freshness as _freshness  # noqa: F401, I001
from .errors import MlopsError
from .steps import Step, StepContext, get_step_context, step

if TYPE_CHECKING:
    from .api import run, run_pipeline
    from .pipelines import (
        ExternalArtifact,
        Model,
        ModelVersion,
        Pipeline,
        get_pipeline_context,
        pipeline,
    )
    from .registry import Registry
    from .run_store import Run
    from .stages import ModelStages

__version__ = "0.1.0"

__all__ = [
    "ExternalArtifact",
    "MlopsError",
    "Model",
    "ModelStages",
    "ModelVersion",
    "Pipeline",
    "Registry",
    "Run",
    "Step",
    "StepContext",
    "get_pipeline_context",
    "get_step_context",
    "pipeline",
    "run",
    "run_pipeline",
    "step",
]

_LAZY = {
    "ExternalArtifact": "pipelines",
    "Model": "pipelines",
    "ModelStages": "stages",
    # called, a Model (ZenML's spelling); as a type, the registry's version record
    "ModelVersion": "pipelines",
    "Pipeline": "pipelines",
    "Registry": "registry",
    "Run": "run_store",
    "get_pipeline_context": "pipelines",
    "pipeline": "pipelines",
    "run": "api",
    "run_pipeline": "api",
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlops' has no attribute {name!r}")


del TYPE_CHECKING


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
