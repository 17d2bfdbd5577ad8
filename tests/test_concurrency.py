"""Many processes writing one registry at once: no version lost or duplicated, one production.

Each writer is a separate Python process that imports only ``mlops.registry`` (cheap), waits
for a common start time so that they really collide, and then writes as fast as it can.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops.registry import Registry

WORKER = r"""
import json, sys, time
from mlops.registry import Registry

uri, options, action, start, *args = sys.argv[1:]
reg = Registry(uri, **json.loads(options))
out = []
time.sleep(max(0.0, float(start) - time.time()))
if action == "register":
    for _ in range(int(args[0])):
        out.append(reg.register_model_version("m", run_id=args[1]).number)
elif action == "promote":
    out.append(reg.set_stage("m", int(args[0]), "production", force=True).seq)
print(json.dumps(out))
"""


def _spawn(
    script: Path, uri: str, options: dict[str, Any], action: str, start: float, *args: object
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), uri, json.dumps(options), action, str(start)]
        + [str(a) for a in args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _collect(procs: list[subprocess.Popen[str]]) -> list[list[int]]:
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.fixture
def local_or_s3(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    if request.param == "local":
        return str(tmp_path / "registry"), {}
    server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return f"{bucket}/registry", server.storage_options


@pytest.mark.slow
@pytest.mark.parametrize("local_or_s3", ["local", "s3"], indirect=True)
def test_concurrent_registrations(local_or_s3: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """16 processes x 25 versions at once: versions 1..400, each taken by exactly one writer."""
    uri, options = local_or_s3
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    start = time.time() + 2.0
    procs = [_spawn(script, uri, options, "register", start, 25, f"w{i}") for i in range(16)]
    results = _collect(procs)
    got = sorted(n for r in results for n in r)
    assert got == list(range(1, 401))
    reg = Registry(uri, **options)
    versions = reg.list_model_versions("m")
    assert [v.number for v in versions] == list(range(1, 401))
    # every version names the writer that created it, and each writer got the numbers it saw
    owner = {v.number: v.run_id for v in versions}
    for i, numbers in enumerate(results):
        assert all(owner[n] == f"w{i}" for n in numbers)
    assert reg.get_model_version("m", "latest").number == 400


@pytest.mark.slow
@pytest.mark.parametrize("local_or_s3", ["local", "s3"], indirect=True)
def test_concurrent_promotions(local_or_s3: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """8 processes promote 8 versions to production at once, 3 rounds: one holder, all recorded."""
    uri, options = local_or_s3
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    reg = Registry(uri, **options)
    for _ in range(24):
        reg.register_model_version("m")
    for round_ in range(3):
        versions = range(round_ * 8 + 1, round_ * 8 + 9)
        start = time.time() + 1.5
        procs = [_spawn(script, uri, options, "promote", start, v) for v in versions]
        seqs = sorted(s for r in _collect(procs) for s in r)
        assert seqs == list(range(round_ * 8 + 1, round_ * 8 + 9))  # each one a distinct change
        history = reg.stage_history("m")
        assert [c.seq for c in history] == list(range(1, (round_ + 1) * 8 + 1))
        last = history[-1]
        winner = last.holders["production"]
        assert winner in versions
        assert reg.get_model_version("m", "production").number == winner
        # everyone who ever held production, except the holder, is archived now
        held = {c.version for c in history}
        assert set(last.archived) == held - {winner}
        # the history is a chain: each change moved the previous record's holder to archived
        for before, after in zip(history[:-1], history[1:], strict=True):
            assert after.previous == before.holders["production"]
            assert before.holders["production"] in after.archived
        stages = {v.number: v.stage for v in reg.list_model_versions("m")}
        assert list(stages.values()).count("production") == 1
