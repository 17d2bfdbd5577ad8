"""Real records for the report and diff tests: the iris pipelines run in a temporary registry.

The records are read back as the plain JSON the registry stores (run.json, version records,
metadata, stage changes, cache entries), which is exactly what the report adapters and
:mod:`mlops.diff` take, so these tests do not depend on the registry's Python classes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import run_mlops

from mlops.registry import Registry

MODEL = "iris_classifier"


@dataclass(frozen=True)
class IrisRecords:
    """What the runs left in the registry, by role."""

    registry: Path
    runs: dict[str, dict[str, Any]]  # run id -> run.json, oldest first
    roles: dict[str, str]  # role -> run id
    versions: list[dict[str, Any]]  # version.json + "metadata", by number
    history: list[dict[str, Any]]  # stage changes, oldest first
    entries: dict[str, dict[str, Any]]  # cache key -> cache entry

    def run(self, role: str) -> dict[str, Any]:
        return self.runs[self.roles[role]]


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


def read_records(registry: Path, roles: dict[str, str]) -> IrisRecords:
    """Load every record of ``registry`` (a local folder) as plain JSON."""
    runs = {p.parent.name: _read(p) for p in sorted(registry.glob("runs/*/run.json"))}
    reg = Registry(str(registry))
    versions = [
        {
            "name": mv.name,
            "number": mv.number,
            "run_id": mv.run_id,
            "created": mv.created,
            "status": str(mv.status),
            "metadata": dict(mv.metadata),
        }
        for mv in reg.list_model_versions(MODEL)
    ]
    history = [c.to_json() for c in reg.stage_history(MODEL)]
    entries = {}
    for p in registry.glob("cache/*/*.json"):
        doc = _read(p)
        if isinstance(doc, dict) and "key" in doc and "ingredients" in doc:
            entries[doc["key"]] = doc
    return IrisRecords(registry, runs, roles, versions, history, entries)


_STEPS: list[tuple[str, list[str], bool]] = [
    # role, arguments of `python -m mlops`, whether it must succeed
    ("first", ["+pipeline=train_and_promote"], True),
    ("small_c", ["+pipeline=train_and_promote", "steps.train.C=0.1"], True),
    ("not_promoted", ["+pipeline=train_and_promote", "steps.promote.threshold=1.01"], True),
    ("staging", ["promote", MODEL, "3", "staging"], True),
    ("rollback", ["rollback", MODEL, "production"], True),
    ("predict", ["+pipeline=do_predictions"], True),
    ("failed", ["+pipeline=train_and_promote", "steps.train.C=-1"], False),
]

_MADE: dict[str, IrisRecords] = {}


def iris_records(tmp_path_factory: pytest.TempPathFactory) -> IrisRecords:
    """Run the iris workflow once per test session (v1..v4, a staging holder, a rollback, a
    prediction run and a failed run) and read what it recorded."""
    if "iris" in _MADE:
        return _MADE["iris"]
    root = tmp_path_factory.mktemp("iris")
    registry = root / "registry"
    work = root / "work"
    work.mkdir()
    roles: dict[str, str] = {}
    for role, args, ok in _STEPS:
        if args[0].startswith("+"):
            result = run_mlops(*args, f"registry.uri={registry}", cwd=work)
        else:
            result = run_mlops(*args, "--registry", str(registry), cwd=work)
        assert (result.returncode == 0) == ok, result.output
        if args[0].startswith("+"):
            new = sorted(p.name for p in (registry / "runs").iterdir())
            roles[role] = next(r for r in reversed(new) if r not in roles.values())
    _MADE["iris"] = read_records(registry, roles)
    return _MADE["iris"]


def iris_plan(registry: Path, *overrides: str) -> dict[str, Any]:
    """The plan of ``train_and_promote`` with ``overrides`` (what ``plan=true`` decides), as
    the plain dict the plan report reads."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from mlops.cache import CacheLookup, decide
    from mlops.compiler import compile_pipeline
    from mlops.report import plan_dict
    from mlops.schema import register

    register()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module("mlops.conf", version_base=None):
            cfg = compose(
                "mlops",
                overrides=["+pipeline=train_and_promote", f"registry.uri={registry}", *overrides],
            )
    finally:
        GlobalHydra.instance().clear()
    reg = Registry(str(registry))
    plan = compile_pipeline(cfg, reg.models)
    decisions = decide(CacheLookup(plan, reg.cache, reg.artifacts), explain=True)
    doc = plan_dict(plan, decisions)
    doc["overrides"] = list(overrides)
    return doc
