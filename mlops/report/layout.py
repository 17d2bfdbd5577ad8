"""A layered (Sugiyama-style) layout of a pipeline graph, left to right.

Pipelines are small DAGs (a handful to a few hundred steps), so the classic recipe is plenty and
fits in a page of code with no dependency:

1. **layers** -- each step's layer is the length of the longest path to it from a step with no
   dependencies, so every edge points rightwards;
2. **dummies** -- an edge that spans several layers gets a placeholder in each layer it crosses,
   so it is routed around the boxes between instead of through them;
3. **order** -- within a layer, steps are sorted by the mean position of their neighbours in the
   previous layer (down sweeps) and the next one (up sweeps), a few times; the order with the
   fewest edge crossings wins. Ties keep the config order, so the result is deterministic;
4. **coordinates** -- layers are columns, each centred on the tallest one.

The result is plain numbers (:class:`Layout`); :mod:`mlops.report.svg` draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Layout", "Placed", "Route", "assign_layers", "crossings", "layout"]

_SWEEPS = 8


@dataclass(frozen=True)
class Placed:
    """A box: the step's name, its column (layer) and top-left corner."""

    name: str
    layer: int
    x: float
    y: float


@dataclass(frozen=True)
class Route:
    """An edge from ``source`` to ``target`` through ``points`` (first and last on the boxes)."""

    source: str
    target: str
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Layout:
    """Where each box goes and how each edge runs; ``width`` x ``height`` holds them all."""

    boxes: dict[str, Placed]
    routes: tuple[Route, ...]
    width: float
    height: float
    box_width: float
    box_height: float


def assign_layers(names: Sequence[str], deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each step's layer: the longest path to it from a step without dependencies.

    ``names`` must be ordered so that each step comes after its dependencies (a dependency
    not in ``names`` is ignored).

    Examples:
        >>> assign_layers(["a", "b", "c"], {"b": ["a"], "c": ["a", "b"]})
        {'a': 0, 'b': 1, 'c': 2}
    """
    layer: dict[str, int] = {}
    for n in names:
        ups = [layer[d] for d in deps.get(n, ()) if d in layer]
        layer[n] = 1 + max(ups) if ups else 0
    return layer


def crossings(upper: Sequence[str], lower: Sequence[str], edges: Sequence[tuple[str, str]]) -> int:
    """How many of ``edges`` (from ``upper`` to ``lower``) cross, given the two orders.

    Examples:
        >>> crossings(["a", "b"], ["c", "d"], [("a", "d"), ("b", "c")])
        1
        >>> crossings(["a", "b"], ["c", "d"], [("a", "c"), ("b", "d")])
        0
    """
    pu = {n: i for i, n in enumerate(upper)}
    pl = {n: i for i, n in enumerate(lower)}
    pairs = sorted((pu[s], pl[t]) for s, t in edges if s in pu and t in pl)
    count = 0
    for i, (s1, t1) in enumerate(pairs):
        for s2, t2 in pairs[i + 1 :]:
            if s2 > s1 and t2 < t1:
                count += 1
    return count


def _dummy(source: str, target: str, layer: int) -> str:
    # NUL cannot appear in a step name, so a dummy never collides with a step
    return f"\0{source}\0{target}\0{layer}"


def _order(
    columns: list[list[str]], edges: list[tuple[str, str]], layer: Mapping[str, int]
) -> list[list[str]]:
    """Reorder each column by barycentres; keep the order with the fewest crossings."""
    ups: dict[str, list[str]] = {}
    downs: dict[str, list[str]] = {}
    for s, t in edges:
        downs.setdefault(s, []).append(t)
        ups.setdefault(t, []).append(s)
    by_layer = [[e for e in edges if layer[e[0]] == i] for i in range(len(columns))]

    def total(cols: list[list[str]]) -> int:
        return sum(crossings(cols[i], cols[i + 1], by_layer[i]) for i in range(len(cols) - 1))

    def sweep(cols: list[list[str]], rng: range, near: dict[str, list[str]], step: int) -> None:
        for i in rng:
            pos = {n: j for j, n in enumerate(cols[i - step])}
            current = {n: j for j, n in enumerate(cols[i])}

            def centre(
                n: str, pos: dict[str, int] = pos, current: dict[str, int] = current
            ) -> float:
                seen = [pos[m] for m in near.get(n, ()) if m in pos]
                # a box with no neighbour there keeps its relative place
                return (
                    sum(seen) / len(seen) if seen else current[n] * len(pos) / max(1, len(current))
                )

            cols[i] = sorted(cols[i], key=lambda n: (centre(n), current[n]))

    best = [list(c) for c in columns]
    best_score = total(best)
    cols = [list(c) for c in columns]
    for _ in range(_SWEEPS):
        if best_score == 0:
            break
        sweep(cols, range(1, len(cols)), ups, 1)
        sweep(cols, range(len(cols) - 2, -1, -1), downs, -1)
        score = total(cols)
        if score < best_score:
            best, best_score = [list(c) for c in cols], score
    return best


def layout(
    names: Sequence[str],
    deps: Mapping[str, Sequence[str]],
    *,
    box_width: float = 156,
    box_height: float = 46,
    gap_x: float = 44,
    gap_y: float = 18,
    margin: float = 12,
) -> Layout:
    """Lay out steps ``names`` (dependencies first) with edges ``dep -> step``, left to right.

    Examples:
        >>> lay = layout(["load", "split", "train", "evaluate"],
        ...              {"split": ["load"], "train": ["split"], "evaluate": ["train", "split"]})
        >>> [lay.boxes[n].layer for n in ("load", "split", "train", "evaluate")]
        [0, 1, 2, 3]
        >>> [len(r.points) for r in lay.routes]  # split -> evaluate runs through layer 2's gap
        [2, 2, 2, 4]
    """
    layer = assign_layers(names, deps)
    n_layers = 1 + max(layer.values(), default=-1)
    columns: list[list[str]] = [[] for _ in range(n_layers)]
    for n in names:
        columns[layer[n]].append(n)
    edges: list[tuple[str, str]] = []
    chains: list[tuple[str, str, list[str]]] = []
    all_layer = dict(layer)
    for t in names:
        for s in deps.get(t, ()):
            if s not in layer or s == t:
                continue
            chain = [s]
            for li in range(layer[s] + 1, layer[t]):
                d = _dummy(s, t, li)
                columns[li].append(d)
                all_layer[d] = li
                chain.append(d)
            chain.append(t)
            edges.extend(zip(chain[:-1], chain[1:], strict=True))
            chains.append((s, t, chain))
    columns = _order(columns, edges, all_layer)

    # a dummy takes a thin slot: long edges should not push the boxes far apart
    def slot(n: str) -> float:
        return 10.0 if n.startswith("\0") else box_height

    heights = [sum(slot(n) for n in col) + gap_y * max(0, len(col) - 1) for col in columns]
    tallest = max(heights, default=0.0)
    centres: dict[str, tuple[float, float]] = {}
    boxes: dict[str, Placed] = {}
    for li, col in enumerate(columns):
        x = margin + li * (box_width + gap_x)
        y = margin + (tallest - heights[li]) / 2
        for n in col:
            centres[n] = (x + box_width / 2, y + slot(n) / 2)
            if not n.startswith("\0"):
                boxes[n] = Placed(n, li, x, y)
            y += slot(n) + gap_y
    routes = []
    for s, t, chain in chains:
        sx, sy = centres[s]
        tx, ty = centres[t]
        points = [(sx + box_width / 2, sy)]
        for d in chain[1:-1]:  # straight across the dummy's column, curved between columns
            dx, dy = centres[d]
            points += [(dx - box_width / 2, dy), (dx + box_width / 2, dy)]
        points.append((tx - box_width / 2, ty))
        routes.append(Route(s, t, tuple(points)))
    return Layout(
        boxes=boxes,
        routes=tuple(routes),
        width=2 * margin + n_layers * box_width + max(0, n_layers - 1) * gap_x,
        height=2 * margin + tallest,
        box_width=box_width,
        box_height=box_height,
    )
