"""Schedulers: a Dask ``get`` function for each executor name, and running a graph with one.

Schedulers are plain callables ``get(graph, keys)`` (``dask.local.get_sync``, ``dask.threaded.get``,
...), so a synchronous one is always there for debugging; :func:`run_graph` reports each finished
task as it completes, whichever scheduler runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ConfigError

__all__ = ["get_scheduler", "run_graph"]


def get_scheduler(
    name: str,
    num_workers: int | None = None,
    *,
    address: str | None = None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
) -> Callable[..., Any]:
    """A Dask ``get`` function for an executor name: sync, threads, processes or distributed.

    ``processes`` runs steps in a pool of ``num_workers`` spawned processes; ``distributed``
    returns a :class:`~mlops.distributed.DistributedScheduler` (connect to ``address``, or start
    a local cluster of ``n_workers`` x ``threads_per_worker``), which the caller closes.
    """
    if name == "sync":
        from dask.local import get_sync

        return get_sync
    if name == "threads":
        import dask.threaded

        def get_threads(graph: dict[str, Any], keys: list[str]) -> Any:
            return dask.threaded.get(graph, keys, num_workers=num_workers)

        return get_threads
    if name == "processes":
        import dask.multiprocessing

        from .distributed import install_shared_callables

        def get_processes(graph: dict[str, Any], keys: list[str]) -> Any:
            # The step runner (the whole plan) goes to each worker process once, with the
            # pool's initializer, rather than pickled into every task.
            shipped, init = install_shared_callables(
                graph,  # type: ignore[arg-type]
                dask.config.get("multiprocessing.initializer", None),
            )
            # spawned workers (Dask's default context): safe with threads, same on every OS
            return dask.multiprocessing.get(
                shipped, keys, num_workers=num_workers, initializer=init
            )

        return get_processes
    if name == "distributed":
        from .distributed import DistributedScheduler

        return DistributedScheduler(address, n_workers, threads_per_worker)
    raise ConfigError(
        f"unknown executor '{name}'; choose one of: sync, threads, processes, distributed",
        "executor.name",
    )


def run_graph(
    get: Callable[..., Any],
    graph: dict[str, Any],
    keys: list[str],
    on_result: Callable[[str, Any], None],
) -> None:
    """Compute ``keys`` of ``graph`` with ``get``, calling ``on_result(key, value)`` per task.

    Local schedulers report through a Dask callback; a scheduler with ``reports_results``
    (dask.distributed, where callbacks do not fire) reports as its futures complete.
    """
    if getattr(get, "reports_results", False):
        get.run(graph, keys, on_result)  # type: ignore[attr-defined]
        return
    from dask.callbacks import Callback

    def posttask(key: str, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        on_result(key, result)

    with Callback(posttask=posttask):
        get(graph, keys)
