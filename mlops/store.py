"""Content-addressed artifact store: ``objects/<id[:2]>/<id>`` holds the bytes of one artifact.

An artifact's id is the xxh3-128 hash of its serialized bytes, computed while they are written
(one pass). Its :class:`ArtifactRef` -- id, format, size -- is what cache entries, runs and model
versions record; the bytes are stored once however many of them refer to it.

Writes become visible only when complete (:meth:`mlops.storage.Storage.writer`). Reads verify:
a missing object or one whose bytes do not hash to its id raises :class:`ArtifactError` and is
never deserialized.
"""

from __future__ import annotations

import collections
import io
import os
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from .errors import ArtifactError
from .hashing import Hasher, hash_bytes
from .serializers import get_serializer, serializer_for
from .storage import Storage

__all__ = ["ArtifactRef", "ArtifactStore", "Written"]

_BLOCK = 8 << 20
_MMAP_MIN = 1 << 20  # below this, one read() is cheaper than a memory map


@dataclass(frozen=True)
class ArtifactRef:
    """A stored artifact: its content hash, its format and its size in bytes."""

    id: str
    format: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "format": self.format, "size": self.size}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ArtifactRef:
        return cls(id=str(doc["id"]), format=str(doc["format"]), size=int(doc["size"]))

    @property
    def path(self) -> str:
        return f"objects/{self.id[:2]}/{self.id}"


class Written(NamedTuple):
    """What :meth:`ArtifactStore.put_keeping` stored and kept."""

    ref: ArtifactRef
    #: the serialized bytes, if they were at most the ``keep`` asked for
    data: bytes | None
    #: their last ``tail`` bytes, if asked for
    tail: bytes | None


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it, and keeps a copy of the
    bytes while they are at most ``keep`` long, and of their last ``tail`` bytes."""

    def __init__(self, f: IO[bytes], keep: int = 0, tail: int = 0) -> None:
        self._f = f
        self.hasher = Hasher()
        self.size = 0
        self.keep = keep
        self.kept: list[bytes] | None = [] if keep > 0 else None
        self.tail_size = tail
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_len = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        view = memoryview(b)
        self.hasher.update(view)
        self._f.write(view)
        self.size += view.nbytes
        if self.kept is not None:
            if self.size > self.keep:
                self.kept = None
            else:
                self.kept.append(bytes(view))
        if self.tail_size:
            flat = view if view.ndim == 1 and view.itemsize == 1 else view.cast("B")
            self._tail.append(bytes(flat[-self.tail_size :]))
            self._tail_len += len(self._tail[-1])
            while self._tail_len - len(self._tail[0]) >= self.tail_size:
                self._tail_len -= len(self._tail.popleft())
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def tail(self) -> bytes:
        """The last ``tail`` bytes written (all of them if fewer)."""
        return b"".join(self._tail)[-self.tail_size :]


class ArtifactStore:
    """Stores and loads step outputs in a :class:`Storage`."""

    def __init__(self, storage: Storage, *, allow_pickle: bool = False) -> None:
        self.storage = storage
        self.allow_pickle = allow_pickle

    def put(self, obj: Any) -> ArtifactRef:
        """Serialize ``obj``, store it under its content hash, and return its reference."""
        return self.put_keeping(obj, 0)[0]

    def put_keeping(self, obj: Any, keep: int, tail: int = 0) -> Written:
        """:meth:`put`, also returning the serialized bytes if they are at most ``keep`` long,
        and their last ``tail`` bytes.

        Those bytes are what a load of the artifact decodes (:meth:`decode`), so handing them to
        consumers gives each a value equal to a load, without reading the store again; the tail
        holds a format's trailer (Parquet's footer: the schema a load builds).
        """
        ser = serializer_for(obj, allow_pickle=self.allow_pickle)
        with self.storage.writer() as pending:
            w = _HashingWriter(pending.file, keep, tail)
            try:
                ser.dump(obj, w)  # type: ignore[arg-type]  # a write-only binary file
            except Exception as e:
                raise ArtifactError(
                    f"cannot store a {type(obj).__qualname__} as {ser.name}: {e}"
                ) from e
            ref = ArtifactRef(w.hasher.hexdigest(), ser.name, w.size)
            if self.storage.size(ref.path) != ref.size:
                pending.commit(ref.path)
        data = b"".join(w.kept) if w.kept is not None else None
        return Written(ref, data, w.tail() if tail else None)

    def decode(self, ref: ArtifactRef, data: bytes) -> Any:
        """The value of ``ref`` from its serialized bytes (checked against the reference)."""
        if len(data) != ref.size or hash_bytes(data) != ref.id:
            raise ArtifactError(f"artifact {ref.id}: the bytes given do not match its hash")
        return self._loads(ref, data)

    def stamp(self, ref: ArtifactRef) -> str | None:
        """The stored object's stamp (see :meth:`Storage.stamp`), None if it is missing."""
        return self.storage.stamp(ref.path)

    def has(self, ref: ArtifactRef) -> bool:
        """True if the object exists with the right size (its hash is checked on load)."""
        return self.storage.size(ref.path) == ref.size

    def verify(self, ref: ArtifactRef) -> bool:
        """True if the object exists and its bytes hash to its id (reads it, hashing as it goes).

        Streams in blocks, so verifying a large artifact needs no memory of its size.
        """
        try:
            f = self.storage.open(ref.path)
        except FileNotFoundError:
            return False
        h, size = Hasher(), 0
        with f:
            while True:
                block = f.read(_BLOCK)
                if not block:
                    break
                h.update(block)
                size += len(block)
        return size == ref.size and h.hexdigest() == ref.id

    def files(self) -> list[tuple[str, int, float | None, bool, str | None]]:
        """Every file under ``objects/``: (path, size, mtime, is an object, its id).

        Files that are not objects are unfinished writes (``objects/tmp/``).
        """
        out: list[tuple[str, int, float | None, bool, str | None]] = []
        for path, (size, mtime) in self.storage.walk("objects").items():
            parts = path.split("/")
            is_object = len(parts) == 3 and parts[1] != "tmp" and not parts[2].startswith(".")
            out.append((path, size, mtime, is_object, parts[2] if is_object else None))
        return out

    def discard(self, ref: ArtifactRef) -> None:
        """Delete a (corrupted) object, so that storing the artifact again rewrites it."""
        self.storage.delete(ref.path)

    def read_verified(self, ref: ArtifactRef) -> bytes | memoryview:
        """The artifact's bytes, checked against its id, read once.

        A large object in a local folder is memory-mapped rather than read: hashing it pages it
        in from the OS cache, and a serializer that parses a buffer in place (Parquet) then
        reads those same pages, so the payload is never copied into Python.
        """
        try:
            data = self._read(ref)
        except FileNotFoundError:
            raise ArtifactError(f"artifact {ref.id} is missing from {self.storage.uri}") from None
        if len(data) != ref.size or hash_bytes(data) != ref.id:
            raise ArtifactError(
                f"artifact {ref.id} in {self.storage.uri} is corrupted: its bytes do not match "
                "its hash"
            )
        return data

    def _read(self, ref: ArtifactRef) -> bytes | memoryview:
        if not self.storage.local or ref.size < _MMAP_MIN:
            return self.storage.read(ref.path)
        import mmap

        with open(self.storage.path(ref.path), "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b""
            # The map stays valid after the file is closed, and is unmapped when the last
            # buffer that refers to it (the memoryview, or arrow's buffers) goes away.
            return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))

    def get(self, ref: ArtifactRef, *, stamp: str | None = None) -> Any:
        """Load the artifact; raises :class:`ArtifactError` if it is missing or corrupted.

        Args:
            stamp: the object's storage stamp when its bytes were last hashed (by the run that
                wrote them): while the object still has it, its bytes are not hashed again.
        """
        if ref.format == "pickle" and not self.allow_pickle:
            raise ArtifactError(
                f"artifact {ref.id} is a pickle; loading it runs code from the registry. Set "
                "registry.allow_pickle=true if you trust everyone who writes to it."
            )
        if stamp is not None and self.stamp(ref) == stamp:
            try:
                return self._loads(ref, self._read(ref))
            except FileNotFoundError:
                pass  # gone since: the verified read below says so
        return self._loads(ref, self.read_verified(ref))

    def _loads(self, ref: ArtifactRef, data: bytes | memoryview) -> Any:
        if ref.format == "pickle" and not self.allow_pickle:
            raise ArtifactError(
                f"artifact {ref.id} is a pickle; loading it runs code from the registry. Set "
                "registry.allow_pickle=true if you trust everyone who writes to it."
            )
        try:
            return get_serializer(ref.format).loads(data)
        except ArtifactError:
            raise
        except Exception as e:
            raise ArtifactError(f"cannot load artifact {ref.id} ({ref.format}): {e}") from e
