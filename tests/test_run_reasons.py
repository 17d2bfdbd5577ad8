"""A run record says why each step ran: the plan's reasons, kept per step, shown everywhere.

The class of bug: the record's reason disagrees with what ``plan=true`` said just before the run
(or is missing). Each case makes one kind of change, asks the plan, runs, and checks that every
step the plan said *will run* has exactly the plan's reasons in the record, that a step the plan
said *may run* has a reason too, and that cached steps have none stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cache_project import Project, make_project
from conftest import run_mlops

from mlops import Registry


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def _plan_reasons(text: str) -> dict[str, tuple[str, list[str]]]:
    """``plan=true`` text -> step -> (status, reasons)."""
    out = {}
    for line in text.splitlines()[1:]:
        m = re.fullmatch(r"  (\S+)\s+(cached|will run|may run)(?:: (.*))?", line)
        assert m, line
        out[m[1]] = (m[2], m[3].split("; ") if m[3] else [])
    return out


def _latest(project: Project) -> dict[str, dict[str, object]]:
    runs = Registry(project.registry).list_runs("tiny")
    return {k: dict(v) for k, v in runs[-1].step_records.items()}


def _edit_param(p: Project) -> list[str]:
    return ["steps.make.n=4"]


def _edit_helper(p: Project) -> list[str]:
    p.edit("helpers", "round(value * factor, SCALE_DIGITS)", "round(value * factor, 5)")
    return []


def _edit_constant(p: Project) -> list[str]:
    p.edit("steps", "OFFSET = 1", "OFFSET = 2")
    return []


def _edit_step(p: Project) -> list[str]:
    p.edit("steps", "return len(numbers) % 2", "return (len(numbers) + 1) % 2")
    return []


def _cache_off(p: Project) -> list[str]:
    return ["cache.enabled=false"]


def _refresh(p: Project) -> list[str]:
    return ["cache.refresh=[total]"]


def _new_param(p: Project) -> list[str]:
    return ["steps.total.factor=2.0"]


CHANGES: list[Callable[[Project], list[str]]] = [
    _edit_param,
    _edit_helper,
    _edit_constant,
    _edit_step,
    _cache_off,
    _refresh,
    _new_param,
]


@pytest.mark.parametrize("executor", ["sync", "threads"])
@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_record_keeps_the_plans_reasons(
    project: Project, change: Callable[[Project], list[str]], executor: str
) -> None:
    """After one kind of change, each step that runs records exactly what the plan said."""
    first = project.run("tiny", f"executor={executor}")
    records = _latest(project)
    assert {n: records[n].get("why") for n in first} == {
        "make": ["first run"],
        "total": ["first run"],
        "parity": ["first run"],
        "report": ["first run"],
        "notify": ["caching is off for this step (@step(enable_cache=False))"],
    }
    overrides = change(project)
    plan = _plan_reasons(project.plan("tiny", *overrides))
    statuses = project.run("tiny", f"executor={executor}", *overrides)
    records = _latest(project)
    assert any(s == "will run" and n != "notify" for n, (s, _) in plan.items())
    for name, (predicted, why) in plan.items():
        rec = records[name]
        if statuses[name] == "cached":
            assert "why" not in rec, name
        elif predicted == "will run":
            assert rec["why"] == why, name
        else:
            assert rec["status"] == "ran" and rec["why"], name


def test_failed_step_says_why_it_ran(project: Project) -> None:
    """A step that fails after an edit keeps its reason next to its error."""
    project.run("tiny", "executor=sync")
    project.edit("steps", "return len(numbers) % 2", "raise ValueError('broken parity')")
    with pytest.raises(Exception, match="broken parity"):
        project.run("tiny", "executor=sync")
    rec = _latest(project)["parity"]
    assert rec["status"] == "failed"
    assert rec["why"] == ["code of `parity` changed"]


def test_old_records_without_reasons_still_show(tmp_path: Path) -> None:
    """A registry written before reasons were kept: show-run and the report still work."""
    import shutil

    fixture = Path(__file__).parent / "fixtures" / "registry_v0_1"
    reg = tmp_path / "reg"
    shutil.copytree(fixture, reg)
    res = run_mlops("show-run", "latest", "--registry", str(reg), cwd=tmp_path, check=True)
    table = res.stdout.split("STEP ", 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()[1:]
    statuses = {line.split()[0]: line.split()[1] for line in rows if len(line.split()) > 2}
    assert statuses, res.stdout
    for line in rows:
        if len(line.split()) > 2:
            want = "cached" if line.split()[1] == "cached" else "-"
            assert line.split()[-1] == want, line
    report = tmp_path / "r.html"
    args = ["report", "run", "latest", "--registry", str(reg), "-o", str(report)]
    run_mlops(*args, cwd=tmp_path, check=True)
    page = report.read_text()
    for step in statuses:
        assert f'data-step="{step}"' in page
    assert ("cached: it ran before" in page) == ("cached" in statuses.values())


def test_command_line_shows_reasons_on_every_view(project: Project) -> None:
    """show-run's WHY column, its --json, and the run report name the changed param; under the
    processes executor, where steps run in other processes."""
    args = ["+pipeline=tiny", f"registry.uri={project.registry}", "executor=processes"]
    run_mlops(*args, cwd=project.folder, check=True)
    project.edit("steps", "return len(numbers) % 2", "raise ValueError('broken parity')")
    res = run_mlops(*args, "steps.make.n=5", cwd=project.folder)
    assert res.returncode == 1, res.output
    reg = ["--registry", project.registry]
    text = run_mlops("show-run", "latest", *reg, cwd=project.folder, check=True).stdout
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert rows["make"].endswith("param `n` changed from 3 to 5"), text
    assert rows["parity"].endswith("code of `parity` changed; input `numbers` changed"), text
    assert rows["notify"].split()[1:2] == ["skipped"] and rows["notify"].endswith(" -"), text
    doc = json.loads(
        run_mlops("show-run", "latest", "--json", *reg, cwd=project.folder, check=True).stdout
    )
    assert doc["steps"]["make"]["why"] == ["param `n` changed from 3 to 5"]
    assert doc["steps"]["parity"]["why"] == ["code of `parity` changed", "input `numbers` changed"]
    out = project.folder / "run.html"
    run_mlops("report", "run", "latest", *reg, "-o", str(out), cwd=project.folder, check=True)
    page = out.read_text()
    assert "param `n` changed from 3 to 5" in page
    assert "code of `parity` changed" in page and "broken parity" in page
