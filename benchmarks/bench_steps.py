"""Per-step cost: 1,000 no-op steps, chain and wide, first run and fully cached, sync and threads.

The pipeline is composed in memory (an OmegaConf config like the one Hydra composes) over a step
module written to a temporary folder, then compiled and executed in this process
(:func:`mlops.compiler.compile_pipeline` + :func:`mlops.executor.execute`), so the figure is the
framework's own per-step cost without Hydra's once-per-run composition. The floor is a bare Dask
dict graph of the same shape on the same scheduler.

Shapes: ``chain`` is s0 -> s1 -> ... -> s999; ``wide`` is s0 -> {s1, ..., s999}. Each step has a
distinct param, so every step has its own cache key and stores its own artifact on a first run.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import Row, median, repetitions, row, timed, tiny

MODULE = "mlops_bench_noop_steps"
_SOURCE = """\
from typing import Annotated

from mlops import step


@step
def noop(x: int = 0, i: int = 0) -> Annotated[int, "out"]:
    return i
"""
GOALS = {"first": 1.0, "cached": 0.3}  # ms per step


def _config(n: int, shape: str) -> Any:
    from omegaconf import OmegaConf

    from mlops.schema import register

    register()  # the ${step:...} resolvers
    steps: dict[str, dict[str, Any]] = {}
    for i in range(n):
        spec: dict[str, Any] = {"_target_": f"{MODULE}.noop", "i": i}
        if i:
            upstream = i - 1 if shape == "chain" else 0
            spec["x"] = "${step:s" + str(upstream) + ".out}"
        steps[f"s{i}"] = spec
    return OmegaConf.create({"pipeline": {"name": f"noop_{shape}"}, "steps": steps})


def _bare_graph(n: int, shape: str) -> dict[str, Any]:
    def noop(i: int, x: int = 0) -> int:
        return i

    return {
        f"s{i}": (noop, i, f"s{i - 1}" if shape == "chain" else "s0") if i else (noop, 0)
        for i in range(n)
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

    def run(self, registry_uri: str) -> tuple[float, float]:
        from mlops.compiler import compile_pipeline
        from mlops.executor import Progress, execute
        from mlops.registry import Registry

        registry = Registry(registry_uri)
        plan: list[Any] = []
        t_compile = timed(lambda: plan.append(compile_pipeline(self.cfg, registry.models)))
        progress = Progress(self.n, enabled=False)
        t_exec = timed(
            lambda: execute(plan[0], registry, scheduler=self.scheduler, progress=progress)
        )
        return t_compile, t_exec


def run(quick: bool) -> dict[str, Row]:
    n = 20 if tiny() else 1000
    reps = repetitions(quick, full=5, quick_n=2)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-steps-"))
    (tmp / f"{MODULE}.py").write_text(_SOURCE)
    sys.path.insert(0, str(tmp))
    rows: dict[str, Row] = {}
    try:
        for shape in ("chain", "wide"):
            cfg = _config(n, shape)
            graph = _bare_graph(n, shape)
            for scheduler in ("sync", "threads"):
                get = _dask_get(scheduler)
                pipe = _Pipeline(cfg, scheduler, n)
                warm = _Pipeline(_config(20, shape), scheduler, 20)
                warm.run(str(tmp / f"warmup-{shape}-{scheduler}"))  # imports, parsing the module
                first: list[tuple[float, float]] = []
                cached: list[tuple[float, float]] = []
                bare: list[float] = []
                for r in range(reps):
                    uri = str(tmp / f"reg-{shape}-{scheduler}-{r}")
                    bare.append(timed(get, graph, list(graph)))
                    first.append(pipe.run(uri))
                    cached.append(pipe.run(uri))
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
                        "floor: bare Dask graph",
                    )
    finally:
        sys.path.remove(str(tmp))
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return rows
