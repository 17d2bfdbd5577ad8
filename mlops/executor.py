"""Execute a :class:`~mlops.compiler.Plan` on a Dask scheduler, with caching and a run record.

The plan's graph maps each step's graph key to ``(task, step_name, *upstream_keys)``; the task is
a :class:`StepRunner`, which receives the upstream steps' :class:`StepResult` objects (artifact
references, plus the serialized bytes when they are in this process) and:

1. computes the step's cache key from its static key and its inputs' content hashes;
2. on a hit (caching on, entry complete, model reads unchanged) returns the recorded artifact
   references without loading anything;
3. otherwise loads its inputs, runs the function with a step context, stores each output by
   content hash, and writes the cache entry last -- so a crash never leaves an entry that names
   missing bytes.

**One value path.** Every consumer of an output gets a value equal to what loading the output's
stored bytes gives -- decoded in this process from the bytes just written, elsewhere from the
store -- and its own: a step that mutates its input cannot change what another step sees, and a
fresh run hands steps exactly what a cached run would, on every executor. A DataFrame is decoded
at most once per output and process (or not at all, when its stored schema proves the producer's
frame is what a load gives) and every consumer gets a copy-on-write copy (:mod:`mlops.values`).

**Whole or invisible.** :class:`Execution` takes the version number when the run starts, collects
the artifacts and metrics every step links, and writes them as the version's one completion record
only when every step has succeeded. Stage changes that steps ask for on that version (``promote``)
are made after it is complete; if the run fails or dies, the version stays ``incomplete`` and
nothing is promoted.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import logs
from .cache import (
    CacheEntry,
    CacheLookup,
    Decision,
    cache_key,
    decide,
    ingredients,
    input_id,
    warn,
    why_it_runs,
)
from .compiler import (
    ArtifactInput,
    FileInput,
    Plan,
    StepInput,
    StepPlan,
    StoredInput,
    load_step,
)
from .errors import ArtifactError, MlopsError, StepFailedError, describe
from .inprocess import InProcessScheduler, runs_in_process
from .interrupts import InterruptHandler, RunInterrupted, StepGuard, stop_flag, waiting_for
from .models import ModelVersion, VersionStatus
from .progress import Progress
from .redaction import config_secret_values, hide_values, redact
from .run_store import Heartbeat, Run, RunStatus, StepStatus, new_run_id
from .schedulers import get_scheduler, run_graph
from .stages import StageChange, next_assignment
from .steps import StepContext, _reset_context, _set_context
from .store import ArtifactRef
from .tracebacks import StepCrashed, crashed
from .values import TAIL_BYTES, Shared, is_frame, loads_back, share, shareable

if TYPE_CHECKING:
    from .registry import Registry

__all__ = [
    "CacheOptions",
    "Execution",
    "Progress",
    "StepResult",
    "StepRunner",
    "execute",
    "get_scheduler",
    "run_graph",
]

#: outputs up to this size are handed to consumers in this process as the bytes just written;
#: larger ones are read back from the store (a memory map of the page cache on a local folder)
KEEP_BYTES = 64 << 20


@dataclass(frozen=True)
class CacheOptions:
    """Run-level cache controls: ``cache.enabled`` and ``cache.refresh``."""

    enabled: bool = True
    refresh: frozenset[str] = frozenset()


@dataclass
class StepResult:
    """What a step hands downstream and to the run record.

    ``payloads`` (the serialized bytes of outputs made in this process) and ``shared`` (frames
    every consumer in this process gets a copy of) never leave the process.
    """

    step: str
    status: StepStatus
    outputs: dict[str, ArtifactRef]
    metadata: dict[str, Any] = field(default_factory=dict)
    stage_requests: tuple[tuple[str, bool], ...] = ()
    payloads: dict[str, bytes] = field(default_factory=dict)
    seconds: float = 0.0
    cache_key: str = ""
    #: the step's captured log (an artifact reference as JSON), if it printed or logged anything
    log: dict[str, Any] | None = None
    #: each output's storage stamp just after this run hashed and wrote it: while it is unchanged
    #: a consumer loads the bytes without hashing them again
    stamps: dict[str, str] = field(default_factory=dict)
    #: why the step ran (the plan's reasons, worked out only for a step that runs)
    why: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # plain attributes, not fields: they never leave the process, and Dask tokenizes a
        # dataclass field by field
        #: by output: the frame its consumers in this process get copy-on-write copies of
        self.shared: dict[str, Shared] = {}
        #: by shared output: how many of its consumers have yet to finish (then it is let go)
        self.pending: dict[str, int] = {}
        #: held while the first consumer of an output decodes the frame the others will share
        self.sharing = threading.Lock()
        #: outputs found not to be shared: each consumer decodes its own
        self.unshared: set[str] = set()

    def release(self, out: str) -> None:
        """A consumer holding a copy of ``shared[out]`` finished: after the last, let it go (its
        memory, and its arrays' read-only guard, which no running consumer needs any more)."""
        with self.sharing:
            self.pending[out] = self.pending.get(out, 0) - 1
            if self.pending[out] <= 0 and out in self.shared:
                del self.shared[out], self.pending[out]

    def __reduce__(self) -> Any:
        args: tuple[Any, ...] = (
            self.step,
            self.status,
            self.outputs,
            self.metadata,
            self.stage_requests,
            {},
            self.seconds,
            self.cache_key,
            self.log,
            self.stamps,
            self.why,
        )
        return (StepResult, args)


class _StepVersionActions:
    """What the model version a running step sees can do.

    On the version this run registers (incomplete until the run ends), logged metadata becomes
    part of the version and stage changes are made once it is complete; on any other version,
    metadata is an appended note and stage changes are made at once.
    """

    def __init__(self, registry: Registry, ctx: StepContext) -> None:
        self.registry = registry
        self.ctx = ctx

    def _own(self, mv: ModelVersion) -> bool:
        own = self.ctx.version
        return (
            self.ctx.creates_version
            and own is not None
            and (own.name, own.number) == (mv.name, mv.number)
            and not mv.complete
        )

    def load(self, ref: ArtifactRef) -> Any:
        return self.registry.artifacts.get(ref)

    def log_metadata(self, mv: ModelVersion, values: Mapping[str, Any]) -> None:
        if self._own(mv):
            self.ctx.logged_metadata.update(values)
        else:
            self.registry.models.add_note(mv.name, mv.number, values, run_id=self.ctx.run_id)

    def set_stage(self, mv: ModelVersion, stage: str, force: bool) -> StageChange | None:
        if self._own(mv):
            # checked now, so that a refused change fails the step that asked for it
            current = self.registry.models.current_stages(mv.name)
            next_assignment(current, mv.number, stage, force=force, name=mv.name)
            self.ctx.stage_requests.append((stage, force))
            return None
        return self.registry.models.set_stage(
            mv.name, mv.number, stage, force=force, run_id=self.ctx.run_id
        )


class StepRunner:
    """The Dask task of every step: ``runner(step_name, *upstream_results) -> StepResult``.

    It holds what a step needs wherever it runs (the plan, the registry's stores, the run id, the
    model version) and nothing that must come back: the result carries the status, timing,
    artifact references and what the step asked of the model version, so the same runner works in
    threads, processes or on remote workers. Progress hooks are in-process only and are dropped
    when the runner is pickled.

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
        creates_version: bool = False,
        progress: Progress | None = None,
        secrets: list[str] | None = None,
    ) -> None:
        self.plan = plan
        self.registry = registry
        self.run_id = run_id
        self.cache = cache
        self.model_version = model_version
        self.creates_version = creates_version
        self.progress = progress
        self.lookup = CacheLookup(
            plan,
            registry.cache,
            registry.artifacts,
            enabled=cache.enabled,
            refresh=cache.refresh,
        )
        self._decisions: dict[str, Decision] | None = None
        self._origin = os.getpid()
        self._refreshed: set[str] = set()
        #: the config's secret values (None: worked out on first use)
        self._secrets = secrets
        self._consumer_counts: dict[tuple[str, str], int] | None = None

    def _secret_values(self) -> list[str]:
        """The config's secret values (worked out once: the config has every step in it)."""
        if self._secrets is None:
            self._secrets = config_secret_values(self.plan.config)
        return self._secrets

    def fresh(self) -> StepRunner:
        """A runner for the same run whose cache lookups start now (it remembers nothing)."""
        return StepRunner(
            self.plan,
            self.registry,
            self.run_id,
            self.cache,
            self.model_version,
            self.creates_version,
            self.progress,
            self._secrets,
        )

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
                    self.registry.artifacts.discard(ref)  # so that the producer can store it again
                self.lookup.prefetch_index([n for n, d in self._decisions.items() if d.cached])
            return self._decisions

    def __call__(self, name: str, *upstream: StepResult) -> StepResult:
        sp = self.plan.steps[name]
        by_step = {r.step: r for r in upstream}
        input_ids = {
            arg: (by_step[i.step].outputs[i.output].id if isinstance(i, StepInput) else input_id(i))
            for arg, i in sp.inputs.items()
        }
        key = self._key(sp, input_ids)
        started = time.perf_counter()
        result = self._lookup(sp, key)
        if result is not None and not self._predicted_cached(name):
            # an unforeseen hit loads nothing: its upstream frames stop waiting for it
            for i in sp.inputs.values():
                if isinstance(i, StepInput):
                    by_step[i.step].release(i.output)
        if result is None:
            why = tuple(why_it_runs(self.lookup, sp, key, input_ids))
            if self.progress is not None:
                self.progress.event(name, "started")
            try:
                result = self._run(sp, key, by_step, input_ids)
            except StepFailedError:
                raise
            except MlopsError as e:
                raise StepFailedError(name, f"step '{name}' failed: {e}") from e
            except Exception as e:
                raise StepFailedError(name, f"step '{name}' failed: {describe(e)}") from e
            result.why = why
        result.seconds = time.perf_counter() - started
        result.cache_key = key
        return result

    def _key(self, sp: StepPlan, input_ids: dict[str, str]) -> str:
        """The step's cache key: the one :func:`decide` computed if it saw the same inputs."""
        if self.lookup.off_reason(sp) is None:
            predicted = self.decisions().get(sp.name)
            if predicted is not None and predicted.cache_key and predicted.inputs == input_ids:
                return predicted.cache_key
        return cache_key(sp.static_key, input_ids)

    def _lookup(self, sp: StepPlan, key: str) -> StepResult | None:
        if self.lookup.off_reason(sp) is not None:
            return None
        decisions = self.decisions()
        entry, problems, problem = self.lookup.check(sp, key)
        if entry is None:
            if problem is not None:
                warn(f"step '{sp.name}': {problems[0]}; running the step again")
            return None
        predicted = decisions.get(sp.name)
        if predicted is None or predicted.cache_key != key:
            # A hit the prediction did not see coming (an upstream step re-ran and gave the same
            # bytes): verify what the steps that run will load from it.
            for other in self.plan.steps.values():
                if decisions[other.name].cached:
                    continue
                for i in other.inputs.values():
                    if not isinstance(i, StepInput) or i.step != sp.name:
                        continue
                    ref = entry.outputs[i.output]
                    if not self.lookup.verify(ref):
                        warn(
                            f"step '{sp.name}': cached output `{i.output}` is corrupted; "
                            "running the step again"
                        )
                        self.registry.artifacts.discard(ref)
                        return None
        self.lookup.touch(sp, entry)
        return StepResult(sp.name, StepStatus.CACHED, dict(entry.outputs), dict(entry.metadata))

    def _load_input(
        self,
        arg: str,
        sp: StepPlan,
        by_step: dict[str, StepResult],
        taken: list[tuple[StepResult, str]],
    ) -> Any:
        i = sp.inputs[arg]
        if isinstance(i, FileInput):
            return i.path
        try:
            if isinstance(i, StepInput):
                counted = not self._predicted_cached(sp.name)
                return self._load_output(by_step[i.step], i.output, taken, counted)
            assert isinstance(i, (ArtifactInput, StoredInput))
            return self.registry.artifacts.get(i.artifact)
        except ArtifactError as e:
            raise ArtifactError(f"step '{sp.name}', input '{arg}' ({i.describe()}): {e}") from e

    def _load_output(
        self, res: StepResult, out: str, taken: list[tuple[StepResult, str]], counted: bool
    ) -> Any:
        """A value of ``res``'s output ``out`` that is this consumer's own.

        A frame is decoded once per process: the first consumer decodes it, and every consumer
        gets a copy-on-write copy of it (noted in ``taken``: the step releases it when it ends;
        ``counted``: the step was expected to run, so it is among the consumers it waits for).
        """
        ref = res.outputs[out]
        if ref.format not in ("parquet", "series-parquet") or out in res.unshared:
            return self._decode_output(res, out)
        with res.sharing:  # the other consumers wait for this decode rather than repeat it
            shared = res.shared.get(out)
            if shared is None:
                consumers = self._consumers(res.step, out)
                value = self._decode_output(res, out)
                shared = share(value) if consumers > 1 and shareable(value) else None
                if shared is None:
                    res.unshared.add(out)  # the others decode their own, side by side
                    return value
                res.shared[out] = shared
                # (less those expected to run that turned out cached, which have said so)
                res.pending[out] = consumers + res.pending.get(out, 0)
            if not counted:
                res.pending[out] = res.pending.get(out, 0) + 1
            taken.append((res, out))
            return shared.hand()

    def _predicted_cached(self, step: str) -> bool:
        """True if the run's prediction says ``step`` is a hit (nothing is predicted when the
        cache is off)."""
        d = (self._decisions or {}).get(step)
        return d is not None and d.cached

    def _consumers(self, step: str, out: str) -> int:
        """How many inputs of the steps this run is expected to run read ``step``'s ``out``."""
        with self.lookup.lock:
            if self._consumer_counts is None:
                counts: dict[tuple[str, str], int] = {}
                for other in self.plan.steps.values():
                    if self._predicted_cached(other.name):  # it will load nothing
                        continue
                    for i in other.inputs.values():
                        if isinstance(i, StepInput):
                            counts[i.step, i.output] = counts.get((i.step, i.output), 0) + 1
                self._consumer_counts = counts
            return self._consumer_counts.get((step, out), 0)

    def _decode_output(self, res: StepResult, out: str) -> Any:
        ref = res.outputs[out]
        data = res.payloads.get(out)
        if data is not None:  # the bytes just written: decode them, as a load would
            return self.registry.artifacts.decode(ref, data)
        stamp = res.stamps.get(out)
        if stamp is not None:  # written and hashed by this run, unchanged since
            return self.registry.artifacts.get(ref, stamp=stamp)
        return self.registry.artifacts.get(ref)

    def _context(self, sp: StepPlan) -> StepContext:
        ctx = StepContext(step_name=sp.name, run_id=self.run_id, pipeline_name=self.plan.pipeline)
        if self.model_version is not None:
            ctx.creates_version = self.creates_version
            actions = _StepVersionActions(self.registry, ctx)
            ctx.version = replace(self.model_version, actions=actions)
        return ctx

    def _run(
        self, sp: StepPlan, key: str, by_step: dict[str, StepResult], input_ids: dict[str, str]
    ) -> StepResult:
        module = sp.target.rpartition(".")[0]
        if os.getpid() != self._origin and module not in self._refreshed:
            # a long-lived worker may hold an older import of the step's code (the main process
            # refreshed its own when the run started)
            refresh_code(sp.name, [module])
            self._refreshed.add(module)
        step_obj = load_step(sp.target, f"steps.{sp.name}._target_")
        kwargs = dict(sp.params)
        taken: list[tuple[StepResult, str]] = []  # shared frames this step holds copies of
        for arg in sp.inputs:
            kwargs[arg] = self._load_input(arg, sp, by_step, taken)
        ctx = self._context(sp)
        tok = _set_context(ctx)
        try:
            with logs.capture() as log:  # the step's stdout, stderr and logging records
                try:
                    returned = step_obj.fn(**kwargs)
                except Exception as e:
                    failed: Exception | None = e
                else:
                    failed = None
            secrets = self._secret_values()  # a step may print one
            log_ref = logs.store(
                self.registry.artifacts, log, lambda text: hide_values(text, secrets)
            )
            log_doc = log_ref.to_json() if log_ref is not None else None
            if failed is not None:
                raise crashed(sp.name, failed, log_doc) from failed
        finally:
            _reset_context(tok)
        for res, out in taken:
            res.release(out)
        values = _split_outputs(sp, returned)
        outputs: dict[str, ArtifactRef] = {}
        payloads: dict[str, bytes] = {}
        shared: dict[str, Shared] = {}
        pending: dict[str, int] = {}
        for out, value in values.items():
            try:
                tail = TAIL_BYTES if is_frame(value) else 0
                ref, data, footer = self.registry.artifacts.put_keeping(value, KEEP_BYTES, tail)
            except ArtifactError as e:
                raise ArtifactError(f"step '{sp.name}', output '{out}': {e}") from e
            outputs[out] = ref
            # the producer's frame, when its stored schema proves a load gives it back
            consumers = self._consumers(sp.name, out) if footer is not None else 0
            kept = share(value) if consumers and loads_back(value, ref.format, footer) else None
            if kept is not None:
                shared[out] = kept
                pending[out] = consumers
            elif data is not None:
                payloads[out] = data
        metadata = {k: v for k, v in values.items() if _is_metric(v)}
        metadata.update(ctx.logged_metadata)
        # A step that read the version this run registers made something about *this* version
        # (a decision, a report): no later run may reuse it.
        reads_created = any(created for _, _, created in ctx.model_reads)
        stamped = {out: self.registry.artifacts.stamp(ref) for out, ref in outputs.items()}
        stamps = {k: v for k, v in stamped.items() if v is not None}
        if self.lookup.storable(sp) and not reads_created:
            entry = CacheEntry(
                cache_key=key,
                step=sp.name,
                outputs=outputs,
                model_reads=tuple((n, v) for n, v, _ in ctx.model_reads),
                metadata={k: v for k, v in values.items() if _is_metric(v)} | ctx.logged_metadata,
                ingredients=ingredients(sp, dict(input_ids)),
                run_id=self.run_id,
                stamps=stamps,
            )
            self.lookup.write(sp, entry)  # last: an entry never names bytes that are not stored
        result = StepResult(
            sp.name,
            StepStatus.RAN,
            outputs,
            metadata,
            tuple(ctx.stage_requests),
            payloads,
            log=log_doc,
            stamps=stamps,
        )
        result.shared, result.pending = shared, pending
        return result


class Execution:
    """One run: takes the model version's number, runs the graph, completes the version, keeps
    the run record."""

    def __init__(
        self,
        plan: Plan,
        registry: Registry,
        *,
        cache: CacheOptions | None = None,
        run_id: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        import socket
        import threading

        self.plan = plan
        self.registry = registry
        self.cache = cache or CacheOptions()
        self.run_id = run_id or new_run_id()
        self.progress = progress or Progress(len(plan.steps))
        self.progress.width = max([len(s) for s in plan.steps] + [8])
        self.model_version: ModelVersion | None = None
        self._lock = threading.Lock()
        self._heartbeat: Heartbeat | None = None
        self.records: dict[str, dict[str, Any]] = {
            name: {"status": str(StepStatus.PENDING)} for name in plan.steps
        }
        #: what this run links to the version it registers: output -> (artifact, step)
        self.linked: dict[str, tuple[ArtifactRef, str]] = {}
        #: metrics and metadata the run's steps recorded
        self.metadata: dict[str, Any] = {}
        self.stage_requests: list[tuple[str, bool]] = []
        self.stage_changes: list[StageChange] = []
        #: secret values of the config: a step's error message may repeat one; it is hidden
        self._secrets = config_secret_values(plan.config)
        self.run = Run(
            id=self.run_id,
            pipeline=plan.pipeline,
            status=RunStatus.RUNNING,
            started=time.time(),
            finished=None,
            config=redact(plan.config),
            step_records=self.records,
            model=None,
            host=socket.gethostname(),
            pid=os.getpid(),
            actions=registry.runs.actions,
        )

    @property
    def creates_version(self) -> bool:
        return self.plan.model is not None and self.plan.model.creates_version

    def runner(self) -> StepRunner:
        return StepRunner(
            self.plan,
            self.registry,
            self.run_id,
            self.cache,
            self.model_version,
            self.creates_version,
            self.progress,
            self._secrets,  # worked out once per run (a walk of the whole config)
        )

    def step_finished(self, result: StepResult) -> None:
        """Record a finished step (called in this process, wherever the step ran)."""
        with self._lock:
            self.records[result.step] = {
                "status": str(result.status),
                "seconds": result.seconds,
                "cache_key": result.cache_key,
                "outputs": {k: v.to_json() for k, v in result.outputs.items()},
            }
            if result.log is not None:
                self.records[result.step]["log"] = result.log
            if result.why:
                self.records[result.step]["why"] = list(result.why)
            if self.creates_version:
                for out, ref in result.outputs.items():
                    self.linked[out] = (ref, result.step)
            self.metadata.update(result.metadata)
            self.stage_requests.extend(result.stage_requests)
        what = "cached" if result.status is StepStatus.CACHED else "done"
        self.progress.event(result.step, what, result.seconds)

    def describe(self, error: BaseException | None) -> str:
        """The error's message as it may be shown and stored (the config's secrets hidden)."""
        return hide_values(describe(error), self._secrets)

    def _why_failed(self, step: str) -> list[str]:
        """Why a failed step ran (it stored nothing: its index still names what it last used)."""
        sp = self.plan.steps.get(step)
        if sp is None:
            return []
        ids = {}
        for arg, i in sp.inputs.items():
            if isinstance(i, StepInput):
                ref = (self.records.get(i.step, {}).get("outputs") or {}).get(i.output)
                if not isinstance(ref, dict):
                    return []
                ids[arg] = str(ref["id"])
            else:
                ids[arg] = input_id(i)
        c = self.cache
        lookup = CacheLookup(
            self.plan,
            self.registry.cache,
            self.registry.artifacts,
            enabled=c.enabled,
            refresh=c.refresh,
        )
        try:
            return why_it_runs(lookup, sp, cache_key(sp.static_key, ids), ids)
        except Exception:  # noqa: BLE001 - an unreadable cache must not hide the step's own error
            return []

    def step_failed(self, step: str, error: BaseException) -> None:
        text = self.describe(error)
        why = self._why_failed(step)
        with self._lock:
            self.records[step] = {"status": str(StepStatus.FAILED), "error": text}
            if why:
                self.records[step]["why"] = why
            if isinstance(error, StepCrashed):  # the step function raised: its code's traceback
                self.records[step].update(
                    traceback=hide_values(error.traceback, self._secrets), log=error.log
                )
        self.progress.event(step, "failed", None, text)

    def start(self) -> None:
        """Take the model version's number (or resolve the one used) and save the run record.

        The code that runs is the code that was hashed: project modules edited since this process
        imported them (a notebook, ``mlops.run`` called twice) are reloaded first."""
        refresh_code(
            None, sorted({sp.target.rpartition(".")[0] for sp in self.plan.steps.values()})
        )
        model = self.plan.model
        if model is not None:
            models = self.registry.models
            if model.creates_version:
                number = models.create_version(model.name, self.run_id, self.plan.pipeline)
                self.model_version = ModelVersion(
                    name=model.name,
                    number=number,
                    run_id=self.run_id,
                    created=time.time(),
                    status=VersionStatus.INCOMPLETE,
                )
            else:
                assert model.number is not None
                self.model_version = replace(models.resolve(model.name, model.number), actions=None)
            self.run = replace(
                self.run,
                model={
                    "name": model.name,
                    "number": self.model_version.number,
                    "requested": model.requested,
                    "created": model.creates_version,
                },
            )
        if self.plan.file_stamps:
            self.registry.cache.save_file_stamps(self.plan.file_stamps)
        for key, path in undeclared_files(self.plan):
            warn(
                f"{key} = {path!r} names a file the cache cannot see: a change to it will not "
                f"re-run the step. Declare it as {key}=${{file:{path}}} to make its content part "
                "of the cache key."
            )
        self.registry.runs.save(self.run)
        self._heartbeat = Heartbeat(self.registry.runs, self.run_id).__enter__()

    def complete_version(self) -> ModelVersion | None:
        """Write the version this run registers (every step that links to it has finished),
        then make the stage changes its steps asked for. Idempotent."""
        mv = self.model_version
        if mv is None or not self.creates_version or mv.complete:
            return mv
        models = self.registry.models
        self.model_version = replace(
            models.complete_version(mv.name, mv.number, self.linked, self.metadata), actions=None
        )
        requests, self.stage_requests = self.stage_requests, []
        for stage, force in requests:
            self.stage_changes.append(
                models.set_stage(mv.name, mv.number, stage, force=force, run_id=self.run_id)
            )
        return self.model_version

    def finish(self, error: BaseException | None) -> Run:
        """Complete the version if every step succeeded, and save the run's final record."""
        if error is None:
            try:
                self.complete_version()
            except Exception as e:
                error = e
        if isinstance(error, StepFailedError) and (
            self.records.get(error.step, {}).get("status") != StepStatus.FAILED
        ):
            self.step_failed(error.step, error)
        for rec in self.records.values():
            if rec.get("status") == StepStatus.PENDING:
                rec["status"] = str(StepStatus.SKIPPED)
        if error is None:
            status = RunStatus.COMPLETED
        elif isinstance(error, KeyboardInterrupt):
            status = RunStatus.INTERRUPTED
        else:
            status = RunStatus.FAILED
        self.run = replace(
            self.run,
            status=status,
            error=self.describe(error) if error is not None else None,
            finished=time.time(),
        )
        try:
            self.registry.runs.save(self.run)
        finally:
            if self._heartbeat is not None:
                self._heartbeat.__exit__(None, None, None)
                self._heartbeat = None
        return self.run


def refresh_code(step: str | None, modules: list[str]) -> None:
    """Reload the project modules among ``modules`` (and what they reach) edited since import."""
    from .freshness import refresh

    try:
        refresh(modules)
    except Exception as e:
        where = f"step '{step}': " if step else ""
        raise StepFailedError(
            step or "",
            f"{where}a module of the pipeline changed on disk and cannot be imported again: "
            f"{describe(e)}",
        ) from e


def undeclared_files(plan: Plan) -> list[tuple[str, str]]:
    """Str params that name an existing file: read by path, invisible to the cache."""
    found = []
    for sp in plan.steps.values():
        for arg, value in sp.params.items():
            if isinstance(value, str) and 0 < len(value) < 4096 and "\n" not in value:
                try:
                    if os.path.isfile(value):
                        found.append((f"steps.{sp.name}.{arg}", value))
                except (OSError, ValueError):
                    continue
    return found


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
    exit_on_second_interrupt: bool = False,
) -> Run:
    """Run ``plan`` and return its run record (also when a step fails: then raise after saving).

    Ctrl-C lets the running steps finish, starts no other, records the run ``interrupted`` and
    raises :class:`~mlops.interrupts.RunInterrupted`; a second Ctrl-C stops without waiting
    (see :mod:`mlops.interrupts`).

    Args:
        scheduler: an executor name (``sync``, ``threads``, ``processes``, ``distributed``) or
            a Dask ``get`` function.
        address, n_workers, threads_per_worker: ``executor=distributed`` options.
        exit_on_second_interrupt: a second Ctrl-C ends the process with status 130 (the
            command line) rather than raising ``KeyboardInterrupt``.

    Raises:
        ConfigError: the registry cannot be reached from the executor's workers (nothing ran).
        StepFailedError: a step raised; the run record is saved with status ``failed``.
    """
    owned = isinstance(scheduler, str)
    ex = Execution(plan, registry, cache=cache, run_id=run_id, progress=progress)
    runner = ex.runner()
    get: Callable[..., Any]
    if isinstance(scheduler, str):
        # perf: a run with nothing to compute in parallel starts no scheduler and imports no Dask
        if runs_in_process(scheduler, (d.cached for d in runner.decisions().values())):
            get = InProcessScheduler()
        else:
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
        flag = stop_flag(get, ex.run_id)
        handler = InterruptHandler(
            flag,
            waiting_for=lambda: waiting_for(plan, ex.records, flag),
            on_abort=lambda: ex.finish(RunInterrupted(ex.run_id)),
            hard_exit=exit_on_second_interrupt,
        )
        error: BaseException | None = None

        def on_result(key: str, result: Any) -> None:
            if isinstance(result, StepResult):
                ex.step_finished(result)

        try:
            with handler:
                ex.start()
                runner.model_version = ex.model_version  # taken by start()
                try:
                    run_graph(get, plan.graph(StepGuard(runner, flag)), plan.keys, on_result)
                    if handler.interrupted:
                        error = RunInterrupted(ex.run_id)
                except BaseException as e:
                    error = e
                    raise
                finally:
                    run = ex.finish(error)
        finally:
            flag.close()
        if isinstance(error, RunInterrupted):
            raise error
        if run.status is RunStatus.FAILED and run.error:
            raise MlopsError(run.error)
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
