"""Any fsspec filesystem: memory, S3, GCS, Azure, … (and a ``file://`` folder, for tests only).

Each operation is one fsspec call: ``cat_file``, ``ls``, ``find``, ``pipe_file`` (a single PUT
is visible atomically on object stores), ``pipe_file(mode="create")`` for create-if-absent
(s3fs sends ``If-None-Match: *``). A streamed payload goes to a local temporary file first
(hashed as it is written, by the caller) and is then uploaded under its final name with
``put_file``, which s3fs does as a multipart upload of bounded parts: the object appears only
when the upload completes, and the payload is never held in memory whole.

The options a user gives (``registry.storage_options``) go to the filesystem unchanged, on top
of a few defaults: listings are never cached (version numbers and stage history must see other
writers' creations), and S3 gets bounded timeouts (:mod:`mlops.storage._s3`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import RegistryError
from . import _s3
from .base import PendingWrite, Storage, redact_uri

__all__ = ["FsspecStorage"]

#: filesystems that are not reached over a network
_NEAR = frozenset({"file", "local", "memory"})
#: packages that provide a protocol, for the install hint
_PACKAGES = {"s3": "mlops[s3]", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
#: keys of fsspec's info() that identify a file's content or version, best first
_STAMP_KEYS = ("ETag", "VersionId", "generation", "md5Hash", "crc32c", "content_md5", "checksum")
#: keys that at least change when a file is rewritten (filesystems without a content id)
_CHANGE_KEYS = ("size", "mtime", "ino", "created", "LastModified", "last_modified", "updated")


@dataclass(frozen=True)
class _Protocol:
    """What mlops adds to fsspec for one protocol; most protocols need nothing."""

    #: storage options under the user's (nested dicts merged key by key)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: called with each new filesystem object
    tune: Callable[[Any], None] | None = None
    #: check()'s request, where a listing cannot tell a wrong endpoint from an empty folder:
    #: ``probe(fs, root, uri, options)``
    probe: Callable[[Any, str, str, dict[str, Any]], None] | None = None
    #: keywords of put_file for streamed payloads
    upload: Mapping[str, Any] = field(default_factory=dict)
    #: the error to raise for a backend error that means more than it says (a "missing file"
    #: that is an answer from a server that is not S3): ``explain(error, fs, uri)``
    explain: Callable[[BaseException, Any, str], BaseException | None] | None = None


_S3 = _Protocol(
    defaults=_s3.DEFAULTS, tune=_s3.tune, probe=_s3.probe, upload=_s3.UPLOAD, explain=_s3.explain
)
_PROTOCOLS = {"s3": _S3, "s3a": _S3}
_NOTHING = _Protocol()


class FsspecStorage(Storage):
    """A folder on an fsspec filesystem.

    Args:
        uri: any fsspec URL (``s3://bucket/prefix``, ``memory://name``, ``file:///path``).
        storage_options: passed to the filesystem (endpoint, credentials, timeouts, …).

    Raises:
        RegistryError: no filesystem for the URL's protocol is installed, or the options are
            not accepted.
    """

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        raw = str(uri)
        self.uri = redact_uri(raw)
        self._protocol = raw.split("://", 1)[0] if "://" in raw else "file"
        self._adds = _PROTOCOLS.get(self._protocol, _NOTHING)
        self._options = _with_defaults(self._protocol, dict(storage_options or {}))
        self._fs, root = self._connect(raw)
        if self._adds.tune is not None:
            with self._errors("connect to", ""):
                self._adds.tune(self._fs)
        protocols = self._fs.protocol
        protocols = {protocols} if isinstance(protocols, str) else set(protocols)
        self.local = bool(protocols & {"file", "local"})
        self.remote = not protocols & _NEAR
        self.root = root.rstrip("/") or "/"

    def _connect(self, raw: str) -> tuple[Any, str]:
        import fsspec

        try:
            fs, root = fsspec.core.url_to_fs(raw, **self._options)
        except ImportError as e:
            extra = _PACKAGES.get(self._protocol)
            hint = f" Install it with: pip install '{extra}'" if extra else ""
            raise RegistryError(
                f"registry '{self.uri}': no filesystem for '{self._protocol}://' is installed."
                f"{hint}",
                self.uri,
            ) from e
        except (ValueError, TypeError) as e:
            raise RegistryError(f"registry '{self.uri}': {e}", self.uri) from e
        return fs, str(root)

    @property
    def fs(self) -> Any:
        return self._fs

    def check(self) -> None:
        with self._errors("list", ""):
            try:
                if self._adds.probe is not None:
                    self._adds.probe(self._fs, self.root, self.uri, self._options)
                elif self._fs.info(self.root).get("type") == "file":
                    raise NotADirectoryError(self.root)
            except FileNotFoundError as e:
                if not self._missing(e):
                    raise
            except NotADirectoryError:
                raise RegistryError(
                    f"registry '{self.uri}' is a file, not a folder; point registry.uri at a "
                    "folder",
                    self.uri,
                ) from None

    def _translate(self, error: BaseException, what: str, rel: str) -> BaseException | None:
        if _is_missing_bucket(error):
            return RegistryError(
                f"registry '{self.uri}': the bucket does not exist. Create it, or point "
                "registry.uri at an existing one.",
                self.uri,
            )
        if self._adds.explain is not None:
            return self._adds.explain(error, self._fs, self.uri)
        return None

    def _missing(self, error: FileNotFoundError) -> bool:
        """True if ``error`` means only that the file is not there (not a missing bucket, not a
        server that is not what the URL says)."""
        return self._translate(error, "", "") is None

    # -- reads ------------------------------------------------------------------------------------

    def read(self, rel: str) -> bytes:
        with self._errors("read", rel):
            return bytes(self._fs.cat_file(self.path(rel)))

    def open(self, rel: str) -> IO[bytes]:
        with self._errors("read", rel):
            f: IO[bytes] = self._fs.open(self.path(rel), "rb")
            return f

    def read_many(self, rels: list[str]) -> dict[str, bytes]:
        if not rels:
            return {}
        paths = {self.path(r): r for r in rels}
        out: dict[str, bytes] = {}
        with self._errors("read", rels[0]):
            found = self._fs.cat(list(paths), on_error="return")
            for p, data in found.items():
                rel = paths.get(p) or paths.get(self._fs._strip_protocol(p))
                if isinstance(data, FileNotFoundError) and self._missing(data):
                    continue
                if isinstance(data, BaseException):
                    raise data
                if rel is not None:
                    out[rel] = bytes(data)
        return out

    def exists(self, rel: str) -> bool:
        with self._errors("check", rel):
            return bool(self._fs.exists(self.path(rel)))

    def has_record(self, rel: str) -> bool:
        """One GET of the record: on object stores ``exists`` may take two requests (it also
        asks whether ``rel`` is a folder)."""
        try:
            self.read(rel)
        except FileNotFoundError:
            return False
        return True

    def _info(self, rel: str) -> dict[str, Any] | None:
        with self._errors("check", rel):
            try:
                info: dict[str, Any] = self._fs.info(self.path(rel))
            except FileNotFoundError as e:
                if not self._missing(e):
                    raise
                return None
        return info if info.get("type", "file") == "file" else None

    def size(self, rel: str) -> int | None:
        info = self._info(rel)
        return None if info is None else int(info.get("size") or 0)

    def stamp(self, rel: str) -> str | None:
        info = self._info(rel)
        if info is None:
            return None
        for key in _STAMP_KEYS:
            if info.get(key) not in (None, ""):
                return f"{key}={info[key]}"
        return ",".join(f"{k}={info[k]}" for k in _CHANGE_KEYS if info.get(k) is not None)

    def list(self, rel: str) -> list[str]:
        with self._errors("list", rel):
            try:
                entries = self._fs.ls(self.path(rel), detail=False)
            except FileNotFoundError as e:
                if not self._missing(e):
                    raise
                return []
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def walk(self, rel: str) -> dict[str, tuple[int, float | None]]:
        with self._errors("list", rel):
            try:
                found = self._fs.find(self.path(rel), detail=True)
            except FileNotFoundError as e:
                if not self._missing(e):
                    raise
                return {}
        prefix = self.root.rstrip("/") + "/"
        return {
            (p[len(prefix) :] if p.startswith(prefix) else p): (int(i.get("size") or 0), _mtime(i))
            for p, i in sorted(found.items())
            if i.get("type", "file") == "file"
        }

    # -- writes -----------------------------------------------------------------------------------

    def write(self, rel: str, data: bytes) -> None:
        with self._errors("write", rel):
            self._fs.pipe_file(self.path(rel), data)

    def create(self, rel: str, data: bytes) -> bool:
        if not data:
            raise ValueError("create() needs a non-empty payload")
        with self._errors("create", rel):
            try:
                self._fs.pipe_file(self.path(rel), data, mode="create")
            except FileExistsError:
                return False
            return True

    def _start_write(self) -> PendingWrite:
        with self._errors("write", "a temporary file"):
            return _UploadOnCommit(self)

    def move(self, src: str, dst: str) -> None:
        with self._errors("move", src):
            self._fs.mv(self.path(src), self.path(dst))

    def delete(self, rel: str) -> None:
        with self._errors("delete", rel):
            try:
                self._fs.rm(self.path(rel), recursive=True)
            except FileNotFoundError as e:
                if not self._missing(e):
                    raise


class _UploadOnCommit(PendingWrite):
    """A payload written to a local temporary file, uploaded under its final name on commit."""

    def __init__(self, storage: FsspecStorage) -> None:
        self._storage = storage
        fd, self._tmp = tempfile.mkstemp(prefix="mlops-upload-")
        self._done = False
        self.file = os.fdopen(fd, "wb")

    def commit(self, rel: str) -> None:
        if self._done:
            raise ValueError("this payload was already committed or discarded")
        st = self._storage
        self.file.close()
        with st._errors("write", rel):
            # on S3 a multipart upload of bounded parts, completed last: only then does the
            # object exist (see _s3.UPLOAD)
            st.fs.put_file(self._tmp, st.path(rel), **st._adds.upload)
        self.discard()

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # a full disk fails the flush again: unlink anyway
            self.file.close()
        if not self._done:
            self._done = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)


def _with_defaults(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` on top of mlops' defaults for ``protocol`` (nested dicts merged key by key)."""
    defaults = copy.deepcopy(dict(_PROTOCOLS.get(protocol, _NOTHING).defaults))
    if protocol not in _NEAR:
        # a cached listing would make exists() and ls() answer from a past moment
        defaults["use_listings_cache"] = False
    return _merge(defaults, options)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _mtime(info: dict[str, Any]) -> float | None:
    """A file's modification time from an fsspec info dict, whatever the backend calls it."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if value is not None and hasattr(value, "timestamp"):
            return float(value.timestamp())
    return None


def _is_missing_bucket(e: BaseException) -> bool:
    text = f"{type(e).__name__} {e}"
    return "NoSuchBucket" in text or "bucket does not exist" in text.lower()
