"""Storing a large DataFrame in an S3 registry: memory against a local write, time against s3fs.

Three subjects, each in a fresh child process so that one's memory does not weigh on the next,
against one moto S3 server in its own process on 127.0.0.1:

* local: ``ArtifactStore.put(df)`` on a local registry (Parquet to a temporary file, hashed as it
  is written, renamed into place);
* s3: ``ArtifactStore.put(df)`` on an ``s3://`` registry on that server (Parquet to a local
  temporary file, hashed as written, then a multipart upload under the content hash);
* s3fs put: ``S3FileSystem.put`` of the same Parquet bytes to the same server (s3fs's defaults).

Peak memory is the child's peak resident set (``VmHWM``) during the write, the DataFrame
included: Linux lets a process reset it (``/proc/self/clear_refs``) once the frame is built.
Goals (issue 11): the S3 write's peak at most 1.2x the local write's, its time at most 1.5x the
s3fs put's. The DataFrame is 512 MB of float64 (10 columns). Run alone::

    python -m benchmarks --only bench_s3 --quick
    python -c "from benchmarks.bench_s3 import run; print(run(quick=True))"
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, Row, median, python_env, repetitions, row, tiny

MB = 1 << 20
_CREDENTIALS = {"key": "bench", "secret": "bench"}
_BUCKET = "bench"


def _frame(nbytes: int) -> Any:
    import numpy as np
    import pandas as pd

    columns = 10
    rows = nbytes // (8 * columns)
    rng = np.random.default_rng(0)
    data = {f"c{i}": rng.standard_normal(rows).round(3 if i % 2 else 6) for i in range(columns)}
    return pd.DataFrame(data)


def _peak_reset() -> None:
    """Reset this process's peak resident set to its current size (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak() -> int:
    """This process's peak resident set since the last reset, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _options(endpoint: str) -> dict[str, Any]:
    return {**_CREDENTIALS, "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}


def child(subject: str, size: int, target: str, endpoint: str) -> None:
    """One measurement (run in a fresh process): prints ``{"seconds", "peak", "bytes"}``."""
    import gc

    from mlops.storage import open_storage
    from mlops.store import ArtifactStore

    if subject == "s3fs-put":
        import s3fs

        fs = s3fs.S3FileSystem(**_options(endpoint))
        fs.ls(_BUCKET)  # connect before the clock starts, as the registry does at open
        started = time.perf_counter()
        fs.put(target, f"{_BUCKET}/plain/{os.getpid()}")
        seconds = time.perf_counter() - started
        print(json.dumps({"seconds": seconds, "peak": None, "bytes": os.path.getsize(target)}))
        return
    df = _frame(size)
    options = _options(endpoint) if subject == "s3" else None
    storage = open_storage(target, options)
    storage.check()
    store = ArtifactStore(storage)
    gc.collect()
    _peak_reset()
    started = time.perf_counter()
    ref = store.put(df)
    seconds = time.perf_counter() - started
    peak = _peak()
    # the path of the Parquet bytes, for the s3fs subject
    path = storage.path(ref.path)
    print(json.dumps({"seconds": seconds, "peak": peak, "bytes": ref.size, "path": path}))


def _measure(subject: str, size: int, target: str, endpoint: str) -> dict[str, Any]:
    code = (
        "import sys; from benchmarks.bench_s3 import child; "
        f"child({subject!r}, {size}, {target!r}, {endpoint!r})"
    )
    env = python_env(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{subject} failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("the moto server did not start") from None
            time.sleep(0.2)
    return proc, endpoint


def _empty(client: Any) -> None:
    """Delete every object of the bucket (moto keeps them in memory)."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=_BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=_BUCKET, Key=obj["Key"])


def run(quick: bool) -> dict[str, Row]:
    import boto3

    size = 4 * MB if tiny() else 512 * MB
    reps = repetitions(quick, full=5, quick_n=2)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-s3-"))
    moto, endpoint = _start_moto()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=_BUCKET)
        samples: dict[str, list[dict[str, Any]]] = {"local": [], "s3": [], "s3fs-put": []}
        for i in range(reps):
            shutil.rmtree(tmp / "reg", ignore_errors=True)
            local = _measure("local", size, str(tmp / "reg"), endpoint)
            samples["local"].append(local)
            if i == 0:  # warm up the server: its first large upload is slower, whoever makes it
                _measure("s3fs-put", size, local["path"], endpoint)
                _empty(client)
            # alternate which of the two S3 subjects goes first
            for subject in ["s3", "s3fs-put"] if i % 2 == 0 else ["s3fs-put", "s3"]:
                target = local["path"] if subject == "s3fs-put" else f"s3://{_BUCKET}/reg{i}"
                samples[subject].append(_measure(subject, size, target, endpoint))
                _empty(client)
    finally:
        moto.terminate()
        moto.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    def med(subject: str, key: str) -> float:
        return median([float(s[key]) for s in samples[subject]])

    local_peak, s3_peak = med("local", "peak"), med("s3", "peak")
    put_time, s3_time, local_time = (
        med("s3fs-put", "seconds"),
        med("s3", "seconds"),
        med("local", "seconds"),
    )
    parquet = samples["s3"][0]["bytes"] / MB
    label = f"{size // MB} MB DataFrame, {parquet:.0f} MB of Parquet; moto on 127.0.0.1"
    return {
        "s3: store a 512 MB DataFrame, peak memory": row(
            s3_peak / MB,
            "MB",
            floor=local_peak / MB,
            goal="<= 1.2x local write",
            met=s3_peak <= 1.2 * local_peak,
            note=f"{label}; peak resident set during put(), the frame included",
        ),
        "s3: store a 512 MB DataFrame, time": row(
            s3_time,
            "s",
            floor=put_time,
            goal="<= 1.5x s3fs put",
            met=s3_time <= 1.5 * put_time,
            note=f"{label}; serialize + hash + upload against s3fs put of the Parquet bytes "
            f"(local write {local_time:.2f} s)",
        ),
    }


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(quick=True), indent=2))
