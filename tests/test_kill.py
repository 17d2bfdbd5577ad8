"""SIGKILL and SIGINT at seeded random points, on a local folder and on S3 (moto on loopback).

Extends ``test_crash.py`` (same project, marker files and kill windows; it covers SIGKILL on a
local folder at chosen points): here the points are drawn at random from a seed, Ctrl-C (SIGINT)
is added, and both run against S3 too. After every kill the registry must be trustworthy: no
stage, ``latest`` or version listed as complete points at anything incomplete or missing, the
killed run does not read ``running``, and ``mlops check`` finds no damage (incomplete versions
are not damage). At the end a normal run completes and a ``gc --grace 0`` breaks nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops.check import check_registry as fsck
from mlops.registry import Registry
from mlops.run_store import RunStatus

sys.path.insert(0, str(Path(__file__).parent))
from test_crash import PIPELINE, STEPS, _start, _wait_for  # noqa: E402

#: kills per signal and storage: 20 of each signal in all, half on a local folder, half on S3
#: (about 2 s a run; test_crash.py adds 20 SIGKILLs on a local folder at chosen points)
KILLS = 10
#: where a kill can land: a marker a step drops (then a random delay), or a time after start
EVENTS = ("big-returned", "pause-start", "promote-start", "started")


def kill_plan(seed: int, n: int = KILLS) -> list[tuple[str, float]]:
    """``n`` (event, delay) pairs drawn from ``seed``: most delays tiny, some long.

    Examples:
        >>> kill_plan(1, 2) == kill_plan(1, 2)
        True
    """
    rng = random.Random(seed)
    plan = []
    for _ in range(n):
        event = rng.choice(EVENTS)
        if event == "started":
            delay = rng.uniform(0.2, 1.5)  # compiling, taking the version, the first step
        else:
            delay = rng.choice([0.0, rng.uniform(0, 0.005), rng.uniform(0, 0.05), rng.random() / 3])
        plan.append((event, delay))
    return plan


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "crash_steps.py").write_text(STEPS.replace("4_000_000", "500_000"))
    (tmp_path / "conf" / "pipeline").mkdir(parents=True)
    (tmp_path / "conf" / "pipeline" / "crashy.yaml").write_text(PIPELINE)
    return tmp_path


def assert_trustworthy(reg: Registry, live: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Everything a later run could read is complete and whole; no dead run reads `running`."""
    versions = reg.list_model_versions("crashy")
    assert [v.number for v in versions] == list(range(1, len(versions) + 1))
    complete = [v.number for v in versions if v.complete]
    for v in versions:
        assert v.complete or v.stage == "none", f"incomplete version {v.number} is {v.stage}"
        for ref in v.artifacts.values() if v.complete else ():
            reg.artifacts.read_verified(ref)  # a complete version's artifacts are all there
    if complete:
        assert reg.get_model_version("crashy", "latest").number == complete[-1]
    history = reg.stage_history("crashy")
    assert [c.seq for c in history] == list(range(1, len(history) + 1))
    holder = history[-1].holders["production"] if history else None
    assert [v.number for v in versions if v.stage == "production"] == (
        [holder] if holder is not None else []
    )
    if holder is not None:
        assert reg.get_model_version("crashy", "production").complete
    for run in reg.list_runs():
        if run.id not in live:
            assert run.status is not RunStatus.RUNNING, f"killed run {run.id} reads running"
    report = fsck(reg)
    assert not report.damage, report.text()


def _kill_runs(project: Path, uri: str, sig: signal.Signals, seed: int) -> int:
    """Start and kill ``KILLS`` runs; check the registry after each. Returns how many were hit."""
    hit = 0
    for i, (event, delay) in enumerate(kill_plan(seed)):
        markers = project / "markers" / f"{sig.name}-{i}"
        # a new seed each time: every step runs (a cached step drops no marker)
        proc = _start(project, uri, seed=100 * seed + i, markers=markers)
        reached = event == "started" or _wait_for(markers / event, proc)
        time.sleep(delay)
        if reached and proc.poll() is None:
            proc.send_signal(sig)
            hit += 1
        try:
            out = proc.communicate(timeout=60)[0]  # a hang after the signal is a failure
        except subprocess.TimeoutExpired:  # pragma: no cover - reported, then cleaned up
            proc.kill()
            raise AssertionError(f"run {i} did not end 60 s after {sig.name}") from None
        if sig is signal.SIGINT:
            assert proc.returncode != 0 or "completed" in out, out[-2000:]
        assert_trustworthy(Registry(uri))
    return hit


def _finish(project: Path, uri: str) -> None:
    """A run after all the kills completes and is promoted; gc then breaks nothing."""
    env = {**os.environ, "CRASH_MARKERS": str(project / "markers"), "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "mlops", "+pipeline=crashy", f"registry.uri={uri}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    reg = Registry(uri)
    assert reg.get_model_version("crashy", "latest").stage == "production"
    gc = subprocess.run(
        [sys.executable, "-m", "mlops", "gc", "--grace", "0", "--registry", uri],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert gc.returncode == 0, gc.stderr
    assert_trustworthy(reg)
    check = subprocess.run(
        [sys.executable, "-m", "mlops", "check", "--registry", uri],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no damage" in check.stdout


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, project: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registry URI; for S3 the AWS environment points every process at moto's server."""
    if request.param == "local":
        return str(project / "registry")
    server: Any = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    return f"{bucket}/registry"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kills_at_random_points_leave_a_trustworthy_registry(
    project: Path, where: str, sig: signal.Signals
) -> None:
    """Runs killed at seeded random points: after each, the registry reads true and whole."""
    seed = {"SIGKILL": 1, "SIGINT": 2}[sig.name] + (10 if where.startswith("s3://") else 0)
    hit = _kill_runs(project, where, sig, seed)
    # most runs must be hit for the test to mean something; a few end before their signal
    assert hit >= KILLS // 2, f"only {hit} of {KILLS} runs were running when signalled"
    _finish(project, where)
