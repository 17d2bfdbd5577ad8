"""A registry written by mlops 0.1.0 (tests/fixtures/registry_v0_1) opens and works.

Its versions have no completion record (0.1 linked artifacts one record at a time); they read as
complete, keep their artifacts, metrics, stages and history, and the reference workflow runs on
top of the copy: predictions from its production version, new versions numbered after its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run_mlops

from mlops.models import VersionStatus
from mlops.registry import Registry

FIXTURE = Path(__file__).parent / "fixtures" / "registry_v0_1"


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    copy = tmp_path / "registry"
    shutil.copytree(FIXTURE, copy)
    return copy


def test_reads_versions_stages_and_runs(legacy: Path) -> None:
    """Versions, metrics, artifacts, stages, history and runs read as 0.1 wrote them."""
    reg = Registry(str(legacy))
    versions = reg.list_model_versions("iris_classifier")
    assert [(v.number, v.status, v.stage) for v in versions] == [
        (1, VersionStatus.COMPLETE, "archived"),
        (2, VersionStatus.COMPLETE, "production"),
        (3, VersionStatus.COMPLETE, "none"),
    ]
    for v in versions:
        assert {"trained_model", "accuracy"} <= set(v.artifacts)
        assert 0.5 < v.metadata["accuracy"] <= 1.0
    production = reg.get_model_version("iris_classifier", "production")
    assert production.number == 2
    model = production.get_model_artifact("trained_model")
    assert hasattr(model, "predict")
    assert [c.version for c in reg.stage_history("iris_classifier")] == [1, 2]
    runs = reg.list_runs()
    assert len(runs) == 4 and {str(r.status) for r in runs} == {"completed"}


@pytest.mark.parametrize(
    "args",
    [
        ["models"],
        ["versions", "iris_classifier"],
        ["history", "iris_classifier"],
        ["runs"],
        ["gc", "--dry-run"],
    ],
)
def test_commands(legacy: Path, tmp_path: Path, args: list[str]) -> None:
    """Every read command works on the old registry and writes nothing."""
    before = sorted(p.relative_to(legacy) for p in legacy.rglob("*"))
    res = run_mlops(*args, "--registry", str(legacy), cwd=tmp_path)
    assert res.returncode == 0, res.output
    assert sorted(p.relative_to(legacy) for p in legacy.rglob("*")) == before


def test_workflow_continues(legacy: Path, tmp_path: Path) -> None:
    """Predicting uses its production version; the next training is v4 and is promoted."""
    work = tmp_path / "work"
    work.mkdir()
    res = run_mlops("+pipeline=do_predictions", f"registry.uri={legacy}", cwd=work)
    assert res.returncode == 0, res.output
    assert "model iris_classifier v2 used (production)" in res.stdout
    res = run_mlops("+pipeline=train_and_promote", f"registry.uri={legacy}", cwd=work)
    assert res.returncode == 0, res.output
    assert "model iris_classifier v4 registered; stage: production" in res.stdout
    res = run_mlops(
        "rollback", "iris_classifier", "production", "--registry", str(legacy), cwd=work
    )
    assert res.returncode == 0, res.output
    assert Registry(str(legacy)).get_model_version("iris_classifier", "production").number == 2
