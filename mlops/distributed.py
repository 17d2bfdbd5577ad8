"""Run compiled graphs on a dask.distributed cluster (``executor=distributed``).

The executor either connects to a running scheduler (``executor.address=tcp://HOST:PORT``, with
workers started by ``dask scheduler`` / ``dask worker``) or starts a ``LocalCluster`` of
``executor.n_workers`` processes with ``executor.threads_per_worker`` threads each, and closes it
at the end.

The graph is the same plain dict the local schedulers run; its keys keep the ``<step>-<hash>``
form, which the distributed dashboard groups by step name. Each task is a picklable
:class:`~mlops.executor.StepRunner`; what travels between workers and back to this process is a
:class:`~mlops.executor.StepResult` of artifact references, never the values (those go through
the registry). So the registry must be storage that every worker can reach: this module refuses,
before anything runs, a ``memory://`` registry (it lives in one process) and a local folder with
a scheduler on another machine.

Progress: Dask's local callbacks do not fire on a cluster, so :meth:`DistributedScheduler.run`
reports each step's result as its future completes, gathering finished results in batches (one
round trip per batch; at most one batch every ``GATHER_INTERVAL`` seconds, 0.1). A worker that
dies is handled by Dask (its tasks are rerun elsewhere, up to
``distributed.scheduler.allowed-failures`` times); an exception raised by a step is not retried:
it is re-raised here and fails the run, naming the step.

``dask.distributed`` is an optional dependency (``pip install 'mlops[distributed]'``), imported
only when this executor is used.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import socket
import time
import types
import uuid
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .errors import ConfigError

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["DistributedScheduler", "check_registry_reachable", "is_local_address"]

_INSTALL_HINT = "Install it with: pip install 'mlops[distributed]'"
_PREFIX = "mlops-callable-"


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as e:
        raise ConfigError(
            f"executor=distributed needs dask.distributed, which is not installed. {_INSTALL_HINT}",
            "executor",
        ) from e
    return distributed


def is_local_address(address: str) -> bool:
    """True if a scheduler address is on this machine (loopback, or this host's name or IPs).

    Examples:
        >>> is_local_address("tcp://127.0.0.1:8786"), is_local_address("tcp://localhost:8786")
        (True, True)
        >>> is_local_address("tcp://192.0.2.10:8786")
        False
    """
    host = urlparse(address if "://" in address else f"tcp://{address}").hostname or ""
    if host in ("", "localhost") or host == socket.gethostname():
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    try:
        mine = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    except OSError:
        mine = set()
    return host in mine


def check_registry_reachable(registry: Registry, address: str | None) -> None:
    """Raise ConfigError if workers of this cluster could not read and write ``registry``.

    A ``memory://`` registry lives in this process, which no worker process shares. A local
    folder works with a ``LocalCluster`` (``address`` None) and with a scheduler on this machine;
    with a scheduler elsewhere it works only if every worker mounts it at the same path, which
    the user states by writing it as a ``file://`` URL.
    """
    uri = registry.uri
    protocol = getattr(registry.storage.fs, "protocol", "")
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    fixes = (
        "Fix it in one of these ways: 1. point registry.uri at object storage every worker can "
        "reach, e.g. registry.uri=s3://BUCKET/PREFIX; 2. "
    )
    if "memory" in protocols:
        raise ConfigError(
            f"registry.uri={uri} is in this process's memory, which the workers of "
            "executor=distributed (other processes) cannot reach. "
            + fixes
            + "use a folder, e.g. registry.uri=.mlops (with a local cluster).",
            "registry.uri",
        )
    if registry.storage.local and address and not is_local_address(address):
        if uri.startswith("file://"):
            return  # the user says every worker mounts this folder at the same path
        raise ConfigError(
            f"registry.uri={uri} is a folder on this machine, but executor.address={address} is "
            "a scheduler on another machine, whose workers cannot reach it. "
            + fixes
            + f"if every worker mounts the folder at the same path, say so with "
            f"registry.uri=file://{registry.storage.root}; 3. leave out executor.address to run a "
            "local cluster.",
            "registry.uri",
        )


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _share_callables(graph: dict[Hashable, Any]) -> dict[Hashable, Any]:
    """The graph with a callable object that several tasks share made one piece of data.

    Every task of a run calls the same :class:`~mlops.executor.StepRunner`, which carries the
    whole plan; sent inside each task it would be serialized once per step (quadratic in the
    number of steps). As a key of its own it is sent once, and each worker fetches it once.

    Examples:
        >>> class Task:
        ...     def __call__(self, x): return x
        >>> t = Task()
        >>> g = _share_callables({"a-1": (t, 1), "b-2": (t, "a-1"), "c-3": (len, "a-1")})
        >>> [k for k in g if str(k).startswith("mlops-callable-")] != [], g["c-3"][0] is len
        (True, True)
    """
    uses: dict[int, int] = {}
    for task in graph.values():
        if _shareable(task):
            uses[id(task[0])] = uses.get(id(task[0]), 0) + 1
    keys: dict[int, str] = {}
    out: dict[Hashable, Any] = {}
    for key, task in graph.items():
        if _shareable(task) and uses[id(task[0])] > 1:
            fn = task[0]
            if id(fn) not in keys:
                keys[id(fn)] = f"{_PREFIX}{uuid.uuid4().hex}"
                out[keys[id(fn)]] = fn
            out[key] = (_call, keys[id(fn)], *task[1:])
        else:
            out[key] = task
    return out


#: shared callables installed in this process by a process pool's initializer, by key
_INSTALLED: dict[str, Any] = {}


def _install(objects: dict[str, Any], then: Callable[[], Any] | None = None) -> None:
    """A pool initializer: keep the run's shared callables in this worker process."""
    _INSTALLED.update(objects)
    if then is not None:
        then()


def _call_installed(key: str, *args: Any) -> Any:
    return _INSTALLED[key](*args)


def install_shared_callables(
    graph: dict[Hashable, Any], initializer: Callable[[], Any] | None = None
) -> tuple[dict[Hashable, Any], Callable[[], Any] | None]:
    """For a process pool: the graph with each shared callable object sent once per process.

    Returns the graph whose tasks name their callable by key and a pool initializer that
    installs the callables in each worker process (then calls ``initializer``, if any). A
    process pool pickles every task it runs: carried inside each task, a
    :class:`~mlops.executor.StepRunner` (the whole plan) would be pickled and unpickled once
    per step; with the initializer it is once per worker process.

    Examples:
        >>> class Task:
        ...     def __call__(self, x): return x + 1
        >>> t = Task()
        >>> g, init = install_shared_callables({"a-1": (t, 1), "b-2": (t, "a-1")})
        >>> g["a-1"][0] is _call_installed, init is not None
        (True, True)
    """
    graph = _share_callables(graph)
    objects = {k: graph.pop(k) for k in list(graph) if isinstance(k, str) and k.startswith(_PREFIX)}
    if not objects:
        return graph, initializer
    graph = {
        k: (_call_installed, *t[1:]) if _calls_shared(t, objects) else t for k, t in graph.items()
    }
    return graph, partial(_install, objects, initializer)


def _calls_shared(task: Any, shared: dict[str, Any]) -> bool:
    return isinstance(task, tuple) and len(task) > 1 and task[0] is _call and task[1] in shared


def _shareable(task: Any) -> bool:
    """A task whose callable is an object with state (not a plain function or class)."""
    return (
        isinstance(task, tuple)
        and bool(task)
        and callable(task[0])
        and not isinstance(task[0], (type, types.FunctionType, types.BuiltinFunctionType))
    )


class DistributedScheduler:
    """A Dask ``get`` on a dask.distributed cluster that reports each task's result as it ends.

    Args:
        address: a running scheduler's address; None starts a ``LocalCluster``.
        n_workers: worker processes of the local cluster (Dask's default when None).
        threads_per_worker: threads per local worker (Dask's default when None).

    Use it as a context manager, or call :meth:`close`; the cluster it started is closed then.
    """

    reports_results = True
    #: seconds between two gathers of results while steps finish in quick succession
    GATHER_INTERVAL = 0.1

    def __init__(
        self,
        address: str | None = None,
        n_workers: int | None = None,
        threads_per_worker: int | None = None,
    ) -> None:
        self.address = address
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self._client: Any = None
        self._cluster: Any = None

    def __repr__(self) -> str:
        where = self.address or f"LocalCluster(n_workers={self.n_workers})"
        return f"DistributedScheduler({where})"

    def check_registry(self, registry: Registry) -> None:
        """Refuse a registry this cluster's workers cannot reach (before anything runs)."""
        check_registry_reachable(registry, self.address)

    @property
    def client(self) -> Any:
        """The ``distributed.Client``, connecting or starting the cluster on first use."""
        if self._client is None:
            distributed = _import_distributed()
            if self.address:
                try:
                    self._client = distributed.Client(self.address)
                except OSError as e:
                    raise ConfigError(
                        f"cannot connect to the Dask scheduler at {self.address}: {e}. Start one "
                        "with `dask scheduler` (and workers with `dask worker ADDRESS`), or leave "
                        "out executor.address to run a local cluster.",
                        "executor.address",
                    ) from e
            else:
                kwargs: dict[str, Any] = {"processes": True, "dashboard_address": ":0"}
                if self.n_workers is not None:
                    kwargs["n_workers"] = self.n_workers
                if self.threads_per_worker is not None:
                    kwargs["threads_per_worker"] = self.threads_per_worker
                # the cluster's INFO lines (nannies, workers joining) drown the step progress
                logging.getLogger("distributed").setLevel(logging.WARNING)
                self._cluster = distributed.LocalCluster(**kwargs)
                self._client = distributed.Client(self._cluster)
        return self._client

    def run(
        self,
        graph: dict[Hashable, Any],
        keys: Sequence[Hashable],
        on_result: Callable[[Hashable, Any], None] | None = None,
    ) -> dict[Hashable, Any]:
        """Compute ``keys`` of ``graph``; call ``on_result(key, value)`` as each one completes.

        Raises:
            Exception: the first task error, as the task raised it (a step's StepFailedError);
                the remaining tasks are cancelled.
        """
        distributed = _import_distributed()
        client = self.client
        graph = _share_callables(graph)
        shared = [k for k in graph if isinstance(k, str) and k.startswith(_PREFIX)]
        if shared:
            # on every worker up front, so that the scheduler spreads the steps instead of
            # keeping them next to the one worker that holds the runner
            objects = {k: graph.pop(k) for k in shared}
            scattered = client.scatter(objects, broadcast=True, hash=False)
            graph = {
                k: (t[0], scattered[t[1]], *t[2:]) if _calls_shared(t, scattered) else t
                for k, t in graph.items()
            }
        futures = client.get(graph, list(keys), sync=False)
        results: dict[Hashable, Any] = {}
        try:
            # Results are gathered a batch at a time, one round trip per batch (as_completed's
            # own with_results gathers each future separately, a round trip per step). When
            # steps finish faster than every GATHER_INTERVAL seconds, the batch waits for the
            # rest of the interval so that it takes more of them; a step that ends after a quiet
            # spell is reported at once. A task's own exception is re-raised by gather.
            done = distributed.as_completed(futures)
            last = -math.inf
            while not done.is_empty():
                batch = done.next_batch(block=True)
                pause = last + self.GATHER_INTERVAL - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                    batch += done.next_batch(block=False)
                values = client.gather(batch, errors="raise")
                last = time.monotonic()
                for future, value in zip(batch, values, strict=True):
                    results[future.key] = value
                    if on_result is not None:
                        on_result(future.key, value)
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            del futures
        return results

    def __call__(self, graph: dict[Hashable, Any], keys: Sequence[Hashable]) -> list[Any]:
        """A plain Dask ``get``: the values of ``keys``, in order."""
        results = self.run(graph, keys)
        return [results[k] for k in keys]

    def close(self) -> None:
        """Disconnect, and shut down the local cluster if this scheduler started one."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> DistributedScheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
