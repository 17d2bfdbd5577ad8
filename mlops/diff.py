"""``mlops diff``: what differs between two runs, or two versions of a model.

A diff compares what decides a result, each under its own heading:

* **params** -- every step argument in ``config.steps``, flattened to dotted keys
  (``steps.train.C``), references included (a changed reference is changed wiring);
* **code** -- the code hash of each function the steps ran (``module:function``), read from the
  cache entries' ingredients; given only when those entries are passed in;
* **data** -- the identities of the data that entered the run from outside its steps
  (:func:`mlops.report.records.data_parts`);
* **libraries** -- package versions, when the run records carry them (``libraries``);
* **metrics** -- every metric of either side with its delta (``b - a``) where both are numbers.

Everything works on plain dicts (``run.json`` records, version records with ``metadata``, cache
entries), so it is a pure function and the CLI only loads records and prints.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .report.records import data_parts, flatten, step_code

__all__ = ["Change", "DiffResult", "diff_runs", "diff_versions", "format_diff", "to_json"]

_MISSING = object()


@dataclass(frozen=True)
class Change:
    """One key whose value differs: ``a`` and ``b`` (None where the side lacks the key).

    ``delta`` is ``b - a`` for two numbers (metrics only), else None.
    """

    key: str
    a: Any
    b: Any
    delta: float | None = None


@dataclass(frozen=True)
class DiffResult:
    """What differs between ``a`` and ``b``, section by section.

    ``code_known`` / ``libraries_known`` say whether both sides had that information: an empty
    section that was not known is "not recorded", not "same".
    ``metrics`` lists every metric of either side (changed or not), so a delta of 0 shows too.
    """

    a: str
    b: str
    params: tuple[Change, ...] = ()
    code: tuple[Change, ...] = ()
    data: tuple[Change, ...] = ()
    libraries: tuple[Change, ...] = ()
    metrics: tuple[Change, ...] = ()
    code_known: bool = False
    libraries_known: bool = False

    @property
    def same(self) -> bool:
        """True when nothing but unchanged metrics was found to differ."""
        changed_metrics = [m for m in self.metrics if not _equal(m.a, m.b)]
        return not (self.params or self.code or self.data or self.libraries or changed_metrics)


def _equal(a: Any, b: Any) -> bool:
    """Equal as values and of the same type (``1`` and ``1.0`` differ as params do in keys)."""
    return bool(a == b) and type(a) is type(b)


def _changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[Change, ...]:
    """The keys whose values differ, sorted.

    Examples:
        >>> _changes({"x": 1, "y": 2}, {"x": 1.0, "z": 3})
        (Change(key='x', a=1, b=1.0, delta=None), Change(key='y', a=2, b=None, delta=None), \
Change(key='z', a=None, b=3, delta=None))
    """
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if va is _MISSING or vb is _MISSING or not _equal(va, vb):
            out.append(Change(key, None if va is _MISSING else va, None if vb is _MISSING else vb))
    return tuple(out)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _metric_changes(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[Change, ...]:
    """Every metric of either side, with ``b - a`` where both are finite numbers.

    Examples:
        >>> _metric_changes({"acc": 0.5, "n": "x"}, {"acc": 0.75})
        (Change(key='acc', a=0.5, b=0.75, delta=0.25), Change(key='n', a='x', b=None, delta=None))
    """
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        na, nb = _number(va), _number(vb)
        delta = nb - na if na is not None and nb is not None else None
        out.append(Change(key, va, vb, delta))
    return tuple(out)


def _params(run: Mapping[str, Any] | None) -> dict[str, Any]:
    steps = ((run or {}).get("config") or {}).get("steps") or {}
    return flatten(steps, "steps") if steps else {}


def _libraries(run: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    libs = (run or {}).get("libraries")
    return libs if isinstance(libs, Mapping) else None


def _compare(
    label_a: str,
    label_b: str,
    run_a: Mapping[str, Any] | None,
    run_b: Mapping[str, Any] | None,
    metrics_a: Mapping[str, Any],
    metrics_b: Mapping[str, Any],
    ingredients: Mapping[str, Mapping[str, Any]] | None,
) -> DiffResult:
    # Compare the code of steps whose entries both sides have: entries are not kept for every
    # step (a step with caching off stores none), and a missing one is unknown, not removed.
    steps_a = step_code(run_a, ingredients) if run_a else {}
    steps_b = step_code(run_b, ingredients) if run_b else {}
    code_a: dict[str, str] = {}
    code_b: dict[str, str] = {}
    for step in set(steps_a) & set(steps_b):
        code_a.update(steps_a[step])
        code_b.update(steps_b[step])
    code_known = bool(code_a) or bool(code_b)
    libs_a, libs_b = _libraries(run_a), _libraries(run_b)
    return DiffResult(
        a=label_a,
        b=label_b,
        params=_changes(_params(run_a), _params(run_b)) if run_a and run_b else (),
        code=_changes(code_a, code_b),
        data=_changes(data_parts(run_a, ingredients), data_parts(run_b, ingredients))
        if run_a and run_b
        else (),
        libraries=_changes(libs_a, libs_b) if libs_a is not None and libs_b is not None else (),
        metrics=_metric_changes(metrics_a, metrics_b),
        code_known=code_known,
        libraries_known=libs_a is not None and libs_b is not None,
    )


def diff_runs(
    run_a: Mapping[str, Any],
    run_b: Mapping[str, Any],
    *,
    ingredients: Mapping[str, Mapping[str, Any]] | None = None,
    metrics_a: Mapping[str, Any] | None = None,
    metrics_b: Mapping[str, Any] | None = None,
) -> DiffResult:
    """What differs between two runs, from their ``run.json`` dicts.

    Reads ``id``, ``config.steps``, ``steps`` (``cache_key``, ``outputs``), ``model`` and, if
    present, ``libraries`` and ``metrics`` of each record.

    Args:
        run_a: the first run (the "before").
        run_b: the second run.
        ingredients: cache key -> cache entry (or its ``ingredients``), for the code section.
        metrics_a: metrics of the first run (e.g. its model version's metadata); the record's
            ``metrics`` when omitted.
        metrics_b: likewise for the second.

    Examples:
        >>> a = {"id": "r1", "config": {"steps": {"train": {"C": 1.0}}}}
        >>> b = {"id": "r2", "config": {"steps": {"train": {"C": 10}}}}
        >>> [(c.key, c.a, c.b) for c in diff_runs(a, b).params]
        [('steps.train.C', 1.0, 10)]
    """
    return _compare(
        f"run {run_a.get('id', '?')}",
        f"run {run_b.get('id', '?')}",
        run_a,
        run_b,
        metrics_a if metrics_a is not None else (run_a.get("metrics") or {}),
        metrics_b if metrics_b is not None else (run_b.get("metrics") or {}),
        ingredients,
    )


def diff_versions(
    version_a: Mapping[str, Any],
    version_b: Mapping[str, Any],
    *,
    run_a: Mapping[str, Any] | None = None,
    run_b: Mapping[str, Any] | None = None,
    ingredients: Mapping[str, Mapping[str, Any]] | None = None,
) -> DiffResult:
    """What differs between two model versions, and the runs that made them.

    Reads ``name``, ``number`` and ``metadata`` (or ``metrics``) of each version record; params,
    code, data and libraries come from the runs that made them (``run_a``, ``run_b``: their
    ``run.json`` dicts), when given.

    Examples:
        >>> va = {"name": "m", "number": 6, "metadata": {"accuracy": 0.9}}
        >>> vb = {"name": "m", "number": 7, "metadata": {"accuracy": 0.95}}
        >>> d = diff_versions(va, vb)
        >>> d.a, d.b, round(d.metrics[0].delta, 2)
        ('m v6', 'm v7', 0.05)
    """

    def label(v: Mapping[str, Any]) -> str:
        return f"{v.get('name', '?')} v{v.get('number', '?')}"

    def metrics(v: Mapping[str, Any]) -> Mapping[str, Any]:
        m = v.get("metadata") if v.get("metadata") is not None else v.get("metrics")
        return m or {}

    return _compare(
        label(version_a),
        label(version_b),
        run_a,
        run_b,
        metrics(version_a),
        metrics(version_b),
        ingredients,
    )


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


_HASH = re.compile(r"[0-9a-f]{16,}")


def _short(value: Any) -> str:
    """A hash as its prefix; anything else (``iris_classifier v2 trained_model``) whole.

    Examples:
        >>> _short("2cf6dffbe6c9f6ba7ebf046f7edfbe63"), _short("m v2 out"), _short(None)
        ('2cf6dffbe6c9', 'm v2 out', '(none)')
    """
    if value is None:
        return "(none)"
    text = str(value)
    return text[:12] if _HASH.fullmatch(text) else text


def _section(title: str, changes: tuple[Change, ...], show: Any, known: bool = True) -> list[str]:
    if not known:
        return [f"{title}: not recorded"]
    if not changes:
        return [f"{title}: same"]
    width = max(len(c.key) for c in changes)
    lines = [f"{title} ({len(changes)} differ):"]
    lines += [f"  {c.key:<{width}}  {show(c.a)} -> {show(c.b)}" for c in changes]
    return lines


def format_diff(result: DiffResult) -> str:
    """The diff as terminal text, one section per heading.

    Examples:
        >>> print(format_diff(DiffResult("run a", "run b",
        ...     params=(Change("steps.train.C", 1.0, 10),),
        ...     metrics=(Change("accuracy", 0.9, 0.95, 0.05),))))
        diff run a -> run b
        params (1 differ):
          steps.train.C  1.0 -> 10
        code: not recorded
        data: same
        libraries: not recorded
        metrics:
          accuracy  0.9 -> 0.95  (+0.05)
    """
    lines = [f"diff {result.a} -> {result.b}"]
    lines += _section("params", result.params, _show)
    lines += _section("code", result.code, _short, result.code_known)
    lines += _section("data", result.data, _short)
    lines += _section("libraries", result.libraries, _show, result.libraries_known)
    if not result.metrics:
        lines.append("metrics: none recorded")
    else:
        width = max(len(m.key) for m in result.metrics)
        lines.append("metrics:")
        for m in result.metrics:
            delta = f"  ({m.delta:+.6g})" if m.delta is not None else ""
            lines.append(f"  {m.key:<{width}}  {_show(m.a)} -> {_show(m.b)}{delta}")
    return "\n".join(lines)


def to_json(result: DiffResult) -> dict[str, Any]:
    """The diff as JSON-able data (``mlops diff --json``).

    Examples:
        >>> to_json(DiffResult("run a", "run b", params=(Change("steps.x.k", 1, 2),)))["params"]
        [{'key': 'steps.x.k', 'a': 1, 'b': 2}]
    """

    def rows(changes: tuple[Change, ...], delta: bool = False) -> list[dict[str, Any]]:
        out = []
        for c in changes:
            row = {"key": c.key, "a": c.a, "b": c.b}
            if delta:
                row["delta"] = c.delta
            out.append(row)
        return out

    return {
        "a": result.a,
        "b": result.b,
        "same": result.same,
        "params": rows(result.params),
        "code": rows(result.code) if result.code_known else None,
        "data": rows(result.data),
        "libraries": rows(result.libraries) if result.libraries_known else None,
        "metrics": rows(result.metrics, delta=True),
    }
