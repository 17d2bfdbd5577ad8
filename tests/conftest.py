"""Shared fixtures: temporary registries (local, memory, S3 on moto's server), CLI runners."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_mlops(
    *args: str,
    cwd: Path | str,
    env: dict[str, str] | None = None,
    check: bool = False,
    timeout: float = 300,
) -> CliResult:
    """Run ``python -m mlops ARGS`` in ``cwd`` as a user would, and capture what it prints."""
    full_env = {**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")}
    full_env.pop("HYDRA_FULL_ERROR", None)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "mlops", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result = CliResult(proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise AssertionError(f"mlops {' '.join(args)} failed ({proc.returncode}):\n{result.output}")
    return result


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty folder to run the command line in (Hydra writes its outputs/ there)."""
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def registry_uri(tmp_path: Path) -> str:
    return str(tmp_path / "registry")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    endpoint_url: str

    @property
    def storage_options(self) -> dict[str, Any]:
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
        }

    def client(self) -> Any:
        """A boto3 S3 client for this server (to look at what mlops stored, or to set up)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def overrides(self, uri: str) -> list[str]:
        """Command-line overrides that point a run at ``uri`` on this server."""
        return [
            f"registry.uri={uri}",
            f"+registry.storage_options.client_kwargs.endpoint_url={self.endpoint_url}",
            "+registry.storage_options.key=testing",
            "+registry.storage_options.secret=testing",
        ]


def _atomic_conditional_puts() -> None:
    """Make moto's PUT with ``If-None-Match: *`` atomic, as it is on S3.

    moto (5.x) checks that the key is absent and then stores the object without a lock, so two
    of its server threads can both pass the check and both "create" one key; real S3 lets
    exactly one conditional write win. The concurrency tests need the real behaviour.
    """
    import threading

    from moto.s3.responses import S3Response

    original = S3Response.put_object
    if getattr(original, "_mlops_atomic", False):
        return
    lock = threading.Lock()

    def put_object(self: Any) -> Any:
        with lock:
            return original(self)

    put_object._mlops_atomic = True  # type: ignore[attr-defined]
    S3Response.put_object = put_object  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (a free port), for the whole session."""
    from moto.server import ThreadedMotoServer

    _atomic_conditional_puts()
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A fresh, empty bucket on the moto server; yields ``s3://<bucket>``."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    yield f"s3://{name}"
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(params=["local", "memory", "s3"])
def any_registry_uri(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """A registry URI and storage options for each kind of storage."""
    if request.param == "local":
        return str(tmp_path / "registry"), {}
    if request.param == "memory":
        return f"memory://reg-{uuid.uuid4().hex[:8]}", {}
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return f"{bucket}/registry", server.storage_options


@contextlib.contextmanager
def local_dask_cluster(n_workers: int = 2) -> Iterator[str]:
    """A real dask.distributed LocalCluster of worker processes; yields the scheduler address.

    Tests start at most one per module (a module-scoped fixture): a cluster takes seconds.
    """
    import logging

    from distributed import LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    with LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield str(cluster.scheduler_address)


@pytest.fixture
def fake_http_endpoint() -> Iterator[Any]:
    """Start HTTP servers on 127.0.0.1 that are not S3: ``start("404")`` answers 404 to every
    request (``"403"``, ``"500"`` likewise), ``start("html")`` a web page; each call returns
    the server's URL."""
    import http.server
    import threading

    pages = {
        "403": (403, b"Forbidden", "text/plain"),
        "404": (404, b"Not Found", "text/plain"),
        "500": (500, b"Internal Server Error", "text/plain"),
        "html": (200, b"<html>hi</html>", "text/html"),
    }
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(kind: str) -> str:
        status, body, ctype = pages[kind]

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length and self.headers.get("Expect", "").lower() != "100-continue":
                    self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = answer

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers; yields its URL."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    for conn in accepted:
        conn.close()
