"""The compose cache: an unchanged command line over unchanged configs skips Hydra's composition.

Composing a config is most of what a fully cached ``python -m mlops`` run costs (Hydra composes
it twice: once to pick the mode, once to run), and it grows with the size of the YAML. This
module remembers the composed config of a plain run and hands it back to Hydra's own job runner
(:func:`hydra.core.utils.run_job`) when nothing the config is composed from has changed, so the
run still gets its output folder, its ``.hydra/config.yaml``, ``hydra.yaml`` and
``overrides.yaml``, its log file and its callbacks, as Hydra makes them (``hydra.yaml`` has the
same keys and values as after composing, in another order: the ``hydra`` node is rebuilt over
Hydra's schema, which :class:`~hydra.core.hydra_config.HydraConfig` requires). A damaged entry is
never fatal: the run composes as usual and replaces it.

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
overrides (the entry would keep it in clear; such runs are composed every time).

**Where.** ``$MLOPS_CACHE_DIR/compose/`` (default ``$XDG_CACHE_HOME/mlops``, else
``~/.cache/mlops``): the registry cannot hold it, since the registry's address is itself part of
the composed config, and the entry is keyed by local paths and local environment values that mean
nothing on another machine (a round trip to a remote registry would also cost more than it
saves). Entries are written atomically (a temporary file, then a rename), so concurrent runs
never read half an entry; the 256 most recently used are kept. ``MLOPS_COMPOSE_CACHE=0`` turns
the cache off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["cache_dir", "enabled", "lookup", "record", "run_cached"]

#: Bump when the entry's shape or what the key covers changes.
FORMAT = 1
#: Entries kept (the most recently used); one per distinct command line and folder.
KEEP = 256
_ENV_OFF = "MLOPS_COMPOSE_CACHE"
_ENV_DIR = "MLOPS_CACHE_DIR"
_CONFIG_SUFFIXES = (".yaml", ".yml")
_ENV_REF = re.compile(r"\$\{\s*(?:oc\.env|env)\s*:\s*([^,}\s'\"]+)")
_MLOPS_DIR = Path(__file__).resolve().parent


def enabled() -> bool:
    """False when ``MLOPS_COMPOSE_CACHE=0`` (or ``false``/``off``) turns the cache off."""
    return os.environ.get(_ENV_OFF, "1").strip().lower() not in ("0", "false", "off", "no")


def cache_dir() -> Path:
    """The folder of compose-cache entries (see the module docstring for why it is local)."""
    root = os.environ.get(_ENV_DIR)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "mlops")
    return Path(root) / "compose"


def cacheable(args: Sequence[str]) -> bool:
    """True for a plain run: every argument is an override, none selects a sweep or a search path.

    Examples:
        >>> cacheable(["+pipeline=train", "steps.train.C=10"])
        True
        >>> cacheable(["-m", "+pipeline=train"]), cacheable(["--cfg", "job"])
        (False, False)
    """
    return bool(args) and all("=" in a and not a.startswith("-") for a in args)


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


def lookup(args: Sequence[str], cwd: str | None = None) -> dict[str, Any] | None:
    """The cached composition of ``args`` run in ``cwd``, if every input is unchanged; else None."""
    if not enabled() or not cacheable(args):
        return None
    cwd = cwd or os.getcwd()
    try:
        path = _entry_path(_key(args, cwd))
        text = path.read_text(encoding="utf-8")
        entry: dict[str, Any] = json.loads(text)
    except (OSError, ValueError):
        return None
    if entry.get("format") != FORMAT:
        return None
    manifests: dict[str, dict[str, str]] = entry.get("manifests", {})
    for folder, manifest in manifests.items():
        if _manifest(folder) != manifest:
            return None
    if _env_state(entry.get("env", {})) != entry.get("env", {}):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # most recently used: kept by _prune
    return entry


def record(cfg: Any, args: Sequence[str] | None = None, cwd: str | None = None) -> bool:
    """Remember the config Hydra just composed for this run (called inside the task function).

    Returns whether an entry was written. Never raises: a cache that cannot be written only
    costs the next run a composition.
    """
    args = list(sys.argv[1:] if args is None else args)
    if not enabled() or not cacheable(args):
        return False
    try:
        return _record(cfg, args, cwd)
    except Exception:  # noqa: BLE001 - the cache is an optimization; the run goes on without it
        return False


def _record(cfg: Any, args: list[str], cwd: str | None) -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from .redaction import redact

    hydra_cfg = HydraConfig.get()
    cwd = cwd or str(hydra_cfg.runtime.cwd)  # the folder the run started in, even after a chdir
    if hydra_cfg.mode != RunMode.RUN or OmegaConf.is_missing(cfg.get("pipeline", {}), "name"):
        return False
    task = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    if redact({"task": task, "args": args}) != {"task": task, "args": args}:
        return False  # a secret: never kept in clear on disk
    hydra_node = OmegaConf.to_container(hydra_cfg, resolve=False, enum_to_str=True)
    sources = hydra_node["runtime"]["config_sources"]  # type: ignore[index,call-overload]
    folders = {f for f in map(_source_folder, sources) if f is not None}
    folders.add(os.path.join(cwd, "conf"))  # added by the search-path plugin once it exists
    entry = {
        "format": FORMAT,
        "manifests": {f: _manifest(f) for f in sorted(folders)},
        "env": _env_state(_env_names(sorted(folders), args)),
        "task_name": hydra_cfg.job.name,
        "config_name": hydra_cfg.job.config_name,
        "task": task,
        "hydra": hydra_node,
    }
    path = _entry_path(_key(args, cwd))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry), encoding="utf-8")
    os.replace(tmp, path)
    _prune(path.parent, KEEP)
    return True


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently used entries (a hit touches its entry)."""
    entries = [e for e in os.scandir(folder) if e.name.endswith(".json")]
    if len(entries) <= keep:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns, reverse=True)
    for e in entries[keep:]:
        with contextlib.suppress(OSError):  # another run may have pruned it first
            os.unlink(e.path)


def _config(entry: dict[str, Any]) -> Any:
    """The full config (task config plus the ``hydra`` node) Hydra composed, rebuilt."""
    from hydra.conf import HydraConf
    from omegaconf import DictConfig, OmegaConf

    schema = OmegaConf.structured(HydraConf)
    OmegaConf.set_struct(schema, False)  # groups such as hydra/env add keys, as when composing
    hydra_node = OmegaConf.merge(schema, entry["hydra"])
    assert isinstance(hydra_node, DictConfig)
    if "defaults" not in entry["hydra"]:
        del hydra_node["defaults"]  # the schema's defaults list, which composing consumes
    cfg = OmegaConf.create(entry["task"])
    with _open(cfg):
        cfg.hydra = hydra_node
    OmegaConf.set_struct(cfg, True)
    OmegaConf.set_readonly(cfg.hydra, True)
    return cfg


def _open(cfg: Any) -> Any:
    from omegaconf import open_dict

    return open_dict(cfg)


def run_cached(args: Sequence[str], task: Callable[[Any], Any]) -> bool:
    """Run ``task`` as ``hydra.main`` would, on the cached composition of ``args``, if any.

    Returns False (nothing done) when there is no valid entry; the caller then runs Hydra.
    """
    entry = lookup(args)
    if entry is None:
        return False
    from hydra import version
    from hydra._internal.callbacks import Callbacks
    from hydra._internal.utils import run_and_report
    from hydra.core.utils import JobRuntime, configure_log, run_job, setup_globals
    from hydra.types import HydraContext

    version.setbase(None)  # as hydra.main(version_base=None) does
    setup_globals()
    try:
        cfg = _config(entry)
        names = str(entry["task_name"]), str(entry["config_name"])
    except Exception:  # noqa: BLE001 - a damaged entry only costs a composition
        return False

    def run() -> None:
        JobRuntime.instance().set("name", names[0])
        configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        callbacks = Callbacks(cfg)
        callbacks.on_run_start(config=cfg, config_name=names[1])
        ret = run_job(
            hydra_context=HydraContext(config_loader=None, callbacks=callbacks),  # type: ignore[arg-type]
            task_function=task,
            config=cfg,
            job_dir_key="hydra.run.dir",
            job_subdir_key=None,
        )
        callbacks.on_run_end(config=cfg, config_name=names[1], job_return=ret)
        _ = ret.return_value  # raises the task's exception, as Hydra does

    run_and_report(run)
    return True
