"""The report pages: one self-contained HTML file per run, plan or model.

Everything the page needs is inside it -- CSS, SVG, and a few lines of script that only open a
step's details when its box is clicked -- so it opens from disk, offline, in any browser, and
reads the same with scripts off (boxes are links to the step's ``<details>``; hovering a box
shows its status and reasons as the SVG ``<title>``). A Content-Security-Policy in the page
forbids every fetch and every script but the page's own (by hash), so even text that slipped
through escaping could not load or run anything.

All user text (step names, params, logs, tracebacks, overrides) goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from .svg import STATUS_COLOURS, chart_svg, esc, graph_svg, seconds_text
from .views import ModelView, RunView, StepView, VersionView

__all__ = ["LOG_CHARS", "render_model", "render_plan", "render_run", "size_text", "utc"]

#: the most characters of one step's log shown in a report (the rest stays in the registry)
LOG_CHARS = 64_000

_CSS = """
:root{--fg:#1d1d1f;--muted:#666;--line:#ddd;--bg:#fafafa;font-family:system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:#fff}
body{margin:0;padding:18px 24px 40px;line-height:1.4}
h1{font-size:1.35rem;margin:0 0 4px}h2{font-size:1.05rem;margin:18px 0 8px}
h3{font-size:.92rem;margin:12px 0 4px;color:var(--muted)}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85rem}
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:8px 10px;
overflow:auto;max-height:28rem;white-space:pre-wrap;word-break:break-word;margin:4px 0}
.meta{color:var(--muted);margin:0 0 10px}
.top{display:flex;flex-wrap:wrap;gap:20px;align-items:flex-start}
/* the graph keeps its natural size; the aside sits beside it when there is room, else below */
.graph-wrap,.wide{flex:1 1 auto;min-width:0;overflow:auto}
aside{flex:1 1 300px;display:flex;flex-wrap:wrap;gap:0 12px;align-content:flex-start}
aside>section{flex:1 1 280px}
aside section{border:1px solid var(--line);border-radius:8px;padding:4px 12px 10px;
margin-bottom:12px;box-sizing:border-box}
.nowrap{white-space:nowrap}
aside h2{margin-top:8px}
svg.graph{max-width:100%;height:auto}svg text{font-family:inherit}
svg .name{font-size:13px;font-weight:600;fill:#1d1d1f}
svg .status{font-size:12px}svg .tick{font-size:11px;fill:#555}
svg .title{font-size:13px;font-weight:600}svg .stage{font-size:10px;font-weight:600}
a.step{cursor:pointer}a.step:hover rect,a.step:focus rect{stroke-width:3}
.legend{display:flex;flex-wrap:wrap;gap:12px;list-style:none;padding:0;margin:6px 0;
font-size:.85rem;color:var(--muted)}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;border:1.5px solid;
vertical-align:-2px;margin-right:4px}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8rem;font-weight:600;
border:1.5px solid}
details.step{border:1px solid var(--line);border-radius:8px;margin:6px 0;padding:0 12px}
details.step[open]{padding-bottom:10px}details.step:target{outline:3px solid #7aa7e0}
details.step summary{cursor:pointer;padding:8px 0}
details.step summary .target{color:var(--muted);margin-left:8px}
table{border-collapse:collapse;font-size:.88rem;margin:2px 0 6px}
th,td{border-bottom:1px solid var(--line);padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:var(--muted);font-weight:600}
.none{color:var(--muted);font-style:italic}
.charts{display:flex;flex-wrap:wrap;gap:16px}
ol.timeline{list-style:none;padding-left:0;border-left:2px solid var(--line);margin-left:8px}
ol.timeline li{position:relative;padding:2px 0 10px 16px}
ol.timeline li::before{content:"";position:absolute;left:-7px;top:7px;width:10px;height:10px;
border-radius:50%;background:#5b7db1}
ol.timeline li.rollback::before{background:#c45f00}
.changed{background:#fff3c4}
"""

# Only opens the details of a clicked box (and of the #step in the address), so the page works
# the same without it.
_SCRIPT = """
function openStep(id){var d=id&&document.getElementById(id);
if(d&&d.tagName==="DETAILS"){d.open=true;}}
document.addEventListener("click",function(e){var t=e.target;
var a=t&&t.closest?t.closest("a.step"):null;
if(a){openStep((a.getAttribute("href")||"").slice(1));}});
window.addEventListener("hashchange",function(){openStep(location.hash.slice(1));});
openStep(location.hash.slice(1));
"""


def _page(title: str, body: str) -> str:
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(csp)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="generator" content="mlops report">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head>\n"
        f"<body>{body}<script>{_SCRIPT}</script></body></html>\n"
    )


def utc(seconds: float | None) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS UTC`` ('' for None).

    Examples:
        >>> utc(0)
        '1970-01-01 00:00:00 UTC'
    """
    import time

    if seconds is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(seconds)))


def size_text(size: int | None) -> str:
    """A byte count as people read it.

    Examples:
        >>> size_text(18), size_text(5023), size_text(3 * 1024**2), size_text(None)
        ('18 B', '4.9 KiB', '3.0 MiB', '')
    """
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return ""  # pragma: no cover - the loop always returns


def _badge(status: str) -> str:
    fill, stroke, _ = STATUS_COLOURS.get(status, ("#fff", "#777", True))
    return (
        f'<span class="badge" style="background:{fill};border-color:{stroke};color:{stroke}">'
        f"{esc(status)}</span>"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    """A table of already-escaped cells, or ``empty`` in words."""
    if not rows:
        return f'<p class="none">{esc(empty)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _hash(value: str | None) -> str:
    if not value:
        return ""
    return f'<code title="{esc(value)}">{esc(value[:12])}</code>'


def _step_details(s: StepView, anchor: str, kind: str) -> str:
    took = f" {esc(seconds_text(s.seconds))}" if s.seconds is not None else ""
    target = f'<code class="target">{esc(s.target)}</code>' if s.target else ""
    opened = " open" if s.status == "failed" else ""
    parts = [
        f'<details class="step" id="{esc(anchor)}" data-step="{esc(s.name)}" '
        f'data-status="{esc(s.status)}"{opened}><summary>{_badge(s.status)} '
        f"<b>{esc(s.name)}</b>{took}{target}</summary>"
    ]
    label = "Why it will run" if kind == "plan" else "Why it ran"
    if s.why:
        parts.append(f"<h3>{label}</h3><ul>" + "".join(f"<li>{esc(w)}</li>" for w in s.why))
        parts.append("</ul>")
    parts.append("<h3>Params</h3>")
    parts.append(
        _table(
            ["name", "value"],
            [[f"<code>{esc(k)}</code>", f"<code>{esc(v)}</code>"] for k, v in s.params],
            "no params",
        )
    )
    parts.append("<h3>Inputs</h3>")
    parts.append(
        _table(
            ["argument", "from", "content hash"],
            [[f"<code>{esc(i.name)}</code>", esc(i.source), _hash(i.id)] for i in s.inputs],
            "no inputs",
        )
    )
    parts.append("<h3>Outputs</h3>")
    parts.append(
        _table(
            ["name", "format", "size", "content hash"],
            [
                [
                    f"<code>{esc(o.name)}</code>",
                    esc(o.format or ""),
                    esc(size_text(o.size)),
                    _hash(o.id),
                ]
                for o in s.outputs
            ],
            "no outputs recorded",
        )
    )
    if s.cache_key:
        parts.append(f'<p class="meta">cache key {_hash(s.cache_key)}</p>')
    if s.error:
        parts.append(f'<h3>Error</h3><pre class="error">{esc(s.error)}</pre>')
    if s.traceback:
        parts.append(f'<h3>Traceback</h3><pre class="traceback">{esc(s.traceback)}</pre>')
    if s.log is not None:
        log = s.log
        if len(log) > LOG_CHARS:
            cut = len(log) - LOG_CHARS
            log = log[:LOG_CHARS] + f"\n\u2026 ({cut} more characters in the stored log)"
        parts.append(f'<h3>Log</h3><pre class="log">{esc(log) or "(empty)"}</pre>')
    elif kind == "run":
        parts.append('<p class="none">no log kept for this step</p>')
    parts.append("</details>")
    return "".join(parts)


def _legend(statuses: Sequence[str]) -> str:
    items = []
    for status in dict.fromkeys(statuses):
        fill, stroke, _ = STATUS_COLOURS.get(status, ("#fff", "#777", True))
        items.append(
            f'<li><span class="swatch" style="background:{fill};border-color:{stroke}"></span>'
            f"{esc(status)}</li>"
        )
    return f'<ul class="legend">{"".join(items)}</ul>'


def _aside(view: RunView) -> str:
    parts = ["<aside>"]
    if view.error:
        parts.append(f'<section><h2>Error</h2><pre class="error">{esc(view.error)}</pre></section>')
    overrides = (
        "<ul>" + "".join(f"<li><code>{esc(o)}</code></li>" for o in view.overrides) + "</ul>"
        if view.overrides
        else '<p class="none">none: the pipeline\'s defaults</p>'
    )
    parts.append(f'<section class="overrides"><h2>Config overrides</h2>{overrides}</section>')
    m = view.model
    if m is None:
        model = '<p class="none">this pipeline has no model</p>'
    else:
        if m.number is None:
            what = "a new version (registered when it runs)"
        else:
            verb = "registered" if m.created else "used"
            what = f"<b>v{m.number}</b> {verb}"
        asked = f" (asked for {esc(m.requested)})" if m.requested and not m.created else ""
        stage = f"; stage {esc(m.stage)}" if m.stage else ""
        model = f"<p><code>{esc(m.name)}</code> {what}{asked}{stage}</p>"
        if m.metrics:
            model += _table(
                ["metric", "value"],
                [[esc(k), f"<code>{esc(v)}</code>"] for k, v in m.metrics],
                "",
            )
    parts.append(f'<section class="model"><h2>Model</h2>{model}</section>')
    if view.final_text:
        parts.append(
            f'<section class="final"><h2>Final text</h2><pre>{esc(view.final_text)}</pre></section>'
        )
    parts.append("</aside>")
    return "".join(parts)


def _render(view: RunView) -> str:
    anchors = [f"step-{i}" for i in range(len(view.steps))]
    if view.kind == "plan":
        title = f"Plan: {view.pipeline}"
        heading = f"Plan for <code>{esc(view.pipeline)}</code>"
        meta = "nothing was run; each step says what a run would do and why"
    else:
        title = f"Run {view.run_id}: {view.pipeline}"
        heading = f"Run <code>{esc(view.run_id)}</code> of <code>{esc(view.pipeline)}</code>"
        took = ""
        if view.started is not None and view.finished is not None:
            took = f", took {seconds_text(float(view.finished) - float(view.started))}"
        meta = f"{_badge(view.status)} started {esc(utc(view.started))}{esc(took)}"
    details = "".join(
        _step_details(s, a, view.kind) for s, a in zip(view.steps, anchors, strict=True)
    )
    body = (
        f'<header><h1>{heading}</h1><p class="meta">{meta}</p></header>'
        '<div class="top"><section class="graph-wrap"><h2>Pipeline</h2>'
        f"{graph_svg(view, anchors)}{_legend([s.status for s in view.steps])}"
        '<p class="meta">Click a step (or hover it) for its params, inputs, outputs and log.</p>'
        f"</section>{_aside(view)}</div>"
        f'<section class="steps"><h2>Steps</h2>{details}</section>'
    )
    return _page(title, body)


def render_run(view: RunView) -> str:
    """The HTML report of a run: its graph coloured by status, the details of every step, and
    beside the graph the overrides, the model version and the final text.

    Examples:
        >>> from mlops.report.views import StepView
        >>> page = render_run(RunView("run", "p<1>", (StepView("a", "ran", 0.5),), run_id="r1"))
        >>> "p&lt;1&gt;" in page and "p<1>" not in page
        True
    """
    return _render(view)


def render_plan(view: RunView) -> str:
    """The HTML report of a plan (``plan=true``): the graph with ``cached`` / ``will run`` /
    ``may run`` boxes and, per step, why."""
    return _render(view)


def _stage_marks(view: ModelView) -> dict[int, str]:
    marks = {}
    for stage, number in view.holders:
        if number is not None:
            marks[number] = stage
    if not marks:  # no history kept: the versions' own stages
        marks = {v.number: v.stage for v in view.versions if v.stage in ("production", "staging")}
    return marks


def _numeric(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


def _charts(view: ModelView) -> str:
    names: dict[str, None] = {}
    for v in view.versions:
        for k, value in v.metrics:
            if _numeric(value) is not None:
                names.setdefault(k)
    if not names:
        return '<p class="none">no numeric metrics logged for any version</p>'
    marks = _stage_marks(view)
    charts = []
    for metric in names:
        points = []
        for v in view.versions:
            value = dict(v.metrics).get(metric)
            number = _numeric(value)
            if number is not None:
                points.append((v.number, number))
        charts.append(chart_svg(metric, points, marks))
    return f'<div class="charts">{"".join(charts)}</div>'


def _timeline(view: ModelView) -> str:
    if not view.history:
        return '<p class="none">no stage changes yet</p>'
    items = []
    for h in view.history:
        moved = (
            f"<b>v{esc(h.version)}</b> \u2192 <b>{esc(h.stage)}</b>"
            if h.version is not None
            else f"<b>{esc(h.stage)}</b> cleared"
        )
        extra = []
        if h.previous is not None and h.previous != h.version:
            extra.append(f"replaced v{esc(h.previous)}")
        if h.archived:  # the versions this change archived
            extra.append("archived " + ", ".join(f"v{esc(a)}" for a in h.archived))
        who = f" by <b>{esc(h.user)}</b>" if h.user else ""
        run = f" in run <code>{esc(h.run_id)}</code>" if h.run_id else ""
        items.append(
            f'<li class="{esc(h.reason)}" data-seq="{h.seq}"><span class="meta">'
            f"{esc(utc(h.time))}</span><br>{moved} ({esc(h.reason)}){who}{run}"
            + (f'<br><span class="meta">{esc("; ".join(extra))}</span>' if extra else "")
            + "</li>"
        )
    return f'<ol class="timeline">{"".join(items)}</ol>'


def _value(value: object) -> str:
    """A metric as shown in a table: floats to 6 significant digits.

    Examples:
        >>> _value(0.9333333333333333), _value(3), _value(True), _value("a")
        ('0.933333', '3', 'True', 'a')
    """
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _ident(value: str | None, parts: Sequence[tuple[str, str]], before: str | None) -> str:
    """A code or data identity, its parts in the tooltip, marked when it differs from
    ``before`` (the previous complete version's)."""
    if not value:
        return '<span class="none">unknown</span>'
    title = "\n".join(f"{k} {p}" for k, p in parts)
    changed = ' class="changed"' if before and before != value else ""
    return f'<code{changed} title="{esc(title)}">{esc(value)}</code>'


def _versions_table(view: ModelView) -> str:
    versions = view.versions
    if not versions:
        return '<p class="none">no versions</p>'
    metric_names = list(dict.fromkeys(k for v in versions for k, _ in v.metrics))
    all_params = [dict(v.params) for v in versions]
    varying = sorted({k for p in all_params for k in p if len({q.get(k) for q in all_params}) > 1})
    head = ["version", "stage", "created", "run", *metric_names, "params that vary", "code", "data"]
    rows = []
    previous: VersionView | None = None
    for v, params in zip(versions, all_params, strict=True):
        metrics = dict(v.metrics)
        shown = "<br>".join(
            f"<code>{esc(k)}={esc(params.get(k, '(unset)'))}</code>" for k in varying
        )
        every = "".join(f"<code>{esc(k)}={esc(val)}</code><br>" for k, val in v.params)
        param_cell = (shown or '<span class="none">same for all</span>') + (
            f"<details><summary>all {len(v.params)}</summary>{every}</details>" if v.params else ""
        )

        status = " (incomplete)" if v.incomplete else ""
        rows.append(
            [
                f"<b>v{v.number}</b>{esc(status)}",
                esc(v.stage),
                f'<span class="nowrap">{esc(utc(v.created))}</span>',
                f'<code class="nowrap">{esc(v.run_id or "")}</code>',
                *(
                    f'<code title="{esc(metrics[m])}">{esc(_value(metrics[m]))}</code>'
                    if m in metrics
                    else ""
                    for m in metric_names
                ),
                param_cell,
                # an incomplete version's run stopped early: its identities cover fewer steps,
                # which is not a change
                _ident(
                    v.code, v.code_parts, previous.code if previous and not v.incomplete else None
                ),
                _ident(
                    v.data, v.data_parts, previous.data if previous and not v.incomplete else None
                ),
            ]
        )
        if not v.incomplete:
            previous = v
    table = _table(head, rows, "no versions")
    return table.replace("<table>", '<table class="versions">', 1)


def render_model(view: ModelView) -> str:
    """The HTML report of a model: each metric over versions, the stage history, the versions.

    Examples:
        >>> from mlops.report.views import VersionView
        >>> page = render_model(ModelView("m", (VersionView(1, metrics=(("acc", 0.9),)),)))
        >>> page.count('class="point"')
        1
    """
    marks = _stage_marks(view)
    holders = ", ".join(f"{stage}: v{n}" for n, stage in sorted(marks.items())) or "no stage holder"
    body = (
        f"<header><h1>Model <code>{esc(view.name)}</code></h1>"
        f'<p class="meta">{len(view.versions)} versions; {esc(holders)}</p></header>'
        f"<section><h2>Metrics by version</h2>{_charts(view)}</section>"
        '<div class="top"><section class="wide">'
        f"<h2>Versions</h2>{_versions_table(view)}</section>"
        f"<aside><section><h2>Stage history</h2>{_timeline(view)}</section></aside></div>"
    )
    return _page(f"Model {view.name}", body)
