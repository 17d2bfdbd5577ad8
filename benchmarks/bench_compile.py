"""Compiling a big pipeline: 10,000 distinct step functions (100 generated modules), a chain.

:func:`mlops.compiler.compile_pipeline` on a config composed in memory, in this process:

* cold: the first compile, which imports the 100 modules, reads each function's signature and
  hashes its code;
* cached: the same config compiled again in the same process, the step modules imported and the
  code hashes of unchanged files remembered (what a long-lived process, a sweep or a second
  pipeline over the same steps pays); goal < 2 s.

The floor is the cost of importing the same 100 modules in a fresh process (``python -c "import
..."``), the least any compile of these steps must pay once. ``--tiny``: 50 steps.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import (
    Row,
    loadavg,
    median,
    repetitions,
    row,
    run_python,
    timed,
    tiny,
    write_step_modules,
)

MODULE = "mlops_bench_compile"


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
        cold = timed(lambda: plans.append(compile_pipeline(cfg, registry.models)))
        warm = [
            timed(lambda: plans.append(compile_pipeline(cfg, registry.models))) for _ in range(reps)
        ]
        assert all(len(p.steps) == n for p in plans)
    finally:
        sys.path.remove(str(tmp))
        shutil.rmtree(tmp, ignore_errors=True)
    w = median(warm)
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
    }


if __name__ == "__main__":  # pragma: no cover
    import json

    print(json.dumps(run(quick=True), indent=2))
