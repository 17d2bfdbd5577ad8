"""mlops's own lines are records of the ``mlops`` logger: silenced, routed, kept out of step logs.

The class of bug: a line mlops prints that bypasses logging (so a user cannot silence it), a
line that ends up in a step's captured log (or a step's record that ends up in mlops's output),
and a command line whose default output changed shape (Hydra's ``[time][name][level]`` prefix).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cache_project import Project, make_project
from conftest import run_mlops

STEPS = """\
import logging
import re
from typing import Annotated

from mlops import step


@step
def speak(n: int = 2) -> Annotated[int, "n"]:
    print("step printed this")
    logging.getLogger("user.model").warning("step warned this")
    # as mlops's own modules do while a step calls into them (a stage change, a load)
    logging.getLogger("mlops.models").warning("mlops said this during the step")
    return n


@step
def after(n: int) -> Annotated[int, "m"]:
    logging.getLogger("user.model").info("step informed this")
    return n + 1
"""

PIPELINE = """\
# @package _global_
pipeline:
  name: speak
steps:
  speak:
    _target_: speak_steps.speak
  after:
    _target_: speak_steps.after
    n: ${step:speak.n}
"""


def _speak_project(root: Path) -> Path:
    (root / "conf" / "pipeline").mkdir(parents=True)
    (root / "conf" / "pipeline" / "speak.yaml").write_text(PIPELINE)
    (root / "speak_steps.py").write_text(STEPS)
    return root


@pytest.fixture
def mlops_logger() -> Iterator[logging.Logger]:
    """The ``mlops`` logger, its level and handlers put back after the test."""
    import mlops.console  # noqa: F401 - the handler is set up on import

    logger = logging.getLogger("mlops")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    try:
        yield logger
    finally:
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def _run_text(project: Project, *overrides: str) -> str:
    from mlops.api import run_config

    out = io.StringIO()
    with project.cwd():
        run_config(project._compose("tiny", list(overrides)), stream=out)
    return out.getvalue()


def test_default_lines_are_plain(project: Project, mlops_logger: logging.Logger) -> None:
    """By default a run's lines are the bare messages: the summary and one line per event."""
    lines = _run_text(project, "executor=sync").splitlines()
    assert lines[0].startswith("mlops: running tiny (5 steps; ")
    end = next(i for i, ln in enumerate(lines) if ln.startswith("mlops: tiny completed in "))
    assert "(5 ran)" in lines[end]
    assert lines[end + 1 :] == ["mlops: notify: total is 4.0", "mlops: report: parity 1"]
    assert [line.split()[2] for line in lines[1:end]].count("done") == 5
    assert all(line.startswith("  [") for line in lines[1:end])


@pytest.mark.parametrize("level", [logging.WARNING, logging.ERROR])
def test_level_silences_run_and_progress(
    project: Project, mlops_logger: logging.Logger, level: int
) -> None:
    """``logging.getLogger("mlops").setLevel(WARNING)`` leaves nothing of a clean run."""
    mlops_logger.setLevel(level)
    assert _run_text(project, "executor=sync") == ""
    assert _run_text(project, "executor=threads") == ""


def test_records_reach_a_users_handler(project: Project, mlops_logger: logging.Logger) -> None:
    """A handler of the user's in place of mlops's gets every line, by child logger."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    mlops_logger.handlers[:] = [Keep()]
    assert _run_text(project, "executor=sync") == ""  # routed: nothing written by mlops itself
    names = {r.name for r in records}
    assert names == {"mlops.run", "mlops.progress"}
    messages = [r.getMessage() for r in records]
    assert messages[0].startswith("mlops: running tiny")
    assert sum("done" in m for m in messages) == 5


@pytest.mark.parametrize("executor", ["sync", "threads", "processes"])
def test_step_log_and_mlops_lines_do_not_mix(tmp_path: Path, executor: str) -> None:
    """mlops's lines never enter a step's log; a step's own lines never take mlops's path."""
    work = _speak_project(tmp_path / "w")
    reg = str(tmp_path / "reg")
    res = run_mlops("+pipeline=speak", f"registry.uri={reg}", f"executor={executor}", cwd=work)
    assert res.returncode == 0, res.output
    assert "mlops said this during the step" in res.stderr  # mlops's warning: on stderr
    assert "step warned this" in res.output  # the step's own warning still reaches the terminal
    log = run_mlops("show-run", "latest", "--logs", "speak", "--registry", reg, cwd=work)
    assert "step printed this" in log.stdout and "step warned this" in log.stdout
    assert "mlops said this" not in log.stdout
    for line in ("mlops: running", "[1/2]", "done", "completed"):
        assert line not in log.stdout, line
    after = run_mlops("show-run", "latest", "--logs", "after", "--registry", reg, cwd=work)
    assert "step informed this" in after.stdout and "mlops" not in after.stdout


def test_env_level_on_the_command_line(tmp_path: Path) -> None:
    """``MLOPS_LOG_LEVEL=WARNING`` keeps warnings (stderr) and drops the run's INFO lines."""
    work = _speak_project(tmp_path / "w")
    args = [
        "+pipeline=speak",
        f"registry.uri={tmp_path / 'reg'}",
        "executor=sync",
        "cache.enabled=false",
    ]
    res = run_mlops(*args, cwd=work, env={"MLOPS_LOG_LEVEL": "WARNING"})
    assert res.returncode == 0, res.output
    assert "mlops: running" not in res.output and "[1/2]" not in res.output
    assert "mlops said this during the step" in res.stderr
    assert "step printed this" in res.stdout  # the step's own output is the step's
    quiet = run_mlops(*args, cwd=work, env={"MLOPS_LOG_LEVEL": "ERROR"})
    assert "mlops said this" not in quiet.output and "step warned this" in quiet.output
    bad = run_mlops(*args, cwd=work, env={"MLOPS_LOG_LEVEL": "LOUD"})
    assert bad.returncode == 0
    assert "MLOPS_LOG_LEVEL=LOUD is not a logging level" in bad.stderr


def test_command_line_output_keeps_its_shape(project: Project) -> None:
    """Default command line: plain lines on stdout, nothing on stderr, no Hydra prefixes; and so
    with ``hydra.verbose=mlops`` (Hydra's way to turn a logger to DEBUG)."""
    for extra in ([], ["hydra.verbose=mlops"]):
        args = ["+pipeline=tiny", f"registry.uri={project.registry}", "executor=sync", *extra]
        res = run_mlops(*args, cwd=project.folder)
        assert res.returncode == 0, res.output
        lines = res.stdout.splitlines()
        assert lines[0].startswith("mlops: running tiny (5 steps; ")
        assert lines[-3].startswith("mlops: tiny completed in ")
        assert lines[-2:] == ["mlops: notify: total is 4.0", "mlops: report: parity 1"]
        assert all(ln.startswith("  [") for ln in lines[1:-3]), res.stdout
        assert res.stderr == ""


def test_error_lines_go_to_stderr(tmp_path: Path) -> None:
    """An error a user can fix is one line on stderr, through the same logger (ERROR)."""
    work = _speak_project(tmp_path / "w")
    res = run_mlops("+pipeline=speak", "steps.speak.nope=1", f"registry.uri={tmp_path}/r", cwd=work)
    assert res.returncode == 1
    assert res.stderr.startswith("Error: ") and "Error" not in res.stdout
    silenced = run_mlops(
        "+pipeline=speak",
        "steps.speak.nope=1",
        f"registry.uri={tmp_path}/r",
        cwd=work,
        env={"MLOPS_LOG_LEVEL": "WARNING"},
    )
    assert silenced.stderr.startswith("Error: ")  # silencing INFO never hides an error


def test_hydra_job_logging_can_take_the_logger_over(project: Project) -> None:
    """``+hydra.job_logging.loggers.mlops.propagate=true``: mlops's lines go through Hydra's
    handlers, in Hydra's format, on the console and into the job's ``.log`` file."""
    args = ["+pipeline=tiny", f"registry.uri={project.registry}", "executor=sync"]
    res = run_mlops(*args, "+hydra.job_logging.loggers.mlops.propagate=true", cwd=project.folder)
    assert res.returncode == 0, res.output
    first = res.stdout.splitlines()[0]
    assert re.fullmatch(r"\[[^]]+\]\[mlops\.run\]\[INFO\] - mlops: running tiny .*", first)
    assert res.stdout.count("[mlops.progress][INFO] -") == 10
    (log,) = project.folder.glob("outputs/*/*/*.log")
    assert "[mlops.run][INFO] - mlops: tiny completed in " in log.read_text()
