"""The registry command line, run as a user runs it: ``mlops COMMAND`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.admin import COMMANDS
from mlops.registry import Registry
from mlops.run_store import Run, RunStatus

ROOT = Path(__file__).resolve().parent.parent


def mlops(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``mlops ARGS`` through the console entry point's code path (``python -m mlops``)."""
    return subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    """A registry in ``tmp_path/.mlops`` with 3 versions, stage changes and 2 runs."""
    reg = Registry(str(tmp_path / ".mlops"))
    for n in (1, 2, 3):
        reg.register_model_version(
            "iris",
            {"weights": reg.artifacts.put(np.full(4, n))},
            {"accuracy": 0.9 + n / 100},
            run_id=f"run-{n}",
        )
    reg.set_stage("iris", 1, "production")
    reg.set_stage("iris", 2, "production", force=True)
    reg.set_stage("iris", 3, "staging")
    for n, pipeline in ((1, "train"), (2, "predict")):
        ref = reg.artifacts.put([n])
        run = Run(
            id=f"run-{n}",
            pipeline=pipeline,
            status=RunStatus.COMPLETED,
            started=1.7e9 + n,
            finished=1.7e9 + n + 2.5,
            config={},
            step_records={
                "fit": {"status": "ran", "seconds": 2.0, "outputs": {"out": ref.to_json()}}
            },
            model={"name": "iris", "number": n, "requested": None, "created": True},
        )
        reg.runs.save(run)
    return tmp_path


def test_models(populated: Path) -> None:
    """`mlops models` lists each model with its versions and stage holders."""
    res = mlops("models", cwd=populated)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "MODEL  VERSIONS  STAGING  PRODUCTION",
        "iris   3         3        2",
    ]
    doc = json.loads(mlops("models", "--json", cwd=populated).stdout)
    assert doc == [{"name": "iris", "versions": 3, "staging": 3, "production": 2}]


def test_versions(populated: Path) -> None:
    """`mlops versions NAME` shows status, stage, run and metadata per version."""
    res = mlops("versions", "iris", cwd=populated)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["VERSION", "STATUS", "STAGE", "CREATED", "RUN", "METADATA", "NOTES"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["1", "complete", "archived"],
        ["2", "complete", "production"],
        ["3", "complete", "staging"],
    ]
    assert "run-2" in lines[2] and "accuracy=0.92" in lines[2]
    doc = json.loads(mlops("versions", "iris", "--json", cwd=populated).stdout)
    assert [(d["version"], d["stage"], d["run_id"]) for d in doc] == [
        (1, "archived", "run-1"),
        (2, "production", "run-2"),
        (3, "staging", "run-3"),
    ]


def test_promote_rollback_history(populated: Path) -> None:
    """promote needs --force to replace a holder; rollback undoes it; history shows all."""
    res = mlops("promote", "iris", "3", "production", cwd=populated)
    assert res.returncode == 1
    assert res.stderr == (
        "Error: model 'iris' version 2 is in 'production'; pass force=True (or --force) to move "
        "it to 'archived' and put version 3 in 'production'\n"
    )
    res = mlops("promote", "iris", "3", "production", "--force", cwd=populated)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "iris: production is now version 3 (version 2 -> archived); change 4\n"
    res = mlops("rollback", "iris", "production", "--json", cwd=populated)
    assert res.returncode == 0, res.stderr
    change = json.loads(res.stdout)
    assert (change["version"], change["previous"], change["reason"]) == (2, 3, "rollback")
    res = mlops("history", "iris", cwd=populated)
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()]
    assert rows[0] == ["#", "TIME", "STAGE", "VERSION", "PREVIOUS", "REASON", "USER", "RUN"]
    assert [(r[0], r[3], r[4], r[5], r[6], r[7]) for r in rows[1:]] == [
        ("1", "production", "1", "-", "promote", rows[1][7]),
        ("2", "production", "2", "1", "promote", rows[2][7]),
        ("3", "staging", "3", "-", "promote", rows[3][7]),
        ("4", "production", "3", "2", "promote", rows[4][7]),
        ("5", "production", "2", "3", "rollback", rows[5][7]),
    ]
    history = json.loads(mlops("history", "iris", "--json", cwd=populated).stdout)
    assert [h["seq"] for h in history] == [1, 2, 3, 4, 5]


def test_runs_and_show_run(populated: Path) -> None:
    """`mlops runs` lists runs (filtered by pipeline); `show-run` shows one with its steps."""
    res = mlops("runs", cwd=populated)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == [
        "RUN", "PIPELINE", "STATUS", "STARTED", "SECONDS", "MODEL", "PARAMS", "METRICS"
    ]  # fmt: skip
    assert [line.split()[:3] for line in lines[1:]] == [
        ["run-1", "train", "completed"],
        ["run-2", "predict", "completed"],
    ]
    assert lines[1].split()[-5:] == ["2.50", "iris", "v1", "-", "accuracy=0.91"]
    doc = json.loads(mlops("runs", "--pipeline", "predict", "--json", cwd=populated).stdout)
    assert [r["id"] for r in doc] == ["run-2"]
    res = mlops("show-run", "run-1", cwd=populated)
    assert res.returncode == 0, res.stderr
    assert "pipeline  train" in res.stdout and "model     iris v1 registered" in res.stdout
    assert res.stdout.splitlines()[-1].split()[:3] == ["fit", "ran", "2.00"]
    assert json.loads(mlops("show-run", "run-1", "--json", cwd=populated).stdout)["id"] == "run-1"


def test_gc_keeps_referenced_deletes_orphans(populated: Path) -> None:
    """gc deletes only unreferenced objects and stale temp files; --dry-run deletes nothing."""
    reg = Registry(str(populated / ".mlops"))
    orphan = reg.artifacts.put(
        np.zeros(1000)
    )  # stored by a run that was killed before recording it
    tmp_file = populated / ".mlops" / "objects" / "tmp" / "leftover"
    tmp_file.write_bytes(b"x" * 100)
    stale = populated / ".mlops" / "models" / "iris" / "stages" / ".tmp-00000009.json-dead"
    stale.write_bytes(b"{}")
    fresh = populated / ".mlops" / "objects" / "tmp" / "being-written"
    fresh.write_bytes(b"y")
    old = 1e9
    for p in (tmp_file, stale, populated / ".mlops" / orphan.path):
        os.utime(p, (old, old))
    res = mlops("gc", "--dry-run", cwd=populated)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert sorted(line.split()[0] for line in lines[:-1]) == sorted(
        [orphan.path, "objects/tmp/leftover", "models/iris/stages/.tmp-00000009.json-dead"]
    )
    assert lines[-1].startswith("gc would delete 3 files, ")
    assert (populated / ".mlops" / orphan.path).exists()
    doc = json.loads(mlops("gc", "--json", cwd=populated).stdout)
    assert doc["bytes"] == orphan.size + 100 + 2
    assert not (populated / ".mlops" / orphan.path).exists()
    assert fresh.exists()  # younger than the grace period: a run may be writing it
    for mv in reg.list_model_versions("iris"):  # every version still loads
        np.testing.assert_array_equal(mv.get_model_artifact("weights"), np.full(4, mv.number))
    for run in reg.list_runs():
        assert run.load("fit") == [int(run.id[-1])]
    again = mlops("gc", "--grace", "0", cwd=populated)
    assert again.stdout.splitlines() == [
        "  objects/tmp/being-written  (1 B)",
        "gc deleted 1 files, 1 B; kept 5 referenced objects",
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        pytest.param(
            ["versions", "nope"], 1, "Error: model 'nope' has no versions yet.", id="unknown-model"
        ),
        pytest.param(["history", "a/b"], 1, "Error: invalid model name 'a/b'", id="bad-name"),
        pytest.param(["show-run", "x"], 1, "Error: no run 'x' in registry ", id="unknown-run"),
        pytest.param(
            ["rollback", "iris", "live"], 1, "Error: unknown stage 'live'", id="bad-stage"
        ),
        pytest.param(
            ["promote", "iris", "two", "production"], 2, "a version is a number", id="usage"
        ),
        pytest.param(["frobnicate"], 2, "invalid choice: 'frobnicate'", id="unknown-command"),
        pytest.param(["promote", "iris", "9", "staging"], 1, "has no version 9", id="no-version"),
    ],
)
def test_errors(populated: Path, args: list[str], code: int, message: str) -> None:
    """Mistakes are one line on stderr, no traceback, exit 1 (2 for usage errors)."""
    res = mlops(*args, cwd=populated)
    assert res.returncode == code
    assert message in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_bucket_and_s3(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    """Against S3: a missing bucket is one clear error; an existing one works with -o options."""
    res = mlops("models", "--registry", "s3://no-such-bucket/reg", cwd=tmp_path, env=s3_server.env)
    assert res.returncode == 1
    assert res.stderr == (
        "Error: registry 's3://no-such-bucket/reg': the bucket does not exist. Create it, or "
        "point registry.uri at an existing one.\n"
    )
    reg = Registry(f"{s3_bucket}/reg", **s3_server.storage_options)
    reg.register_model_version("m")
    args = ["--registry", f"{s3_bucket}/reg", "-o", "key=testing", "-o", "secret=testing"]
    args += ["-o", f"client_kwargs.endpoint_url={s3_server.endpoint_url}"]
    res = mlops("promote", "m", "1", "production", *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert reg.get_model_version("m", "production").number == 1


def test_every_command_is_in_the_readme() -> None:
    """Each registry command has a line in the README's command table."""
    readme = (ROOT / "README.md").read_text()
    for command in COMMANDS:
        assert f"| `mlops {command}" in readme, command


def test_console_script_matches_python_m(populated: Path) -> None:
    """The installed `mlops` script and `python -m mlops` print the same thing."""
    import shutil

    script = shutil.which("mlops", path=str(Path(sys.executable).parent))
    assert script is not None, "the mlops console script is not installed"
    res = subprocess.run(
        [script, "models"], cwd=populated, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == mlops("models", cwd=populated).stdout
