"""The storage interface every part of the registry writes through, and what both backends share.

A :class:`Storage` is a folder addressed by paths relative to its root (``models/m/…``). Beside
plain reads and listings it offers the three writes the registry is built on:

* :meth:`Storage.write` -- replace a small record atomically (readers see the old or the new
  bytes, never a mix);
* :meth:`Storage.create` -- create-if-absent, the primitive behind version numbers and stage
  history: of several concurrent writers of one path exactly one succeeds;
* :meth:`Storage.writer` -- stream a large payload whose final name (its content hash) is known
  only at the end, and make it visible only when complete.

Two backends implement it, each without special cases: :class:`~mlops.storage.local.LocalStorage`
calls the OS (temporary file + ``os.replace``, ``os.link``), and
:class:`~mlops.storage.fsspec.FsspecStorage` calls an fsspec filesystem (memory, S3, GCS, …).
:func:`~mlops.storage.open_storage` picks one for a URI.

Errors: a missing file is ``FileNotFoundError``; a record that is not valid JSON is
:class:`~mlops.errors.DamagedRecordError`; anything else that stops an operation (no permission,
an unreachable endpoint, a full disk) is one :class:`~mlops.errors.RegistryError` naming the
registry, the operation and the path.
"""

from __future__ import annotations

import abc
import builtins
import contextlib
import json
import os
from collections.abc import Iterator
from typing import IO, Any, Literal

from ..errors import DamagedRecordError, RegistryError
from ..redaction import redact_uri

__all__ = ["Damaged", "PendingWrite", "Storage", "redact_uri"]

#: what :meth:`Storage.read_json` does with a record that is not valid JSON
Damaged = Literal["raise", "none"]


class Storage(abc.ABC):
    """A folder of files addressed by paths relative to its root; see the module docstring.

    Attributes:
        uri: the URI as shown in messages and logs (a password in it is replaced by ``***``).
        root: the folder's path as the backend spells it (an OS path for local folders).
        local: True if the files are in a folder on this machine, so that :meth:`path` is an OS
            path (a caller may memory-map it).
        remote: True for storage reached over a network (object stores), where a missing bucket
            or an unreachable endpoint must be told apart from an empty registry.
    """

    uri: str
    root: str
    local: bool
    remote: bool

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    def path(self, rel: str) -> str:
        """The backend's path of ``rel`` (the root for ``""``)."""
        return f"{self.root}/{rel}" if rel else self.root

    @property
    @abc.abstractmethod
    def fs(self) -> Any:
        """An fsspec filesystem for this storage (for callers that need fsspec itself)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Fail early, with one clear message, if this location cannot be used.

        An empty or absent folder is fine (a new registry).

        Raises:
            RegistryError: naming the URI and what to fix.
        """

    # -- reads ------------------------------------------------------------------------------------

    @abc.abstractmethod
    def read(self, rel: str) -> bytes:
        """The bytes at ``rel``; FileNotFoundError if there are none."""

    @abc.abstractmethod
    def open(self, rel: str) -> IO[bytes]:
        """``rel`` opened for reading in binary (the caller closes it); FileNotFoundError."""

    @abc.abstractmethod
    def read_many(self, rels: list[str]) -> dict[str, bytes]:
        """The bytes of each of ``rels`` that exists (missing ones are left out)."""

    @abc.abstractmethod
    def exists(self, rel: str) -> bool:
        """True if ``rel`` is a file or a folder."""

    def has_record(self, rel: str) -> bool:
        """True if the small record ``rel`` exists, by the cheapest test the backend has."""
        return self.exists(rel)

    @abc.abstractmethod
    def size(self, rel: str) -> int | None:
        """The size of file ``rel`` in bytes, None if it does not exist."""

    @abc.abstractmethod
    def stamp(self, rel: str) -> str | None:
        """A cheap identity of file ``rel`` that changes whenever its bytes change; None if missing.

        Read from the file's metadata, never its bytes: size, modification time and inode on a
        local folder; the ETag, checksum or version id an object store keeps. Equal stamps mean
        the file was not rewritten in between (a rewrite with identical bytes may keep the stamp
        on object stores, whose ETag is a hash of the content).

        .. versionadded:: 0.2
        """

    @abc.abstractmethod
    def list(self, rel: str) -> list[str]:
        """Sorted names directly under ``rel`` (files and folders); [] if it does not exist."""

    @abc.abstractmethod
    def walk(self, rel: str) -> dict[str, tuple[int, float | None]]:
        """Every file below ``rel`` (paths relative to the root): its size and modification time.

        {} if ``rel`` does not exist.
        """

    def walk_files(self, rel: str) -> dict[str, int]:
        """Every file below ``rel`` (relative to the root) with its size."""
        return {path: size for path, (size, _) in self.walk(rel).items()}

    def read_json(self, rel: str, *, damaged: Damaged = "raise") -> Any | None:
        """The JSON document at ``rel``, or None if there is no such file.

        Args:
            rel: the record's path.
            damaged: ``"raise"`` (the default) raises DamagedRecordError for a file that is not
                valid JSON; ``"none"`` returns None for it, as for a missing file (only for
                records that can be rebuilt, such as hints and caches).

        Raises:
            DamagedRecordError: the file exists but is not valid JSON (truncated, overwritten).

        .. versionchanged:: 0.2
            A damaged record raises instead of reading as missing.
        """
        try:
            data = self.read(rel)
        except FileNotFoundError:
            return None
        return self._parse(rel, data, damaged)

    def read_json_many(
        self, rels: builtins.list[str], *, damaged: Damaged = "raise"
    ) -> dict[str, Any]:
        """Like :meth:`read_json` for many records; missing ones are left out.

        With ``damaged="none"`` damaged ones are left out too.
        """
        out: dict[str, Any] = {}
        for rel, data in self.read_many(rels).items():
            doc = self._parse(rel, data, damaged)
            if doc is not None:
                out[rel] = doc
        return out

    def _parse(self, rel: str, data: bytes, damaged: Damaged) -> Any | None:
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as e:  # bad JSON, not UTF-8, or nested too deeply
            if damaged == "none":
                return None
            raise DamagedRecordError(
                f"registry '{self.uri}': the record '{rel}' is damaged: it is not valid JSON "
                f"({e}). Restore it from a backup, or delete it if what it records may be lost.",
                self.uri,
                rel,
            ) from e

    # -- writes -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def write(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel`` atomically, replacing what was there."""

    @abc.abstractmethod
    def create(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` with ``data`` unless it exists; True if this call created it.

        Exclusive: of several concurrent callers exactly one gets True. ``data`` must not be
        empty (an empty create-if-absent upload is not exclusive on every object store).

        Raises:
            ValueError: ``data`` is empty.
        """

    def link(self, src: str, dst: str) -> bool:
        """Give the file ``src`` the second name ``dst`` without copying it; False if this
        backend cannot (then the caller writes ``dst`` itself).

        ``dst`` is replaced atomically, as by :meth:`write`. Both names then hold the same
        bytes for as long as they exist, which is a copy because no mlops write changes a file
        in place (every write replaces a file whole). For records whose bytes another record
        already holds (a step's cache index is its cache entry): making a file is the dearest
        system call of a local write, and a link makes none. The default says no.

        .. versionadded:: 0.3
        """
        return False

    def write_json(self, rel: str, doc: Any) -> None:
        """Write ``doc`` as JSON to ``rel`` atomically (see :meth:`write`)."""
        self.write(rel, dumps(doc))

    def create_json(self, rel: str, doc: Any) -> bool:
        """Create ``rel`` holding ``doc`` as JSON unless it exists (see :meth:`create`)."""
        return self.create(rel, dumps(doc))

    @contextlib.contextmanager
    def writer(self) -> Iterator[PendingWrite]:
        """Stream bytes whose final name is decided at the end: ``pending.commit(rel)``.

        Write to ``pending.file``, then call ``pending.commit(rel)``. Nothing is visible under
        any name in the storage before ``commit``; leaving the block without committing (an
        exception) removes the temporary bytes. A crash can leave a temporary file behind
        (in ``objects/tmp/`` of a local folder, in the system's temporary folder otherwise).
        """
        pending = self._start_write()
        try:
            yield pending
        finally:
            pending.discard()

    @abc.abstractmethod
    def _start_write(self) -> PendingWrite:
        """A new :class:`PendingWrite` for :meth:`writer`."""

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> None:
        """Move the file ``src`` to ``dst`` (replacing it): a rename locally, a copy and a delete
        on object stores. FileNotFoundError if ``src`` is missing."""

    @abc.abstractmethod
    def delete(self, rel: str) -> None:
        """Delete the file or folder ``rel`` (a folder with everything in it); nothing if absent."""

    # -- errors -----------------------------------------------------------------------------------

    def _translate(self, error: BaseException, what: str, rel: str) -> BaseException | None:
        """A backend's own reading of ``error`` (an error to raise instead), or None."""
        return None

    @contextlib.contextmanager
    def _errors(self, what: str, rel: str) -> Iterator[None]:
        """Turn a failure to ``what`` (read, write, …) ``rel`` into one RegistryError.

        A missing file stays FileNotFoundError (callers decide what missing means); errors
        mlops raises on purpose pass through.
        """
        try:
            yield
        except (DamagedRecordError, RegistryError):
            raise
        except Exception as e:
            mine = self._translate(e, what, rel)
            if mine is not None:
                raise mine from e
            if isinstance(e, FileNotFoundError):
                raise
            if isinstance(e, PermissionError):
                raise RegistryError(
                    f"registry '{self.uri}': permission denied to {what} '{rel}' ({e}). Check "
                    "the credentials in registry.storage_options or the folder's permissions.",
                    self.uri,
                ) from e
            raise RegistryError(
                f"registry '{self.uri}' is not reachable: cannot {what} '{rel}': "
                f"{type(e).__name__}: {e}",
                self.uri,
            ) from e


class PendingWrite(abc.ABC):
    """A payload being written; see :meth:`Storage.writer`.

    Attributes:
        file: where to write the bytes (a binary file open for writing).
    """

    file: IO[bytes]

    @abc.abstractmethod
    def commit(self, rel: str) -> None:
        """Publish the bytes written so far under ``rel``, complete or not at all.

        Whatever is stored under ``rel`` is replaced. Callers name payloads by their content
        hash, so an existing file of that name holds these same bytes unless it was damaged, and
        replacing it then repairs it; a caller that wants to keep an existing file checks first
        (``ArtifactStore.put`` compares sizes).

        .. versionchanged:: 0.2
            The ``exist_ok`` argument, which was ignored, is gone.
        """

    @abc.abstractmethod
    def discard(self) -> None:
        """Drop what was written and not committed (called by :meth:`Storage.writer` on exit)."""


def tmp_name(rel: str) -> str:
    """A unique temporary name in the folder of ``rel``, starting with ``.tmp-`` (gc removes
    stale ones)."""
    folder, _, name = rel.rpartition("/")
    tmp = f".tmp-{name}-{os.urandom(16).hex()}"  # as unique as uuid4, a fifth of its cost
    return f"{folder}/{tmp}" if folder else tmp


def dumps(doc: Any) -> bytes:
    """``doc`` as compact JSON with sorted keys (records are compared and hashed as bytes)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()
