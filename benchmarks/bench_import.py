"""``python -c "import mlops"`` against ``python -c "pass"``; and what importing mlops imports."""

from __future__ import annotations

import json

from benchmarks._common import Row, interleaved, median, repetitions, row, run_python

HEAVY = ("pandas", "sklearn", "distributed", "dask", "hydra", "pyarrow")
_PROBE = (
    f"import sys, json, mlops; print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
)


def run(quick: bool) -> dict[str, Row]:
    reps = repetitions(quick, full=21, quick_n=7)
    samples = interleaved(
        reps,
        floor=lambda: run_python(["-c", "pass"]),
        mlops=lambda: run_python(["-c", "import mlops"]),
    )
    floor, value = median(samples["floor"]), median(samples["mlops"])
    imported = json.loads(run_python(["-c", _PROBE]).strip().splitlines()[-1])
    forbidden = [m for m in imported if m in ("pandas", "sklearn", "distributed")]
    above = value - floor
    heavy = ", ".join(imported) or "none"
    note = f"{above * 1000:.0f} ms above floor; heavy modules imported: {heavy}"
    return {
        "import mlops": row(
            value,
            "s",
            floor=floor,
            goal="< 0.1 s above floor; no pandas/sklearn/dask.distributed",
            met=above < 0.1 and not forbidden,
            note=note,
        )
    }
