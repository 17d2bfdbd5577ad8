"""Deleting runs, versions and cache entries from the command line; gc reclaims the bytes.

The project is the one `mlops init` writes (pure Python, fast), plus a pipeline that uses a
version of its model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_mlops

from mlops import Registry

USE = """\
# @package _global_
pipeline:
  name: use
model:
  name: proj_model
  version: 1
steps:
  evaluate:
    _target_: proj_steps.evaluate_only
    slope: ${model:slope}
    points: ${model:points}
"""

EXTRA_STEP = """

@step
def evaluate_only(slope: float, points: list) -> Annotated[float, "mse_again"]:
    return sum((y - slope * x) ** 2 for x, y in points) / len(points)
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Three training runs (v1, v2, v3; v3 in production, v2 in staging), then a run using v1."""
    root = tmp_path_factory.mktemp("lifecycle") / "proj"
    root.mkdir()
    run_mlops("init", cwd=root, check=True)
    (root / "conf" / "pipeline" / "use.yaml").write_text(USE)
    with open(root / "proj_steps.py", "a") as f:
        f.write(EXTRA_STEP)
    for noise in ("0.1", "0.2", "0.3"):
        run_mlops("+pipeline=proj", f"steps.make_data.noise={noise}", cwd=root, check=True)
    run_mlops("promote", "proj_model", "3", "production", cwd=root, check=True)
    run_mlops("promote", "proj_model", "2", "staging", cwd=root, check=True)
    run_mlops("+pipeline=use", cwd=root, check=True)
    yield root


@pytest.fixture
def proj(built: Path, tmp_path: Path) -> Path:
    """A copy of the built project for one test to change."""
    return Path(shutil.copytree(built, tmp_path / "proj"))


def _runs(work: Path, *args: str) -> list[dict]:
    return json.loads(
        run_mlops("runs", "--json", "--limit", "0", *args, cwd=work, check=True).stdout
    )


def _gc_bytes(work: Path, dry: bool) -> int:
    args = ["gc", "--grace", "0", "--json"] + (["--dry-run"] if dry else [])
    return int(json.loads(run_mlops(*args, cwd=work, check=True).stdout)["bytes"])


def test_runs_delete_then_gc(proj: Path) -> None:
    """Deleting a run frees what only it named: gc --dry-run says how much, gc deletes it."""
    assert _gc_bytes(proj, dry=True) == 0
    first = _runs(proj)[0]["id"]
    res = run_mlops("runs", "delete", first[:22], cwd=proj, check=True)
    assert f"deleted run {first}" in res.stdout
    assert first not in [r["id"] for r in _runs(proj)]
    # its logs were named by it alone (its outputs are still named by its cache entries)
    freed = _gc_bytes(proj, dry=True)
    assert freed > 0
    assert _gc_bytes(proj, dry=False) == freed and _gc_bytes(proj, dry=True) == 0
    res = run_mlops("runs", "delete", first, cwd=proj)
    assert res.returncode == 1 and f"no run '{first}'" in res.stderr
    doc = json.loads(run_mlops("runs", "delete", "latest", "--json", cwd=proj, check=True).stdout)
    assert len(doc["deleted"]) == 1


def test_runs_prune_keeps_runs_of_live_versions(proj: Path) -> None:
    """prune --keep-last 1 keeps the newest run of each pipeline and the runs behind the
    versions in staging and production."""
    runs = _runs(proj, "--pipeline", "proj")
    res = run_mlops("runs", "prune", "--keep-last", "1", "--dry-run", "--json", cwd=proj)
    doc = json.loads(res.stdout)
    assert doc["deleted"] == [runs[0]["id"]] and doc["kept"] == [runs[1]["id"]]
    assert len(_runs(proj)) == 4
    res = run_mlops("runs", "prune", "--keep-last", "1", cwd=proj, check=True)
    assert "prune deleted 1 run(s)" in res.stdout
    assert [r["id"] for r in _runs(proj, "--pipeline", "proj")] == [r["id"] for r in runs[1:]]


def test_versions_delete(proj: Path) -> None:
    """A live or used version is refused without --force; a deleted number is never reused."""
    res = run_mlops("versions", "delete", "proj_model", "3", cwd=proj)
    assert res.returncode == 1 and "version 3 is in production" in res.stderr
    res = run_mlops("versions", "delete", "proj_model", "1", cwd=proj)
    assert res.returncode == 1 and "version 1 was used by run" in res.stderr
    res = run_mlops("versions", "delete", "proj_model", "1", "--force", "--json", cwd=proj)
    assert json.loads(res.stdout) == {"name": "proj_model", "deleted": [1]}
    versions = json.loads(run_mlops("versions", "proj_model", "--json", cwd=proj).stdout)
    assert [(v["version"], v["status"]) for v in versions] == [
        (1, "deleted"), (2, "complete"), (3, "complete")
    ]  # fmt: skip
    folder = proj / ".mlops" / "models" / "proj_model" / "versions" / "00000001"
    assert sorted(p.name for p in folder.iterdir()) == ["deleted.json", "version.json"]
    res = run_mlops("+pipeline=use", cwd=proj)
    assert res.returncode == 1 and "version 1" in res.stderr
    run_mlops("+pipeline=proj", "steps.make_data.noise=0.4", cwd=proj, check=True)
    reg = Registry(str(proj / ".mlops"))
    assert reg.models.last_number("proj_model") == 4
    assert reg.get_model_version("proj_model", "latest").number == 4
    assert _gc_bytes(proj, dry=True) >= 0  # every record still reads


def test_versions_delete_force_moves_the_stage(proj: Path) -> None:
    """--force on the production version archives it first: no stage names a deleted version."""
    run_mlops("versions", "delete", "proj_model", "3", "--force", cwd=proj, check=True)
    reg = Registry(str(proj / ".mlops"))
    current = reg.models.current_stages("proj_model")
    assert current is not None and current.holders.get("production") is None
    # the newest version deleted: latest is the one before, and the number stays taken
    assert reg.get_model_version("proj_model", "latest").number == 2
    assert reg.models.last_number("proj_model") == 3
    versions = json.loads(run_mlops("versions", "proj_model", "--json", cwd=proj).stdout)
    assert (versions[2]["status"], versions[2]["stage"]) == ("deleted", "archived")


def test_cache_clear(proj: Path) -> None:
    """cache clear --step S: S runs again next time (the plan says so); others stay cached."""
    res = run_mlops("cache", "clear", "--step", "fit", "--json", cwd=proj, check=True)
    assert json.loads(res.stdout)["deleted_entries"] == 3
    plan = run_mlops("+pipeline=proj", "steps.make_data.noise=0.3", "plan=true", cwd=proj).stdout
    assert "make_data  cached" in plan and "fit        will run" in plan
    res = run_mlops("cache", "clear", cwd=proj, check=True)
    assert res.stdout.startswith("deleted ") and "cache entr" in res.stdout
    plan = run_mlops("+pipeline=proj", "plan=true", cwd=proj).stdout
    assert "make_data  will run" in plan


def test_a_running_run_is_not_deleted(proj: Path) -> None:
    """A run whose lease is live (this process) is refused by delete and kept by prune."""
    import os
    import time

    from mlops.run_store import Run, RunStatus

    reg = Registry(str(proj / ".mlops"))
    live = Run(
        id="20990101-000000-000000-aaaaaa",
        pipeline="proj",
        status=RunStatus.RUNNING,
        started=time.time(),
        finished=None,
        config={},
        step_records={},
        model=None,
        host=__import__("socket").gethostname(),
        pid=os.getpid(),
    )
    reg.runs.save(live)
    reg.runs.beat(live.id)
    res = run_mlops("runs", "delete", live.id, cwd=proj)
    assert res.returncode == 1 and "is still running" in res.stderr, res.output
    doc = json.loads(run_mlops("runs", "prune", "--keep-last", "0", "--json", cwd=proj).stdout)
    assert live.id in doc["kept"] and live.id not in doc["deleted"]


def test_changed_params_without_the_pipeline_yaml(built: Path, tmp_path: Path) -> None:
    """Away from the project (no conf/), changed params are judged against the pipeline's other
    runs, and agree with the YAML here."""
    shutil.copytree(built / ".mlops", tmp_path / ".mlops")
    with_yaml = [r["params"] for r in _runs(built, "--pipeline", "proj")]
    without = [r["params"] for r in _runs(tmp_path, "--pipeline", "proj")]
    assert (
        with_yaml
        == without
        == [
            {},
            {"make_data.noise": 0.2},
            {"make_data.noise": 0.3},
        ]
    )


def test_everything_deleted_but_the_live_versions_stays_loadable(proj: Path) -> None:
    """Prune every run, clear the cache, delete v1: gc frees bytes, and every artifact of the
    remaining versions still loads (nothing they name was collected)."""
    run_mlops("runs", "prune", "--keep-last", "0", cwd=proj, check=True)
    run_mlops("cache", "clear", cwd=proj, check=True)
    run_mlops("versions", "delete", "proj_model", "1", "--force", cwd=proj, check=True)
    before = _gc_bytes(proj, dry=True)
    assert before > 0 and _gc_bytes(proj, dry=False) == before
    reg = Registry(str(proj / ".mlops"))
    for number in (2, 3):
        mv = reg.get_model_version("proj_model", number)
        assert set(mv.artifacts) == {"points", "slope", "mse"}
        for name in mv.artifacts:
            mv.get_model_artifact(name)
    # the runs behind the live versions were kept, with their logs
    kept = _runs(proj)
    assert sorted(r["model"]["number"] for r in kept) == [2, 3]
    log = run_mlops("show-run", kept[-1]["id"], "--logs", "make_data", cwd=proj, check=True)
    assert "made 50 points" in log.stdout
