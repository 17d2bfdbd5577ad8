"""A plain ``python -m mlops OVERRIDES`` run, as Hydra's run mode does it, composing at most once.

``hydra.main`` composes the config twice for every run: once to read ``hydra.mode`` (its
``get_mode``), once more to run; and its job runner (``hydra.core.utils.run_job``) deep-copies
the whole config twice more (one copy for the task, one of the ``hydra`` node) and emits
``.hydra/config.yaml`` from the copy. On a 1,000-step pipeline that is 0.4 s a composition,
0.07 s a copy and 0.1 s of YAML; on the iris pipeline a composition is most of what mlops adds
to a first run.

For a *plain* run -- every argument an override: no ``-m``, ``--cfg``, ``--help`` or other flag,
which ``hydra.main`` handles as it always did -- this module:

1. takes the composition from the compose cache (:mod:`mlops.compose_cache`) when nothing it
   was made from has changed; otherwise
2. composes once, with Hydra's public compose API over the same search path ``hydra.main``
   builds (``pkg://mlops.conf`` plus the search-path plugins), in run mode. If that fails, or
   the config asks for something this path does not do (``hydra.mode: MULTIRUN``,
   ``hydra.verbose``), or no pipeline name came out of it, nothing has run and the caller hands
   the command line to ``hydra.main``, which reports or runs it exactly as before;
3. runs the job as ``Hydra.run`` and ``run_job`` do: logging, callbacks, ``hydra.run.dir``,
   ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml``, ``hydra.job.chdir``,
   ``hydra.job.env_set``, errors reported by Hydra's ``run_and_report``.

Why not Hydra's extension points: a launcher plugin only runs sweeps (``-m``), and
``hydra.main`` composes twice before any plugin is called; ``run_job`` is what launcher plugins
call, but its copies cannot be turned off. So step 3 follows ``run_job`` (Hydra 1.3) line by
line, minus the copies: the task's copy comes from a pickle of the composition (five times
faster than ``copy.deepcopy``, and already made for the compose cache), and the ``hydra`` node
saved to ``hydra.yaml`` is the one ``HydraConfig`` holds, which the task cannot change (it is
read-only). ``tests/test_hydra_run.py`` checks that what a run writes and prints is what
``hydra.main`` gives (``--run`` selects that path).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import compose_cache
from .compose_cache import Composed

if TYPE_CHECKING:
    from hydra.core.utils import JobReturn
    from omegaconf import DictConfig

__all__ = ["CONFIG_MODULE", "CONFIG_NAME", "JOB_NAME", "compose_once", "run", "run_job"]

#: What ``hydra.main(config_path="conf", config_name="mlops")`` in :mod:`mlops.cli` amounts to:
#: the primary config's package, its name, and the job name (the task function's module).
CONFIG_MODULE = "mlops.conf"
CONFIG_NAME = "mlops"
JOB_NAME = "cli"

Task = Callable[[Any], Any]


def run(args: Sequence[str], task: Task) -> bool:
    """Run ``task`` on the config of the plain command line ``args``, as ``hydra.main`` would.

    Returns False, having run and printed nothing, when ``args`` are not plain overrides or
    composing them should be left to ``hydra.main`` (which then reports the error, or runs a
    sweep); the caller then calls it.
    """
    if not compose_cache.cacheable(args):
        return False
    composed = compose_cache.load(args)
    if composed is None:
        composed = compose_once(args)
        if composed is None:
            return False
    _run(composed, task)
    return True


def compose_once(args: Sequence[str]) -> Composed | None:
    """Compose ``args`` in run mode as ``hydra.main`` would, and record it in the compose cache.

    None (and Hydra left as it was) if composing fails or the result is not a plain run.
    """
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    initialize_config_module(CONFIG_MODULE, job_name=JOB_NAME, version_base=None)
    try:
        cfg = compose(CONFIG_NAME, overrides=list(args), return_hydra_config=True)
        plain = (
            cfg.hydra.mode in (None, RunMode.RUN)  # MULTIRUN set in a config: a sweep
            and not cfg.hydra.verbose  # Hydra's debug report of the composition
            and not OmegaConf.is_missing(cfg.get("pipeline", {}), "name")  # mlops explains
        )
    except Exception:  # noqa: BLE001 - hydra.main composes it again and reports the error
        plain = False
    if not plain:
        GlobalHydra.instance().clear()
        return None
    if cfg.hydra.mode is None:  # what hydra.main's `_run_app` adds when no config sets a mode
        with open_dict(cfg.hydra):
            cfg.hydra.mode = RunMode.RUN
            cfg.hydra.overrides.hydra.append("hydra.mode=RUN")
    # Composing resolves ${now:...} already (hydra.run.dir's folder is the composition's time),
    # and OmegaConf keeps the values in the config: the cached copy must not keep them.
    resolved = OmegaConf.get_cache(cfg)
    OmegaConf.clear_cache(cfg)
    config_bytes = compose_cache.dumps(cfg)
    OmegaConf.set_cache(cfg, resolved)
    task = compose_cache.task_copy(config_bytes)
    composed = Composed(
        config=cfg,
        task=task,
        config_yaml=OmegaConf.to_yaml(task),
        task_name=JOB_NAME,
        config_name=CONFIG_NAME,
    )
    compose_cache.record(composed, args, config_bytes)
    return composed


def _run(composed: Composed, task: Task) -> None:
    """``Hydra.run``: logging, the run's callbacks, the job, then its error if it failed."""
    from hydra import version
    from hydra._internal.callbacks import Callbacks  # the callbacks of hydra.callbacks
    from hydra._internal.utils import run_and_report  # Hydra's error report (HYDRA_FULL_ERROR)
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import JobRuntime, configure_log, setup_globals

    cfg = composed.config
    version.setbase(None)  # as hydra.main(version_base=None) does
    setup_globals()

    def run_app() -> None:
        JobRuntime.instance().set("name", composed.task_name)
        configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        callbacks = Callbacks(cfg)
        callbacks.on_run_start(config=cfg, config_name=composed.config_name)
        ret = run_job(composed, task, callbacks)
        callbacks.on_run_end(config=cfg, config_name=composed.config_name, job_return=ret)
        _ = ret.return_value  # raises the task's exception, as Hydra.run does

    try:
        run_and_report(run_app)
    finally:
        GlobalHydra.instance().clear()  # as hydra.main leaves it


def run_job(composed: Composed, task: Task, callbacks: Any) -> JobReturn:
    """``hydra.core.utils.run_job`` for a run (``hydra.run.dir``), without copying the config.

    Follows Hydra 1.3's ``run_job`` step by step; the differences are the two copies (the task's
    config is ``composed.task``; ``hydra.yaml`` and the job's return hold the ``hydra`` node
    ``HydraConfig`` keeps) and ``config.yaml``, written from ``composed.config_yaml``.
    """
    from hydra import version
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import (
        JobReturn,
        JobRuntime,
        JobStatus,
        _flush_loggers,
        configure_log,
        env_override,
    )
    from omegaconf import OmegaConf, open_dict, read_write

    config, task_cfg = composed.config, composed.task
    old_cwd = os.getcwd()
    orig_hydra_cfg = HydraConfig.instance().cfg
    HydraConfig.instance().set_config(config)  # for interpolations in hydra.run.dir
    output_dir = str(OmegaConf.select(config, "hydra.run.dir"))
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = os.path.abspath(output_dir)
    HydraConfig.instance().set_config(config)
    chdir: bool | None = None
    try:
        ret = JobReturn()
        # run_job's copy is taken now: it carries the values ${now:} resolved for the folder
        OmegaConf.copy_cache(from_config=config, to_config=task_cfg)
        ret.cfg = task_cfg
        hydra_cfg: DictConfig = HydraConfig.instance().cfg  # type: ignore[assignment]
        ret.hydra_cfg = hydra_cfg
        overrides = OmegaConf.to_container(config.hydra.overrides.task)
        assert isinstance(overrides, list)
        ret.overrides = overrides
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        chdir = hydra_cfg.hydra.job.chdir
        if chdir is None:  # version_base=None: Hydra 1.2's default, stay in the folder
            chdir = not version.base_at_least("1.2")
        if chdir:
            os.chdir(output_dir)
            ret.working_dir = output_dir
        else:
            ret.working_dir = os.getcwd()
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        if config.hydra.output_subdir is not None:
            saved = Path(config.hydra.runtime.output_dir) / Path(config.hydra.output_subdir)
            saved.mkdir(parents=True, exist_ok=True)
            (saved / "config.yaml").write_text(composed.config_yaml, encoding="utf-8")
            (saved / "hydra.yaml").write_text(OmegaConf.to_yaml(hydra_cfg), encoding="utf-8")
            (saved / "overrides.yaml").write_text(
                OmegaConf.to_yaml(config.hydra.overrides.task), encoding="utf-8"
            )
        with env_override(hydra_cfg.hydra.job.env_set):
            callbacks.on_job_start(config=config, task_function=task)
            try:
                ret.return_value = task(task_cfg)
                ret.status = JobStatus.COMPLETED
            except Exception as e:  # noqa: BLE001 - as run_job: the caller raises it after on_job_end
                ret.return_value = e
                ret.status = JobStatus.FAILED
        ret.task_name = JobRuntime.instance().get("name")
        _flush_loggers()
        callbacks.on_job_end(config=config, job_return=ret)
        return ret
    finally:
        HydraConfig.instance().cfg = orig_hydra_cfg
        if chdir:
            os.chdir(old_cwd)
