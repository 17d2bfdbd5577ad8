"""Run a pipeline from a composed config: the one path shared by the CLI and :func:`run`."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from .compiler import Plan
    from .pipelines import Pipeline
    from .registry import Registry
    from .run_store import Run

__all__ = [
    "check_pipeline_exists",
    "list_pipelines",
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


def check_pipeline_exists(name: str, cwd: str | None = None) -> None:
    """Raise a ConfigError naming the choices if no ``conf/pipeline/NAME.yaml`` can be found.

    Hydra would report this itself, over several lines and with its search path; this is the
    same check as one message that names the choices and the fix.
    """
    from .errors import did_you_mean

    available = list_pipelines(cwd)
    if name in available:
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
        choices = f" Available pipelines: {', '.join(available)}." if available else ""
        raise ConfigError(f"no pipeline selected: run with +pipeline=NAME.{choices}", "pipeline")


def run_config(
    cfg: DictConfig,
    *,
    available_pipelines: Sequence[str] | None = None,
    stream: IO[str] | None = None,
) -> Run | Plan:
    """Compile and execute a composed config; with ``plan=true`` return the plan, run nothing."""
    from .compiler import compile_pipeline
    from .executor import CacheOptions, Progress, execute
    from .pipelines import expand_pipeline

    out = stream or sys.stdout
    _project_on_path()  # a Python pipeline's module, like the step modules, is the user's
    cfg = expand_pipeline(cfg)  # pipeline._target_: trace the Python pipeline it names
    _check_pipeline_selected(cfg, available_pipelines)
    _check_top_level_keys(cfg)
    registry = open_registry(cfg)
    plan = compile_pipeline(cfg, registry.models, file_stamps=registry.cache)
    if cfg.get("plan"):
        from .explain import explain

        refresh = list(cfg.cache.refresh)
        print(explain(plan, registry, refresh=refresh, enabled=bool(cfg.cache.enabled)), file=out)
        if cfg.get("report"):
            from .report_cli import write_plan_report

            path = write_plan_report(
                plan, registry, str(cfg.report), refresh=refresh, enabled=bool(cfg.cache.enabled)
            )
            print(f"mlops: plan report written to {path}", file=out)
        return plan
    executor = cfg.executor
    model = plan.model
    where = f"registry {registry.uri}, executor {executor.name}"
    print(f"mlops: running {plan.pipeline} ({len(plan.steps)} steps; {where})", file=out)
    started = time.perf_counter()
    cache = CacheOptions(enabled=bool(cfg.cache.enabled), refresh=frozenset(cfg.cache.refresh))
    try:
        run_ = execute(
            plan,
            registry,
            scheduler=str(executor.name),
            num_workers=executor.get("num_workers"),
            address=executor.get("address"),
            n_workers=executor.get("n_workers"),
            threads_per_worker=executor.get("threads_per_worker"),
            cache=cache,
            progress=Progress(len(plan.steps), out),
        )
    except Exception:
        took = time.perf_counter() - started
        print(f"mlops: {plan.pipeline} failed after {took:.2f}s", file=out, flush=True)
        raise
    counts: dict[str, int] = {}
    for status in run_.steps.values():
        counts[status] = counts.get(status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    took = time.perf_counter() - started
    print(f"mlops: {plan.pipeline} completed in {took:.2f}s ({summary}); run {run_.id}", file=out)
    if model is not None and run_.model:
        mv = registry.models.resolve(model.name, int(run_.model["number"]))
        verb = "registered" if model.creates_version else f"used ({model.requested})"
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(mv.metadata.items()))
        print(
            f"mlops: model {mv.name} v{mv.number} {verb}; stage: {mv.stage}"
            + (f"; {metrics}" if metrics else ""),
            file=out,
            flush=True,
        )
    for step_name, text in _final_texts(plan, run_):
        print(f"mlops: {step_name}: {text}", file=out, flush=True)
    return run_


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
