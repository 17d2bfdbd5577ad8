"""Benchmarks that cannot flatter: tiny runs never replace the committed figures, per-step
benchmarks use distinct functions, and a "cached" figure is refused when the run was not cached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks/` is not installed; it lives beside `tests/`
    sys.path.insert(0, str(ROOT))

from benchmarks._common import plain_functions, write_step_modules  # noqa: E402
from benchmarks.run import DEFAULT_OUTPUT  # noqa: E402


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["--output", str(DEFAULT_OUTPUT)], id="explicit-output"),
        pytest.param(["--update-readme"], id="update-readme"),
    ],
)
def test_tiny_never_writes_the_committed_results(extra: list[str]) -> None:
    """`--tiny` refuses to write benchmarks/results/latest.json or the README table."""
    before = DEFAULT_OUTPUT.read_bytes()
    readme = (ROOT / "benchmarks" / "README.md").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--only", "bench_import", *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "never replace the committed results" in proc.stderr
    assert DEFAULT_OUTPUT.read_bytes() == before
    assert (ROOT / "benchmarks" / "README.md").read_bytes() == readme


@pytest.mark.parametrize("n", [1, 99, 100, 101, 250])
def test_generated_steps_are_distinct_functions(tmp_path: Path, n: int) -> None:
    """Every generated step is its own function with its own code, in modules of 100."""
    targets = write_step_modules(tmp_path, n, f"perf_gen_{n}")
    assert len(set(targets)) == n
    assert len(list(tmp_path.glob(f"perf_gen_{n}_*.py"))) == (n + 99) // 100
    sys.path.insert(0, str(tmp_path))
    try:
        functions = plain_functions(targets)
    finally:
        sys.path.remove(str(tmp_path))
    assert len({f.__code__ for f in functions}) == n
    assert [f(0, 0) for f in functions] == list(range(n))


def test_steps_benchmark_refuses_a_run_that_was_not_cached(tmp_path: Path) -> None:
    """A "cached" figure is only taken from a run whose record says every step was cached."""
    from benchmarks.bench_steps import _config, _Pipeline

    targets = write_step_modules(tmp_path, 3, "perf_refuse")
    sys.path.insert(0, str(tmp_path))
    try:
        pipe = _Pipeline(_config(targets, "chain"), "sync", 3)
        with pytest.raises(RuntimeError, match="the run record says"):
            pipe.run(str(tmp_path / "reg"), cached=True)  # a first run: every step ran
        pipe.run(str(tmp_path / "reg"), cached=True)
    finally:
        sys.path.remove(str(tmp_path))
