"""Storage primitives on every kind of filesystem: atomic replace, create-if-absent, streaming."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from mlops.errors import RegistryError
from mlops.storage import Storage

Uri = tuple[str, dict[str, Any]]


@pytest.fixture
def st(any_registry_uri: Uri) -> Storage:
    uri, options = any_registry_uri
    return Storage(uri, options)


def test_write_read_replace(st: Storage) -> None:
    """write replaces a record whole; read_json of a missing record is None."""
    assert st.read_json("a/b.json") is None
    st.write_json("a/b.json", {"n": 1})
    st.write_json("a/b.json", {"n": 2})
    assert st.read_json("a/b.json") == {"n": 2}
    assert st.list("a") == ["b.json"]
    with pytest.raises(FileNotFoundError):
        st.read("a/missing")


def test_create_is_exclusive(st: Storage) -> None:
    """create succeeds once; a second create of the same name fails and keeps the first bytes."""
    assert st.create("x/1.json", b'{"who": 1}')
    assert not st.create("x/1.json", b'{"who": 2}')
    assert st.read_json("x/1.json") == {"who": 1}
    assert st.has_record("x/1.json") and not st.has_record("x/2.json")


def test_create_refuses_empty_payloads(st: Storage) -> None:
    """An empty create-if-absent upload is not exclusive on every store, so it is refused."""
    with pytest.raises(ValueError, match="non-empty payload"):
        st.create("x/empty", b"")


def test_concurrent_creates_have_one_winner(st: Storage) -> None:
    """Threads racing to create one name: exactly one wins, every round."""
    for round_ in range(5):
        results: list[bool] = []
        barrier = threading.Barrier(8)

        def racer(i: int, round_: int, barrier: threading.Barrier, results: list[bool]) -> None:
            barrier.wait()
            results.append(st.create(f"race/{round_}", f"{i}".encode()))

        threads = [
            threading.Thread(target=racer, args=(i, round_, barrier, results)) for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False] * 7 + [True]


def test_streaming_writer_is_invisible_until_commit(st: Storage) -> None:
    """A payload is visible under its final name only after commit; discard leaves nothing."""
    with st.writer() as pending:
        pending.file.write(b"x" * 1000)
        assert not st.exists("objects/ab/final")
        pending.commit("objects/ab/final")
    assert st.read("objects/ab/final") == b"x" * 1000
    with pytest.raises(RuntimeError), st.writer() as pending:
        pending.file.write(b"partial")
        raise RuntimeError("the step died")
    assert st.walk("objects") == {
        "objects/ab/final": (1000, st.walk("objects")["objects/ab/final"][1])
    }


def test_read_many_and_walk(st: Storage) -> None:
    """read_many fetches the records that exist; walk lists every file with size and mtime."""
    for i in range(5):
        st.write(f"r/{i}", str(i).encode())
    got = st.read_many([f"r/{i}" for i in range(7)])
    assert got == {f"r/{i}": str(i).encode() for i in range(5)}
    files = st.walk("r")
    assert sorted(files) == [f"r/{i}" for i in range(5)]
    assert all(size == 1 for size, _ in files.values())


def test_s3_sends_if_none_match(s3_server: Any, s3_bucket: str) -> None:
    """s3fs's create mode reaches moto as a conditional PUT: the second create conflicts."""
    st = Storage(f"{s3_bucket}/reg", s3_server.storage_options)
    assert st.create("k", b"first")
    assert not st.create("k", b"second")
    client = s3_server.client()
    body = client.get_object(Bucket=s3_bucket.removeprefix("s3://"), Key="reg/k")["Body"].read()
    assert body == b"first"
    # and the raw API agrees: moto honours If-None-Match
    with pytest.raises(client.exceptions.ClientError, match="PreconditionFailed"):
        client.put_object(
            Bucket=s3_bucket.removeprefix("s3://"), Key="reg/k", Body=b"x", IfNoneMatch="*"
        )


def test_missing_bucket_on_read_is_not_an_empty_registry(s3_server: Any) -> None:
    """Reads, lists and writes in a missing bucket raise RegistryError, never 'nothing here'."""
    st = Storage("s3://bucket-that-is-not-there/reg", s3_server.storage_options)
    for call in (
        lambda: st.read_json("models/m/versions/head.json"),
        lambda: st.list("models"),
        lambda: st.create("x", b"1"),
        lambda: st.check(),
    ):
        with pytest.raises(RegistryError, match="the bucket does not exist"):
            call()


def test_unknown_protocol(tmp_path: Path) -> None:
    """A URL whose filesystem is not installed names the package to install."""
    with pytest.raises(RegistryError, match="no filesystem for 'gs://' is installed"):
        Storage("gs://bucket/reg")
