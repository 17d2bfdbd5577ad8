"""The signature memo: a step's static signature and code fingerprint, remembered and never stale.

Reading a step's signature and the code it reaches (:mod:`mlops.fingerprint`) walks the syntax
trees of its module and of every project module it reaches; done on every compile, it was most
of what compiling a big cached pipeline cost. This module remembers the result of each
computation with what it was computed from (:mod:`mlops._deps`): the digest of every source file
it parsed and the listing of every folder a module lookup searched. A result is handed back only
if each of those is unchanged -- checked with one ``stat`` per path and compile, the content
digested again when a stamp changed or is too recent to vouch for it -- so a memoized
fingerprint is always the one a computation would give.

**Two levels.** In the process, results live in a dictionary: a second compile costs about a
dictionary lookup per step. On disk, so that a fresh process (the command line) benefits, one
file per step module under ``$MLOPS_CACHE_DIR/signatures/<environment>/`` (default
``$XDG_CACHE_HOME/mlops``, else ``~/.cache/mlops``, the compose cache's root), where
``<environment>`` is a digest of the memo's format, the mlops and Python versions, the Python
executable, the module search path and the stamps of mlops' own fingerprinting code (an
editable install changes code without changing its version). A file holds its results, the
dependencies they were computed from, and the stamps last seen for those paths, behind a
checksum; it is written atomically (a temporary file, then a rename), so concurrent processes
never read half a file, and a file that is damaged, truncated or of another format is ignored
and rewritten, never trusted and never fatal.

**Not memoized:** library versions (``dist:NAME`` parts). The memo keeps which top-level
library modules a step imports; their distributions and versions are read again in each
process (:mod:`mlops.libraries`, cached by the ``sys.path`` folders' stamps), since an upgrade
changes no project file.

``MLOPS_SIGNATURE_CACHE=0`` turns the memo off (each compile computes every signature).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _deps
from ._deps import Dep, Stamp
from .hashing import hash_bytes, token
from .user_cache import cache_root, switched_on

__all__ = ["Entry", "cache_dir", "changed", "enabled", "lookup", "session"]

#: Bump when an entry's shape or what a computation depends on changes.
FORMAT = 1
#: Environment folders kept (the most recently written); one per interpreter and search path.
KEEP_ENVIRONMENTS = 16
_ENV_OFF = "MLOPS_SIGNATURE_CACHE"
_MAGIC = "mlops-signatures"
_MLOPS_DIR = os.path.dirname(os.path.abspath(__file__))
#: mlops' own modules whose code decides a fingerprint
_CODE = (
    "_deps.py",
    "_reach.py",
    "_source.py",
    "_units.py",
    "fingerprint.py",
    "hashing.py",
    "libraries.py",
    "signature_cache.py",
)


@dataclass
class Entry:
    """One memoized computation: a JSON-able ``value`` and the dependencies it was read from."""

    value: Any
    deps: tuple[Dep, ...]
    #: derived objects built from ``value`` in this process (for the caller; never stored)
    derived: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def enabled() -> bool:
    """False when ``MLOPS_SIGNATURE_CACHE=0`` (or ``false``/``off``/``no``) turns the memo off."""
    return switched_on(_ENV_OFF)


def cache_dir() -> Path:
    """The folder of the on-disk memo (next to the compose cache)."""
    return cache_root() / "signatures"


# --- in the process -------------------------------------------------------------------------

_lock = threading.Lock()
_MEMO: dict[str, dict[str, Entry]] = {}  # module -> key -> entry
_DISK: dict[tuple[str, str], dict[str, Entry] | None] = {}  # (environment, module) -> entries
_INTERN: dict[tuple[Dep, ...], tuple[Dep, ...]] = {}  # equal dependency lists share one tuple


class _Session(threading.local):
    def __init__(self) -> None:
        self.depth = 0
        self.enabled = True
        self.env: str | None = None
        self.dirty: set[str] = set()  # modules whose disk file should be rewritten
        self.verdicts: dict[int, bool] = {}  # id(interned deps) -> still valid


_session = _Session()


@contextlib.contextmanager
def session() -> Iterator[None]:
    """One compile: each path is checked once, and the disk memo is written at the end."""
    st = _session
    outermost = st.depth == 0
    with _deps.session():
        if outermost:
            st.env, st.dirty, st.verdicts = None, set(), {}
            st.enabled = enabled()
        st.depth += 1
        try:
            yield
        finally:
            st.depth -= 1
            if outermost:
                try:
                    _flush(st)
                finally:
                    st.env, st.dirty, st.verdicts = None, set(), {}


def _valid(deps: tuple[Dep, ...]) -> bool:
    verdicts = _session.verdicts
    known = verdicts.get(id(deps))
    if known is None:
        known = verdicts[id(deps)] = _deps.still_valid(deps)
    return known


def _intern(deps: tuple[Dep, ...]) -> tuple[Dep, ...]:
    with _lock:
        return _INTERN.setdefault(deps, deps)


def lookup(module: str, key: str, compute: Callable[[], Any]) -> Entry:
    """The entry for ``key`` of step module ``module``, computed by ``compute`` if no memoized
    one is still valid. ``compute`` returns a JSON-able value (exceptions are not memoized)."""
    st = _session
    if st.depth == 0:
        with session():
            return lookup(module, key, compute)
    if not st.enabled:
        return Entry(compute(), ())
    entry = _MEMO.get(module, {}).get(key)
    if entry is not None and _valid(entry.deps):
        return entry
    return _refresh(module, key, compute)


def _refresh(module: str, key: str, compute: Callable[[], Any]) -> Entry:
    """The entry of the disk memo if it is still valid, else a new computation."""
    stored = _from_disk(module, key)
    if stored is not None:
        _deps.take_refreshed()
        if _valid(stored.deps):
            if _deps.take_refreshed():
                _session.dirty.add(module)  # stamps re-taken: let the next process trust them
            with _lock:
                _MEMO.setdefault(module, {})[key] = stored
            return stored
    deps: set[Dep] = set()
    with _deps.recording(deps):
        value = compute()
    entry = Entry(value, _intern(tuple(sorted(deps, key=lambda d: (d[0], d[1] or "")))))
    with _lock:
        _MEMO.setdefault(module, {})[key] = entry
    _session.dirty.add(module)
    return entry


def changed(module: str) -> None:
    """An entry of ``module`` was completed in place (a value derived from it and stored with
    it): write its memo file at the end of the session."""
    if _session.depth:
        _session.dirty.add(module)


# --- on disk --------------------------------------------------------------------------------


def _environment() -> str:
    """The digest naming the memo's folder (see the module docstring); once per session."""
    st = _session
    if st.env is None:
        code = []
        for name in _CODE:
            try:
                info = os.stat(os.path.join(_MLOPS_DIR, name))
                code.append((name, info.st_size, info.st_mtime_ns))
            except OSError:
                code.append((name, -1, -1))
        mlops = sys.modules.get("mlops")
        st.env = token(
            FORMAT,
            getattr(mlops, "__version__", ""),
            sys.version,
            sys.executable,
            sys.implementation.cache_tag or "",
            [os.path.abspath(p) if p else os.getcwd() for p in sys.path if isinstance(p, str)],
            _MLOPS_DIR,
            code,
        )[:32]
    return st.env


def _file(env: str, module: str) -> Path:
    return cache_dir() / env / f"{hash_bytes(module.encode())}.json"


def _from_disk(module: str, key: str) -> Entry | None:
    env = _environment()
    slot = (env, module)
    if slot not in _DISK:
        entries = _read(_file(env, module), module)
        with _lock:
            _DISK[slot] = entries
    entries = _DISK[slot]
    return None if entries is None else entries.get(key)


def _read(path: Path, module: str) -> dict[str, Entry] | None:
    """The entries of one memo file; None if it is missing, damaged or not ours (never raises)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        head, _, body = data.partition(b"\n")
        magic, fmt, checksum = head.decode("ascii").split(" ")
        if magic != _MAGIC or fmt != str(FORMAT) or checksum != hash_bytes(body):
            return None
        doc = json.loads(body)
        if doc["module"] != module:
            return None
        deps_table: list[Dep] = []
        for path_, digest in doc["deps"]:
            if not isinstance(path_, str) or not (digest is None or isinstance(digest, str)):
                return None
            deps_table.append((path_, digest))
        stamps = {}
        for path_, (size, mtime, ctime, ino, digest, taken) in doc["stamps"].items():
            values = (size, mtime, ctime, ino, taken)
            if not all(type(v) is int for v in values) or not isinstance(digest, str):
                return None
            stamps[path_] = Stamp(size, mtime, ctime, ino, digest, taken)
        entries = {}
        shared: dict[tuple[int, ...], tuple[Dep, ...]] = {}  # most entries list the same deps
        for key, (value, refs) in doc["entries"].items():
            ref_key = tuple(refs)
            deps = shared.get(ref_key)
            if deps is None:
                deps = shared[ref_key] = _intern(tuple(deps_table[i] for i in refs))
            entries[key] = Entry(value, deps)
    except Exception:  # noqa: BLE001 -- whatever the damage, the file is ignored, never fatal
        return None
    _deps.learn_stamps(stamps)
    return entries


def _flush(st: _Session) -> None:
    """Write the memo file of each module computed or refreshed in this session."""
    if not st.dirty or not st.enabled:
        return
    env = _environment()
    for module in sorted(st.dirty):
        with _lock:
            # entries read from the file and not used here stay (checked when used), so that
            # two pipelines over one module do not keep evicting each other's entries
            entries = dict(_DISK.get((env, module)) or {})
            entries.update((k, e) for k, e in _MEMO.get(module, {}).items() if e.deps)
        if entries:
            _write(_file(env, module), module, entries)
            with _lock:
                _DISK[(env, module)] = entries


def _write(path: Path, module: str, entries: dict[str, Entry]) -> None:
    table: dict[Dep, int] = {}
    doc_entries = {}
    for key, entry in sorted(entries.items()):
        refs = [table.setdefault(dep, len(table)) for dep in entry.deps]
        doc_entries[key] = [entry.value, refs]
    stamps = _deps.known_stamps(p for p, _ in table)
    doc = {
        "module": module,
        "deps": [list(dep) for dep in table],
        "stamps": {
            p: [s.size, s.mtime_ns, s.ctime_ns, s.ino, s.digest, s.taken_ns]
            for p, s in sorted(stamps.items())
        },
        "entries": doc_entries,
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    data = f"{_MAGIC} {FORMAT} {hash_bytes(body)}\n".encode() + body
    try:
        folder = path.parent
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            _prune(folder.parent, keep=folder)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # atomic: a reader sees the old file or the new, never half
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass  # a read-only or full cache folder costs speed, never a run


def _prune(root: Path, keep: Path) -> None:
    """Keep the :data:`KEEP_ENVIRONMENTS` most recently written environment folders."""
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and p != keep]
        if len(folders) < KEEP_ENVIRONMENTS:
            return
        folders.sort(key=lambda p: p.stat().st_mtime_ns)
        for old in folders[: len(folders) - KEEP_ENVIRONMENTS + 1]:
            shutil.rmtree(old, ignore_errors=True)
    except OSError:
        pass


def forget() -> None:
    """Drop what this process remembers (the disk memo stays): for tests and benchmarks."""
    with _lock:
        _MEMO.clear()
        _DISK.clear()
        _INTERN.clear()
