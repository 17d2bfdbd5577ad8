"""Declared file inputs (``${file:PATH}``): what identifies a file's or folder's content.

A step that reads a file by path gets the path; its cache key gets the content's identity, so
editing the file misses the cache and ``plan=true`` says ``file `data/train.csv` changed``.

* a local file: the xxh3-128 hash of its bytes. Hashing a 2 GB file on every run would cost more
  than most steps, so the hash is remembered with the file's stat stamp (size, mtime in ns, inode)
  and reused while the stamp is unchanged -- any write to the file changes the stamp;
* a local folder: every file under it (names and contents), hidden files included;
* an object-store URL (``s3://...``): the store's own identity of the object -- its ETag,
  checksum or version id, with its size -- read with one metadata request per object, never the
  bytes; a folder (prefix) combines every object under it.

Identities are computed when the pipeline is compiled. Computing them reads, never writes: the
remembered hashes are read from the cache store, and the newly computed ones are handed back for
the run (not a ``plan=true``) to save.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .hashing import Hasher, token

__all__ = ["FileIdentity", "FileStamp", "identify", "is_url"]

_BLOCK = 8 << 20


@dataclass(frozen=True)
class FileStamp:
    """A local file's stat stamp and the content hash it had with that stamp."""

    stamp: str
    digest: str


@dataclass(frozen=True)
class FileIdentity:
    """The content identity of a declared file input."""

    path: str  # as the config wrote it
    location: str  # the absolute path or URL it was read at
    digest: str
    files: int  # how many files it covers (1 for a file)


class StampSource(Protocol):
    """Where remembered stamps come from (the cache store, or a plain dict)."""

    def file_stamp(self, location: str) -> FileStamp | None: ...


class NoStamps:
    """A stamp source that remembers nothing (every file is hashed)."""

    def file_stamp(self, location: str) -> FileStamp | None:
        return None


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _stamp(st: os.stat_result) -> str:
    return f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}"


def _hash_file(path: str) -> str:
    h = Hasher()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    return h.hexdigest()


def _local_file(path: str, known: StampSource, fresh: dict[str, FileStamp]) -> str:
    stamp = _stamp(os.stat(path))
    hit = known.file_stamp(path)
    if hit is not None and hit.stamp == stamp:
        return hit.digest
    digest = _hash_file(path)
    if _stamp(os.stat(path)) == stamp:  # unchanged while it was read: safe to remember
        fresh[path] = FileStamp(stamp, digest)
    return digest


def _remote(url: str, storage_options: Mapping[str, Any]) -> tuple[str, int]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **dict(storage_options))
    info = fs.info(root)

    def ident(i: Mapping[str, Any]) -> list[Any]:
        tag = next(
            (i[k] for k in ("ETag", "etag", "checksum", "VersionId", "md5", "crc32c") if i.get(k)),
            None,
        )
        mtime = i.get("mtime") or i.get("LastModified") or i.get("last_modified")
        return [i.get("size"), str(tag) if tag is not None else str(mtime)]

    if info.get("type") == "directory":
        found = fs.find(root, detail=True)
        prefix = root.rstrip("/") + "/"
        items = sorted(
            (p[len(prefix) :] if p.startswith(prefix) else p, ident(i)) for p, i in found.items()
        )
        return token("folder", items), len(items)
    return token("object", ident(info)), 1


def identify(
    path: str,
    base: str,
    known: StampSource,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[FileIdentity, dict[str, FileStamp]]:
    """The identity of ``path`` (relative to ``base`` unless absolute or a URL).

    Args:
        known: remembered stamps by absolute path (see the module docstring).

    Returns:
        The identity, and the stamps computed now (to be saved by a run).

    Raises:
        FileNotFoundError: nothing is at ``path``.
    """
    fresh: dict[str, FileStamp] = {}
    if is_url(path):
        digest, count = _remote(path, storage_options or {})
        return FileIdentity(path, path, digest, count), fresh
    local = path[len("file://") :] if path.startswith("file://") else path
    location = os.path.abspath(os.path.join(base, os.path.expanduser(local)))
    if os.path.isdir(location):
        items = []
        for folder, dirs, names in os.walk(location):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, location).replace(os.sep, "/")
                items.append((rel, _local_file(full, known, fresh)))
        return FileIdentity(path, location, token("folder", items), len(items)), fresh
    if not os.path.exists(location):
        raise FileNotFoundError(location)
    return FileIdentity(path, location, _local_file(location, known, fresh), 1), fresh
