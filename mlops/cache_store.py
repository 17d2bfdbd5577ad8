"""The cache store: which artifacts a step produced for a cache key. It owns ``cache/``::

    cache/<k[:2]>/<k>.json              the entry for cache key k: outputs, model reads, metadata
    cache/steps/<pipeline>/<step>.json  the index: the cache key of the entry the step last stored
                                        or reused, and its ingredients -- what a plan compares
                                        with to say *why* a step runs (in a local folder, a hard
                                        link to that entry's file)
    cache/files/<h>.json                a declared input file's stat stamp and content hash, so
                                        that an unchanged file is not hashed again

Entries are written after the artifacts they name (so an entry never names bytes that are not
stored) and are frozen values. What decides whether an entry may be used is in :mod:`mlops.cache`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .file_inputs import FileStamp
from .hashing import token
from .records import read_records
from .storage import Storage
from .store import ArtifactRef

__all__ = ["CacheEntry", "CacheStore", "IndexRecord"]


@dataclass(frozen=True)
class CacheEntry:
    """What a step produced for one cache key, and what it read while producing it."""

    cache_key: str
    step: str
    outputs: Mapping[str, ArtifactRef]
    model_reads: tuple[tuple[str, int], ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    ingredients: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    created: float = field(default_factory=time.time)
    #: each output's storage stamp when the entry was written: while it is unchanged the bytes
    #: are the ones that were hashed, so a hit can trust them without reading them
    stamps: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.cache_key,
            "step": self.step,
            "outputs": {k: v.to_json() for k, v in self.outputs.items()},
            "model_reads": [list(r) for r in self.model_reads],
            "metadata": dict(self.metadata),
            "ingredients": dict(self.ingredients),
            "run_id": self.run_id,
            "created": self.created,
            "stamps": dict(self.stamps),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> CacheEntry:
        return cls(
            cache_key=str(doc["key"]),
            step=str(doc["step"]),
            outputs={str(k): ArtifactRef.from_json(v) for k, v in doc["outputs"].items()},
            model_reads=tuple((str(n), int(v)) for n, v in doc.get("model_reads", [])),
            metadata=doc.get("metadata") or {},
            ingredients=doc.get("ingredients") or {},
            run_id=doc.get("run_id"),
            created=float(doc.get("created", 0.0)),
            stamps={str(k): str(v) for k, v in (doc.get("stamps") or {}).items()},
        )


@dataclass(frozen=True)
class IndexRecord:
    """The index of one step of one pipeline: the entry it last stored or used."""

    cache_key: str | None
    ingredients: Mapping[str, Any] | None


_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _segment(name: str) -> str:
    return name if _SEGMENT.match(name) and ".." not in name else "h-" + token(name)[:16]


class CacheStore:
    """Cache entries and the per-step index under ``cache/`` of a storage.

    Entries that cannot be read (damaged, or from an incompatible version) are misses: a cache
    entry is only ever a shortcut, and the step runs again and writes a good one.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @staticmethod
    def entry_path(cache_key: str) -> str:
        """Where the entry for ``cache_key`` lives.

        Examples:
            >>> CacheStore.entry_path("ab12")
            'cache/ab/ab12.json'
        """
        return f"cache/{cache_key[:2]}/{cache_key}.json"

    @staticmethod
    def index_path(pipeline: str, step: str) -> str:
        """Where the index of a step's last stored entry lives.

        Examples:
            >>> CacheStore.index_path("train_and_promote", "train")
            'cache/steps/train_and_promote/train.json'
        """
        return f"cache/steps/{_segment(pipeline)}/{_segment(step)}.json"

    def read_entry_doc(self, cache_key: str) -> dict[str, Any] | None:
        """The raw entry document, or None if missing or unreadable."""
        doc = self.storage.read_json(self.entry_path(cache_key), damaged="none")
        return doc if isinstance(doc, dict) else None

    @staticmethod
    def parse(doc: Mapping[str, Any] | None) -> CacheEntry | None:
        if doc is None:
            return None
        try:
            return CacheEntry.from_json(doc)
        except (KeyError, TypeError, ValueError, AttributeError):
            return None  # an entry from an incompatible version, or damaged: not trusted

    def write_entry(self, entry: CacheEntry) -> None:
        self.storage.write_json(self.entry_path(entry.cache_key), entry.to_json())

    def delete_entry(self, cache_key: str) -> None:
        self.storage.delete(self.entry_path(cache_key))

    def read_index(self, pipeline: str, step: str) -> IndexRecord | None:
        doc = self.storage.read_json(self.index_path(pipeline, step), damaged="none")
        if not isinstance(doc, dict):
            return None
        key = doc.get("key")
        ingredients = doc.get("ingredients")
        return IndexRecord(
            key if isinstance(key, str) else None,
            ingredients if isinstance(ingredients, dict) else None,
        )

    def read_index_keys(self, pipeline: str, steps: list[str]) -> dict[str, str | None]:
        """The cache key each of ``steps`` last used, in one batch read."""
        paths = {self.index_path(pipeline, s): s for s in steps}
        docs = self.storage.read_json_many(list(paths), damaged="none")
        out: dict[str, str | None] = {}
        for path, step in paths.items():
            doc = docs.get(path)
            key = doc.get("key") if isinstance(doc, dict) else None
            out[step] = key if isinstance(key, str) else None
        return out

    def write_index(self, pipeline: str, entry: CacheEntry) -> None:
        """Point the step's index at ``entry`` (stored before, by :meth:`write_entry`).

        The entry's own record holds everything the index says (its key, ingredients, model
        reads, run and time), so where the storage can give a file a second name (a hard link
        in a local folder) the index is the entry's file under the index's name: no second
        file is made, which on a first run is a third of what a step writes.
        """
        index = self.index_path(pipeline, entry.step)
        if self.storage.link(self.entry_path(entry.cache_key), index):
            return
        self.storage.write_json(
            index,
            {
                "key": entry.cache_key,
                "ingredients": dict(entry.ingredients),
                "model_reads": [list(r) for r in entry.model_reads],
                "run_id": entry.run_id,
                "created": entry.created,
            },
        )

    @staticmethod
    def _stamp_path(location: str) -> str:
        return f"cache/files/{token('file', location)[:32]}.json"

    def read_file_stamps(self, locations: list[str]) -> dict[str, FileStamp]:
        """The remembered stamps of local files, by absolute path."""
        paths = {self._stamp_path(loc): loc for loc in locations}
        out: dict[str, FileStamp] = {}
        for rel, doc in self.storage.read_json_many(list(paths), damaged="none").items():
            loc = paths[rel]
            if isinstance(doc, dict) and doc.get("path") == loc:
                out[loc] = FileStamp(str(doc.get("stamp")), str(doc.get("digest")))
        return out

    def file_stamp(self, location: str) -> FileStamp | None:
        """The remembered stamp of one local file (None if none)."""
        return self.read_file_stamps([location]).get(location)

    def save_file_stamps(self, stamps: Mapping[str, FileStamp]) -> None:
        for loc, st in stamps.items():
            self.storage.write_json(
                self._stamp_path(loc), {"path": loc, "stamp": st.stamp, "digest": st.digest}
            )

    def steps_of(self, cache_keys: list[str]) -> dict[str, str | None]:
        """The step each entry was stored by (None for an unreadable one)."""
        paths = {self.entry_path(k): k for k in cache_keys}
        docs = self.storage.read_json_many(list(paths), damaged="none")
        out: dict[str, str | None] = dict.fromkeys(cache_keys)
        for path, doc in docs.items():
            if isinstance(doc, dict) and isinstance(doc.get("step"), str):
                out[paths[path]] = doc["step"]
        return out

    def clear_indexes(self, step: str | None = None) -> None:
        """Forget what each step last used (every step's, or ``step``'s in every pipeline)."""
        for pipeline in self.storage.list("cache/steps"):
            if step is None:
                self.storage.delete(f"cache/steps/{pipeline}")
            else:
                self.storage.delete(self.index_path(pipeline, step))

    def entry_keys(self) -> list[str]:
        """Every stored cache key."""
        keys = []
        for prefix in self.storage.list("cache"):
            if prefix in ("steps", "files") or prefix.startswith("."):
                continue
            for name in self.storage.list(f"cache/{prefix}"):
                if name.endswith(".json") and not name.startswith("."):
                    keys.append(name[: -len(".json")])
        return keys

    def referenced_ids(self) -> set[str]:
        """The ids of every artifact a cache entry names.

        Raises:
            DamagedRecordError: an entry cannot be read -- it might name anything, so a caller
                deleting unreferenced objects must not guess.
        """
        paths = [self.entry_path(k) for k in self.entry_keys()]
        ids: set[str] = set()
        for doc in read_records(self.storage, paths, ("outputs",)).values():
            outputs = doc["outputs"]
            if isinstance(outputs, Mapping):
                for ref in outputs.values():
                    if isinstance(ref, Mapping) and isinstance(ref.get("id"), str):
                        ids.add(ref["id"])
        return ids
