"""Step logs and tracebacks: captured on every executor, kept apart between concurrent steps."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import local_dask_cluster, run_mlops

from mlops.logs import StepLog

STEPS = """
import logging, sys, time
from typing import Annotated
from mlops import step

log = logging.getLogger("talk")


@step
def talk(tag: str, times: int = 20) -> Annotated[int, "n"]:
    for i in range(times):
        print(f"{tag} out {i}")
        print(f"{tag} err {i}", file=sys.stderr)
        log.info("%s info %d", tag, i)
        time.sleep(0.001)
    return times


def _helper(d):
    return d["missing"]


@step
def boom(n: int) -> Annotated[int, "never"]:
    print("about to fail")
    return _helper({})
"""


def _line(text: str) -> int:
    """The line number of ``text`` in the steps module."""
    return STEPS.splitlines().index(text) + 1


def _project(root: Path, tags: list[str], fail: bool) -> Path:
    """Pipeline ``talk``: one `talk` step per tag; with ``fail``, also ``talk_fail``: one talker
    and a step below it that raises."""
    (root / "conf" / "pipeline").mkdir(parents=True)
    (root / "talkers.py").write_text(STEPS)
    pipelines = {"talk": {t: {"_target_": "talkers.talk", "tag": t} for t in tags}}
    if fail:
        pipelines["talk_fail"] = {
            "alpha": {"_target_": "talkers.talk", "tag": "alpha"},
            "boom": {"_target_": "talkers.boom", "n": "${step:alpha.n}"},
        }
    for name, steps in pipelines.items():
        doc = {"pipeline": {"name": name}, "steps": steps}
        (root / "conf" / "pipeline" / f"{name}.yaml").write_text(
            "# @package _global_\n" + json.dumps(doc, indent=1)
        )
    return root


def _expected(tag: str, times: int = 20) -> list[str]:
    lines = []
    for i in range(times):
        lines += [f"{tag} out {i}", f"{tag} err {i}", f"INFO talk: {tag} info {i}"]
    return lines


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A LocalCluster whose workers can import the steps module of the project folder it yields
    (a worker imports user code from its own path, as on a real cluster)."""
    project = tmp_path_factory.mktemp("talk_project")
    (project / "talkers.py").write_text(STEPS)
    # spawned worker processes start with this process's sys.path
    sys.path.insert(0, str(project))
    try:
        with local_dask_cluster(n_workers=2) as address:
            yield address, project
    finally:
        sys.path.remove(str(project))


@pytest.mark.parametrize("executor", ["sync", "threads", "processes", "distributed"])
def test_logs_and_traceback_on_every_executor(
    executor: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Each step's stdout, stderr and log records are its own, on every executor; a failed step
    names the user's file and line, and its traceback holds only user frames."""
    tags = ["alpha", "beta", "gamma", "delta"]
    extra: list[str] = []
    if executor == "distributed":
        address, tmp_path = request.getfixturevalue("cluster")
        extra = [f"executor.address={address}"]
    work = _project(tmp_path, tags, fail=True)
    run_mlops("+pipeline=talk", f"executor={executor}", *extra, cwd=work, check=True)
    for tag in tags:
        log = run_mlops("show-run", "latest", "--logs", tag, cwd=work, check=True).stdout
        assert log.splitlines() == _expected(tag), (tag, log)

    res = run_mlops("+pipeline=talk_fail", f"executor={executor}", *extra, cwd=work)
    assert res.returncode == 1, res.output
    helper = _line('    return d["missing"]')
    where = rf"\(at (/\S+/)?talkers\.py:{helper} in _helper\)"
    assert re.search(rf"Error: step 'boom' failed: KeyError: 'missing' {where}", res.stderr)
    log = run_mlops("show-run", "latest", "--logs", "boom", cwd=work, check=True).stdout
    assert log.strip() == "about to fail"
    doc = json.loads(run_mlops("show-run", "latest", "--json", cwd=work, check=True).stdout)
    tb = doc["steps"]["boom"]["traceback"]
    assert tb.startswith("Traceback (most recent call last):")
    assert tb.endswith("KeyError: 'missing'")
    assert f'talkers.py", line {_line("    return _helper({})")}, in boom' in tb
    assert f"line {helper}, in _helper" in tb
    assert "mlops" not in tb.replace("talkers", "") and "dask" not in tb
    text = run_mlops("show-run", "latest", cwd=work).stdout
    assert "step 'boom' failed:" in text and 'return d["missing"]' in text
    if executor == "sync":  # the report shows the same log and traceback
        page = Path(run_mlops("report", "run", "latest", cwd=work, check=True).stdout.strip())
        html = page.read_text()
        assert "about to fail" in html  # alpha was cached: the first run has its log
        assert "in _helper" in html and "KeyError: &#x27;missing&#x27;" in html


def test_many_concurrent_steps_do_not_mix(tmp_path: Path) -> None:
    """Twelve steps printing at once in eight threads: every log holds its own lines, in order."""
    tags = [f"s{i}" for i in range(12)]
    work = _project(tmp_path, tags, fail=False)
    run_mlops("+pipeline=talk", "executor=threads", "executor.num_workers=8", cwd=work, check=True)
    for tag in tags:
        log = run_mlops("show-run", "latest", "--logs", tag, cwd=work, check=True).stdout
        assert log.splitlines() == _expected(tag), tag


def test_cached_step_names_the_run_that_has_its_log(tmp_path: Path) -> None:
    """A cached step has no log of its own: show-run --logs says which run has it."""
    work = _project(tmp_path, ["alpha"], fail=False)
    run_mlops("+pipeline=talk", cwd=work, check=True)
    first = json.loads(run_mlops("runs", "--json", cwd=work, check=True).stdout)[0]["id"]
    run_mlops("+pipeline=talk", cwd=work, check=True)
    res = run_mlops("show-run", "latest", "--logs", "alpha", cwd=work, check=True)
    assert res.stdout.strip() == f"(step 'alpha' was cached in this run; its log is in run {first})"
    res = run_mlops("show-run", first, "--logs", "alpha", "--json", cwd=work, check=True)
    doc = json.loads(res.stdout)
    assert (doc["run"], doc["step"]) == (first, "alpha")
    assert doc["log"].splitlines() == _expected("alpha")
    res = run_mlops("show-run", "latest", "--logs", "alpah", cwd=work)
    assert res.returncode == 1 and "Did you mean 'alpha'?" in res.stderr


@pytest.mark.parametrize("limit", [10, 11, 64, 1000])
@pytest.mark.parametrize("chunk", [1, 3, 7, 100])
def test_log_cap_keeps_head_and_tail(limit: int, chunk: int) -> None:
    """However it is written, a log over the cap keeps its first and last halves exactly."""
    text = "".join(f"{i:05d}\n" for i in range(400))
    log = StepLog(limit)
    for i in range(0, len(text), chunk):
        log.write(text[i : i + chunk])
    head, tail = text[: limit // 2], text[len(text) - (limit - limit // 2) :]
    dropped = len(text) - limit
    assert log.text() == f"{head}\n[... {dropped} characters left out ...]\n{tail}"
    small = StepLog(limit)
    small.write(text[:limit])
    assert small.text() == text[:limit]


def test_user_logging_configuration_is_respected(tmp_path: Path) -> None:
    """A logger the user set to WARNING passes no INFO record: the log has none either."""
    work = _project(tmp_path, ["alpha"], fail=False)
    quiet = STEPS.replace(
        'log = logging.getLogger("talk")',
        'log = logging.getLogger("talk")\nlog.setLevel(logging.WARNING)',
    )
    assert quiet != STEPS
    (work / "talkers.py").write_text(quiet)
    run_mlops("+pipeline=talk", "executor=sync", cwd=work, check=True)
    log = run_mlops("show-run", "latest", "--logs", "alpha", cwd=work, check=True).stdout
    assert "INFO" not in log and "alpha out 19" in log


def test_warnings_outside_steps_still_reach_stderr(tmp_path: Path) -> None:
    """Installing the capture does not silence Python's last-resort warnings (no logging config)."""
    import subprocess

    code = (
        "import logging\n"
        "from mlops.logs import capture\n"
        "with capture() as log:\n"
        "    logging.getLogger('x').warning('inside')\n"
        "logging.getLogger('x').warning('outside')\n"
        "logging.getLogger('x').info('quiet')\n"
        "print(repr(log.text()))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines() == ["inside", "outside"]
    assert res.stdout.strip() == repr("WARNING x: inside\n")


def _deep(n: int, fail: Callable[[], object]) -> object:
    return fail() if n == 0 else _deep(n - 1, fail)


def _missing_key() -> object:
    empty: dict[str, int] = {}
    return empty["k"]


def _parse_bad_json() -> object:
    import json as json_module

    return json_module.loads("{not json")


@pytest.mark.parametrize("depth", [0, 1, 5])
@pytest.mark.parametrize(
    ("fail", "innermost", "error"),
    [
        pytest.param(_missing_key, "_missing_key", "KeyError", id="own-code"),
        pytest.param(_parse_bad_json, "_parse_bad_json", "JSONDecodeError", id="in-the-stdlib"),
    ],
)
def test_location_is_the_innermost_frame_of_user_code(
    depth: int, fail: Callable[[], object], innermost: str, error: str
) -> None:
    """However deep, the location names the user's innermost frame, never the library's, and
    the kept traceback has no mlops or dask frames."""
    from mlops.tracebacks import crashed

    try:
        _deep(depth, fail)
    except Exception as e:
        err = crashed("s", e)
    assert re.fullmatch(
        rf"step 's' failed: {error}: .* \(at (\S*/)?test_logs\.py:\d+ in {re.escape(innermost)}\)",
        str(err),
    ), str(err)
    # Python shows a frame repeated more than three times once, with a count
    assert err.traceback.count("in _deep") == min(depth + 1, 3)
    assert err.traceback.splitlines()[-1].startswith(
        f"json.decoder.{error}" if "JSON" in error else error
    )


def test_traceback_keeps_chained_causes_without_framework_frames() -> None:
    """`raise ... from` keeps both tracebacks, each trimmed."""
    from mlops.tracebacks import user_traceback

    def inner() -> None:
        raise ValueError("bad value")

    try:
        try:
            inner()
        except ValueError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as e:
        text = user_traceback(e)
    assert "ValueError: bad value" in text and "RuntimeError: wrapped" in text
    assert "direct cause" in text and "mlops/" not in text
