"""SIGKILL a pipeline at many points; the registry must stay readable and trustworthy.

A small user project (``crash_steps.py`` and ``conf/pipeline/crashy.yaml`` in ``tmp_path``) has
three steps: one returns a 32 MB array (a large artifact write follows), one sleeps (a window
between steps), and one promotes the run's model version (a window during a stage change). Each
step drops a marker file; the test waits for a marker, waits a little more, and kills the run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops.hashing import hash_bytes
from mlops.registry import Registry
from mlops.store import ArtifactRef

STEPS = """
import os
import time
from pathlib import Path
from typing import Annotated

import numpy as np

from mlops import get_step_context, step


def _mark(event: str) -> None:
    Path(os.environ["CRASH_MARKERS"], event).touch()


@step
def make_big(seed: int = 0) -> Annotated[np.ndarray, "big"]:
    arr = np.random.default_rng(seed).random(4_000_000)
    _mark("big-returned")
    return arr


@step
def pause(big: np.ndarray) -> Annotated[float, "total"]:
    _mark("pause-start")
    time.sleep(0.3)
    return float(big.sum())


@step(enable_cache=False)
def promote(total: float) -> Annotated[str, "promotion"]:
    version = get_step_context().model_version
    _mark("promote-start")
    version.set_stage("production", force=True)
    _mark("promote-done")
    return f"v{version.number}"
"""

PIPELINE = """# @package _global_
pipeline:
  name: crashy
model:
  name: crashy
steps:
  make_big:
    _target_: crash_steps.make_big
    seed: 0
  pause:
    _target_: crash_steps.pause
    big: ${step:make_big.big}
  promote:
    _target_: crash_steps.promote
    total: ${step:pause.total}
"""

# (marker to wait for, extra delay in seconds): 20 kills over the run's kill windows
PLAN = [
    *[("big-returned", d) for d in (0.0, 0.002, 0.005, 0.01, 0.02, 0.04, 0.08)],
    *[("pause-start", d) for d in (0.0, 0.1, 0.2, 0.35)],
    *[("promote-start", d) for d in (0.0, 0.0005, 0.001, 0.002, 0.004, 0.008)],
    *[("started", d) for d in (0.3, 0.8, 1.2)],
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "crash_steps.py").write_text(STEPS)
    (tmp_path / "conf" / "pipeline").mkdir(parents=True)
    (tmp_path / "conf" / "pipeline" / "crashy.yaml").write_text(PIPELINE)
    return tmp_path


def _start(project: Path, registry: str, seed: int, markers: Path) -> subprocess.Popen[str]:
    markers.mkdir(parents=True)
    env = {**os.environ, "CRASH_MARKERS": str(markers), "PYTHONHASHSEED": "0"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlops",
            "+pipeline=crashy",
            f"registry.uri={registry}",
            f"steps.make_big.seed={seed}",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for(marker: Path, proc: subprocess.Popen[str], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:  # pragma: no cover
            raise AssertionError(f"{marker.name} never happened")
        time.sleep(0.0005)
    return True


def check_registry(uri: str) -> None:
    """Everything a later run could read is complete, consistent and verifies."""
    reg = Registry(uri)
    versions = reg.list_model_versions("crashy")
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    history = reg.stage_history("crashy")
    assert [c.seq for c in history] == list(range(1, len(history) + 1))
    stages = [v.stage for v in versions]
    assert stages.count("production") <= 1
    for v in versions:  # only complete versions are ever given a stage
        assert v.complete or v.stage == "none", v
    complete = [v.number for v in versions if v.complete]
    if complete:  # latest is the last complete version, however many incomplete ones follow
        assert reg.get_model_version("crashy", "latest").number == complete[-1]
    if history:
        holder = reg.get_model_version("crashy", "production")
        assert holder.number == history[-1].holders["production"] and holder.complete
    for mv in versions:
        for ref in mv.artifacts.values():
            reg.artifacts.read_verified(ref)  # linked artifacts are always complete
    for path in reg.storage.walk("cache"):
        entry = reg.storage.read_json(path)
        assert entry is not None, f"half-written cache entry {path}"
        for ref in entry.get("outputs", {}).values():
            reg.artifacts.read_verified(ArtifactRef.from_json(ref))
    for path in reg.storage.walk("objects"):
        if path.startswith("objects/tmp/"):
            continue  # a payload being written when the run died: never under a final name
        name = path.rsplit("/", 1)[-1]
        assert hash_bytes(reg.storage.read(path)) == name, f"object {path} is not what it claims"
    for run in reg.list_runs():
        # a killed run is abandoned (its process is gone), never `running` forever
        assert run.status in ("completed", "failed", "abandoned"), run


@pytest.mark.slow
def test_sigkill_anywhere_leaves_a_trustworthy_registry(project: Path) -> None:
    """20 runs killed at chosen points: the registry always reads cleanly; then runs complete."""
    registry = str(project / "registry")
    killed = 0
    for i, (event, delay) in enumerate(PLAN):
        markers = project / "markers" / str(i)
        proc = _start(project, registry, seed=i % 3, markers=markers)
        if event == "started":
            reached = True
            time.sleep(delay)
        else:
            reached = _wait_for(markers / event, proc)
            time.sleep(delay)
        if reached and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate(timeout=120)
        check_registry(registry)
    assert killed >= 17, f"only {killed} of {len(PLAN)} runs were still running when killed"

    for seed in range(3):  # the next runs complete, reusing what the killed ones left complete
        done = subprocess.run(
            [sys.executable, "-m", "mlops", "+pipeline=crashy", f"registry.uri={registry}"]
            + [f"steps.make_big.seed={seed}"],
            cwd=project,
            env={**os.environ, "CRASH_MARKERS": str(project / "markers"), "PYTHONHASHSEED": "0"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "mlops: crashy completed" in done.stdout
    check_registry(registry)
    reg = Registry(registry)
    last = reg.get_model_version("crashy", "latest")
    assert last.stage == "production"
    assert last.run_id is not None
    assert reg.get_run(last.run_id).load("promote") == f"v{last.number}"

    gc = subprocess.run(
        [sys.executable, "-m", "mlops", "gc", "--grace", "0", "--registry", registry],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert gc.returncode == 0, gc.stderr
    assert not list(Path(registry, "objects", "tmp").glob("*"))
    check_registry(registry)
    for mv in reg.list_model_versions("crashy"):  # gc never breaks a version
        for ref in mv.artifacts.values():
            reg.artifacts.read_verified(ref)
