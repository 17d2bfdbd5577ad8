"""Which installed distribution a module comes from, and its version, without importing it.

A step's cache key includes the versions of the third-party distributions its code imports
(``scikit-learn 1.5.2``), so that upgrading a library re-runs exactly the steps that use it. This
module answers "which distribution owns top-level module ``sklearn``, at which version?" from the
``*.dist-info`` (and ``*.egg-info``) folders next to the module, the way
:func:`importlib.metadata.packages_distributions` does, but lazily and cheaply: importing
:mod:`importlib.metadata` and calling ``packages_distributions()`` costs about 0.1 s, more than a
whole fully cached run may spend. Here:

* the folder a module was found in is listed once (cached by the folder's ``mtime_ns``, which
  changes when a distribution is installed, upgraded or removed, since the dist-info folder's
  name carries the version);
* a distribution whose normalized name is the module's name (``numpy`` for ``numpy``) is taken
  at once; only for a module named differently from its distribution (``sklearn``,
  ``yaml``) are the folder's ``top_level.txt`` / ``RECORD`` files read, once per folder;
* the version is read from the first lines of ``METADATA``.

A distribution's own dependencies (``Requires-Dist`` without an ``extra`` marker) that are
installed are included too, transitively: scikit-learn's results depend on the NumPy and SciPy it
runs on, even though the step never imports them.

Standard-library modules and mlops itself are never libraries here (mlops' artifact format has a
version of its own in the key).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from dataclasses import dataclass, field

__all__ = ["Distribution", "distributions_of", "owning_distributions", "with_dependencies"]

_NORMALIZE = re.compile(r"[-_.]+")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_lock = threading.Lock()


def _normalize(name: str) -> str:
    """PEP 503 normalized name: ``Scikit_Learn`` -> ``scikit-learn``."""
    simple = name.lower().replace("_", "-").replace(".", "-")
    return simple if "--" not in simple else _NORMALIZE.sub("-", simple)


@dataclass(frozen=True)
class Distribution:
    """An installed distribution: its name as published, its version, its metadata folder."""

    name: str
    version: str
    path: str  # the *.dist-info or *.egg-info folder

    @property
    def ident(self) -> str:
        """The code-part ident of this distribution in a step's key: ``dist:scikit-learn``."""
        return f"dist:{self.name}"


@dataclass
class _Folder:
    """The distributions installed in one folder of ``sys.path``."""

    stamp: int
    infos: dict[str, str]  # normalized distribution name -> metadata folder name
    owners: dict[str, list[str]] = field(default_factory=dict)  # top-level module -> folders


_FOLDERS: dict[str, _Folder] = {}
_DISTS: dict[str, Distribution | None] = {}  # metadata folder path -> parsed


def _folder(path: str) -> _Folder | None:
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        return None
    with _lock:
        cached = _FOLDERS.get(path)
    if cached is not None and cached.stamp == stamp:
        return cached
    try:
        names = os.listdir(path)
    except OSError:
        return None
    infos = {}
    for entry in names:
        if entry.endswith((".dist-info", ".egg-info")):
            stem = entry.rsplit(".", 1)[0]
            infos[_normalize(stem.split("-", 1)[0])] = entry
    folder = _Folder(stamp, infos)
    with _lock:
        _FOLDERS[path] = folder
    return folder


def _top_levels(info: str) -> set[str] | None:
    """Top-level modules a distribution lists in ``top_level.txt``; None if it has none."""
    try:
        with open(os.path.join(info, "top_level.txt"), "rb") as f:
            return {line.decode() for line in f.read().split() if line}
    except OSError:
        return None


def _installs(info: str, top: str) -> bool:
    """Whether the distribution at ``info`` installs top-level module ``top``."""
    tops = _top_levels(info)
    if tops is not None:
        return top in tops
    try:
        with open(os.path.join(info, "RECORD"), "rb") as f:
            data = f.read()
    except OSError:
        return False
    # a line of RECORD starting with `top/`, `top.py,` or `top.<tag>.so,` (a searched regex is
    # much cheaper than splitting every line of the RECORDs of a large site-packages)
    name = re.escape(top.encode())
    return re.search(rb"(?m)^" + name + rb"(/|\.py,|\.[^/,\n]*\.(so|pyd),)", data) is not None


def _owners(folder_path: str, folder: _Folder, top: str, *, single: bool) -> list[str]:
    """The metadata folders of ``folder_path`` whose distribution installs ``top``.

    ``single``: ``top`` is a regular package or a module, which one distribution installs, so the
    search stops at the first owner; the likeliest candidates (same first letter) go first.
    """
    key = f"{top}:{single}"
    if key not in folder.owners:
        entries = sorted(folder.infos.values(), key=lambda e: (e[0].lower() != top[0].lower(), e))
        found = []
        for entry in entries:
            if _installs(os.path.join(folder_path, entry), top):
                found.append(entry)
                if single:
                    break
        folder.owners[key] = found
    return folder.owners[key]


def _read_headers(info: str) -> dict[str, list[str]]:
    """The header fields of a distribution's METADATA (or PKG-INFO), up to the first blank line."""
    headers: dict[str, list[str]] = {}
    for name in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(info, name), encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and not line[0].isspace():
                        headers.setdefault(key.strip().lower(), []).append(value.strip())
            return headers
        except OSError:
            continue
    return headers


def _distribution(info: str) -> Distribution | None:
    with _lock:
        if info in _DISTS:
            return _DISTS[info]
    headers = _read_headers(info)
    name = (headers.get("name") or [""])[0]
    version = (headers.get("version") or [""])[0]
    if not name or not version:
        # no readable metadata: the folder name still says name-version (a dist-info always does)
        stem = os.path.basename(info).rsplit(".", 1)[0]
        base, _, ver = stem.partition("-")
        name, version = name or base, version or ver
    dist = Distribution(name, version, info) if name and version else None
    with _lock:
        _DISTS[info] = dist
    return dist


_REQUIRES: dict[str, tuple[str, ...]] = {}


def _requirements(dist: Distribution) -> tuple[str, ...]:
    """Normalized names of the distributions ``dist`` requires unconditionally (no extra)."""
    with _lock:
        cached = _REQUIRES.get(dist.path)
    if cached is not None:
        return cached
    names = []
    for req in _read_headers(dist.path).get("requires-dist", []):
        _, _, marker = req.partition(";")
        if "extra" in marker:
            continue
        m = _REQUIREMENT_NAME.match(req)
        if m:
            names.append(_normalize(m.group(1)))
    result = tuple(names)
    with _lock:
        _REQUIRES[dist.path] = result
    return result


def owning_distributions(top: str, folder_path: str) -> list[Distribution]:
    """The distributions of ``folder_path`` (a ``sys.path`` folder) that install module ``top``.

    Empty when the folder holds no metadata for it: then the module is not an installed
    distribution's (for instance, the user's own project folder).
    """
    folder = _folder(folder_path)
    if folder is None or not folder.infos:
        return []
    # a namespace package (no __init__.py) may be shared by several distributions
    single = not os.path.isdir(os.path.join(folder_path, top)) or os.path.exists(
        os.path.join(folder_path, top, "__init__.py")
    )
    entry = folder.infos.get(_normalize(top))
    if single and entry is not None and _installs(os.path.join(folder_path, entry), top):
        entries = [entry]  # numpy for numpy: the usual case, decided without reading the others
    else:
        entries = _owners(folder_path, folder, top, single=single)
    dists = [_distribution(os.path.join(folder_path, e)) for e in entries]
    return [d for d in dists if d is not None]


def _installed(normalized: str, folders: list[str]) -> Distribution | None:
    for path in folders:
        folder = _folder(path)
        if folder is not None and normalized in folder.infos:
            return _distribution(os.path.join(path, folder.infos[normalized]))
    return None


_CLOSURES: dict[tuple[str, ...], list[Distribution]] = {}


def with_dependencies(dists: list[Distribution]) -> list[Distribution]:
    """``dists`` and the installed distributions they require, transitively, sorted by name."""
    key = tuple(sorted({d.path for d in dists}))
    with _lock:
        cached = _CLOSURES.get(key)
    if cached is not None and all(_folder(os.path.dirname(p)) is not None for p in key):
        return list(cached)
    folders = [p for p in sys.path if p and os.path.isdir(p)]
    seen: dict[str, Distribution] = {}
    todo = list(dists)
    while todo:
        dist = todo.pop()
        name = _normalize(dist.name)
        if name in seen:
            continue
        seen[name] = dist
        for req in _requirements(dist):
            if req not in seen:
                found = _installed(req, [os.path.dirname(dist.path), *folders])
                if found is not None:
                    todo.append(found)
    result = sorted(seen.values(), key=lambda d: _normalize(d.name))
    with _lock:
        _CLOSURES[key] = result
    return list(result)


def distributions_of(top: str, origin_folders: list[str]) -> list[Distribution]:
    """The distributions owning top-level module ``top`` found in ``origin_folders``."""
    if top in sys.stdlib_module_names or top == "mlops":
        return []
    found: list[Distribution] = []
    for path in origin_folders:
        found.extend(owning_distributions(top, path))
    return found
