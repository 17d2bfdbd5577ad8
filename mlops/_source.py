"""Where a module's source is, and whose code it is: the user's project, a library, or neither.

Found without importing anything (a fully cached run must not pay for importing the libraries a
step uses): top-level names through :func:`importlib.util.find_spec`, submodules by walking their
packages' search paths, and distributions through :mod:`mlops.libraries`.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import site
import sys
import sysconfig

from ._deps import Dep, note, note_dirs, on_session_start, recording

__all__ = ["is_project_file", "kind_of", "module_file", "top_folder"]


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = set(site.getsitepackages() + [site.getusersitepackages()])
    paths = sysconfig.get_paths()
    roots.update({paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]})
    roots.add(os.path.dirname(os.__file__))
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


_MLOPS_ROOT = os.path.realpath(os.path.dirname(__file__)) + os.sep
_MLOPS_EXAMPLES = os.path.join(_MLOPS_ROOT, "examples") + os.sep


def is_project_file(path: str | None) -> bool:
    """True when ``path`` is user code: not an installed library, not mlops itself."""
    if not path or not path.endswith(".py"):
        return False
    real = os.path.realpath(path)
    if real.startswith(_MLOPS_EXAMPLES):
        return True  # the packaged examples are user code like any other
    if real.startswith(_MLOPS_ROOT):
        return False
    return not real.startswith(_library_roots())


def _search_path() -> list[str]:
    """The folders a top-level lookup searches (``""`` is the current folder)."""
    return [os.path.abspath(p) if p else os.getcwd() for p in sys.path if isinstance(p, str)]


@functools.lru_cache(maxsize=4096)
def _module_file(module: str) -> tuple[str | None, tuple[str, ...]]:
    """``module``'s source file and the folders searched to find it (see :func:`module_file`)."""
    searched = _search_path()
    loaded = sys.modules.get(module)
    if loaded is not None:
        path = getattr(loaded, "__file__", None)
        if path:  # the folders a fresh process would search: its packages' folders
            folder = os.path.dirname(path)
            levels = module.count(".") + (os.path.basename(path) == "__init__.py")
            for _ in range(levels):
                searched.append(folder)
                folder = os.path.dirname(folder)
        return path, tuple(searched)
    head, *rest = module.split(".")
    origin = None
    try:
        spec = importlib.util.find_spec(head)  # a top-level name: nothing is imported
        for i in range(len(rest)):
            search = spec.submodule_search_locations if spec is not None else None
            if search is None:
                spec = None
                break
            searched.extend(search)
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join([head, *rest[: i + 1]]), list(search)
            )
        if spec is not None and spec.has_location:
            origin = spec.origin
    except (ImportError, ValueError):
        origin = None
    return origin, tuple(searched)


def module_file(module: str) -> str | None:
    """The source file of ``module``, found without importing it or its parent packages.

    ``importlib.util.find_spec("pkg.sub")`` imports ``pkg`` (and so whatever ``pkg/__init__.py``
    imports: ``sklearn.datasets`` costs a second). Walking the packages' search paths with
    :class:`importlib.machinery.PathFinder` imports nothing. The folders searched are noted as
    dependencies of what is being memoized (:mod:`mlops._deps`): a module file created there
    may change the answer. Lookups are remembered until the next compile session starts.
    """
    path, searched = _module_file(module)
    note_dirs(searched)
    return path


def top_folder(top: str) -> str | None:
    """The ``sys.path`` folder a top-level module was found in."""
    path = module_file(top)
    if path is None:
        return None
    folder = os.path.dirname(path)
    if os.path.basename(path) == "__init__.py":
        folder = os.path.dirname(folder)
    return folder


def kind_of(module: str) -> str | None:
    """``"project"`` (user code, hashed), ``"library"`` (a third-party distribution, versioned),
    or None (the standard library, mlops itself, or not found)."""
    kind, deps = _kind(module)
    note(deps)
    return kind


@functools.lru_cache(maxsize=4096)
def _kind(module: str) -> tuple[str | None, frozenset[Dep]]:
    deps: set[Dep] = set()
    with recording(deps):  # the folders its lookups searched, noted again on every call
        kind = _kind_of(module)
    return kind, frozenset(deps)


def _kind_of(module: str) -> str | None:
    top = module.split(".")[0]
    if top in sys.stdlib_module_names and not is_project_file(module_file(top)):
        return None  # (a project module named like one, `code.py` in the project, shadows it)
    if top == "mlops":
        return "project" if is_project_file(module_file(module)) else None
    if top != module:  # a library's submodules are the library's: no need to find them
        top_kind = kind_of(top)
        if top_kind != "project":
            return top_kind if top_kind == "library" or module_file(module) is None else None
    path = module_file(module)
    folder = top_folder(top)
    if folder is None:
        return None
    from .libraries import owning_distributions

    in_site = (os.path.realpath(folder) + os.sep).startswith(_library_roots())
    if in_site:
        return "library"
    # A *.dist-info next to the module makes it an installed distribution's, wherever it is; an
    # *.egg-info counts only under site-packages (`setup.py develop` leaves one in the project).
    dists = owning_distributions(top, folder)
    if any(d.path.endswith(".dist-info") for d in dists):
        return "library"
    return "project" if is_project_file(path) else None


def _forget_lookups() -> None:
    """A new compile searches the folders again: a module may have been created since."""
    _module_file.cache_clear()
    _kind.cache_clear()


on_session_start(_forget_lookups)
