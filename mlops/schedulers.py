"""Schedulers: a Dask ``get`` function for each executor name, and running a graph with one.

Schedulers are plain callables ``get(graph, keys)`` (``dask.local.get_sync``, ``dask.threaded.get``,
...), so a synchronous one is always there for debugging; :func:`run_graph` reports each finished
task as it completes, whichever scheduler runs it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from .errors import ConfigError

__all__ = ["EXECUTORS", "ExecutorOptions", "get_scheduler", "run_graph"]


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
            pool = _process_pool(num_workers, partial(_init_worker, init))
            try:
                return dask.multiprocessing.get(shipped, keys, pool=pool)
            finally:
                pool.shutdown()

        get_processes.spawns_processes = True  # type: ignore[attr-defined]
        return get_processes
    if name == "distributed":
        from .distributed import DistributedScheduler

        return DistributedScheduler(address, n_workers, threads_per_worker)
    raise ConfigError(
        f"unknown executor '{name}'; choose one of: sync, threads, processes, distributed",
        "executor.name",
    )


def _process_pool(num_workers: int | None, initializer: Callable[[], None]) -> Any:
    """The pool ``dask.multiprocessing.get`` would make, whose workers never see Ctrl-C.

    Workers are spawned (Dask's default context: safe with threads, the same on every OS) as
    tasks are submitted, and SIGINT is blocked in this thread while they start: a spawned
    process inherits the blocked signal, so a Ctrl-C that a terminal sends to the whole process
    group while a worker boots cannot kill it (its initializer then ignores SIGINT for good).
    """
    import os
    from concurrent.futures import ProcessPoolExecutor

    import dask
    import dask.multiprocessing
    from dask.system import CPU_COUNT

    class Pool(ProcessPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            with _sigint_blocked():
                return super().submit(fn, *args, **kwargs)

    if os.environ.get("PYTHONHASHSEED") in (None, "0"):
        os.environ["PYTHONHASHSEED"] = "6640"  # as dask.multiprocessing.get does
    return Pool(
        num_workers or dask.config.get("num_workers", None) or CPU_COUNT,
        mp_context=dask.multiprocessing.get_context(),
        initializer=partial(
            dask.multiprocessing.initialize_worker_process, user_initializer=initializer
        ),
    )


@contextlib.contextmanager
def _sigint_blocked() -> Iterator[None]:
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _init_worker(then: Callable[[], Any] | None) -> None:
    """Initializer of a process pool's workers: Ctrl-C is the main process's to handle (a
    terminal sends it to every process of the group), and a closed stdout never fails a step."""
    from .console import protect_std_streams
    from .interrupts import ignore_sigint

    ignore_sigint()
    protect_std_streams()
    if then is not None:
        then()


#: the executors ``executor.name`` can select
EXECUTORS = ("sync", "threads", "processes", "distributed")


@dataclass(frozen=True)
class ExecutorOptions:
    """The ``executor`` block of a config, checked: read once, before anything is written.

    Examples:
        >>> ExecutorOptions.from_config({"name": "threads", "num_workers": 4})
        ExecutorOptions(name='threads', num_workers=4, address=None, n_workers=None, \
threads_per_worker=None)
        >>> ExecutorOptions.from_config({"name": "threads", "num_workers": -1})
        Traceback (most recent call last):
        ...
        mlops.errors.ConfigError: executor.num_workers: must be a whole number of at least 1 \
(or null: one per core), got -1
    """

    name: str = "threads"
    num_workers: int | None = None
    address: str | None = None
    n_workers: int | None = None
    threads_per_worker: int | None = None

    @classmethod
    def from_config(cls, node: Any) -> ExecutorOptions:
        """Read and check ``executor.*`` from a config node (a DictConfig or a mapping)."""
        from .errors import did_you_mean

        get = node.get
        name = str(get("name", "threads"))
        if name not in EXECUTORS:
            raise ConfigError(
                f"unknown executor '{name}'.{did_you_mean(name, EXECUTORS)} Choose one of: "
                f"{', '.join(EXECUTORS)} (e.g. executor=sync).",
                "executor.name",
            )
        counts = {k: get(k) for k in ("num_workers", "n_workers", "threads_per_worker")}
        for key, value in counts.items():
            if isinstance(value, str) and value.strip().isdigit():  # as OmegaConf converts it
                value = counts[key] = int(value)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(
                    f"must be a whole number of at least 1 (or null: one per core), got {value!r}",
                    f"executor.{key}",
                )
        address = get("address")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ConfigError(
                f"must be a scheduler address such as tcp://HOST:8786 (or null: start a local "
                f"cluster), got {address!r}",
                "executor.address",
            )
        return cls(
            name, counts["num_workers"], address, counts["n_workers"], counts["threads_per_worker"]
        )

    def scheduler(self) -> Callable[..., Any]:
        """The Dask ``get`` these options select (see :func:`get_scheduler`)."""
        return get_scheduler(
            self.name,
            self.num_workers,
            address=self.address,
            n_workers=self.n_workers,
            threads_per_worker=self.threads_per_worker,
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
