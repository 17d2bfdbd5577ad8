"""Redaction: which config keys hold credentials, and copies of values with them hidden.

One rule decides what is secret (:func:`is_secret_key`), and every place that shows or stores a
config, an override or a step param goes through it: run records, Hydra's saved configs
(:class:`RedactSavedConfigs`), sweep job lines and summaries, Hydra's own log lines, cache
entries and plan lines. Hiding is by key name, at any depth, plus passwords inside URLs.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

__all__ = [
    "RedactSavedConfigs",
    "RedactingFilter",
    "RedactingStream",
    "config_secret_values",
    "hide_values",
    "is_secret_key",
    "redact",
    "redact_override",
    "redact_text",
    "redacted_output",
    "secret_values",
]

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
        >>> redact_override("api_token=t1,t2")
        'api_token=***'
    """
    if not isinstance(value, str) or "=" not in value:
        return value
    parts = []
    secret = False  # inside the values of a secret key: `key=a,b` sweeps over two secrets
    for item in value.split(","):
        key, sep, _ = item.partition("=")
        if sep and not any(c.isspace() for c in key):
            secret = is_secret_key(key)
            parts.append(f"{key}=***" if secret else item)
        elif not secret:
            parts.append(item)
    return ",".join(parts)


@functools.lru_cache(maxsize=4096)  # perf: a config repeats its keys in every step
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
            _redact_saved(path)

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        """The sweeper saves ``multirun.yaml`` next, then composes every job; if one of them
        does not compose, no job starts and the process exits: redact the file at exit then."""
        import atexit
        from pathlib import Path

        overrides = [str(o) for o in config.hydra.overrides.task]
        if redact(overrides) != overrides:
            atexit.register(_redact_saved, Path(str(config.hydra.sweep.dir)) / "multirun.yaml")

    def __getattr__(self, name: str) -> Any:  # Hydra calls the other hooks: nothing to do
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)


def _redact_saved(path: Any) -> None:
    """Rewrite the YAML file ``path`` (a config Hydra saved) with its secrets hidden."""
    from omegaconf import OmegaConf

    if not path.is_file():
        return
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    redacted = redact(data)
    if redacted != data:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        OmegaConf.save(OmegaConf.create(redacted), tmp)
        os.replace(tmp, path)


# -- free text: log lines, printed job lines, error messages -------------------------------------

# `key=value` inside text: a Hydra override (`+registry.storage_options.key=AK`, `k=a,b`), alone,
# in a list repr (`['k=v', ...]`) or after a tab. The value runs to whitespace, a quote, `]`.
_ASSIGNMENT = re.compile(
    r"(?P<key>(?<![\w.\-])[+~]{0,2}[A-Za-z_][\w.\-/]*)=(?P<value>\"[^\"]*\"|'[^']*'|[^\s'\"\]]+)"
)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][\w+.\-]*://[^/\s:@'\"]+:)(?P<password>[^@\s'\"]+)@")


def redact_text(text: str) -> str:
    """``text`` with the values of secret-named ``key=value`` pairs and URL passwords hidden.

    For text that is not structured: a log line, a job line of a sweep, an error message.

    Examples:
        >>> redact_text("#0 : steps.train.C=1 +registry.storage_options.secret=abc")
        '#0 : steps.train.C=1 +registry.storage_options.secret=***'
        >>> redact_text("overrides: ['api_token=t1,t2', 'key_column=id']")
        "overrides: ['api_token=***', 'key_column=id']"
        >>> redact_text("registry s3://me:hunter2@host/r")
        'registry s3://me:***@host/r'
    """
    if "=" in text:
        text = _ASSIGNMENT.sub(
            lambda m: f"{m['key']}=***" if is_secret_key(m["key"]) else m[0], text
        )
    if "@" in text:
        text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***@", text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that hides secrets in every record's message (see :func:`redact_text`).

    Installed on the handlers of Hydra's own logging (``hydra/hydra_logging=mlops``, which prints
    the ``[HYDRA] #0 : <overrides>`` job lines of the basic launcher) and of job logging
    (``hydra/job_logging=mlops``, console and the job's ``.log`` file).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler to report
            return True
        hidden = redact_text(message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        return True


# -- the process's output: whatever prints a secret given on the command line --------------------

#: Shorter values are not hidden by value (hiding every "ab" would garble the output); their
#: ``key=value`` form still is.
MIN_SECRET_LENGTH = 4


def secret_values(args: Sequence[str]) -> list[str]:
    """The secrets given in command-line ``args``: values of secret-named overrides (each value
    of a sweep too) and passwords inside URLs, longest first.

    Examples:
        >>> secret_values(["steps.train.C=1", "+registry.storage_options.secret=abcd,efgh"])
        ['abcd,efgh', 'abcd', 'efgh']
        >>> secret_values(["registry.uri=s3://me:hunter2@host/r"])
        ['hunter2']
    """
    found: set[str] = set()
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep and is_secret_key(key):
            found.add(value)
            found.update(v.strip("'\"") for v in value.split(","))
        for m in _URL_PASSWORD.finditer(arg):
            found.add(m["password"])
    return sorted((v for v in found if len(v) >= MIN_SECRET_LENGTH), key=lambda v: (-len(v), v))


def config_secret_values(config: Any, _key: str = "") -> list[str]:
    """The values of secret-named keys anywhere in ``config`` (a dict), longest first: what to
    hide, with :func:`hide_values`, in text that may repeat them (a step's error message).

    Examples:
        >>> config_secret_values({"steps": {"fetch": {"password": "hunter22", "n": 1}}})
        ['hunter22']
    """
    found: set[str] = set()
    if isinstance(config, Mapping):
        for k, v in config.items():
            found.update(config_secret_values(v, str(k)))
    elif isinstance(config, (list, tuple)):
        for v in config:
            found.update(config_secret_values(v, _key))
    elif config is not None and is_secret_key(_key) and len(str(config)) >= MIN_SECRET_LENGTH:
        found.add(str(config))
    return sorted(found, key=lambda v: (-len(v), v))


def hide_values(text: str, values: Sequence[str]) -> str:
    """``text`` with each of ``values`` replaced by ``***`` (and secret ``key=value`` pairs).

    Examples:
        >>> hide_values("login failed for password hunter22", ["hunter22"])
        'login failed for password ***'
    """
    text = redact_text(text)
    for value in values:
        text = text.replace(value, "***")
    return text


class RedactingStream(io.TextIOBase):
    """A text stream that hides ``secrets`` (and secret ``key=value`` pairs) in what passes.

    Args:
        stream: where the text goes (``sys.stdout`` or ``sys.stderr``).
        secrets: values to replace by ``***`` wherever they appear.
    """

    def __init__(self, stream: IO[str], secrets: Sequence[str]) -> None:
        self.stream = stream
        self.secrets = tuple(secrets)

    def write(self, text: str) -> int:
        self.stream.write(hide_values(text, self.secrets))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:  # `buffer`, `reconfigure`, ...: the real stream's
        return getattr(self.stream, name)


@contextlib.contextmanager
def redacted_output(args: Sequence[str]) -> Iterator[None]:
    """Hide the secrets of command-line ``args`` in everything printed inside the block.

    Hydra prints some lines itself, before any mlops code runs for the job (the hint
    ``To append to your config use +registry.storage_options.key=…`` when a key is missing, its
    error reports); the command line wraps Hydra in this so that none of them shows a secret.
    Without a secret among ``args`` nothing is wrapped.
    """
    secrets = secret_values(args)
    if not secrets and not any("=" in a and is_secret_key(a.partition("=")[0]) for a in args):
        yield
        return
    out, err = sys.stdout, sys.stderr
    sys.stdout = RedactingStream(out, secrets)  # type: ignore[assignment]
    sys.stderr = RedactingStream(err, secrets)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err


# -- step params ----------------------------------------------------------------------------------

#: How a secret param is kept in cache records: this prefix, then a fingerprint of its value.
SECRET_PARAM_PREFIX = "*** secret, fingerprint "


def secret_param(name: str, value: Any) -> Any:
    """A step param as cache records keep it: a secret one as a fingerprint, others redacted.

    The fingerprint tells two values apart without showing either; it reveals no more than the
    cache key, which hashes the value too. Secret keys nested in a param are fingerprinted the
    same way; other strings are redacted as :func:`redact` does (URL passwords, overrides).

    Examples:
        >>> secret_param("C", 1.0)
        1.0
        >>> secret_param("password", "hunter2").startswith(SECRET_PARAM_PREFIX)
        True
        >>> db = secret_param("db", {"host": "h", "password": "hunter2"})
        >>> db["host"], db["password"].startswith(SECRET_PARAM_PREFIX)
        ('h', True)
    """
    if is_secret_key(name) and value is not None:
        from .hashing import token

        return SECRET_PARAM_PREFIX + token("mlops secret param", value)[:16]
    if isinstance(value, Mapping):
        return {k: secret_param(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [secret_param("", v) for v in value]
    return redact(value)


def is_secret_param_value(value: Any) -> bool:
    """Whether ``value`` is a secret param as :func:`secret_param` keeps it."""
    return isinstance(value, str) and value.startswith(SECRET_PARAM_PREFIX)


def redact_uri(uri: str) -> str:
    """``uri`` with any password in it (``scheme://user:password@host``) replaced by ``***``.

    Examples:
        >>> redact_uri("s3://bucket/prefix")
        's3://bucket/prefix'
        >>> redact_uri("https://me:hunter2@example.com/reg")
        'https://me:***@example.com/reg'
    """
    return _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:***@", uri)


_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://)([^/@:\s]*):[^/@\s]*@")
