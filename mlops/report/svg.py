"""Inline SVG drawn by hand: the pipeline graph and the metric charts.

Hand-written rather than a charting or graph library: the pictures are a few boxes, curves and
dots, so the SVG is a few kilobytes, renders with JavaScript off, needs nothing fetched, and adds
no dependency (Graphviz needs a binary; the JavaScript libraries would have to be inlined at
hundreds of KB and would not render without scripts). Every piece of user text goes through
:func:`esc`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from .layout import layout
from .views import RunView, StepView

__all__ = ["STATUS_COLOURS", "chart_svg", "esc", "graph_svg", "nice_ticks", "seconds_text"]

#: status -> (fill, stroke, dashed)
STATUS_COLOURS: dict[str, tuple[str, str, bool]] = {
    "ran": ("#d7f0da", "#2e7d32", False),
    "cached": ("#dbe7f8", "#1f5fa8", False),
    "failed": ("#fbd9d9", "#c62828", False),
    "skipped": ("#eeeeee", "#8a8a8a", True),
    "running": ("#fff1c2", "#a87900", False),
    "pending": ("#ffffff", "#8a8a8a", True),
    "will run": ("#ffe3c4", "#c45f00", False),
    "may run": ("#fff7cf", "#9c8400", True),
}
_UNKNOWN = ("#ffffff", "#777777", True)


def esc(value: object) -> str:
    """Text made safe for HTML and SVG, in text and in quoted attributes.

    Examples:
        >>> esc('<b x="1">&')
        '&lt;b x=&quot;1&quot;&gt;&amp;'
    """
    return html.escape(str(value), quote=True)


def seconds_text(seconds: float | None) -> str:
    """A duration as people read it.

    Examples:
        >>> seconds_text(0.0123), seconds_text(2.5), seconds_text(125), seconds_text(None)
        ('0.01s', '2.50s', '2m05s', '')
    """
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _tooltip(s: StepView) -> str:
    lines = [f"{s.name}: {s.status}" + (f" in {seconds_text(s.seconds)}" if s.seconds else "")]
    lines += list(s.why)
    if s.error:
        lines.append(s.error)
    return "\n".join(lines)


def _path(points: Sequence[tuple[float, float]]) -> str:
    """An SVG path through ``points``: straight where level, an S-curve between columns."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M{x0:.1f},{y0:.1f}"]
    for x1, y1 in rest:
        if abs(y1 - y0) < 0.5:
            d.append(f"L{x1:.1f},{y1:.1f}")
        else:
            mid = (x0 + x1) / 2
            d.append(f"C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
        x0, y0 = x1, y1
    return " ".join(d)


def graph_svg(view: RunView, anchors: Sequence[str]) -> str:
    """The pipeline as boxes and arrows; each box links to ``#anchor`` of its step's details.

    ``anchors`` are the element ids of the steps' detail sections, in ``view.steps`` order.
    """
    names = [s.name for s in view.steps]
    lay = layout(names, {s.name: s.deps for s in view.steps})
    w, h = max(lay.width, 120.0), max(lay.height, 60.0)
    out = [
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" '
        f'height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" role="img" '
        f'aria-label="{esc("pipeline " + view.pipeline)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#6b6b6b"/></marker></defs>',
    ]
    for r in lay.routes:
        out.append(
            f'<path class="edge" data-from="{esc(r.source)}" data-to="{esc(r.target)}" '
            f'd="{_path(r.points)}" fill="none" stroke="#8c8c8c" stroke-width="1.4" '
            'marker-end="url(#arrow)"/>'
        )
    bw, bh = lay.box_width, lay.box_height
    for s, anchor in zip(view.steps, anchors, strict=True):
        box = lay.boxes[s.name]
        fill, stroke, dashed = STATUS_COLOURS.get(s.status, _UNKNOWN)
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        status = s.status + (f" \u00b7 {seconds_text(s.seconds)}" if s.seconds is not None else "")
        out.append(
            f'<a class="step" href="#{esc(anchor)}" data-step="{esc(s.name)}" '
            f'data-status="{esc(s.status)}"><title>{esc(_tooltip(s))}</title>'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{bw:.0f}" height="{bh:.0f}" rx="7" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.6"{dash}/>'
            f'<text x="{box.x + 10:.1f}" y="{box.y + 19:.1f}" class="name">'
            f"{esc(_clip(s.name, 19))}</text>"
            f'<text x="{box.x + 10:.1f}" y="{box.y + 36:.1f}" class="status" fill="{stroke}">'
            f"{esc(status)}</text></a>"
        )
    out.append("</svg>")
    return "".join(out)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering ``lo``..``hi`` (about ``count`` of them).

    Examples:
        >>> nice_ticks(0.91, 0.97)
        [0.9, 0.92, 0.94, 0.96, 0.98]
        >>> nice_ticks(0, 100)
        [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks = []
    t = start
    while t <= hi + step * 1e-9:
        ticks.append(float(round(t, 12)))
        t += step
    if ticks[-1] < hi:
        ticks.append(float(round(t, 12)))
    return ticks


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def chart_svg(
    metric: str,
    points: Sequence[tuple[int, float]],
    marks: dict[int, str],
    *,
    width: float = 460,
    height: float = 220,
) -> str:
    """One metric over versions: a dot per version, labelled ``vN``; stage holders marked.

    Args:
        metric: the metric's name (the chart's title).
        points: ``(version, value)``, one per version that has the metric.
        marks: version -> stage (``production``, ``staging``) for the versions holding one.
    """
    left, right, top, bottom = 52.0, 16.0, 28.0, 34.0
    pw, ph = width - left - right, height - top - bottom
    pts = sorted(points)
    values = [v for _, v in pts]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-12:  # one value: give it room around it
        pad = abs(hi) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    ticks = nice_ticks(lo, hi)
    lo, hi = min(ticks[0], lo), max(ticks[-1], hi)

    def y(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    def x(i: int) -> float:
        return left + (pw * (i + 0.5) / max(1, len(pts)))

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'data-metric="{esc(metric)}" aria-label="{esc(metric + " by version")}">',
        f'<text x="{left:.0f}" y="17" class="title">{esc(metric)}</text>',
    ]
    for t in ticks:
        out.append(
            f'<line x1="{left:.0f}" x2="{left + pw:.0f}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            'stroke="#e3e3e3"/>'
            f'<text x="{left - 6:.0f}" y="{y(t) + 4:.1f}" class="tick" text-anchor="end">'
            f"{esc(_fmt(t))}</text>"
        )
    if len(pts) > 1:
        line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(pts))
        out.append(f'<polyline points="{line}" fill="none" stroke="#5b7db1" stroke-width="1.5"/>')
    colours = {"production": "#2e7d32", "staging": "#c45f00"}
    every = max(1, math.ceil(len(pts) * 30 / pw))  # keep version labels from overlapping
    for i, (version, value) in enumerate(pts):
        cx, cy = x(i), y(value)
        stage = marks.get(version)
        label = f"v{version} {metric}={_fmt(value)}" + (f" ({stage})" if stage else "")
        out.append(
            f'<g class="point" data-version="{version}"'
            + (f' data-stage="{esc(stage)}"' if stage else "")
            + f"><title>{esc(label)}</title>"
        )
        if stage:
            colour = colours.get(stage, "#555")
            out.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="8.5" fill="none" stroke="{colour}" '
                'stroke-width="2.2"/>'
                f'<text x="{cx:.1f}" y="{cy - 13:.1f}" class="stage" text-anchor="middle" '
                f'fill="{colour}">{esc(stage)}</text>'
            )
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4.5" fill="#2f5597"/>')
        if i % every == 0 or i == len(pts) - 1 or stage:
            out.append(
                f'<text x="{cx:.1f}" y="{top + ph + 18:.1f}" class="tick" text-anchor="middle">'
                f"v{version}</text>"
            )
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)
