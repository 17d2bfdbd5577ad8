"""A closed stdout or stderr stops the printing, never the run: real shell pipes into ``head``.

After each run the registry must show it ``completed`` with its version complete and promoted,
the exit status must be 0, and nothing may mention a ``BrokenPipeError``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops.registry import Registry

CHATTY = """
from typing import Annotated

from mlops import get_step_context, step


@step(enable_cache=False)
def chatter(lines: int = 2000) -> Annotated[float, "accuracy"]:
    for i in range(lines):  # a step's own prints go to the same closed pipe
        print(f"chatter line {i}")
    return 0.97


@step(enable_cache=False)
def promote(accuracy: float) -> Annotated[str, "promotion"]:
    get_step_context().model_version.set_stage("production", force=True)
    return "promoted " + "x" * 20
"""

PIPELINE = """# @package _global_
pipeline:
  name: chatty
model:
  name: chatty
steps:
  chatter:
    _target_: chatty_steps.chatter
  promote:
    _target_: chatty_steps.promote
    accuracy: ${step:chatter.accuracy}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "conf" / "pipeline").mkdir(parents=True)
    (folder / "chatty_steps.py").write_text(CHATTY)
    (folder / "conf" / "pipeline" / "chatty.yaml").write_text(PIPELINE)
    return folder


def _shell(command: str, cwd: Path) -> tuple[int, str]:
    """Run ``command`` in bash; returns the exit status of mlops (first in the pipe) and stderr."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "MLOPS": f"{sys.executable} -m mlops"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run(
        ["bash", "-c", command + "; exit ${PIPESTATUS[0]}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.returncode, proc.stderr


def _check_completed(reg: Registry, model: str, runs: int = 1) -> None:
    assert [str(r.status) for r in reg.list_runs()] == ["completed"] * runs
    versions = reg.list_model_versions(model)
    assert [mv.complete for mv in versions] == [True] * runs
    assert reg.get_model_version(model, "production").number == runs


# stdout read by `head` (closed after a few lines), closed at once, or stderr closed
PIPES = {
    "head-3": "$MLOPS {args} | head -3",
    "head-0": "$MLOPS {args} | head -0",
    "stderr-closed": "$MLOPS {args} 2>&- | head -1",
    "both-closed": "$MLOPS {args} 2>&1 | head -1",
}


@pytest.mark.parametrize("executor", ["sync", "threads", "processes"])
@pytest.mark.parametrize("pipe", list(PIPES))
def test_closed_pipe_never_stops_the_run(project: Path, executor: str, pipe: str) -> None:
    """Whatever closes, the run completes, its version is promoted, and the exit status is 0."""
    reg_uri = project / "reg"
    args = f"+pipeline=chatty registry.uri={reg_uri} executor={executor}"
    status, err = _shell(PIPES[pipe].format(args=args), project)
    assert (status, "BrokenPipe" not in err, "Traceback" not in err) == (0, True, True), err
    _check_completed(Registry(str(reg_uri)), "chatty")


def test_reference_workflow_into_head(tmp_path: Path) -> None:
    """The issue's own command: train_and_promote | head -3, twice (the second mostly cached)."""
    reg_uri = tmp_path / "reg"
    for n in (1, 2):
        status, err = _shell(
            f"$MLOPS +pipeline=train_and_promote registry.uri={reg_uri} | head -3", tmp_path
        )
        assert (status, err) == (0, "")
        _check_completed(Registry(str(reg_uri)), "iris_classifier", runs=n)


def test_registry_commands_into_head(tmp_path: Path) -> None:
    """``mlops runs | head -1`` exits 0 without a traceback."""
    reg_uri = tmp_path / "reg"
    status, err = _shell(
        f"$MLOPS +pipeline=train_and_promote registry.uri={reg_uri} > /dev/null", tmp_path
    )
    assert status == 0, err
    for command in ("runs", "versions iris_classifier", "history iris_classifier"):
        status, err = _shell(f"$MLOPS {command} --registry {reg_uri} | head -0", tmp_path)
        assert (status, err) == (0, ""), command
