"""What a computation read from disk, and whether it still reads the same: the base of memos
that are never stale.

A memoized result (a step's code fingerprint, see :mod:`mlops.signature_cache`) is valid only
while everything it was computed from is unchanged. While it is computed, the readers note each
*dependency* with the digest of what they read:

* a source file, with the digest of the very bytes that were parsed (:func:`note_file`), so an
  edit between reading and recording cannot slip through;
* a folder that a module lookup searched (:func:`note_dirs`): the digest of the names a lookup
  can find in it (module files, package folders, distribution metadata), taken *before* the
  lookup, so a module file created, removed or renamed there (a new module shadowing another, a
  package gaining a submodule) changes it.

A result is reused only if every dependency's current digest is the recorded one.

**Cheap, and never fooled by a stamp.** Reading every file again to digest it would cost what
the memo saves, so a digest is remembered with the path's stat stamp (size, ``mtime_ns``,
``ctime_ns``, inode) and the time it was taken: a modification time set back by hand
(``os.utime``, ``touch -d``) still moves the change time, which no user can set. The stamp alone
is trusted only when the file's modification time is more than two seconds older than that time
(and so is the change time): two writes within one tick of the file system's clock (two seconds
on FAT, one on some network file systems) can leave size and time unchanged, so a recent stamp
says nothing and the content is digested again (git calls this the racy-clean problem). A stamp
that changed with the content unchanged (``touch``, a checkout) costs one read and keeps the
memo.

**Sessions.** Within a :func:`session` (one compile), each path is stat-ed and digested at most
once: a 10,000-step pipeline over 100 modules costs about 100 ``stat`` calls. A session also
starts module lookups afresh (:func:`on_session_start` hooks), so that a folder that changed
since the last compile is searched again.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .hashing import hash_bytes

__all__ = [
    "RACY_NS",
    "Dep",
    "Stamp",
    "current_digest",
    "file_digest",
    "in_session",
    "known_stamps",
    "learn_stamps",
    "note",
    "note_dirs",
    "note_file",
    "on_session_start",
    "recording",
    "recording_active",
    "session",
    "session_memo",
    "still_valid",
    "take_refreshed",
]

#: A stamp whose modification time is this close to when it was read is not trusted alone.
RACY_NS = 2_000_000_000

#: ``(path, digest)``; digest None: the path did not exist.
Dep = tuple[str, str | None]


@dataclass(frozen=True)
class Stamp:
    """A path's stat stamp, the digest of its content then, and when that digest was taken."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    digest: str
    taken_ns: int

    def trusted(self) -> bool:
        """Whether the stamp alone vouches for the digest (see the module docstring)."""
        return self.taken_ns - max(self.mtime_ns, self.ctime_ns) > RACY_NS

    def matches(self, info: os.stat_result) -> bool:
        """Whether ``info`` is the stat of the same version of the path."""
        return (
            self.mtime_ns == info.st_mtime_ns
            and self.size == info.st_size
            and self.ctime_ns == info.st_ctime_ns
            and self.ino == info.st_ino
        )


_STAMPS: dict[str, Stamp] = {}
_lock = threading.Lock()
_hooks: list[Callable[[], None]] = []


class _State(threading.local):
    def __init__(self) -> None:
        self.depth = 0
        self.digests: dict[str, str | None] = {}
        self.recorders: list[set[Dep]] = []
        self.refreshed = False  # a stamp was re-taken by reading content in this session
        self.memo: dict[object, object] = {}


_state = _State()


def on_session_start(hook: Callable[[], None]) -> None:
    """Call ``hook`` when an outermost session starts (to forget cached module lookups)."""
    _hooks.append(hook)


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Within it, each path is stat-ed and digested once. Sessions nest; the outermost counts."""
    st = _state
    if st.depth == 0:
        st.digests = {}
        st.memo = {}
        st.refreshed = False
        for hook in _hooks:
            hook()
    st.depth += 1
    try:
        yield
    finally:
        st.depth -= 1
        if st.depth == 0:
            st.digests = {}
            st.memo = {}


def in_session() -> bool:
    """Whether a session is open in this thread."""
    return _state.depth > 0


def session_memo() -> dict[object, object] | None:
    """A dictionary that lives as long as the current session (None outside one): for values
    that are cheap to keep for one compile but may change between compiles."""
    st = _state
    return st.memo if st.depth else None


def take_refreshed() -> bool:
    """Whether a stamp was re-taken from content since the last call (the disk memo is then
    worth rewriting, so that the next process trusts the new stamp)."""
    st = _state
    flag, st.refreshed = st.refreshed, False
    return flag


_MODULE_SUFFIXES = tuple(importlib.machinery.all_suffixes())
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def _importable(entry: os.DirEntry[str]) -> str | None:
    """How a folder entry can matter to a module lookup; None if it cannot: a module file, a
    folder named like a package, or a distribution's metadata (names that are not identifiers,
    such as ``reg-1``, ``.git`` or ``__pycache__``, cannot be imported)."""
    name = entry.name
    if name.endswith(_METADATA_SUFFIXES):
        return name
    if entry.is_dir():
        return f"{name}/" if name.isidentifier() and name != "__pycache__" else None
    if name.endswith(_MODULE_SUFFIXES) and name.partition(".")[0].isidentifier():
        return name
    return None


def _listing_digest(path: str) -> str:
    """The digest of what a module lookup can find in folder ``path`` (see :func:`_importable`):
    a registry or an output folder created next to the project's modules does not change it."""
    with os.scandir(path) as it:
        names = sorted(n for n in map(_importable, it) if n is not None)
    return "d" + hash_bytes("\0".join(names).encode("utf-8", "surrogateescape"))


def _content_digest(path: str, st: os.stat_result) -> str:
    if stat.S_ISDIR(st.st_mode):
        return _listing_digest(path)
    if not stat.S_ISREG(st.st_mode):
        return f"s{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
    with open(path, "rb") as f:
        return "f" + hash_bytes(f.read())


def file_digest(data: bytes) -> str:
    """The digest of a file whose content is ``data`` (as :func:`current_digest` gives it)."""
    return "f" + hash_bytes(data)


def current_digest(path: str) -> str | None:
    """The digest of ``path`` now (once per session); None if it does not exist."""
    st = _state
    if path in st.digests:
        return st.digests[path]
    taken = time.time_ns()  # before stat and read: a later write has a later mtime
    try:
        info = os.stat(path)
        known = _STAMPS.get(path)
        if known is not None and known.matches(info) and known.trusted():
            digest: str | None = known.digest
        else:
            digest = _content_digest(path, info)
            stamp = Stamp(
                info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, digest, taken
            )
            with _lock:
                _STAMPS[path] = stamp
            if stamp.trusted():
                st.refreshed = True
    except OSError:
        digest = None
    if st.depth:
        st.digests[path] = digest
    return digest


def known_stamps(paths: Iterable[str]) -> dict[str, Stamp]:
    """The remembered stamps of ``paths`` (to store them with a memo on disk)."""
    return {p: _STAMPS[p] for p in paths if p in _STAMPS}


def learn_stamps(stamps: dict[str, Stamp]) -> None:
    """Remember stamps read back from disk, unless a later one is known in this process."""
    with _lock:
        for path, stamp in stamps.items():
            known = _STAMPS.get(path)
            if known is None or known.taken_ns < stamp.taken_ns:
                _STAMPS[path] = stamp


@contextlib.contextmanager
def recording(into: set[Dep]) -> Iterator[set[Dep]]:
    """Collect the dependencies noted while inside (also into enclosing recordings)."""
    recorders = _state.recorders
    recorders.append(into)
    try:
        yield into
    finally:
        recorders.pop()


def note(deps: Iterable[Dep]) -> None:
    """Add dependencies to every active recording."""
    for rec in _state.recorders:
        rec.update(deps)


def note_file(path: str, digest: str) -> None:
    """Note that the bytes of ``path`` whose digest is ``digest`` were read."""
    for rec in _state.recorders:
        rec.add((path, digest))


def note_dirs(paths: Iterable[str]) -> None:
    """Note that a lookup searched ``paths`` (digested now, before the lookup reads them)."""
    st = _state
    if not st.depth and not st.recorders:
        return
    # digested in a session even when nothing records: a module lookup cached from earlier in
    # the session must not be paired with a digest taken after it
    deps = [(p, current_digest(p)) for p in paths]
    for rec in st.recorders:
        rec.update(deps)


def still_valid(deps: Iterable[Dep]) -> bool:
    """Whether every dependency's digest is still the recorded one."""
    return all(current_digest(path) == digest for path, digest in deps)


def recording_active() -> bool:
    """Whether a recording is collecting dependencies (readers skip noting otherwise)."""
    return bool(_state.recorders)
