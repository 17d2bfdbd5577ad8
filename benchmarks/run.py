"""Run every benchmark, print one table, write the figures as JSON.

Usage (from the repository root)::

    python -m benchmarks [--quick] [--tiny] [--only NAME ...] [--output PATH] [--update-readme]
    python benchmarks/run.py ...

Each benchmark module runs in a child process of its own (so one module's imports, threads and
memory do not weigh on the next) and returns rows in the shape documented in README.md. A module
that does not exist yet shows "pending" rows; one that crashes shows an "error" row and makes the
exit status 1. A missed goal never does: the figures are for reading, not for failing CI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import ROOT, TINY_ENV, Row, row  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results" / "latest.json"
#: where ``--tiny`` writes by default: its figures mean nothing, so never over the committed ones
TINY_OUTPUT = Path(tempfile.gettempdir()) / "mlops-benchmarks-tiny.json"
README = HERE / "README.md"

# (module, rows shown while the module does not exist yet: name -> goal)
BENCHMARKS: list[tuple[str, dict[str, str]]] = [
    ("bench_import", {"import mlops": "< 0.1 s above floor"}),
    ("bench_steps", {}),
    ("bench_process", {}),
    ("bench_compile", {}),
    (
        "bench_cache",
        {
            "cache: store a 400 MB DataFrame": "<= 1.1x pyarrow write",
            "cache: load a 400 MB DataFrame": "<= 1.1x pyarrow read",
        },
    ),
    (
        "bench_s3",
        {
            "s3: store a 512 MB DataFrame, peak memory": "<= 1.2x local write",
            "s3: store a 512 MB DataFrame, time": "<= 1.5x s3fs put",
        },
    ),
    (
        "bench_registry",
        {
            "registry: resolve production (100,000 versions)": "< 20 ms",
            "registry: list all versions (100,000 versions)": "< 5 s",
        },
    ),
    (
        "bench_distributed",
        {
            "sweep: 8 jobs sharing a 2 s step (sleeping steps)": "<= 0.5x basic launcher",
            "1,000 steps on distributed, N workers": "<= 1.5x bare Dask",
        },
    ),
]
ROW_KEYS = ("value", "unit", "floor", "ratio", "goal", "met", "note")


def _exists(module: str) -> bool:
    return (HERE / f"{module}.py").exists()


def normalize(rows: Any, module: str) -> dict[str, Row]:
    """Rows in the agreed shape, whatever close shape a module returned."""
    if isinstance(rows, list):  # [{"name": ..., ...}, ...]
        rows = {str(r.pop("name", f"{module} #{i}")): r for i, r in enumerate(rows)}
    if not isinstance(rows, dict):
        raise TypeError(f"{module}.run() returned a {type(rows).__name__}, expected a dict of rows")
    out: dict[str, Row] = {}
    for name, r in rows.items():
        if not isinstance(r, dict):
            r = {"value": r}
        full = row(
            _num(r.get("value")),
            str(r.get("unit", "")),
            floor=_num(r.get("floor")),
            goal=str(r.get("goal", "")),
            met=r.get("met"),
            note=str(r.get("note", "")),
            ratio=_num(r.get("ratio")),
        )
        full.update({k: v for k, v in r.items() if k not in ROW_KEYS})
        out[str(name)] = full
    return out


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def run_module(module: str, quick: bool, timeout: float) -> dict[str, Row]:
    """Run one benchmark module in a child process; its rows, or one error row."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        code = (
            "import json, sys; from benchmarks.run import normalize; "
            f"from benchmarks.{module} import run; "
            f"rows = normalize(run({quick!r}), {module!r}); "
            f"open({str(out)!r}, 'w').write(json.dumps(rows))"
        )
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        try:
            proc = subprocess.run(
                [sys.executable, "-c", code],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {f"{module}": _error(f"timed out after {timeout:.0f} s")}
        if proc.returncode != 0 or not out.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            sys.stderr.write(proc.stderr)
            return {f"{module}": _error(f"crashed: {last}")}
        rows: dict[str, Row] = json.loads(out.read_text())
        return rows


def _error(note: str) -> Row:
    r = row(None, "", note=note)
    r["status"] = "error"
    return r


def _pending(module: str, goal: str) -> Row:
    r = row(None, "", goal=goal, note=f"pending: benchmarks/{module}.py does not exist yet")
    r["status"] = "pending"
    return r


def machine() -> dict[str, Any]:
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    cpu = platform.processor()
    try:
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_gb": mem_gb,
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _loadavg() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages: how busy the shared machine was."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    text = f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return f"{text} {unit}".strip()


def table(rows: dict[str, Row]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| benchmark | value | floor | ratio | goal | met | note |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        status = r.get("status")
        value = status if status in ("pending", "error") else _fmt(r["value"], r["unit"])
        ratio = f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.get("met")]
        cells = [name, value, _fmt(r["floor"], r["unit"]), ratio, r["goal"], met, r["note"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _load1(report: dict[str, Any], when: str) -> str:
    load = report.get("load_average", {}).get(when)
    return f"{load[0]:.1f}" if load else "?"


def update_readme(report: dict[str, Any], text: str) -> None:
    """Replace the results section of benchmarks/README.md (between its markers)."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    readme = README.read_text()
    m = report["machine"]
    section = (
        f"{start}\n"
        f"Date: {report['date']} · machine: {m['nproc']} cores (nproc), {m['memory_gb']} GB "
        f"memory, {m['cpu']}, Python {m['python']} · load average (1 min) "
        f"{_load1(report, 'before')} before, {_load1(report, 'after')} after · "
        f"command: `{report['command']}`\n\n"
        f"{text}\n{end}"
    )
    if start in readme and end in readme:
        readme = readme[: readme.index(start)] + section + readme[readme.index(end) + len(end) :]
    else:
        readme += "\n" + section + "\n"
    README.write_text(readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (under 2 minutes)")
    parser.add_argument(
        "--tiny", action="store_true", help=f"tiny sizes, a smoke test ({TINY_ENV}=1)"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="MODULE", help="run these modules only, e.g. bench_steps"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"JSON file to write (default {DEFAULT_OUTPUT.relative_to(ROOT)}; "
        f"with --tiny {TINY_OUTPUT})",
    )
    parser.add_argument(
        "--update-readme", action="store_true", help="write the table into benchmarks/README.md"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per module")
    args = parser.parse_args(argv)
    if args.tiny:
        os.environ[TINY_ENV] = "1"
        if args.update_readme or (
            args.output is not None and args.output.resolve() == DEFAULT_OUTPUT.resolve()
        ):
            parser.error("--tiny figures mean nothing: they never replace the committed results")
    if args.output is None:
        args.output = TINY_OUTPUT if args.tiny else DEFAULT_OUTPUT
    timeout = args.timeout or (150.0 if args.tiny or args.quick else 1200.0)
    flags = " ".join(f for f, on in (("--quick", args.quick), ("--tiny", args.tiny)) if on)
    if args.only:
        flags += " --only " + " ".join(args.only)
    command = f"python -m benchmarks {flags}".strip()
    rows: dict[str, Row] = {}
    seconds: dict[str, float] = {}
    load_before = _loadavg()
    for module, expected in BENCHMARKS:
        if args.only and module not in args.only:
            continue
        if not _exists(module):
            for name, goal in expected.items():
                rows[name] = {**_pending(module, goal), "module": module}
            continue
        print(f"running {module} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        for name, r in run_module(module, args.quick, timeout).items():
            rows[name] = {**r, "module": module}
        seconds[module] = round(time.perf_counter() - started, 1)
        print(f"  {module}: {seconds[module]:.0f} s", file=sys.stderr, flush=True)
    report = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "quick": args.quick,
        "tiny": args.tiny,
        "machine": machine(),
        "load_average": {"before": load_before, "after": _loadavg()},
        "module_seconds": seconds,
        "rows": rows,
    }
    text = table(rows)
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    if args.update_readme:
        update_readme(report, text)
    return 1 if any(r.get("status") == "error" for r in rows.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
