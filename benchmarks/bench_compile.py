"""Compiling a big pipeline: 10,000 distinct step functions (100 generated modules), a chain.

:func:`mlops.compiler.compile_pipeline` on a config composed in memory, in this process:

* cold: the first compile, which imports the 100 modules, reads each function's signature and
  hashes its code;
* cached: the same config compiled again in the same process, the step modules imported and the
  code hashes of unchanged files remembered (what a long-lived process, a sweep or a second
  pipeline over the same steps pays); goal < 2 s;
* fresh process: the first compile in a new process (what the command line pays), with the
  signature memo on disk written by an earlier process (:mod:`mlops.signature_cache`), and the
  same with the memo off (``MLOPS_SIGNATURE_CACHE=0``: every signature read from the syntax
  trees), interleaved; only ``compile_pipeline`` is timed, inside the child.

The floor is the cost of importing the same 100 modules in a fresh process (``python -c "import
..."``), the least any compile of these steps must pay once. ``--tiny``: 50 steps.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import (
    Row,
    interleaved,
    loadavg,
    median,
    python_env,
    repetitions,
    row,
    run_python,
    timed,
    tiny,
    write_step_modules,
)

MODULE = "mlops_bench_compile"
_REPO = Path(__file__).resolve().parent.parent

# a child process: compile the pipeline of the given targets once, print the seconds it took
_CHILD = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from benchmarks.bench_compile import _config
from mlops.compiler import compile_pipeline
from mlops.registry import Registry
cfg = _config(open(sys.argv[3]).read().split())
models = Registry(sys.argv[4]).models
started = time.perf_counter()
plan = compile_pipeline(cfg, models)
elapsed = time.perf_counter() - started
assert len(plan.steps) == int(sys.argv[5])
print(elapsed)
"""


def _fresh(tmp: Path, memo_dir: Path, n: int, memo: bool) -> float:
    """``compile_pipeline`` in a new process (see the module docstring); seconds.

    The memo lives outside the step modules' folder, as in a user's cache folder: a folder
    created where modules are looked up would change what a lookup can find there.
    """
    env = python_env(MLOPS_CACHE_DIR=str(memo_dir), MLOPS_SIGNATURE_CACHE="1" if memo else "0")
    args = [str(tmp), str(_REPO), str(tmp / "targets.txt"), str(tmp / "registry"), str(n)]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return float(out.stdout.split()[-1])


def _config(targets: list[str]) -> Any:
    from omegaconf import OmegaConf

    from mlops.schema import register

    register()
    steps: dict[str, dict[str, Any]] = {}
    for i, target in enumerate(targets):
        spec: dict[str, Any] = {"_target_": target, "i": i}
        if i:
            spec["x"] = "${step:s" + str(i - 1) + ".out}"
        steps[f"s{i}"] = spec
    return OmegaConf.create({"pipeline": {"name": "big"}, "steps": steps})


def run(quick: bool) -> dict[str, Row]:
    from mlops.compiler import compile_pipeline
    from mlops.registry import Registry

    n = 50 if tiny() else 10_000
    reps = repetitions(quick, full=5, quick_n=2)
    tmp = Path(tempfile.mkdtemp(prefix="mlops-bench-compile-"))
    memo_dir = Path(tempfile.mkdtemp(prefix="mlops-bench-compile-memo-"))
    targets = write_step_modules(tmp, n, MODULE)
    modules = sorted({t.rpartition(".")[0] for t in targets})
    sys.path.insert(0, str(tmp))
    try:
        importing = "import " + ", ".join(modules)
        floor = median([timed(run_python, ["-c", importing], cwd=tmp) for _ in range(reps)])
        floor -= median([timed(run_python, ["-c", "import mlops"], cwd=tmp) for _ in range(reps)])
        registry = Registry(str(tmp / "registry"))
        cfg = _config(targets)
        plans: list[Any] = []
        fresh_s: list[float] = []
        fresh_off_s: list[float] = []
        cold = timed(lambda: plans.append(compile_pipeline(cfg, registry.models)))
        warm = [
            timed(lambda: plans.append(compile_pipeline(cfg, registry.models))) for _ in range(reps)
        ]
        assert all(len(p.steps) == n for p in plans)
        (tmp / "targets.txt").write_text("\n".join(targets))
        _fresh(tmp, memo_dir, n, memo=True)  # writes the disk memo, as a first run does
        interleaved(
            reps,
            memo=lambda: fresh_s.append(_fresh(tmp, memo_dir, n, memo=True)),
            off=lambda: fresh_off_s.append(_fresh(tmp, memo_dir, n, memo=False)),
        )
    finally:
        sys.path.remove(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(memo_dir, ignore_errors=True)
    w = median(warm)
    f, f_off = median(fresh_s), median(fresh_off_s)
    load = loadavg()
    return {
        f"compile {n:,} steps, cached": row(
            w,
            "s",
            floor=max(floor, 1e-3),
            goal="< 2 s",
            met=w < 2.0,
            note=f"{n:,} distinct functions in {len(modules)} modules, chain; second and later "
            f"compiles in one process; floor: importing the {len(modules)} modules (above "
            f"import mlops); medians of {reps}; {load}",
        ),
        f"compile {n:,} steps, cold": row(
            cold,
            "s",
            floor=max(floor, 1e-3),
            goal="(no goal: for reading)",
            note=f"first compile in the process: imports, signatures, code hashes; {load}",
        ),
        f"compile {n:,} steps, fresh process": row(
            f,
            "s",
            floor=max(floor, 1e-3),
            goal="(no goal: for reading)",
            note=f"first compile in a new process, signature memo on disk from an earlier one; "
            f"{f_off:.2f} s with MLOPS_SIGNATURE_CACHE=0 ({f_off / f:.1f}x), interleaved; the "
            f"step modules are not imported; compile_pipeline timed in the child; medians of "
            f"{reps}; {load}",
        ),
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=2))
