"""Whole process: ``python -m mlops +pipeline=train_and_promote``, first run and fully cached;
and the same for a 1,000-step pipeline from YAML (the per-step cost as a command-line user sees it).

Floor: ``python -c "import hydra, dask, pandas, sklearn"``, the libraries a first run cannot do
without. A first run is also charged the steps' own time: importing the iris step module and
calling load_data, split, train and evaluate, in a fresh process that has already imported the
floor's libraries. "Fully cached" is a second run on the same registry: every step but
``promote`` is a hit (``promote`` is ``enable_cache=False`` by design: it moves a stage).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._common import Row, median, repetitions, row, run_python, timed, tiny
from benchmarks.bench_steps import _SOURCE, MODULE

FLOOR = "import hydra, dask, pandas, sklearn"
_STEPS_TIME = """
import hydra, dask, pandas, sklearn
import time
t0 = time.perf_counter()
from mlops.examples.iris import steps as s
data = s.load_data.fn()
X_train, X_test, y_train, y_test = s.split.fn(data, test_size=0.3, random_state=42)
model = s.train.fn(X_train, y_train, C=1.0, max_iter=500)
s.evaluate.fn(model, X_test, y_test)
print(time.perf_counter() - t0)
"""


def run(quick: bool) -> dict[str, Row]:
    reps = repetitions(quick, full=5, quick_n=2)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-process-"))
    floor: list[float] = []
    steps: list[float] = []
    first: list[float] = []
    cached: list[float] = []
    try:
        for r in range(reps):
            work = tmp / f"work-{r}"
            work.mkdir()
            args = ["-m", "mlops", "+pipeline=train_and_promote", f"registry.uri={work / 'reg'}"]
            floor.append(timed(run_python, ["-c", FLOOR], cwd=work))
            steps.append(float(run_python(["-c", _STEPS_TIME], cwd=work).strip().splitlines()[-1]))
            first.append(timed(run_python, args, cwd=work))
            started = time.perf_counter()
            out = run_python(args, cwd=work)
            cached.append(time.perf_counter() - started)
            if "4 cached, 1 ran" not in out:
                raise RuntimeError(f"the second run was not fully cached:\n{out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rows = _train_and_promote(median(floor), median(steps), median(first), median(cached))
    rows.update(_yaml_pipeline(reps))
    return rows


def _train_and_promote(f: float, s: float, t_first: float, t_cached: float) -> dict[str, Row]:
    return {
        "train_and_promote process, first run": row(
            t_first,
            "s",
            floor=f + s,
            goal="<= 1.3x (floor + steps' own time)",
            met=t_first <= 1.3 * (f + s),
            note=f"floor {f:.2f} s (import hydra, dask, pandas, sklearn) + steps {s:.2f} s",
        ),
        "train_and_promote process, fully cached": row(
            t_cached,
            "s",
            floor=f,
            goal="< 0.6 s",
            met=t_cached < 0.6,
            note="4 cached, promote runs (uncached by design); ratio against the import floor",
        ),
    }


def _yaml_pipeline(reps: int) -> dict[str, Row]:
    """A chain of no-op steps written in conf/pipeline/chain.yaml, run with python -m mlops."""
    n = 20 if tiny() else 1000
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-yaml-"))
    try:
        (tmp / f"{MODULE}.py").write_text(_SOURCE)
        (tmp / "conf" / "pipeline").mkdir(parents=True)
        lines = ["# @package _global_", "pipeline:", "  name: chain", "steps:"]
        for i in range(n):
            lines += [f"  s{i}:", f"    _target_: {MODULE}.noop", f"    i: {i}"]
            if i:
                lines.append(f"    x: ${{step:s{i - 1}.out}}")
        (tmp / "conf" / "pipeline" / "chain.yaml").write_text("\n".join(lines) + "\n")
        floor, first, cached = [], [], []
        for r in range(reps):
            args = ["-m", "mlops", "+pipeline=chain", f"registry.uri={tmp / f'reg-{r}'}"]
            floor.append(timed(run_python, ["-c", "import hydra, dask"], cwd=tmp))
            first.append(timed(run_python, args, cwd=tmp))
            cached.append(timed(run_python, args, cwd=tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    f = median(floor)
    rows: dict[str, Row] = {}
    for label, samples in (("first run", first), ("cached", cached)):
        t = median(samples)
        rows[f"{n:,} steps chain from YAML, process, {label}"] = row(
            t,
            "s",
            floor=f,
            goal="(no goal: for reading)",
            note=f"{(t - f) * 1000 / n:.2f} ms/step above the floor (import hydra, dask), "
            "fixed costs included: Hydra composing and saving the config, compile, execute, "
            "progress lines",
        )
    return rows
