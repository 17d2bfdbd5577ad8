"""What a report shows, as frozen plain values: the renderers read nothing else.

A view holds text and numbers only -- no registry, no handle, no clock -- so rendering is a pure
function of it, and a test can build one by hand. The adapters in :mod:`mlops.report.adapters`
build views from the JSON records the registry keeps (``runs/<id>/run.json``, stage changes,
version records, cache entries).

Statuses are the words the rest of mlops prints: a run's steps are ``ran``, ``cached``,
``failed``, ``skipped`` (``running`` and ``pending`` while the run is on); a plan's are
``cached``, ``will run``, ``may run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "InputView",
    "ModelRefView",
    "ModelView",
    "OutputView",
    "RunView",
    "StageEventView",
    "StepView",
    "VersionView",
]


@dataclass(frozen=True)
class OutputView:
    """One output of a step: its name, format (the serializer's), size in bytes, content hash."""

    name: str
    format: str | None = None
    size: int | None = None
    id: str | None = None


@dataclass(frozen=True)
class InputView:
    """One input of a step: the argument, where it comes from, the content hash if known.

    ``source`` is ``split.X_train`` for an upstream output, ``iris_classifier v2 trained_model``
    for a model artifact, or the reference as written for anything else.
    """

    name: str
    source: str
    id: str | None = None


@dataclass(frozen=True)
class StepView:
    """One box of the graph and its details.

    Args:
        name: the step's name in the pipeline config.
        status: ``ran`` / ``cached`` / ``failed`` / ``skipped`` / ``running`` / ``pending``
            for a run,
            ``cached`` / ``will run`` / ``may run`` for a plan.
        seconds: how long it took (None when it did not run or is a plan).
        deps: the steps whose outputs it reads (the graph's edges point from them to it).
        params: literal arguments, ``(name, value as text)``, in config order.
        inputs: reference arguments.
        outputs: what it produced (a run) or will produce (a plan: names only).
        target: the function's import path.
        why: why it ran or will run (the plan's reasons), empty when unknown.
        log: its captured stdout, stderr and logging records, if kept.
        traceback: for a failure, the traceback (trimmed to user code where the run kept it so).
        error: for a failure, the one-line message.
        cache_key: the key its outputs were stored or looked up under.
    """

    name: str
    status: str
    seconds: float | None = None
    deps: tuple[str, ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    inputs: tuple[InputView, ...] = ()
    outputs: tuple[OutputView, ...] = ()
    target: str | None = None
    why: tuple[str, ...] = ()
    log: str | None = None
    traceback: str | None = None
    error: str | None = None
    cache_key: str | None = None


@dataclass(frozen=True)
class ModelRefView:
    """The model version a run registered (``created``) or used."""

    name: str
    number: int | None
    requested: str | None = None
    created: bool = False
    stage: str | None = None
    metrics: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RunView:
    """A run or a plan: its steps in pipeline order and what is shown beside the graph.

    Args:
        kind: ``run`` or ``plan``.
        pipeline: the pipeline's name.
        run_id: the run's id (None for a plan).
        status: ``completed`` / ``failed`` / ``running`` for a run; ``plan`` for a plan.
        started: start time, seconds since the epoch (UTC), if known.
        finished: end time, if the run ended.
        steps: the steps, in an order that respects their dependencies.
        overrides: the command-line overrides of the run (``steps.train.C=10``).
        model: the model version registered or used.
        final_text: the lines mlops printed at the end of the run (or a summary).
        error: the run's error message, if it failed.
    """

    kind: str
    pipeline: str
    steps: tuple[StepView, ...]
    run_id: str | None = None
    status: str = "completed"
    started: float | None = None
    finished: float | None = None
    overrides: tuple[str, ...] = ()
    model: ModelRefView | None = None
    final_text: str = ""
    error: str | None = None


@dataclass(frozen=True)
class VersionView:
    """One model version in the model report.

    Args:
        number: the version number.
        stage: its current stage (``production``, ``staging``, ``archived`` or ``none``).
        created: when it was registered (seconds since the epoch).
        run_id: the run that made it.
        metrics: its metadata values, in key order (numbers are charted).
        params: the run's step params as flattened dotted keys (``train.C``) and values as text.
        code: a short identity of the code that made it, and its parts (``module:function``,
            code hash), when the cache entries were read.
        data: a short identity of the data that went in, and its parts (``step.output``, id).
        incomplete: True when its run failed or never finished.
    """

    number: int
    stage: str = "none"
    created: float | None = None
    run_id: str | None = None
    metrics: tuple[tuple[str, float | int | str | bool | None], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    code: str | None = None
    code_parts: tuple[tuple[str, str], ...] = ()
    data: str | None = None
    data_parts: tuple[tuple[str, str], ...] = ()
    incomplete: bool = False


@dataclass(frozen=True)
class StageEventView:
    """One stage change: ``version`` moved to ``stage`` (``promote`` or ``rollback``);
    ``archived``: the versions this change archived."""

    seq: int
    stage: str
    version: int | None
    previous: int | None = None
    reason: str = "promote"
    user: str = ""
    time: float | None = None
    run_id: str | None = None
    archived: tuple[int, ...] = ()


@dataclass(frozen=True)
class ModelView:
    """A model: its versions (oldest first) and its stage history (oldest first)."""

    name: str
    versions: tuple[VersionView, ...]
    history: tuple[StageEventView, ...] = ()
    holders: tuple[tuple[str, int | None], ...] = field(default=())
