"""The public API: one sorted __all__, and ``import mlops`` stays light."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import pytest

import mlops


def test_all_is_sorted_and_public() -> None:
    """__all__ is sorted and equals the public names of the package (submodules aside)."""
    public = sorted(
        name
        for name in dir(mlops)
        if not name.startswith("_") and not isinstance(getattr(mlops, name), ModuleType)
    )
    assert mlops.__all__ == sorted(mlops.__all__)
    assert public == mlops.__all__


def test_every_exported_name_resolves() -> None:
    """Each lazily exported name is importable."""
    for name in mlops.__all__:
        assert getattr(mlops, name) is not None


@pytest.mark.parametrize(
    "statement",
    [
        "import mlops",
        # declaring a Python pipeline (a module of pipelines imported by the command line)
        "from mlops import pipeline, get_pipeline_context, Model, ModelVersion, ExternalArtifact",
    ],
)
def test_import_is_light(statement: str) -> None:
    """Importing mlops imports neither pandas, scikit-learn, dask.distributed nor Hydra."""
    heavy = ("pandas", "sklearn", "dask.distributed", "distributed", "hydra", "omegaconf")
    code = (
        f"import sys; {statement}; "
        f"print(sorted({{m.split('.')[0] for m in sys.modules if m.startswith({heavy!r})}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_model_version_name() -> None:
    """mlops.ModelVersion: calling it makes a Model spec; as a type it is the registry record."""
    from mlops.registry import ModelVersion as Record

    assert isinstance(mlops.ModelVersion(name="m", version=1), mlops.Model)
    assert issubclass(Record, mlops.ModelVersion)
