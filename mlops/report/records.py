"""Read what identifies a run from its JSON record: wiring, params, code and data.

Shared by the report adapters and :mod:`mlops.diff`. Everything here takes the plain dicts the
registry stores -- ``runs/<id>/run.json`` and cache entries' ``ingredients`` -- and returns plain
values, so it works on records written by any version of mlops that kept these fields, and
tolerates their absence (an old record, a step that failed before it was keyed).

A run record's ``config.steps`` keeps references unresolved (``${step:split.X_train}``), which is
what tells the pipeline's edges apart from its params.
"""

from __future__ import annotations

import graphlib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "Ref",
    "code_parts",
    "data_parts",
    "flatten",
    "identity",
    "order_steps",
    "parse_ref",
    "step_code",
    "step_deps",
    "step_params",
    "step_refs",
]

# ${step:NAME.OUTPUT}, ${model:OUTPUT}, ${artifact:MODEL,VERSION,OUTPUT}, ${file:PATH}: the
# reference kinds a step argument can be; any other interpolation is config, i.e. a param.
_REF = re.compile(r"^\$\{\s*(step|model|artifact|file)\s*:(.*)\}$", re.DOTALL)
_TARGET = "_target_"


class Ref(tuple[str, str]):
    """A reference argument: ``(kind, spec)``, e.g. ``("step", "split.X_train")``."""

    __slots__ = ()

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def spec(self) -> str:
        return self[1]


def parse_ref(value: Any) -> Ref | None:
    """The reference ``value`` is, or None for a literal.

    Examples:
        >>> parse_ref("${step:split.X_train}")
        ('step', 'split.X_train')
        >>> parse_ref("${artifact:iris_classifier,production,trained_model}").kind
        'artifact'
        >>> parse_ref("${oc.env:HOME}") is None, parse_ref(0.5) is None
        (True, True)
    """
    if not isinstance(value, str):
        return None
    m = _REF.match(value.strip())
    return Ref((m.group(1), m.group(2).strip())) if m else None


def _steps_config(run: Mapping[str, Any]) -> Mapping[str, Any]:
    config = run.get("config") or {}
    steps = config.get("steps") if isinstance(config, Mapping) else None
    return steps if isinstance(steps, Mapping) else {}


def step_refs(args: Mapping[str, Any]) -> dict[str, Ref]:
    """The reference arguments of one step's config, by argument name, in config order.

    Examples:
        >>> step_refs({"_target_": "m.f", "X": "${step:split.X}", "C": 1.0})
        {'X': ('step', 'split.X')}
    """
    out: dict[str, Ref] = {}
    for arg, value in args.items():
        ref = parse_ref(value)
        if ref is not None:
            out[str(arg)] = ref
    return out


def step_params(args: Mapping[str, Any]) -> dict[str, Any]:
    """The literal arguments (params) of one step's config: not ``_target_``, not references.

    Examples:
        >>> step_params({"_target_": "m.f", "X": "${step:split.X}", "C": 1.0})
        {'C': 1.0}
    """
    return {str(k): v for k, v in args.items() if k != _TARGET and parse_ref(v) is None}


def step_deps(run: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Each configured step's upstream steps, read from ``config.steps`` of a run record.

    Examples:
        >>> run = {"config": {"steps": {"a": {}, "b": {"x": "${step:a.out}", "y": "${step:a}"}}}}
        >>> step_deps(run)
        {'a': (), 'b': ('a',)}
    """
    out: dict[str, tuple[str, ...]] = {}
    for name, args in _steps_config(run).items():
        deps: list[str] = []
        if isinstance(args, Mapping):
            for ref in step_refs(args).values():
                if ref.kind == "step":
                    up = ref.spec.partition(".")[0].strip()
                    if up and up not in deps:
                        deps.append(up)
        out[str(name)] = tuple(deps)
    return out


def order_steps(names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """``names`` ordered so that each step comes after its dependencies, else as given.

    A dependency outside ``names`` is ignored; a cycle (a damaged record) keeps the given order.

    Examples:
        >>> order_steps(["c", "a", "b"], {"c": ["b"], "b": ["a"]})
        ['a', 'b', 'c']
    """
    known = set(names)
    position = {n: i for i, n in enumerate(names)}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for n in names:
        sorter.add(n, *(d for d in deps.get(n, ()) if d in known and d != n))
    try:
        sorter.prepare()
    except graphlib.CycleError:
        return list(names)
    out: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        out.extend(ready)
        sorter.done(*ready)
    return out


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys; lists and scalars are leaves.

    Examples:
        >>> flatten({"train": {"C": 1, "opt": {"tol": 0.1}}, "split": {"seed": [1, 2]}})
        {'train.C': 1, 'train.opt.tol': 0.1, 'split.seed': [1, 2]}
        >>> flatten({"a": {}})
        {'a': {}}
    """
    if isinstance(value, Mapping) and (value or not prefix):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def _ingredients_of(entry: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A cache entry's ingredients, given the entry itself or its ``ingredients`` dict."""
    if not entry:
        return {}
    inner = entry.get("ingredients")
    return inner if isinstance(inner, Mapping) else entry


def step_code(
    run: Mapping[str, Any], ingredients: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, dict[str, str]]:
    """Per step, the code hashes that went into its key: ``module:function`` -> hash.

    Read from the step's cache entry (``ingredients[cache_key]["code"]``); ``ingredients`` maps a
    cache key to the entry or to its ``ingredients`` dict. A step whose entry is not given is
    left out, so a missing entry never reads as changed code.

    Examples:
        >>> run = {"steps": {"train": {"cache_key": "k1"}, "promote": {"cache_key": "k2"}}}
        >>> step_code(run, {"k1": {"ingredients": {"code": {"m:train": "ab12"}}}})
        {'train': {'m:train': 'ab12'}}
    """
    out: dict[str, dict[str, str]] = {}
    for name, rec in (run.get("steps") or {}).items():
        key = rec.get("cache_key") if isinstance(rec, Mapping) else None
        code = _ingredients_of((ingredients or {}).get(key) if key else None).get("code")
        if isinstance(code, Mapping):
            out[str(name)] = {str(k): str(v) for k, v in sorted(code.items())}
    return out


def code_parts(
    run: Mapping[str, Any], ingredients: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, str]:
    """The code hashes of all the run's steps whose entries are given, merged (see
    :func:`step_code`).

    Examples:
        >>> run = {"steps": {"a": {"cache_key": "k1"}, "b": {"cache_key": "k2"}}}
        >>> code_parts(run, {"k1": {"code": {"m:a": "1"}}, "k2": {"code": {"m:b": "2"}}})
        {'m:a': '1', 'm:b': '2'}
    """
    out: dict[str, str] = {}
    for code in step_code(run, ingredients).values():
        out.update(code)
    return dict(sorted(out.items()))


def data_parts(
    run: Mapping[str, Any], ingredients: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, str]:
    """The identities of the data that entered a run from outside its own steps.

    That is: the outputs of steps that read no upstream step (``load_data.iris`` -> content
    hash), the model versions read through ``${model:...}`` / ``${artifact:...}``, and declared
    inputs such as ``${file:...}`` (``step.arg`` -> the content hash in the step's cache entry,
    else the reference as written).

    Examples:
        >>> run = {"config": {"steps": {"load": {}, "fit": {"d": "${step:load.d}"}}},
        ...        "steps": {"load": {"outputs": {"d": {"id": "9f"}}}, "fit": {}}}
        >>> data_parts(run)
        {'load.d': '9f'}
    """
    out: dict[str, str] = {}
    records = run.get("steps") or {}
    model = run.get("model") or {}
    for name, args in _steps_config(run).items():
        if not isinstance(args, Mapping):
            continue
        refs = step_refs(args)
        rec = records.get(name) or {}
        if not any(r.kind == "step" for r in refs.values()):
            for out_name, ref in (rec.get("outputs") or {}).items():
                if isinstance(ref, Mapping) and ref.get("id"):
                    out[f"{name}.{out_name}"] = str(ref["id"])
        key = rec.get("cache_key")
        inputs = _ingredients_of((ingredients or {}).get(key) if key else None).get("inputs")
        inputs = inputs if isinstance(inputs, Mapping) else {}
        for arg, ref in refs.items():
            if ref.kind == "step":
                continue
            if inputs.get(arg):
                out[f"{name}.{arg}"] = str(inputs[arg])
            elif ref.kind == "model" and model.get("number") is not None:
                out[f"{name}.{arg}"] = f"{model.get('name')} v{model.get('number')} {ref.spec}"
            else:
                out[f"{name}.{arg}"] = f"${{{ref.kind}:{ref.spec}}}"
    return dict(sorted(out.items()))


def identity(parts: Mapping[str, Any]) -> str | None:
    """A short, stable identity of a mapping (12 hex characters), None for an empty one.

    Examples:
        >>> identity({"a": "1"}) == identity({"a": "1"}), identity({})
        (True, None)
    """
    if not parts:
        return None
    text = json.dumps(dict(parts), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
