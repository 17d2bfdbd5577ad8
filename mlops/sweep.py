"""Run the jobs of a sweep as one Dask graph over one shared cache, then promote in order.

``python -m mlops -m +pipeline=train_and_promote steps.train.C=0.01,0.1,1,10`` composes four
configs; the mlops Hydra launcher compiles each into a :class:`~mlops.compiler.Plan` and hands
them to :func:`run_sweep`. Every job is a run of its own (its own run record, its own model
version); what the jobs share is the graph and the cache.

How the graph is combined. A step's graph key is ``<step>-<static key>``, and the static key
hashes the step's code, params and the static keys of what it reads, so a step that is identical
in several jobs (``load_data``, ``split``) has one key. The first job that has the key runs it
under that key; every other job that has it gets its own task, keyed ``<key>-job<N>``, that
waits for the shared one and then runs the step as that job -- which is a cache hit, recorded as
``cached`` in its run and linked to its model version. (Where a cache hit is not allowed -- an
uncacheable step, ``cache.refresh``, a step that reads the run's own model version -- the job
runs the step itself, exactly as a later run would.)

Failures stay in their job: every task is guarded, so a step that raises marks its job failed,
skips that job's later steps, and leaves the other jobs running.

Ctrl-C works as in a single run (:mod:`mlops.interrupts`): the first lets the running steps of
every job finish and starts no other, promotes nothing, and records every job's run
``interrupted`` (its version stays incomplete); a second stops without waiting.

Promotion. Jobs run in parallel, but promotion must not be a race: the promotion step (the
launcher's ``promotion.step``, ``promote`` by default) and whatever depends on it are held back
from the combined graph and run afterwards, one job at a time, in order of the jobs' metric
(``promotion.metric``, from each model version's metadata), worst first. Each job's promotion
step decides for itself as usual (e.g. against its threshold), so the best job that passes runs
last and ends in ``production``; the others that passed end ``archived``. Ties go to the lower
job number; jobs without the metric go first.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

from .errors import MlopsError, StepFailedError
from .executor import CacheOptions, Execution, Progress, StepResult, StepRunner, run_graph
from .interrupts import InterruptHandler, NotStarted, RunInterrupted, StepGuard, stop_flag
from .redaction import redact, redact_text

if TYPE_CHECKING:
    from .compiler import Plan
    from .registry import Registry
    from .run_store import Run

__all__ = ["PromotionPolicy", "StepFailure", "SweepJob", "format_summary", "run_sweep", "summary"]


@dataclass(frozen=True)
class PromotionPolicy:
    """Which step promotes, and the metric that orders the jobs' promotions.

    Args:
        step: the promotion step's name; None (or a pipeline without it) promotes nothing apart.
        metric: a metadata key of the jobs' model versions (e.g. ``accuracy``).
        greater_is_better: False for a loss.
    """

    step: str | None = "promote"
    metric: str | None = "accuracy"
    greater_is_better: bool = True


@dataclass(frozen=True)
class StepFailure:
    """A guarded task's result when its step raised (``skipped``: an upstream step had failed)."""

    step: str
    message: str
    skipped: bool = False


@dataclass
class SweepJob:
    """One job of a sweep: its overrides, its compiled plan and, once run, its run record."""

    number: int
    overrides: list[str]
    plan: Plan | None = None
    registry: Registry | None = None
    cache: CacheOptions = field(default_factory=CacheOptions)
    error: str | None = None
    execution: Execution | None = None
    metric: float | None = None
    failed: MlopsError | None = None
    interrupted: bool = False  # Ctrl-C: the run started no more steps
    result: Run | None = None
    planned: bool = False  # plan=true: the plan was printed, nothing ran

    @property
    def label(self) -> str:
        """The job's overrides as a line, with secret values hidden (``key=***``)."""
        return " ".join(redact(self.overrides)) or "(no overrides)"


class _Guarded:
    """A job's StepRunner that returns a :class:`StepFailure` instead of raising."""

    def __init__(self, runner: StepRunner) -> None:
        self.runner = runner

    def __call__(self, name: str, *upstream: StepResult | StepFailure) -> StepResult | StepFailure:
        for u in upstream:
            if isinstance(u, StepFailure):
                return StepFailure(name, f"skipped: step '{u.step}' failed", skipped=True)
        try:
            return self.runner(name, *upstream)  # type: ignore[arg-type]
        except StepFailedError as e:
            return StepFailure(name, str(e))
        except Exception as e:
            text = str(e) if isinstance(e, MlopsError) else f"{type(e).__name__}: {e}"
            return StepFailure(name, f"step '{name}' failed: {text}")


class _AfterShared:
    """A job's copy of a step another job runs: wait for it, then run it as this job (a hit)."""

    def __init__(self, guarded: _Guarded) -> None:
        self.guarded = guarded

    def __call__(
        self, name: str, shared: StepResult | StepFailure, *upstream: StepResult | StepFailure
    ) -> StepResult | StepFailure:
        if isinstance(shared, StepFailure) and not shared.skipped:
            return StepFailure(name, shared.message)  # the same step failed in another job
        # A new runner for the same run: its cache lookups start now, after the other job
        # stored the step (a runner may remember what it found missing earlier in the run).
        r = self.guarded.runner
        return _Guarded(r.fresh())(name, *upstream)


def _held_back(plan: Plan, policy: PromotionPolicy) -> set[str]:
    """The promotion step and every step downstream of it."""
    if policy.step is None or policy.step not in plan.steps:
        return set()
    held = {policy.step}
    for name, sp in plan.steps.items():  # steps are in dependency order
        if any(d in held for d in sp.deps):
            held.add(name)
    return held


def _registry_id(reg: Registry) -> str:
    """What tells two jobs' registries apart: a local folder's path, or a URI and its options."""
    storage = reg.storage
    if storage.local:  # by path alone: no filesystem object needed (nor fsspec imported)
        return json.dumps(["local", storage.root])
    return json.dumps([reg.uri, sorted(map(str, storage.fs.storage_options.items()))])


class _Prefixed(io.TextIOBase):
    """A stream that starts each line with a job's number."""

    def __init__(self, prefix: str, out: IO[str]) -> None:
        self.prefix = prefix
        self.out = out

    def write(self, text: str) -> int:
        lines = text.splitlines(keepends=True)
        self.out.write("".join(self.prefix + line if line.strip() else line for line in lines))
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def run_sweep(
    jobs: Sequence[SweepJob],
    get: Callable[..., Any],
    policy: PromotionPolicy = PromotionPolicy(),  # noqa: B008 - frozen, shared safely
    out: IO[str] | None = None,
    *,
    exit_on_second_interrupt: bool = False,
) -> bool:
    """Run the compiled ``jobs`` as one graph with ``get``, then their promotions in order.

    Jobs with ``error`` set (they did not compile) are left alone. Each other job gets a run
    record and, if its pipeline registers one, a model version (numbered in job order). A step
    failure is recorded in its job (``job.failed``) and does not stop the others.

    Returns:
        True if Ctrl-C stopped the sweep (every job's run is then recorded ``interrupted``,
        unless it had failed, and ``job.interrupted`` is set).
    """
    stream = out or sys.stdout
    live = [j for j in jobs if j.error is None and j.plan is not None and j.registry is not None]
    for j in live:
        assert j.plan is not None and j.registry is not None
        prefixed = cast(IO[str], _Prefixed(f"#{j.number}", stream))
        progress = Progress(len(j.plan.steps), prefixed)
        j.execution = Execution(j.plan, j.registry, cache=j.cache, progress=progress)
        j.execution.start()

    owner_of_key: dict[Hashable, tuple[SweepJob, str]] = {}
    key_of: dict[tuple[int, str], str] = {}
    results: dict[tuple[int, str], StepResult | StepFailure] = {}

    def on_result(key: Hashable, value: Any) -> None:
        job, step = owner_of_key[key]
        results[(job.number, step)] = value
        ex = job.execution
        assert ex is not None
        if isinstance(value, NotStarted):
            return  # Ctrl-C: recorded skipped when the job's run is finished
        if isinstance(value, StepResult):
            ex.step_finished(value)
        elif isinstance(value, StepFailure) and not value.skipped:
            error = StepFailedError(step, value.message)
            ex.step_failed(step, error)
            if job.failed is None:
                job.failed = error

    flag = stop_flag(get, next((j.execution.run_id for j in live if j.execution), "sweep"))

    def finish_interrupted() -> None:
        for j in live:
            if j.execution is not None:
                j.execution.finish(j.failed or RunInterrupted(j.execution.run_id))

    handler = InterruptHandler(
        flag,
        waiting_for=lambda: sorted(set(flag.running() or [])),
        on_abort=finish_interrupted,
        hard_exit=exit_on_second_interrupt,
    )
    try:
        with handler:
            _run_phases(live, get, policy, flag, owner_of_key, key_of, results, on_result)
    finally:
        flag.close()
    interrupted = handler.interrupted
    for j in live:
        assert j.execution is not None
        error: BaseException | None = j.failed
        if interrupted and error is None:
            j.interrupted = True
            error = RunInterrupted(j.execution.run_id)
        j.result = j.execution.finish(error)
    return interrupted


def _run_phases(
    live: list[SweepJob],
    get: Callable[..., Any],
    policy: PromotionPolicy,
    flag: Any,
    owner_of_key: dict[Hashable, tuple[SweepJob, str]],
    key_of: dict[tuple[int, str], str],
    results: dict[tuple[int, str], StepResult | StepFailure],
    on_result: Callable[[Hashable, Any], None],
) -> None:
    """Phase 1, every job's steps but promotions in one graph; then, unless Ctrl-C stopped
    it, each job's version made whole and phase 2, the promotions one job at a time."""
    # phase 1: every job's steps but the promotion, in one graph
    graph: dict[Hashable, Any] = {}
    shared: dict[tuple[str, str], str] = {}
    held: dict[int, set[str]] = {}
    for j in live:
        assert j.plan is not None and j.registry is not None and j.execution is not None
        held[j.number] = _held_back(j.plan, policy)
        guarded = _Guarded(j.execution.runner())
        # one object per job: serialized once per job; a guard starts no step after Ctrl-C
        after_shared = StepGuard(_AfterShared(guarded), flag)
        task = StepGuard(guarded, flag)
        reg = _registry_id(j.registry)
        for name, sp in j.plan.steps.items():
            if name in held[j.number]:
                continue
            deps = [key_of[(j.number, d)] for d in sp.deps]
            first = shared.get((reg, sp.graph_key))
            if first is None and sp.graph_key not in graph:
                key = sp.graph_key
                graph[key] = (task, name, *deps)
                shared[(reg, key)] = key
            elif first is None:  # same key, another registry: not the same step
                key = f"{sp.graph_key}-job{j.number}"
                graph[key] = (task, name, *deps)
                shared[(reg, sp.graph_key)] = key
            else:
                key = f"{sp.graph_key}-job{j.number}"
                graph[key] = (after_shared, name, first, *deps)
            key_of[(j.number, name)] = key
            owner_of_key[key] = (j, name)
    if graph:
        run_graph(get, graph, list(graph), on_result)  # type: ignore[arg-type]
    if flag.is_set():
        return
    for j in live:  # every step that links to a job's version has run: make the version whole
        if j.failed is None and j.execution is not None:
            try:
                j.execution.complete_version()
            except MlopsError as e:
                j.failed = e

    # phase 2: promotions, one job at a time, worst metric first
    for j in _promotion_order([j for j in live if j.failed is None and held[j.number]], policy):
        assert j.plan is not None and j.execution is not None
        if flag.is_set():
            return
        graph2: dict[Hashable, Any] = {}
        promoter = StepGuard(_Guarded(j.execution.runner()), flag)
        for name, sp in j.plan.steps.items():
            if name not in held[j.number]:
                continue
            deps = []
            for d in sp.deps:
                if d not in held[j.number] and key_of[(j.number, d)] not in graph2:
                    graph2[key_of[(j.number, d)]] = results[(j.number, d)]
                deps.append(key_of[(j.number, d)])
            key = f"{sp.graph_key}-job{j.number}"
            graph2[key] = (promoter, name, *deps)
            key_of[(j.number, name)] = key
            owner_of_key[key] = (j, name)
        keys = [key_of[(j.number, n)] for n in j.plan.steps if n in held[j.number]]
        run_graph(get, graph2, keys, on_result)  # type: ignore[arg-type]


def _metric(job: SweepJob, policy: PromotionPolicy) -> float | None:
    ex = job.execution
    if policy.metric is None or ex is None or ex.model_version is None:
        return None
    value = ex.metadata.get(policy.metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _promotion_order(jobs: list[SweepJob], policy: PromotionPolicy) -> list[SweepJob]:
    """Worst first, so that the best job's promotion is the last word.

    Examples:
        >>> a, b, c = SweepJob(0, []), SweepJob(1, []), SweepJob(2, [])
        >>> a.metric, b.metric, c.metric = 0.9, 0.95, 0.9
        >>> [j.number for j in _promotion_order([a, b, c], PromotionPolicy(metric=None))]
        [2, 0, 1]
    """
    for j in jobs:
        if j.execution is not None:
            j.metric = _metric(j, policy)
    sign = 1.0 if policy.greater_is_better else -1.0

    def rank(j: SweepJob) -> tuple[int, float, int]:
        if j.metric is None:
            return (0, 0.0, -j.number)
        return (1, sign * j.metric, -j.number)

    return sorted(jobs, key=rank)


def summary(jobs: Sequence[SweepJob], policy: PromotionPolicy) -> list[dict[str, Any]]:
    """One row per job: overrides, status, metric, model version and stage, step statuses.

    Secret values among the overrides and in error messages are hidden (``key=***``): the rows
    are printed and saved in the sweep folder.
    """
    rows = []
    for j in jobs:
        row: dict[str, Any] = {
            "job": j.number,
            "overrides": redact(list(j.overrides)),
            "status": "failed"
            if (j.error or j.failed)
            else "interrupted"
            if j.interrupted
            else "planned"
            if j.planned
            else "completed",
            "metric": None,
            "metric_name": policy.metric,
            "model": None,
            "version": None,
            "stage": None,
            "run": None,
            "steps": {},
            "error": redact_text(j.error or str(j.failed)) if (j.error or j.failed) else None,
        }
        if j.execution is not None:
            run = j.execution.run
            row["run"] = run.id
            row["steps"] = dict(run.steps)
            mv = j.execution.model_version
            if mv is not None:
                stages = j.execution.registry.models.current_stages(mv.name)
                row["model"], row["version"] = mv.name, mv.number
                row["stage"] = stages.stage_of(mv.number) if stages else "none"
                row["metric"] = _metric(j, policy)
        rows.append(row)
    return rows


def format_summary(rows: Sequence[dict[str, Any]], seconds: float | None = None) -> str:
    """The summary as a plain-text table, then one line per failed job."""
    metric_name = next((r["metric_name"] for r in rows if r.get("metric_name")), "metric")
    header = ["job", "overrides", "status", metric_name, "version", "stage", "steps"]
    table = [header]
    for r in rows:
        metric = r["metric"]
        table.append(
            [
                f"#{r['job']}",
                " ".join(r["overrides"]) or "-",
                r["status"],
                f"{metric:.4g}" if isinstance(metric, float) else "-",
                f"{r['model']} v{r['version']}" if r["version"] is not None else "-",
                r["stage"] or "-",
                " ".join(f"{s}:{st}" for s, st in r["steps"].items()) or "-",
            ]
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    failed = [r for r in rows if r["status"] == "failed"]
    done = sum(r["status"] == "completed" for r in rows)
    took = f" in {seconds:.2f}s" if seconds is not None else ""
    lines.append(f"{done} of {len(rows)} jobs completed{took}")
    for r in failed:
        lines.append(f"job #{r['job']} ({' '.join(r['overrides'])}) failed: {r['error']}")
    return "\n".join(lines) + "\n"


def write_summary(folder: str, rows: Sequence[dict[str, Any]], text: str) -> list[str]:
    """Save ``sweep_summary.json`` and ``sweep_summary.txt`` in ``folder``; return their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, "sweep_summary.json"), os.path.join(folder, "sweep_summary.txt")]
    with open(paths[0], "w") as f:
        json.dump({"time": time.time(), "jobs": list(rows)}, f, indent=2, default=str)
    with open(paths[1], "w") as f:
        f.write(text)
    return paths
