"""Registry commands for people: ``mlops models``, ``mlops versions NAME``, ``mlops gc`` ...

Each command takes ``--registry URI`` (default ``.mlops``, as for ``python -m mlops``),
``-o KEY=VALUE`` storage options, and ``--json`` for scripts; otherwise it prints a table.
A mistake (an unknown model, an unreachable registry) is one line on stderr and exit code 1;
a usage error is argparse's message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .errors import MlopsError
from .gc import DEFAULT_GRACE, collect_garbage

__all__ = ["COMMANDS", "main"]

#: Every command, in the order of ``mlops --help`` (the README documents each one).
COMMANDS = ("models", "versions", "promote", "rollback", "history", "runs", "show-run", "gc")


# -- output -----------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as a plain text table with aligned columns.

    Examples:
        >>> print(_table(["A", "BB"], [[1, "x"], [22, None]]))
        A   BB
        1   x
        22  -
    """
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = [list(headers), *cells]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    return "\n".join(line.rstrip() for line in out)


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
    text = _table(
        ["MODEL", "VERSIONS", "STAGING", "PRODUCTION"],
        [[r["name"], r["versions"], r["staging"], r["production"]] for r in rows],
    )
    return rows, text


def _versions(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    versions = reg.list_model_versions(args.name)
    if not versions:
        reg.get_model_version(args.name, "latest")  # raises a helpful ModelNotFoundError
    rows = []
    for mv in versions:
        status = str(mv.status)
        if not mv.complete and mv.run_id:
            try:
                status = f"incomplete (run {reg.get_run(mv.run_id).status})"
            except MlopsError:
                status = "incomplete (run not found)"
        rows.append(
            {
                "version": mv.number,
                "status": str(mv.status),
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

    text = _table(
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
        reg.get_model_version(args.name, "latest")  # an unknown model is an error
        return [], f"Model '{args.name}' has no stage changes yet."
    text = _table(
        ["#", "TIME", "STAGE", "VERSION", "PREVIOUS", "REASON", "USER", "RUN"],
        [
            [c.seq, _when(c.time), c.stage, c.version, c.previous, c.reason, c.user, c.run_id]
            for c in history
        ],
    )
    return [c.to_json() for c in history], text


def _runs(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    if args.pipeline is not None:
        from .names import check_name

        check_name("pipeline", args.pipeline)
    runs = reg.list_runs(pipeline=args.pipeline)
    rows = [
        {
            "id": r.id,
            "pipeline": r.pipeline,
            "status": str(r.status),
            "started": r.started,
            "seconds": (r.finished - r.started) if r.finished else None,
            "model": r.model,
            "steps": r.steps,
        }
        for r in runs
    ]
    if not rows:
        where = f" of pipeline '{args.pipeline}'" if args.pipeline else ""
        return rows, f"No runs{where} in {reg.uri} yet."

    def model(m: dict[str, Any] | None) -> str | None:
        return f"{m['name']} v{m['number']}" if m and m.get("number") is not None else None

    text = _table(
        ["RUN", "PIPELINE", "STATUS", "STARTED", "SECONDS", "MODEL"],
        [
            [
                r["id"],
                r["pipeline"],
                r["status"],
                _when(r["started"]),
                f"{r['seconds']:.2f}" if r["seconds"] is not None else None,
                model(r["model"]),
            ]
            for r in rows
        ],
    )
    return rows, text


def _show_run(reg: Any, args: argparse.Namespace) -> tuple[Any, str]:
    run = reg.get_run(args.run_id)
    doc = run.to_json()
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
    if run.error:
        lines.append(f"error     {run.error}")
    rows = []
    for name, rec in run.step_records.items():
        outs = rec.get("outputs") or {}
        rows.append(
            [
                name,
                rec.get("status"),
                f"{rec['seconds']:.2f}" if isinstance(rec.get("seconds"), (int, float)) else None,
                ", ".join(f"{k}={v['id'][:12]}" for k, v in sorted(outs.items())) or None,
            ]
        )
    lines += ["", _table(["STEP", "STATUS", "SECONDS", "OUTPUTS"], rows)]
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

    def add(name: str, handler: _Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
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
    p = add("runs", _runs, "list runs, oldest first")
    p.add_argument("--pipeline", metavar="P", help="only the runs of pipeline P")
    p = add("show-run", _show_run, "show one run: status, model, steps and their outputs")
    p.add_argument("run_id", metavar="ID")
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
    assert tuple(sub.choices) == COMMANDS
    return parser


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


def main(argv: list[str]) -> int:
    """Run one command; returns the exit code (0 ok, 1 error, 2 usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        from .api import check_registry_exists
        from .registry import Registry

        check_registry_exists(args.registry)  # a mistyped folder is not an empty registry
        reg = Registry(args.registry, **_storage_options(args.storage_option))
        doc, text = args.handler(reg, args)
    except MlopsError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover
        return 130
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True, default=str))
    else:
        print(text)
    return 0
