"""Registry lookups that must not grow with the number of versions.

A local registry gets one model with 10,000 versions (``MLOPS_BENCH_TINY``: 200) and 100 stage
changes; then:

* resolve ``production`` and ``latest`` -- read the ``head.json`` hint, probe forward for newer
  records, read one record (a handful of small reads, however many versions exist); goal < 20 ms;
* list every version -- one read per ``version.json``; goal < 1 s;
* the same resolve with the hint 9,000 versions behind (a writer that crashed before moving it):
  a doubling-then-bisecting probe, so still a few dozen reads.

Run alone::

    python -m benchmarks --only bench_registry
    python -c "from benchmarks.bench_registry import run; print(run(quick=True))"
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from benchmarks._common import Row, interleaved, median, repetitions, row, tiny


def run(quick: bool) -> dict[str, Row]:
    from mlops.registry import Registry

    versions = 200 if tiny() else 10_000
    reps = repetitions(quick, full=50, quick_n=15)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-registry-"))
    try:
        reg = Registry(str(tmp / "registry"))
        for _ in range(versions):
            reg.register_model_version("m")
        for n in range(versions - 99, versions + 1):
            reg.set_stage("m", n, "production", force=True)

        def production() -> None:
            assert reg.get_model_version("m", "production").number == versions

        def latest() -> None:
            assert reg.get_model_version("m", "latest").number == versions

        def list_all() -> None:
            assert len(reg.list_model_versions("m")) == versions

        head = "models/m/versions/head.json"

        def lagging_latest() -> None:
            reg.storage.write_json(head, {"n": versions // 10})
            latest()

        production()
        samples = interleaved(reps, production=production, latest=latest)
        lists = interleaved(max(1, reps // 5), list_all=list_all)
        lagging = interleaved(reps, lagging=lagging_latest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    p, la = median(samples["production"]), median(samples["latest"])
    lst, lag = median(lists["list_all"]), median(lagging["lagging"])
    n = f"{versions:,} versions"
    return {
        "registry: resolve production": row(
            p * 1000, "ms", goal="< 20 ms", met=p < 0.020, note=f"{n}, 100 stage changes, local"
        ),
        "registry: resolve latest": row(la * 1000, "ms", goal="< 20 ms", met=la < 0.020, note=n),
        "registry: resolve latest, hint far behind": row(
            lag * 1000,
            "ms",
            goal="< 20 ms",
            met=lag < 0.020,
            note=f"{n}; head.json {versions - versions // 10:,} versions behind",
        ),
        "registry: list all versions": row(lst, "s", goal="< 1 s", met=lst < 1.0, note=n),
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=2))
