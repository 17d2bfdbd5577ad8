"""Redaction: which config keys hold credentials, and copies of values with them hidden.

One rule decides what is secret (:func:`is_secret_key`), and every place that shows or stores a
config, an override or a step param goes through it: run records, Hydra's saved configs
(:class:`RedactSavedConfigs`), sweep job lines and summaries, Hydra's own log lines, cache
entries and plan lines. Hiding is by key name, at any depth, plus passwords inside URLs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from .storage import redact_uri

__all__ = ["RedactSavedConfigs", "is_secret_key", "redact", "redact_override"]

_STRONG_SECRET_WORDS = ("secret", "password", "passwd", "token", "credential", "private")


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
    if value is not None and is_secret_key(_key):
        return "***"
    if isinstance(value, str):
        # a password inside a URL (s3://user:password@host/...) or an override (key=secret)
        return redact_override(redact_uri(value) if "@" in value else value)
    return value


def redact_override(value: Any) -> Any:
    """Hide secret values in override strings such as Hydra saves them.

    Examples:
        >>> redact_override("+registry.storage_options.secret=abc,steps.train.C=1")
        '+registry.storage_options.secret=***,steps.train.C=1'
    """
    if not isinstance(value, str) or "=" not in value:
        return value
    parts = []
    for item in value.split(","):
        key, sep, _ = item.partition("=")
        parts.append(f"{key}=***" if sep and is_secret_key(key) else item)
    return ",".join(parts)


def is_secret_key(key: str) -> bool:
    """Whether a config key names a credential, judged by its last dotted part.

    Examples:
        >>> [is_secret_key(k) for k in ("key", "aws_access_key_id", "client_secret", "api-token")]
        [True, True, True, True]
        >>> [is_secret_key(k) for k in ("key_column", "author", "endpoint_url", "n_keys_seen")]
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
