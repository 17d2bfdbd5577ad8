"""gc is safe under concurrent runs: it never deletes an object a run is about to link.

The race from issue 11: an orphan object older than the grace period (left by a killed run) that
a new run produces again is reused by its content hash without refreshing its age; a concurrent
``gc --grace 0`` must not delete it under the run. Tested repeatedly with a gc loop in another
process, on a registry with enough records that each gc pass takes a while (a wide window between
its first look and its deletions). Also: ``--ignore-running``, abandoned runs do not block gc,
and objects moved aside by a killed gc are put back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.cache_store import CacheEntry
from mlops.check import check_registry
from mlops.gc import ASIDE_PREFIX, collect_garbage
from mlops.registry import Registry
from mlops.run_store import Run, RunStatus

sys.path.insert(0, str(Path(__file__).parent))
from conftest import run_mlops  # noqa: E402
from registry_builder import dead_pid  # noqa: E402

STEPS = """
from typing import Annotated

import numpy as np

from mlops import step


@step
def make(seed: int = 0) -> Annotated[np.ndarray, "data"]:
    return np.random.default_rng(seed).random(2000)


@step
def total(data: np.ndarray) -> Annotated[float, "total"]:
    return float(data.sum())
"""

PIPELINE = """# @package _global_
pipeline:
  name: gcrace
model:
  name: gcrace
steps:
  make:
    _target_: gc_steps.make
    seed: 0
  total:
    _target_: gc_steps.total
    data: ${step:make.data}
"""

GC_LOOP = """
import os, sys
from mlops.gc import collect_garbage
from mlops.registry import Registry
reg = Registry(sys.argv[1])
passes = 0
while not os.path.exists(sys.argv[2]):  # stopped between passes (a killed gc: see below)
    collect_garbage(reg, grace=0)
    passes += 1
    print(passes, flush=True)
"""

OLD = time.time() - 7200


def _age(reg: Registry, rel: str) -> None:
    os.utime(reg.storage.path(rel), (OLD, OLD))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "gc_steps.py").write_text(STEPS)
    (tmp_path / "conf" / "pipeline").mkdir(parents=True)
    (tmp_path / "conf" / "pipeline" / "gcrace.yaml").write_text(PIPELINE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _padding(reg: Registry, n: int) -> None:
    """Referenced records that make each gc pass read for a while."""
    ref = reg.artifacts.put({"padding": True})
    for i in range(n):
        reg.cache.write_entry(CacheEntry(f"{i:032x}", "pad", {"out": ref}, created=OLD))


@pytest.mark.slow
def test_a_reused_orphan_is_never_deleted_under_a_run(project: Path) -> None:
    """Orphans reproduced by new runs while `gc --grace 0` loops: every version stays whole."""
    import mlops

    uri = str(project / "registry")
    reg = Registry(uri)
    _padding(reg, 300)
    stop = project / "stop-gc"
    gc = subprocess.Popen(
        [sys.executable, "-c", GC_LOOP, uri, str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=project,
    )
    failed = []
    try:
        for seed in range(12):
            # the orphan a killed run left: the exact bytes this run's `make` returns, aged
            orphan = reg.artifacts.put(np.random.default_rng(seed).random(2000))
            _age(reg, orphan.path)
            try:
                mlops.run("gcrace", [f"registry.uri={uri}", f"steps.make.seed={seed}"], quiet=True)
            except mlops.MlopsError as e:  # only ever a read in the moment an object is aside
                failed.append(str(e))
    finally:
        stop.touch()
        out, err = gc.communicate(timeout=60)
    assert gc.returncode == 0, err
    assert len(out.split()) > 12, "the gc loop hardly ran"
    assert len(failed) <= 2, failed
    complete = [v for v in reg.list_model_versions("gcrace") if v.complete]
    assert len(complete) >= 10
    for _ in range(2):  # every version links whole objects, before and after a last gc
        for mv in complete:
            for ref in mv.artifacts.values():
                reg.artifacts.read_verified(ref)
        collect_garbage(reg, grace=0)
    for mv in complete:
        assert mv.get_model_artifact("total") == pytest.approx(mv.get_model_artifact("data").sum())
    report = check_registry(reg)
    assert not report.damage, report.text()


def _running_run(reg: Registry, rid: str, pid: int, beat: float, host: str | None = None) -> None:
    import socket

    reg.runs.save(
        Run(
            id=rid,
            pipeline="p",
            status=RunStatus.RUNNING,
            started=beat,
            finished=None,
            config={},
            step_records={},
            model=None,
            host=host or socket.gethostname(),
            pid=pid,
        )
    )
    reg.storage.write_json(f"runs/{rid}/heartbeat.json", {"time": beat, "pid": pid})


def _orphan(reg: Registry, value: Any) -> str:
    ref = reg.artifacts.put(value)
    _age(reg, ref.path)
    return ref.path


def test_a_live_run_holds_objects_and_ignore_running_overrides(tmp_path: Path) -> None:
    """A running run with a fresh heartbeat: gc keeps orphans (and says why) unless told."""
    uri = str(tmp_path / "registry")
    reg = Registry(uri)
    path = _orphan(reg, [1, 2, 3])
    _running_run(reg, "20260101-000000-000000-aaaaaa", os.getpid(), time.time())
    out = run_mlops("gc", "--grace", "0", "--registry", uri, cwd=tmp_path)
    assert out.returncode == 0, out.output
    assert "20260101-000000-000000-aaaaaa" in out.stdout and "--ignore-running" in out.stdout
    assert reg.storage.exists(path)
    out = run_mlops("gc", "--grace", "0", "--ignore-running", "--registry", uri, cwd=tmp_path)
    assert out.returncode == 0, out.output
    assert path in out.stdout and not reg.storage.exists(path)


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("dead-pid", id="process-gone"),
        pytest.param("stale-beat", id="no-beat-for-10-minutes-other-host"),
    ],
)
def test_abandoned_runs_do_not_block_gc(tmp_path: Path, how: str) -> None:
    """A run killed without ending its record holds no lease: gc deletes orphans."""
    reg = Registry(str(tmp_path / "registry"))
    path = _orphan(reg, {"left": "by a killed run"})
    if how == "dead-pid":
        _running_run(reg, "20260101-000000-000000-bbbbbb", dead_pid(), time.time())
    else:
        _running_run(reg, "20260101-000000-000000-bbbbbb", 1, time.time() - 600, "elsewhere")
    assert reg.get_run("20260101-000000-000000-bbbbbb").status is RunStatus.ABANDONED
    report = collect_garbage(reg, grace=0)
    assert report.running == ()
    assert path in [p for p, _ in report.deleted] and not reg.storage.exists(path)


def test_objects_a_killed_gc_moved_aside_are_put_back(tmp_path: Path) -> None:
    """A gc killed between moving objects aside and deleting them loses nothing referenced."""
    reg = Registry(str(tmp_path / "registry"))
    kept = reg.register_model_version("m", {"x": reg.artifacts.put([42])})
    ref = kept.artifacts["x"]
    orphan = _orphan(reg, "orphan")
    aside = f"objects/tmp/{ASIDE_PREFIX}killed/{ref.id}"
    os.makedirs(os.path.dirname(reg.storage.path(aside)))
    os.replace(reg.storage.path(ref.path), reg.storage.path(aside))
    assert {f.path for f in check_registry(reg).damage} == {ref.path}  # missing, for now
    report = collect_garbage(reg, grace=0)
    assert orphan in [p for p, _ in report.deleted]
    assert reg.get_model_version("m", 1).get_model_artifact("x") == [42]
    assert not list((tmp_path / "registry" / "objects" / "tmp").glob(f"{ASIDE_PREFIX}*/*"))
    assert not check_registry(reg).damage
