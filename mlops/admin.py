"""Registry commands for people: ``mlops models``, ``mlops versions NAME``, ``mlops gc`` ...

Each command takes ``--registry URI`` (default ``.mlops``, as for ``python -m mlops``),
``-o KEY=VALUE`` storage options, and ``--json`` for scripts; otherwise it prints a table.
A mistake (an unknown model, an unreachable registry) is one line on stderr and exit code 1;
a usage error is argparse's message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from .check import add_arguments as _check_arguments
from .check import check_command as _check
from .errors import MlopsError
from .gc import DEFAULT_GRACE, collect_garbage
from .run_store import RunStatus
from .tables import table

__all__ = ["COMMANDS", "main"]

#: Every command, in the order of ``mlops --help`` (the README documents each one).
COMMANDS = (
    "models",
    "versions",
    "promote",
    "rollback",
    "history",
    "runs",
    "show-run",
    "gc",
    "report",
    "diff",
    "runs delete",
    "runs prune",
    "versions delete",
    "cache clear",
    "init",
    "check",
)


# -- output -----------------------------------------------------------------------------------


def _when(t: float | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else None


def _fmt(v: Any) -> str:
    return (
        f"{v:.4g}"
        if isinstance(v, float)
        else json.dumps(v)
        if isinstance(v, (dict, list))
        else str(v)
    )


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _check_model_has_versions(reg: Any, name: str) -> None:
    """A ModelNotFoundError whose hint names the project's own training pipeline, for a model
    with no versions at all."""
    from .errors import ModelNotFoundError, did_you_mean
    from .names import check_name
    from .run_views import no_versions_hint

    check_name("model", name)
    if reg.models.last_number(name):
        return
    others = [m for m in reg.list_models() if m != name]
    raise ModelNotFoundError(
        f"model '{name}' has no versions yet.{did_you_mean(name, others)} " + no_versions_hint(name)
    )


# -- commands ---------------------------------------------------------------------------------


def _models(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    rows = []
    for name in reg.list_models():
        current = reg.models.current_stages(name)
        holders = current.holders if current else {}
        rows.append(
            {
                "name": name,
                "versions": reg.models.last_number(name),
                "staging": holders.get("staging"),
                "production": holders.get("production"),
            }
        )
    if not rows:
        return rows, f"No models in {reg.uri} yet."
    text = table(
        ["MODEL", "VERSIONS", "STAGING", "PRODUCTION"],
        [[r["name"], r["versions"], r["staging"], r["production"]] for r in rows],
    )
    return rows, text


def _versions(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    _check_model_has_versions(reg, args.name)
    versions = reg.list_model_versions(args.name)
    from .lifecycle import deleted_versions

    deleted = deleted_versions(reg, args.name)
    rows = []
    for mv in versions:
        status = str(mv.status)
        if mv.number in deleted:
            status = "deleted"
        elif not mv.complete and mv.run_id:
            try:
                status = f"incomplete (run {reg.get_run(mv.run_id).status})"
            except MlopsError:
                status = "incomplete (run not found)"
        rows.append(
            {
                "version": mv.number,
                "status": "deleted" if mv.number in deleted else str(mv.status),
                "stage": mv.stage,
                "created": mv.created,
                "run_id": mv.run_id,
                "metadata": dict(mv.metadata),
                "notes": [n.to_json() for n in mv.notes],
                "_status": status,
            }
        )

    def notes(r: dict[str, Any]) -> str:
        return "; ".join(
            f"{', '.join(f'{k}={_fmt(v)}' for k, v in sorted(n['values'].items()))} "
            f"(by {n['user']} {_when(n['time'])})"
            for n in r["notes"]
        )

    text = table(
        ["VERSION", "STATUS", "STAGE", "CREATED", "RUN", "METADATA", "NOTES"],
        [
            [
                r["version"],
                r["_status"],
                r["stage"],
                _when(r["created"]),
                r["run_id"],
                ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(r["metadata"].items())) or None,
                notes(r) or None,
            ]
            for r in rows
        ],
    )
    for r in rows:
        del r["_status"]
    return rows, text


def _change_line(name: str, change: Any) -> str:
    moved = f" (version {change.previous} -> archived)" if change.previous is not None else ""
    verb = "rolled back to" if change.reason == "rollback" else "is now"
    return f"{name}: {change.stage} {verb} version {change.version}{moved}; change {change.seq}"


def _promote(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    change = reg.set_stage(args.name, args.version, args.stage, force=args.force)
    return change.to_json(), _change_line(args.name, change)


def _rollback(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    change = reg.rollback(args.name, args.stage)
    return change.to_json(), _change_line(args.name, change)


def _history(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    history = reg.stage_history(args.name)
    if not history:
        _check_model_has_versions(reg, args.name)  # an unknown model is an error
        return [], f"Model '{args.name}' has no stage changes yet."
    text = table(
        ["#", "TIME", "STAGE", "VERSION", "PREVIOUS", "REASON", "USER", "RUN"],
        [
            [c.seq, _when(c.time), c.stage, c.version, c.previous, c.reason, c.user, c.run_id]
            for c in history
        ],
    )
    return [c.to_json() for c in history], text


def _runs(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .run_views import changed_params, pipeline_defaults, run_metrics

    if args.pipeline is not None:
        from .names import check_name

        check_name("pipeline", args.pipeline)
    every = reg.list_runs(pipeline=args.pipeline)
    runs = [r for r in every if args.status is None or str(r.status) == args.status]
    shown = runs[-args.limit :] if args.limit else runs
    by_pipeline: dict[str, list[Any]] = {}
    for r in every:  # a pipeline's other runs: the defaults when its YAML is not found
        by_pipeline.setdefault(r.pipeline, []).append(r)
    defaults = {p: pipeline_defaults(p) for p in {r.pipeline for r in shown}}
    versions: dict[str, Any] = {}
    rows = [
        {
            "id": r.id,
            "pipeline": r.pipeline,
            "status": str(r.status),
            "started": r.started,
            "seconds": (r.finished - r.started) if r.finished else None,
            "model": r.model,
            "steps": r.steps,
            "params": changed_params(r, defaults[r.pipeline], by_pipeline.get(r.pipeline, ())),
            "metrics": run_metrics(reg, r, versions),
        }
        for r in shown
    ]
    if not rows:
        where = f" of pipeline '{args.pipeline}'" if args.pipeline else ""
        status = f" with status '{args.status}'" if args.status else ""
        return rows, f"No runs{where}{status} in {reg.uri} yet."

    def model(m: dict[str, Any] | None) -> str | None:
        return f"{m['name']} v{m['number']}" if m and m.get("number") is not None else None

    def pairs(d: dict[str, Any]) -> str | None:
        return ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(d.items())) or None

    text = table(
        ["RUN", "PIPELINE", "STATUS", "STARTED", "SECONDS", "MODEL", "PARAMS", "METRICS"],
        [
            [
                r["id"],
                r["pipeline"],
                r["status"],
                _when(r["started"]),
                f"{r['seconds']:.2f}" if r["seconds"] is not None else None,
                model(r["model"]),
                pairs(r["params"]),
                pairs(r["metrics"]),
            ]
            for r in rows
        ],
    )
    if len(shown) < len(runs):
        text += f"\n({len(runs) - len(shown)} older runs not shown; --limit 0 shows all)"
    return rows, text


def _show_run(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .lifecycle import resolve_run_id
    from .run_views import (
        changed_params,
        final_texts,
        pipeline_defaults,
        run_metrics,
        step_log,
        step_order,
        step_param_text,
        step_why,
    )

    run = reg.get_run(resolve_run_id(reg, args.run_id))
    if args.logs is not None:
        text = step_log(reg, run, args.logs)
        return {"run": run.id, "step": args.logs, "log": text}, text.rstrip("\n")
    doc = run.to_json()
    metrics = run_metrics(reg, run)
    defaults = pipeline_defaults(run.pipeline)
    others = reg.list_runs(run.pipeline) if defaults is None else ()
    params = changed_params(run, defaults, others)
    texts = final_texts(reg, run)
    doc["changed_params"] = params
    doc["metrics"] = metrics
    doc["final_text"] = [{"step": s, "text": t} for s, t in texts]
    lines = [
        f"run       {run.id}",
        f"pipeline  {run.pipeline}",
        f"status    {run.status}",
        f"started   {_when(run.started)}",
        f"finished  {_when(run.finished) or '-'}",
    ]
    if run.model:
        m = run.model
        how = "registered" if m.get("created") else f"used ({m.get('requested')})"
        lines.append(f"model     {m.get('name')} v{m.get('number')} {how}")
    if params:
        lines.append("params    " + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(params.items())))
    if metrics:
        lines.append("metrics   " + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(metrics.items())))
    if run.error:
        lines.append(f"error     {run.error}")
    rows = []
    for name in step_order(run):
        rec = run.step_records.get(name) or {}
        outs = rec.get("outputs") or {}
        rows.append(
            [
                name,
                rec.get("status"),
                f"{rec['seconds']:.2f}" if isinstance(rec.get("seconds"), (int, float)) else None,
                step_param_text(run, name) or None,
                ", ".join(f"{k}={v['id'][:12]}" for k, v in sorted(outs.items())) or None,
                "yes" if rec.get("log") else None,
                step_why(run, name),
            ]
        )
    headers = ["STEP", "STATUS", "SECONDS", "PARAMS", "OUTPUTS", "LOG", "WHY"]
    lines += ["", table(headers, rows)]
    for name in step_order(run):
        tb = (run.step_records.get(name) or {}).get("traceback")
        if tb:
            lines += ["", f"step '{name}' failed:", tb]
    if texts:
        lines.append("")
        lines += [f"{step}: {text}" for step, text in texts]
    return doc, "\n".join(lines)


def _gc(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    report = collect_garbage(
        reg, dry_run=args.dry_run, grace=args.grace, ignore_running=args.ignore_running
    )
    verb = "would delete" if args.dry_run else "deleted"
    lines = [f"  {path}  ({_bytes(size)})" for path, size in report.deleted]
    lines.append(
        f"gc {verb} {len(report.deleted)} files, {_bytes(report.bytes)}; kept "
        f"{report.kept_objects} referenced objects"
    )
    if report.running:
        lines.append(
            f"gc kept every unreferenced object: {len(report.running)} run(s) in progress may "
            f"still record them ({', '.join(report.running)}). Run gc again when they finish, or "
            "pass --ignore-running if they are not really running."
        )
    return report.to_json(), "\n".join(lines)


# -- reports, diffs and deleting (mlops.report_cli, mlops.diff, mlops.lifecycle) ----------------


def _report(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .lifecycle import resolve_run_id
    from .report_cli import model_html, open_in_browser, run_html, write_report

    if args.kind == "run":
        run = reg.get_run(resolve_run_id(reg, args.target))
        html, default = run_html(reg, run), f"mlops-report-{run.id}.html"
    else:
        _check_model_has_versions(reg, args.target)
        html, default = model_html(reg, args.target), f"mlops-report-{args.target}.html"
    path = write_report(args.output or default, html)
    if args.open:
        open_in_browser(path)
    return {"path": path, "bytes": len(html.encode())}, path


def _diff(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .diff import diff_runs, diff_versions, format_diff, to_json
    from .lifecycle import resolve_run_id
    from .report_cli import ingredients_of
    from .run_views import run_metrics

    if len(args.what) == 2:
        runs = reg.list_runs()
        a, b = (reg.get_run(resolve_run_id(reg, t, runs)) for t in args.what)
        result = diff_runs(
            a.to_json(),
            b.to_json(),
            ingredients=ingredients_of(reg, [a, b]),
            metrics_a=run_metrics(reg, a),
            metrics_b=run_metrics(reg, b),
        )
    elif len(args.what) == 3:
        name, va, vb = args.what
        _check_model_has_versions(reg, name)
        versions = [reg.get_model_version(name, _version_number_or_error(v)) for v in (va, vb)]
        runs = []
        for mv in versions:
            try:
                runs.append(reg.get_run(mv.run_id) if mv.run_id else None)
            except MlopsError:
                runs.append(None)  # its run was deleted: metrics only
        docs = [
            {"name": mv.name, "number": mv.number, "metadata": dict(mv.metadata)} for mv in versions
        ]
        result = diff_versions(
            docs[0],
            docs[1],
            run_a=runs[0].to_json() if runs[0] else None,
            run_b=runs[1].to_json() if runs[1] else None,
            ingredients=ingredients_of(reg, [r for r in runs if r is not None]),
        )
    else:
        raise MlopsError(
            "diff takes two runs (mlops diff RUN_A RUN_B) or a model and two versions "
            f"(mlops diff NAME VA VB), got {len(args.what)} arguments"
        )
    return to_json(result), format_diff(result)


def _version_number_or_error(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise MlopsError(f"a version is a number like 3, got {text!r}")
    return int(text)


def _runs_delete(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .lifecycle import delete_runs

    deleted = delete_runs(reg, args.ids)
    text = "\n".join(f"deleted run {i}" for i in deleted)
    return {"deleted": deleted}, text + "\nRun `mlops gc` to reclaim the artifacts only they used."


def _runs_prune(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .lifecycle import prune_runs

    doomed, kept = prune_runs(reg, args.keep_last, args.pipeline, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    lines = [f"  {r.id}  {r.pipeline}  {r.status}" for r in doomed]
    lines.append(
        f"prune {verb} {len(doomed)} run(s), keeping the last {args.keep_last} of each pipeline"
    )
    if kept:
        lines.append(
            f"kept {len(kept)} older run(s) that made a version in staging or production, or are "
            f"running: {', '.join(r.id for r in kept)}"
        )
    if doomed and not args.dry_run:
        lines.append("Run `mlops gc` to reclaim the artifacts only they used.")
    doc = {
        "deleted": [r.id for r in doomed],
        "kept": [r.id for r in kept],
        "dry_run": args.dry_run,
    }
    return doc, "\n".join(lines)


def _versions_delete(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .lifecycle import delete_versions

    deleted = delete_versions(reg, args.name, args.versions, force=args.force)
    lines = [f"deleted {args.name} version {n}" for n in deleted]
    lines.append(
        "Numbers are not reused: the next run still takes the next one. Run `mlops gc` to "
        "reclaim the artifacts only these versions used."
    )
    return {"name": args.name, "deleted": deleted}, "\n".join(lines)


def _cache_clear(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .lifecycle import clear_cache

    n = clear_cache(reg, args.step)
    which = f" of step '{args.step}'" if args.step else ""
    return {"deleted_entries": n, "step": args.step}, (
        f"deleted {n} cache entr{'y' if n == 1 else 'ies'}{which}; those steps run again next "
        "time. Run `mlops gc` to reclaim the artifacts only they named."
    )


def _init(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    from .init import init_project

    files, commands = init_project(args.folder)
    lines = [f"wrote {f}" for f in files] + ["", "Run it, then look at the run:"]
    lines += [f"  {c}" for c in commands]
    return {"files": files, "commands": commands}, "\n".join(lines)


# -- argument parsing -------------------------------------------------------------------------

_Handler = Callable[[Any, argparse.Namespace], "tuple[Any, str]"]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry",
        metavar="URI",
        default=argparse.SUPPRESS,
        help="registry folder or fsspec URL (default: .mlops, as for python -m mlops)",
    )
    common.add_argument(
        "-o",
        "--storage-option",
        metavar="KEY=VALUE",
        action="append",
        default=argparse.SUPPRESS,
        help="a storage option, e.g. -o client_kwargs.endpoint_url=http://... (repeatable)",
    )
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )

    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Inspect and change a registry. Run pipelines with: "
        "python -m mlops +pipeline=NAME",
        parents=[common],
    )
    parser.set_defaults(registry=".mlops", storage_option=[], json=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str,
        handler: _Handler,
        help: str,
        parents: list[argparse.ArgumentParser] | None = None,
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=parents or [common])
        p.set_defaults(handler=handler)
        return p

    add("models", _models, "list models with their number of versions and stage holders")
    p = add("versions", _versions, "list the versions of a model with stage, run and metadata")
    p.add_argument("name", metavar="NAME")
    p = add(
        "promote", _promote, "put a model version in a stage (staging, production, archived, none)"
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION", type=_version_number)
    p.add_argument("stage", metavar="STAGE")
    p.add_argument(
        "--force", action="store_true", help="archive the version that holds the stage now"
    )
    p = add("rollback", _rollback, "return a stage to the version that held it before")
    p.add_argument("name", metavar="NAME")
    p.add_argument("stage", metavar="STAGE")
    p = add("history", _history, "every stage change of a model, oldest first")
    p.add_argument("name", metavar="NAME")
    p = add("runs", _runs, "list runs, oldest first, with the params they changed and metrics")
    p.add_argument("--pipeline", metavar="P", help="only the runs of pipeline P")
    p.add_argument(
        "--status", metavar="S", choices=[str(s) for s in RunStatus], help="only runs with status S"
    )
    p.add_argument(
        "--limit", metavar="N", type=int, default=20, help="the last N runs (default 20; 0: all)"
    )
    p = add(
        "show-run",
        _show_run,
        "show one run (an id, a unique prefix, or latest): steps in order with params, "
        "outputs, logs, metrics, the final text",
    )
    p.add_argument("run_id", metavar="ID")
    p.add_argument("--logs", metavar="STEP", help="print the captured log of STEP")
    p = add("gc", _gc, "delete artifacts nothing references and leftover temporary files")
    p.add_argument(
        "--dry-run", action="store_true", help="list what would be deleted; delete nothing"
    )
    p.add_argument(
        "--grace",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_GRACE,
        help="keep files younger than this: a run may be writing them "
        f"(default {DEFAULT_GRACE:.0f})",
    )
    p.add_argument(
        "--ignore-running",
        action="store_true",
        help="delete unreferenced objects even while runs are in progress",
    )
    _add_issue13_commands(add, common)
    p = add(
        "check",
        _check,
        "verify every record and object hash; list what is damaged and what depends on it "
        "(exit 1 if anything is)",
    )
    _check_arguments(p)
    assert tuple(sub.choices) == COMMANDS
    return parser


def _add_issue13_commands(add: Callable[..., argparse.ArgumentParser], common: Any) -> None:
    """report, diff, and the commands that delete (and init, which needs no registry)."""
    p = add(
        "report",
        _report,
        "write one self-contained HTML report of a run or a model and print its path",
        parents=[_report_common()],
    )
    p.add_argument("kind", choices=["run", "model"], metavar="run|model")
    p.add_argument("target", metavar="ID|NAME", help="a run id (prefix, latest) or a model name")
    p.add_argument(
        "-o", "--output", metavar="PATH", help="where to write it (default mlops-report-ID.html)"
    )
    p.add_argument("--open", action="store_true", help="open it in the web browser")
    p = add(
        "diff",
        _diff,
        "what differs between two runs (RUN_A RUN_B) or two versions (NAME VA VB): params, "
        "code, data, metrics",
    )
    p.add_argument("what", nargs="+", metavar="RUN_A RUN_B | NAME VA VB")
    p = add("runs delete", _runs_delete, "delete runs (ids, unique prefixes, latest)")
    p.add_argument("ids", nargs="+", metavar="ID")
    p = add(
        "runs prune",
        _runs_prune,
        "delete all but the newest N runs of each pipeline (runs of live versions are kept)",
    )
    p.add_argument("--keep-last", metavar="N", type=int, required=True)
    p.add_argument("--pipeline", metavar="P", help="only prune the runs of pipeline P")
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    p = add(
        "versions delete",
        _versions_delete,
        "delete model versions (not in staging/production, not used by a run, unless --force)",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("versions", nargs="+", metavar="VERSION", type=_version_number)
    p.add_argument("--force", action="store_true", help="delete even a live or used version")
    p = add("cache clear", _cache_clear, "delete cache entries (all, or one step's)")
    p.add_argument("--step", metavar="S", help="only the entries of step S")
    p = add("init", _init, "write a small working project (pipeline YAML, steps, README)")
    p.add_argument("folder", metavar="FOLDER", nargs="?", default=".")
    p.set_defaults(needs_registry=False)


def _report_common() -> argparse.ArgumentParser:
    """``report`` uses ``-o`` for its output file: storage options are ``--storage-option``."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--registry", metavar="URI", default=argparse.SUPPRESS, help="registry folder or fsspec URL"
    )
    p.add_argument(
        "--storage-option",
        metavar="KEY=VALUE",
        action="append",
        default=argparse.SUPPRESS,
        help="a storage option (repeatable)",
    )
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    return p


#: commands of two words (``runs delete``): argv joins them before parsing
_TWO_WORDS = {c.split()[0] for c in COMMANDS if " " in c}


def _join_command(argv: list[str]) -> list[str]:
    """``["runs", "delete", "x"]`` -> ``["runs delete", "x"]``.

    Examples:
        >>> _join_command(["runs", "prune", "--keep-last", "2"]), _join_command(["runs"])
        (['runs prune', '--keep-last', '2'], ['runs'])
    """
    if len(argv) >= 2 and argv[0] in _TWO_WORDS and f"{argv[0]} {argv[1]}" in COMMANDS:
        return [f"{argv[0]} {argv[1]}", *argv[2:]]
    return argv


def _version_number(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a version is a number like 3, got {text!r}")
    return int(text)


def _storage_options(pairs: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``; values are JSON if they parse."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MlopsError(f"-o {pair!r}: write storage options as KEY=VALUE")
        try:
            parsed: Any = json.loads(value)
        except ValueError:
            parsed = value
        node = out
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = parsed
    return out


def _error(text: str) -> None:
    """A command's error: one line on stderr, a record of the ``mlops`` logger (ERROR)."""
    import logging

    from .console import say

    say(text, level=logging.ERROR)


def main(argv: list[str]) -> int:
    """Run one command; returns the exit code (0 ok, 1 error, 2 usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(_join_command(argv))
    except SystemExit as e:
        return int(e.code or 0)
    try:
        from .api import check_registry_exists
        from .registry import Registry

        reg = None
        if getattr(args, "needs_registry", True):
            check_registry_exists(args.registry)  # a mistyped folder is not an empty registry
            reg = Registry(args.registry, **_storage_options(args.storage_option))
        doc, text = args.handler(reg, args)
    except MlopsError as e:
        _error(f"Error: {e}")
        return 1
    except KeyboardInterrupt:  # pragma: no cover
        return 130
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, default=str))
    else:
        print(text)
    return 0
