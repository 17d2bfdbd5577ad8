"""A full disk: one clear line, exit 1, the run recorded failed, nothing incomplete visible.

The registry lives on a small tmpfs mounted for the test (root only; skipped elsewhere). Before
each run a filler file leaves a chosen number of bytes free, so that the disk fills at a
different write each time: the version's number, the run record, an artifact, a cache entry,
the completion record.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_mlops

from mlops.errors import MlopsError
from mlops.registry import Registry

STEPS = """
from typing import Annotated

import numpy as np

from mlops import step


@step
def small() -> Annotated[int, "n"]:
    return 3


@step
def big(n: int, size: int = 100_000) -> Annotated[np.ndarray, "arr"]:
    return np.random.default_rng(n).random(size)  # 800 kB as .npy
"""

PIPELINE = """# @package _global_
pipeline:
  name: big
model:
  name: bigmodel
steps:
  small:
    _target_: disk_steps.small
  big:
    _target_: disk_steps.big
    n: ${step:small.n}
"""

KB = 1024
#: free bytes left before a run: none, a few pages (records), about the artifact, every page
#: from there to the last record (the entries, the version's completion, the run's own record)
FREE = [0, 4 * KB, 12 * KB, 24 * KB, 400 * KB, 780 * KB, 800 * KB]
FREE += [*range(804 * KB, 860 * KB, 4 * KB), 900 * KB]


@pytest.fixture(scope="module")
def tiny_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 4 MB tmpfs (needs root)."""
    where = tmp_path_factory.mktemp("tinyfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "conf" / "pipeline").mkdir(parents=True)
    (folder / "disk_steps.py").write_text(STEPS)
    (folder / "conf" / "pipeline" / "big.yaml").write_text(PIPELINE)
    return folder


def _fill_leaving(disk: Path, free: int) -> None:
    for p in disk.iterdir():
        subprocess.run(["rm", "-rf", str(p)], check=True)
    avail = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "filler", "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(avail - free, 1))


def _temporary_files(root: Path) -> list[str]:
    found = [str(p) for p in root.rglob(".tmp-*")]
    tmp = root / "objects" / "tmp"
    if tmp.is_dir():
        found += [str(p) for p in tmp.iterdir()]
    return found


@pytest.mark.parametrize("free", FREE, ids=lambda n: f"free={n // KB}k")
def test_full_disk(tiny_disk: Path, project: Path, free: int) -> None:
    """One line (no traceback), exit 1, the run failed, the version incomplete and unused --
    or, when only the run's final record did not fit, the version whole."""
    _fill_leaving(tiny_disk, free)
    reg_path = tiny_disk / "reg"
    res = run_mlops("+pipeline=big", f"registry.uri={reg_path}", cwd=project)
    assert "Traceback" not in res.output
    if res.returncode == 0:  # it fitted
        reg = Registry(str(reg_path))
        assert [str(r.status) for r in reg.list_runs()] == ["completed"]
        return
    assert res.returncode == 1, res.output
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("Error: "), res.stderr
    assert "No space left on device" in res.stderr or "no space left" in res.stderr, res.stderr
    (tiny_disk / "filler").unlink()  # room to read (and for the checks below)
    if not reg_path.exists():
        return  # nothing could be written at all
    reg = Registry(str(reg_path))
    statuses = [str(r.status) for r in reg.list_runs()]
    # the run record says failed, or, when not even that could be written, the run's heartbeat
    # stopped and it shows as abandoned
    assert statuses in ([], ["failed"], ["abandoned"]), statuses
    versions = reg.list_model_versions("bigmodel")
    if any(mv.complete for mv in versions):
        # The disk filled after the version was made whole (``complete.json`` is the commit
        # point): only the run's own final record could not be written. The version is whole,
        # so it may be used; every artifact it names must load.
        assert "run.json" in res.stderr, res.stderr
        (mv,) = versions
        latest = reg.get_model_version("bigmodel", "latest")
        assert latest.number == mv.number
        for name in mv.artifacts:
            assert latest.get_model_artifact(name) is not None
        return
    with pytest.raises(MlopsError):
        reg.get_model_version("bigmodel", "latest")


@pytest.mark.parametrize("free", FREE[1:4], ids=lambda n: f"free={n // KB}k")
def test_full_disk_leaves_no_temporary_files(tiny_disk: Path, project: Path, free: int) -> None:
    """A write that failed for want of space leaves no ``.tmp-*`` file behind."""
    _fill_leaving(tiny_disk, free)
    reg_path = tiny_disk / "reg"
    run_mlops("+pipeline=big", f"registry.uri={reg_path}", cwd=project)
    assert reg_path.exists() and _temporary_files(reg_path) == []
