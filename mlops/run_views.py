"""What the run commands show: the params a run changed, its metrics, its final text, its logs.

``mlops runs`` and ``mlops show-run`` read these from the stores; the report and ``mlops diff``
use the same helpers, so the three never disagree about what a run was.

**Changed params.** A run's record holds its whole resolved step config. The params it changed
are those that differ from the pipeline's own YAML -- ``conf/pipeline/<name>.yaml`` of the
current folder, else mlops' packaged one -- read as written (references stay ``${step:...}``).
When no YAML of that pipeline can be found (the registry was copied elsewhere), the default of a
param is the value most of the pipeline's runs had.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .report.records import flatten, order_steps, step_deps, step_params

if TYPE_CHECKING:
    from .registry import Registry
    from .run_store import Run

_log = logging.getLogger("mlops.runs")

__all__ = [
    "changed_params",
    "final_texts",
    "pipeline_defaults",
    "run_metrics",
    "step_log",
    "step_order",
    "step_why",
]


def _params(config: Mapping[str, Any]) -> dict[str, Any]:
    """``step.param`` -> value for every step argument (references included).

    Examples:
        >>> _params({"steps": {"train": {"_target_": "m.f", "C": 1.0, "opts": {"k": 2}}}})
        {'train.C': 1.0, 'train.opts.k': 2}
    """
    out: dict[str, Any] = {}
    for step, args in ((config or {}).get("steps") or {}).items():
        if isinstance(args, Mapping):
            out.update(flatten({k: v for k, v in args.items() if k != "_target_"}, str(step)))
    return out


def _yaml_files(cwd: str | None = None) -> list[str]:
    from importlib.resources import files

    out = []
    project = os.path.join(cwd or os.getcwd(), "conf", "pipeline")
    if os.path.isdir(project):
        out += [
            os.path.join(project, f) for f in sorted(os.listdir(project)) if f.endswith(".yaml")
        ]
    packaged = files("mlops.conf").joinpath("pipeline")
    out += [str(e) for e in packaged.iterdir() if e.name.endswith(".yaml")]
    return out


def pipeline_defaults(pipeline: str, cwd: str | None = None) -> dict[str, Any] | None:
    r"""The params of ``pipeline`` as its YAML declares them (``step.param`` -> value), or None.

    None for a pipeline declared in Python (its YAML, if any, holds only overrides).

    Examples:
        >>> pipeline_defaults("train_and_promote")["train.C"]
        1.0
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp()) / "conf" / "pipeline"
        >>> d.mkdir(parents=True)
        >>> _ = (d / "py.yaml").write_text("pipeline:\n  name: py\n  _target_: mod.py_pipe\n")
        >>> pipeline_defaults("py", cwd=str(d.parent.parent)) is None
        True
    """
    import yaml

    files = _yaml_files(cwd)
    # the file named after the pipeline first, then any whose pipeline.name it is
    files.sort(key=lambda f: os.path.basename(f) != f"{pipeline}.yaml")
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            continue
        head = doc.get("pipeline") if isinstance(doc, dict) else None
        if not isinstance(head, dict) or head.get("name") != pipeline:
            continue
        if head.get("_target_") is not None or not isinstance(doc.get("steps"), dict):
            # a Python pipeline: its YAML holds only overrides of the traced steps
            return None
        return _params(doc)
    return None


def changed_params(
    run: Run, defaults: Mapping[str, Any] | None, others: Sequence[Run] = ()
) -> dict[str, Any]:
    """The params of ``run`` that differ from ``defaults`` (see the module docstring).

    Args:
        defaults: :func:`pipeline_defaults`; None to take the most common value among
            ``others`` (the pipeline's runs).

    Examples:
        >>> from mlops.run_store import Run, RunStatus
        >>> def run(c):
        ...     cfg = {"steps": {"train": {"C": c, "max_iter": 5}}}
        ...     return Run("r", "p", RunStatus.COMPLETED, 0.0, None, cfg, {}, None)
        >>> changed_params(run(10), {"train.C": 1.0, "train.max_iter": 5})
        {'train.C': 10}
        >>> changed_params(run(10), None, [run(1.0), run(1.0), run(10)])
        {'train.C': 10}
    """
    params = _params(run.config)
    if defaults is None:
        counts: dict[str, Counter[str]] = {}
        values: dict[tuple[str, str], Any] = {}
        for other in others or (run,):
            for k, v in _params(other.config).items():
                counts.setdefault(k, Counter())[repr(v)] += 1
                values[(k, repr(v))] = v
        defaults = {k: values[(k, c.most_common(1)[0][0])] for k, c in counts.items()}
    return {
        k: v
        for k, v in params.items()
        if k not in defaults or defaults[k] != v or type(defaults[k]) is not type(v)
    }


def run_metrics(
    registry: Registry, run: Run, versions: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The metrics of the model version ``run`` registered (its metadata), else {}.

    Args:
        versions: a cache of ``list_versions`` by model name, shared across calls.
    """
    m = run.model or {}
    if not m.get("created") or m.get("number") is None:
        return {}
    name = str(m["name"])
    cache = versions if versions is not None else {}
    if name not in cache:
        cache[name] = {v.number: v for v in registry.models.list_versions(name)}
    mv = cache[name].get(int(m["number"]))
    return dict(mv.metadata) if mv is not None else {}


def step_order(run: Run) -> list[str]:
    """The run's steps in pipeline order: each after what it reads, config order among equals."""
    doc = run.to_json()
    names = list(run.config.get("steps") or {}) + [
        n for n in run.step_records if n not in (run.config.get("steps") or {})
    ]
    return order_steps(names, step_deps(doc))


def step_param_text(run: Run, step: str) -> str:
    """A step's literal params as ``k=v`` (references left out)."""
    args = (run.config.get("steps") or {}).get(step) or {}
    import json

    def show(v: Any) -> str:
        try:
            return json.dumps(v, sort_keys=True)
        except (TypeError, ValueError):
            return repr(v)

    return ", ".join(f"{k}={show(v)}" for k, v in step_params(args).items())


def step_why(run: Run, step: str) -> str | None:
    """Why ``step`` ran in ``run``, as one line: the plan's reasons, ``cached`` for a step that
    was not run, None when unknown (a step that was skipped, or a record from before 0.2.0).

    Examples:
        >>> from mlops.run_store import Run, RunStatus
        >>> recs = {"a": {"status": "ran", "why": ["first run"]}, "b": {"status": "cached"},
        ...         "c": {"status": "ran"}}
        >>> r = Run("r", "p", RunStatus.COMPLETED, 0.0, None, {}, recs, None)
        >>> step_why(r, "a"), step_why(r, "b"), step_why(r, "c")
        ('first run', 'cached', None)
    """
    rec = run.step_records.get(step) or {}
    why = rec.get("why")
    if isinstance(why, list) and why:
        return "; ".join(str(w) for w in why)
    return "cached" if rec.get("status") == "cached" else None


def final_texts(registry: Registry, run: Run) -> list[tuple[str, str]]:
    """Short text outputs of the final steps (those nothing reads), e.g. promote's decision."""
    from .errors import MlopsError

    deps = step_deps(run.to_json())
    read = {d for ds in deps.values() for d in ds}
    out = []
    for name in step_order(run):
        rec = run.step_records.get(name) or {}
        if name in read or rec.get("status") not in ("ran", "cached"):
            continue
        for output, ref in (rec.get("outputs") or {}).items():
            if not isinstance(ref, Mapping) or ref.get("format") != "json":
                continue
            if int(ref.get("size") or 0) > 500:
                continue
            try:
                value = run.load(name, output)
            except MlopsError as e:  # collected by gc: the rest of the run still shows
                _log.warning("run %s: output '%s.%s' cannot be read: %s", run.id, name, output, e)
                continue
            if isinstance(value, str):
                out.append((name, value))
    return out


def step_log(registry: Registry, run: Run, step: str) -> str:
    """The captured log of ``step`` in ``run``, or a sentence saying why there is none.

    Raises:
        UnknownStepError: the run has no such step.
    """
    from .errors import UnknownStepError, did_you_mean
    from .logs import load_text

    if step not in run.step_records:
        raise UnknownStepError(
            f"run {run.id} has no step '{step}'.{did_you_mean(step, run.step_records)} Steps: "
            f"{', '.join(step_order(run))}."
        )
    rec = run.step_records[step]
    text = load_text(registry.artifacts, rec.get("log"))
    if text is not None:
        return text
    status = rec.get("status")
    if status == "cached":
        entry = registry.cache.read_entry_doc(str(rec.get("cache_key") or "")) or {}
        origin = entry.get("run_id")
        where = f" run {origin}" if origin else " the run that stored its cache entry"
        return f"(step '{step}' was cached in this run; its log is in{where})"
    if status in ("ran", "failed"):
        return f"(step '{step}' printed and logged nothing)"
    return f"(step '{step}' did not run: {status})"


def training_pipelines(model: str, cwd: str | None = None) -> list[str]:
    """The pipelines that register versions of ``model`` (``model.name`` is it and
    ``model.version`` is null): the current project's if it has any, else the packaged ones.

    Examples:
        >>> training_pipelines("iris_classifier")
        ['train_and_promote']
    """
    import yaml

    project = os.path.join(cwd or os.getcwd(), "conf", "pipeline")
    found: dict[bool, list[str]] = {True: [], False: []}
    for path in _yaml_files(cwd):
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        m = doc.get("model") or {}
        name = (doc.get("pipeline") or {}).get("name")
        if isinstance(m, dict) and m.get("name") == model and m.get("version") is None and name:
            found[path.startswith(project + os.sep)].append(str(name))
    # a set: run from this repository, the project's conf/ is the packaged one
    return sorted(set(found[True])) or sorted(set(found[False]))


def no_versions_hint(model: str, cwd: str | None = None) -> str:
    """What to run to register a first version of ``model``, from the project's own pipelines.

    Examples:
        >>> no_versions_hint("iris_classifier")
        'Run python -m mlops +pipeline=train_and_promote to register one.'
        >>> no_versions_hint("nothing_trains_me").startswith("Run the pipeline that trains it")
        True
    """
    names = training_pipelines(model, cwd)
    if not names:
        return (
            "Run the pipeline that trains it (one whose model block names it with version: null) "
            "to register one."
        )
    runs = " or ".join(f"python -m mlops +pipeline={n}" for n in names)
    return f"Run {runs} to register one."
