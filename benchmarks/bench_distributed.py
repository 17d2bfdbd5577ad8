"""Scale-out figures: a sweep in one graph vs Hydra's basic launcher; per-step cost on a cluster.

(a) ``sweep: 8 jobs sharing a 2 s sleeping step``. A project with one pipeline: ``preprocess`` (2 s,
    the same in every job) -> ``train`` (0.5 s, its param swept over 8 values) -> ``score``.
    Wall time of ``python -m mlops -m ... train.alpha=1,...,8`` (the mlops launcher: one graph,
    ``executor.num_workers=8`` threads) against the same command with ``hydra/launcher=basic``
    (the jobs one after another), each from a fresh registry, both as a user runs them (a
    process per sweep). The steps sleep: they stand for work that releases the GIL (I/O, native
    code); that is also why the one graph gets ``num_workers=8`` threads, one per job, rather than
    one per core: sleeping threads do not compete for the cores. Both launchers share the cache,
    so under both the 2 s step runs once; what the one
    graph saves is running the jobs side by side and the per-job start-up.

(b) ``1,000 steps on distributed, N workers``. 1,000 distinct no-op step functions (in generated
    modules; ``wide``: s0 -> {s1..s999}) executed with :func:`mlops.executor.execute` on a
    ``LocalCluster`` of one single-threaded worker process per core (``os.cpu_count()``)
    (first run: every step runs and stores its output), against a bare Dask dict graph of the
    same shape calling the same plain functions, computed with ``client.get`` on the same
    cluster. Compile time is not included.

Ratios are of medians, measured in one run with the subjects interleaved.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
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

_SWEEP_STEPS = """\
import time
from typing import Annotated

from mlops import step


@step
def preprocess(seconds: float = 2.0) -> Annotated[list, "data"]:
    time.sleep(seconds)
    return list(range(1000))


@step
def train(data: list, alpha: float = 1.0, seconds: float = 0.5) -> Annotated[float, "model"]:
    time.sleep(seconds)
    return alpha * sum(data)


@step
def score(model: float) -> Annotated[float, "score"]:
    return model / 1e6
"""

_SWEEP_PIPELINE = """\
# @package _global_
pipeline:
  name: bench_sweep
steps:
  preprocess:
    _target_: bench_sweep_steps.preprocess
    seconds: {pre}
  train:
    _target_: bench_sweep_steps.train
    data: ${{step:preprocess.data}}
    seconds: {train}
  score:
    _target_: bench_sweep_steps.score
    model: ${{step:train.model}}
"""

_NOOP_MODULE = "mlops_bench_dist"


def _sweep_command(project: Path, registry: Path, jobs: int, basic: bool) -> float:
    alphas = ",".join(str(a) for a in range(1, jobs + 1))
    args = [
        sys.executable,
        "-m",
        "mlops",
        "-m",
        "+pipeline=bench_sweep",
        f"registry.uri={registry}",
        f"steps.train.alpha={alphas}",
    ]
    if basic:
        args.append("hydra/launcher=basic")
    else:
        # the jobs' steps side by side (Dask's default pool is one thread per core)
        args.append(f"executor.num_workers={jobs}")
    env = {**os.environ, "PYTHONHASHSEED": "0"}

    def run() -> None:
        subprocess.run(args, cwd=project, env=env, check=True, capture_output=True)

    return timed(run)


def bench_sweep(quick: bool, tmp: Path) -> Row:
    pre, train, jobs = (0.2, 0.05, 4) if tiny() else (2.0, 0.5, 8)
    project = tmp / "sweep_project"
    (project / "conf" / "pipeline").mkdir(parents=True)
    (project / "bench_sweep_steps.py").write_text(_SWEEP_STEPS)
    (project / "conf" / "pipeline" / "bench_sweep.yaml").write_text(
        _SWEEP_PIPELINE.format(pre=pre, train=train)
    )
    reps = repetitions(quick, full=3, quick_n=2)
    one_graph: list[float] = []
    basic: list[float] = []
    for r in range(reps):
        basic.append(_sweep_command(project, tmp / f"reg-basic-{r}", jobs, basic=True))
        one_graph.append(_sweep_command(project, tmp / f"reg-mlops-{r}", jobs, basic=False))
    value, floor = median(one_graph), median(basic)
    ratio = value / floor
    return row(
        value,
        "s",
        floor=floor,
        ratio=ratio,
        goal="<= 0.5x basic launcher",
        met=ratio <= 0.5,
        note=f"sleeping steps: {jobs} jobs, preprocess sleeps {pre} s (shared), train {train} s "
        f"each; executor=threads, num_workers={jobs} (one per job: sleeping threads do not "
        f"compete for the {os.cpu_count()} cores); floor: hydra/launcher=basic; medians of "
        f"{reps}; {loadavg()}",
    )


def _noop_config(targets: list[str]) -> Any:
    from omegaconf import OmegaConf

    from mlops.schema import register

    register()
    steps: dict[str, dict[str, Any]] = {}
    for i, target in enumerate(targets):
        spec: dict[str, Any] = {"_target_": target, "i": i}
        if i:
            spec["x"] = "${step:s0.out}"
        steps[f"s{i}"] = spec
    return OmegaConf.create({"pipeline": {"name": "noop_distributed"}, "steps": steps})


def bench_steps_on_cluster(quick: bool, tmp: Path) -> Row:
    import logging

    from distributed import LocalCluster

    from mlops.compiler import compile_pipeline
    from mlops.distributed import DistributedScheduler
    from mlops.executor import Progress, execute
    from mlops.registry import Registry

    n = 50 if tiny() else 1000
    reps = repetitions(quick, full=5, quick_n=3)
    folder = tmp / "noop"
    folder.mkdir()
    targets = write_step_modules(folder, n, _NOOP_MODULE)
    sys.path.insert(0, str(folder))
    # the workers are spawned processes: they import the step module from PYTHONPATH
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(folder), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    logging.getLogger("distributed").setLevel(logging.WARNING)
    functions = plain_functions(targets)
    graph = {f"s{i}": (f, "s0", i) if i else (f, 0, 0) for i, f in enumerate(functions)}
    keys = list(graph)
    workers = os.cpu_count() or 1
    try:
        with LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster:
            sched = DistributedScheduler(cluster.scheduler_address)
            try:
                warm = Registry(str(tmp / "noop-warm"))
                plan = compile_pipeline(_noop_config(targets), warm.models)
                progress = Progress(n, enabled=False)
                execute(plan, warm, scheduler=sched, progress=progress)  # imports on workers
                sched.client.get(graph, keys)
                ours: list[float] = []
                bare: list[float] = []
                for r in range(reps):
                    reg = Registry(str(tmp / f"noop-reg-{r}"))
                    bare.append(timed(sched.client.get, graph, keys))
                    ours.append(timed(execute, plan, reg, scheduler=sched, progress=progress))
            finally:
                sched.close()
    finally:
        sys.path.remove(str(folder))
    value_ms, floor_ms = median(ours) * 1000 / n, median(bare) * 1000 / n
    ratio = value_ms / floor_ms
    return row(
        value_ms,
        "ms/step",
        floor=floor_ms,
        ratio=ratio,
        goal="<= 1.5x bare Dask",
        met=ratio <= 1.5,
        note=f"{n:,} distinct no-op functions, wide (s0 -> the rest), first run on a local "
        f"registry; floor: bare Dask dict graph of the same functions on the same LocalCluster "
        f"({workers} single-threaded worker processes, one per core); medians of {reps}; "
        f"{loadavg()}",
    )


def run(quick: bool) -> dict[str, Row]:
    """Both figures; see the module docstring."""
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-distributed-"))
    jobs, pre = (4, 0.2) if tiny() else (8, 2)
    n, workers = (50 if tiny() else 1000), os.cpu_count() or 1
    try:
        return {
            f"sweep: {jobs} jobs sharing a {pre} s step (sleeping steps)": bench_sweep(quick, tmp),
            f"{n:,} steps on distributed, {workers} workers": bench_steps_on_cluster(quick, tmp),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import json

    print(json.dumps(run("--quick" in sys.argv), indent=2))
