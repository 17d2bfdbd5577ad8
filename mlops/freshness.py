"""Is the code imported in this process still the code on disk? Reload it when it is not.

A cache key is computed from the source text (:mod:`mlops.fingerprint`), but a step runs the
module object imported earlier. In one process that lives on -- a notebook, ``mlops.run`` called
twice -- a module edited in between would run its old code and store the result under the new
code's key, for every later process to reuse. Before running a step, the executor makes sure
that cannot happen: :func:`refresh` reloads every project module the step's module reaches that
changed on disk since it was imported, and every reached module that imports one of those (they
hold references to the old functions: ``from helpers import clean``), dependencies first.

How "changed since it was imported" is known, best evidence first:

1. a stamp recorded when mlops last checked or reloaded the module: size and ``mtime_ns`` of the
   source, and a digest of its bytes (so touching a file without changing it is not a change);
2. the time its import started, recorded by a finder placed first on :data:`sys.meta_path` when
   this module is imported (``import mlops`` should import it first thing): a source modified
   after that moment is newer than the running code;
3. for a module imported before that finder existed: the source size and modification time
   that Python wrote into the module's cached bytecode (``__pycache__/*.pyc``) when it imported
   it;
4. otherwise nothing is known, and the module counts as changed: it is reloaded once, and
   stamped from then on.

Only modules of the user's project are considered (see :func:`mlops.fingerprint.is_project_file`):
installed libraries and mlops itself are never reloaded.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when first needed: `import mlops` imports this module early
    from importlib.machinery import ModuleSpec
    from types import ModuleType

    from . import _reach, _units

__all__ = ["install", "refresh", "stale_modules"]

_lock = threading.RLock()
_IMPORT_STARTED: dict[str, int] = {}  # module -> time.time_ns() when its import started
_STAMPS: dict[str, tuple[int, int, str]] = {}  # module -> (mtime_ns, size, digest) it runs


class _ImportClock:
    """A meta path finder that finds nothing: it notes when each import starts."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        _IMPORT_STARTED[fullname] = time.time_ns()  # also on importlib.reload
        return None


_CLOCK = _ImportClock()


def install() -> None:
    """Start noting when modules are imported (done when this module is imported)."""
    if _CLOCK not in sys.meta_path:
        sys.meta_path.insert(0, _CLOCK)  # type: ignore[arg-type]


def _source(module: ModuleType) -> str | None:
    from ._source import is_project_file

    path = getattr(module, "__file__", None)
    return path if is_project_file(path) else None


def _digest(path: str) -> str | None:
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _pyc_matches(module: ModuleType, st: os.stat_result) -> bool | None:
    """Whether the bytecode cache Python imported ``module`` with describes today's source."""
    cached = getattr(module, "__cached__", None)
    if not cached:
        return None
    try:
        with open(cached, "rb") as f:
            header = f.read(16)
    except OSError:
        return None
    if len(header) < 16 or int.from_bytes(header[4:8], "little") != 0:
        return None  # a hash-based pyc, or unreadable: no stamp to compare
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    return mtime == (int(st.st_mtime) & 0xFFFFFFFF) and size == (st.st_size & 0xFFFFFFFF)


def _is_stale(name: str, module: ModuleType, path: str) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return True  # the source is gone: what runs is nothing a key describes
    with _lock:
        known = _STAMPS.get(name)
    if known is not None:
        if known[:2] == (st.st_mtime_ns, st.st_size):
            return False
        digest = _digest(path)
        if digest == known[2]:
            with _lock:
                _STAMPS[name] = (st.st_mtime_ns, st.st_size, known[2])
            return False
        return True
    started = _IMPORT_STARTED.get(name)
    # modified after its import started; or, imported before the clock ran, unlike its .pyc
    stale = st.st_mtime_ns > started if started is not None else not _pyc_matches(module, st)
    if not stale:
        digest = _digest(path)
        if digest is not None:
            with _lock:
                _STAMPS[name] = (st.st_mtime_ns, st.st_size, digest)
    return stale


def stale_modules(module_names: Iterable[str] | None = None) -> list[str]:
    """The imported project modules among ``module_names`` (default: all imported ones) whose
    source changed on disk since this process imported them, sorted.

    Modules not imported, and modules that are not the user's project, are never stale.
    """
    names = list(sys.modules) if module_names is None else list(module_names)
    stale = []
    for name in names:
        module = sys.modules.get(name)
        path = _source(module) if module is not None else None
        if module is not None and path is not None and _is_stale(name, module, path):
            stale.append(name)
    return sorted(stale)


def _imports_of(mod: _units.Module, program: _reach.Program) -> set[str]:
    """The project modules ``mod``'s code imports (at module level or in its functions)."""
    from ._units import Import

    found: set[str] = set()
    sources: list[Any] = []
    for unit in mod.units:
        sources.extend(unit.imports.values())
        for lst in unit.local_imports.values():
            sources.extend(lst)
    sources.extend(Import(s) for s in mod.star)
    for src in sources:
        parts = src.module.split(".")
        candidates = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if src.attr is not None:
            candidates.append(f"{src.module}.{src.attr}")
        known = program.modules.keys() | program.unreadable
        found.update(c for c in candidates if c in known and c != mod.name)
    return found


def refresh(module_names: Iterable[str]) -> list[str]:
    """Reload what has to be reloaded so that the steps of ``module_names`` run the code on disk.

    That is every project module reached from them (through imports, at any depth) that
    changed since it was imported, and every reached module that imports a reloaded one, in
    dependency order (a module after the modules it imports). Returns the names reloaded.

    Call it before running a step from an already imported module, then take the step function
    from ``sys.modules[module]`` again: the old function object is the old code.

    Raises:
        ImportError, SyntaxError (and whatever the module raises): the edited module cannot be
            imported; the step must not run.
    """
    import importlib

    from ._reach import program_for
    from ._units import parse

    with _lock:  # one refresh at a time: a module must not be reloaded twice, or half-way
        graph: dict[str, set[str]] = {}
        for name in module_names:
            if name not in sys.modules:
                continue  # never imported here: nothing to reload (and no need to parse it)
            root = parse(name)
            if root is None:
                continue
            program = program_for(root)
            for mod_name, mod in program.modules.items():
                if mod_name in sys.modules and mod_name not in graph:
                    graph[mod_name] = {d for d in _imports_of(mod, program) if d in sys.modules}
            for broken in program.unreadable & sys.modules.keys():
                graph.setdefault(broken, set())  # edited into a syntax error: reloading raises
        stale = set(stale_modules(graph))
        if not stale:
            return []
        dependents: dict[str, set[str]] = {}
        for name, deps in graph.items():
            for dep in deps:
                dependents.setdefault(dep, set()).add(name)
        todo, reload = list(stale), set(stale)
        while todo:
            for parent in dependents.get(todo.pop(), ()):
                if parent not in reload:
                    reload.add(parent)
                    todo.append(parent)
        order = _dependency_order({n: graph[n] & reload for n in reload})
        for name in order:
            module = sys.modules.get(name)
            path = _source(module) if module is not None else None
            if module is None or path is None:
                continue
            st, digest = os.stat(path), _digest(path)
            importlib.reload(module)
            if digest is not None:
                _STAMPS[name] = (st.st_mtime_ns, st.st_size, digest)
        return order


def _dependency_order(graph: dict[str, set[str]]) -> list[str]:
    """Dependencies first; an import cycle is broken where it closes (Python does the same).

    Examples:
        >>> _dependency_order({"steps": {"helpers"}, "helpers": set()})
        ['helpers', 'steps']
    """
    import graphlib

    try:
        return list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        order: list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            for dep in sorted(graph.get(name, ())):
                visit(dep)
            order.append(name)

        for name in sorted(graph):
            visit(name)
        return order


install()
