"""Ctrl-C during a run: one line, exit 130, the run ``interrupted``, nothing incomplete visible.

A small user project (``slow_steps.py``, ``conf/pipeline/slow.yaml`` in ``tmp_path``) has three
steps in a chain: ``first`` (short), ``train`` (slow) and ``promote`` (puts the run's version in
production). Each step drops marker files as it starts and ends; a test waits for a marker and
sends SIGINT to the whole process group, as a terminal's Ctrl-C does (so worker processes get
it too), then checks what the run left behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import S3Server

from mlops.errors import MlopsError
from mlops.registry import Registry

STEPS = """
import os
import time
from pathlib import Path
from typing import Annotated

from mlops import get_step_context, step


def _mark(event: str) -> None:
    Path(os.environ["MARKERS"], event).touch()


@step(enable_cache=False)
def first(seconds: float = 0.0) -> Annotated[int, "one"]:
    _mark("first-start")
    time.sleep(seconds)
    _mark("first-done")
    return 1


@step(enable_cache=False)
def train(one: int, seconds: float = 2.0) -> Annotated[float, "accuracy"]:
    _mark("train-start")
    time.sleep(seconds)
    _mark("train-done")
    return 0.95 + one * 0.0


@step(enable_cache=False)
def promote(accuracy: float) -> Annotated[str, "promotion"]:
    _mark("promote-start")
    get_step_context().model_version.set_stage("production", force=True)
    return "promoted"
"""

PIPELINE = """# @package _global_
pipeline:
  name: slow
model:
  name: slowmodel
steps:
  first:
    _target_: slow_steps.first
    seconds: 0.2
  train:
    _target_: slow_steps.train
    one: ${step:first.one}
    seconds: 3
  promote:
    _target_: slow_steps.promote
    accuracy: ${step:train.accuracy}
"""

AGAIN = "; Ctrl-C again to stop now\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "conf" / "pipeline").mkdir(parents=True)
    (folder / "slow_steps.py").write_text(STEPS)
    (folder / "conf" / "pipeline" / "slow.yaml").write_text(PIPELINE)
    (folder / "markers").mkdir()
    return folder


def _start(
    project: Path, overrides: list[str], env: dict[str, str] | None = None, flags: tuple = ()
) -> Any:
    full_env = {**os.environ, "PYTHONHASHSEED": "0", "MARKERS": str(project / "markers")}
    full_env.pop("HYDRA_FULL_ERROR", None)
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "mlops", *flags, "+pipeline=slow", *overrides],
        cwd=project,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: Ctrl-C goes to the group
    )


def _wait_for(project: Path, marker: str, proc: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (project / "markers" / marker).exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {marker}: {proc.communicate()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no {marker} after {timeout}s")
        time.sleep(0.01)


def _ctrl_c(proc: Any) -> None:
    os.killpg(proc.pid, signal.SIGINT)


def _markers(project: Path) -> set[str]:
    return {p.name for p in (project / "markers").iterdir()}


def _check_interrupted(reg: Registry, out: str, err: str, returncode: int) -> None:
    """Exit 130, one line on stderr, no traceback, the run interrupted, nothing incomplete used."""
    assert returncode == 130, (out, err)
    assert "Traceback" not in out + err
    assert err.startswith("interrupted: ") and err.endswith(AGAIN) and err.count("\n") == 1, err
    runs = reg.list_runs(pipeline="slow")
    assert [str(r.status) for r in runs] == ["interrupted"]
    (mv,) = reg.list_model_versions("slowmodel")
    assert not mv.complete
    current = reg.models.current_stages("slowmodel")
    assert current is None or not current.holders
    with pytest.raises(MlopsError):
        reg.get_model_version("slowmodel", "latest")


EXECUTORS = ["sync", "threads", "processes"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_ctrl_c_during_a_step_lets_it_finish(project: Path, executor: str) -> None:
    """Ctrl-C during train: train finishes, promote never starts, the run is interrupted."""
    reg_uri = str(project / "reg")
    proc = _start(project, [f"registry.uri={reg_uri}", f"executor={executor}"])
    _wait_for(project, "train-start", proc)
    time.sleep(0.3)
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=120)
    assert err == "interrupted: waiting for step train to finish" + AGAIN
    reg = Registry(reg_uri)
    _check_interrupted(reg, out, err, proc.returncode)
    assert "train-done" in _markers(project)
    assert "promote-start" not in _markers(project)
    (run,) = reg.list_runs(pipeline="slow")
    assert run.steps == {"first": "ran", "train": "ran", "promote": "skipped"}
    assert "interrupted" in out.splitlines()[-1]


ORDER = ["first", "train", "promote"]


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15])
def test_ctrl_c_between_steps_starts_no_other(project: Path, executor: str, delay: float) -> None:
    """Ctrl-C as the first step ends: the step it names finishes, no step after it starts."""
    reg_uri = str(project / "reg")
    proc = _start(project, [f"registry.uri={reg_uri}", f"executor={executor}"])
    _wait_for(project, "first-done", proc)
    time.sleep(delay)
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=120)
    reg = Registry(reg_uri)
    _check_interrupted(reg, out, err, proc.returncode)
    prefix = "interrupted: waiting for step "
    if err.startswith(prefix):
        named = err[len(prefix) :].split(" ")[0]
    else:
        assert err == "interrupted: starting no more steps" + AGAIN
        named = "first"  # it had finished; train had not started
    markers = _markers(project)
    assert f"{named}-done" in markers
    assert not {f"{s}-start" for s in ORDER[ORDER.index(named) + 1 :]} & markers, (err, markers)
    (run,) = reg.list_runs(pipeline="slow")
    assert run.steps["promote"] == "skipped"


@pytest.mark.parametrize("executor", EXECUTORS)
def test_second_ctrl_c_stops_at_once(project: Path, executor: str) -> None:
    """A second Ctrl-C exits without waiting for the running step; the record says interrupted."""
    reg_uri = str(project / "reg")
    proc = _start(
        project, [f"registry.uri={reg_uri}", f"executor={executor}", "steps.train.seconds=30"]
    )
    _wait_for(project, "train-start", proc)
    _ctrl_c(proc)
    time.sleep(0.2)
    started = time.monotonic()
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 10  # not the 30 s the step would take
    assert err == "interrupted: waiting for step train to finish" + AGAIN
    _check_interrupted(Registry(reg_uri), out, err, proc.returncode)
    assert "train-done" not in _markers(project)


def test_ctrl_c_with_the_registry_on_s3(project: Path, s3_server: S3Server, s3_bucket: str) -> None:
    """The same on S3 (moto): the run is recorded interrupted and its version stays incomplete."""
    uri = f"{s3_bucket}/registry"
    proc = _start(project, [*s3_server.overrides(uri), "executor=threads"], env=s3_server.env)
    _wait_for(project, "train-start", proc)
    time.sleep(0.3)
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=120)
    _check_interrupted(Registry(uri, **s3_server.storage_options), out, err, proc.returncode)
    assert "promote-start" not in _markers(project)


SLOW_IMPORT = """
import os
import time
from pathlib import Path

from mlops import step

Path(os.environ["MARKERS"], "importing").touch()
time.sleep(60)


def keep(fn):
    return fn


@keep  # a decorator the compiler cannot read: it imports the module to learn the signature
@step
def first() -> int:
    return 1
"""


def test_ctrl_c_before_the_run_exits_130_without_traceback(project: Path) -> None:
    """Ctrl-C while the compiler imports a step module: one line, exit 130, nothing written."""
    reg_uri = project / "reg"
    (project / "slow_import.py").write_text(SLOW_IMPORT)
    pipeline = "# @package _global_\npipeline:\n  name: slow\nsteps:\n  first:\n"
    (project / "conf" / "pipeline" / "slow.yaml").write_text(
        pipeline + "    _target_: slow_import.first\n"
    )
    proc = _start(project, [f"registry.uri={reg_uri}"])
    _wait_for(project, "importing", proc)
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, "interrupted\n"), out + err
    assert not reg_uri.exists()


@pytest.mark.parametrize("times", [1, 2])
def test_ctrl_c_on_a_local_dask_cluster(project: Path, times: int) -> None:
    """executor=distributed: the cluster's processes ignore the group's SIGINT; the run decides."""
    pytest.importorskip("distributed")
    reg_uri = str(project / "reg")
    overrides = [f"registry.uri={reg_uri}", "executor=distributed", "executor.n_workers=1"]
    proc = _start(project, overrides)
    _wait_for(project, "train-start", proc)
    time.sleep(0.3)
    for _ in range(times):
        _ctrl_c(proc)
        time.sleep(0.2)
    out, err = proc.communicate(timeout=120)
    assert err == "interrupted: waiting for step train to finish" + AGAIN
    _check_interrupted(Registry(reg_uri), out, err, proc.returncode)
    assert ("train-done" in _markers(project)) is (times == 1)
    assert "promote-start" not in _markers(project)


def test_ctrl_c_at_random_points(project: Path) -> None:
    """20 Ctrl-C at random moments of a run (startup to exit), on one registry, alternating
    executors: after each, nothing listed, ``latest`` or in a stage is incomplete."""
    import random

    rng = random.Random(11)
    reg_uri = str(project / "reg")
    executors = ["threads", "sync", "processes"]
    # how long a whole run takes here (startup to exit), so that the moments fall within one
    started = time.monotonic()
    proc = _start(project, [f"registry.uri={reg_uri}", "steps.train.seconds=0.5"])
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    whole = time.monotonic() - started
    outcomes: dict[int, int] = {}
    for i in range(20):
        for marker in (project / "markers").iterdir():
            marker.unlink()
        executor = executors[i % len(executors)]
        proc = _start(
            project,
            [f"registry.uri={reg_uri}", f"executor={executor}", "steps.train.seconds=0.5"],
        )
        # from 0.5 s: before that Python itself is importing mlops, where a KeyboardInterrupt
        # can only be Python's own traceback
        time.sleep(rng.uniform(0.5, whole))
        if proc.poll() is None:
            _ctrl_c(proc)
        out, err = proc.communicate(timeout=120)
        outcomes[proc.returncode] = outcomes.get(proc.returncode, 0) + 1
        assert proc.returncode in (0, 130), out + err
        assert "Traceback" not in out + err
        assert err.count("\n") <= 1, err
        reg = Registry(reg_uri)
        runs = {r.id: r for r in reg.list_runs()}
        assert {str(r.status) for r in runs.values()} <= {"completed", "interrupted"}
        for mv in reg.list_model_versions("slowmodel"):
            run = runs.get(mv.run_id or "")
            if run is not None and str(run.status) == "interrupted":
                assert not mv.complete, (mv, run)
        current = reg.models.current_stages("slowmodel")
        for number in current.holders.values() if current else []:
            if number is not None:
                assert reg.models.resolve("slowmodel", number).complete
        with contextlib.suppress(MlopsError):  # no complete version yet
            assert reg.get_model_version("slowmodel", "latest").complete
    assert outcomes.get(130, 0) >= 10, outcomes  # most Ctrl-C came before the end


API_SCRIPT = """
import os
import sys
from pathlib import Path

import mlops

if __name__ == "__main__":  # process pools spawn workers that import this file
    try:
        mlops.run("slow", sys.argv[1:], quiet=True)
    except KeyboardInterrupt as e:
        print("caught", type(e).__name__, flush=True)
        Path(os.environ["MARKERS"], "caught").touch()
    print("the script goes on")
"""


@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_ctrl_c_in_mlops_run_raises(project: Path, times: int, executor: str) -> None:
    """From Python, Ctrl-C raises KeyboardInterrupt (twice: at once); the caller goes on."""
    reg_uri = str(project / "reg")
    (project / "script.py").write_text(API_SCRIPT)
    env = {**os.environ, "PYTHONHASHSEED": "0", "MARKERS": str(project / "markers")}
    seconds = 20 if times == 2 else 2
    overrides = [
        f"registry.uri={reg_uri}",
        f"executor={executor}",
        f"steps.train.seconds={seconds}",
    ]
    proc = subprocess.Popen(
        [sys.executable, "script.py", *overrides],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(project, "train-start", proc)
    for _ in range(times):
        _ctrl_c(proc)
        time.sleep(0.3)
    if times == 2:  # raised at once, not after the 20 s step
        _wait_for(project, "caught", proc, timeout=10)
        # a process pool's workers are ended; a thread cannot be, and ends its step unseen
        assert "train-done" not in _markers(project) or executor == "threads"
    out, err = proc.communicate(timeout=120)
    expected = "RunInterrupted" if times == 1 else "KeyboardInterrupt"
    assert (proc.returncode, out) == (0, f"caught {expected}\nthe script goes on\n"), err
    assert err == "interrupted: waiting for step train to finish" + AGAIN
    if times == 1:
        assert "train-done" in _markers(project)
    (run,) = Registry(reg_uri).list_runs()
    assert str(run.status) == "interrupted"
    assert not Registry(reg_uri).list_model_versions("slowmodel")[0].complete


@pytest.mark.parametrize("executor", EXECUTORS)
@pytest.mark.parametrize("jobs", [2, 3])
def test_ctrl_c_in_a_sweep_finishes_every_job_interrupted(
    project: Path, executor: str, jobs: int
) -> None:
    """A sweep (``-m``): the running steps finish, nothing else starts, nothing is promoted,
    every job's run is recorded ``interrupted`` (none left ``abandoned``), its version stays
    incomplete, the summary says so, and the exit status is 130."""
    reg_uri = str(project / "reg")
    values = ",".join(f"{0.2 + i / 100:.2f}" for i in range(jobs))  # distinct: none shared
    proc = _start(
        project,
        [f"registry.uri={reg_uri}", f"executor={executor}", f"steps.first.seconds={values}"],
        flags=("-m",),
    )
    _wait_for(project, "train-start", proc)
    time.sleep(0.3)
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in out + err
    assert err.startswith("interrupted: ") and err.endswith(AGAIN), err
    assert "promote-start" not in _markers(project)
    reg = Registry(reg_uri)
    runs = reg.list_runs(pipeline="slow")
    assert len(runs) == jobs
    assert {str(r.status) for r in runs} == {"interrupted"}, [r.status for r in runs]
    assert all(r.steps["promote"] == "skipped" for r in runs)
    assert not any(mv.complete for mv in reg.list_model_versions("slowmodel"))
    with pytest.raises(MlopsError):
        reg.get_model_version("slowmodel", "latest")
    assert f"0 of {jobs} jobs completed" in out
    assert out.count("interrupted") >= jobs  # one summary row per job


def test_second_ctrl_c_in_a_sweep_stops_at_once(project: Path) -> None:
    reg_uri = str(project / "reg")
    proc = _start(
        project,
        [f"registry.uri={reg_uri}", "steps.train.seconds=30", "steps.first.seconds=0.2,0.3"],
        flags=("-m",),
    )
    _wait_for(project, "train-start", proc)
    _ctrl_c(proc)
    time.sleep(0.2)
    started = time.monotonic()
    _ctrl_c(proc)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 10, (out, err)
    assert proc.returncode == 130
    assert "Traceback" not in out + err
    assert "train-done" not in _markers(project)
    runs = Registry(reg_uri).list_runs(pipeline="slow")
    assert {str(r.status) for r in runs} == {"interrupted"}, [r.status for r in runs]
