"""``mlops report``: one self-contained HTML page for a run, a plan or a model.

Rendering is a pure function of a frozen view (:mod:`mlops.report.views`); the adapters build
views from the JSON records the registry keeps, so this package reads no storage, no clock and
nothing of the registry's classes::

    view = run_view(run_doc)                  # a runs/<id>/run.json dict
    Path("report.html").write_text(render_run(view))

    view = plan_view(plan_dict(plan, decisions))
    view = model_view(name, version_docs, stage_change_docs, runs={run_id: run_doc, ...})

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from .adapters import model_view, plan_dict, plan_view, run_view
from .html import render_model, render_plan, render_run
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

__all__ = [
    "InputView",
    "ModelRefView",
    "ModelView",
    "OutputView",
    "RunView",
    "StageEventView",
    "StepView",
    "VersionView",
    "model_view",
    "plan_dict",
    "plan_view",
    "render_model",
    "render_plan",
    "render_run",
    "run_view",
]
