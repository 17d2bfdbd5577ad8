"""``mlops report`` and ``plan=true report=FILE``: build report views from the stores, write HTML.

The renderers (:mod:`mlops.report`) are pure functions over plain records; this module reads
those records -- run records, model versions, stage changes, cache entries (for the code and data
identities), captured step logs -- and writes one self-contained HTML file.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compiler import Plan
    from .registry import Registry
    from .run_store import Run

#: mlops' own messages go through the standard logging module (route or silence ``mlops``)
_log = logging.getLogger("mlops.report")

__all__ = [
    "ingredients_of",
    "model_html",
    "run_html",
    "write_plan_report",
    "write_report",
]


def ingredients_of(registry: Registry, runs: Sequence[Run]) -> dict[str, dict[str, Any]]:
    """Cache key -> cache entry for every step of ``runs`` whose entry is still stored."""
    keys = {
        str(rec["cache_key"])
        for run in runs
        for rec in run.step_records.values()
        if isinstance(rec, dict) and rec.get("cache_key")
    }
    out = {}
    for key in sorted(keys):
        doc = registry.cache.read_entry_doc(key)
        if doc is not None:
            out[key] = doc
    return out


def _logs(registry: Registry, run: Run) -> dict[str, str]:
    from .errors import MlopsError
    from .logs import load_text

    out = {}
    for name, rec in run.step_records.items():
        try:
            text = load_text(registry.artifacts, rec.get("log"))
        except MlopsError as e:  # collected or damaged: the report still renders
            _log.warning("run %s: the log of step '%s' cannot be read: %s", run.id, name, e)
            continue
        if text is not None:
            out[name] = text
    return out


def run_html(registry: Registry, run: Run) -> str:
    """The report page of one run."""
    from .report import render_run, run_view
    from .run_views import final_texts, run_metrics

    doc = run.to_json()
    m = run.model or {}
    if m.get("name") and m.get("number") is not None:
        mv = registry.models.read_version(str(m["name"]), int(m["number"]))
        if mv is not None:
            doc["model"] = {**doc["model"], "stage": mv.stage}
    texts = final_texts(registry, run)
    final = "\n".join(f"{step}: {text}" for step, text in texts) or None
    return render_run(
        run_view(
            doc,
            logs=_logs(registry, run),
            final_text=final,
            metrics=run_metrics(registry, run) or None,
        )
    )


def model_html(registry: Registry, name: str) -> str:
    """The report page of model ``name``: metrics over versions, stage history, versions."""
    from .errors import MlopsError
    from .report import model_view, render_model

    versions = registry.models.list_versions(name)
    if not versions:
        registry.models.resolve(name, "latest")  # raises the helpful ModelNotFoundError
    runs = {}
    for v in versions:
        if v.run_id and v.run_id not in runs:
            try:
                runs[v.run_id] = registry.runs.get(v.run_id)
            except MlopsError:
                continue  # deleted runs: the version shows without params
    version_docs = [
        {
            "number": v.number,
            "created": v.created,
            "run_id": v.run_id,
            "metadata": dict(v.metadata),
            "stage": v.stage,
            "status": str(v.status),
        }
        for v in versions
    ]
    view = model_view(
        name,
        version_docs,
        [c.to_json() for c in registry.models.stage_history(name)],
        runs={k: r.to_json() for k, r in runs.items()},
        ingredients=ingredients_of(registry, list(runs.values())),
    )
    return render_model(view)


def write_report(path: str, html: str) -> str:
    """Write ``html`` to ``path`` (atomically); the absolute path."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(html)
    os.replace(tmp, path)
    return path


def write_plan_report(
    plan: Plan,
    registry: Registry,
    path: str,
    *,
    refresh: Sequence[str] = (),
    enabled: bool = True,
    overrides: Sequence[str] = (),
) -> str:
    """Write the report of a plan (``plan=true report=FILE``): each step cached, will run or
    may run, and why. Writes nothing to the registry. Returns the absolute path."""
    from dataclasses import replace

    from .cache import CacheLookup, decide, hide_secret_reason
    from .report import plan_dict, plan_view, render_plan

    lookup = CacheLookup(
        plan, registry.cache, registry.artifacts, enabled=enabled, refresh=frozenset(refresh)
    )
    decisions = {
        name: replace(d, why=[hide_secret_reason(w) for w in d.why])
        for name, d in decide(lookup, explain=True).items()
    }
    doc = plan_dict(plan, decisions)
    return write_report(path, render_plan(plan_view(doc, overrides=overrides)))


def open_in_browser(path: str) -> None:
    """Open a written report in the default browser (``--open``)."""
    import pathlib
    import webbrowser

    webbrowser.open(pathlib.Path(path).as_uri())
