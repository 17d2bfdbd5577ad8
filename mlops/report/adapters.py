"""Build report views from the plain records the registry keeps.

Each adapter reads JSON-shaped dicts (a ``run.json``, version records, stage changes, cache
entries) and tolerates missing fields, so the renderers never see a registry object and a record
written by an older mlops still renders. Values are turned into text here (``repr`` of a param)
and escaped only when rendered.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .records import (
    code_parts,
    data_parts,
    flatten,
    identity,
    order_steps,
    step_deps,
    step_params,
    step_refs,
)
from .views import (
    InputView,
    ModelRefView,
    ModelView,
    OutputView,
    RunView,
    StageEventView,
    StepView,
    VersionView,
)

__all__ = ["model_view", "plan_dict", "plan_view", "run_view"]

_EXCLUSIVE_STAGES = ("production", "staging")
#: why a cached step did not run (a run record keeps reasons only for the steps that ran)
CACHED_WHY = "cached: it ran before with the same code, params and inputs; its outputs were reused"


def _text(value: Any) -> str:
    """A param value as the user wrote it: JSON for plain data, repr otherwise.

    Examples:
        >>> _text(0.1), _text("lbfgs"), _text([1, 2]), _text(None)
        ('0.1', '"lbfgs"', '[1, 2]', 'null')
    """
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _lines(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, Iterable):
        return tuple(str(v) for v in value)
    return (str(value),)


def _model_ref(model: Mapping[str, Any] | None, metrics: Mapping[str, Any] | None) -> Any:
    if not model or not model.get("name"):
        return None
    number = model.get("number")
    requested = model.get("requested")
    return ModelRefView(
        name=str(model["name"]),
        number=int(number) if number is not None else None,
        requested=None if requested is None else str(requested),
        created=bool(model.get("created")),
        stage=model.get("stage"),
        metrics=tuple(
            (str(k), f"{v:.6g}" if isinstance(v, float) else _text(v))
            for k, v in (metrics or {}).items()
        ),
    )


def _summary(run: Mapping[str, Any], steps: Sequence[StepView]) -> str:
    """The closing lines of a run as mlops prints them, for records that did not keep them."""
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    took = ""
    if run.get("finished") and run.get("started"):
        took = f" in {float(run['finished']) - float(run['started']):.2f}s"
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    lines = [f"{run.get('pipeline', '?')} {run.get('status', '?')}{took} ({tally})"]
    model = run.get("model") or {}
    if model.get("name") and model.get("number") is not None:
        verb = "registered" if model.get("created") else "used"
        lines.append(f"model {model['name']} v{model['number']} {verb}")
    return "\n".join(lines)


def run_view(
    run: Mapping[str, Any],
    *,
    deps: Mapping[str, Sequence[str]] | None = None,
    why: Mapping[str, Sequence[str]] | None = None,
    logs: Mapping[str, str] | None = None,
    overrides: Sequence[str] | None = None,
    final_text: str | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> RunView:
    """The view of one run, from its ``run.json`` dict (``Run.to_json()``).

    Reads ``id``, ``pipeline``, ``status``, ``started``, ``finished``, ``error``, ``model``
    (``name``, ``number``, ``requested``, ``created``, and ``stage``/``metrics`` if present),
    ``config.steps`` (``_target_``, params, and references -- the graph's edges), and per step in
    ``steps``: ``status``, ``seconds``, ``cache_key``, ``outputs`` (``id``, ``format``, ``size``),
    ``error``, and ``why`` (the reasons it ran, kept since 0.2.0), ``log``, ``traceback`` when the
    record has them; a cached step's reason is :data:`CACHED_WHY`. Optional top-level
    ``overrides``, ``final_text`` and ``metrics`` are read when present. A step that is configured
    but has no record is ``skipped`` in a finished run, ``pending`` in a running (or killed) one.

    Args:
        run: the run record.
        deps: each step's upstream steps (the plan's ``StepPlan.deps``); read from the config's
            references when omitted.
        why: each step's reasons (``Decision.why`` from the plan made when the run started);
            replaces the record's ``why``.
        logs: each step's captured log text; replaces the record's ``log``.
        overrides: the run's command-line overrides; replaces the record's ``overrides``.
        final_text: the lines printed at the end of the run; a summary is made when neither this
            nor the record has it.
        metrics: the model version's metadata to show beside the graph.
    """
    config_steps = (run.get("config") or {}).get("steps") or {}
    records: Mapping[str, Any] = run.get("steps") or {}
    deps = dict(deps) if deps is not None else step_deps(run)
    names = list(config_steps) + [n for n in records if n not in config_steps]
    names = order_steps(names, deps)
    outputs_by_step = {
        n: (rec.get("outputs") or {}) for n, rec in records.items() if isinstance(rec, Mapping)
    }
    model = run.get("model") or {}
    # a step with no record did not run: skipped in a finished run, not yet reached in one that
    # is still going (or was killed)
    unrecorded = "skipped" if run.get("status") in ("completed", "failed") else "pending"
    steps = []
    for name in names:
        args = config_steps.get(name) or {}
        rec = records.get(name) or {}
        inputs = tuple(
            _input_view(arg, ref.kind, ref.spec, outputs_by_step, model)
            for arg, ref in step_refs(args).items()
        )
        seconds = rec.get("seconds")
        log = (logs or {}).get(name, rec.get("log"))
        steps.append(
            StepView(
                name=name,
                status=str(rec.get("status") or unrecorded),
                seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
                deps=tuple(deps.get(name, ())),
                params=tuple((k, _text(v)) for k, v in step_params(args).items()),
                inputs=inputs,
                outputs=tuple(
                    OutputView(str(k), o.get("format"), o.get("size"), o.get("id"))
                    for k, o in (rec.get("outputs") or {}).items()
                    if isinstance(o, Mapping)
                ),
                target=args.get("_target_"),
                why=_lines(why.get(name) if why is not None else rec.get("why"))
                or ((CACHED_WHY,) if rec.get("status") == "cached" else ()),
                log=log if isinstance(log, str) else None,
                traceback=rec.get("traceback"),
                error=rec.get("error"),
                cache_key=rec.get("cache_key"),
            )
        )
    if overrides is None:
        overrides = run.get("overrides") or ()
    metrics = metrics if metrics is not None else (run.get("metrics") or model.get("metrics"))
    if final_text is None:
        final_text = run.get("final_text") or _summary(run, steps)
    return RunView(
        kind="run",
        pipeline=str(run.get("pipeline", "")),
        steps=tuple(steps),
        run_id=run.get("id"),
        status=str(run.get("status", "")),
        started=run.get("started"),
        finished=run.get("finished"),
        overrides=tuple(str(o) for o in overrides),
        model=_model_ref(model, metrics),
        final_text=str(final_text),
        error=run.get("error"),
    )


def _input_view(
    arg: str,
    kind: str,
    spec: str,
    outputs_by_step: Mapping[str, Mapping[str, Any]],
    model: Mapping[str, Any],
) -> InputView:
    if kind == "step":
        up, _, out = spec.partition(".")
        produced = outputs_by_step.get(up) or {}
        if not out and len(produced) == 1:
            out = next(iter(produced))
        ref = produced.get(out) or {}
        return InputView(arg, f"{up}.{out}" if out else up, ref.get("id"))
    if kind == "model" and model.get("name"):
        number = model.get("number")
        version = f" v{number}" if number is not None else " (new version)"
        return InputView(arg, f"{model['name']}{version} {spec}")
    return InputView(arg, f"${{{kind}:{spec}}}")


def plan_dict(plan: Any, decisions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The plain dict :func:`plan_view` reads, from a compiled plan and its decisions.

    Reads ``plan.pipeline``, ``plan.model`` (``name``, ``number``, ``requested``), and per step
    in ``plan.steps``: ``target``, ``deps``, ``params``, ``outputs`` and ``inputs`` (each input's
    ``describe()``); per decision (``mlops.cache.Decision``): ``status`` and ``why``. Attributes
    are read by name, so any object of that shape works.
    """
    decisions = decisions or {}
    model = getattr(plan, "model", None)
    steps: dict[str, Any] = {}
    for name, sp in plan.steps.items():
        d = decisions.get(name)
        steps[name] = {
            "target": sp.target,
            "deps": list(sp.deps),
            "params": dict(sp.params),
            "inputs": {arg: i.describe() for arg, i in sp.inputs.items()},
            "outputs": list(sp.outputs),
            "status": getattr(d, "status", None) or "will run",
            "why": list(getattr(d, "why", ()) or ()),
        }
    return {
        "pipeline": plan.pipeline,
        "model": None
        if model is None
        else {"name": model.name, "number": model.number, "requested": model.requested},
        "steps": steps,
    }


def plan_view(plan: Mapping[str, Any], *, overrides: Sequence[str] | None = None) -> RunView:
    """The view of a plan (``plan=true``), from :func:`plan_dict`'s shape.

    Reads ``pipeline``, ``model`` (``name``, ``number``, ``requested``; ``number`` None means
    the run would register a new version), optional ``overrides``, and per step in ``steps``
    (in run order): ``status`` (``cached`` / ``will run`` / ``may run``), ``why`` (list of
    reasons), ``target``, ``deps``, ``params`` (name -> value), ``inputs`` (argument -> source
    text, e.g. ``split.X_train``) and ``outputs`` (names).
    """
    step_docs: Mapping[str, Any] = plan.get("steps") or {}
    deps = {n: tuple(d.get("deps") or ()) for n, d in step_docs.items()}
    names = order_steps(list(step_docs), deps)
    steps = tuple(
        StepView(
            name=n,
            status=str(step_docs[n].get("status") or "will run"),
            deps=deps[n],
            params=tuple((str(k), _text(v)) for k, v in (step_docs[n].get("params") or {}).items()),
            inputs=tuple(
                InputView(str(a), str(s)) for a, s in (step_docs[n].get("inputs") or {}).items()
            ),
            outputs=tuple(OutputView(str(o)) for o in step_docs[n].get("outputs") or ()),
            target=step_docs[n].get("target"),
            why=_lines(step_docs[n].get("why")),
        )
        for n in names
    )
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    model = plan.get("model")
    text = f"plan for {plan.get('pipeline', '?')} (nothing is run): " + ", ".join(
        f"{n} {status}" for status, n in sorted(counts.items())
    )
    return RunView(
        kind="plan",
        pipeline=str(plan.get("pipeline", "")),
        steps=steps,
        status="plan",
        overrides=tuple(str(o) for o in (overrides or plan.get("overrides") or ())),
        model=_model_ref(model, None),
        final_text=text,
    )


def _stage_at(history: Sequence[Mapping[str, Any]], number: int) -> str:
    """A version's current stage from the last stage change (it holds the whole assignment)."""
    if not history:
        return "none"
    last = history[-1]
    holders = last.get("holders") or {}
    for stage in _EXCLUSIVE_STAGES:
        if holders.get(stage) == number:
            return stage
    return "archived" if number in (last.get("archived") or ()) else "none"


def model_view(
    name: str,
    versions: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, Any]] = (),
    *,
    runs: Mapping[str, Mapping[str, Any]] | None = None,
    ingredients: Mapping[str, Mapping[str, Any]] | None = None,
) -> ModelView:
    """The view of a model, from its version records, stage changes, and the runs behind them.

    Reads per version: ``number``, ``created``, ``run_id``, ``metadata`` (or ``metrics``), and
    ``stage`` / ``status`` if present (the stage is otherwise read from the last stage change);
    per stage change (``StageChange.to_json()``): ``seq``, ``stage``, ``version``, ``previous``,
    ``reason``, ``user``, ``time``, ``run_id``, ``archived``, ``holders``. From each version's
    run record in ``runs`` (by run id): ``config.steps`` params (flattened to ``step.param``),
    ``status`` (a failed or unfinished run marks the version incomplete), and through
    :func:`~mlops.report.records.code_parts` / :func:`~mlops.report.records.data_parts` the code
    and data identities; ``ingredients`` maps a cache key to its cache entry (or the entry's
    ``ingredients``).
    """
    runs = runs or {}
    history = sorted(history, key=lambda h: int(h.get("seq", 0)))
    out: list[VersionView] = []
    for v in sorted(versions, key=lambda v: int(v["number"])):
        number = int(v["number"])
        run = runs.get(str(v.get("run_id"))) or {}
        params: dict[str, Any] = {}
        for step, args in ((run.get("config") or {}).get("steps") or {}).items():
            if isinstance(args, Mapping):
                params.update(flatten(step_params(args), str(step)))
        code = code_parts(run, ingredients) if run else {}
        data = data_parts(run, ingredients) if run else {}
        metadata = v.get("metadata") if v.get("metadata") is not None else v.get("metrics")
        stage = v.get("stage") or _stage_at(history, number)
        status = v.get("status") or ""
        out.append(
            VersionView(
                number=number,
                stage=str(stage),
                created=v.get("created"),
                run_id=v.get("run_id"),
                metrics=tuple(sorted((str(k), val) for k, val in (metadata or {}).items())),
                params=tuple((k, _text(val)) for k, val in sorted(params.items())),
                code=identity(code),
                code_parts=tuple(code.items()),
                data=identity(data),
                data_parts=tuple(data.items()),
                incomplete=status == "incomplete"
                or (bool(run) and run.get("status") not in ("completed", None)),
            )
        )
    events = []
    archived_before: set[int] = set()
    for h in history:
        # a change records the whole archived set; the timeline shows what this one archived
        archived = [int(a) for a in h.get("archived") or ()]
        events.append(
            StageEventView(
                seq=int(h.get("seq", 0)),
                stage=str(h.get("stage", "")),
                version=h.get("version"),
                previous=h.get("previous"),
                reason=str(h.get("reason") or "promote"),
                user=str(h.get("user") or ""),
                time=h.get("time"),
                run_id=h.get("run_id"),
                archived=tuple(a for a in archived if a not in archived_before),
            )
        )
        archived_before = set(archived)
    holders = history[-1].get("holders") if history else None
    return ModelView(
        name=name,
        versions=tuple(out),
        history=tuple(events),
        holders=tuple((s, (holders or {}).get(s)) for s in _EXCLUSIVE_STAGES),
    )
