"""``mlops pipeline export MODULE:FUNC`` and ``mlops pipeline show NAME``.

``export`` prints the YAML pipeline a Python pipeline traces to (the file that, saved as
``conf/pipeline/NAME.yaml``, runs the same steps with the same cache keys); ``show`` prints the
steps and edges of a pipeline of either kind, by name (``+pipeline=NAME``) or import path.
Neither writes anything.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

from .errors import MlopsError

__all__ = ["export_yaml", "main", "show_text"]


def _on_path() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def export_yaml(target: str) -> str:
    """The YAML pipeline the Python pipeline at ``target`` (``module:function``) traces to."""
    from omegaconf import OmegaConf

    from .pipelines import import_pipeline

    _on_path()
    traced = import_pipeline(target, key=target).trace()
    config = traced.to_config()  # ExternalArtifact values: their ids, nothing is stored
    header = [
        "# @package _global_",
        f"# traced from {target} by `mlops pipeline export`",
    ]
    if any(a.path is None for a in traced.external):
        header.append(
            "# ${object:...} values are stored in a registry when the Python pipeline runs; run "
            "it once against that registry before running this file"
        )
    return "\n".join(header) + "\n" + OmegaConf.to_yaml(config)


def _composed(name: str) -> tuple[Any, str]:
    """The config of pipeline ``name`` (or of a Python pipeline at an import path), expanded."""
    from omegaconf import OmegaConf

    from .pipelines import expand_pipeline, import_pipeline

    _on_path()
    if ":" in name:
        traced = import_pipeline(name, key=name).trace()
        return OmegaConf.create(traced.to_config()), f"Python, {name}"
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from .api import check_pipeline_exists
    from .schema import register

    register()
    check_pipeline_exists(name)
    GlobalHydra.instance().clear()
    with initialize_config_module("mlops.conf", version_base=None):
        cfg = compose("mlops", overrides=[f"+pipeline={name}", "plan=true"])  # plan: store nothing
    target = OmegaConf.select(cfg, "pipeline._target_", default=None)
    kind = f"Python, {target}" if target else "YAML"
    return expand_pipeline(cfg, []), kind


def show_text(name: str) -> str:
    """The steps (target and params) and edges (references) of pipeline ``name``."""
    from omegaconf import DictConfig, OmegaConf

    from .schema import ArtifactInputRef, FileRef, ModelArtifactRef, ObjectRef, StepOutputRef

    cfg, kind = _composed(name)
    lines = [f"pipeline {cfg.pipeline.name} ({kind})"]
    model = cfg.get("model")
    if model is not None and model.get("name"):
        version = model.get("version")
        lines.append(
            f"model: {model.name}, "
            + ("registers a new version" if version is None else f"version {version}")
        )
    steps = cfg.get("steps") or {}
    width = max((len(str(s)) for s in steps), default=0)
    edges: list[str] = []
    lines.append("steps:")
    for step_name in steps:
        node = steps[step_name]
        if not isinstance(node, DictConfig):
            continue
        args = OmegaConf.to_container(node, resolve=True)
        assert isinstance(args, dict)
        params = []
        for key, value in args.items():
            arg = str(key)
            if arg == "_target_":
                continue
            if isinstance(value, StepOutputRef):
                edges.append(f"{value.step}.{value.output or '(its output)'} -> {step_name}.{arg}")
            elif isinstance(value, ModelArtifactRef):
                edges.append(f"model artifact {value.output} -> {step_name}.{arg}")
            elif isinstance(value, ArtifactInputRef):
                edges.append(
                    f"{value.model} {value.version} artifact {value.output} -> {step_name}.{arg}"
                )
            elif isinstance(value, FileRef):
                edges.append(f"file {value.path} -> {step_name}.{arg}")
            elif isinstance(value, ObjectRef):
                edges.append(f"object {value.id} ({value.format}) -> {step_name}.{arg}")
            else:
                params.append(f"{arg}={value!r}")
        target = args.get("_target_", "?")
        lines.append(
            f"  {str(step_name):<{width}}  {target}" + (f"  {', '.join(params)}" if params else "")
        )
    lines.append("edges:")
    lines.extend(f"  {e}" for e in edges or ["(none)"])
    return "\n".join(lines)


def main(argv: Sequence[str], out: IO[str] | None = None) -> int:
    """``mlops pipeline ...``; returns the exit code (1: an error a user can fix, 2: usage)."""
    stream = out or sys.stdout
    parser = argparse.ArgumentParser(
        prog="mlops pipeline", description="Inspect pipelines, declared in YAML or in Python."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_export = sub.add_parser(
        "export", help="print the YAML pipeline a Python pipeline traces to (MODULE:FUNC)"
    )
    p_export.add_argument("target", metavar="MODULE:FUNC")
    p_show = sub.add_parser(
        "show", help="print the steps and edges of a pipeline (NAME, or MODULE:FUNC)"
    )
    p_show.add_argument("name", metavar="NAME")
    args = parser.parse_args(list(argv))
    try:
        if args.command == "export":
            print(export_yaml(args.target), end="", file=stream)
        else:
            print(show_text(args.name), file=stream)
    except MlopsError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        from .console import say

        say(f"Error: {e}", level=logging.ERROR)
        return 1
    return 0
