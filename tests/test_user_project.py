"""A user's own project: its conf/ and step modules in the current folder, run from there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import ROOT, run_mlops

from mlops import Registry

STEPS = """
from typing import Annotated

from mlops import step


@step
def numbers(n: int = 3) -> Annotated[list, "numbers"]:
    return list(range(n))


@step
def total(values: list) -> Annotated[int, "total"]:
    return sum(values)
"""

COUNT = """\
# @package _global_
pipeline:
  name: count
steps:
  numbers:
    _target_: project_steps.numbers
    n: 3
  total:
    _target_: project_steps.total
    values: ${step:numbers}
"""

# Same name as the packaged pipeline: the project's one must win.
SHADOW = """\
# @package _global_
pipeline:
  name: train_and_promote
steps:
  numbers:
    _target_: project_steps.numbers
    n: 10
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("project")
    (folder / "conf" / "pipeline").mkdir(parents=True)
    (folder / "conf" / "pipeline" / "count.yaml").write_text(COUNT)
    (folder / "conf" / "pipeline" / "train_and_promote.yaml").write_text(SHADOW)
    (folder / "project_steps.py").write_text(STEPS)
    return folder


def test_own_pipeline(project: Path, tmp_path: Path) -> None:
    """A pipeline of the project, with steps imported from the current folder."""
    uri = str(tmp_path / "reg")
    res = run_mlops("+pipeline=count", "steps.numbers.n=5", f"registry.uri={uri}", cwd=project)
    assert res.returncode == 0, res.output
    (run,) = Registry(uri).list_runs()
    assert (run.pipeline, run.steps) == ("count", {"numbers": "ran", "total": "ran"})
    assert run.load("total") == 10


def test_default_registry_in_current_folder(project: Path) -> None:
    """Without registry.uri, the registry is .mlops/ in the current folder."""
    res = run_mlops("+pipeline=count", cwd=project)
    assert res.returncode == 0, res.output
    assert Registry(str(project / ".mlops")).list_runs(pipeline="count")[-1].load("total") == 3


def test_project_shadows_packaged_pipeline(project: Path, tmp_path: Path) -> None:
    """conf/pipeline/train_and_promote.yaml of the project replaces the packaged one."""
    uri = str(tmp_path / "reg")
    res = run_mlops("+pipeline=train_and_promote", f"registry.uri={uri}", cwd=project)
    assert res.returncode == 0, res.output
    assert res.stdout.splitlines()[0].startswith("mlops: running train_and_promote (1 steps;")
    reg = Registry(uri)
    assert reg.list_models() == []
    assert reg.list_runs()[0].load("numbers") == list(range(10))


def test_cfg_job(project: Path) -> None:
    """--cfg job prints the composed config and runs nothing."""
    res = run_mlops("+pipeline=count", "registry.uri=never", "--cfg", "job", cwd=project)
    assert res.returncode == 0, res.output
    step = "  total:\n    _target_: project_steps.total\n    values: ${step:numbers}\n"
    assert step in res.stdout
    assert not (project / "never").exists()


def test_help_lists_project_pipelines(project: Path) -> None:
    """--help names the app and lists the project's pipelines with the packaged ones."""
    res = run_mlops("--help", cwd=project)
    assert res.returncode == 0, res.output
    assert res.stdout.startswith("mlops: run a pipeline with python -m mlops +pipeline=NAME")
    assert (
        "pipeline: count, do_predictions, do_predictions_from_context, train_and_promote\n"
        in res.stdout
    )


def test_info_shows_project_search_path(project: Path) -> None:
    """--info shows the project's conf/ first in the search path."""
    res = run_mlops("--info", "searchpath", cwd=project)
    assert res.returncode == 0, res.output
    rows = [line for line in res.stdout.splitlines() if "file://" in line or "pkg://" in line]
    assert f"file://{project / 'conf'}" in rows[0]
    assert any("pkg://mlops.conf" in r for r in rows[1:])


def test_multirun(project: Path, tmp_path: Path) -> None:
    """-m runs one job per value, each recorded as a run."""
    uri = str(tmp_path / "reg")
    res = run_mlops(
        "-m",
        "+pipeline=count",
        "steps.numbers.n=2,4",
        f"registry.uri={uri}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
        cwd=project,
    )
    assert res.returncode == 0, res.output
    runs = Registry(uri).list_runs(pipeline="count")
    assert sorted(r.load("total") for r in runs) == [1, 6]


def test_example_project(tmp_path: Path) -> None:
    """examples/my_project runs as its README says: train, then predict with production."""
    folder = tmp_path / "my_project"
    shutil.copytree(ROOT / "examples" / "my_project", folder)
    train = run_mlops("+pipeline=train_regressor", cwd=folder)
    assert train.returncode == 0, train.output
    assert train.stdout.splitlines()[-1].startswith("mlops: promote: v1 promoted to production")
    score = run_mlops("+pipeline=score_batch", cwd=folder)
    assert score.returncode == 0, score.output
    reg = Registry(str(folder / ".mlops"))
    mv = reg.get_model_version("diabetes_regressor", "production")
    assert (mv.number, mv.metadata["r2"] > 0.3) == (1, True)
    (run,) = reg.list_runs(pipeline="score_batch")
    assert len(run.load("predict", "progression")) == 442
