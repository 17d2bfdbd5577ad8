"""``Storage.link``: a second name for a record without a second file, and the cache index made
that way.

A step's first run writes its artifact, its cache entry and its index; making a file is the
dearest system call of a local write, and the index says nothing its entry does not, so in a local
folder the index is a hard link to the entry. These tests hold the link to what a write promises:
the new name shows the source's bytes whole, replaces what was there atomically, leaves no
temporary file, and a backend that cannot link says so (its caller writes a copy).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from mlops.cache_store import CacheEntry, CacheStore
from mlops.storage import FsspecStorage, LocalStorage, Storage
from mlops.store import ArtifactRef

#: what may be at the link's name before: nothing, another record, this same file, no folder
BEFORE = ["absent", "other", "same", "no-folder"]


def _setup(st: LocalStorage, before: str) -> str:
    st.write("a/src.json", b'{"v": 1}')
    dst = "b/dst.json" if before != "no-folder" else "new/folder/dst.json"
    if before == "other":
        st.write(dst, b'{"v": "old"}')
    elif before == "same":
        assert st.link("a/src.json", dst)
    return dst


def _leftovers(root: str) -> list[str]:
    return [n for _, _, names in os.walk(root) for n in names if n.startswith(".tmp-")]


@pytest.mark.parametrize("before", BEFORE)
def test_local_link_names_the_same_bytes(tmp_path: Path, before: str) -> None:
    """Whatever was at the name before, it shows the source's bytes and no temporary file stays."""
    st = LocalStorage(str(tmp_path / "reg"))
    dst = _setup(st, before)
    assert st.link("a/src.json", dst)
    assert st.read(dst) == b'{"v": 1}'
    assert os.stat(st.path(dst)).st_ino == os.stat(st.path("a/src.json")).st_ino
    assert _leftovers(st.root) == []
    # a later write of either name replaces that name only: the other keeps its bytes
    st.write("a/src.json", b'{"v": 2}')
    assert st.read(dst) == b'{"v": 1}'


def test_local_link_of_a_missing_source_is_refused(tmp_path: Path) -> None:
    """No source: False, and the name keeps what it had (the caller writes instead)."""
    st = LocalStorage(str(tmp_path / "reg"))
    st.write("b/dst.json", b"old")
    assert not st.link("a/missing.json", "b/dst.json")
    assert not st.link("a/missing.json", "c/new.json")
    assert st.read("b/dst.json") == b"old"
    assert not st.exists("c/new.json")


def test_backends_without_links_say_so() -> None:
    """The fsspec backend makes no link: it says False and writes nothing."""
    st = FsspecStorage(f"memory://link-{uuid.uuid4().hex[:8]}")
    st.write("a/src.json", b"x")
    assert not st.link("a/src.json", "b/dst.json")
    assert not st.exists("b/dst.json")


def _entry(key: str, step: str = "train") -> CacheEntry:
    return CacheEntry(
        cache_key=key,
        step=step,
        outputs={"out": ArtifactRef("ab" * 16, "json", 1)},
        ingredients={"params": {"C": key}},
        run_id="r1",
    )


@pytest.fixture(params=["local", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(str(tmp_path / "reg"))
    return FsspecStorage(f"memory://idx-{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("steps", [["train"], ["train", "evaluate", "a.b-c", "x y/z"]])
def test_index_reads_back_on_every_backend(storage: Storage, steps: list[str]) -> None:
    """Linked (local) or written (memory), each step's index says its entry's key and
    ingredients, and moves when the step stores another entry."""
    cache = CacheStore(storage)
    for round_ in ("1" * 32, "2" * 32):
        for n, step in enumerate(steps):
            key = f"{round_[:8]}{n:08d}" + "0" * 16
            entry = _entry(key, step)
            cache.write_entry(entry)
            cache.write_index("pipe", entry)
            index = cache.read_index("pipe", step)
            assert index is not None
            assert (index.cache_key, index.ingredients) == (key, {"params": {"C": key}})
        keys = cache.read_index_keys("pipe", steps)
        assert all(k is not None and k.startswith(round_[:8]) for k in keys.values())
    # the index is not an entry: listing entries does not see it
    assert all(len(k) == 32 for k in cache.entry_keys())


def test_a_first_run_makes_no_file_for_an_index(tmp_path: Path) -> None:
    """In a local folder the index is the entry's file under a second name; deleting the entry
    (gc, a corrupted output) leaves the index readable, and a rewritten index is whole."""
    st = LocalStorage(str(tmp_path / "reg"))
    cache = CacheStore(st)
    entry = _entry("c" * 32)
    cache.write_entry(entry)
    cache.write_index("pipe", entry)
    entry_file = st.path(cache.entry_path(entry.cache_key))
    index_file = st.path(cache.index_path("pipe", "train"))
    assert os.stat(entry_file).st_ino == os.stat(index_file).st_ino
    cache.delete_entry(entry.cache_key)
    index = cache.read_index("pipe", "train")
    assert index is not None and index.cache_key == "c" * 32
    # without its entry file, the index is written as a record of its own
    cache.write_index("pipe", entry)
    assert cache.read_index("pipe", "train") == index
    assert _leftovers(st.root) == []


@pytest.mark.parametrize("threads", [2, 8])
def test_steps_sharing_a_key_store_it_at_once(tmp_path: Path, threads: int) -> None:
    """Steps with one cache key (the same code and inputs) write its entry and link their
    indexes at the same moment: Linux refuses to link a file whose name a concurrent writer has
    just replaced, so the index is then written as a record. Nothing raises; every index says
    the key."""
    import threading

    cache = CacheStore(LocalStorage(str(tmp_path / "reg")))
    key = "c" * 32
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def step(n: int) -> None:
        start.wait()
        try:
            for _ in range(200):
                entry = _entry(key, f"s{n}")
                cache.write_entry(entry)
                cache.write_index("pipe", entry)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=step, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    for n in range(threads):
        index = cache.read_index("pipe", f"s{n}")
        assert index is not None and index.cache_key == key
