"""Sweeps (``-m``): every job in one graph on a real LocalCluster, registry on S3 (moto)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import S3Server, local_dask_cluster, run_mlops

from mlops import Registry


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One LocalCluster (2 worker processes) for the module; yields its scheduler address."""
    with local_dask_cluster(n_workers=2) as address:
        yield address


def _sweep(workdir: Path, server: S3Server, uri: str, cluster: str, *args: str) -> Any:
    return run_mlops(
        "-m",
        "+pipeline=train_and_promote",
        "executor=distributed",
        f"executor.address={cluster}",
        *server.overrides(uri),
        *args,
        cwd=workdir,
        env=server.env,
    )


def _summaries(workdir: Path) -> list[dict[str, Any]]:
    """The saved sweep summaries, oldest first."""
    paths = sorted(workdir.glob("multirun/*/*/sweep_summary.json"), key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text()) for p in paths]


def _ran(reg: Registry, run_ids: list[str]) -> Counter[str]:
    """How many of these runs ran (not cached) each step, from their run records."""
    counts: Counter[str] = Counter()
    for run_id in run_ids:
        counts.update(s for s, status in reg.get_run(run_id).steps.items() if status == "ran")
    return counts


def test_sweep_shares_steps_caches_and_promotes_the_best(
    cluster: str, s3_server: S3Server, s3_bucket: str, workdir: Path
) -> None:
    """4 jobs: shared steps run once, best accuracy ends in production; relaunch is all cached."""
    uri = f"{s3_bucket}/registry"
    res = _sweep(workdir, s3_server, uri, cluster, "steps.train.C=0.01,0.1,1,10")
    assert res.returncode == 0, res.output
    assert "4 of 4 jobs completed" in res.stdout
    reg = Registry(uri, **s3_server.storage_options)
    (first,) = _summaries(workdir)
    jobs = first["jobs"]
    assert [j["overrides"][-1] for j in jobs] == [
        f"steps.train.C={c}" for c in ("0.01", "0.1", "1", "10")
    ]
    assert [j["version"] for j in jobs] == [1, 2, 3, 4]
    assert _ran(reg, [j["run"] for j in jobs]) == {
        "load_data": 1,
        "split": 1,
        "train": 4,
        "evaluate": 4,
        "promote": 4,
    }
    assert all(j["steps"]["load_data"] in ("ran", "cached") for j in jobs)
    # promotion: the best passing job ends in production, the other passing ones archived
    best = max(jobs, key=lambda j: (j["metric"], -j["job"]))
    stages = {v.number: v.stage for v in reg.list_model_versions("iris_classifier")}
    assert stages[best["version"]] == "production"
    for j in jobs:
        expected = "production" if j is best else ("archived" if j["metric"] >= 0.9 else "none")
        assert stages[j["version"]] == expected == j["stage"]
    # every job has its own output folder with its config
    sweep_dir = next(workdir.glob("multirun/*/*"))
    for n in range(4):
        assert (sweep_dir / str(n) / ".hydra" / "overrides.yaml").exists()
    assert (sweep_dir / "sweep_summary.txt").read_text() in res.stdout

    # the same sweep again: everything but the uncacheable promote is a cache hit
    again = _sweep(workdir, s3_server, uri, cluster, "steps.train.C=0.01,0.1,1,10")
    assert again.returncode == 0, again.output
    second = _summaries(workdir)[-1]["jobs"]
    assert _ran(reg, [j["run"] for j in second]) == {"promote": 4}
    assert [j["version"] for j in second] == [5, 6, 7, 8]
    assert reg.get_model_version("iris_classifier", "production").number == best["version"] + 4

    # one new value: only its train and evaluate run
    more = _sweep(workdir, s3_server, uri, cluster, "steps.train.C=0.1,100")
    assert more.returncode == 0, more.output
    third = _summaries(workdir)[-1]["jobs"]
    assert third[0]["steps"] == {
        "load_data": "cached",
        "split": "cached",
        "train": "cached",
        "evaluate": "cached",
        "promote": "ran",
    }
    assert third[1]["steps"]["train"] == "ran" and third[1]["steps"]["split"] == "cached"


def test_failing_job_does_not_stop_the_others(
    cluster: str, s3_server: S3Server, s3_bucket: str, workdir: Path
) -> None:
    """An invalid value fails its job (reported with its overrides); the others complete."""
    uri = f"{s3_bucket}/registry"
    res = _sweep(workdir, s3_server, uri, cluster, "steps.train.C=1,-1,10")
    assert res.returncode == 1, res.output
    assert "2 of 3 jobs completed" in res.stdout
    assert (
        "job #1 (" in res.stdout and "steps.train.C=-1) failed: step 'train' failed" in res.stdout
    )
    assert "Error: 1 of 3 jobs failed" in res.stderr
    (summary,) = _summaries(workdir)
    statuses = [(j["status"], j["steps"].get("train")) for j in summary["jobs"]]
    assert statuses == [("completed", "ran"), ("failed", "failed"), ("completed", "ran")]
    reg = Registry(uri, **s3_server.storage_options)
    failed_run = reg.get_run(summary["jobs"][1]["run"])
    assert failed_run.status == "failed" and failed_run.steps["promote"] == "skipped"
    assert (
        reg.get_model_version("iris_classifier", "production").number
        == summary["jobs"][2]["version"]
    )


def test_sweep_with_local_registry_and_remote_scheduler_fails_before_running(
    workdir: Path, tmp_path: Path
) -> None:
    """The registry check comes before any job runs: one error line, nothing registered."""
    reg = tmp_path / "reg"
    res = run_mlops(
        "-m",
        "+pipeline=train_and_promote",
        f"registry.uri={reg}",
        "executor=distributed",
        "executor.address=tcp://192.0.2.10:8786",
        "steps.train.C=0.1,1",
        cwd=workdir,
        timeout=60,
    )
    assert res.returncode == 1
    assert f"Error: registry.uri: registry.uri={reg} is a folder on this machine" in res.stderr
    assert not (reg / "runs").exists() and not (reg / "models").exists()


def test_basic_launcher_still_selectable(workdir: Path, registry_uri: str) -> None:
    """hydra/launcher=basic runs the jobs one after another as plain runs."""
    res = run_mlops(
        "-m",
        "+pipeline=train_and_promote",
        f"registry.uri={registry_uri}",
        "hydra/launcher=basic",
        "steps.train.C=0.1,1",
        cwd=workdir,
        check=True,
    )
    assert "sweep summary" not in res.stdout
    assert res.stdout.count("completed in") == 2
    assert len(Registry(registry_uri).list_model_versions("iris_classifier")) == 2
