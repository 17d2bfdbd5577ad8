"""``plan=true``: what a run would do with each step and why, checked word for word."""

from __future__ import annotations

from pathlib import Path

import pytest
from cache_project import Project, make_project
from test_cache import _flip_byte

from mlops import Registry


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def _lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


def test_first_run_then_cached(project: Project) -> None:
    """Before any run every step runs for the first time; after one, all are cached."""
    assert project.plan() == _lines(
        "plan for tiny (nothing is run):",
        "  make    will run: first run",
        "  total   will run: first run",
        "  parity  will run: first run",
        "  notify  will run: caching is off for this step (@step(enable_cache=False))",
        "  report  will run: first run",
    )
    project.run()
    assert project.plan() == _lines(
        "plan for tiny (nothing is run):",
        "  make    cached",
        "  total   cached",
        "  parity  cached",
        "  notify  will run: caching is off for this step (@step(enable_cache=False))",
        "  report  cached",
    )
    assert not Registry(project.registry).list_runs(pipeline="tiny")[1:], "plan ran nothing"


def test_params_code_and_inputs(project: Project) -> None:
    """Changed params (from/to), a step's code, a helper's code, an input."""
    project.run()
    assert project.plan("tiny", "steps.total.factor=10", "steps.make.n=4") == _lines(
        "plan for tiny (nothing is run):",
        "  make    will run: param `n` changed from 3 to 4",
        "  total   will run: param `factor` changed from 1.0 to 10",
        "  parity  may run: input `numbers` is recomputed by `make`",
        "  notify  will run: caching is off for this step (@step(enable_cache=False))",
        "  report  may run: input `parity` is recomputed by `parity`",
    )
    project.edit("steps", "len(numbers) % 2", "len(numbers) % 2 + 0")
    project.edit("helpers", "return round(value * factor", "return round(factor * value")
    assert project.plan() == _lines(
        "plan for tiny (nothing is run):",
        "  make    cached",
        f"  total   will run: code of `{project.pkg}.helpers.scale` changed",
        "  parity  will run: code of `parity` changed",
        "  notify  will run: caching is off for this step (@step(enable_cache=False))",
        "  report  may run: input `parity` is recomputed by `parity`",
    )
    project.run("tiny", "steps.make.n=4")
    assert project.plan() == _lines(
        "plan for tiny (nothing is run):",
        "  make    cached",
        "  total   will run: input `numbers` changed",
        "  parity  will run: input `numbers` changed",
        "  notify  will run: caching is off for this step (@step(enable_cache=False))",
        "  report  may run: input `parity` is recomputed by `parity`",
    )


def test_controls_and_corruption(project: Project) -> None:
    """Each control says which one turned caching off; a corrupted output is named."""
    project.run()
    off = project.plan("tiny", "cache.enabled=false", "cache.refresh=[make]").splitlines()
    assert off[1] == "  make    will run: caching is off for this run (cache.enabled=false)"
    assert project.plan("tiny", "pipeline.enable_cache=false").splitlines()[3] == (
        "  parity  will run: caching is off for this pipeline (pipeline.enable_cache=false)"
    )
    assert project.plan("tiny", "cache.refresh=[make]") == _lines(
        "plan for tiny (nothing is run):",
        "  make    will run: cache.refresh names it",
        "  total   may run: input `numbers` is recomputed by `make`",
        "  parity  may run: input `numbers` is recomputed by `make`",
        "  notify  will run: caching is off for this step (@step(enable_cache=False))",
        "  report  may run: input `parity` is recomputed by `parity`",
    )
    _flip_byte(project, "make", "numbers")
    assert project.plan("tiny", "steps.total.factor=3.0").splitlines()[1:3] == [
        "  make    will run: cached output `numbers` is corrupted",
        "  total   will run: param `factor` changed from 1.0 to 3.0",
    ]
    # its stamp changed with its bytes: it is hashed, found corrupted, and never trusted again
    assert project.plan().splitlines()[1] == (
        "  make    will run: cached output `numbers` is corrupted"
    )


def test_model_moved(project: Project) -> None:
    """A stage that moved to another version, by reference or read from the step context."""
    project.run("tiny_train")
    project.run("tiny_use")
    project.run("tiny_context")
    project.run("tiny_train")
    assert project.plan("tiny_use") == _lines(
        "plan for tiny_use (nothing is run):",
        "  make  cached",
        "  use   will run: model `tiny_model` production moved from v1 to v2",
    )
    assert project.plan("tiny_context") == _lines(
        "plan for tiny_context (nothing is run):",
        "  make  cached",
        "  use   will run: model `tiny_model` production moved from v1 to v2",
    )
    assert project.plan("tiny_use", "model.version=1").splitlines()[2] == "  use   cached"
