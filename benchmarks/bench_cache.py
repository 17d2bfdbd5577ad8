"""Storing and loading a large DataFrame through the cache, against pyarrow alone.

* store: ``ArtifactStore.put(df)`` on a local registry -- serialize to Parquet while hashing
  (xxh3-128) in the same pass, write to a temporary file, commit under the content hash -- against
  ``pq.write_table(pa.Table.from_pandas(df), path)`` on the same disk.
* load: ``ArtifactStore.get(ref)`` -- read the bytes once, check their hash, parse them in place --
  against ``pq.read_table(path).to_pandas()``.

The DataFrame is 400 MB of float64 (10 columns) with a little structure, so Parquet does not
shrink it to nothing.

* two consumers: a fresh run of ``python -m mlops +pipeline=big`` (new registry each time) whose
  producer makes a 400 MB DataFrame (nine float columns, one string column) and whose two
  consumers each read a column -- against a process that makes the same frame, writes its Parquet
  once and hands the same object to both consumers (what a run cost before every consumer got a
  value of its own, equal to a load of the stored bytes).

Run alone::

    python -m benchmarks --only bench_cache
    python -c "from benchmarks.bench_cache import run; print(run(quick=True))"
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import (
    Row,
    interleaved,
    loadavg,
    median,
    python_timer,
    repetitions,
    row,
    run_python,
    tiny,
)

MB = 1 << 20


def _frame(nbytes: int) -> Any:
    import numpy as np
    import pandas as pd

    columns = 10
    rows = nbytes // (8 * columns)
    rng = np.random.default_rng(0)
    data = {f"c{i}": rng.standard_normal(rows).round(3 if i % 2 else 6) for i in range(columns)}
    return pd.DataFrame(data)


BIG_STEPS = """\
from typing import Annotated

import numpy as np
import pandas as pd

from mlops import step


@step
def make(rows: int) -> Annotated[pd.DataFrame, "frame"]:
    rng = np.random.default_rng(0)
    data = {f"c{i}": rng.standard_normal(rows).round(3 if i % 2 else 6) for i in range(9)}
    data["label"] = np.array(["alpha", "beta", "gamma", "delta"])[rng.integers(0, 4, rows)]
    return pd.DataFrame(data)


@step
def total(frame: pd.DataFrame) -> Annotated[float, "total"]:
    return float(frame["c0"].sum())


@step
def count(frame: pd.DataFrame) -> Annotated[int, "count"]:
    return int((frame["label"] == "beta").sum())
"""

BIG_PIPELINE = """\
# @package _global_
pipeline:
  name: big
steps:
  make:
    _target_: bigsteps.make
    rows: {rows}
  total:
    _target_: bigsteps.total
    frame: ${{step:make.frame}}
  count:
    _target_: bigsteps.count
    frame: ${{step:make.frame}}
"""

#: the floor: the same work with the producer's object handed to both consumers
BIG_FLOOR = """\
import sys

import pyarrow as pa
import pyarrow.parquet as pq

import bigsteps

df = bigsteps.make.fn(int(sys.argv[1]))
pq.write_table(pa.Table.from_pandas(df, preserve_index=None), sys.argv[2])
bigsteps.total.fn(df)
bigsteps.count.fn(df)
"""


def _two_consumers(tmp: Path, size: int, reps: int) -> Row:
    """A fresh run handing a DataFrame of ``size`` bytes to two consumers, against the floor."""
    project = tmp / "big"
    (project / "conf" / "pipeline").mkdir(parents=True)
    rows = size // 80  # nine float64 columns and a short string each
    (project / "bigsteps.py").write_text(BIG_STEPS)
    (project / "conf" / "pipeline" / "big.yaml").write_text(BIG_PIPELINE.format(rows=rows))
    (project / "floor.py").write_text(BIG_FLOOR)
    registry = tmp / "big-registry"

    def fresh_run() -> None:
        shutil.rmtree(registry, ignore_errors=True)
        run_python(
            [
                "-m",
                "mlops",
                "+pipeline=big",
                f"registry.uri={registry}",
                f"hydra.run.dir={tmp / 'big-outputs'}",
            ],
            cwd=project,
        )

    floor = python_timer(["floor.py", str(rows), str(tmp / "big.parquet")], cwd=project)
    fresh_run()  # warm up: bytecode, page cache
    samples = interleaved(reps, floor=floor, mlops=fresh_run)
    f, m = median(samples["floor"]), median(samples["mlops"])
    return row(
        m,
        "s",
        floor=f,
        goal="<= 1.3x the producer's object handed on",
        met=m <= 1.3 * f,
        note=f"python -m mlops +pipeline=big, new registry each run; the frame is decoded by "
        f"no consumer (its stored schema proves the producer's frame is what a load gives) and "
        f"each gets a copy-on-write copy; medians of {reps}; {loadavg()}",
    )


def run(quick: bool) -> dict[str, Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlops.storage import open_storage
    from mlops.store import ArtifactStore

    size = 4 * MB if tiny() else 400 * MB
    reps = repetitions(quick, full=5, quick_n=3)
    df = _frame(size)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-cache-"))
    try:
        store = ArtifactStore(open_storage(str(tmp / "registry")))
        plain = tmp / "plain.parquet"
        ref = store.put(df)  # warm up (imports, allocator), and the object to load

        def store_put() -> None:
            store.discard(ref)  # the store skips objects it already has
            store.put(df)

        def pyarrow_write() -> None:
            pq.write_table(pa.Table.from_pandas(df, preserve_index=None), plain)

        pyarrow_write()
        written = interleaved(reps, pyarrow=pyarrow_write, mlops=store_put)
        read = interleaved(
            reps,
            pyarrow=lambda: pq.read_table(plain).to_pandas(),
            mlops=lambda: store.get(ref),
        )
        df = None  # free its memory before the two-consumer runs
        consumers = _two_consumers(tmp, size, reps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    w_floor, w = median(written["pyarrow"]), median(written["mlops"])
    r_floor, r = median(read["pyarrow"]), median(read["mlops"])
    label = f"{size // MB} MB"
    return {
        f"cache: store a {label} DataFrame": row(
            w,
            "s",
            floor=w_floor,
            goal="<= 1.1x pyarrow write",
            met=w <= 1.1 * w_floor,
            note=f"{ref.size / MB:.0f} MB of Parquet; hashed while written (xxh3-128); "
            f"medians of {reps}; {loadavg()}",
        ),
        f"cache: load a {label} DataFrame": row(
            r,
            "s",
            floor=r_floor,
            goal="<= 1.1x pyarrow read",
            met=r <= 1.1 * r_floor,
            note=f"bytes read once, hash checked before parsing; medians of {reps}; {loadavg()}",
        ),
        f"cache: a {label} DataFrame to two consumers (fresh run)": consumers,
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=2))
