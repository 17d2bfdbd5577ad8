"""Registry lookups at scale: 100,000 versions of one model on a local folder.

* resolve ``production`` and ``latest`` -- read the ``head.json`` hint, probe forward for newer
  records, read one record (a handful of small reads, however many versions exist); goal < 20 ms;
* list every version -- one read of ``version.json`` and ``complete.json`` per version, batched;
  goal < 5 s;
* the same resolve with the hint 90% of the versions behind (a writer that crashed before moving
  it): a doubling-then-bisecting probe, so still a few dozen reads.

Making 100,000 versions through the API takes minutes (each is two create-if-absent writes and a
hint update), so the benchmark makes the first ``SEEDED`` versions and every stage change through
:class:`mlops.registry.Registry` and writes the others' records directly, byte for byte as the API
writes them (the API's own first version is the template), then checks that the registry reads
them as complete versions. The ``head.json`` hint is left where the API left it, far behind, as
after a crash: resolving must find the true end by probing.

The 100,000-version registry is built once per machine in the temporary folder
(``mlops-bench-registry-100000``) and reused by later runs, since deleting 100,000 folders takes
minutes here; it is rebuilt when the API's records change shape. ``--tiny``: 200 versions in a
fresh folder (the row names say so).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import Row, interleaved, loadavg, median, repetitions, row, tiny

SEEDED = 100


def _make(root: Path, versions: int) -> None:
    """``versions`` versions of model ``m``; the last 100 each promoted to production once."""
    from mlops.registry import Registry

    reg = Registry(str(root))
    for _ in range(min(SEEDED, versions)):
        reg.register_model_version("m")
    folder = root / "models" / "m" / "versions"
    first = (folder / f"{1:08d}" / "version.json").read_bytes()
    done = (folder / f"{1:08d}" / "complete.json").read_bytes()
    head, tail = first.split(b'"number":1,')
    assert json.loads(head + b'"number":1,' + tail)["number"] == 1
    # a completion record names its version too
    done_head, done_tail = re.split(rb'"number":1(?=[,}])', done, maxsplit=1)
    assert json.loads(done_head + b'"number":1' + done_tail)["number"] == 1
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for n in range(SEEDED + 1, versions + 1):  # plain system calls: this is setup, not measured
        d = f"{folder}/{n:08d}"
        os.mkdir(d)
        for name, data in (
            ("version.json", b'%s"number":%d,%s' % (head, n, tail)),
            ("complete.json", b'%s"number":%d%s' % (done_head, n, done_tail)),
        ):
            fd = os.open(f"{d}/{name}", flags, 0o644)
            os.write(fd, data)
            os.close(fd)
    reg = Registry(str(root))
    for n in range(max(1, versions - 99), versions + 1):
        reg.set_stage("m", n, "production", force=True)


def _shape(root: Path) -> tuple[list[str], Any]:
    doc = json.loads((root / "models" / "m" / "versions" / f"{1:08d}" / "version.json").read_text())
    return sorted(doc), doc.get("format")


def _fixture(tmp: Path, versions: int) -> Path:
    """The registry to read: built in ``tmp`` when tiny, else built once per machine and reused.

    Making 100,000 version folders takes about 40 s and deleting them minutes on these file
    systems, so the big registry lives in the temporary folder across runs; it is rebuilt when
    the records the API writes today have another shape than the kept ones.
    """
    if tiny():
        _make(tmp / "registry", versions)
        return tmp / "registry"
    root = Path(tempfile.gettempdir()) / f"mlops-bench-registry-{versions}"
    _make(tmp / "probe", 1)
    if (root / "READY").exists() and _shape(root) == _shape(tmp / "probe"):
        return root
    shutil.rmtree(root, ignore_errors=True)
    _make(root, versions)
    (root / "READY").write_text("built by benchmarks/bench_registry.py\n")
    return root


def run(quick: bool) -> dict[str, Row]:
    from mlops.registry import Registry

    versions = 200 if tiny() else 100_000
    reps = repetitions(quick, full=50, quick_n=15)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-registry-"))
    try:
        root = _fixture(tmp, versions)
        reg = Registry(str(root))
        head = root / "models" / "m" / "versions" / "head.json"
        head.write_text(json.dumps({"n": versions}))  # where the API leaves it

        def production() -> None:
            assert reg.get_model_version("m", "production").number == versions

        def latest() -> None:
            assert reg.get_model_version("m", "latest").number == versions

        def list_all() -> None:
            listed = reg.list_model_versions("m")
            assert len(listed) == versions and all(v.complete for v in listed)

        def lagging_latest() -> None:
            head.write_text(json.dumps({"n": versions // 10}))
            latest()

        production()
        samples = interleaved(reps, production=production, latest=latest)
        lists = interleaved(1 if quick else 3, list_all=list_all)
        lagging = interleaved(reps, lagging=lagging_latest)
        head.write_text(json.dumps({"n": versions}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    p, la = median(samples["production"]), median(samples["latest"])
    lst, lag = median(lists["list_all"]), median(lagging["lagging"])
    n = f"{versions:,} versions"
    load = loadavg()
    return {
        f"registry: resolve production ({n})": row(
            p * 1000,
            "ms",
            goal="< 20 ms",
            met=p < 0.020,
            note=f"100 stage changes, local; {load}",
        ),
        f"registry: resolve latest ({n})": row(
            la * 1000, "ms", goal="< 20 ms", met=la < 0.020, note=load
        ),
        f"registry: resolve latest, hint far behind ({n})": row(
            lag * 1000,
            "ms",
            goal="< 20 ms",
            met=lag < 0.020,
            note=f"head.json {versions - versions // 10:,} versions behind; {load}",
        ),
        f"registry: list all versions ({n})": row(
            lst,
            "s",
            goal="< 5 s",
            met=lst < 5.0,
            note=f"checked: every version listed and complete; {os.cpu_count()} cores; {load}",
        ),
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(quick=True), indent=2))
