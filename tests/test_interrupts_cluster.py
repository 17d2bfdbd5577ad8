"""The stop flag on a dask.distributed cluster: Ctrl-C reaches every worker at once, and a worker
does not ask the scheduler before every step.

A real ``LocalCluster`` (one module-scoped cluster: it takes seconds to start); the flag object a
worker reads is kept on the worker between calls, as the executor's step guard is.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import local_dask_cluster

from mlops.interrupts import ClusterFlag

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with local_dask_cluster(n_workers=2) as address, distributed.Client(address) as c:
        yield c


def _read_on_workers(client: Any, name: str, poll: float) -> dict[str, bool]:
    """``is_set()`` of the flag ``name`` as each worker's one ClusterFlag object reads it, in a
    task (where the executor's step guard reads it)."""

    def read() -> bool:
        worker = distributed.get_worker()
        flags = worker.__dict__.setdefault("_mlops_test_flags", {})
        if name not in flags:
            flags[name] = ClusterFlag(name)
            flags[name].POLL_SECONDS = poll
        return bool(flags[name].is_set())

    workers = list(client.scheduler_info()["workers"])
    futures = {w: client.submit(read, workers=[w], pure=False) for w in workers}
    return {w: f.result() for w, f in futures.items()}


@pytest.mark.parametrize("poll", [0.0, 3600.0], ids=["reads-every-time", "trusts-an-hour"])
def test_set_reaches_every_worker_before_it_returns(client: Any, poll: float) -> None:
    """However long a worker would trust its last reading, it sees the flag once set() returns."""
    name = f"mlops-stop-{uuid.uuid4().hex}"
    flag = ClusterFlag(name, client=client)
    try:
        assert set(_read_on_workers(client, name, poll).values()) == {False}
        flag.set()
        assert set(_read_on_workers(client, name, poll).values()) == {True}
        assert flag.is_set()
    finally:
        flag.close()


def test_a_worker_reads_the_event_at_most_every_poll_interval(client: Any) -> None:
    """An event set behind the workers' backs (no message) is seen only when the worker's
    reading is older than POLL_SECONDS: between two readings, no round trip to the scheduler."""
    name = f"mlops-stop-{uuid.uuid4().hex}"
    event = distributed.Event(name, client=client)
    try:
        assert set(_read_on_workers(client, name, 3600.0).values()) == {False}
        event.set()
        assert set(_read_on_workers(client, name, 3600.0).values()) == {False}  # not read again
        other = f"mlops-stop-{uuid.uuid4().hex}"
        other_event = distributed.Event(other, client=client)
        assert set(_read_on_workers(client, other, 0.0).values()) == {False}
        other_event.set()
        assert set(_read_on_workers(client, other, 0.0).values()) == {True}  # read: seen
        other_event.clear()
    finally:
        event.clear()


def test_a_flag_sent_to_a_worker_starts_unread(client: Any) -> None:
    """A pickled flag carries no reading of the main process: the worker reads for itself."""
    name = f"mlops-stop-{uuid.uuid4().hex}"
    flag = ClusterFlag(name, client=client)
    flag.POLL_SECONDS = 3600.0
    try:
        assert not flag.is_set()  # read here: False, trusted for an hour here
        distributed.Event(name, client=client).set()
        assert client.submit(lambda f: f.is_set(), flag, pure=False).result() is True
    finally:
        flag.close()
