"""A cached result is the result a fresh run would give: differential tests over real runs.

Each case runs one small project through ``python -m mlops`` (a) in a brand-new registry,
(b) with ``cache.enabled=false``, and (c) as a cached re-run after each edit, on the ``sync``,
``threads`` and ``processes`` executors, and compares every step's stored result. The edits are
the ways a cache goes stale: a declared file's content, a folder's, a dict param's order, a
consumer that mutates its input, bytes of a stored output changed in place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import run_mlops

from mlops.registry import Registry

STEPS = '''\
"""Steps of the trust project: each reads what a fresh run would hand it."""

import os
from typing import Annotated

from mlops import step


@step
def read_rows(path: str) -> Annotated[list, "rows"]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


@step
def read_folder(folder: str) -> Annotated[list, "names"]:
    out = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as f:
            out.append(name + "=" + f.read().strip())
    return out


@step
def mutate(rows: list) -> Annotated[int, "mutated"]:
    rows.append("zzz")  # changes its input in place: no other step may see it
    rows.sort(reverse=True)
    return len(rows)


@step
def first(rows: list) -> Annotated[str, "first"]:
    return rows[0] + "/" + str(len(rows))


@step
def joined(d: dict) -> Annotated[str, "joined"]:
    return ",".join(f"{k}{v}" for k, v in d.items())


@step
def make_dict(rows: list) -> Annotated[dict, "mapping"]:
    return {row: i for i, row in enumerate(reversed(rows))}


@step
def keys_of(mapping: dict) -> Annotated[str, "keys"]:
    mapping["added"] = 1  # a mutation of a dict input, too
    return ",".join(mapping)
'''

PIPELINE = """\
# @package _global_
pipeline:
  name: trust
steps:
  read_rows:
    _target_: truststeps.read_rows
    path: ${file:data/rows.txt}
  read_folder:
    _target_: truststeps.read_folder
    folder: ${file:data/parts}
  mutate:
    _target_: truststeps.mutate
    rows: ${step:read_rows.rows}
  first:
    _target_: truststeps.first
    rows: ${step:read_rows.rows}
  joined:
    _target_: truststeps.joined
    d: {b: 1, a: 2}
  make_dict:
    _target_: truststeps.make_dict
    rows: ${step:read_rows.rows}
  keys_of:
    _target_: truststeps.keys_of
    mapping: ${step:make_dict.mapping}
  keys_again:
    _target_: truststeps.keys_of
    mapping: ${step:make_dict.mapping}
"""

EXECUTORS = ["sync", "threads", "processes"]


def _project(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "truststeps.py").write_text(STEPS)
    (root / "conf" / "pipeline").mkdir(parents=True)
    (root / "conf" / "pipeline" / "trust.yaml").write_text(PIPELINE)
    (root / "data" / "parts").mkdir(parents=True)
    (root / "data" / "rows.txt").write_text("banana\napple\ncherry\n")
    (root / "data" / "parts" / "a.txt").write_text("1")
    (root / "data" / "parts" / "b.txt").write_text("2")
    return root


def _run(project: Path, registry: Path, *overrides: str) -> dict[str, Any]:
    """Run the pipeline; return each step's status and result, loaded from the registry."""
    res = run_mlops(
        "+pipeline=trust",
        f"registry.uri={registry}",
        f"hydra.run.dir={project / 'outputs' / os.urandom(4).hex()}",
        *overrides,
        cwd=project,
    )
    assert res.returncode == 0, res.output
    reg = Registry(str(registry))
    run = reg.list_runs("trust")[-1]
    return {
        "status": run.steps,
        "values": {name: run.load(name) for name in run.steps},
        "stderr": res.stderr,
    }


def _fresh(project: Path, tmp: Path, executor: str) -> dict[str, Any]:
    reg = tmp / f"fresh-{os.urandom(4).hex()}"
    return _run(project, reg, f"executor={executor}")["values"]


def _expected(project: Path) -> dict[str, Any]:
    """What the steps give, computed here without mlops."""
    rows = [line for line in (project / "data/rows.txt").read_text().split() if line]
    parts = sorted(os.listdir(project / "data/parts"))
    mapping = {row: i for i, row in enumerate(reversed(rows))}
    return {
        "read_rows": rows,
        "read_folder": [f"{n}={(project / 'data/parts' / n).read_text().strip()}" for n in parts],
        "mutate": len(rows) + 1,
        "first": f"{rows[0]}/{len(rows)}",
        "joined": "b1,a2",
        "make_dict": mapping,
        "keys_of": ",".join([*mapping, "added"]),
        "keys_again": ",".join([*mapping, "added"]),
    }


@pytest.mark.parametrize("executor", EXECUTORS)
def test_fresh_cache_off_and_cached_agree(tmp_path: Path, executor: str) -> None:
    """On each executor: fresh, cache-off and cached runs after each edit give what the code
    computes; the edited inputs (file, folder, dict order) re-run exactly the steps reading them."""
    project = _project(tmp_path / "project")
    registry = tmp_path / "registry"
    first = _run(project, registry, f"executor={executor}")
    assert first["values"] == _expected(project)
    again = _run(project, registry, f"executor={executor}")
    assert set(again["status"].values()) == {"cached"}
    assert again["values"] == first["values"]

    edits = [
        ("file", lambda: (project / "data/rows.txt").write_text("kiwi\nbanana\n"), "read_rows"),
        ("folder", lambda: (project / "data/parts/b.txt").write_text("3"), "read_folder"),
        ("new file in folder", lambda: (project / "data/parts/c.txt").write_text("4"), None),
    ]
    for what, edit, _step in edits:
        edit()
        cached = _run(project, registry, f"executor={executor}")
        off = _run(project, registry, f"executor={executor}", "cache.enabled=false")
        fresh = _fresh(project, tmp_path, executor)
        assert cached["values"] == off["values"] == fresh == _expected(project), what
    # a reordered dict param is a different param (the step's result depends on the order)
    yaml = project / "conf/pipeline/trust.yaml"
    yaml.write_text(yaml.read_text().replace("d: {b: 1, a: 2}", "d: {a: 2, b: 1}"))
    cached = _run(project, registry, f"executor={executor}")
    assert cached["status"]["joined"] == "ran"
    assert cached["values"]["joined"] == "a2,b1"
    assert cached["status"]["read_rows"] == "cached"


def test_plan_names_the_changed_file(tmp_path: Path) -> None:
    """plan=true says which declared file changed, and runs nothing."""
    project = _project(tmp_path / "project")
    registry = tmp_path / "registry"
    _run(project, registry, "executor=sync")
    (project / "data/rows.txt").write_text("pear\n")
    res = run_mlops("+pipeline=trust", f"registry.uri={registry}", "plan=true", cwd=project)
    assert res.returncode == 0, res.output
    line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith("read_rows"))
    assert "will run: file `data/rows.txt` changed" in line
    folder_line = next(ln for ln in res.stdout.splitlines() if "read_folder" in ln)
    assert folder_line.split()[1] == "cached"


def test_missing_declared_file_is_a_compile_error(tmp_path: Path) -> None:
    """A ${file:...} that does not exist is one line naming the key; nothing is written."""
    project = _project(tmp_path / "project")
    (project / "data/rows.txt").unlink()
    registry = tmp_path / "registry"
    res = run_mlops("+pipeline=trust", f"registry.uri={registry}", cwd=project)
    assert res.returncode == 1
    assert res.stderr.startswith(
        "Error: steps.read_rows.path: file 'data/rows.txt' does not exist (looked for "
    )
    assert len(res.stderr.splitlines()) == 1
    assert not registry.exists() or not list(registry.rglob("*.json"))


def test_undeclared_file_warns(tmp_path: Path) -> None:
    """A str param naming an existing file that is not declared gets one warning with the fix."""
    project = _project(tmp_path / "project")
    yaml = project / "conf/pipeline/trust.yaml"
    yaml.write_text(yaml.read_text().replace("${file:data/rows.txt}", "data/rows.txt"))
    res = run_mlops("+pipeline=trust", f"registry.uri={tmp_path / 'r'}", cwd=project)
    assert res.returncode == 0, res.output
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == [
        "warning: steps.read_rows.path = 'data/rows.txt' names a file the cache cannot see: a "
        "change to it will not re-run the step. Declare it as "
        "steps.read_rows.path=${file:data/rows.txt} to make its content part of the cache key."
    ]


def _objects_of(registry: Path, run: Any) -> dict[str, Path]:
    return {
        name: registry / "objects" / rec["outputs"][out]["id"][:2] / rec["outputs"][out]["id"]
        for name, rec in run.step_records.items()
        for out in rec.get("outputs", {})
    }


@pytest.mark.parametrize("offset", [0, 1, -1])
@pytest.mark.parametrize("target", ["read_rows", "joined", "keys_of"])
def test_damaged_outputs_are_recomputed(tmp_path: Path, target: str, offset: int) -> None:
    """A cached output whose bytes changed in place (same size) is never handed on, linked or
    reported cached: its step runs again in the same run and the result is the fresh one --
    for an output steps read (read_rows) and for final outputs nothing reads."""
    project = _project(tmp_path / "project")
    registry = tmp_path / "registry"
    first = _run(project, registry, "executor=sync")
    run = Registry(str(registry)).list_runs("trust")[-1]
    obj = _objects_of(registry, run)[target]
    data = bytearray(obj.read_bytes())
    data[offset] ^= 0x01
    obj.write_bytes(bytes(data))
    second = _run(project, registry, "executor=sync")
    assert second["status"][target] == "ran"
    assert second["values"] == first["values"]
    assert "corrupted" in second["stderr"]
    third = _run(project, registry, "executor=sync")
    assert set(third["status"].values()) == {"cached"}


def test_copied_registry_is_verified_not_trusted(tmp_path: Path) -> None:
    """A registry copied elsewhere (new inodes) is still used: outputs are hashed, not refused."""
    project = _project(tmp_path / "project")
    registry = tmp_path / "registry"
    _run(project, registry, "executor=sync")
    copy = tmp_path / "copy"
    shutil.copytree(registry, copy)
    again = _run(project, copy, "executor=sync")
    assert set(again["status"].values()) == {"cached"}


def test_json_keeps_key_order(tmp_path: Path) -> None:
    """A dict output reads back in the producer's order, fresh and cached."""
    project = _project(tmp_path / "project")
    out = _run(project, tmp_path / "registry", "executor=threads")
    assert list(out["values"]["make_dict"]) == ["cherry", "apple", "banana"]
    assert json.dumps(out["values"]["make_dict"]) == '{"cherry": 0, "apple": 1, "banana": 2}'


@pytest.mark.parametrize("module", ["helpers", "steps"])
def test_in_process_rerun_runs_the_edited_code(tmp_path: Path, module: str) -> None:
    """Two runs in one interpreter with an edit in between (a notebook): the second run's step
    runs the edited code, and what it stored is what a new process computes for that key."""
    from cache_project import make_project

    project = make_project(tmp_path / "project")
    assert project.run()["total"] == "ran"
    reg = Registry(project.registry)
    before = reg.list_runs("tiny")[-1].load("total")
    if module == "helpers":
        project.edit("helpers", "return round(value * factor, SCALE_DIGITS)", "return -1.0")
        expected = -1.0 + 1
    else:
        project.edit("steps", "+ OFFSET", "+ OFFSET + 100")
        expected = before + 100
    assert project.run()["total"] == "ran"
    in_process = reg.list_runs("tiny")[-1].load("total")
    assert in_process == expected
    res = run_mlops("+pipeline=tiny", f"registry.uri={project.registry}", cwd=project.folder)
    assert res.returncode == 0, res.output
    run = reg.list_runs("tiny")[-1]
    assert run.steps["total"] == "cached" and run.load("total") == expected


S3_STEPS = """\
from typing import Annotated

import fsspec

from mlops import step


@step
def read_object(url: str) -> Annotated[str, "text"]:
    with fsspec.open(url, "rb") as f:
        return f.read().decode()
"""

S3_PIPELINE = """\
# @package _global_
pipeline:
  name: s3files
steps:
  read_object:
    _target_: s3steps.read_object
    url: ${file:%s}
"""


def test_declared_object_store_file(tmp_path: Path, s3_server: Any, s3_bucket: str) -> None:
    """A ${file:s3://...} input is keyed by the object's ETag: unchanged, a hit; rewritten with
    bytes of the same size, a miss that the plan names."""
    bucket = s3_bucket.removeprefix("s3://")
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="data/a.txt", Body=b"first")
    project = tmp_path / "project"
    (project / "conf" / "pipeline").mkdir(parents=True)
    (project / "s3steps.py").write_text(S3_STEPS)
    url = f"{s3_bucket}/data/a.txt"
    (project / "conf" / "pipeline" / "s3files.yaml").write_text(S3_PIPELINE % url)
    registry = tmp_path / "registry"
    env = s3_server.env

    def run(*extra: str) -> Any:
        res = run_mlops(
            "+pipeline=s3files", f"registry.uri={registry}", *extra, cwd=project, env=env
        )
        assert res.returncode == 0, res.output
        return res

    run()
    reg = Registry(str(registry))
    assert reg.list_runs("s3files")[-1].load("read_object") == "first"
    run()
    assert Registry(str(registry)).list_runs("s3files")[-1].steps == {"read_object": "cached"}
    client.put_object(Bucket=bucket, Key="data/a.txt", Body=b"other")  # same size, new bytes
    plan = run("plan=true")
    assert f"will run: file `{url}` changed" in plan.stdout
    run()
    last = Registry(str(registry)).list_runs("s3files")[-1]
    assert last.steps == {"read_object": "ran"} and last.load("read_object") == "other"
