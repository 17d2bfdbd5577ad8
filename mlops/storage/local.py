"""A folder on this machine, through the OS directly.

Every operation is one or two system calls: a record is written to a temporary file in its own
folder and published with ``os.replace`` (atomic rename) or ``os.link`` (atomic, and fails if the
name exists: create-if-absent); listings are ``os.scandir``. Nothing imports fsspec, whose
per-call overhead (path normalization, its file objects) would be most of the cost of reading a
small record.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from typing import IO, Any

from ..errors import RegistryError
from .base import PendingWrite, Storage, redact_uri, tmp_name

__all__ = ["LocalStorage"]

#: where streamed payloads are written before they get their name (same filesystem as the
#: objects, so that publishing them is a rename)
STAGING = "objects/tmp"
#: what ``os.link`` says on a filesystem (or between folders) that cannot hard-link
_NO_LINKS = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})


class LocalStorage(Storage):
    """A folder on this machine.

    Args:
        uri: a path (``~`` expanded, relative to the current folder) or a ``file://`` URL.
    """

    local = True
    remote = False

    def __init__(self, uri: str) -> None:
        self.uri = redact_uri(str(uri))
        path = str(uri).removeprefix("file://")
        self.root = os.path.abspath(os.path.expanduser(path)).rstrip("/") or "/"
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        """fsspec's local filesystem, made on first use (this backend does not need it)."""
        if self._fs is None:
            from fsspec.implementations.local import LocalFileSystem

            self._fs = LocalFileSystem()
        return self._fs

    def check(self) -> None:
        with self._errors("open", ""):
            try:
                st = os.stat(self.root)
            except FileNotFoundError:
                return  # a new registry: its folder is made on the first write
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(self.root)

    def _translate(self, error: BaseException, what: str, rel: str) -> BaseException | None:
        if isinstance(error, (NotADirectoryError, FileExistsError)):
            # a file where a folder should be: the root itself, or a folder inside the registry
            where = "" if rel == "" else f" (or a folder on the way to '{rel}')"
            return RegistryError(
                f"registry '{self.uri}': cannot {what} '{rel}': '{self.root}'{where} is a file, "
                "not a folder. Point registry.uri at a folder.",
                self.uri,
            )
        if isinstance(error, OSError) and not isinstance(
            error, (FileNotFoundError, PermissionError)
        ):
            # a full disk, a name too long, an I/O error: the folder is there, it said no
            return RegistryError(
                f"registry '{self.uri}': cannot {what} '{rel}': {error.strerror or error}",
                self.uri,
            )
        return None

    # -- reads ------------------------------------------------------------------------------------

    def read(self, rel: str) -> bytes:
        with self._errors("read", rel), open(self.path(rel), "rb") as f:
            return f.read()

    def open(self, rel: str) -> IO[bytes]:
        with self._errors("read", rel):
            return open(self.path(rel), "rb")  # noqa: SIM115 - the caller closes it

    def read_many(self, rels: list[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for rel in rels:
            with contextlib.suppress(FileNotFoundError):
                out[rel] = self.read(rel)
        return out

    def _stat(self, rel: str) -> os.stat_result | None:
        with self._errors("check", rel):
            try:
                return os.stat(self.path(rel))
            except (FileNotFoundError, NotADirectoryError):
                return None

    def exists(self, rel: str) -> bool:
        return self._stat(rel) is not None

    def size(self, rel: str) -> int | None:
        st = self._stat(rel)
        return None if st is None else st.st_size

    def stamp(self, rel: str) -> str | None:
        st = self._stat(rel)
        # a rename onto the name gives a new inode; a rewrite in place a new mtime and ctime (or
        # size); ctime cannot be set back by hand (os.utime can restore mtime, not ctime)
        if st is None:
            return None
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"

    def list(self, rel: str) -> list[str]:
        with self._errors("list", rel):
            try:
                with os.scandir(self.path(rel)) as it:
                    return sorted(e.name for e in it)
            except FileNotFoundError:
                return []

    def walk(self, rel: str) -> dict[str, tuple[int, float | None]]:
        out: dict[str, tuple[int, float | None]] = {}
        prefix = len(self.root) + 1

        def visit(folder: str) -> None:
            try:
                it = os.scandir(folder)
            except (FileNotFoundError, NotADirectoryError):
                return  # absent, or removed while walking
            with it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        visit(e.path)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            st = e.stat()
                            out[e.path[prefix:]] = (st.st_size, st.st_mtime)

        with self._errors("list", rel):
            visit(self.path(rel))
        return dict(sorted(out.items()))

    # -- writes -----------------------------------------------------------------------------------

    def _stage(self, rel: str, data: bytes) -> str:
        """``data`` in a new temporary file beside ``rel``; its OS path."""
        tmp = self.path(tmp_name(rel))
        try:
            try:
                f = open(tmp, "wb")  # noqa: SIM115 - closed below
            except FileNotFoundError:  # the folder is new: make it (rarely; a write is hot)
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                f = open(tmp, "wb")  # noqa: SIM115
            with f:
                f.write(data)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return tmp

    def write(self, rel: str, data: bytes) -> None:
        with self._errors("write", rel):
            tmp = self._stage(rel, data)
            try:
                os.replace(tmp, self.path(rel))
            except BaseException:
                os.unlink(tmp)
                raise

    def create(self, rel: str, data: bytes) -> bool:
        if not data:
            raise ValueError("create() needs a non-empty payload")
        with self._errors("create", rel):
            tmp = self._stage(rel, data)
            try:
                os.link(tmp, self.path(rel))
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
            return True

    def link(self, src: str, dst: str) -> bool:
        with self._errors("write", dst):
            source, target = self.path(src), self.path(dst)
            try:
                try:
                    os.link(source, target)  # a new name: one system call, no file made
                    return True
                except FileNotFoundError:
                    if not os.path.exists(source):
                        return False
                    os.makedirs(os.path.dirname(target), exist_ok=True)  # a new folder (rarely)
                    try:
                        os.link(source, target)
                    except FileNotFoundError:
                        return False  # the source's file was being replaced (see below)
                    return True
            except FileExistsError:
                pass
            except OSError as e:
                if e.errno in _NO_LINKS:
                    return False  # a filesystem without hard links: the caller writes a copy
                raise
            # Replace the existing name atomically: link beside it, rename over it.
            tmp = self.path(tmp_name(dst))
            try:
                os.link(source, tmp)
            except FileNotFoundError:
                # Linux refuses to link a file whose last name a concurrent writer just replaced
                # (ENOENT, though the name exists again): the caller writes the record instead
                return False
            try:
                os.replace(tmp, target)
            finally:
                # a rename onto another name of the same file does nothing and leaves tmp
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            return True

    def _start_write(self) -> PendingWrite:
        with self._errors("write", STAGING):
            return _LocalPendingWrite(self)

    def move(self, src: str, dst: str) -> None:
        with self._errors("move", src):
            os.makedirs(os.path.dirname(self.path(dst)), exist_ok=True)
            os.replace(self.path(src), self.path(dst))

    def delete(self, rel: str) -> None:
        with self._errors("delete", rel):
            try:
                os.unlink(self.path(rel))
            except FileNotFoundError:
                return
            except (IsADirectoryError, PermissionError) as e:
                # unlink of a folder is EISDIR on Linux, EPERM on macOS
                if not os.path.isdir(self.path(rel)):
                    raise e from None
                shutil.rmtree(self.path(rel), ignore_errors=False)


class _LocalPendingWrite(PendingWrite):
    """A payload written to ``objects/tmp/`` and renamed into place on commit.

    Folders are made only when a call fails for want of one (a write is hot: a ``mkdir`` that
    finds the folder there is a system call per artifact for nothing).
    """

    def __init__(self, storage: LocalStorage) -> None:
        self._storage = storage
        folder = storage.path(STAGING)
        self._tmp: str | None = f"{folder}/{os.urandom(16).hex()}"
        try:
            self.file = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/discard
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            self.file = open(self._tmp, "wb")  # noqa: SIM115

    def commit(self, rel: str) -> None:
        if self._tmp is None:
            raise ValueError("this payload was already committed or discarded")
        with self._storage._errors("write", rel):
            self.file.close()
            final = self._storage.path(rel)
            try:
                os.replace(self._tmp, final)
            except FileNotFoundError:  # the object's folder is new (or the payload is gone)
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(self._tmp, final)
            self._tmp = None

    def discard(self) -> None:
        # Closing flushes what is buffered, which fails again on a full disk: the temporary
        # file goes all the same (the error that brought us here is already on its way).
        with contextlib.suppress(OSError):
            self.file.close()
        if self._tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = None
