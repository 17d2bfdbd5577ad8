"""A small registry with every kind of record, built through the stores (no pipeline runs).

Used by the record fuzz (``test_fuzz_records.py``) and ``mlops check`` tests: two models with
complete and incomplete versions, notes, promotions and a rollback; completed, failed and
abandoned runs with heartbeats; cache entries, the per-step index and a file stamp.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from mlops.cache_store import CacheEntry
from mlops.file_inputs import FileStamp
from mlops.registry import Registry
from mlops.run_store import Run, RunStatus

T0 = 1_790_000_000.0


def dead_pid() -> int:
    """The pid of a process that has exited (so a run recorded with it reads as abandoned)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def run_id(i: int) -> str:
    return f"20260101-00000{i}-000000-abcde{i}"


def build_registry(uri: str, **storage_options: Any) -> Registry:
    """The registry described in the module docstring, at ``uri``."""
    reg = Registry(uri, **storage_options)
    refs = [reg.artifacts.put({"model": i, "w": [i, i + 1]}) for i in range(4)]
    accuracy = reg.artifacts.put(0.9)
    pid = dead_pid()
    # iris: v1..v3 complete, v4 incomplete (its run failed), v5 incomplete (its run abandoned)
    for i in range(1, 6):
        n = reg.models.create_version("iris", run_id(i), "train")
        assert n == i
        status = RunStatus.COMPLETED
        if i <= 3:
            reg.models.complete_version(
                "iris",
                n,
                {"trained_model": (refs[i - 1], "train"), "accuracy": (accuracy, "evaluate")},
                {"accuracy": 0.9 + i / 100},
            )
        else:
            status = RunStatus.FAILED if i == 4 else RunStatus.RUNNING
        outputs = {"trained_model": refs[min(i, 4) - 1].to_json()}
        reg.runs.save(
            Run(
                id=run_id(i),
                pipeline="train",
                status=status,
                started=T0 + i,
                finished=None if status is RunStatus.RUNNING else T0 + i + 0.5,
                config={"steps": {"train": {"C": i}}},
                step_records={
                    "train": {"status": "ran", "seconds": 0.1, "outputs": outputs},
                    "evaluate": {"status": "ran" if i <= 3 else "skipped"},
                },
                model={"name": "iris", "number": i, "requested": None, "created": True},
                error="boom" if i == 4 else None,
                host=_host(),
                pid=pid,
            )
        )
        reg.storage.write_json(
            f"runs/{run_id(i)}/heartbeat.json", {"time": T0 + i, "host": _host(), "pid": pid}
        )
    reg.models.add_note("iris", 2, {"reviewed": True})
    reg.models.set_stage("iris", 1, "production")
    reg.models.set_stage("iris", 2, "production", force=True)
    reg.models.set_stage("iris", 3, "staging")
    reg.models.rollback("iris", "production")  # v1 back in production, v2 archived
    # other: one complete version in production, a note
    n = reg.models.create_version("other", run_id(6), "train_other")
    reg.models.complete_version("other", n, {"trained_model": (refs[3], "train")}, {"f1": 0.5})
    reg.models.set_stage("other", 1, "production")
    reg.models.add_note("other", 1, {"owner": "me"})
    reg.runs.save(
        Run(
            id=run_id(6),
            pipeline="train_other",
            status=RunStatus.COMPLETED,
            started=T0 + 6,
            finished=T0 + 7,
            config={},
            step_records={"train": {"status": "ran", "outputs": {"m": refs[3].to_json()}}},
            model={"name": "other", "number": 1, "requested": None, "created": True},
            host=_host(),
            pid=pid,
        )
    )
    for i, ref in enumerate(refs[:3]):
        entry = CacheEntry(
            cache_key=f"{i:x}" * 32,
            step="train",
            outputs={"trained_model": ref},
            ingredients={"params": {"C": i}},
            run_id=run_id(i + 1),
            created=T0 + i,
        )
        reg.cache.write_entry(entry)
    reg.cache.write_index("train", entry)
    reg.cache.save_file_stamps({"/data/iris.csv": FileStamp("1-2-3", "ab" * 16)})
    # nothing is written "now" except by later writers: age the files past any grace period
    old = time.time() - 10 * 86400
    if reg.storage.local:
        import os

        for path in reg.storage.walk(""):
            os.utime(reg.storage.path(path), (old, old))
    return reg


def _host() -> str:
    import socket

    return socket.gethostname()
