"""From a composed config that names a Python pipeline to the config the compiler reads.

A composed config names a Python pipeline with ``pipeline._target_`` (a YAML file
``conf/pipeline/NAME.yaml`` saying ``pipeline: {name: NAME, _target_: my_pipelines.predict}``),
or :func:`mlops.api.run_pipeline` hands the pipeline object over. Expanding it builds the config
in the order a YAML pipeline is composed in, so that each layer changes the one below it:

1. the rest of the composed config (registry, executor, cache ...), untouched;
2. the traced pipeline: its steps, model and cache setting;
3. what the YAML file sets under ``pipeline``, ``model`` and ``steps`` (values the schema's
   defaults do not explain);
4. the overrides of those keys, applied again with Hydra's override grammar, so that
   ``steps.predict.batch_size=64``, ``model.version=latest`` or ``~steps.train.C`` act on the
   traced steps exactly as they act on a YAML pipeline's.

Expansion happens once, in :func:`expand_pipeline`, called by :func:`mlops.api.run_config` and by
the sweep launcher for each job; the expanded config has ``pipeline._target_`` null, so expanding
it again changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, MlopsError, did_you_mean

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from ._pipeline import Pipeline

__all__ = ["expand_pipeline", "import_pipeline", "is_pipeline_override", "split_overrides"]

_PIPELINE_KEYS = ("pipeline", "model", "steps")


def import_pipeline(target: str, key: str = "pipeline._target_") -> Pipeline:
    """The ``@pipeline`` object at ``target`` (``package.module.function`` or ``module:function``).

    Raises:
        ConfigError: naming ``key``, if it cannot be imported or is not a pipeline.
    """
    from ._pipeline import Pipeline

    if not isinstance(target, str):
        raise ConfigError(f"must be an import path such as my_pipelines.do_predictions, got "
                          f"{target!r}", key)  # fmt: skip
    from ..targets import import_target

    module, module_name, attr = import_target(target, key, colon=True)
    obj = getattr(module, attr, None)
    if isinstance(obj, Pipeline):
        return obj
    names = [n for n, v in vars(module).items() if isinstance(v, Pipeline)]
    if obj is None:
        raise ConfigError(
            f"module '{module_name}' has no '{attr}'.{did_you_mean(attr, names)}"
            + (f" Its pipelines: {', '.join(sorted(names))}." if names else ""),
            key,
        )
    raise ConfigError(
        f"'{target}' is not a pipeline; decorate the function with @pipeline "
        "(from mlops import pipeline)",
        key,
    )


def is_pipeline_override(override: str) -> bool:
    """True for an override of a key under ``pipeline``, ``model`` or ``steps``.

    Examples:
        >>> [is_pipeline_override(o) for o in ["steps.train.C=1", "~steps.a.b", "+pipeline=x",
        ...                                    "registry.uri=/r", "model.version=3"]]
        [True, True, False, False, True]
    """
    key = override.lstrip("~+").split("=", 1)[0]
    head, dot, _ = key.partition(".")
    return bool(dot) and head in _PIPELINE_KEYS and "@" not in key


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(for composing, for the pipeline)``: the pipeline's keys only exist after tracing."""
    rest = [o for o in overrides if not is_pipeline_override(o)]
    return rest, [o for o in overrides if is_pipeline_override(o)]


def expand_pipeline(
    cfg: DictConfig,
    overrides: Sequence[str] | None = None,
    *,
    pipeline: Pipeline | None = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
) -> DictConfig:
    """``cfg`` with the Python pipeline it names traced in (see the module docstring).

    Args:
        cfg: a composed config.
        overrides: the overrides it was composed with; None reads them from Hydra's runtime
            config (the command line, or a sweep job's) when there is one.
        pipeline: the pipeline to trace; None imports ``pipeline._target_``, and a config
            without one is returned as it is.
        args: positional arguments of the pipeline function.
        kwargs: keyword arguments of the pipeline function.
    """
    from omegaconf import OmegaConf, open_dict

    target = OmegaConf.select(cfg, "pipeline._target_", default=None)
    if pipeline is None:
        if not target:
            return cfg
        pipeline = import_pipeline(str(target))
    traced = pipeline.trace(*args, **(kwargs or {}))
    store, allow_pickle = None, bool(OmegaConf.select(cfg, "registry.allow_pickle", default=False))
    if traced.external and not cfg.get("plan"):
        from ..registry import open_registry  # values are stored only when the pipeline runs

        store = open_registry(cfg).artifacts
    base = traced.to_config(store, allow_pickle=allow_pickle)
    given = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(given, dict)
    pipeline_cfg = {**base["pipeline"], **_set_by_yaml(given.get("pipeline"), _DEFAULTS)}
    pipeline_cfg["_target_"] = None
    model_cfg = {**base.get("model", {}), **_set_by_yaml(given.get("model"), _MODEL_DEFAULTS)}
    steps = OmegaConf.merge(base["steps"], given.get("steps") or {})
    out = copy.deepcopy(cfg)
    with open_dict(out):
        out.pipeline = OmegaConf.merge(out.pipeline, pipeline_cfg)
        if model_cfg:
            out.model = OmegaConf.merge(out.model, model_cfg)
        out.steps = steps
    # as in the schema: a step's arguments are checked by the compiler against the function's
    # signature (it names the real parameters), not by OmegaConf's struct mode
    OmegaConf.set_struct(out.steps, False)
    if overrides is None:
        overrides = _runtime_overrides()
    _apply_overrides(out, [o for o in overrides if is_pipeline_override(o)])
    return out


_DEFAULTS: dict[str, Any] = {"name": "???", "enable_cache": True, "_target_": None}
_MODEL_DEFAULTS: dict[str, Any] = {"name": None, "version": None, "description": None, "tags": []}


def _set_by_yaml(node: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``node`` that the schema's defaults do not explain."""
    if not isinstance(node, dict):
        return {}
    return {k: v for k, v in node.items() if k not in defaults or v != defaults[k]}


def _runtime_overrides() -> list[str]:
    """The overrides of the running Hydra app or sweep job (none outside one)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [str(o) for o in HydraConfig.get().overrides.task]


def _apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Apply ``overrides`` to ``cfg`` with Hydra's grammar (``KEY=V``, ``+KEY=V``, ``~KEY``)."""
    if not overrides:
        return
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as e:
        raise ConfigError(str(e).splitlines()[0]) from e
    for o in parsed:
        key = o.key_or_group
        if o.is_sweep_override():
            continue  # a sweep's list: each job gets (and applies) its own value
        try:
            if o.is_delete():
                parent_key, _, leaf = key.rpartition(".")
                parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
                if parent is None or leaf not in parent:
                    raise ConfigError(f"cannot delete '{key}': the pipeline has no such key", key)
                with open_dict(cfg):
                    del parent[leaf]
            elif o.is_add() or o.is_force_add():
                with open_dict(cfg):
                    OmegaConf.update(cfg, key, o.value(), merge=True, force_add=True)
            else:
                OmegaConf.update(cfg, key, o.value(), merge=True)
        except OmegaConfBaseException as e:
            raise ConfigError(str(e).splitlines()[0], key) from e
        except MlopsError:
            raise
