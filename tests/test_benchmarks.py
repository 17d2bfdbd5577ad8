"""The benchmark harness runs end to end on tiny sizes (a smoke test: no figure is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks/` is not installed; it lives beside `tests/`
    sys.path.insert(0, str(ROOT))

from benchmarks.run import BENCHMARKS, normalize, table  # noqa: E402

OWN_ROWS = [
    "import mlops",
    *(
        f"20 steps {shape}, {sched}, {label}"
        for shape in ("chain", "wide")
        for sched in ("sync", "threads")
        for label in ("first run", "cached")
    ),
    "train_and_promote process, first run",
    "train_and_promote process, nothing changed",
    "20 steps chain from YAML, process, first run",
    "20 steps chain from YAML, process, fully cached",
    "compile 50 steps, cached",
]


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_quick_tiny_run_writes_every_row(tmp_path: Path) -> None:
    """`python -m benchmarks --quick --tiny` prints the table and writes JSON with every row."""
    out = tmp_path / "latest.json"
    proc = _run("-m", "benchmarks", "--quick", "--tiny", "--output", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert (
        report["machine"]["nproc"] >= 1
        and report["command"] == "python -m benchmarks --quick --tiny"
    )
    for name in OWN_ROWS:
        assert name in rows, f"missing row {name!r}"
        assert rows[name]["value"] is not None and rows[name]["floor"] is not None
        assert rows[name]["met"] in ((None,) if "no goal" in rows[name]["goal"] else (True, False))
        assert f"| {name} |" in proc.stdout
    for module, _ in BENCHMARKS:  # every module shows rows: figures, or "pending"
        assert any(r["module"] == module for r in rows.values()), module
    assert not [n for n, r in rows.items() if r.get("status") == "error"]
    for r in rows.values():
        assert set(r) >= {"value", "unit", "floor", "ratio", "goal", "met", "note"}


def test_script_entry_point(tmp_path: Path) -> None:
    """`python benchmarks/run.py` works from any folder."""
    out = tmp_path / "import.json"
    proc = _run(
        str(ROOT / "benchmarks" / "run.py"),
        "--tiny",
        "--only",
        "bench_import",
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert list(json.loads(out.read_text())["rows"]) == ["import mlops"]


def test_normalize_fills_the_agreed_shape() -> None:
    """A module's rows are completed to the agreed shape; the ratio defaults to value / floor."""
    rows = normalize({"x": {"value": 2.0, "unit": "s", "floor": 1.0, "extra": 1}}, "m")
    assert rows == {
        "x": {
            "value": 2.0,
            "unit": "s",
            "floor": 1.0,
            "ratio": 2.0,
            "goal": "",
            "met": None,
            "note": "",
            "extra": 1,
        }
    }
    assert "| x | 2 s | 1 s | 2.00x |  | - |  |" in table(rows)
