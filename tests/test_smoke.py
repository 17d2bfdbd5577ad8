"""The reference workflow from the command line, on a local registry."""

from __future__ import annotations

from pathlib import Path

from conftest import run_mlops

from mlops import Registry


def test_train_twice_then_predict(workdir: Path, registry_uri: str) -> None:
    """Two training runs register v1 and v2 (v2 production, v1 archived); predictions use v2."""
    run_mlops("+pipeline=train_and_promote", f"registry.uri={registry_uri}", cwd=workdir, check=True)
    run_mlops("+pipeline=train_and_promote", f"registry.uri={registry_uri}", cwd=workdir, check=True)
    res = run_mlops("+pipeline=do_predictions", f"registry.uri={registry_uri}", cwd=workdir, check=True)
    assert "iris_classifier v2 used (production)" in res.stdout
    reg = Registry(registry_uri)
    versions = reg.list_model_versions("iris_classifier")
    assert [(v.number, v.stage) for v in versions] == [(1, "archived"), (2, "production")]
    runs = reg.list_runs(pipeline="do_predictions")
    assert len(runs) == 1 and runs[0].model_version is not None
    assert runs[0].model_version.number == 2
    predictions = runs[0].load("predict", "predictions")
    assert len(predictions) == 30 and set(predictions.unique()) <= {0, 1, 2}
