"""The mlops Hydra launcher (``hydra/launcher=mlops``): all jobs of a sweep in one Dask graph.

It is the default launcher of ``python -m mlops`` (``override hydra/launcher: mlops`` in
``conf/mlops.yaml``); ``hydra/launcher=basic`` selects Hydra's own, which runs the jobs one
after another, each as a plain ``python -m mlops`` run.

For each job it does what Hydra's basic launcher does -- compose the job's config, make its
output folder ``<hydra.sweep.dir>/<job number>`` and save its ``.hydra/`` configs -- but instead
of running the job it compiles it. Then :func:`mlops.sweep.run_sweep` runs every job together on
the first job's executor, and the launcher prints a summary table and saves it as
``sweep_summary.json`` and ``sweep_summary.txt`` in the sweep folder. If a job failed, the
process exits with status 1 after the summary (``HYDRA_FULL_ERROR=1``: Hydra raises the first
job's error instead).

Config (``hydra.launcher.*``): ``promotion.step`` (``promote``), ``promotion.metric``
(``accuracy``) and ``promotion.greater_is_better`` (``true``); see :mod:`mlops.sweep`.
"""

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)
#: the sweep's own lines (mlops's messages: see mlops.console)
_SWEEP = "mlops.sweep"


@dataclass
class PromotionConf:
    step: Optional[str] = "promote"  # noqa: UP045 - OmegaConf reads these
    metric: Optional[str] = "accuracy"  # noqa: UP045
    greater_is_better: bool = True


@dataclass
class MlopsLauncherConf:
    _target_: str = "hydra_plugins.mlops_plugins.launcher.MlopsLauncher"
    promotion: PromotionConf = field(default_factory=PromotionConf)


ConfigStore.instance().store(
    group="hydra/launcher", name="mlops", node=MlopsLauncherConf, provider="mlops"
)

# Hydra's own logging and job logging, as Hydra's `default` ones plus a filter on every handler
# that hides secrets (the basic launcher logs each job's overrides: `[HYDRA] #0 : key=...`).
# Selected in mlops/conf/mlops.yaml; `hydra/hydra_logging=default` goes back to Hydra's.
_REDACT = {"redact_secrets": {"()": "mlops.redaction.RedactingFilter"}}
ConfigStore.instance().store(
    group="hydra/hydra_logging",
    name="mlops",
    node={
        "version": 1,
        "formatters": {"simple": {"format": "[%(asctime)s][HYDRA] %(message)s"}},
        "filters": _REDACT,
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "simple",
                "stream": "ext://sys.stdout",
                "filters": ["redact_secrets"],
            }
        },
        "root": {"level": "INFO", "handlers": ["console"]},
        "disable_existing_loggers": False,
    },
    provider="mlops",
)
ConfigStore.instance().store(
    group="hydra/job_logging",
    name="mlops",
    node={
        "version": 1,
        "formatters": {
            "simple": {"format": "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"}
        },
        "filters": _REDACT,
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "simple",
                "stream": "ext://sys.stdout",
                "filters": ["redact_secrets"],
            },
            "file": {
                "class": "logging.FileHandler",
                "formatter": "simple",
                "filename": "${hydra.runtime.output_dir}/${hydra.job.name}.log",
                "filters": ["redact_secrets"],
            },
        },
        "root": {"level": "INFO", "handlers": ["console", "file"]},
        "disable_existing_loggers": False,
    },
    provider="mlops",
)


class MlopsLauncher(Launcher):
    """Compile every job of a sweep, run them as one graph, promote in order, summarize."""

    def __init__(self, promotion: Any = None) -> None:
        super().__init__()
        from mlops.sweep import PromotionPolicy

        p = dict(promotion or {})
        self.policy = PromotionPolicy(
            step=p.get("step", "promote"),
            metric=p.get("metric", "accuracy"),
            greater_is_better=bool(p.get("greater_is_better", True)),
        )
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self._composed: dict[tuple[str, ...], DictConfig] = {}

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        self._composed = _remember_sweep_configs(hydra_context, config)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        from mlops.console import output, say
        from mlops.sweep import SweepJob, format_summary, run_sweep, summary, write_summary

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = str(self.config.hydra.sweep.dir)
        Path(sweep_dir).mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        n = len(job_overrides)
        say(f"mlops: sweep of {n} jobs in one graph; outputs in {sweep_dir}", logger=_SWEEP)

        jobs: list[SweepJob] = []
        returns: list[JobReturn] = []
        executors: list[Any] = []  # each job's checked ExecutorOptions
        for i, overrides in enumerate(job_overrides):
            number = initial_job_idx + i
            job = SweepJob(number, list(filter_overrides(overrides)))
            say(f"  #{number}: {job.label}", logger=_SWEEP)
            # the sweeper composed every job's config already (to validate the batch before
            # launching it): take that one rather than composing it a second time
            sweep_config = self._composed.pop(tuple(overrides), None)
            if sweep_config is None:
                sweep_config = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides)
                )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = number
                sweep_config.hydra.job.num = number
            task: Callable[[Any], Any] = functools.partial(
                _compile_job, job=job, executors=executors
            )
            ret = run_job(
                hydra_context=self.hydra_context,
                task_function=task,
                config=sweep_config,
                job_dir_key="hydra.sweep.dir",
                job_subdir_key="hydra.sweep.subdir",
            )
            if ret.status == JobStatus.FAILED:
                job.error = _message(ret._return_value)
            jobs.append(job)
            returns.append(ret)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)

        interrupted = False
        if any(j.plan is not None for j in jobs):
            from mlops.errors import MlopsError

            try:
                get, close = _scheduler(executors[0], jobs)
            except MlopsError as e:  # e.g. a registry the cluster's workers cannot reach
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                say(f"Error: {e}", logger=_SWEEP, level=logging.ERROR)
                sys.exit(1)
            try:
                interrupted = run_sweep(jobs, get, self.policy, exit_on_second_interrupt=True)
            finally:
                if close is not None:
                    close()

        rows = summary(jobs, self.policy)
        text = format_summary(rows, time.perf_counter() - started)
        paths = write_summary(sweep_dir, rows, text)
        say("mlops: sweep summary (also in " + " and ".join(paths) + ")", logger=_SWEEP)
        if text:
            output(text.rstrip("\n"))  # the sweep's result: not a log message
        if interrupted:  # the first Ctrl-C said what happens; every run is recorded interrupted
            from mlops.interrupts import EXIT_INTERRUPTED

            sys.exit(EXIT_INTERRUPTED)

        for job, ret in zip(jobs, returns, strict=True):
            if ret.status == JobStatus.FAILED:
                continue
            if job.failed is not None:
                ret.status, ret.return_value = JobStatus.FAILED, job.failed
            else:
                ret.return_value = job.result
        failed = [j for j in jobs if j.error or j.failed]
        if failed and os.environ.get("HYDRA_FULL_ERROR") != "1":
            say(
                f"Error: {len(failed)} of {len(jobs)} jobs failed",
                logger=_SWEEP,
                level=logging.ERROR,
            )
            sys.exit(1)
        return returns


def _remember_sweep_configs(
    hydra_context: HydraContext, config: DictConfig
) -> dict[tuple[str, ...], DictConfig]:
    """Keep the job configs the sweeper composes to validate a batch, for the launcher to use.

    Hydra's sweeper composes each job's config once to check that the batch can be composed
    (``Sweeper.validate_batch_is_legal``), then throws it away, and the launcher composes it again
    (about 0.15 s a job: YAML, defaults list, merges). The config loader is shared by the two, so
    its ``load_sweep_config`` is wrapped, on this loader only, to remember what it composed from
    this sweep's own config, by the job's overrides; the launcher takes each one out once.
    """
    composed: dict[tuple[str, ...], DictConfig] = {}
    loader = hydra_context.config_loader
    compose = loader.load_sweep_config

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        sweep_config = compose(master_config, sweep_overrides)
        if master_config is config:
            composed[tuple(sweep_overrides)] = sweep_config
        return sweep_config

    loader.load_sweep_config = load_sweep_config  # type: ignore[method-assign]
    return composed


def _compile_job(cfg: DictConfig, job: Any, executors: list[Any]) -> None:
    """Hydra's task for one job: compile it (nothing runs yet); plan=true prints the plan."""
    from mlops.api import check_registry_config, executor_options, open_registry, run_config
    from mlops.compiler import compile_pipeline
    from mlops.executor import CacheOptions
    from mlops.pipelines import expand_pipeline

    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # the user's step modules, as `python -m` makes them importable
    cfg = expand_pipeline(cfg)  # pipeline._target_: trace it, with this job's overrides
    if cfg.get("plan"):
        run_config(cfg)
        job.planned = True
        return
    options = executor_options(cfg)  # checked before anything is written
    check_registry_config(cfg)
    registry = open_registry(cfg)
    job.plan = compile_pipeline(cfg, registry.models, file_stamps=registry.cache)
    job.registry = registry
    job.cache = CacheOptions(enabled=bool(cfg.cache.enabled), refresh=frozenset(cfg.cache.refresh))
    executors.append(options)


def _scheduler(executor: Any, jobs: list[Any]) -> tuple[Any, Any]:
    """The first job's executor (executor.* is the same for every job of a sweep)."""
    get = executor.scheduler()
    check = getattr(get, "check_registry", None)
    try:
        for job in jobs:
            if check is not None and job.registry is not None:
                check(job.registry)
    except Exception:
        close = getattr(get, "close", None)
        if close is not None:
            close()
        raise
    return get, getattr(get, "close", None)


def _message(error: Any) -> str:
    from mlops.errors import describe

    return describe(error)
