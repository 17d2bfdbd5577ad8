"""The compose cache: an unchanged command line over unchanged configs skips Hydra's composition.

Composing a config is most of what a fully cached ``python -m mlops`` run costs, and it grows
with the size of the YAML. This module remembers the config Hydra composed for a plain run and
hands it back when nothing it was composed from has changed; :mod:`mlops.hydra_run` then runs
the job as Hydra's run mode does (output folder, ``.hydra/config.yaml``, ``hydra.yaml``,
``overrides.yaml``, log file, callbacks). A damaged entry is never fatal: the run composes as
usual and replaces it.

**Never stale.** An entry is found by a key over what is known before composing -- the
overrides, the working folder, the Python executable, the versions of Hydra and OmegaConf, and
the source files of mlops and of every installed Hydra plugin (size and modification time:
an editable install changes code without changing its version) -- and is used only if what it
was composed from is still the same:

* the content of every config file (``*.yaml``, ``*.yml``) in every folder of the search path
  that Hydra reported when it composed the config (``hydra.runtime.config_sources``: the
  project's ``conf/``, the packaged configs, ``hydra.searchpath``, Hydra's own), plus the
  current folder's ``conf/`` even if it did not exist then (the search-path plugin adds it only
  when it exists);
* the value of every environment variable the configs or overrides interpolate
  (``${oc.env:NAME}``), stored as a hash.

**What is cached.** Only plain runs: every argument an override (no ``-m``, ``--cfg``,
``--config-dir`` ...), a pipeline selected, Hydra in run mode, and no secret in the config or the
overrides (the entry would keep it in clear; such runs are composed every time), nor
``hydra.job.env_copy`` (it copies environment values into the config).

**What an entry holds.** ``KEY.json``: what the entry was composed from (file hashes,
environment hashes) and the digest of its payload; ``KEY-DIGEST.pickle``: the composed config
as an OmegaConf object, pickled right after composing without the values OmegaConf caches (no
``${now:}`` is frozen in it: each run resolves its own output folder), and the text of
``.hydra/config.yaml``. Rebuilding a 1,000-step config from plain data takes OmegaConf 0.13 s,
unpickling it 0.013 s; and the saved YAML is written as it was emitted, not emitted again. The
payload is read with an unpickler that only rebuilds configs: OmegaConf's nodes,
structured-config dataclasses, enums and builtin containers from modules that define configs
(see :class:`_ConfigUnpickler`); anything else makes the entry unusable, and the run composes.

**Where.** ``$MLOPS_CACHE_DIR/compose/`` (default ``$XDG_CACHE_HOME/mlops``, else
``~/.cache/mlops``): the registry cannot hold it, since the registry's address is itself part of
the composed config, and the entry is keyed by local paths and local environment values that mean
nothing on another machine (a round trip to a remote registry would also cost more than it
saves). Files are written atomically (a temporary file, then a rename; the payload before the
entry that names it, by digest), so concurrent runs never read half an entry or another run's
payload; the 256 most recently used entries are kept. ``MLOPS_COMPOSE_CACHE=0`` turns the cache
off.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .user_cache import cache_root, switched_on

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = [
    "Composed",
    "cache_dir",
    "cacheable",
    "dumps",
    "enabled",
    "load",
    "loads",
    "lookup",
    "record",
    "task_copy",
]

#: Bump when the entry's shape or what the key covers changes.
FORMAT = 2
#: Entries kept (the most recently used); one per distinct command line and folder.
KEEP = 256
_ENV_OFF = "MLOPS_COMPOSE_CACHE"
_CONFIG_SUFFIXES = (".yaml", ".yml")
_ENV_REF = re.compile(r"\$\{\s*(?:oc\.env|env)\s*:\s*([^,}\s'\"]+)")
_MLOPS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Composed:
    """A composed config, ready to run: what Hydra's run mode hands to its job runner.

    Attributes:
        config: the whole config, ``hydra`` node included (Hydra's ``HydraConfig`` reads it).
        task: the same config without the ``hydra`` node: what the task function receives. A
            separate object, as Hydra's ``run_job`` gives the task a copy.
        config_yaml: the text of ``.hydra/config.yaml`` (the task config, unresolved).
        task_name: ``hydra.job.name`` (``cli``: the module of the task function).
        config_name: the primary config (``mlops``).
    """

    config: DictConfig
    task: DictConfig
    config_yaml: str
    task_name: str
    config_name: str | None


def enabled() -> bool:
    """False when ``MLOPS_COMPOSE_CACHE=0`` (or ``false``/``off``) turns the cache off."""
    return switched_on(_ENV_OFF)


def cache_dir() -> Path:
    """The folder of compose-cache entries (see the module docstring for why it is local)."""
    return cache_root() / "compose"


def cacheable(args: Sequence[str]) -> bool:
    """True for a plain run: every argument is an override, none selects a sweep or a search path.

    Examples:
        >>> cacheable(["+pipeline=train", "steps.train.C=10"])
        True
        >>> cacheable(["+pipeline=train", "~steps.train.C"])   # a deletion is an override too
        True
        >>> cacheable(["-m", "+pipeline=train"]), cacheable(["--cfg", "job"])
        (False, False)
    """
    return bool(args) and all(
        a.startswith("~") or ("=" in a and not a.startswith("-")) for a in args
    )


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _stat_signature(folders: Iterable[Path]) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every Python file under ``folders``: code that shapes composing."""
    out: list[tuple[str, int, int]] = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(filenames):
                if f.endswith(".py"):
                    st = os.stat(os.path.join(dirpath, f))
                    out.append((os.path.join(dirpath, f), st.st_size, st.st_mtime_ns))
    return out


def _plugin_folders() -> list[Path]:
    """The folders of the ``hydra_plugins`` namespace package (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("hydra_plugins")
    locations = spec.submodule_search_locations if spec is not None else None
    # deduplicated: the current folder on sys.path can list a folder twice
    return sorted({Path(p).resolve() for p in (locations or []) if os.path.isdir(p)})


def _key(args: Sequence[str], cwd: str) -> str:
    import hydra
    import omegaconf

    parts = {
        "format": FORMAT,
        "args": list(args),
        "cwd": cwd,
        "python": sys.executable,
        "hydra": hydra.__version__,
        "omegaconf": omegaconf.__version__,
        "code": _stat_signature([_MLOPS_DIR, *_plugin_folders()]),
    }
    return _digest(json.dumps(parts, sort_keys=True).encode())


def _manifest(folder: str) -> dict[str, str]:
    """Relative path -> content hash of every config file under ``folder`` ({} if absent)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in filenames:
            if f.endswith(_CONFIG_SUFFIXES):
                path = os.path.join(dirpath, f)
                with open(path, "rb") as fh:
                    out[os.path.relpath(path, folder)] = _digest(fh.read())
    return out


def _env_names(folders: Iterable[str], args: Sequence[str]) -> list[str]:
    """The environment variables that configs or overrides interpolate."""
    names: set[str] = set()
    for a in args:
        names.update(_ENV_REF.findall(a))
    for folder in folders:
        for dirpath, _, filenames in os.walk(folder):
            for f in filenames:
                if f.endswith(_CONFIG_SUFFIXES):
                    text = Path(dirpath, f).read_text(encoding="utf-8", errors="replace")
                    names.update(_ENV_REF.findall(text))
    return sorted(names)


def _env_state(names: Iterable[str]) -> dict[str, str | None]:
    """Each variable's value as a hash (an entry never holds a value in clear)."""
    return {n: None if n not in os.environ else _digest(os.environ[n].encode()) for n in names}


def _source_folder(source: dict[str, Any]) -> str | None:
    """The folder of one ``hydra.runtime.config_sources`` entry; None for code (structured://)."""
    schema, path = source.get("schema"), str(source.get("path") or "")
    if schema == "file":
        return os.path.abspath(path)
    if schema == "pkg":
        import importlib.util

        try:
            spec = importlib.util.find_spec(path)
        except (ImportError, ValueError):
            return None
        locations = spec.submodule_search_locations if spec is not None else None
        return str(next(iter(locations))) if locations else None
    return None


def _entry_path(key: str) -> Path:
    return cache_dir() / f"{key}.json"


def _payload_path(key: str, digest: str) -> Path:
    return cache_dir() / f"{key}-{digest}.pickle"


def lookup(args: Sequence[str], cwd: str | None = None) -> dict[str, Any] | None:
    """The cache entry of ``args`` run in ``cwd``, if every input is unchanged; else None.

    The entry is the JSON record (what it was composed from); :func:`load` reads the config.
    """
    if not enabled() or not cacheable(args):
        return None
    cwd = cwd or os.getcwd()
    try:
        key = _key(args, cwd)
        entry: dict[str, Any] = json.loads(_entry_path(key).read_text(encoding="utf-8"))
        if entry.get("format") != FORMAT:
            return None
        manifests: dict[str, dict[str, str]] = entry["manifests"]
        env: dict[str, str | None] = entry["env"]
        payload = _payload_path(key, str(entry["payload"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for folder, manifest in manifests.items():
        if _manifest(folder) != manifest:
            return None
    if _env_state(env) != env or not payload.is_file():
        return None
    with contextlib.suppress(OSError):
        os.utime(_entry_path(key))  # most recently used: kept by _prune
    return {**entry, "payload_path": str(payload)}


def load(args: Sequence[str], cwd: str | None = None) -> Composed | None:
    """The cached composition of ``args`` run in ``cwd``, rebuilt; None if there is none.

    Never raises: a missing, damaged or stale entry only means the run composes.
    """
    entry = lookup(args, cwd)
    if entry is None:
        return None
    try:
        data = Path(entry["payload_path"]).read_bytes()
        if _digest(data) != entry["payload"]:
            return None  # replaced between reading the entry and its payload
        config_bytes, config_yaml = _ConfigUnpickler(io.BytesIO(data)).load()
        return Composed(
            config=loads(config_bytes),
            task=task_copy(config_bytes),
            config_yaml=str(config_yaml),
            task_name=str(entry["task_name"]),
            config_name=entry["config_name"],
        )
    except Exception:  # noqa: BLE001 - a damaged entry only costs a composition
        return None


def record(composed: Composed, args: Sequence[str], config_bytes: bytes) -> bool:
    """Remember a composition Hydra just made for ``args``.

    ``config_bytes``: ``dumps(composed.config)`` taken right after composing, without the values
    OmegaConf cached while composing (``${now:}``); the caller makes it anyway, to copy the
    config for the task. Returns whether an entry was written. Never raises: a cache that
    cannot be written only costs the next run a composition.
    """
    if not enabled() or not cacheable(args):
        return False
    try:
        return _record(composed, list(args), config_bytes)
    except Exception:  # noqa: BLE001 - the cache is an optimization; the run goes on without it
        return False


def _record(composed: Composed, args: list[str], config_bytes: bytes) -> bool:
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from .redaction import redact

    cfg = composed.config
    hydra_cfg = cfg.hydra
    cwd = str(hydra_cfg.runtime.cwd)  # the folder the run started in
    if hydra_cfg.mode != RunMode.RUN or OmegaConf.is_missing(cfg.get("pipeline", {}), "name"):
        return False
    if hydra_cfg.job.env_copy:  # environment values copied into the config, in clear
        return False
    task = OmegaConf.to_container(composed.task, resolve=False, enum_to_str=True)
    if redact({"task": task, "args": args}) != {"task": task, "args": args}:
        return False  # a secret: never kept in clear on disk
    sources = OmegaConf.to_container(hydra_cfg.runtime.config_sources)
    assert isinstance(sources, list)
    folders = {f for f in map(_source_folder, sources) if f is not None}
    folders.add(os.path.join(cwd, "conf"))  # added by the search-path plugin once it exists
    data = pickle.dumps((config_bytes, composed.config_yaml), protocol=pickle.HIGHEST_PROTOCOL)
    key = _key(args, cwd)
    digest = _digest(data)
    entry = {
        "format": FORMAT,
        "manifests": {f: _manifest(f) for f in sorted(folders)},
        "env": _env_state(_env_names(sorted(folders), args)),
        "task_name": composed.task_name,
        "config_name": composed.config_name,
        "payload": digest,
    }
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(_payload_path(key, digest), data)  # first: the entry names it
    _write_atomic(_entry_path(key), json.dumps(entry).encode())
    for old in folder.glob(f"{key}-*.pickle"):  # earlier payloads of this entry
        if old.name != _payload_path(key, digest).name:
            with contextlib.suppress(OSError):
                old.unlink()
    _prune(folder, KEEP)
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used entries (a hit touches its entry)."""
    entries = [e for e in os.scandir(folder) if e.name.endswith(".json")]
    if len(entries) <= keep:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns, reverse=True)
    for e in entries[keep:]:
        key = e.name[: -len(".json")]
        for path in [Path(e.path), *folder.glob(f"{key}-*.pickle")]:
            with contextlib.suppress(OSError):  # another run may have pruned it first
                path.unlink()


# -- the payload: composed configs, pickled -----------------------------------------------------


def dumps(config: DictConfig) -> bytes:
    """``config`` pickled (OmegaConf supports it): a copy is ``loads(dumps(config))``.

    Five times faster than ``copy.deepcopy`` for a large config, and the same nodes, flags and
    types (a ``Dict[str, Any]`` annotation is kept as ``Dict``, with its key and value types).
    """
    return pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    """A config pickled by :func:`dumps`, rebuilt with :class:`_ConfigUnpickler`."""
    return _ConfigUnpickler(io.BytesIO(data)).load()


def task_copy(config_bytes: bytes) -> DictConfig:
    """The task's copy of a pickled config: without the ``hydra`` node, as ``run_job`` makes it."""
    from omegaconf import open_dict, read_write

    task: DictConfig = loads(config_bytes)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


#: Builtins a config is made of (OmegaConf's values and containers, and their metadata).
_BUILTINS = frozenset(
    {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "int", "float", "bool"}
)
#: typing's annotations that OmegaConf keeps as a node's reference or element type.
_TYPING = frozenset({"Any", "Dict", "List", "Tuple", "Optional", "Union"})
#: Packages whose classes may appear in a config (nodes, Hydra's and mlops' schemas, plugins').
_CONFIG_PACKAGES = ("omegaconf", "hydra", "hydra_plugins", "mlops")


class _ConfigUnpickler(pickle.Unpickler):
    """Rebuilds configs and nothing else: any other global makes the payload unusable.

    Allowed: the builtins above, ``collections.defaultdict``, typing's annotations, ``pathlib``
    paths (OmegaConf's path values), and classes that are OmegaConf nodes or metadata,
    dataclasses or attrs classes (structured configs) or enums, from OmegaConf, Hydra, Hydra's
    plugins, mlops or a module already imported (a user's structured config registered in
    Hydra's ConfigStore). The cache folder is the user's own, as ``__pycache__`` is; this keeps
    a payload written there by anything else from running code when it is read.
    """

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _BUILTINS:
            return super().find_class(module, name)
        if (module, name) == ("collections", "defaultdict"):
            return super().find_class(module, name)
        if module == "typing" and name in _TYPING:
            return super().find_class(module, name)
        if module == "pathlib" and name.endswith("Path"):
            return super().find_class(module, name)
        if module.partition(".")[0] in _CONFIG_PACKAGES or module in sys.modules:
            found = super().find_class(module, name)
            if _is_config_class(found):
                return found
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a config")


def _is_config_class(obj: Any) -> bool:
    import dataclasses
    import enum

    from omegaconf import Node
    from omegaconf.base import ContainerMetadata, Metadata

    if not isinstance(obj, type):
        return False
    if dataclasses.is_dataclass(obj) or hasattr(obj, "__attrs_attrs__"):
        return True
    # by the MRO, not issubclass: Node is an ABC, whose first subclass checks cost 0.1 s
    return isinstance(obj, enum.EnumMeta) or any(
        base in (Node, Metadata, ContainerMetadata) for base in obj.__mro__
    )
