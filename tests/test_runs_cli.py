"""Reading runs from the command line: runs, show-run, diff, report -- on real iris runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, run_mlops

from mlops.admin import COMMANDS


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder whose registry holds: train (defaults), train C=10 (v2), predict with v1 staged.

    Version 1 is promoted to production by the first run; version 2 (C=10) too, archiving v1.
    """
    work = tmp_path_factory.mktemp("iris")
    run_mlops("+pipeline=train_and_promote", cwd=work, check=True)
    run_mlops("+pipeline=train_and_promote", "steps.train.C=10", cwd=work, check=True)
    run_mlops("+pipeline=do_predictions", "model.version=1", cwd=work, check=True)
    yield work


def _ids(work: Path) -> list[str]:
    return sorted(p.name for p in (work / ".mlops" / "runs").iterdir())


def test_runs_shows_changed_params_and_metrics(iris: Path) -> None:
    """`mlops runs` names only the params a run changed from the YAML, and its metrics."""
    res = run_mlops("runs", cwd=iris, check=True)
    lines = res.stdout.splitlines()
    assert lines[0].split() == [
        "RUN", "PIPELINE", "STATUS", "STARTED", "SECONDS", "MODEL", "PARAMS", "METRICS"
    ]  # fmt: skip
    first, second, predict = lines[1:]
    assert "train_and_promote" in first and "train.C" not in first
    assert re.search(r"iris_classifier v2\s+train\.C=10\s+accuracy=0\.\d+", second), second
    assert "do_predictions" in predict and "iris_classifier v1" in predict
    doc = json.loads(run_mlops("runs", "--json", cwd=iris, check=True).stdout)
    assert [r["params"] for r in doc] == [{}, {"train.C": 10}, {}]
    assert set(doc[1]["metrics"]) == {"accuracy"} and doc[2]["metrics"] == {}


@pytest.mark.parametrize(
    ("args", "pipelines"),
    [
        pytest.param(["--limit", "1"], ["do_predictions"], id="limit"),
        pytest.param(["--pipeline", "train_and_promote"], ["train_and_promote"] * 2, id="pipe"),
        pytest.param(["--status", "failed"], [], id="status-none"),
        pytest.param(
            ["--status", "completed", "--limit", "2"],
            ["train_and_promote", "do_predictions"],
            id="status-limit",
        ),
    ],
)
def test_runs_filters(iris: Path, args: list[str], pipelines: list[str]) -> None:
    """--limit keeps the newest runs; --pipeline and --status filter."""
    doc = json.loads(run_mlops("runs", "--json", *args, cwd=iris, check=True).stdout)
    assert [r["pipeline"] for r in doc] == pipelines


def test_show_run_lists_steps_in_order_with_params_and_final_text(iris: Path) -> None:
    """show-run accepts a unique prefix; steps come in pipeline order with params; the final
    text, the metrics and the changed params are shown."""
    run_id = _ids(iris)[1]
    res = run_mlops("show-run", run_id[:22], cwd=iris, check=True)
    out = res.stdout
    assert f"run       {run_id}" in out
    assert "params    train.C=10" in out and "metrics   accuracy=" in out
    steps = [line.split()[0] for line in out.splitlines() if line.split()[:1] and line.split()[0]
             in ("load_data", "split", "train", "evaluate", "promote")]  # fmt: skip
    assert steps == ["load_data", "split", "train", "evaluate", "promote"]
    assert re.search(r"train\s+ran\s+[\d.]+\s+C=10, max_iter=500", out), out
    assert "promote: iris_classifier v2 promoted to production" in out
    doc = json.loads(run_mlops("show-run", run_id, "--json", cwd=iris, check=True).stdout)
    assert doc["id"] == run_id and doc["changed_params"] == {"train.C": 10}
    assert doc["final_text"][0]["step"] == "promote"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        pytest.param("2", "matches 3 runs", id="ambiguous-prefix"),
        pytest.param("nope", "no run 'nope'", id="unknown"),
    ],
)
def test_show_run_bad_ids(iris: Path, ref: str, message: str) -> None:
    """An ambiguous prefix lists the matches; an unknown id says how to list them."""
    res = run_mlops("show-run", ref, cwd=iris)
    assert res.returncode == 1 and message in res.stderr, res.output
    assert "Traceback" not in res.output


def test_show_run_latest(iris: Path) -> None:
    """`latest` is the newest run."""
    res = run_mlops("show-run", "latest", "--json", cwd=iris, check=True)
    assert json.loads(res.stdout)["id"] == _ids(iris)[-1]


def test_diff_runs(iris: Path) -> None:
    """Two runs: the param that changed, the code that did not, metrics with a delta."""
    a, b, _ = _ids(iris)
    res = run_mlops("diff", a, b, cwd=iris, check=True)
    assert "steps.train.C  1.0 -> 10" in res.stdout
    assert "code: same" in res.stdout and "data: same" in res.stdout
    doc = json.loads(run_mlops("diff", a[:22], b, "--json", cwd=iris, check=True).stdout)
    assert doc["params"] == [{"key": "steps.train.C", "a": 1.0, "b": 10}]
    assert doc["code"] == [] and [m["key"] for m in doc["metrics"]] == ["accuracy"]


def test_diff_versions(iris: Path) -> None:
    """Two versions of a model: the params of the runs that made them, and their metrics."""
    res = run_mlops("diff", "iris_classifier", "1", "2", cwd=iris, check=True)
    assert res.stdout.startswith("diff iris_classifier v1 -> iris_classifier v2")
    assert "steps.train.C  1.0 -> 10" in res.stdout
    doc = json.loads(run_mlops("diff", "iris_classifier", "1", "2", "--json", cwd=iris).stdout)
    assert doc["a"] == "iris_classifier v1" and doc["params"][0]["key"] == "steps.train.C"
    res = run_mlops("diff", "iris_classifier", "1", "9", cwd=iris)
    assert res.returncode == 1 and "has no version 9" in res.stderr


def test_report_run_and_model(iris: Path, tmp_path: Path) -> None:
    """`report run` and `report model` write one HTML file each and print its path."""
    run_id = _ids(iris)[1]
    res = run_mlops("report", "run", "latest", cwd=iris, check=True)
    path = Path(res.stdout.strip())
    assert path == iris / f"mlops-report-{_ids(iris)[-1]}.html" and path.is_file()
    out = tmp_path / "sub" / "run.html"
    res = run_mlops("report", "run", run_id, "-o", str(out), "--json", cwd=iris, check=True)
    assert json.loads(res.stdout)["path"] == str(out)
    html = out.read_text()
    for step in ("load_data", "split", "train", "evaluate", "promote"):
        assert step in html
    assert "promoted to production" in html and "<script src" not in html
    res = run_mlops("report", "model", "iris_classifier", cwd=iris, check=True)
    html = Path(res.stdout.strip()).read_text()
    assert "iris_classifier" in html and "accuracy" in html
    res = run_mlops("report", "model", "nope", cwd=iris)
    assert res.returncode == 1 and "model 'nope' has no versions" in res.stderr


def test_plan_report(iris: Path) -> None:
    """`plan=true report=FILE` writes the plan page and runs nothing."""
    before = _ids(iris)
    res = run_mlops(
        "+pipeline=train_and_promote", "plan=true", "report=plan.html", "steps.train.C=3",
        cwd=iris, check=True,
    )  # fmt: skip
    assert "plan report written to" in res.stdout
    html = (iris / "plan.html").read_text()
    assert "will run" in html and "param `C` changed from 10 to 3" in html.replace("&#x60;", "`")
    assert _ids(iris) == before


def test_every_command_is_in_help_and_readme(iris: Path) -> None:
    """`mlops --help` and the README's command table name every command."""
    help_text = " ".join(run_mlops("--help", cwd=iris, check=True).stdout.split())
    readme = (ROOT / "README.md").read_text()
    for command in COMMANDS:
        assert f"{command} " in help_text or f"| {command} " in help_text, command
        assert f"| `mlops {command}" in readme, command


def test_report_open_uses_the_browser(iris: Path, tmp_path: Path) -> None:
    """--open hands the file's URL to the user's browser ($BROWSER here)."""
    import os
    import sys
    import time

    opened = tmp_path / "opened.txt"
    script = tmp_path / "browser.py"
    script.write_text(f"import sys\nopen({str(opened)!r}, 'w').write(sys.argv[1])\n")
    env = {"BROWSER": f"{sys.executable} {script} %s", "DISPLAY": ""}
    out = tmp_path / "opened.html"
    res = run_mlops(
        "report", "model", "iris_classifier", "-o", str(out), "--open", cwd=iris, env=env
    )
    assert res.returncode == 0, res.output
    deadline = time.monotonic() + 30
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert opened.read_text() == out.as_uri()
    assert os.path.getsize(out) > 0
