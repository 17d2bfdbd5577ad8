"""Fuzz every record type: every reader returns the true state or names the damaged record.

For each record of a registry that has every kind (``registry_builder``), generated damage --
truncation at sampled offsets, garbage bytes, valid JSON of the wrong shape (list, string, null,
missing keys, wrong types, huge and negative numbers, nested nulls), and a record copied from
another model, version or sequence position -- is applied, and every reader of the Python API is
called with a time limit. Each must:

* terminate (a hang is a failure);
* return the state it returned before the damage, or another state that the damaged record
  actually says -- but never the state of the registry *without* that record (the silent
  fall-back to an older state or the silent omission the issue found);
* or raise one :class:`DamagedRecordError` naming a record (the damaged one, or a record that the
  damaged one contradicts);

and ``mlops check`` must list the damaged record whenever a reader refused it. A sample of the
same cases goes through the command line (``mlops versions``, ``promote``, ``gc`` ...) and
``python -m mlops +pipeline=do_predictions``: exit 0 or 1, one ``Error:`` line naming the record,
never a traceback, always within the time limit.
"""

from __future__ import annotations

import functools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops.check import check_registry
from mlops.errors import DamagedRecordError, MlopsError
from mlops.gc import collect_garbage
from mlops.registry import Registry

sys.path.insert(0, str(Path(__file__).parent))
from registry_builder import build_registry, run_id  # noqa: E402

TIMEOUT = 10.0
#: wrong-shape variants tried per record (sampled from all of them, seeded)
PER_RECORD = 12
SEED = 20261130

# -- what the readers return, as plain comparable values --------------------------------------


def _version(mv: Any) -> Any:
    return (
        mv.name,
        mv.number,
        str(mv.status),
        mv.stage,
        mv.run_id,
        sorted((k, r.id) for k, r in mv.artifacts.items()),
        json.dumps(dict(mv.metadata), sort_keys=True, default=str),
        [json.dumps(n.to_json(), sort_keys=True, default=str) for n in mv.notes],
    )


def _run(r: Any) -> Any:
    return (r.id, r.pipeline, str(r.status), r.started, r.finished, r.steps, r.error)


def _models(reg: Registry) -> Any:
    out = []
    for name in reg.list_models():
        current = reg.models.current_stages(name)
        out.append((name, reg.models.last_number(name), dict(current.holders) if current else {}))
    return out


def _run_number(r: Any, i: int) -> Any:
    return _run(r.get_run(run_id(i)))


READERS: dict[str, Callable[[Registry], Any]] = {
    "models": _models,
    "versions iris": lambda r: [_version(v) for v in r.list_model_versions("iris")],
    "versions other": lambda r: [_version(v) for v in r.list_model_versions("other")],
    "latest iris": lambda r: _version(r.get_model_version("iris", "latest")),
    "production iris": lambda r: _version(r.get_model_version("iris", "production")),
    "staging iris": lambda r: _version(r.get_model_version("iris", "staging")),
    "archived iris": lambda r: _version(r.get_model_version("iris", "archived")),
    "version 2 iris": lambda r: _version(r.get_model_version("iris", 2)),
    "production other": lambda r: _version(r.get_model_version("other", "production")),
    "history iris": lambda r: [c.to_json() for c in r.stage_history("iris")],
    "history other": lambda r: [c.to_json() for c in r.stage_history("other")],
    "runs": lambda r: [_run(x) for x in r.list_runs()],
    "runs train": lambda r: [_run(x) for x in r.list_runs("train")],
    "run of version 1": lambda r: [
        _run(r.get_run(rid)) for rid in [r.get_model_version("other", 1).run_id] if rid
    ],
    **{f"run {i}": functools.partial(_run_number, i=i) for i in range(1, 7)},
    "gc": lambda r: sorted(p for p, _ in collect_garbage(r, dry_run=True, grace=0).deleted),
}

#: readers that write: run on a copy of the registry
WRITERS: dict[str, Callable[[Registry], Any]] = {
    "promote iris 3 production": lambda r: r.set_stage("iris", 3, "production", force=True).seq,
    "rollback iris production": lambda r: r.rollback("iris", "production").seq,
    "note other 1": lambda r: r.models.add_note("other", 1, {"k": 1}).version,
}


class Outcome:
    """What a reader did: a value, or an error."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    def __repr__(self) -> str:
        return f"error {self.error!r}" if self.error is not None else f"value {self.value!r:.300}"


def _call(fn: Callable[[Registry], Any], uri: str) -> Outcome:
    """``fn(Registry(uri))`` in a thread with a time limit; a hang fails the test."""
    box: list[Outcome] = []

    def target() -> None:
        try:
            box.append(Outcome(value=fn(Registry(uri))))
        except BaseException as e:  # noqa: BLE001 - judged by the caller
            box.append(Outcome(error=e))

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(TIMEOUT)
    if t.is_alive():
        raise AssertionError(f"{getattr(fn, '__name__', fn)} did not finish in {TIMEOUT} s")
    return box[0]


# -- damage ---------------------------------------------------------------------------------

WRONG_VALUES: list[Any] = [
    None,
    "x",
    [],
    {},
    [None],
    {"a": None},
    True,
    10**30,
    -1,
    1.5e308,
    -(10**400),
]


def _shape_mutations(doc: Any, rng: random.Random) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = [
        ("a list", b"[]"),
        ("a string", b'"x"'),
        ("null", b"null"),
        ("a number", b"12"),
        ("an empty object", b"{}"),
    ]
    if not isinstance(doc, dict):
        return out
    paths: list[tuple[str, ...]] = []
    for k, v in doc.items():
        paths.append((k,))
        if isinstance(v, dict):
            for k2, v2 in list(v.items())[:4]:
                paths.append((k, k2))
                if isinstance(v2, dict):
                    paths.extend((k, k2, k3) for k3 in list(v2)[:4])
    for path in paths:
        if len(path) == 1:
            d = dict(doc)
            del d[path[0]]
            out.append((f"without {path[0]}", json.dumps(d).encode()))
        for value in rng.sample(WRONG_VALUES, 3):
            d = json.loads(json.dumps(doc))
            node = d
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value
            text = json.dumps(d).replace("1.5e+308", "1.5e999")  # also an infinite float
            out.append((f"{'.'.join(path)}={value!r:.20}", text.encode()))
    return out


def _damage(
    rel: str, data: bytes, twins: list[bytes], rng: random.Random
) -> list[tuple[str, bytes]]:
    """Generated damage for the record ``rel`` whose good bytes are ``data``."""
    cases: list[tuple[str, bytes]] = []
    offsets = sorted({0, len(data) - 1, *rng.sample(range(len(data)), 2)})
    cases += [(f"truncated at {o}", data[:o]) for o in offsets if o < len(data)]
    cases += [
        ("garbage", bytes(rng.randrange(256) for _ in range(40))),
        ("not utf-8", b'{"a": "\xff\xfe"}'),
        ("deeply nested", b"[" * 100_000 + b"]" * 100_000),
    ]
    doc = json.loads(data)
    shapes = _shape_mutations(doc, rng)
    cases += shapes[:5] + rng.sample(shapes[5:], min(len(shapes) - 5, PER_RECORD))
    cases += [(f"copied from a twin {i}", twin) for i, twin in enumerate(twins) if twin != data]
    return cases


def _twins(root: Path, rel: str) -> list[bytes]:
    """Records of the same kind elsewhere: another model, version, run or position."""
    parts = rel.split("/")
    found = []
    for p in sorted(root.glob("/".join("*" if i in (1, 3) else s for i, s in enumerate(parts)))):
        if p.is_file() and p.relative_to(root).as_posix() != rel:
            found.append(p.read_bytes())
    if parts[0] == "models" and parts[2] in ("stages", "notes") and parts[3] != "head.json":
        found += [p.read_bytes() for p in sorted(root.glob(f"models/*/{parts[2]}/0*.json"))]
    return found[:3]


# -- the oracle -----------------------------------------------------------------------------


def _judge(rel: str, case: str, reader: str, got: Outcome, before: Outcome, absent: Outcome) -> str:
    """ "" if the outcome is allowed, else why not."""
    err = got.error
    if err is None:
        if before.error is None and got.value == before.value:
            return ""
        if absent.error is None and got.value == absent.value:
            return "silently read the state without the damaged record"
        return ""  # the state the (well-formed) record now says
    if isinstance(err, DamagedRecordError):
        if err.path is None or err.path not in str(err):
            return f"a DamagedRecordError that does not name its record: {err}"
        return ""
    if isinstance(err, MlopsError) and before.error is not None:
        return ""  # the reader fails the same way without the damage (e.g. no such stage)
    if isinstance(err, MlopsError) and type(err) is type(absent.error):
        return f"the error of the registry without the record, not a damage error: {err}"
    if isinstance(err, MlopsError):
        return ""  # a clear error for the state the record says (e.g. no holder)
    return f"{type(err).__name__}: {err}"


def _readers_of(rel: str) -> dict[str, Callable[[Registry], Any]]:
    """The readers a record can affect (every reader that could read it, and gc)."""
    top, name = rel.split("/")[:2]
    if top == "models":
        picked = {k: f for k, f in READERS.items() if name in k or k in ("models", "gc")}
        return picked | (
            {"run of version 1": READERS["run of version 1"]} if name == "other" else {}
        )
    if top == "runs":
        rid = [i for i in range(1, 7) if run_id(i) == name]
        picked = {k: f for k, f in READERS.items() if k.startswith("runs") or k == "gc"}
        return picked | {f"run {i}": READERS[f"run {i}"] for i in rid}
    return {"gc": READERS["gc"]}


def _records(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.json")
        if p.is_file() and not p.name.startswith(".")
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "registry"
    build_registry(str(root))
    return root


def _sequence_tail(root: Path, rel: str) -> list[Path]:
    """``rel`` and the records after it in its sequence (what a fall-back would skip)."""
    parts = rel.split("/")
    if parts[0] != "models" or parts[-1] == "head.json":
        return [root / rel]
    if parts[2] == "versions":
        n = int(parts[3])
        return [
            p
            for p in (root / "models" / parts[1] / "versions").glob("*/*.json")
            if p.parent.name.isdigit() and int(p.parent.name) >= n
        ]
    n = int(parts[3][:8])
    return [p for p in (root / "models" / parts[1] / parts[2]).glob("0*.json") if int(p.stem) >= n]


@pytest.mark.slow
def test_every_reader_on_every_damaged_record(pristine: Path, tmp_path: Path) -> None:
    """Generated damage on every record: each reader terminates, and is right or names it."""
    rng = random.Random(SEED)
    work = tmp_path / "registry"
    shutil.copytree(pristine, work)
    uri = str(work)
    before = {name: _call(fn, uri) for name, fn in READERS.items()}
    spare = tmp_path / "spare"
    written_before = {}
    for name, fn in WRITERS.items():
        shutil.copytree(pristine, spare)
        written_before[name] = _call(fn, str(spare))
        shutil.rmtree(spare)
    for name, out in before.items():
        assert out.error is None or name.startswith(("archived",)), (name, out)
    failures: list[str] = []
    cases = 0
    for rel in _records(work):
        path = work / rel
        good = path.read_bytes()
        # the registry without this record (and, for a sequence, the ones after it)
        tail = {p: p.read_bytes() for p in _sequence_tail(work, rel)}
        for p in tail:
            p.unlink()
        readers = _readers_of(rel)
        absent = {name: _call(fn, uri) for name, fn in readers.items()}
        for p, data in tail.items():
            p.write_bytes(data)
        for case, bad in _damage(rel, good, _twins(work, rel), rng):
            cases += 1
            path.write_bytes(bad)
            refused = False
            for name, fn in readers.items():
                got = _call(fn, uri)
                why = _judge(rel, case, name, got, before[name], absent[name])
                if why:
                    failures.append(f"{rel} [{case}] {name}: {why}")
                refused |= isinstance(got.error, DamagedRecordError)
            report = _call(lambda r: check_registry(r), uri)
            if report.error is not None:
                failures.append(f"{rel} [{case}] mlops check: {report}")
            elif refused and not report.value.damage:
                failures.append(f"{rel} [{case}]: a reader refused it, `mlops check` found nothing")
            path.write_bytes(good)
    assert cases > 700
    writes = 0
    model = work / "models" / "iris"
    snapshot = {p: p.read_bytes() for p in model.rglob("*") if p.is_file()}
    for rel in [r for r in _records(work) if r.startswith("models/iris/") and "head" not in r]:
        good = (work / rel).read_bytes()
        for case, bad in _damage(rel, good, _twins(work, rel), rng)[::5]:
            for name, fn in WRITERS.items():
                writes += 1
                (work / rel).write_bytes(bad)
                got = _call(fn, uri)  # a hang (the stage-change loop) fails here
                err = got.error
                expected = type(written_before[name].error)
                if (
                    err is not None
                    and not isinstance(err, DamagedRecordError)
                    and (not isinstance(err, MlopsError) or type(err) is not expected)
                ):
                    failures.append(f"{rel} [{case}] {name}: {type(err).__name__}: {err}")
                for p in model.rglob("*"):  # undo the write
                    if p.is_file() and p not in snapshot:
                        p.unlink()
                for p, data in snapshot.items():
                    p.write_bytes(data)
    assert writes > 80
    assert not failures, f"{len(failures)} failures of {cases} cases:\n" + "\n".join(failures[:60])


# -- the command line, on a sample of the same damage ---------------------------------------


@pytest.fixture(scope="module")
def iris_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris_classifier v1 and v2 (a real estimator each), v2 in production after v1."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("cli") / "registry"
    reg = Registry(str(root))
    X, y = load_iris(return_X_y=True, as_frame=True)
    for c in (0.5, 1.0):
        model = LogisticRegression(C=c, max_iter=300).fit(X, y)
        mv = reg.register_model_version(
            "iris_classifier", {"trained_model": reg.artifacts.put(model)}
        )
        reg.set_stage("iris_classifier", mv.number, "production", force=True)
    return root


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,  # a hang is a failure
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


STAGE = "models/iris_classifier/stages/00000002.json"
V2 = "models/iris_classifier/versions/00000002/version.json"
C2 = "models/iris_classifier/versions/00000002/complete.json"
C1 = "models/iris_classifier/versions/00000001/complete.json"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rel", "damage", "commands"),
    [
        pytest.param(
            STAGE,
            lambda good, root: good[: len(good) // 2],
            [
                ["history", "iris_classifier"],
                ["versions", "iris_classifier"],
                ["models"],
                ["promote", "iris_classifier", "1", "production", "--force"],
                ["rollback", "iris_classifier", "production"],
                ["+pipeline=do_predictions", "model.version=production"],
            ],
            id="truncated-last-stage-change",
        ),
        pytest.param(
            V2,
            lambda good, root: b'{"number": "2", "name": []}',
            [
                ["versions", "iris_classifier"],
                ["+pipeline=do_predictions", "model.version=latest"],
                ["gc", "--dry-run"],
            ],
            id="version-wrong-shape",
        ),
        pytest.param(
            C2,
            lambda good, root: (root / C1).read_bytes(),
            [["+pipeline=do_predictions", "model.version=2"], ["versions", "iris_classifier"]],
            id="completion-copied-from-version-1",
        ),
        pytest.param(
            "runs",
            None,
            [["runs"], ["show-run", "20260101-000000-000000-cccccc"], ["gc"]],
            id="run-record-garbage",
        ),
    ],
)
def test_the_command_line_names_the_damaged_record(
    iris_registry: Path,
    tmp_path: Path,
    rel: str,
    damage: Callable[[bytes, Path], bytes] | None,
    commands: list[list[str]],
) -> None:
    """Each command: exit 1 with one `Error:` line naming the record (or the true state),
    never a traceback, never the older state, within the time limit."""
    root = tmp_path / "registry"
    shutil.copytree(iris_registry, root)
    if damage is None:  # a run record of garbage
        rel = "runs/20260101-000000-000000-cccccc/run.json"
        (root / rel).parent.mkdir(parents=True)
        (root / rel).write_bytes(b'{"id": "20260101-000000-000000-cccccc", "status": 7')
    else:
        (root / rel).write_bytes(damage((root / rel).read_bytes(), root))
    for args in commands:
        pipeline = args[0].startswith("+")
        full = [*args, f"registry.uri={root}"] if pipeline else [*args, "--registry", str(root)]
        out = _cli(full, tmp_path)
        text = out.stdout + out.stderr
        assert "Traceback" not in text, text
        assert out.returncode == 1, f"mlops {' '.join(args)}:\n{text}"
        errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and f"record '{rel}' is damaged" in errors[0], text
        if pipeline:
            assert "predict" not in out.stdout  # nothing ran on an older version
