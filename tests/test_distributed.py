"""The iris workflow on a real dask.distributed LocalCluster (2 worker processes), S3 registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import S3Server, local_dask_cluster, run_mlops

from mlops import Registry
from mlops.distributed import check_registry_reachable, is_local_address
from mlops.errors import ConfigError


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One LocalCluster for the module; yields its scheduler address."""
    with local_dask_cluster(n_workers=2) as address:
        yield address


def test_iris_workflow_on_cluster_with_s3_registry(
    cluster: str, s3_server: S3Server, s3_bucket: str, workdir: Path
) -> None:
    """Train twice and predict on the cluster; versions, stages and runs land in the bucket."""
    uri = f"{s3_bucket}/registry"
    common = ["executor=distributed", f"executor.address={cluster}", *s3_server.overrides(uri)]
    first = run_mlops(
        "+pipeline=train_and_promote", *common, cwd=workdir, env=s3_server.env, check=True
    )
    assert "executor distributed" in first.stdout
    assert "(5 ran)" in first.stdout and "v1 registered; stage: production" in first.stdout
    second = run_mlops(
        "+pipeline=train_and_promote", *common, cwd=workdir, env=s3_server.env, check=True
    )
    assert "(4 cached, 1 ran)" in second.stdout
    res = run_mlops("+pipeline=do_predictions", *common, cwd=workdir, env=s3_server.env, check=True)
    assert "iris_classifier v2 used (production)" in res.stdout

    reg = Registry(uri, **s3_server.storage_options)
    versions = reg.list_model_versions("iris_classifier")
    assert [(v.number, v.stage) for v in versions] == [(1, "archived"), (2, "production")]
    assert set(versions[1].artifacts) >= {"trained_model", "accuracy", "X_train"}
    (predict_run,) = reg.list_runs(pipeline="do_predictions")
    assert predict_run.status == "completed"
    predictions = predict_run.load("predict", "predictions")
    assert len(predictions) == 30 and set(predictions.unique()) <= {0, 1, 2}


def test_failing_step_on_cluster_names_the_step(
    cluster: str, s3_server: S3Server, s3_bucket: str, workdir: Path
) -> None:
    """A step's own exception is not retried: the run fails naming the step, and is recorded."""
    uri = f"{s3_bucket}/registry"
    res = run_mlops(
        "+pipeline=train_and_promote",
        "steps.train.C=-1",
        "executor=distributed",
        f"executor.address={cluster}",
        *s3_server.overrides(uri),
        cwd=workdir,
        env=s3_server.env,
    )
    assert res.returncode == 1, res.output
    assert "Error: step 'train' failed: InvalidParameterError" in res.stderr
    assert "Traceback" not in res.output
    (run,) = Registry(uri, **s3_server.storage_options).list_runs()
    assert run.status == "failed"
    assert run.steps == {
        "load_data": "ran",
        "split": "ran",
        "train": "failed",
        "evaluate": "skipped",
        "promote": "skipped",
    }


def test_processes_executor(workdir: Path, registry_uri: str) -> None:
    """executor=processes runs the workflow in spawned processes; a re-run is all cache hits."""
    args = ["+pipeline=train_and_promote", f"registry.uri={registry_uri}", "executor=processes"]
    run_mlops(*args, cwd=workdir, check=True)
    res = run_mlops(*args, cwd=workdir, check=True)
    assert "(4 cached, 1 ran)" in res.stdout
    versions = Registry(registry_uri).list_model_versions("iris_classifier")
    assert [(v.number, v.stage) for v in versions] == [(1, "archived"), (2, "production")]


@pytest.mark.parametrize(
    ("uri", "address", "message"),
    [
        pytest.param(
            "memory://reg-x",
            None,
            "registry.uri: registry.uri=memory://reg-x is in this process's memory, which the "
            "workers of executor=distributed (other processes) cannot reach. Fix it in one of "
            "these ways: 1. point registry.uri at object storage every worker can reach, e.g. "
            "registry.uri=s3://BUCKET/PREFIX; 2. use a folder, e.g. registry.uri=.mlops (with a "
            "local cluster).",
            id="memory-registry",
        ),
        pytest.param(
            "{tmp}/reg",
            "tcp://192.0.2.10:8786",
            "registry.uri: registry.uri={tmp}/reg is a folder on this machine, but "
            "executor.address=tcp://192.0.2.10:8786 is a scheduler on another machine, whose "
            "workers cannot reach it. Fix it in one of these ways: 1. point registry.uri at "
            "object storage every worker can reach, e.g. registry.uri=s3://BUCKET/PREFIX; 2. if "
            "every worker mounts the folder at the same path, say so with "
            "registry.uri=file://{tmp}/reg; 3. leave out executor.address to run a local cluster.",
            id="local-folder-remote-scheduler",
        ),
    ],
)
def test_unreachable_registry_message(
    uri: str, address: str | None, message: str, tmp_path: Path
) -> None:
    """The registry check names the key and the fixes."""
    reg = Registry(uri.format(tmp=tmp_path))
    with pytest.raises(ConfigError) as info:
        check_registry_reachable(reg, address)
    assert str(info.value) == message.format(tmp=tmp_path)


def test_reachable_registries(tmp_path: Path) -> None:
    """A folder with a local cluster or a local scheduler, or declared shared, is accepted."""
    check_registry_reachable(Registry(str(tmp_path / "a")), None)
    check_registry_reachable(Registry(str(tmp_path / "b")), "tcp://127.0.0.1:8786")
    check_registry_reachable(Registry(f"file://{tmp_path}/c"), "tcp://192.0.2.10:8786")
    assert is_local_address("localhost:8786") and not is_local_address("tcp://192.0.2.10:1")


def test_local_registry_with_remote_scheduler_fails_before_running(
    workdir: Path, tmp_path: Path
) -> None:
    """From the command line: one error line, exit 1, nothing written to the registry."""
    reg = tmp_path / f"reg-{uuid.uuid4().hex[:6]}"
    res = run_mlops(
        "+pipeline=train_and_promote",
        f"registry.uri={reg}",
        "executor=distributed",
        "executor.address=tcp://192.0.2.10:8786",
        cwd=workdir,
        timeout=60,
    )
    assert res.returncode == 1
    assert f"Error: registry.uri: registry.uri={reg} is a folder on this machine" in res.stderr
    assert "Traceback" not in res.output
    assert not (reg / "runs").exists() and not (reg / "models").exists()
