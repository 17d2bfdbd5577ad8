"""Progress on a real pseudo-terminal: one live line with ticking elapsed times; plain when piped.

``python -m mlops`` runs in a child process whose stdout and stderr are a pty (``pty.fork``), as
in a terminal. What it wrote is replayed through a tiny terminal model (``\\r`` returns to the
line's start, ``ESC[K`` erases to its end) to get what the person sees at the end: the class of
bug is a status line left behind (after success, a failure or Ctrl-C), a line of mlops or of a
step overwritten by the status line, or escape codes reaching a pipe.
"""

from __future__ import annotations

import io
import os
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import run_mlops

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")

STEPS = """\
import time
from typing import Annotated

from mlops import step


@step
def first(n: int = 1, fail: bool = False) -> Annotated[int, "x"]:
    time.sleep(1.3)
    print("first printed this")
    if fail:
        raise ValueError("first broke")
    return n


@step
def left(x: int) -> Annotated[int, "l"]:
    time.sleep(0.9)
    return x + 1


@step
def right(x: int) -> Annotated[int, "r"]:
    time.sleep(0.9)
    return x + 2
"""

PIPELINE = """\
# @package _global_
pipeline:
  name: slow
steps:
  first:
    _target_: slow_steps.first
  left:
    _target_: slow_steps.left
    x: ${step:first.x}
  right:
    _target_: slow_steps.right
    x: ${step:first.x}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "conf" / "pipeline").mkdir(parents=True)
    (tmp_path / "conf" / "pipeline" / "slow.yaml").write_text(PIPELINE)
    (tmp_path / "slow_steps.py").write_text(STEPS)
    return tmp_path


def run_in_pty(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, interrupt_on: bytes = b""
) -> tuple[int, str]:
    """Run ``python -m mlops ARGS`` on a pty; its exit status and everything it wrote.

    ``interrupt_on``: send Ctrl-C (SIGINT to the child's process group) once this appears.
    """
    import pty

    full_env = {**os.environ, "TERM": "xterm", "PYTHONHASHSEED": "0", **(env or {})}
    for key in ("CI", "MLOPS_PROGRESS", "HYDRA_FULL_ERROR", "NO_COLOR"):
        if env is None or key not in env:
            full_env.pop(key, None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session of its own, the pty as its terminal
        try:
            os.chdir(cwd)
            os.execve(sys.executable, [sys.executable, "-m", "mlops", *args], full_env)
        finally:
            os._exit(127)
    out = b""
    sent = False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        out += data
        if interrupt_on and not sent and interrupt_on in out:
            os.killpg(pid, signal.SIGINT)
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def screen(raw: str) -> list[str]:
    """What a terminal shows at the end: ``\\r`` goes back, ``ESC[K`` erases to the line's end."""
    lines: list[str] = []
    line: list[str] = []
    col = 0
    i = 0
    while i < len(raw):
        if raw.startswith("\x1b[K", i):
            del line[col:]
            i += 3
            continue
        ch = raw[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(line))
            line, col = [], 0
        else:
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
    lines.append("".join(line))  # what is left after the last newline: must be empty
    return lines


def _elapsed(raw: str, step: str) -> list[float]:
    return [float(m) for m in re.findall(rf"{step} (\d+\.\d)s", raw)]


@pytest.mark.parametrize("executor", ["sync", "threads"])
def test_live_line_ticks_and_leaves_plain_lines(project: Path, executor: str) -> None:
    """A sleeping step's elapsed time ticks in place; at the end only final lines remain."""
    args = ["+pipeline=slow", f"registry.uri={project / 'reg'}", f"executor={executor}"]
    code, raw = run_in_pty(args, project)
    assert code == 0, raw
    assert "\r\x1b[K  running  first" in raw
    ticks = _elapsed(raw, "first")
    assert len(set(ticks)) >= 3 and max(ticks) >= 0.7, ticks  # redrawn as time passed
    assert len(ticks) <= 1.3 / 0.25 + 3  # at most a few redraws a second
    shown = screen(raw)
    assert shown[-1] == "", repr(raw[-200:])  # the cursor ends at the start of a fresh line
    assert not any("  running  " in line for line in shown), shown
    assert "first printed this" in shown  # a step's print is not overwritten
    finals = [line for line in shown if line.startswith("  [")]
    assert sorted(line.split()[1] for line in finals) == ["first", "left", "right"]
    assert all(line.split()[2] == "done" for line in finals)
    assert "started" not in raw  # the live line stands for the started lines
    assert shown[-2].startswith("mlops: slow completed in ")
    if executor == "threads":  # two steps at once share the one status line
        assert re.search(r"running  (left|right) \d+\.\ds, (left|right) \d+\.\ds", raw), raw


@pytest.mark.parametrize(
    "how",
    [
        pytest.param(["steps.first.fail=true"], id="step-fails"),
        pytest.param(["cache.enabled=false"], id="interrupted"),
    ],
)
def test_failure_and_ctrl_c_leave_no_status_line(project: Path, how: list[str]) -> None:
    """A failing step or Ctrl-C: the status line is erased, the last line ends in a newline."""
    args = ["+pipeline=slow", f"registry.uri={project / 'reg'}", "executor=threads", *how]
    interrupt = b"running  first 0.5s" if "cache.enabled=false" in how else b""
    code, raw = run_in_pty(args, project, interrupt_on=interrupt)
    shown = screen(raw)
    assert shown[-1] == "", repr(raw[-300:])
    assert not any("running  " in line for line in shown), shown
    if interrupt:
        assert code == 130, raw
        assert any(line.startswith("mlops: slow interrupted after") for line in shown), shown
    else:
        assert code == 1, raw
        assert any("first" in line and "failed" in line for line in shown), shown
        assert any(line.startswith("Error: step 'first' failed") for line in shown), shown


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"TERM": "dumb"}, id="term-dumb"),
        pytest.param({"CI": "true"}, id="ci"),
        pytest.param({"MLOPS_PROGRESS": "plain"}, id="mlops-progress-plain"),
        pytest.param({"MLOPS_LOG_LEVEL": "WARNING"}, id="silenced"),
    ],
)
def test_terminal_that_wants_plain_lines(project: Path, env: dict[str, str]) -> None:
    """On a terminal that asks for plain output, no escape code and no carriage return."""
    args = ["+pipeline=slow", f"registry.uri={project / 'reg'}", "executor=sync"]
    code, raw = run_in_pty(args, project, env=env)
    assert code == 0, raw
    assert "\x1b" not in raw and "\r\n" in raw
    assert "\r" not in raw.replace("\r\n", "")
    if "MLOPS_LOG_LEVEL" not in env:
        assert "  [1/3] first    started" in raw


def test_piped_output_is_plain_lines(project: Path) -> None:
    """Piped (not a terminal): today's lines, started and done, with no escape codes."""
    res = run_mlops("+pipeline=slow", f"registry.uri={project / 'reg'}", cwd=project)
    assert res.returncode == 0, res.output
    assert "\x1b" not in res.output and "\r" not in res.output
    lines = res.stdout.splitlines()
    assert lines[1] == "  [1/3] first    started         "
    assert sum(line.split()[2] == "done" for line in lines if line.startswith("  [")) == 3


def test_pipe_closed_early_is_not_an_error(project: Path) -> None:
    """``| head -1``: the reader goes away after a line; the run still completes (exit 0)."""
    import subprocess

    with subprocess.Popen(
        [sys.executable, "-m", "mlops", "+pipeline=slow", f"registry.uri={project / 'reg'}"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        proc.stdout.close()  # as head does after its one line
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 0, err
    assert first.startswith(b"mlops: running slow")
    assert b"Traceback" not in err and b"BrokenPipe" not in err


class _Terminal(io.StringIO):
    """A stream that says it is a terminal (what :class:`Progress` checks), keeping the bytes."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("steps,workers", [(1, 1), (8, 2), (60, 8)])
def test_concurrent_steps_leave_only_final_lines(
    steps: int, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps starting and ending in many threads at once: every final line shows whole, no
    status line is left, and the ticker thread is gone after ``close``."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from mlops.progress import Progress

    for key in ("CI", "MLOPS_PROGRESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    term = _Terminal()
    progress = Progress(steps, term)
    names = [f"step{i}" for i in range(steps)]

    def one(name: str) -> None:
        progress.event(name, "started")
        time.sleep(0.3 if name == "step0" else 0.01)
        print(f"{name} printed")  # a step's own print, in its thread
        progress.event(name, "done", 0.01)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, names))
    progress.close()
    progress.close()  # idempotent
    assert not [t for t in threading.enumerate() if t.name == "mlops-progress"]
    raw = term.getvalue()
    assert "\r\x1b[K  running  step0" in raw
    shown = screen(raw)
    assert shown[-1] == ""
    assert not any("  running  " in line for line in shown), shown
    finals = sorted(line.split()[1] for line in shown if line.startswith("  ["))
    assert finals == sorted(names)


def test_live_line_still_logs_every_event_for_other_handlers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A handler of the user's beside mlops's gets the started records the live line draws;
    mlops's own handler does not print them as lines."""
    import logging

    from mlops.progress import Progress

    for key in ("CI", "MLOPS_PROGRESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TERM", "xterm")
    got: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record.getMessage())

    keep = Keep()
    logging.getLogger("mlops").addHandler(keep)
    try:
        term = _Terminal()
        progress = Progress(2, term)
        for name in ("a", "b"):
            progress.event(name, "started")
            progress.event(name, "done", 0.5)
        progress.close()
    finally:
        logging.getLogger("mlops").removeHandler(keep)
    assert [m.split()[2] for m in got] == ["started", "done", "started", "done"]
    shown = screen(term.getvalue())
    assert [line.split()[2] for line in shown if line.startswith("  [")] == ["done", "done"]
    assert "started" not in term.getvalue()
