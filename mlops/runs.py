"""Run records: one execution of a pipeline, stored as ``runs/<run-id>/run.json``.

A record is written when the run starts (status ``running``) and rewritten when it ends
(``completed`` or ``failed``), so a killed run is visible as one that never finished. It holds
the resolved config (secrets redacted), each step's status (``ran``, ``cached``, ``failed``,
``skipped``), timings and output artifacts, and the model version the run made or used.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import MlopsError, UnknownStepError, did_you_mean
from .storage import redact_uri
from .store import ArtifactRef

if TYPE_CHECKING:
    from .registry import ModelVersion, Registry

__all__ = ["RedactSavedConfigs", "Run", "get_run", "list_runs", "new_run_id", "redact"]

_STRONG_SECRET_WORDS = ("secret", "password", "passwd", "token", "credential", "private")


def new_run_id() -> str:
    """A sortable, unique run id: UTC time to the microsecond, then random hex."""
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return f"{stamp}-{int(now * 1e6) % 1_000_000:06d}-{secrets.token_hex(3)}"


def redact(value: Any, _key: str = "") -> Any:
    """A copy of ``value`` with the values of secret-looking keys replaced by ``'***'``.

    A key is secret when its last part contains ``secret``, ``password``, ``token``,
    ``credential`` or ``private``, has the word ``auth``, or ends in ``key`` / ``key_id``
    (``key``, ``api_key``, ``access_key_id``; not ``key_column``, not ``..._url``), at any depth;
    passwords inside URLs are hidden too. Used on every config saved in a run record.

    Examples:
        >>> redact({"registry": {"storage_options": {"key": "AK", "endpoint_url": "http://x"}}})
        {'registry': {'storage_options': {'key': '***', 'endpoint_url': 'http://x'}}}
        >>> redact({"uri": "https://me:pw@host/r"})
        {'uri': 'https://me:***@host/r'}
    """
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v, _key) for v in value]
    if value is not None and _is_secret_key(_key):
        return "***"
    if isinstance(value, str):
        # a password inside a URL (s3://user:password@host/...) or an override (key=secret)
        return _redact_override(redact_uri(value) if "@" in value else value)
    return value


def _redact_override(value: Any) -> Any:
    """Hide secret values in override strings such as Hydra saves them.

    Examples:
        >>> _redact_override("+registry.storage_options.secret=abc,steps.train.C=1")
        '+registry.storage_options.secret=***,steps.train.C=1'
    """
    if not isinstance(value, str) or "=" not in value:
        return value
    parts = []
    for item in value.split(","):
        key, sep, _ = item.partition("=")
        parts.append(f"{key}=***" if sep and _is_secret_key(key) else item)
    return ",".join(parts)


def _is_secret_key(key: str) -> bool:
    """Whether a config key names a credential, judged by its last dotted part.

    Examples:
        >>> [_is_secret_key(k) for k in ("key", "aws_access_key_id", "client_secret", "api-token")]
        [True, True, True, True]
        >>> [_is_secret_key(k) for k in ("key_column", "author", "endpoint_url", "n_keys_seen")]
        [False, False, False, False]
    """
    last = key.rsplit(".", 1)[-1].lstrip("+~").lower()
    if "url" in last:
        return False
    if any(w in last for w in _STRONG_SECRET_WORDS):
        return True
    words = [w for w in re.split(r"[_\-\s]+", last) if w]
    if any(w in ("auth", "authorization") for w in words):
        return True
    # `key`, `api_key`, `access_key_id`, `account_key`; not `key_column`
    return "key" in words and words[-1] in ("key", "id")


class RedactSavedConfigs:
    """A Hydra callback that redacts the configs Hydra saves next to a job's outputs.

    Hydra writes ``.hydra/config.yaml``, ``hydra.yaml`` and ``overrides.yaml`` (and
    ``multirun.yaml`` for sweeps) before the job starts, with every override verbatim; this
    rewrites them with :func:`redact` so that credentials given on the command line stay out of
    the outputs folder too. Registered in ``mlops/conf/mlops.yaml`` under ``hydra.callbacks``.
    """

    def on_job_start(self, config: Any, **kwargs: Any) -> None:
        from pathlib import Path

        from omegaconf import OmegaConf

        hc = config.hydra
        # Most runs carry no secret at all: find that out from the config in memory, so that the
        # saved files are only read back (YAML parsing is slow) when one of them needs rewriting.
        overrides = [str(o) for o in hc.overrides.task]
        job = OmegaConf.to_container(config, resolve=False)
        assert isinstance(job, dict)
        job.pop("hydra", None)
        if redact(overrides) == overrides and redact(job) == job:
            return
        files = []
        if hc.get("output_subdir") is not None:
            folder = Path(hc.runtime.output_dir) / str(hc.output_subdir)
            files += [folder / n for n in ("config.yaml", "hydra.yaml", "overrides.yaml")]
        if str(hc.get("mode")) == "RunMode.MULTIRUN":
            files.append(Path(hc.sweep.dir) / "multirun.yaml")
        for path in files:
            if not path.is_file():
                continue
            data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            redacted = redact(data)
            if redacted != data:
                tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
                OmegaConf.save(OmegaConf.create(redacted), tmp)
                os.replace(tmp, path)

    def __getattr__(self, name: str) -> Any:  # Hydra calls the other hooks: nothing to do
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


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
