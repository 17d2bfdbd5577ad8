"""The iris reference workflow from the command line, as the issue and the README write it.

Two training runs make one registry (module scope); a test that changes the registry works on
its own copy, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from conftest import CliResult, run_mlops

from mlops import Registry


@dataclass
class Trained:
    """A folder to run in, and a registry after two runs of train_and_promote."""

    workdir: Path
    registry: Path
    runs: list[CliResult]

    def copy(self, dest: Path) -> str:
        """A copy of the registry at ``dest``; returns its URI."""
        shutil.copytree(self.registry, dest)
        return str(dest)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    base = tmp_path_factory.mktemp("workflow")
    workdir = base / "work"
    workdir.mkdir()
    registry = base / "registry"
    args = ["+pipeline=train_and_promote", f"registry.uri={registry}"]
    runs = [run_mlops(*args, cwd=workdir, check=True) for _ in range(2)]
    return Trained(workdir, registry, runs)


def test_two_training_runs(trained: Trained) -> None:
    """v1 and v2 are registered, v2 in production, v1 archived; artifacts and accuracy linked."""
    reg = Registry(str(trained.registry))
    versions = reg.list_model_versions("iris_classifier")
    assert [(v.number, v.stage) for v in versions] == [(1, "archived"), (2, "production")]
    runs = reg.list_runs(pipeline="train_and_promote")
    for v, run in zip(versions, runs, strict=True):
        assert v.run_id == run.id
        assert run.model_version is not None and run.model_version.number == v.number
        assert set(v.artifacts) == {
            "iris",
            "X_train",
            "X_test",
            "y_train",
            "y_test",
            "trained_model",
            "accuracy",
            "promotion",
        }
        assert v.metadata["accuracy"] == pytest.approx(run.load("evaluate", "accuracy"))
        assert v.metadata["accuracy"] >= 0.9
        assert hasattr(v.get_model_artifact("trained_model"), "predict")
    names = ["load_data", "split", "train", "evaluate", "promote"]
    assert runs[0].steps == dict.fromkeys(names, "ran")
    assert runs[1].steps == {
        "load_data": "cached",
        "split": "cached",
        "train": "cached",
        "evaluate": "cached",
        "promote": "ran",
    }


def test_training_output(trained: Trained) -> None:
    """Each run prints its steps, the version it registered and the promotion decision."""
    first, second = (r.stdout.splitlines() for r in trained.runs)
    assert first[0] == (
        f"mlops: running train_and_promote (5 steps; registry {trained.registry}, executor threads)"
    )
    assert first[-2].startswith("mlops: model iris_classifier v1 registered; stage: production")
    assert first[-1] == (
        "mlops: promote: iris_classifier v1 promoted to production (accuracy 0.933 >= 0.9)"
    )
    assert "  [3/5] train     cached " in "\n".join(second)
    assert second[-1] == (
        "mlops: promote: iris_classifier v2 promoted to production (accuracy 0.933 >= 0.9)"
    )


def test_predictions_use_production(trained: Trained, tmp_path: Path) -> None:
    """do_predictions predicts with the production version's trained_model (v2), and so does
    do_predictions_from_context, whose step fetches it through get_step_context()."""
    uri = trained.copy(tmp_path / "reg")
    for pipeline in ("do_predictions", "do_predictions_from_context"):
        res = run_mlops(f"+pipeline={pipeline}", f"registry.uri={uri}", cwd=trained.workdir)
        assert res.returncode == 0, res.output
        assert res.stdout.splitlines()[-1] == (
            "mlops: model iris_classifier v2 used (production); stage: production; accuracy=0.9333"
        )
    (run,) = Registry(uri).list_runs(pipeline="do_predictions")
    (by_context,) = Registry(uri).list_runs(pipeline="do_predictions_from_context")
    pd.testing.assert_series_equal(
        run.load("predict", "predictions"), by_context.load("predict", "predictions")
    )
    assert run.model_version is not None and run.model_version.number == 2
    predictions = run.load("predict", "predictions")
    assert len(predictions) == 30 and set(predictions.unique()) <= {0, 1, 2}
    inference = run.load("load_inference_data")
    v2 = Registry(uri).get_model_version("iris_classifier", 2)
    expected = v2.get_model_artifact("trained_model").predict(inference)
    assert list(predictions) == list(expected)


def test_predictions_without_production_fail(tmp_path: Path) -> None:
    """With no model registered, do_predictions fails in one line saying what to run."""
    uri = str(tmp_path / "empty")
    res = run_mlops("+pipeline=do_predictions", f"registry.uri={uri}", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr == (
        "Error: model.version: model 'iris_classifier' has no versions yet. Run the pipeline that "
        "trains it (e.g. python -m mlops +pipeline=train_and_promote) to register one.\n"
    )
    assert res.stdout == ""


@pytest.mark.parametrize(
    ("version", "number", "used"),
    [
        pytest.param("1", 1, "used (1)", id="number"),
        pytest.param("latest", 2, "used (latest)", id="latest"),
        pytest.param("production", 2, "used (production)", id="production"),
        pytest.param("staging", 1, "used (staging)", id="staging"),
    ],
)
def test_model_version_override(
    trained: Trained, tmp_path: Path, version: str, number: int, used: str
) -> None:
    """model.version=N, latest, production and staging pick that version's trained_model."""
    uri = trained.copy(tmp_path / "reg")
    reg = Registry(uri)
    reg.get_model_version("iris_classifier", 1).set_stage("staging")
    res = run_mlops(
        "+pipeline=do_predictions",
        f"model.version={version}",
        f"registry.uri={uri}",
        cwd=trained.workdir,
    )
    assert res.returncode == 0, res.output
    assert f"mlops: model iris_classifier v{number} {used}; " in res.stdout
    (run,) = reg.list_runs(pipeline="do_predictions")
    requested = int(version) if version.isdigit() else version
    assert run.model == {
        "name": "iris_classifier",
        "number": number,
        "requested": requested,
        "created": False,
    }


def test_threshold_no_version_passes(trained: Trained, tmp_path: Path) -> None:
    """threshold=1.01: v3 is registered, production stays v2, the run says so and succeeds."""
    uri = trained.copy(tmp_path / "reg")
    res = run_mlops(
        "+pipeline=train_and_promote",
        "steps.promote.threshold=1.01",
        f"registry.uri={uri}",
        cwd=trained.workdir,
    )
    assert res.returncode == 0, res.output
    assert res.stdout.splitlines()[-2:] == [
        "mlops: model iris_classifier v3 registered; stage: none; accuracy=0.9333",
        "mlops: promote: iris_classifier v3 not promoted: accuracy 0.933 < threshold 1.01; "
        "production is unchanged",
    ]
    reg = Registry(uri)
    assert [(v.number, v.stage) for v in reg.list_model_versions("iris_classifier")] == [
        (1, "archived"),
        (2, "production"),
        (3, "none"),
    ]
    assert reg.list_runs()[-1].status == "completed"


def test_sync_executor(trained: Trained, tmp_path: Path) -> None:
    """executor=sync runs the steps one at a time to the same predictions (threads: the rest)."""
    uri = trained.copy(tmp_path / "reg")
    res = run_mlops(
        "+pipeline=do_predictions",
        "executor=sync",
        "cache.enabled=false",
        f"registry.uri={uri}",
        cwd=trained.workdir,
    )
    assert res.returncode == 0, res.output
    assert res.stdout.splitlines()[0].endswith("executor sync)")
    (run,) = Registry(uri).list_runs(pipeline="do_predictions")
    assert run.steps == {"load_inference_data": "ran", "predict": "ran"}
    assert len(run.load("predict", "predictions")) == 30
