"""Pipeline files (``conf/pipeline/NAME.yaml``): where they are, and mistakes Hydra reports badly.

Hydra reads a malformed YAML file with a 70-90 line traceback, reports a file without the
``# @package _global_`` header as ``Key 'pipeline' not in 'PipelineConf'``, and an empty file
composes into a config that looks as if no pipeline had been selected. :func:`check_pipeline_file`
reads the file first and reports each of these as one message naming the file, the line and the
fix. It checks only what Hydra would mishandle; everything else is left to the compiler.
"""

from __future__ import annotations

import os
import re
from typing import Any

from .errors import ConfigError

__all__ = ["check_pipeline_file", "find_pipeline_file"]

_HEADER = re.compile(r"^\s*#\s*@package\s+(?P<package>\S+)\s*$")


def find_pipeline_file(name: str, cwd: str | None = None) -> str | None:
    """The file ``+pipeline=NAME`` selects: the current folder's ``conf/pipeline/`` first."""
    project = os.path.join(cwd or os.getcwd(), "conf", "pipeline", f"{name}.yaml")
    if os.path.isfile(project):
        return project
    from importlib.resources import files

    packaged = files("mlops.conf").joinpath("pipeline").joinpath(f"{name}.yaml")
    return str(packaged) if packaged.is_file() else None


def _shown(path: str, cwd: str | None) -> str:
    """``path`` relative to the current folder when it is inside it."""
    here = os.path.abspath(cwd or os.getcwd())
    full = os.path.abspath(path)
    return os.path.relpath(full, here) if full.startswith(here + os.sep) else full


def check_pipeline_file(name: str, cwd: str | None = None, *, name_given: bool = False) -> None:
    """Raise a ConfigError naming the file and line if pipeline ``name`` cannot be composed.

    Args:
        name: the pipeline, as in ``+pipeline=NAME``.
        name_given: ``pipeline.name`` is set on the command line (the file need not set it).
    """
    path = find_pipeline_file(name, cwd)
    if path is None:
        return
    shown = _shown(path, cwd)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    doc = _load(text, shown)
    if doc is None:
        raise ConfigError(
            f"{shown} is empty. A pipeline file starts with '# @package _global_' and sets "
            "pipeline.name, model and steps (see conf/pipeline/train_and_promote.yaml)."
        )
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{shown}, line 1: a pipeline file is a mapping of pipeline:, model: and steps:, got "
            f"a {type(doc).__name__}"
        )
    _check_header(text, doc, shown, name)
    pipeline = doc.get("pipeline")
    # a defaults list may bring pipeline.name from another config: then Hydra composes it
    if name_given or "defaults" in doc:
        return
    if not isinstance(pipeline, dict) or not pipeline.get("name"):
        raise ConfigError(
            f"{shown} does not set pipeline.name; add 'pipeline:' with 'name: {name}' under it",
            "pipeline.name",
        )


def _check_header(text: str, doc: dict[str, Any], shown: str, name: str) -> None:
    """The file must put its keys at the top level (``# @package _global_``)."""
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _HEADER.match(line)
        if m and m.group("package") == "_global_":
            return
        if not line.lstrip().startswith("#"):
            break  # the header is the comment block before the first key
    raise ConfigError(
        f"{shown}, line 1: the file does not start with '# @package _global_'; add that line "
        "first, so that its pipeline:, model: and steps: are top-level keys"
    )


def _load(text: str, shown: str) -> Any:
    """Parse YAML as OmegaConf would, also refusing duplicate keys; errors name file and line."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    f"{shown}, line {line}: duplicate key '{key}' (first on line {seen[key]}); "
                    "a key may appear once in a mapping: merge the two or rename one"
                )
            seen[key] = line
        return loader.construct_mapping(node, deep=deep)

    Loader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        construct_mapping,  # type: ignore[arg-type]
    )
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{shown}{where}: {_explain(e)}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{shown}: malformed YAML: {e}") from None


def _explain(e: Any) -> str:
    """YAML's problem, with the usual cause and fix.

    Examples:
        >>> class E:
        ...     problem = "found character '\\\\t' that cannot start any token"
        >>> _explain(E())
        'a tab character: indent YAML with spaces, not tabs'
    """
    problem = str(e.problem or "malformed YAML")
    if "'\\t'" in problem:
        return "a tab character: indent YAML with spaces, not tabs"
    if "expected <block end>" in problem or "mapping values are not allowed" in problem:
        return (
            f"malformed YAML ({problem}): check the indentation of this line against the lines "
            "above it"
        )
    return f"malformed YAML: {problem}"
