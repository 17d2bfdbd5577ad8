"""A model version is whole or invisible, and reads never write.

Runs of the reference pipelines that fail at each step leave an ``incomplete`` version that
``latest``, stages and ``promote`` never use; a failure after the promotion step asked for
``production`` promotes nothing. Compiling and ``plan=true`` leave the registry's bytes as they
were, also when the version hint lags far behind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_mlops

from mlops.errors import ModelNotFoundError, StageError
from mlops.models import VersionStatus
from mlops.registry import Registry

STEPS = """\
from typing import Annotated

from mlops import get_step_context, step


@step
def make(fail: str = "") -> Annotated[int, "value"]:
    if fail == "make":
        raise ValueError("make failed")
    return 7


@step
def score(value: int, fail: str = "") -> Annotated[float, "accuracy"]:
    if fail == "score":
        raise ValueError("score failed")
    return 0.95


@step(enable_cache=False)
def promote(accuracy: float) -> Annotated[str, "decision"]:
    get_step_context().model_version.set_stage("production", force=True)
    return "promoted"


@step
def after(decision: str, fail: str = "") -> Annotated[str, "done"]:
    if fail == "after":
        raise ValueError("after failed")
    return decision
"""

PIPELINE = """\
# @package _global_
pipeline:
  name: whole
model:
  name: m
steps:
  make: {_target_: wholesteps.make}
  score: {_target_: wholesteps.score, value: "${step:make.value}"}
  promote: {_target_: wholesteps.promote, accuracy: "${step:score.accuracy}"}
  after: {_target_: wholesteps.after, decision: "${step:promote.decision}"}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "conf" / "pipeline").mkdir(parents=True)
    (root / "wholesteps.py").write_text(STEPS)
    (root / "conf" / "pipeline" / "whole.yaml").write_text(PIPELINE)
    return root


def _run(project: Path, *overrides: str) -> int:
    res = run_mlops("+pipeline=whole", f"registry.uri={project / 'reg'}", *overrides, cwd=project)
    return res.returncode


@pytest.mark.parametrize("failing", ["make", "score", "after"])
def test_failed_run_leaves_an_invisible_version(project: Path, failing: str) -> None:
    """v1 is good and in production; a run failing at any step leaves v2 incomplete: listed as
    such, skipped by latest, refused by stages; production stays v1 even when the failure comes
    after the promotion step asked for production."""
    assert _run(project) == 0
    assert _run(project, f"steps.{failing}.fail={failing}") == 1
    reg = Registry(str(project / "reg"))
    versions = reg.list_model_versions("m")
    assert [(v.number, v.status) for v in versions] == [
        (1, VersionStatus.COMPLETE),
        (2, VersionStatus.INCOMPLETE),
    ]
    assert versions[1].artifacts == {} and versions[1].metadata == {}
    assert reg.get_model_version("m", "latest").number == 1
    assert reg.get_model_version("m", "production").number == 1
    with pytest.raises(ModelNotFoundError, match="version 2 is incomplete"):
        reg.get_model_version("m", 2)
    with pytest.raises(StageError, match="version 2 is incomplete"):
        reg.set_stage("m", 2, "staging")
    res = run_mlops("versions", "m", "--registry", str(project / "reg"), cwd=project)
    assert res.returncode == 0
    line = res.stdout.splitlines()[2]
    assert line.split()[:4] == ["2", "incomplete", "(run", "failed)"]
    assert _run(project) == 0  # the next good run is v3, promoted
    assert reg.get_model_version("m", "production").number == 3
    assert reg.get_model_version("m", "latest").number == 3


def test_complete_version_holds_everything_its_run_linked(project: Path) -> None:
    """A complete version links every output and metric of its run, in one record."""
    assert _run(project) == 0
    mv = Registry(str(project / "reg")).get_model_version("m", "latest")
    assert set(mv.artifacts) == {"value", "accuracy", "decision", "done"}
    assert mv.metadata == {"value": 7, "accuracy": 0.95}
    assert mv.stage == "production"


def test_metadata_added_later_is_a_note(project: Path) -> None:
    """log_metadata on a complete version appends a note (who, when); the run's metadata stays."""
    assert _run(project) == 0
    reg = Registry(str(project / "reg"))
    mv = reg.get_model_version("m", 1)
    mv.log_metadata({"accuracy": 0.1, "reviewed": True})
    again = reg.get_model_version("m", 1)
    assert again.metadata == {"value": 7, "accuracy": 0.95}
    assert [dict(n.values) for n in again.notes] == [{"accuracy": 0.1, "reviewed": True}]
    assert again.notes[0].user
    res = run_mlops("versions", "m", "--registry", str(project / "reg"), "--json", cwd=project)
    doc = json.loads(res.stdout)
    assert doc[0]["metadata"]["accuracy"] == 0.95
    assert doc[0]["notes"][0]["values"] == {"accuracy": 0.1, "reviewed": True}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("version", ["latest", "production", "1"])
def test_reads_never_write(project: Path, version: str) -> None:
    """With the version hint lagging 30 versions behind (and a stage history hint lagging too),
    plan=true and the read commands leave every byte of the registry as it was."""
    for _ in range(31):
        assert _run(project, "executor=sync") == 0
    reg_dir = project / "reg"
    (reg_dir / "models/m/versions/head.json").write_text('{"n": 1}')
    (reg_dir / "models/m/stages/head.json").write_text('{"n": 1}')
    before = _digest(reg_dir)
    pipeline = project / "conf/pipeline/whole.yaml"
    pipeline.write_text(
        pipeline.read_text().replace("  name: m\n", f"  name: m\n  version: {version}\n")
    )
    res = run_mlops("+pipeline=whole", f"registry.uri={reg_dir}", "plan=true", cwd=project)
    assert res.returncode == 0, res.output
    for args in (["versions", "m"], ["models"], ["history", "m"], ["runs"]):
        assert run_mlops(*args, "--registry", str(reg_dir), cwd=project).returncode == 0
    assert _digest(reg_dir) == before
