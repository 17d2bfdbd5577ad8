"""Shared helpers of the benchmark modules: rows, repetitions, sizes, subprocess timing.

A benchmark module exposes ``run(quick: bool) -> dict[str, dict]``: one row per figure, keyed by
the row's name, in the shape :func:`row` builds. Sizes shrink when ``MLOPS_BENCH_TINY=1`` (set by
``--tiny``; the test suite uses it to keep the benchmarks from rotting, not to measure).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TINY_ENV = "MLOPS_BENCH_TINY"

Row = dict[str, Any]


def tiny() -> bool:
    """True when the benchmarks should run on tiny sizes (a smoke test, not a measurement)."""
    return os.environ.get(TINY_ENV, "") not in ("", "0")


def repetitions(quick: bool, full: int, quick_n: int = 3) -> int:
    """How many repetitions to take the median of: 1 when tiny, ``quick_n`` when quick."""
    if tiny():
        return 1
    return quick_n if quick else full


def row(
    value: float | None,
    unit: str,
    *,
    floor: float | None = None,
    goal: str = "",
    met: bool | None = None,
    note: str = "",
    ratio: float | None = None,
) -> Row:
    """One result row; ``ratio`` defaults to ``value / floor`` when both are known."""
    if ratio is None and value is not None and floor:
        ratio = value / floor
    return {
        "value": value,
        "unit": unit,
        "floor": floor,
        "ratio": ratio,
        "goal": goal,
        "met": met,
        "note": note,
    }


def median(samples: Sequence[float]) -> float:
    return float(statistics.median(samples))


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """Wall time of one call ``fn(*args, **kwargs)``, in seconds."""
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


def interleaved(reps: int, **subjects: Callable[[], Any]) -> dict[str, list[float]]:
    """Time each subject ``reps`` times, alternating them so that load on a shared machine hits
    each subject alike; returns the samples (seconds) by subject name."""
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(reps):
        for name, fn in subjects.items():
            samples[name].append(timed(fn))
    return samples


def python_env(**extra: str) -> dict[str, str]:
    """The environment for timed child processes: this one, with a fixed hash seed.

    Bytecode caching is allowed as on a user's machine (some sandboxes and CI set
    PYTHONDONTWRITEBYTECODE, which makes every process recompile every module it imports, the
    floor's and mlops' alike).
    """
    env = {**os.environ, "PYTHONHASHSEED": "0", **extra}
    env.pop("HYDRA_FULL_ERROR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_python(args: Sequence[str], *, cwd: Path | str | None = None, timeout: float = 600) -> str:
    """Run ``python ARGS`` in a child process; return its stdout, raise if it fails."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"python {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def python_timer(args: Sequence[str], *, cwd: Path | str | None = None) -> Callable[[], Any]:
    """A callable that runs ``python ARGS`` (for :func:`interleaved`)."""
    return lambda: run_python(args, cwd=cwd)


STEPS_PER_MODULE = 100


def write_step_modules(folder: Path, n: int, prefix: str) -> list[str]:
    """Write ``n`` distinct no-op step functions into generated modules; their import paths.

    A per-step benchmark must not run one function ``n`` times (its code would be hashed, its
    signature read and its module imported once, which flatters every per-step figure): here
    step ``i`` is ``{prefix}_{i // 100}.f{i}``, 100 functions per module, each with its own
    body, so each is imported, inspected and code-hashed on its own.
    """
    targets: list[str] = []
    for m in range((n + STEPS_PER_MODULE - 1) // STEPS_PER_MODULE):
        lines = ["from typing import Annotated", "", "from mlops import step", ""]
        for i in range(m * STEPS_PER_MODULE, min(n, (m + 1) * STEPS_PER_MODULE)):
            lines += [
                "",
                "@step",
                f'def f{i}(x: int = 0, i: int = 0) -> Annotated[int, "out"]:',
                f"    return i + {i}  # step {i}",
                "",
            ]
            targets.append(f"{prefix}_{m}.f{i}")
        (folder / f"{prefix}_{m}.py").write_text("\n".join(lines))
    return targets


def plain_functions(targets: list[str]) -> list[Callable[..., Any]]:
    """The undecorated functions behind ``targets`` (for a bare Dask graph of the same work)."""
    import importlib

    out = []
    for target in targets:
        module, _, name = target.rpartition(".")
        out.append(getattr(importlib.import_module(module), name).fn)
    return out


def loadavg() -> str:
    """The 1-minute load average now, for a row's note (the machine is shared)."""
    try:
        return f"load {os.getloadavg()[0]:.1f}"
    except OSError:
        return "load ?"
