"""Storing and loading a large DataFrame through the cache, against pyarrow alone.

* store: ``ArtifactStore.put(df)`` on a local registry -- serialize to Parquet while hashing
  (xxh3-128) in the same pass, write to a temporary file, commit under the content hash -- against
  ``pq.write_table(pa.Table.from_pandas(df), path)`` on the same disk.
* load: ``ArtifactStore.get(ref)`` -- read the bytes once, check their hash, parse them in place --
  against ``pq.read_table(path).to_pandas()``.

The DataFrame is 400 MB of float64 (10 columns) with a little structure, so Parquet does not
shrink it to nothing. Run alone::

    python -m benchmarks --only bench_cache
    python -c "from benchmarks.bench_cache import run; print(run(quick=True))"
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import Row, interleaved, loadavg, median, repetitions, row, tiny

MB = 1 << 20


def _frame(nbytes: int) -> Any:
    import numpy as np
    import pandas as pd

    columns = 10
    rows = nbytes // (8 * columns)
    rng = np.random.default_rng(0)
    data = {f"c{i}": rng.standard_normal(rows).round(3 if i % 2 else 6) for i in range(columns)}
    return pd.DataFrame(data)


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
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=2))
