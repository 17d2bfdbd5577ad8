"""``mlops check``: every kind of damage is found, with what depends on it; --repair is safe.

Each case damages a registry that has every kind of record (``registry_builder``) in one way,
runs the real command line, and checks the exit code, the file named, what it says depends on
it, and what ``--repair`` did -- including what it must never do (rewrite a stage change or a
version's records).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops.check import PROGRESS_EVERY, check_registry
from mlops.registry import Registry

sys.path.insert(0, str(Path(__file__).parent))
from conftest import run_mlops  # noqa: E402
from registry_builder import build_registry, run_id  # noqa: E402


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("check") / "registry"
    build_registry(str(root))
    return root


@pytest.fixture
def reg_path(pristine: Path, tmp_path: Path) -> Path:
    path = tmp_path / "registry"
    shutil.copytree(pristine, path)
    return path


def _object_of(root: Path, model: str, number: int, output: str = "trained_model") -> str:
    doc = json.loads((root / f"models/{model}/versions/{number:08d}/complete.json").read_text())
    oid = doc["artifacts"][output]["artifact"]["id"]
    return f"objects/{oid[:2]}/{oid}"


def _check(root: Path, *, repair: bool = False) -> tuple[int, str, dict[str, Any]]:
    """What `mlops check` reports (in-process: the command line is tested below)."""
    report = check_registry(Registry(str(root)), repair=repair)
    return (0 if report.ok else 1), report.text(), report.to_json()


def test_a_sound_registry_has_no_damage(reg_path: Path) -> None:
    """Incomplete versions are notices, not damage: exit 0."""
    out = run_mlops("check", "--registry", str(reg_path), cwd=reg_path.parent)
    assert out.returncode == 0, out.output
    assert out.stdout.splitlines()[-1] == (
        f"checked 5 objects and 42 records in {reg_path}: no damage, 2 notices"
    )
    assert "version 4 of 'iris' is incomplete (run 20260101-000004-000000-abcde4: failed)" in (
        out.stdout
    )
    assert "(run 20260101-000005-000000-abcde5: abandoned)" in out.stdout
    doc = json.loads(
        run_mlops("check", "--json", "--registry", str(reg_path), cwd=reg_path.parent).stdout
    )
    assert doc["ok"] and doc["damaged"] == 0 and doc["objects"] == 5


def test_damage_exits_1_with_the_report_and_one_error_line(reg_path: Path) -> None:
    """The command line: the report (text or JSON) on stdout, one Error line, exit 1."""
    rel = _last_stage(reg_path)
    out = run_mlops("check", "--registry", str(reg_path), cwd=reg_path.parent)
    assert out.returncode == 1
    assert f"DAMAGED   {rel}: not valid JSON" in out.stdout
    assert out.stderr.strip() == (
        f"Error: registry '{reg_path}': 1 damaged record or object (listed above)"
    )
    js = run_mlops("check", "--json", "--registry", str(reg_path), cwd=reg_path.parent)
    assert js.returncode == 1 and "Traceback" not in js.stderr
    doc = json.loads(js.stdout)
    assert [(f["path"], f["severity"]) for f in doc["findings"] if f["severity"] == "damaged"] == [
        (rel, "damaged")
    ]


def _corrupt(root: Path, rel: str) -> None:
    data = bytearray((root / rel).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / rel).write_bytes(bytes(data))


def _truncate(root: Path, rel: str) -> None:
    (root / rel).write_bytes((root / rel).read_bytes()[:-7])


Damage = Callable[[Path], str]


def _corrupt_object(root: Path) -> str:
    rel = _object_of(root, "iris", 1)
    _corrupt(root, rel)
    return rel


def _delete_object(root: Path) -> str:
    rel = _object_of(root, "iris", 3)
    (root / rel).unlink()
    return rel


def _last_stage(root: Path) -> str:
    _truncate(root, "models/iris/stages/00000004.json")
    return "models/iris/stages/00000004.json"


def _gap(root: Path) -> str:
    (root / "models/iris/versions/00000002/version.json").unlink()
    return "models/iris/versions/00000002/version.json"


def _stage_holds_incomplete(root: Path) -> str:
    rel = "models/other/stages/00000001.json"
    doc = json.loads((root / rel).read_text())
    doc["holders"]["production"] = doc["version"] = 7
    (root / rel).write_text(json.dumps(doc))
    return rel


def _version_of_another(root: Path) -> str:
    rel = "models/iris/versions/00000003/version.json"
    shutil.copy(root / "models/iris/versions/00000002/version.json", root / rel)
    return rel


def _run_record(root: Path) -> str:
    rel = f"runs/{run_id(2)}/run.json"
    (root / rel).write_text('{"id": "x", "status": []}')
    return rel


def _note(root: Path) -> str:
    rel = "models/iris/notes/00000001.json"
    (root / rel).write_text("[]")
    return rel


@pytest.mark.parametrize(
    ("damage", "affects"),
    [
        pytest.param(
            _corrupt_object,
            ["model 'iris' version 1 ('trained_model')", "run 20260101-000001-000000-abcde1"],
            id="corrupted-object",
        ),
        pytest.param(_delete_object, ["model 'iris' version 3 ('trained_model')"], id="missing"),
        pytest.param(_last_stage, ["stage resolution"], id="truncated-last-stage-change"),
        pytest.param(_gap, ["model 'iris': versions, latest, stages"], id="version-gap"),
        pytest.param(_stage_holds_incomplete, ["stage resolution"], id="stage-holds-no-version"),
        pytest.param(_version_of_another, ["model 'iris' version 3"], id="version-copied"),
        pytest.param(_run_record, ["mlops runs"], id="run-record"),
        pytest.param(_note, ["notes"], id="note"),
    ],
)
def test_damage_is_listed_with_what_depends_on_it(
    reg_path: Path, damage: Damage, affects: list[str]
) -> None:
    """Each damage: exit 1, the file named as damaged, its dependants listed; --repair never
    rewrites versions or stages."""
    rel = damage(reg_path)
    code, out, doc = _check(reg_path)
    assert code == 1, out
    found = [f for f in doc["findings"] if f["path"] == rel and f["severity"] == "damaged"]
    assert found, out
    assert all(any(a in dep for dep in found[0]["affects"]) for a in affects), found
    before = {
        p.relative_to(reg_path).as_posix(): p.read_bytes()
        for p in (reg_path / "models").rglob("*.json")
        if p.name != "head.json"
    }
    code, out, _ = _check(reg_path, repair=True)
    assert code == 1, out  # none of these is safe to repair
    after = {
        p.relative_to(reg_path).as_posix(): p.read_bytes()
        for p in (reg_path / "models").rglob("*.json")
        if p.name != "head.json"
    }
    assert after == before  # --repair never writes a version, note or stage record


def test_repair_of_a_damaged_object_removes_what_would_trust_it(reg_path: Path) -> None:
    """A corrupted object: --repair deletes it and the cache entries naming it, and says how to
    get the version's artifact back; a re-store then makes the version whole again."""
    rel = _corrupt_object(reg_path)
    reg = Registry(str(reg_path))
    entries = [
        k
        for k in reg.cache.entry_keys()
        if rel.rsplit("/", 1)[-1] in json.dumps(reg.storage.read_json(reg.cache.entry_path(k)))
    ]
    assert entries
    out = run_mlops("check", "--repair", "--registry", str(reg_path), cwd=reg_path.parent)
    assert out.returncode == 1
    assert f"re-run the pipeline of run {run_id(1)}" in out.stdout
    assert "repaired: deleted cache/" in out.stdout
    assert not (reg_path / rel).exists()
    assert not any((reg_path / reg.cache.entry_path(k)).exists() for k in entries)
    reg.artifacts.put({"model": 0, "w": [0, 1]})  # what re-running the step stores again
    code, text, _ = _check(reg_path)
    assert code == 0, text
    assert reg.get_model_version("iris", 1).get_model_artifact("trained_model")["model"] == 0


@pytest.mark.parametrize(
    ("damage", "severity"),
    [
        pytest.param(lambda r: _write(r, "models/iris/stages/head.json", b"{nope"), 1, id="hint"),
        pytest.param(
            lambda r: _write(r, "models/iris/versions/head.json", b'{"n": 9}'), 1, id="hint-leads"
        ),
        pytest.param(
            lambda r: _write(r, "models/iris/versions/head.json", b'{"n": 2}'), 0, id="hint-lags"
        ),
        pytest.param(
            lambda r: _write(r, "cache/11/11111111111111111111111111111111.json", b"[1]"),
            1,
            id="cache-entry",
        ),
        pytest.param(
            lambda r: _write(r, "cache/steps/train/train.json", b'{"key": 3}'), 1, id="index"
        ),
        pytest.param(
            lambda r: _write(r, f"runs/{run_id(4)}/heartbeat.json", b"\x00"), 1, id="heartbeat"
        ),
        pytest.param(
            lambda r: _write(r, "models/iris/stages/.tmp-00000005.json-dead", b"{"),
            0,
            id="stale-temp",
        ),
        pytest.param(lambda r: _write(r, "objects/tmp/abandoned", b"x"), 0, id="stale-payload"),
    ],
)
def test_repair_fixes_what_is_safe(
    reg_path: Path, damage: Callable[[Path], str], severity: int
) -> None:
    """Hints, cache records, heartbeats and stale temporary files: --repair leaves no finding."""
    rel = damage(reg_path)
    old = 1e9
    os.utime(reg_path / rel, (old, old))
    code, out, doc = _check(reg_path)
    assert code == severity, out
    assert rel in [f["path"] for f in doc["findings"]], out
    code, fixed, _ = _check(reg_path, repair=True)
    assert code == 0, fixed
    assert "repaired: " in fixed
    code, out, doc = _check(reg_path)
    assert code == 0 and rel not in [f["path"] for f in doc["findings"]], out
    reg = Registry(str(reg_path))  # and the readers agree
    assert reg.get_model_version("iris", "production").number == 1
    assert [v.number for v in reg.list_model_versions("iris")] == [1, 2, 3, 4, 5]


def _write(root: Path, rel: str, data: bytes) -> str:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_bytes(data)
    return rel


def test_check_on_every_storage(any_registry_uri: tuple[str, dict[str, Any]]) -> None:
    """Local, memory and S3: a sound registry has no damage; a corrupted object is found."""
    uri, options = any_registry_uri
    reg = build_registry(uri, **options)
    report = check_registry(reg)
    assert not report.damage, report.text()
    mv = reg.get_model_version("other", "production")
    ref = mv.artifacts["trained_model"]
    reg.storage.write(ref.path, reg.storage.read(ref.path)[:-1] + b"!")
    report = check_registry(reg)
    assert [f.path for f in report.damage] == [ref.path]
    assert "model 'other' version 1 ('trained_model')" in report.damage[0].affects


def test_progress_every_n_objects(tmp_path: Path) -> None:
    """Long checks report progress: a line every PROGRESS_EVERY objects (and at the end)."""
    reg = Registry(str(tmp_path / "registry"))
    n = PROGRESS_EVERY + 3
    for i in range(n):
        reg.artifacts.put(i)
    seen: list[tuple[int, int]] = []
    check_registry(reg, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(PROGRESS_EVERY, n), (n, n)]
    import pty

    # on a terminal the command prints them on stderr
    main, sub = pty.openpty()
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", "check", "--registry", str(tmp_path / "registry")],
        stderr=sub,
        stdout=subprocess.PIPE,
        text=True,
        timeout=60,
    )
    os.close(sub)
    err = os.read(main, 10000).decode()
    os.close(main)
    assert proc.returncode == 0
    assert f"checked {PROGRESS_EVERY}/{n} objects" in err and f"checked {n}/{n} objects" in err
    assert (
        "checked"
        not in run_mlops("check", "--registry", str(tmp_path / "registry"), cwd=tmp_path).stderr
    )  # not a terminal: no progress lines


def test_check_is_in_the_help(tmp_path: Path) -> None:
    """`mlops --help` and `mlops check --help` document the command."""
    assert "check [--repair]" in run_mlops("--help", cwd=tmp_path).stdout
    out = run_mlops("check", "--help", cwd=tmp_path).stdout
    assert "--repair" in out and "never rewrites a version or a stage" in out


def test_a_registry_written_by_mlops_0_1_has_no_damage(tmp_path: Path) -> None:
    """The 0.1 layout (no complete.json, links as records) reads as sound."""
    root = tmp_path / "registry"
    shutil.copytree(Path(__file__).parent / "fixtures" / "registry_v0_1", root)
    report = check_registry(Registry(str(root)))
    assert not report.findings and report.objects == 14, report.text()


def test_a_folder_that_cannot_be_a_model_is_reported(reg_path: Path) -> None:
    """A stray folder under models/ is damage, and the rest is still checked."""
    (reg_path / "models" / "bad name!").mkdir()
    _corrupt_object(reg_path)
    report = check_registry(Registry(str(reg_path)))
    assert {f.path for f in report.damage} == {
        "models/bad name!",
        _object_of(reg_path, "iris", 1),
    }
