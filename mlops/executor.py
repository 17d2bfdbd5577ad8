"""Execute a :class:`~mlops.compiler.Plan` on a Dask scheduler, with caching and a run record.

The plan's graph maps each step's key to ``(task, step_name, *upstream_keys)``; the task is
:meth:`Execution.run_step`, which receives the upstream steps' :class:`StepResult` objects
(artifact references, plus the values themselves when they are in this process) and:

1. computes the step's cache key from its static key and its inputs' content hashes;
2. on a hit (caching on, entry complete, model reads unchanged) returns the recorded artifact
   references without loading anything;
3. otherwise loads its inputs, runs the function with a step context, stores each output by
   content hash, and writes the cache entry last -- so a crash never leaves an entry that names
   missing bytes;
4. links its outputs (and replays its logged metadata) to the model version this run registers.

Schedulers are plain callables ``get(graph, keys)`` (``dask.local.get_sync``,
``dask.threaded.get``, ...), so a synchronous one is always there for debugging.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from .cache import CacheEntry, CacheLookup, Decision, cache_key, decide, ingredients, warn
from .compiler import Plan, StepPlan, load_step
from .errors import ArtifactError, ConfigError, MlopsError, StepFailedError
from .registry import ModelVersion, Registry
from .runs import Run, new_run_id, redact
from .steps import StepContext, _reset_context, _set_context
from .store import ArtifactRef

__all__ = ["CacheOptions", "Execution", "StepResult", "execute", "get_scheduler", "run_graph"]


@dataclass
class CacheOptions:
    """Run-level cache controls: ``cache.enabled`` and ``cache.refresh``."""

    enabled: bool = True
    refresh: frozenset[str] = frozenset()


@dataclass
class StepResult:
    """What a step hands downstream: artifact references, and values when in this process."""

    step: str
    status: str
    outputs: dict[str, ArtifactRef]
    values: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cache_key: str = ""

    def __reduce__(self) -> Any:  # values stay in the process that made them
        args: tuple[Any, ...] = (
            self.step,
            self.status,
            self.outputs,
            {},
            self.seconds,
            self.cache_key,
        )
        return (StepResult, args)


class Progress:
    """One line per step event on a stream: started, cached, done, failed."""

    def __init__(self, total: int, stream: IO[str] | None = None, enabled: bool = True) -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.width = 12
        self._lock = threading.Lock()
        self._index: dict[str, int] = {}

    def event(self, step: str, what: str, seconds: float | None = None, note: str = "") -> None:
        if not self.enabled:
            return
        with self._lock:
            n = self._index.setdefault(step, len(self._index) + 1)
            t = f"{seconds:7.2f}s" if seconds is not None else " " * 8
            line = f"  [{n}/{self.total}] {step:<{self.width}} {what:<8}{t}"
            print(line + (f"  {note}" if note else ""), file=self.stream, flush=True)


class StepRunner:
    """The Dask task of every step: ``runner(step_name, *upstream_results) -> StepResult``.

    It holds what a step needs wherever it runs (the plan, the registry, the run id, the model
    version) and nothing that must come back: the result carries the status, timing and artifact
    references, so the same runner works in threads, processes or on remote workers. Progress
    hooks are in-process only and are dropped when the runner is pickled.

    Before the first step, the runner predicts the whole run with :func:`mlops.cache.decide`
    (reading cache entries, no payloads) to learn which cached artifacts running steps will load;
    those, and only those, are verified by hashing their bytes. A corrupted one is deleted and
    its producer runs again, so no step ever loads it.
    """

    def __init__(
        self,
        plan: Plan,
        registry: Registry,
        run_id: str,
        cache: CacheOptions,
        model_version: ModelVersion | None,
        progress: Progress | None = None,
    ) -> None:
        self.plan = plan
        self.registry = registry
        self.run_id = run_id
        self.cache = cache
        self.model_version = model_version
        self.progress = progress
        self.lookup = CacheLookup(plan, registry, enabled=cache.enabled, refresh=cache.refresh)
        self._decisions: dict[str, Decision] | None = None

    def __getstate__(self) -> dict[str, Any]:
        self.decisions()  # decide once, here, rather than on every worker
        state = dict(self.__dict__)
        state["progress"] = None
        return state

    def decisions(self) -> dict[str, Decision]:
        """The predicted fate of every step (computed once per run, on first use)."""
        with self.lookup.lock:
            if self._decisions is None:
                self._decisions = decide(self.lookup)
                for ref in self.lookup.corrupted.values():
                    self.registry.store.discard(ref)  # so that the producer can store it again
                self.lookup.prefetch_index([n for n, d in self._decisions.items() if d.cached])
            return self._decisions

    def __call__(self, name: str, *upstream: StepResult) -> StepResult:
        sp = self.plan.steps[name]
        by_step = {r.step: r for r in upstream}
        input_ids = {
            arg: (by_step[i.step].outputs[i.output].id if i.kind == "step" else i.artifact.id)  # type: ignore[index,union-attr]
            for arg, i in sp.inputs.items()
        }
        key = self._key(sp, input_ids)
        started = time.perf_counter()
        result = self._lookup(sp, key)
        if result is None:
            if self.progress is not None:
                self.progress.event(name, "started")
            try:
                result = self._run(sp, key, by_step, input_ids)
            except StepFailedError:
                raise
            except MlopsError as e:
                raise StepFailedError(name, f"step '{name}' failed: {e}") from e
            except Exception as e:
                raise StepFailedError(name, f"step '{name}' failed: {_describe(e)}") from e
        result.seconds = time.perf_counter() - started
        result.cache_key = key
        return result

    def _key(self, sp: StepPlan, input_ids: dict[str, str]) -> str:
        """The step's cache key: the one :func:`decide` computed if it saw the same inputs."""
        if self.lookup.off_reason(sp) is None:
            predicted = self.decisions().get(sp.name)
            if predicted is not None and predicted.key and predicted.inputs == input_ids:
                return predicted.key
        return cache_key(sp.static_key, input_ids)

    def _lookup(self, sp: StepPlan, key: str) -> StepResult | None:
        if self.lookup.off_reason(sp) is not None:
            return None
        decisions = self.decisions()
        entry, problems = self.lookup.check(sp, key)
        if entry is None:
            for problem in problems:
                if problem.startswith("cached output"):
                    warn(f"step '{sp.name}': {problem}; running the step again")
            return None
        predicted = decisions.get(sp.name)
        if predicted is None or predicted.key != key:
            # A hit the prediction did not see coming (an upstream step re-ran and gave the same
            # bytes): verify what the steps that run will load from it.
            for other in self.plan.steps.values():
                if decisions[other.name].cached:
                    continue
                for i in other.inputs.values():
                    if i.kind != "step" or i.step != sp.name:
                        continue
                    ref = entry.outputs[i.output or ""]
                    if not self.lookup.verify(ref):
                        warn(
                            f"step '{sp.name}': cached output `{i.output}` is corrupted; "
                            "running the step again"
                        )
                        self.registry.store.discard(ref)
                        return None
        self.lookup.touch(sp, entry)
        self._publish(sp, entry.outputs, entry.metadata)
        return StepResult(sp.name, "cached", entry.outputs)

    def _load_input(self, arg: str, sp: StepPlan, by_step: dict[str, StepResult]) -> Any:
        i = sp.inputs[arg]
        if i.kind == "step":
            res = by_step[i.step]  # type: ignore[index]
            if i.output in res.values:
                return res.values[i.output]
            ref = res.outputs[i.output]  # type: ignore[index]
        else:
            ref = i.artifact  # type: ignore[assignment]
        try:
            return self.registry.store.get(ref)
        except ArtifactError as e:
            raise ArtifactError(f"step '{sp.name}', input '{arg}' ({i.describe()}): {e}") from e

    def _run(
        self, sp: StepPlan, key: str, by_step: dict[str, StepResult], input_ids: dict[str, str]
    ) -> StepResult:
        step_obj = load_step(sp.target, f"steps.{sp.name}._target_")
        kwargs = dict(sp.params)
        for arg in sp.inputs:
            kwargs[arg] = self._load_input(arg, sp, by_step)
        ctx = StepContext(
            step_name=sp.name,
            run_id=self.run_id,
            pipeline_name=self.plan.pipeline,
            _model_version=lambda: self.model_version,
        )
        tok = _set_context(ctx)
        try:
            returned = step_obj.fn(**kwargs)
        except Exception as e:
            raise StepFailedError(sp.name, f"step '{sp.name}' failed: {_describe(e)}") from e
        finally:
            _reset_context(tok)
        values = _split_outputs(sp, returned)
        outputs: dict[str, ArtifactRef] = {}
        for out, value in values.items():
            try:
                outputs[out] = self.registry.store.put(value)
            except ArtifactError as e:
                raise ArtifactError(f"step '{sp.name}', output '{out}': {e}") from e
        metadata = {k: v for k, v in values.items() if _is_metric(v)}
        metadata.update(ctx.logged_metadata)
        # A step that read the version this run registers made something about *this* version
        # (a decision, a report): no later run may reuse it.
        reads_created = any(created for _, _, created in ctx.model_reads)
        if self.lookup.storable(sp) and not reads_created:
            entry = CacheEntry(
                key=key,
                step=sp.name,
                outputs=outputs,
                model_reads=[(n, v) for n, v, _ in ctx.model_reads],
                metadata=metadata,
                ingredients=ingredients(sp, dict(input_ids)),
                run_id=self.run_id,
            )
            self.lookup.write(sp, entry)  # last: an entry never names bytes that are not stored
        returned_metrics = {k: v for k, v in metadata.items() if k not in ctx.logged_metadata}
        self._publish(sp, outputs, returned_metrics)
        return StepResult(sp.name, "ran", outputs, values)

    def _publish(
        self, sp: StepPlan, outputs: dict[str, ArtifactRef], metadata: dict[str, Any]
    ) -> None:
        """Link outputs and metadata to the version this run registers."""
        mv = self.model_version
        if mv is None or not mv._created_by_run:
            return
        for out, ref in outputs.items():
            mv.link_artifact(out, ref, step=sp.name)
        if metadata:
            mv.log_metadata(metadata)


class Execution:
    """One run: registers the model version, runs the graph, keeps the run record."""

    def __init__(
        self,
        plan: Plan,
        registry: Registry,
        *,
        cache: CacheOptions | None = None,
        run_id: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.plan = plan
        self.registry = registry
        self.cache = cache or CacheOptions()
        self.run_id = run_id or new_run_id()
        self.progress = progress or Progress(len(plan.steps))
        self.progress.width = max([len(s) for s in plan.steps] + [8])
        self.model_version: ModelVersion | None = None
        self._lock = threading.Lock()
        self.run = Run(
            id=self.run_id,
            pipeline=plan.pipeline,
            status="running",
            started=time.time(),
            finished=None,
            config=redact(plan.config),
            step_records={name: {"status": "pending"} for name in plan.steps},
            model=None,
            registry=registry,
        )

    def runner(self) -> StepRunner:
        return StepRunner(
            self.plan, self.registry, self.run_id, self.cache, self.model_version, self.progress
        )

    def step_finished(self, result: StepResult) -> None:
        """Record a finished step (called in this process, wherever the step ran)."""
        with self._lock:
            self.run.step_records[result.step] = {
                "status": result.status,
                "seconds": result.seconds,
                "cache_key": result.cache_key,
                "outputs": {k: v.to_json() for k, v in result.outputs.items()},
            }
        self.progress.event(
            result.step, "cached" if result.status == "cached" else "done", result.seconds
        )

    def step_failed(self, step: str, error: BaseException) -> None:
        with self._lock:
            self.run.step_records[step] = {"status": "failed", "error": _describe(error)}
        self.progress.event(step, "failed", None, _describe(error))

    def start(self) -> None:
        """Register the model version (if the pipeline makes one) and save the run record."""
        model = self.plan.model
        if model is not None:
            if model.creates_version:
                self.model_version = self.registry.create_model_version(model.name, self.run_id)
            else:
                assert model.number is not None
                self.model_version = self.registry.get_model_version(model.name, model.number)
            self.run.model = {
                "name": model.name,
                "number": self.model_version.number,
                "requested": model.requested,
                "created": model.creates_version,
            }
        self.run.save()

    def finish(self, error: BaseException | None) -> Run:
        if (
            isinstance(error, StepFailedError)
            and self.run.step_records.get(error.step, {}).get("status") != "failed"
        ):
            self.step_failed(error.step, error)
        for rec in self.run.step_records.values():
            if rec.get("status") == "pending":
                rec["status"] = "skipped"
        self.run.status = "failed" if error is not None else "completed"
        self.run.error = _describe(error) if error is not None else None
        self.run.finished = time.time()
        self.run.save()
        return self.run


def get_scheduler(
    name: str,
    num_workers: int | None = None,
    *,
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
) -> Callable[..., Any]:
    """A Dask ``get`` function for an executor name: sync, threads, processes or distributed.

    ``processes`` runs steps in a pool of ``num_workers`` spawned processes; ``distributed``
    returns a :class:`~mlops.distributed.DistributedScheduler` (connect to ``address``, or start
    a local cluster of ``n_workers`` x ``threads_per_worker``), which the caller closes.
    """
    if name == "sync":
        from dask.local import get_sync

        return get_sync
    if name == "threads":
        import dask.threaded

        def get_threads(graph: dict[str, Any], keys: list[str]) -> Any:
            return dask.threaded.get(graph, keys, num_workers=num_workers)

        return get_threads
    if name == "processes":
        import dask.multiprocessing

        from .distributed import install_shared_callables

        def get_processes(graph: dict[str, Any], keys: list[str]) -> Any:
            # The step runner (the whole plan) goes to each worker process once, with the
            # pool's initializer, rather than pickled into every task.
            shipped, init = install_shared_callables(
                graph,  # type: ignore[arg-type]
                dask.config.get("multiprocessing.initializer", None),
            )
            # spawned workers (Dask's default context): safe with threads, same on every OS
            return dask.multiprocessing.get(
                shipped, keys, num_workers=num_workers, initializer=init
            )

        return get_processes
    if name == "distributed":
        from .distributed import DistributedScheduler

        return DistributedScheduler(address, n_workers, threads_per_worker)
    raise ConfigError(
        f"unknown executor '{name}'; choose one of: sync, threads, processes, distributed",
        "executor.name",
    )


def run_graph(
    get: Callable[..., Any],
    graph: dict[str, Any],
    keys: list[str],
    on_result: Callable[[str, Any], None],
) -> None:
    """Compute ``keys`` of ``graph`` with ``get``, calling ``on_result(key, value)`` per task.

    Local schedulers report through a Dask callback; a scheduler with ``reports_results``
    (dask.distributed, where callbacks do not fire) reports as its futures complete.
    """
    if getattr(get, "reports_results", False):
        get.run(graph, keys, on_result)  # type: ignore[attr-defined]
        return
    from dask.callbacks import Callback

    def posttask(key: str, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        on_result(key, result)

    with Callback(posttask=posttask):
        get(graph, keys)


def execute(
    plan: Plan,
    registry: Registry,
    *,
    scheduler: str | Callable[..., Any] = "threads",
    num_workers: int | None = None,
    cache: CacheOptions | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
) -> Run:
    """Run ``plan`` and return its run record (also when a step fails: then raise after saving).

    Args:
        scheduler: an executor name (``sync``, ``threads``, ``processes``, ``distributed``) or
            a Dask ``get`` function.
        address, n_workers, threads_per_worker: ``executor=distributed`` options.

    Raises:
        ConfigError: the registry cannot be reached from the executor's workers (nothing ran).
        StepFailedError: a step raised; the run record is saved with status ``failed``.
    """
    owned = isinstance(scheduler, str)
    if isinstance(scheduler, str):
        get = get_scheduler(
            scheduler,
            num_workers,
            address=address,
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
        )
    else:
        get = scheduler
    try:
        check = getattr(get, "check_registry", None)
        if check is not None:
            check(registry)
        ex = Execution(plan, registry, cache=cache, run_id=run_id, progress=progress)
        ex.start()
        error: BaseException | None = None

        def on_result(key: str, result: Any) -> None:
            if isinstance(result, StepResult):
                ex.step_finished(result)

        try:
            run_graph(get, plan.graph(ex.runner()), plan.keys, on_result)
        except BaseException as e:
            error = e
            raise
        finally:
            ex.finish(error)
    finally:
        close = getattr(get, "close", None)
        if owned and close is not None:
            close()
    return ex.run


def _split_outputs(sp: StepPlan, returned: Any) -> dict[str, Any]:
    outs = sp.outputs
    if not outs:
        if returned is not None:
            raise StepFailedError(
                sp.name,
                f"step '{sp.name}' is annotated -> None but returned a {type(returned).__name__}",
            )
        return {}
    if len(outs) == 1:
        return {outs[0]: returned}
    if not isinstance(returned, (tuple, list)) or len(returned) != len(outs):
        got = (
            f"{len(returned)} values"
            if isinstance(returned, (tuple, list))
            else f"a {type(returned).__name__}"
        )
        raise StepFailedError(
            sp.name,
            f"step '{sp.name}' declares {len(outs)} outputs ({', '.join(outs)}) but returned {got}",
        )
    return dict(zip(outs, returned, strict=True))


def _is_metric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _describe(e: BaseException | None) -> str:
    if e is None:
        return ""
    if isinstance(e, MlopsError):
        return str(e)
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
