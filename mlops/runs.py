"""Run records: one execution of a pipeline, stored as ``runs/<run-id>/run.json``.

A record is written when the run starts (status ``running``) and rewritten when it ends
(``completed`` or ``failed``), so a killed run is visible as one that never finished. It holds
the resolved config (secrets redacted), each step's status (``ran``, ``cached``, ``failed``,
``skipped``), timings and output artifacts, and the model version the run made or used.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import MlopsError, UnknownStepError, did_you_mean
from .redaction import RedactSavedConfigs, redact
from .store import ArtifactRef

if TYPE_CHECKING:
    from .registry import ModelVersion, Registry

__all__ = ["RedactSavedConfigs", "Run", "get_run", "list_runs", "new_run_id", "redact"]


def new_run_id() -> str:
    """A sortable, unique run id: UTC time to the microsecond, then random hex."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1e6) % 1_000_000:06d}-{secrets.token_hex(3)}"


@dataclass
class Run:
    """One execution of a pipeline, as recorded in the registry."""

    id: str
    pipeline: str
    status: str
    started: float
    finished: float | None
    config: dict[str, Any]
    step_records: dict[str, dict[str, Any]]
    model: dict[str, Any] | None
    registry: Registry = field(repr=False)
    error: str | None = None

    @property
    def steps(self) -> dict[str, str]:
        """Each step's status: ``ran``, ``cached``, ``failed`` or ``skipped``."""
        return {name: rec["status"] for name, rec in self.step_records.items()}

    @property
    def model_version(self) -> ModelVersion | None:
        """The model version this run registered or used, if its pipeline has a model."""
        if not self.model or self.model.get("number") is None:
            return None
        return self.registry.get_model_version(self.model["name"], int(self.model["number"]))

    def output_refs(self, step: str) -> dict[str, ArtifactRef]:
        if step not in self.step_records:
            raise UnknownStepError(
                f"run {self.id} has no step '{step}'.{did_you_mean(step, self.step_records)}"
            )
        outs = self.step_records[step].get("outputs") or {}
        return {k: ArtifactRef.from_json(v) for k, v in outs.items()}

    def load(self, step: str, output: str | None = None) -> Any:
        """Load an output of ``step`` (the only one when ``output`` is omitted)."""
        refs = self.output_refs(step)
        if output is None:
            if len(refs) != 1:
                raise MlopsError(
                    f"step '{step}' has outputs {sorted(refs)}; name one: "
                    f"run.load({step!r}, OUTPUT)"
                )
            (ref,) = refs.values()
        else:
            if output not in refs:
                raise UnknownStepError(
                    f"step '{step}' of run {self.id} has no output '{output}'; outputs: "
                    f"{', '.join(sorted(refs)) or '(none)'}.{did_you_mean(output, refs)}"
                )
            ref = refs[output]
        return self.registry.store.get(ref)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "config": self.config,
            "steps": self.step_records,
            "model": self.model,
            "error": self.error,
            "host": os.uname().nodename if hasattr(os, "uname") else "",
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], registry: Registry) -> Run:
        return cls(
            id=doc["id"],
            pipeline=doc["pipeline"],
            status=doc["status"],
            started=doc["started"],
            finished=doc.get("finished"),
            config=doc.get("config") or {},
            step_records=doc.get("steps") or {},
            model=doc.get("model"),
            registry=registry,
            error=doc.get("error"),
        )

    def save(self) -> None:
        self.registry.storage.write_json(f"runs/{self.id}/run.json", self.to_json())


def list_runs(registry: Registry, pipeline: str | None = None) -> list[Run]:
    """The runs recorded in ``registry``, oldest first (run ids sort by start time)."""
    paths = [f"runs/{r}/run.json" for r in registry.storage.list("runs") if not r.startswith(".")]
    docs = registry.storage.read_json_many(paths)
    return [
        Run.from_json(docs[p], registry)
        for p in paths
        if p in docs and (pipeline is None or docs[p].get("pipeline") == pipeline)
    ]


def get_run(registry: Registry, run_id: str) -> Run:
    """The run ``run_id``; RunNotFoundError if there is none."""
    from .registry import check_name

    check_name("run id", run_id)
    doc = registry.storage.read_json(f"runs/{run_id}/run.json")
    if doc is None:
        from .errors import RunNotFoundError

        raise RunNotFoundError(f"no run '{run_id}' in registry {registry.uri}")
    return Run.from_json(doc, registry)
