"""Run a pipeline from a composed config: the one path shared by the CLI and :func:`run`."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from .console import output as show_result
from .console import say
from .errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from .compiler import Plan
    from .pipelines import Pipeline
    from .registry import Registry
    from .run_store import Run
    from .schedulers import ExecutorOptions

__all__ = [
    "check_pipeline_exists",
    "check_registry_config",
    "check_registry_exists",
    "executor_options",
    "list_pipelines",
    "local_registry_path",
    "open_registry",
    "run",
    "run_config",
    "run_pipeline",
]


def list_pipelines(cwd: str | None = None) -> list[str]:
    """The pipelines ``+pipeline=NAME`` can select: the current folder's and the packaged ones.

    Examples:
        >>> "train_and_promote" in list_pipelines()
        True
    """
    from importlib.resources import files

    names: set[str] = set()
    project = os.path.join(cwd or os.getcwd(), "conf", "pipeline")
    if os.path.isdir(project):
        names.update(f[: -len(".yaml")] for f in os.listdir(project) if f.endswith(".yaml"))
    packaged = files("mlops.conf").joinpath("pipeline")
    names.update(e.name[: -len(".yaml")] for e in packaged.iterdir() if e.name.endswith(".yaml"))
    return sorted(names)


def check_pipeline_exists(name: str, cwd: str | None = None, *, name_given: bool = False) -> None:
    """Raise a ConfigError if ``conf/pipeline/NAME.yaml`` cannot be found or composed.

    Hydra would report a missing file itself, over several lines and with its search path, and a
    malformed one with a traceback; this is the same check as one message that names the
    choices, or the file, line and fix (:func:`mlops.pipeline_files.check_pipeline_file`).
    ``name_given``: ``pipeline.name`` is set by an override, so the file need not set it.
    """
    from .errors import did_you_mean
    from .pipeline_files import check_pipeline_file

    available = list_pipelines(cwd)
    if name in available:
        check_pipeline_file(name, cwd, name_given=name_given)
        return
    raise ConfigError(
        f"no pipeline named '{name}'.{did_you_mean(name, available)} Available pipelines: "
        f"{', '.join(available)}. To add it, create conf/pipeline/{name}.yaml in the current "
        "folder.",
        f"+pipeline={name}",
    )


def _check_top_level_keys(cfg: DictConfig) -> None:
    """Reject keys added with ``+KEY=...`` that the schema does not know (a typo, usually)."""
    from dataclasses import fields

    from .errors import did_you_mean
    from .schema import MlopsConfig

    known = [f.name for f in fields(MlopsConfig)]
    for key in cfg:
        if key not in known:
            raise ConfigError(
                f"unknown config key.{did_you_mean(str(key), known)} Top-level keys: "
                f"{', '.join(known)}.",
                str(key),
            )


def executor_options(cfg: DictConfig) -> ExecutorOptions:
    """The checked ``executor.*`` options of a config (the one place that reads them)."""
    from .schedulers import ExecutorOptions

    return ExecutorOptions.from_config(cfg.executor)


def _project_on_path() -> None:
    """Make the user's step modules importable from the current folder, as `python -m` does."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def open_registry(cfg: DictConfig) -> Registry:
    """The registry named by ``cfg.registry`` (see :func:`mlops.registry.open_registry`)."""
    from .registry import open_registry as open_

    return open_(cfg)


def _check_pipeline_selected(cfg: DictConfig, available: Sequence[str] | None) -> None:
    from omegaconf import OmegaConf

    if "pipeline" not in cfg or OmegaConf.is_missing(cfg.pipeline, "name"):
        chosen = _chosen_pipeline()
        if chosen is not None:  # a file was selected, but it does not name the pipeline
            from .pipeline_files import find_pipeline_file

            where = find_pipeline_file(chosen) or f"conf/pipeline/{chosen}.yaml"
            raise ConfigError(
                f"+pipeline={chosen} selects {where}, which does not set pipeline.name; add "
                f"'pipeline:' with 'name: {chosen}' under it",
                "pipeline.name",
            )
        choices = f" Available pipelines: {', '.join(available)}." if available else ""
        raise ConfigError(f"no pipeline selected: run with +pipeline=NAME.{choices}", "pipeline")


def _chosen_pipeline() -> str | None:
    """The ``+pipeline=NAME`` Hydra composed, when Hydra says (under ``hydra.main``)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        choice = HydraConfig.get().runtime.choices.get("pipeline")
    except Exception:  # not under hydra.main (compose API): nothing to say
        return None
    return str(choice) if choice else None


def check_registry_config(cfg: DictConfig) -> None:
    """Refuse a ``registry.uri`` that cannot be a registry, before anything is written.

    An empty URI would make the current folder the registry; a path naming a file fails later
    with an OS error that does not say which key to fix.
    """
    uri = cfg.registry.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigError(
            f"is empty ({uri!r}); set it to a folder (registry.uri=.mlops, the default) or a "
            "URL (registry.uri=s3://BUCKET/PREFIX)",
            "registry.uri",
        )
    path = local_registry_path(uri)
    if path is not None and os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(
            f"{path} is a file, not a folder; point registry.uri at a folder (it is created if "
            "missing) or a URL",
            "registry.uri",
        )


def local_registry_path(uri: str) -> str | None:
    """The local folder of a registry URI, or None for a remote one.

    Examples:
        >>> local_registry_path("file:///tmp/reg"), local_registry_path("s3://b/p")
        ('/tmp/reg', None)
    """
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if "://" in uri:
        return None
    return os.path.abspath(os.path.expanduser(uri))


def check_registry_exists(uri: str) -> None:
    """For commands that read a registry: a local folder that does not exist is a mistake.

    ``python -m mlops`` creates the registry folder; ``mlops versions`` or ``mlops gc`` on a
    mistyped path would otherwise report an empty registry.
    """
    path = local_registry_path(uri) if uri.strip() else None
    if not uri.strip():
        raise ConfigError("is empty; pass a folder or a URL", "--registry")
    if path is not None and not os.path.isdir(path):
        what = "is a file, not a registry folder" if os.path.exists(path) else "does not exist"
        raise ConfigError(
            f"{path} {what}. Pass the folder python -m mlops wrote to with --registry PATH "
            "(the default is .mlops in the current folder)",
            "--registry",
        )


def run_config(
    cfg: DictConfig,
    *,
    available_pipelines: Sequence[str] | None = None,
    stream: IO[str] | None = None,
    exit_on_second_interrupt: bool = False,
) -> Run | Plan:
    """Compile and execute a composed config; with ``plan=true`` return the plan, run nothing.

    ``exit_on_second_interrupt``: a second Ctrl-C ends the process (the command line does this).
    """
    from .compiler import compile_pipeline
    from .executor import CacheOptions, Progress, execute
    from .pipelines import expand_pipeline

    out = stream or sys.stdout
    _project_on_path()  # a Python pipeline's module, like the step modules, is the user's
    cfg = expand_pipeline(cfg)  # pipeline._target_: trace the Python pipeline it names
    _check_pipeline_selected(cfg, available_pipelines)
    _check_top_level_keys(cfg)
    executor = executor_options(cfg)
    check_registry_config(cfg)
    registry = open_registry(cfg)
    plan = compile_pipeline(cfg, registry.models, file_stamps=registry.cache)
    if cfg.get("plan"):
        from .explain import explain

        refresh = list(cfg.cache.refresh)
        show_result(explain(plan, registry, refresh=refresh, enabled=bool(cfg.cache.enabled)), out)
        if cfg.get("report"):
            from .report_cli import write_plan_report

            path = write_plan_report(
                plan, registry, str(cfg.report), refresh=refresh, enabled=bool(cfg.cache.enabled)
            )
            _tell(f"mlops: plan report written to {path}", out)
        return plan
    model = plan.model
    where = f"registry {registry.uri}, executor {executor.name}"
    _tell(f"mlops: running {plan.pipeline} ({len(plan.steps)} steps; {where})", out)
    started = time.perf_counter()
    cache = CacheOptions(enabled=bool(cfg.cache.enabled), refresh=frozenset(cfg.cache.refresh))
    progress = Progress(len(plan.steps), out)
    try:
        run_ = execute(
            plan,
            registry,
            scheduler=executor.name,
            num_workers=executor.num_workers,
            address=executor.address,
            n_workers=executor.n_workers,
            threads_per_worker=executor.threads_per_worker,
            cache=cache,
            progress=progress,
            exit_on_second_interrupt=exit_on_second_interrupt,
        )
    except KeyboardInterrupt:
        progress.close()
        took = time.perf_counter() - started
        _tell(f"mlops: {plan.pipeline} interrupted after {took:.2f}s", out)
        raise
    except Exception:
        progress.close()
        took = time.perf_counter() - started
        _tell(f"mlops: {plan.pipeline} failed after {took:.2f}s", out)
        raise
    finally:
        progress.close()  # the live line is gone before the summary (idempotent)
    counts: dict[str, int] = {}
    for status in run_.steps.values():
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    took = time.perf_counter() - started
    _tell(f"mlops: {plan.pipeline} completed in {took:.2f}s ({summary}); run {run_.id}", out)
    if model is not None and run_.model:
        mv = registry.models.resolve(model.name, int(run_.model["number"]))
        verb = "registered" if model.creates_version else f"used ({model.requested})"
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(mv.metadata.items()))
        _tell(
            f"mlops: model {mv.name} v{mv.number} {verb}; stage: {mv.stage}"
            + (f"; {metrics}" if metrics else ""),
            out,
        )
    for step_name, text in _final_texts(plan, run_):
        _tell(f"mlops: {step_name}: {text}", out)
    return run_


def _tell(text: str, out: IO[str]) -> None:
    """One line about the run, on the ``mlops.run`` logger (see :mod:`mlops.console`)."""
    say(text, out, logger="mlops.run")


def _final_texts(plan: Plan, run_: Run) -> list[tuple[str, str]]:
    """Short text outputs of the final steps (those nothing reads), e.g. promote's decision."""
    read = {d for sp in plan.steps.values() for d in sp.deps}
    texts: list[tuple[str, str]] = []
    for name in plan.steps:
        if name in read:
            continue
        for output, ref in run_.output_refs(name).items():
            if ref.format != "json" or ref.size > 500:
                continue
            value = run_.load(name, output)
            if isinstance(value, str):
                texts.append((name, value))
    return texts


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run(pipeline: str | Pipeline, overrides: Sequence[str] = (), *, quiet: bool = False) -> Run:
    """Run pipeline ``pipeline`` from Python, exactly as ``python -m mlops +pipeline=...`` does.

    Args:
        pipeline: the name of a config in ``conf/pipeline/`` (the current folder's, then the
            packaged examples), or a pipeline declared in Python (``@mlops.pipeline``).
        overrides: Hydra overrides, e.g. ``["steps.train.C=10", "registry.uri=/tmp/reg"]``.
        quiet: do not print progress.

    Returns:
        The run record.

    Example::

        import mlops
        run = mlops.run("train_and_promote", ["registry.uri=/tmp/reg"])
        run.steps  # {'load_data': 'ran', 'split': 'ran', ..., 'promote': 'ran'}
    """
    import io

    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from .pipelines import expand_pipeline
    from .run_store import Run
    from .schema import register

    if not isinstance(pipeline, str):
        return run_pipeline(pipeline, overrides, quiet=quiet)
    register()
    check_pipeline_exists(pipeline)
    GlobalHydra.instance().clear()
    with initialize_config_module("mlops.conf", version_base=None):
        cfg = compose("mlops", overrides=[f"+pipeline={pipeline}", *overrides])
    _project_on_path()
    cfg = expand_pipeline(cfg, list(overrides))  # a YAML file naming a Python pipeline
    result = run_config(cfg, stream=io.StringIO() if quiet else None)
    assert isinstance(result, Run), "plan=true returns a plan; use mlops.compile for that"
    return result


def run_pipeline(
    pipeline: Pipeline,
    overrides: Sequence[str] = (),
    *,
    quiet: bool = False,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
) -> Run:
    """Run a pipeline declared in Python with the command line's overrides.

    The primary config ``mlops`` is composed with Hydra (registry, executor, cache ...), the
    traced pipeline is merged in, and the overrides of its keys (``model.version=latest``,
    ``steps.predict.batch_size=64``) are applied to it with Hydra's override grammar, exactly as
    they act on a YAML pipeline.

    Args:
        pipeline: a ``@mlops.pipeline`` function.
        overrides: Hydra overrides, e.g. ``["registry.uri=/tmp/reg", "executor=sync"]``.
        quiet: do not print progress.
        args: positional arguments of the pipeline function.
        kwargs: keyword arguments of the pipeline function.

    Returns:
        The run record.

    .. versionadded:: 0.2.0
    """
    import io

    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from .pipelines import expand_pipeline, split_overrides
    from .run_store import Run
    from .schema import register

    register()
    for_compose, _ = split_overrides(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_module("mlops.conf", version_base=None):
        cfg = compose("mlops", overrides=for_compose)
    _project_on_path()
    cfg = expand_pipeline(cfg, list(overrides), pipeline=pipeline, args=args, kwargs=kwargs)
    result = run_config(cfg, stream=io.StringIO() if quiet else None)
    assert isinstance(result, Run), "plan=true returns a plan; use mlops.compile for that"
    return result
