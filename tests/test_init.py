"""`mlops init`: the project it writes runs with the commands it prints."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from conftest import run_mlops


@pytest.mark.parametrize("folder", ["my-project", "nested/2nd project"])
def test_init_project_runs_with_the_printed_commands(tmp_path: Path, folder: str) -> None:
    """init FOLDER prints cd, run and report commands; each of them works as printed."""
    res = run_mlops("init", folder, cwd=tmp_path, check=True)
    commands = [line.strip() for line in res.stdout.splitlines() if line.startswith("  ")]
    assert commands[0] == f"cd {shlex.quote(folder)}"
    work = tmp_path / folder
    assert (work / "README.md").is_file()
    for command in commands[1:]:
        argv = shlex.split(command)
        assert argv[:2] in (["python", "-m"], ["mlops", "report"]), command
        args = argv[3:] if argv[0] == "python" else argv[1:]
        out = run_mlops(*args, cwd=work, check=True)
    report = Path(out.stdout.strip())
    assert report.is_file() and report.parent == work
    assert "make_data" in report.read_text()
    runs = json.loads(run_mlops("runs", "--json", cwd=work, check=True).stdout)
    assert [r["status"] for r in runs] == ["completed"]
    assert set(runs[0]["metrics"]) == {"mse", "slope"}


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    """A second init in the same folder writes nothing and says so; --json lists the files."""
    doc = json.loads(run_mlops("init", "--json", cwd=tmp_path, check=True).stdout)
    assert "README.md" in doc["files"] and len(doc["files"]) == 3
    before = (tmp_path / "README.md").read_text()
    res = run_mlops("init", cwd=tmp_path)
    assert res.returncode == 1 and "not overwriting" in res.stderr, res.output
    assert (tmp_path / "README.md").read_text() == before
    assert not (tmp_path / ".mlops").exists()  # init opens no registry


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["versions", "{model}"], id="versions"),
        pytest.param(["history", "{model}"], id="history"),
        pytest.param(["report", "model", "{model}"], id="report"),
        pytest.param(["diff", "{model}", "1", "2"], id="diff"),
    ],
)
def test_empty_registry_suggests_the_projects_own_training_pipeline(
    tmp_path: Path, command: list[str]
) -> None:
    """Asked about a model with no versions, the hint is the project's pipeline that trains it
    (in a registry that exists: a registry folder that does not is an error of its own)."""
    run_mlops("init", "shop", cwd=tmp_path, check=True)
    work = tmp_path / "shop"
    (work / ".mlops").mkdir()
    res = run_mlops(*(c.format(model="shop_model") for c in command), cwd=work)
    assert res.returncode == 1, res.output
    assert "Run python -m mlops +pipeline=shop to register one." in res.stderr
    assert "train_and_promote" not in res.stderr
