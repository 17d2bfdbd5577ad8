"""The signature memo is never stale: after every kind of edit, in one process and across
processes, a memoized fingerprint equals the one computed with the memo off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mlops import signature_cache
from mlops.fingerprint import read_step_signature

STEPS = """\
from mlops import step
import helpers
from consts import SCALE
try:
    import extra
except ImportError:
    extra = None


@step
def train(x: int = 0) -> int:
    return helpers.clean(x) * SCALE if extra is None else 0


@step
def lazy(x: int = 0) -> int:
    from lazyhelp import double
    return double(x)


@step
def plain(x: int = 0) -> int:
    return x + 1


@step
def tooled(x: int = 0) -> int:
    from pkg import tools
    return tools.run(x)
"""
FILES = {
    "steps.py": STEPS,
    "helpers.py": "def clean(x):\n    return x + 1\n",
    "consts.py": "SCALE = 2\n",
    "lazyhelp.py": "def double(x):\n    return x * 2\n",
    "pkg/__init__.py": "",
}
TARGETS = ["steps.train", "steps.lazy", "steps.plain", "steps.tooled"]

# a subprocess: the code hash and parts of each target, and whether each came from the disk memo
PROBE = """
import json, sys
from mlops import signature_cache
from mlops.fingerprint import read_step_signature
out = {}
with signature_cache.session():
    for t in sys.argv[1:]:
        sig = read_step_signature(t)
        module, _, name = t.rpartition(".")
        env = signature_cache._environment()
        disk = (signature_cache._DISK.get((env, module)) or {}).get("sig:" + name)
        mem = signature_cache._MEMO.get(module, {}).get("sig:" + name)
        hit = disk is not None and disk is mem
        out[t] = [sig.code_hash, [list(p) for p in sig.code_parts], hit]
print(json.dumps(out))
"""


def _replace(path: Path, old: str, new: str, *, keep_stamp: bool = False) -> None:
    text = path.read_text()
    assert old in text
    before = os.stat(path)
    with open(path, "r+") as f:  # in place: same inode
        f.seek(0)
        f.write(text.replace(old, new))
        f.truncate()
    if keep_stamp:
        assert os.stat(path).st_size == before.st_size
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


# edit kind -> (what it does to the project, the target whose fingerprint must change)
EDITS: dict[str, tuple[Callable[[Path], object], str]] = {
    "step-body": (lambda p: _replace(p / "steps.py", "x + 1", "x + 2"), "steps.plain"),
    "helper-in-other-module": (
        lambda p: _replace(p / "helpers.py", "x + 1", "x + 30"),
        "steps.train",
    ),
    "module-level-binding": (
        lambda p: _replace(p / "consts.py", "SCALE = 2", "SCALE = 3"),
        "steps.train",
    ),
    "import-inside-function": (
        lambda p: _replace(p / "lazyhelp.py", "x * 2", "x * 3"),
        "steps.lazy",
    ),
    "same-size-mtime-restored": (
        lambda p: _replace(p / "helpers.py", "x + 1", "x + 7", keep_stamp=True),
        "steps.train",
    ),
    "new-module-where-an-import-found-none": (
        lambda p: (p / "extra.py").write_text("VALUE = 1\n"),
        "steps.train",
    ),
    "package-gains-a-submodule": (
        lambda p: (p / "pkg" / "tools.py").write_text("def run(x):\n    return x\n"),
        "steps.tooled",
    ),
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A small project on sys.path, its own memo folder, and a clean memo in this process."""
    proj = tmp_path / "proj"
    proj.mkdir()
    for name, text in FILES.items():
        (proj / name).parent.mkdir(exist_ok=True)
        (proj / name).write_text(text)
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLOPS_SIGNATURE_CACHE", raising=False)
    monkeypatch.syspath_prepend(str(proj))
    signature_cache.forget()
    yield proj
    signature_cache.forget()
    for name in ["steps", "helpers", "consts", "lazyhelp", "extra", "pkg", "pkg.tools"]:
        sys.modules.pop(name, None)


def _backdate(proj: Path) -> None:
    """Make every file and the folder look old: stamps are then trusted without reading."""
    old = time.time_ns() - 100 * 10**9
    for path in [*proj.rglob("*"), proj]:
        os.utime(path, ns=(old, old))


def _probe(proj: Path, *, memo: bool, targets: list[str] | None = None) -> dict[str, list[object]]:
    env = {**os.environ, "PYTHONPATH": str(proj), "MLOPS_SIGNATURE_CACHE": "1" if memo else "0"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *(targets or TARGETS)],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _here(*, memo: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[object]]:
    monkeypatch.setenv("MLOPS_SIGNATURE_CACHE", "1" if memo else "0")
    out: dict[str, list[object]] = {}
    with signature_cache.session():
        for t in TARGETS:
            sig = read_step_signature(t)
            assert sig is not None
            out[t] = [sig.code_hash, [list(p) for p in sig.code_parts]]
    monkeypatch.delenv("MLOPS_SIGNATURE_CACHE")
    return out


def _hashes(found: dict[str, list[object]]) -> dict[str, object]:
    return {t: v[0] for t, v in found.items()}


@pytest.mark.parametrize("old_files", [False, True], ids=["just-written", "old-stamps"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_in_process_edit_is_seen(
    project: Path, monkeypatch: pytest.MonkeyPatch, edit: str, old_files: bool
) -> None:
    """In one process: after the edit the memo gives what a fresh computation gives."""
    if old_files:
        _backdate(project)
    before = _here(memo=True, monkeypatch=monkeypatch)
    assert _here(memo=True, monkeypatch=monkeypatch) == before  # a hit
    apply, changed = EDITS[edit]
    apply(project)
    after = _here(memo=True, monkeypatch=monkeypatch)
    reference = _probe(project, memo=False)
    assert _hashes(after) == _hashes(reference)
    assert after == _here(memo=False, monkeypatch=monkeypatch)
    assert after[changed][0] != before[changed][0]
    assert {t for t in TARGETS if after[t][0] != before[t][0]} >= {changed}


@pytest.mark.parametrize("old_files", [False, True], ids=["just-written", "old-stamps"])
@pytest.mark.parametrize("edit", list(EDITS))
def test_across_processes_edit_is_seen(project: Path, edit: str, old_files: bool) -> None:
    """A fresh process with a warm disk memo gives what a process without the memo gives."""
    if old_files:
        _backdate(project)
    first = _probe(project, memo=True)
    again = _probe(project, memo=True)
    assert _hashes(again) == _hashes(first)
    assert all(v[2] for v in again.values())  # served from the disk memo
    apply, changed = EDITS[edit]
    apply(project)
    after = _probe(project, memo=True)
    reference = _probe(project, memo=False)
    assert _hashes(after) == _hashes(reference)
    assert after[changed][0] != first[changed][0]


def _damage_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    i = data.rindex(b'"', 0, len(data) - 10) - 3  # inside a string near the end: still JSON
    data[i] = ord("0") if data[i] != ord("0") else ord("1")
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], object]] = {
    "truncated": _damage_truncate,
    "byte-flipped": _damage_flip,
    "empty": lambda p: p.write_bytes(b""),
    "garbage": lambda p: p.write_bytes(b"\x00\xff not json at all"),
    "other-json": lambda p: p.write_text('{"entries": 1}'),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_disk_memo_is_ignored_and_rebuilt(
    project: Path, tmp_path: Path, damage: str
) -> None:
    """A damaged memo file is never trusted and never fatal; the next process rewrites it."""
    _backdate(project)
    first = _probe(project, memo=True)
    files = sorted((tmp_path / "cache" / "signatures").rglob("*.json"))
    assert files
    for f in files:
        DAMAGE[damage](f)
    _replace(project / "helpers.py", "x + 1", "x + 5", keep_stamp=True)
    after = _probe(project, memo=True)
    assert not any(v[2] for v in after.values())  # nothing served from the damaged file
    assert _hashes(after) == _hashes(_probe(project, memo=False))
    assert after["steps.train"][0] != first["steps.train"][0]
    rebuilt = _probe(project, memo=True)
    assert all(v[2] for v in rebuilt.values())
    assert _hashes(rebuilt) == _hashes(after)


def test_second_read_in_process_is_a_lookup(project: Path) -> None:
    """Unchanged files: the same signature object comes back, without reading a tree again."""
    _backdate(project)
    with signature_cache.session():
        first = read_step_signature("steps.train")
    with signature_cache.session():
        second = read_step_signature("steps.train")
    assert first is not None and first is second


def test_memo_off_writes_nothing(project: Path, tmp_path: Path) -> None:
    """``MLOPS_SIGNATURE_CACHE=0``: computed every time, no memo file written."""
    _probe(project, memo=False)
    assert not (tmp_path / "cache" / "signatures").exists()


def test_concurrent_processes_agree(project: Path, tmp_path: Path) -> None:
    """Processes reading and writing one memo folder at once all get the computed result."""
    _backdate(project)
    reference = _hashes(_probe(project, memo=False))
    env = {**os.environ, "PYTHONPATH": str(project), "MLOPS_SIGNATURE_CACHE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROBE, *TARGETS],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate()[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert all(_hashes(json.loads(o)) == reference for o in outs)
    assert _hashes(_probe(project, memo=True)) == reference
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # no temporary file left behind


def test_processes_using_other_steps_of_a_module_keep_each_others_entries(project: Path) -> None:
    """A process that memoizes other functions of a module keeps the entries it did not use."""
    _backdate(project)
    _probe(project, memo=True, targets=["steps.train"])
    _probe(project, memo=True, targets=["steps.lazy"])
    both = _probe(project, memo=True, targets=["steps.train", "steps.lazy"])
    assert all(v[2] for v in both.values())
