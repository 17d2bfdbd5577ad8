"""What an S3 registry needs beyond what s3fs does by default: bounded waits, and a real endpoint.

* **Timeouts.** s3fs waits up to 15 s for a read and retries a timed-out request in two layers
  (its own wrapper, 5 times, around botocore's retries, 5 attempts): an endpoint that accepts
  connections and never answers blocks a run for minutes. :data:`DEFAULTS` sets botocore's
  connect and read timeouts and leaves the retrying to s3fs's wrapper alone; a user's
  ``registry.storage_options.config_kwargs`` overrides any of them, key by key.
* **No wait without a timeout.** botocore asks for ``Expect: 100-continue`` on every upload, and
  aiohttp waits for the interim answer with no timeout at all: an endpoint that goes silent
  would hang a write forever. :func:`tune` drops the header (an optimization for uploads the
  server refuses early) from the filesystem's botocore session and client.
* **Is it S3?** An endpoint that answers 404 (or an HTML page) to everything looks to s3fs like
  an empty bucket. :func:`probe` asks for one key of the registry's prefix and checks that the
  answer has the shape S3 gives it.
"""

from __future__ import annotations

from typing import Any

from ..errors import RegistryError

__all__ = ["DEFAULTS", "UPLOAD", "explain", "not_s3", "probe", "tune"]

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0

#: storage options an ``s3://`` registry gets unless its storage_options say otherwise
DEFAULTS: dict[str, Any] = {
    "config_kwargs": {
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        # One attempt per call in botocore: s3fs's own wrapper already retries timeouts,
        # connection errors and throttling (5 attempts with backoff), and the two layers
        # multiply (25 attempts of 60 s for an endpoint that never answers).
        "retries": {"mode": "standard", "total_max_attempts": 1},
    },
}


#: put_file keywords for streamed artifacts: parts of 8 MiB, 4 in flight (about 64 MB of
#: memory with botocore's copy of each part). As fast as s3fs's own default against moto, which
#: holds up to 10 parts of 50 MiB and took twice the payload's size in memory for a 318 MB
#: upload (benchmarks/bench_s3.py).
UPLOAD: dict[str, Any] = {"chunksize": 8 << 20, "max_concurrency": 4}


def tune(fs: Any) -> None:
    """Make every request of ``fs`` (an S3FileSystem) bounded by its read timeout.

    Connects (no request is sent: this builds the botocore client) and removes botocore's
    ``Expect: 100-continue`` handler, whose interim answer aiohttp awaits with no timeout.
    """
    from botocore.handlers import add_expect_header

    fs.connect()
    for events in (fs.session, fs.s3.meta.events):
        events.unregister("before-call.s3", add_expect_header)


def probe_timeout(options: dict[str, Any]) -> float:
    """How long the probe at open may take: one connect and one read timeout, plus slack."""
    config = options.get("config_kwargs") or {}
    connect = float(config.get("connect_timeout", CONNECT_TIMEOUT))
    read = float(config.get("read_timeout", READ_TIMEOUT))
    return connect + read + 1.0


def endpoint(fs: Any) -> str:
    """The endpoint URL ``fs`` talks to, for messages."""
    url = getattr(fs, "endpoint_url", None) or (getattr(fs, "client_kwargs", None) or {}).get(
        "endpoint_url"
    )
    return str(url) if url else "the default AWS endpoint"


def probe(fs: Any, root: str, uri: str, options: dict[str, Any]) -> None:
    """List one key under ``root``: raise unless the answer is an S3 listing (or NoSuchBucket).

    The whole probe, retries included, is bounded by one connect and one read timeout, so an
    endpoint that never answers fails the open in about that time.

    Raises:
        RegistryError: the endpoint is not S3, or did not answer in time.
        FileNotFoundError: the bucket does not exist (the caller says so).
    """
    from fsspec.exceptions import FSTimeoutError

    timeout = probe_timeout(options)
    bucket, _, prefix = root.partition("/")
    try:
        # ``timeout`` is taken by fsspec's sync wrapper: a deadline over s3fs's retries
        answer = fs.call_s3(
            "list_objects_v2",
            Bucket=bucket,
            Prefix=prefix.rstrip("/") + "/" if prefix else "",
            MaxKeys=1,
            timeout=timeout,
        )
    except FSTimeoutError as e:
        raise RegistryError(
            f"registry '{uri}': the endpoint {endpoint(fs)} did not answer within {timeout:.0f} "
            "s. Check the endpoint, or set registry.storage_options.config_kwargs.read_timeout "
            "and connect_timeout (seconds).",
            uri,
        ) from e
    if not isinstance(answer, dict) or answer.get("Name") != bucket:
        raise not_s3_error(fs, uri, "a listing without the bucket's name")


def not_s3(error: BaseException) -> str | None:
    """The HTTP status of an answer S3 never gives behind ``error`` (an error with no S3 error
    code), or None.

    S3 names every error of a request with a body (``NoSuchBucket``, ``AccessDenied``, …); only
    answers to HEAD requests carry a bare HTTP status, since they have no body.
    """
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        response = getattr(e, "response", None)
        operation = str(getattr(e, "operation_name", ""))
        if isinstance(response, dict) and not operation.startswith("Head"):
            code = str((response.get("Error") or {}).get("Code", ""))
            if code.isdigit():
                return code
        e = e.__cause__ or e.__context__
    return None


def explain(error: BaseException, fs: Any, uri: str) -> RegistryError | None:
    """The error to raise instead of ``error`` if it came from a server that is not S3."""
    status = not_s3(error)
    if status is not None:
        return not_s3_error(fs, uri, f"HTTP {status} without an S3 error code")
    return None


def not_s3_error(fs: Any, uri: str, answer: str) -> RegistryError:
    return RegistryError(
        f"registry '{uri}': the endpoint {endpoint(fs)} is not an S3 endpoint (it answered "
        f"{answer}). Check registry.storage_options.client_kwargs.endpoint_url.",
        uri,
    )
