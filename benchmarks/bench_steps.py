"""Per-step cost: 1,000 no-op steps, chain and wide, first run and fully cached, sync and threads.

Every step is a distinct function (1,000 functions in 10 generated modules, see
:func:`benchmarks._common.write_step_modules`), so importing, inspecting and code-hashing a step
is paid per step, as in a real project. ``threads`` uses Dask's default pool, one thread per core
(``os.cpu_count()``). A "cached" figure counts only if the run record says every step was cached.

The pipeline is composed in memory (an OmegaConf config like the one Hydra composes) over a step
module written to a temporary folder, then compiled and executed in this process
(:func:`mlops.compiler.compile_pipeline` + :func:`mlops.executor.execute`), so the figure is the
framework's own per-step cost without Hydra's once-per-run composition. The floor is a bare Dask
dict graph of the same shape on the same scheduler.

Shapes: ``chain`` is s0 -> s1 -> ... -> s999; ``wide`` is s0 -> {s1, ..., s999}. Each step has a
distinct param, so every step has its own cache key and stores its own artifact on a first run.

What a first run costs is mostly the files it makes: per step its output and its cache entry (the
step's cache index is a hard link to the entry), and early on one of the 256 prefix folders of
``objects/`` and of ``cache/``. Making a file is a system call whose cost depends on the disk's
recent history, not on mlops: on ext4 without a journal (as on the machine the table was measured
on) it skips every inode freed in the last 30 s (``recently_deleted`` in ``find_inode_bit``), so
it takes 0.1 ms on a quiet disk and 1 ms after other processes deleted many files. First-run rows
move with that; the note gives the load average, not the disk's churn.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import (
    Row,
    loadavg,
    median,
    plain_functions,
    repetitions,
    row,
    timed,
    tiny,
    write_step_modules,
)

MODULE = "mlops_bench_steps"
GOALS = {"first": 0.7, "cached": 0.2}  # ms per step (issue 14)


def _config(targets: list[str], shape: str) -> Any:
    from omegaconf import OmegaConf

    from mlops.schema import register

    register()  # the ${step:...} resolvers
    steps: dict[str, dict[str, Any]] = {}
    for i, target in enumerate(targets):
        spec: dict[str, Any] = {"_target_": target, "i": i}
        if i:
            upstream = i - 1 if shape == "chain" else 0
            spec["x"] = "${step:s" + str(upstream) + ".out}"
        steps[f"s{i}"] = spec
    return OmegaConf.create({"pipeline": {"name": f"noop_{shape}"}, "steps": steps})


def _bare_graph(functions: list[Any], shape: str) -> dict[str, Any]:
    """The same work as a plain Dask graph: each step's own function, same dependencies."""
    return {
        f"s{i}": (f, f"s{i - 1}" if shape == "chain" else "s0", i) if i else (f, 0, 0)
        for i, f in enumerate(functions)
    }


def _dask_get(scheduler: str) -> Callable[..., Any]:
    if scheduler == "sync":
        from dask.local import get_sync

        return get_sync
    import dask.threaded

    return dask.threaded.get


class _Pipeline:
    """Compile and execute one config against a registry, timing the two phases."""

    def __init__(self, cfg: Any, scheduler: str, n: int) -> None:
        self.cfg, self.scheduler, self.n = cfg, scheduler, n

    def run(self, registry_uri: str, cached: bool = False) -> tuple[float, float]:
        from mlops.compiler import compile_pipeline
        from mlops.executor import Progress, execute
        from mlops.registry import Registry

        registry = Registry(registry_uri)
        plan: list[Any] = []
        t_compile = timed(lambda: plan.append(compile_pipeline(self.cfg, registry.models)))
        progress = Progress(self.n, enabled=False)
        runs: list[Any] = []
        t_exec = timed(
            lambda: runs.append(
                execute(plan[0], registry, scheduler=self.scheduler, progress=progress)
            )
        )
        statuses = {str(s) for s in runs[0].steps.values()}
        expected = {"cached"} if cached else {"ran"}
        if statuses != expected:  # a figure for work that was not done would flatter
            raise RuntimeError(f"expected every step {expected}, the run record says {statuses}")
        return t_compile, t_exec


def run(quick: bool) -> dict[str, Row]:
    n = 20 if tiny() else 1000
    reps = repetitions(quick, full=5, quick_n=2)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-steps-"))
    targets = write_step_modules(tmp, n, MODULE)
    warm_targets = write_step_modules(tmp, 20, f"{MODULE}_warmup")
    sys.path.insert(0, str(tmp))
    rows: dict[str, Row] = {}
    try:
        functions = plain_functions(targets)
        for shape in ("chain", "wide"):
            cfg = _config(targets, shape)
            graph = _bare_graph(functions, shape)
            for scheduler in ("sync", "threads"):
                get = _dask_get(scheduler)
                pipe = _Pipeline(cfg, scheduler, n)
                warm = _Pipeline(_config(warm_targets, shape), scheduler, 20)
                warm.run(str(tmp / f"warmup-{shape}-{scheduler}"))  # imports, parsing the module
                first: list[tuple[float, float]] = []
                cached: list[tuple[float, float]] = []
                bare: list[float] = []
                for r in range(reps):
                    uri = str(tmp / f"reg-{shape}-{scheduler}-{r}")
                    bare.append(timed(get, graph, list(graph)))
                    first.append(pipe.run(uri))
                    cached.append(pipe.run(uri, cached=True))
                floor_ms = median(bare) * 1000 / n
                for label, samples in (("first run", first), ("cached", cached)):
                    goal = GOALS["first" if label == "first run" else "cached"]
                    compile_ms = median([c for c, _ in samples]) * 1000 / n
                    exec_ms = median([e for _, e in samples]) * 1000 / n
                    total_ms = median([c + e for c, e in samples]) * 1000 / n
                    rows[f"{n:,} steps {shape}, {scheduler}, {label}"] = row(
                        total_ms,
                        "ms/step",
                        floor=floor_ms,
                        goal=f"<= {goal} ms/step",
                        met=total_ms <= goal,
                        note=f"compile {compile_ms:.3f} + execute {exec_ms:.3f} ms/step; "
                        f"{n:,} distinct no-op functions; floor: bare Dask graph of them"
                        + (f" on {os.cpu_count()} threads" if scheduler == "threads" else "")
                        + (
                            "; checked: every step cached, served in process (no scheduler)"
                            if label == "cached"
                            else ""
                        )
                        + f"; {loadavg()}",
                    )
    finally:
        sys.path.remove(str(tmp))
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return rows
