"""Running a predicted run in this process, without Dask, when a scheduler would have nothing to do.

Before any step runs, the executor predicts every step's fate (:func:`mlops.cache.decide`). When
every step is a hit, or a single step runs on a local executor (a fully cached
``train_and_promote``: four hits and ``promote``, which is uncached by design), there is no
parallelism for a scheduler to exploit, and starting one costs more than the whole run: importing
Dask alone is about 0.1 s. :class:`InProcessScheduler` then calls the step tasks one after the
other, in the plan's order (a topological order), through the same step runner a Dask worker
would call, so results, cache decisions and records are the same.

A step on ``distributed`` or ``processes`` still goes to its cluster or its worker process;
only a run with nothing to compute skips them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["InProcessScheduler", "runs_in_process"]

#: Executors whose steps already run in this process (or in threads of it).
_LOCAL = frozenset({"sync", "threads"})
#: Every executor name (an unknown one is left to the scheduler factory to report).
_KNOWN = _LOCAL | {"processes", "distributed"}


def runs_in_process(executor: str, cached: Iterable[bool]) -> bool:
    """Whether a run on ``executor`` whose steps' predicted hits are ``cached`` needs no scheduler.

    Examples:
        >>> runs_in_process("threads", [True, True, False])
        True
        >>> runs_in_process("threads", [True, False, False])  # two steps could run in parallel
        False
        >>> runs_in_process("distributed", [True, False]), runs_in_process("distributed", [True])
        (False, True)
        >>> runs_in_process("thread", [True])  # a typo is reported by get_scheduler, not hidden
        False
    """
    if executor not in _KNOWN:
        return False
    to_run = sum(1 for hit in cached if not hit)
    return to_run == 0 or (to_run == 1 and executor in _LOCAL)


class InProcessScheduler:
    """A ``get(graph, keys)`` that calls each task in ``keys`` order, here, with no Dask.

    ``keys`` must list every task after the tasks it depends on (``Plan.keys`` does). It
    reports each result as it completes, like :class:`~mlops.distributed.DistributedScheduler`
    (``reports_results``), so :func:`mlops.schedulers.run_graph` needs no Dask callback.

    Examples:
        >>> graph = {"a": (lambda name: 1, "a"), "b": (lambda name, a: a + 1, "b", "a")}
        >>> seen = []
        >>> InProcessScheduler().run(graph, ["a", "b"], lambda k, v: seen.append((k, v)))
        >>> seen
        [('a', 1), ('b', 2)]
    """

    reports_results = True

    def run(
        self,
        graph: dict[str, tuple[Any, ...]],
        keys: list[str],
        on_result: Callable[[str, Any], None],
    ) -> None:
        results: dict[str, Any] = {}
        for key in keys:
            task, name, *deps = graph[key]
            results[key] = task(name, *(results[d] for d in deps))
            on_result(key, results[key])

    def __call__(self, graph: dict[str, tuple[Any, ...]], keys: list[str]) -> list[Any]:
        out: dict[str, Any] = {}
        self.run(graph, keys, out.__setitem__)
        return [out[k] for k in keys]
