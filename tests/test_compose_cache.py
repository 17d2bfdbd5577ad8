"""The compose cache: a repeated command line skips composing, and every kind of edit is seen.

Each edit test runs ``python -m mlops`` for real, checks that an identical second run would be
served from the cache (:func:`mlops.compose_cache.lookup` finds the entry), makes one edit, and
checks that the cache no longer serves it and that the next run prints what the edit says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import CliResult, run_mlops

from mlops import compose_cache

STEPS = """\
from typing import Annotated

from mlops import step


@step
def echo(value: str = "") -> Annotated[str, "text"]:
    return f"value={value}"
"""

PIPELINE = """\
# @package _global_
defaults:
  - _self_
  - /knob: a
pipeline:
  name: p
steps:
  s:
    _target_: echo_steps.echo
"""


def _knob(value: str) -> str:
    return f"# @package _global_\nsteps:\n  s:\n    value: '{value}'\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project whose one step prints the value its config composes to."""
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("MLOPS_COMPOSE_CACHE", raising=False)
    work = tmp_path / "work"
    (work / "conf" / "pipeline").mkdir(parents=True)
    (work / "conf" / "knob").mkdir()
    (work / "echo_steps.py").write_text(STEPS)
    (work / "conf" / "pipeline" / "p.yaml").write_text(PIPELINE)
    (work / "conf" / "knob" / "a.yaml").write_text(_knob("from-a"))
    (work / "conf" / "knob" / "b.yaml").write_text(_knob("from-b"))
    return work


def _args(work: Path, *extra: str) -> list[str]:
    return ["+pipeline=p", f"registry.uri={work / 'reg'}", "executor=sync", *extra]


def _run(work: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_mlops(*args, cwd=work, env={**dict(os.environ), **(env or {})}, check=True)


def _printed(result: CliResult) -> str:
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("mlops: s: ")]
    assert len(lines) == 1, result.output
    return lines[0].removeprefix("mlops: s: ")


def _edit_yaml(work: Path, args: list[str]) -> tuple[list[str], str]:
    text = (work / "conf" / "pipeline" / "p.yaml").read_text()
    (work / "conf" / "pipeline" / "p.yaml").write_text(text.replace("/knob: a", "/knob: b"))
    return args, "value=from-b"


def _edit_other_group(work: Path, args: list[str]) -> tuple[list[str], str]:
    (work / "conf" / "knob" / "a.yaml").write_text(_knob("edited"))
    return args, "value=edited"


def _edit_override(work: Path, args: list[str]) -> tuple[list[str], str]:
    return [*args, "steps.s.value=from-override"], "value=from-override"


def _edit_env(work: Path, args: list[str]) -> tuple[list[str], str]:
    os.environ["MLOPS_TEST_KNOB"] = "env-two"
    return args, "value=env-two"


def _edit_search_path(work: Path, args: list[str]) -> tuple[list[str], str]:
    extra = work.parent / "extra"
    (extra / "knob").mkdir(parents=True)
    (extra / "knob" / "c.yaml").write_text(_knob("from-extra"))
    return [*args, f"hydra.searchpath=[file://{extra}]", "knob=c"], "value=from-extra"


def _edit_searched_folder(work: Path, args: list[str]) -> tuple[list[str], str]:
    (work.parent / "extra" / "knob" / "c.yaml").write_text(_knob("extra-edited"))
    return args, "value=extra-edited"


def _prepare_env(work: Path) -> list[str]:
    os.environ["MLOPS_TEST_KNOB"] = "env-one"
    text = _knob("${oc.env:MLOPS_TEST_KNOB}").replace("'", "")
    (work / "conf" / "knob" / "a.yaml").write_text(text)
    return []


def _prepare_searched_folder(work: Path) -> list[str]:
    extra = work.parent / "extra"
    (extra / "knob").mkdir(parents=True)
    (extra / "knob" / "c.yaml").write_text(_knob("from-extra"))
    return [f"hydra.searchpath=[file://{extra}]", "knob=c"]


Edit = Callable[[Path, list[str]], tuple[list[str], str]]
Prepare = Callable[[Path], list[str]]


@pytest.mark.parametrize(
    ("prepare", "edit", "before"),
    [
        pytest.param(None, _edit_yaml, "value=from-a", id="yaml-file"),
        pytest.param(None, _edit_other_group, "value=from-a", id="file-of-another-group"),
        pytest.param(None, _edit_override, "value=from-a", id="override"),
        pytest.param(_prepare_env, _edit_env, "value=env-one", id="env-interpolation"),
        pytest.param(None, _edit_search_path, "value=from-a", id="search-path-added"),
        pytest.param(
            _prepare_searched_folder,
            _edit_searched_folder,
            "value=from-extra",
            id="file-in-searchpath-folder",
        ),
    ],
)
def test_next_run_sees_every_kind_of_edit(
    project: Path, prepare: Prepare | None, edit: Edit, before: str
) -> None:
    """A cached composition is served until an input changes; then the run sees the change."""
    saved = os.environ.get("MLOPS_TEST_KNOB")
    try:
        args = _args(project, *(prepare(project) if prepare else []))
        assert compose_cache.lookup(args, str(project)) is None
        assert _printed(_run(project, *args)) == before
        assert compose_cache.lookup(args, str(project)) is not None, "not cached"
        assert _printed(_run(project, *args)) == before  # served from the cache
        args, after = edit(project, args)
        assert compose_cache.lookup(args, str(project)) is None, "stale entry served"
        assert _printed(_run(project, *args)) == after
        assert compose_cache.lookup(args, str(project)) is not None
        assert _printed(_run(project, *args)) == after
    finally:
        if saved is None:
            os.environ.pop("MLOPS_TEST_KNOB", None)
        else:
            os.environ["MLOPS_TEST_KNOB"] = saved


def test_project_conf_created_after_caching_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conf/ folder created where there was none (the search-path plugin adds it) is seen."""
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "user-cache"))
    work, extra = tmp_path / "work", tmp_path / "extra"
    (extra / "pipeline").mkdir(parents=True)
    work.mkdir()
    (work / "echo_steps.py").write_text(STEPS)
    (extra / "pipeline" / "p.yaml").write_text(
        PIPELINE.replace("  - /knob: a\n", "") + "    value: from-extra\n"
    )
    args = _args(work, f"hydra.searchpath=[file://{extra}]")
    assert _printed(_run(work, *args)) == "value=from-extra"
    assert compose_cache.lookup(args, str(work)) is not None
    (work / "conf" / "pipeline").mkdir(parents=True)  # shadows the searched folder's p.yaml
    (work / "conf" / "pipeline" / "p.yaml").write_text(
        PIPELINE.replace("  - /knob: a\n", "") + "    value: from-project\n"
    )
    assert compose_cache.lookup(args, str(work)) is None
    assert _printed(_run(work, *args)) == "value=from-project"


def test_hit_writes_hydra_outputs_like_composing(project: Path) -> None:
    """A run served from the cache saves the same .hydra files and log as a composed one."""
    args = _args(project)
    _run(project, *args)
    _run(project, *args)
    runs = sorted((project / "outputs").glob("*/*"))
    if len(runs) == 1:  # both runs started in the same second: Hydra gives them one folder
        pytest.skip("both runs used one output folder")
    composed, cached = runs[0] / ".hydra", runs[-1] / ".hydra"
    for name in ("config.yaml", "overrides.yaml"):
        assert (cached / name).read_text() == (composed / name).read_text(), name
    a, b = (yaml.safe_load((d / "hydra.yaml").read_text()) for d in (composed, cached))
    assert a["hydra"]["runtime"].pop("output_dir") != b["hydra"]["runtime"].pop("output_dir")
    assert a == b
    assert (runs[-1] / "cli.log").exists()


@pytest.mark.parametrize(
    ("extra", "env"),
    [
        pytest.param(("+registry.storage_options.token=abc",), {}, id="secret-override"),
        pytest.param((), {"MLOPS_COMPOSE_CACHE": "0"}, id="turned-off"),
        pytest.param(("--cfg", "job"), {}, id="flag"),
    ],
)
def test_not_cached(project: Path, extra: tuple[str, ...], env: dict[str, str]) -> None:
    """Runs with a secret, with the cache off, or with a Hydra flag leave no entry."""
    run_mlops(*_args(project), *extra, cwd=project, env={**dict(os.environ), **env})
    folder = Path(os.environ["MLOPS_CACHE_DIR"]) / "compose"
    assert not list(folder.glob("*.json")) if folder.exists() else True


def test_entry_keeps_no_environment_value(project: Path) -> None:
    """An interpolated variable is kept as a hash: its value never reaches the cache folder."""
    _prepare_env(project)
    os.environ["MLOPS_TEST_KNOB"] = "very-private-value"
    try:
        _run(project, *_args(project))
    finally:
        os.environ.pop("MLOPS_TEST_KNOB", None)
    (entry,) = (Path(os.environ["MLOPS_CACHE_DIR"]) / "compose").glob("*.json")
    assert "very-private-value" not in entry.read_text()
    assert "MLOPS_TEST_KNOB" in json.loads(entry.read_text())["env"]


def test_fully_cached_run_imports_no_dask(project: Path) -> None:
    """A run whose every step is a predicted hit imports neither Dask nor Hydra's composer."""
    args = _args(project, "executor=threads")
    _run(project, *args)
    result = _run(project, *args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert "(1 cached)" in result.stdout, result.stdout
    imported = {ln.split("|")[-1].strip() for ln in result.stderr.splitlines() if "|" in ln}
    assert "mlops.compose_cache" in imported
    assert not {m for m in imported if m == "dask" or m.startswith("dask.")}


@pytest.mark.parametrize("executor", ["sync", "threads"])
def test_one_step_to_run_skips_dask_and_still_runs(project: Path, executor: str) -> None:
    """With one step to run on a local executor, it runs here (no Dask) and is recorded."""
    args = _args(project, f"executor={executor}")
    _run(project, *args)
    result = _run(project, *args, "cache.refresh=[s]", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert "(1 ran)" in result.stdout and _printed(result) == "value=from-a", result.stdout
    imported = {ln.split("|")[-1].strip() for ln in result.stderr.splitlines() if "|" in ln}
    assert "dask" not in imported


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(b"{not json", id="not-json"),
        pytest.param(b'{"format": 1}', id="no-config"),
        pytest.param(
            b'{"format": 1, "manifests": {}, "env": {}, "task": 3, "hydra": []}', id="shape"
        ),
    ],
)
def test_damaged_entry_is_composed_again(project: Path, damage: bytes) -> None:
    """A damaged entry is never fatal: the run composes as usual and writes a good entry."""
    args = _args(project)
    _run(project, *args)
    (entry,) = (Path(os.environ["MLOPS_CACHE_DIR"]) / "compose").glob("*.json")
    entry.write_bytes(damage)
    assert _printed(_run(project, *args)) == "value=from-a"
    assert compose_cache.lookup(args, str(project)) is not None


def test_prune_keeps_the_most_recently_used(tmp_path: Path) -> None:
    """Pruning deletes the least recently used entries beyond the limit, nothing else."""
    for i in range(6):
        (tmp_path / f"{i}.json").write_text("{}")
        os.utime(tmp_path / f"{i}.json", ns=(i * 10**9, i * 10**9))
    (tmp_path / "notes.txt").write_text("not an entry")
    compose_cache._prune(tmp_path, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "2.json",
        "3.json",
        "4.json",
        "5.json",
        "notes.txt",
    ]
