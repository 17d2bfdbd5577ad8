"""The Python API: mlops.run, Registry, ModelVersion, Run and the step context."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import mlops
from mlops import ModelStages, ModelVersion, Registry, Run
from mlops.errors import ConfigError, MlopsError, ModelNotFoundError, StageError


@dataclass
class Runs:
    registry: Path
    runs: list[Run]


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Two runs of train_and_promote and one of do_predictions, in process."""
    base = tmp_path_factory.mktemp("api")
    registry = base / "registry"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        uri = [f"registry.uri={registry}"]
        runs = [
            mlops.run("train_and_promote", uri, quiet=True),
            mlops.run("train_and_promote", uri, quiet=True),
            mlops.run("do_predictions", uri, quiet=True),
        ]
    yield Runs(registry, runs)


@pytest.fixture
def reg(done: Runs) -> Registry:
    return Registry(str(done.registry))


def test_run_returns_run(done: Runs) -> None:
    """mlops.run returns the run record, with each step's status."""
    first, second, predict = done.runs
    assert isinstance(first, Run) and first.status == "completed"
    names = ["load_data", "split", "train", "evaluate", "promote"]
    assert first.steps == dict.fromkeys(names, "ran")
    assert second.steps["train"] == "cached"
    assert predict.pipeline == "do_predictions"


def test_run_prints_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without quiet, mlops.run prints what the command line prints."""
    monkeypatch.chdir(tmp_path)
    mlops.run("train_and_promote", [f"registry.uri={tmp_path / 'r'}", "steps.promote.threshold=2"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("mlops: running train_and_promote (5 steps;")
    assert lines[-1].startswith("mlops: promote: iris_classifier v1 not promoted")


def test_run_unknown_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mlops.run raises the command line's error for an unknown pipeline."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"^\+pipeline=nope: no pipeline named 'nope'\. ") as e:
        mlops.run("nope")
    assert e.value.key == "+pipeline=nope"


@pytest.mark.parametrize(
    ("version", "number"),
    [
        pytest.param(1, 1, id="int"),
        pytest.param("2", 2, id="digits"),
        pytest.param("latest", 2, id="latest"),
        pytest.param("production", 2, id="stage"),
        pytest.param("archived", 1, id="archived"),
        pytest.param(ModelStages.PRODUCTION, 2, id="ModelStages-production"),
        pytest.param(ModelStages.LATEST, 2, id="ModelStages-latest"),
    ],
)
def test_get_model_version(reg: Registry, version: int | str | ModelStages, number: int) -> None:
    """A version by number, 'latest', a stage name or a ModelStages member."""
    mv = reg.get_model_version("iris_classifier", version)
    assert isinstance(mv, ModelVersion)
    assert (mv.name, mv.number) == ("iris_classifier", number)


def test_get_model_version_errors(reg: Registry) -> None:
    """No version in a stage, an unknown version and an unknown stage are clear errors."""
    with pytest.raises(ModelNotFoundError, match="has no version in stage 'staging'"):
        reg.get_model_version("iris_classifier", "staging")
    with pytest.raises(ModelNotFoundError, match=r"has no version 9 \(it has versions 1 to 2\)"):
        reg.get_model_version("iris_classifier", 9)
    with pytest.raises(StageError, match="unknown stage 'prod'"):
        reg.get_model_version("iris_classifier", "prod")


def test_model_version_fields(reg: Registry, done: Runs) -> None:
    """ModelVersion: name, number, stage, metadata, and the artifacts linked to it."""
    v1, v2 = reg.list_model_versions("iris_classifier")
    assert (v1.number, v1.stage, v2.number, v2.stage) == (1, "archived", 2, "production")
    assert v2.metadata == {"accuracy": pytest.approx(done.runs[1].load("evaluate", "accuracy"))}
    model = v2.get_model_artifact("trained_model")
    assert type(model).__name__ == "LogisticRegression"
    with pytest.raises(ModelNotFoundError, match="has no artifact 'nope'; linked artifacts: "):
        v2.get_model_artifact("nope")


def test_list_runs(reg: Registry, done: Runs) -> None:
    """list_runs: oldest first, filterable by pipeline, every step output loadable."""
    runs = reg.list_runs()
    assert [r.id for r in runs] == [r.id for r in done.runs]
    train, predict = "train_and_promote", "do_predictions"
    assert [r.pipeline for r in runs] == [train, train, predict]
    assert [r.status for r in runs] == ["completed"] * 3
    assert [r.model_version.number for r in runs if r.model_version] == [1, 2, 2]
    assert [r.id for r in reg.list_runs(pipeline="do_predictions")] == [done.runs[2].id]
    assert runs[2].steps == {"load_inference_data": "ran", "predict": "ran"}
    assert len(runs[2].load("predict", "predictions")) == 30
    assert list(runs[2].load("load_inference_data").columns)[:2] == ["sepal_length", "sepal_width"]
    assert runs[0].load("promote") == (
        "iris_classifier v1 promoted to production (accuracy 0.933 >= 0.9)"
    )


def test_set_stage(done: Runs, tmp_path: Path) -> None:
    """set_stage needs force to take a held stage; with it the former holder is archived."""
    shutil.copytree(done.registry, tmp_path / "reg")
    reg = Registry(str(tmp_path / "reg"))
    v1 = reg.get_model_version("iris_classifier", 1)
    with pytest.raises(StageError) as e:
        v1.set_stage("production")
    assert str(e.value) == (
        "model 'iris_classifier' version 2 is in 'production'; pass force=True (or --force) to "
        "move it to 'archived' and put version 1 in 'production'"
    )
    assert reg.get_model_version("iris_classifier", "production").number == 2
    v1.set_stage(ModelStages.PRODUCTION, force=True)
    assert [(v.number, v.stage) for v in reg.list_model_versions("iris_classifier")] == [
        (1, "production"),
        (2, "archived"),
    ]
    v1.set_stage("staging")
    assert v1.stage == "archived"  # a value: the stage it had when it was read
    assert reg.get_model_version("iris_classifier", 1).stage == "staging"
    with pytest.raises(ModelNotFoundError, match="no version in stage 'production'"):
        reg.get_model_version("iris_classifier", "production")


def test_step_context_outside_step() -> None:
    """get_step_context() outside a running step is an error, not None."""
    with pytest.raises(MlopsError, match=r"called outside a running step"):
        mlops.get_step_context()
