"""The few storage primitives the registry needs, over any fsspec filesystem.

fsspec gives one interface to local folders, memory and object stores; this module adds the
three operations it does not spell the same way everywhere:

* :meth:`Storage.write` -- replace a small record atomically (readers see the old or the new
  bytes, never a mix);
* :meth:`Storage.create` -- create-if-absent, the primitive behind version numbers and stage
  history: exactly one of several concurrent writers of one path succeeds;
* :meth:`Storage.writer` -- stream a large payload whose final name (its content hash) is only
  known at the end, and make it visible only when complete.

Object stores make a single PUT visible atomically and honour create-if-absent natively (fsspec's
``pipe_file(mode="create")``; s3fs sends ``If-None-Match: *``). A local folder has neither, so
there the bytes go to a temporary file in the same folder first and are published with
``os.replace`` (atomic rename) or ``os.link`` (atomic, fails if the name exists). That is the only
place the two kinds of filesystem differ.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

from .errors import RegistryError
from .redaction import redact_uri

__all__ = ["Storage", "open_storage", "redact_uri"]

T = TypeVar("T")


class Storage:
    """A folder on an fsspec filesystem, addressed by paths relative to its root."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        raw = str(uri)
        #: the URI as shown in messages and logs: credentials in it (``user:pass@``) are hidden
        self.uri = redact_uri(raw)
        self._raw = raw
        self._options = dict(storage_options or {})
        self._fs: Any = None
        if _plain_local_path(raw) and not self._options:
            # A plain folder path: the root is what fsspec's local filesystem would make of it,
            # and the filesystem object (and importing fsspec) waits until an operation that
            # is not done with the OS directly needs it.
            path = os.path.expanduser(raw) if raw.startswith("~") else raw
            self.local, self.remote = True, False
            self.root = os.path.abspath(path).rstrip("/") or "/"
            return
        fs, root = self._connect()
        self._fs = fs
        from fsspec.implementations.local import LocalFileSystem

        self.local = isinstance(fs, LocalFileSystem)
        #: True for filesystems reached over a network (object stores, ...), where a missing
        #: bucket or an unreachable endpoint must be told apart from an empty registry
        self.remote = not self.local and self._protocol() != "memory"
        if self.local:
            root = os.path.abspath(root)
        self.root = root.rstrip("/") or "/"

    def _protocol(self) -> str:
        return self._raw.split("://", 1)[0] if "://" in self._raw else "file"

    def _connect(self) -> tuple[Any, str]:
        import fsspec

        options = dict(self._options)
        protocol = self._protocol()
        if protocol not in ("file", "local", "memory"):
            # Listings cached by the filesystem would make exists() and ls() answer from a past
            # moment; version numbers and stage history must see other writers' creations.
            options.setdefault("use_listings_cache", False)
        try:
            fs, root = fsspec.core.url_to_fs(self._raw, **options)
        except ImportError as e:
            extra = {"s3": "mlops[s3]", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs"}.get(protocol)
            hint = f" Install it with: pip install '{extra}'" if extra else ""
            raise RegistryError(
                f"registry '{self.uri}': no filesystem for '{protocol}://' is installed.{hint}",
                self.uri,
            ) from e
        except (ValueError, TypeError) as e:
            raise RegistryError(f"registry '{self.uri}': {e}", self.uri) from e
        return fs, root

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (for a plain local folder, created on first use)."""
        if self._fs is None:
            self._fs = self._connect()[0]
        return self._fs

    def check(self) -> None:
        """Fail early, with one clear message, if the registry's location cannot be used.

        One listing of the root: an empty or absent root is a new registry; a missing bucket,
        an unreachable endpoint, bad credentials or a root that is a file raise RegistryError.

        Raises:
            RegistryError: naming the URI and what to fix.
        """

        def ls() -> None:
            try:
                self.fs.ls(self.root, detail=False)
            except FileNotFoundError as e:
                if _is_missing_bucket(e):
                    raise
            except NotADirectoryError:
                raise RegistryError(
                    f"registry '{self.uri}' is a file, not a folder; point registry.uri at a "
                    "folder",
                    self.uri,
                ) from None

        self._call("list", "", ls)

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    # -- paths ------------------------------------------------------------------------------------

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    @contextlib.contextmanager
    def _errors(self, what: str, rel: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as e:
            if not _is_missing_bucket(e):
                raise
            raise RegistryError(
                f"registry '{self.uri}': the bucket does not exist. Create it, or point "
                "registry.uri at an existing one.",
                self.uri,
            ) from e
        except (FileExistsError, RegistryError):
            raise
        except PermissionError as e:
            raise RegistryError(
                f"registry '{self.uri}': permission denied to {what} '{rel}' ({e}). Check the "
                "credentials in registry.storage_options or the folder's permissions.",
                self.uri,
            ) from e
        except Exception as e:
            if _is_missing_bucket(e):
                raise RegistryError(
                    f"registry '{self.uri}': the bucket does not exist. Create it, or point "
                    "registry.uri at an existing one.",
                    self.uri,
                ) from e
            raise RegistryError(
                f"registry '{self.uri}' is not reachable: cannot {what} '{rel}': "
                f"{type(e).__name__}: {e}",
                self.uri,
            ) from e

    def _call(self, what: str, rel: str, fn: Callable[[], T]) -> T:
        with self._errors(what, rel):
            return fn()

    # -- reads ------------------------------------------------------------------------------------

    # On a local folder the reads below call the OS directly: fsspec's per-call overhead (path
    # normalization, its file object) is most of the cost of reading a small record. Any error
    # other than a missing file is left to the fsspec call, so errors read exactly as before.

    def read(self, rel: str) -> bytes:
        """The bytes at ``rel``; FileNotFoundError if there are none."""
        if self.local:
            try:
                with open(self.path(rel), "rb") as f:
                    return f.read()
            except FileNotFoundError:
                raise
            except Exception:
                pass
        return self._call("read", rel, lambda: self.fs.cat_file(self.path(rel)))

    def open(self, rel: str) -> IO[bytes]:
        if self.local:
            try:
                return open(self.path(rel), "rb")  # noqa: SIM115 - the caller closes it
            except FileNotFoundError:
                raise
            except Exception:
                pass
        return self._call("read", rel, lambda: self.fs.open(self.path(rel), "rb"))

    def read_json(self, rel: str) -> Any | None:
        """The JSON document at ``rel``, or None if it does not exist (or is being written)."""
        try:
            data = self.read(rel)
        except FileNotFoundError:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return None  # only a crashed writer on a non-atomic filesystem leaves this

    def read_many(self, rels: list[str]) -> dict[str, bytes]:
        """The bytes of each of ``rels`` that exists, fetched concurrently where fsspec can."""
        if not rels:
            return {}
        paths = {self.path(r): r for r in rels}

        def cat() -> dict[str, bytes]:
            if self.local:  # plain reads beat fsspec's per-file overhead on a local folder
                out: dict[str, bytes] = {}
                for p, r in paths.items():
                    try:
                        with open(p, "rb") as f:
                            out[r] = f.read()
                    except (FileNotFoundError, NotADirectoryError):
                        pass
                return out
            found = self.fs.cat(list(paths), on_error="return")
            out = {}
            for p, data in found.items():
                key = paths.get(p) or paths.get(self.fs._strip_protocol(p))
                if key is None or isinstance(data, BaseException):
                    if isinstance(data, FileNotFoundError) and not _is_missing_bucket(data):
                        continue
                    if isinstance(data, BaseException):
                        raise data
                    continue
                out[key] = data
            return out

        return self._call("read", rels[0], cat)

    def read_json_many(self, rels: list[str]) -> dict[str, Any]:
        """Like :meth:`read_json` for many records; missing or unreadable ones are left out."""
        out: dict[str, Any] = {}
        for rel, data in self.read_many(rels).items():
            try:
                out[rel] = json.loads(data)
            except ValueError:
                continue
        return out

    def exists(self, rel: str) -> bool:
        if self.local:  # fsspec's local exists() is a stat that answers False on any error
            return os.path.exists(self.path(rel))
        return self._call("check", rel, lambda: self.fs.exists(self.path(rel)))

    def has_record(self, rel: str) -> bool:
        """True if the small record ``rel`` exists: the cheapest test on each filesystem.

        On object stores a GET of a few bytes is one request, where ``exists`` may take two (it
        also asks whether ``rel`` is a folder).
        """
        if not self.remote:
            return self.exists(rel)
        try:
            self.read(rel)
        except FileNotFoundError:
            return False
        return True

    def size(self, rel: str) -> int | None:
        if self.local:
            try:
                return os.stat(self.path(rel)).st_size
            except FileNotFoundError:
                return None
            except Exception:
                pass
        try:
            return int(self._call("stat", rel, lambda: self.fs.size(self.path(rel))))
        except FileNotFoundError:
            return None

    def stamp(self, rel: str) -> str | None:
        """A cheap identity of the file at ``rel`` that changes whenever its bytes do, read
        without reading them (None if there is no file): on a local folder its size, mtime and
        ctime in ns and inode (ctime cannot be set back by hand); on an object store its size and
        ETag or checksum."""
        if self.local:
            try:
                st = os.stat(self.path(rel))
            except (FileNotFoundError, NotADirectoryError):
                return None
            return f"{st.st_size}-{st.st_mtime_ns}-{st.st_ctime_ns}-{st.st_ino}"
        try:
            info = self._call("stat", rel, lambda: self.fs.info(self.path(rel)))
        except FileNotFoundError:
            return None
        tag = next(
            (info[k] for k in ("ETag", "etag", "checksum", "VersionId", "md5") if info.get(k)),
            info.get("mtime") or info.get("LastModified") or info.get("created"),
        )
        return f"{info.get('size')}-{tag}"

    def list(self, rel: str) -> list[str]:
        """Sorted names directly under ``rel`` (files and folders); [] if it does not exist."""
        if self.local:
            try:
                with os.scandir(self.path(rel)) as it:
                    return sorted(e.name for e in it)
            except FileNotFoundError:
                return []
            except Exception:
                pass  # not a folder, or an error: fsspec answers (and reports) as before

        def ls() -> list[str]:
            try:
                entries = self.fs.ls(self.path(rel), detail=False, refresh=True)
            except TypeError:  # filesystems without `refresh`
                entries = self.fs.ls(self.path(rel), detail=False)
            except FileNotFoundError as e:
                if _is_missing_bucket(e):
                    raise
                return []
            return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

        return self._call("list", rel, ls)

    def walk_files(self, rel: str) -> dict[str, int]:
        """Every file below ``rel`` (relative to the root) with its size."""

        return {path: size for path, (size, _) in self.walk(rel).items()}

    def walk(self, rel: str) -> dict[str, tuple[int, float | None]]:
        """Every file below ``rel`` (relative to the root): its size and modification time."""

        def find() -> dict[str, tuple[int, float | None]]:
            try:
                found = self.fs.find(self.path(rel), detail=True)
            except FileNotFoundError as e:
                if _is_missing_bucket(e):
                    raise
                return {}
            prefix = self.root.rstrip("/") + "/"
            return {
                (p[len(prefix) :] if p.startswith(prefix) else p): (
                    int(i.get("size") or 0),
                    _mtime(i),
                )
                for p, i in found.items()
                if i.get("type", "file") == "file"
            }

        return self._call("list", rel, find)

    # -- writes -----------------------------------------------------------------------------------

    def _tmp(self, rel: str) -> str:
        folder, _, name = rel.rpartition("/")
        return (
            f"{folder}/.tmp-{name}-{uuid.uuid4().hex}"
            if folder
            else f".tmp-{name}-{uuid.uuid4().hex}"
        )

    def write(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel`` atomically, replacing what was there."""
        with self._errors("write", rel):
            if self.local:
                tmp = self.path(self._tmp(rel))
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                os.replace(tmp, self.path(rel))
            else:
                self.fs.pipe_file(self.path(rel), data)

    def write_json(self, rel: str, doc: Any) -> None:
        self.write(rel, _dumps(doc))

    def create(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` with ``data`` unless it exists; True if this call created it.

        Atomic and exclusive: of several concurrent callers exactly one gets True, and a reader
        never sees a partial file. ``data`` must not be empty (an empty create-if-absent upload
        is not exclusive on every object store).
        """
        if not data:
            raise ValueError("create() needs a non-empty payload")
        with self._errors("create", rel):
            if self.local:
                tmp = self.path(self._tmp(rel))
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                with open(tmp, "wb") as f:
                    f.write(data)
                try:
                    os.link(tmp, self.path(rel))
                    return True
                except FileExistsError:
                    return False
                finally:
                    os.unlink(tmp)
            try:
                self.fs.pipe_file(self.path(rel), data, mode="create")
                return True
            except FileExistsError:
                return False

    def create_json(self, rel: str, doc: Any) -> bool:
        return self.create(rel, _dumps(doc))

    @contextlib.contextmanager
    def writer(self) -> Iterator[_PendingWrite]:
        """Stream bytes whose final name is decided at the end: ``pending.commit(rel)``.

        Nothing is visible under the final name until ``commit``; an exception or a crash leaves
        at most a temporary file (local) or nothing (object stores).
        """
        pending = _PendingWrite(self)
        try:
            yield pending
        finally:
            pending.discard()

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call("delete", rel, lambda: self.fs.rm(self.path(rel), recursive=True))


class _PendingWrite:
    """A payload being written; see :meth:`Storage.writer`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.tmp: str | None = None
        if storage.local:
            folder = storage.path("objects/tmp")
            os.makedirs(folder, exist_ok=True)
            self.tmp = f"{folder}/{uuid.uuid4().hex}"
            self.file: IO[bytes] = open(self.tmp, "wb")  # noqa: SIM115 - closed in commit/discard
        else:
            self.file = io.BytesIO()

    def commit(self, rel: str, *, exist_ok: bool = True) -> None:
        """Publish the bytes under ``rel``; an existing file of that name is kept (same content)."""
        st = self.storage
        with st._errors("write", rel):
            if self.tmp is not None:
                self.file.close()
                final = st.path(rel)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(self.tmp, final)
                self.tmp = None
            else:
                assert isinstance(self.file, io.BytesIO)
                st.fs.pipe_file(st.path(rel), self.file.getvalue())
                self.file = io.BytesIO()

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()
        if self.tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
            self.tmp = None


def _mtime(info: dict[str, Any]) -> float | None:
    """A file's modification time from an fsspec info dict, whatever the backend calls it."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if value is not None and hasattr(value, "timestamp"):
            return float(value.timestamp())
    return None


def _plain_local_path(raw: str) -> bool:
    """True for a POSIX folder path with no protocol (fsspec reads it as a local folder)."""
    return os.sep == "/" and ":" not in raw and bool(raw)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode()


def _is_missing_bucket(e: BaseException) -> bool:
    text = f"{type(e).__name__} {e}"
    return "NoSuchBucket" in text or "bucket does not exist" in text.lower()


def open_storage(uri: str, storage_options: dict[str, Any] | None = None) -> Storage:
    """The storage for ``uri`` (a folder path or any fsspec URL)."""
    return Storage(uri, storage_options)
