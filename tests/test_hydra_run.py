"""A plain run composes once (or not at all) and still does exactly what ``hydra.main`` does.

:mod:`mlops.hydra_run` runs a command line of overrides without ``hydra.main``: composed once, or
served by the compose cache. Every test compares it with ``hydra.main`` itself, which ``--run``
(Hydra's own flag for run mode) selects: the ``.hydra`` files, the output folder, what is printed,
the errors; and the cases it must leave to ``hydra.main`` (a config asking for a sweep, a command
line that does not compose) still reach it.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import CliResult, run_mlops

from mlops import compose_cache

STEPS = """\
import os
from typing import Annotated

from mlops import step


@step(enable_cache=False)
def echo(value: str = "") -> Annotated[str, "text"]:
    return f"value={value} cwd={os.path.basename(os.getcwd())} env={os.environ.get('MLOPS_T')}"
"""

PIPELINE = """\
# @package _global_
pipeline:
  name: p
steps:
  s:
    _target_: echo_steps.echo
    value: from-file
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose one (uncached) step prints its value, working folder and one variable."""
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("MLOPS_COMPOSE_CACHE", raising=False)
    work = tmp_path / "work"
    (work / "conf" / "pipeline").mkdir(parents=True)
    (work / "echo_steps.py").write_text(STEPS)
    (work / "conf" / "pipeline" / "p.yaml").write_text(PIPELINE)
    return work


def _mlops(work: Path, *args: str, cache: bool = True, check: bool = True) -> CliResult:
    env = {**dict(os.environ), "MLOPS_COMPOSE_CACHE": "1" if cache else "0"}
    return run_mlops(*args, cwd=work, env=env, check=check)


def _base(work: Path) -> list[str]:
    return ["+pipeline=p", f"registry.uri={work / 'reg'}", "executor=sync"]


def _printed(result: CliResult) -> list[str]:
    """What a run printed, less what differs between two runs (timings, run ids)."""
    out = re.sub(r"\d+\.\d\ds", "T", result.stdout)
    return [re.sub(r"run \d{8}-\d{6}-\d+-\w+", "run ID", ln) for ln in out.splitlines()]


def _saved(folder: Path, written_to: Path | None = None) -> dict[str, object]:
    """The .hydra files of an output folder (written to ``written_to``), less that path."""
    files = {p.name: yaml.safe_load(p.read_text()) for p in (folder / ".hydra").glob("*.yaml")}
    if "hydra.yaml" in files:
        runtime = files["hydra.yaml"]["hydra"]["runtime"]  # type: ignore[index]
        assert Path(runtime.pop("output_dir")) == (written_to or folder).resolve()
    return files


def _next_second() -> None:
    """Sleep into the next second: Hydra's default output folder is named to the second."""
    time.sleep(1.05 - time.time() % 1)


# Each variant: extra overrides, and the output folder they select (relative to the project).
VARIANTS = [
    pytest.param([], None, id="defaults"),
    pytest.param(["steps.s.value=from-override"], None, id="value-override"),
    pytest.param(["++steps.s.value=forced"], None, id="force-add"),
    pytest.param(["~steps.s.value"], None, id="delete"),
    pytest.param(["hydra.run.dir=out/${pipeline.name}-${steps.s.value}"], "out/p-from-file",
                 id="run-dir-reads-the-task-config"),
    pytest.param(["hydra.run.dir=out/chdir", "hydra.job.chdir=true"], "out/chdir", id="chdir"),
    pytest.param(["hydra.run.dir=out/env", "+hydra.job.env_set.MLOPS_T=set"], "out/env",
                 id="env-set"),
    pytest.param(["hydra.run.dir=out/none", "hydra.output_subdir=null"], "out/none",
                 id="no-hydra-folder"),
    pytest.param(["hydra.run.dir=out/named", "hydra.job.name=custom"], "out/named",
                 id="job-name"),
    pytest.param(["hydra.run.dir=out/nolog", "hydra/job_logging=disabled"], "out/nolog",
                 id="hydra-group-override"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "folder"), VARIANTS)
def test_plain_run_does_what_hydra_main_does(
    project: Path, extra: list[str], folder: str | None
) -> None:
    """Composed once, served from the cache, and by hydra.main: same files, folder, output."""
    args = [*_base(project), *extra]
    runs: list[tuple[CliResult, dict[str, object], list[str]]] = []
    for how in ("hydra.main", "composed once", "from the cache"):
        _next_second()
        before = set((project / "outputs").glob("*/*")) if folder is None else set()
        if how == "from the cache":
            assert compose_cache.lookup(args, str(project)) is not None, "not cached"
        result = _mlops(project, *(["--run"] if how == "hydra.main" else []), *args)
        if folder is None:
            (out,) = set((project / "outputs").glob("*/*")) - before
            runs.append((result, _saved(out), sorted(p.name for p in out.iterdir())))
        else:
            out = project / folder
            runs.append((result, _saved(out), sorted(p.name for p in out.iterdir())))
            os.rename(out, f"{out}-{len(runs)}")  # the next run makes its own
    (ref, ref_saved, ref_files), *others = runs
    assert "value=" in ref.stdout, ref.output
    for result, saved, files in others:
        assert _printed(result) == _printed(ref)
        assert result.stderr == ref.stderr
        assert saved == ref_saved
        assert files == ref_files
    if folder is None:  # three runs, three folders (each run resolves ${now:} itself)
        assert len(list((project / "outputs").glob("*/*"))) == 3


def test_cached_runs_each_get_their_own_output_folder(project: Path) -> None:
    """A served composition does not carry the time the first run resolved for its folder."""
    args = _base(project)
    folders = []
    for _ in range(3):
        _next_second()
        _mlops(project, *args)
        (latest,) = sorted((project / "outputs").glob("*/*"))[-1:]
        folders.append(latest)
    assert len(set(folders)) == 3
    for folder in folders:
        assert _saved(folder)["config.yaml"]


def test_task_config_is_a_copy(project: Path) -> None:
    """The task gets its own copy of the config: its edits never reach HydraConfig's."""
    (project / "echo_steps.py").write_text(
        STEPS
        + """

from hydra.core.hydra_config import HydraConfig


@step(enable_cache=False)
def hydra_dir() -> Annotated[str, "text"]:
    return "dir=" + str(HydraConfig.get().runtime.output_dir)
"""
    )
    (project / "conf" / "pipeline" / "p.yaml").write_text(
        PIPELINE.replace("steps:\n", "steps:\n  h:\n    _target_: echo_steps.hydra_dir\n")
    )
    args = [*_base(project), "hydra.run.dir=out/x"]
    for _ in range(2):  # composed, then served
        result = _mlops(project, *args)
        assert f"mlops: h: dir={(project / 'out' / 'x').resolve()}" in result.stdout


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["steps.s.value=a,b"], id="sweep-override"),
        pytest.param([], id="no-sweep-override"),
    ],
)
def test_config_asking_for_a_sweep_runs_one(project: Path, extra: list[str]) -> None:
    """``hydra.mode: MULTIRUN`` in a config makes a sweep, as under hydra.main, never a run."""
    (project / "conf" / "pipeline" / "p.yaml").write_text(PIPELINE + "hydra:\n  mode: MULTIRUN\n")
    result = _mlops(project, *_base(project), *extra)
    jobs = 2 if extra else 1
    assert f"mlops: sweep of {jobs} jobs in one graph" in result.stdout, result.output
    assert not list((Path(os.environ["MLOPS_CACHE_DIR"]) / "compose").rglob("*.json"))


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["nokey=1"], id="unknown-key"),
        pytest.param(["steps.s.value=[unclosed"], id="override-syntax"),
        pytest.param(["steps.s.value=a,b"], id="sweep-without-m"),
        pytest.param(["+pipeline=p", "executor=nope_executor"], id="unknown-group-option"),
        pytest.param(["hydra.searchpath=[file:///none]", "executor=custom"], id="missing-option"),
        pytest.param(["knob=x"], id="not-a-group-nor-a-key"),
    ],
)
def test_errors_are_hydras_own(project: Path, extra: list[str]) -> None:
    """A command line that does not compose is reported as hydra.main reports it."""
    args = [*_base(project), *extra]
    plain = _mlops(project, *args, check=False)
    hydra_main = _mlops(project, "--run", *args, check=False)
    assert plain.returncode == hydra_main.returncode != 0
    assert (plain.stdout, plain.stderr) == (hydra_main.stdout, hydra_main.stderr)
    assert not (project / "outputs").exists()


def test_verbose_is_left_to_hydra_main(project: Path) -> None:
    """``hydra.verbose`` (Hydra's debug report of the composition) prints as under hydra.main."""
    args = [*_base(project), "hydra.verbose=true"]
    plain, hydra_main = _mlops(project, *args), _mlops(project, "--run", *args)
    assert "Config search path" in plain.stdout, plain.output

    def shown(result: CliResult) -> list[str]:
        lines = [re.sub(r"^\[[\d :,-]+\]", "", ln) for ln in _printed(result)]
        return [re.sub(r"\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d", "DIR", ln) for ln in lines]

    assert shown(plain) == shown(hydra_main)


def test_env_copy_is_never_cached(project: Path) -> None:
    """``hydra.job.env_copy`` puts environment values into the config: no entry keeps them."""
    env = {**dict(os.environ), "MLOPS_T": "copied-value"}
    args = [*_base(project), "hydra.job.env_copy=[MLOPS_T]"]
    result = run_mlops(*args, cwd=project, env=env, check=True)
    assert "env=copied-value" in result.stdout
    assert compose_cache.lookup(args, str(project)) is None


class _Boom:
    """Unpickled through ``os.system``: must never be called by a cache read."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_payload_rebuilds_configs_and_nothing_else(project: Path, tmp_path: Path) -> None:
    """A payload naming any other callable is refused; the run composes and nothing runs."""
    marker = tmp_path / "ran"
    with pytest.raises(pickle.UnpicklingError, match="posix.system is not part of a config"):
        compose_cache.loads(pickle.dumps(_Boom(marker)))
    args = _base(project)
    _mlops(project, *args)
    folder = compose_cache.cache_dir()
    (entry_path,) = folder.glob("*.json")
    (payload,) = folder.glob("*.pickle")
    bad = pickle.dumps((pickle.dumps(_Boom(marker)), "x: 1\n"))
    payload.write_bytes(bad)  # a payload and an entry that agree on its digest
    entry = json.loads(entry_path.read_text())
    entry["payload"] = compose_cache._digest(bad)
    entry_path.write_text(json.dumps(entry))
    payload.rename(folder / f"{entry_path.stem}-{entry['payload']}.pickle")
    assert compose_cache.lookup(args, str(project)) is not None  # found, and its digest agrees
    assert compose_cache.load(args, str(project)) is None  # but it is not a config
    assert "value=from-file" in _mlops(project, *args).stdout
    assert not marker.exists()
    assert compose_cache.load(args, str(project)) is not None  # the run wrote a good entry


def test_replaced_payload_is_not_served(project: Path) -> None:
    """A payload that is not the one its entry names (another run's) is never used."""
    args = _base(project)
    _mlops(project, *args)
    (payload,) = compose_cache.cache_dir().glob("*.pickle")
    data = pickle.loads(payload.read_bytes())
    payload.write_bytes(pickle.dumps((data[0], data[1] + "# edited\n")))
    assert compose_cache.load(args, str(project)) is None
    _next_second()
    _mlops(project, *args)
    (latest,) = sorted((project / "outputs").glob("*/*"))[-1:]
    assert "# edited" not in (latest / ".hydra" / "config.yaml").read_text()
