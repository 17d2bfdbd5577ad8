"""Plain-text tables for people: one renderer for `mlops versions`, runs and sweep summaries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["table"]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as a text table with aligned columns; None shows as ``-``; no trailing spaces.

    Examples:
        >>> print(table(["A", "BB"], [[1, "x"], [22, None]]))
        A   BB
        1   x
        22  -
        >>> print(table(["ONLY"], []))
        ONLY
    """
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [list(headers), *cells]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    return "\n".join(line.rstrip() for line in out)
