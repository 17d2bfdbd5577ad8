"""Deleting from a registry: runs, model versions and cache entries. ``gc`` reclaims the bytes.

None of these delete artifact bytes: they remove records, so that the objects only those records
named become unreferenced, and :func:`mlops.gc.collect_garbage` deletes them (objects younger
than its grace period are kept, so pass ``--grace 0`` to reclaim what a recent run wrote).

* **Runs** -- ``runs/<id>/`` is removed. A run that is still running (a live lease) is refused.
  ``prune`` keeps the newest ``keep_last`` runs of each pipeline (or of one), and every run whose
  model version holds ``staging`` or ``production``: that is where a deployed model came from.
* **Model versions** -- version numbers are never reused and the version sequence must stay a
  prefix ``1..N`` (:class:`~mlops.records.RecordSequence`), so a deleted version leaves its
  ``version.json`` and a ``deleted.json`` tombstone (who, when); everything else in its folder
  goes (``complete.json`` with the artifact links, and 0.1's per-artifact records). Without
  ``complete.json`` it reads as incomplete: ``latest`` skips it, no stage accepts it, and the
  next run still takes the next number. Refused, unless ``force``: a version in ``staging`` or
  ``production``, and a version that a run used (``model.version=...``), since that run's record
  would name a version that no longer has its artifacts.
* **Cache entries** -- every entry (or those of one step) and the step indexes: the next run of
  those steps runs them and stores them again.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import MlopsError, ModelNotFoundError
from .models import VersionStatus
from .run_store import Run, RunStatus

if TYPE_CHECKING:
    from .registry import Registry

__all__ = [
    "DeleteError",
    "clear_cache",
    "delete_runs",
    "delete_versions",
    "deleted_versions",
    "prune_runs",
    "resolve_run_id",
    "runs_to_prune",
]

_LIVE_STAGES = ("staging", "production")


class DeleteError(MlopsError, ValueError):
    """A delete that would break something (refused; ``--force`` overrides where allowed)."""


def resolve_run_id(registry: Registry, text: str, runs: Sequence[Run] | None = None) -> str:
    """The run id that ``text`` names: a whole id, a unique prefix, or ``latest``.

    Raises:
        RunNotFoundError: no run matches, or the prefix matches several (they are listed).
    """
    from .errors import RunNotFoundError, did_you_mean

    ids = [r.id for r in runs] if runs is not None else registry.runs.ids()
    if text == "latest":
        if not ids:
            raise RunNotFoundError(f"no runs in registry {registry.uri} yet")
        return ids[-1]
    if text in ids:
        return text
    matches = [i for i in ids if i.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise RunNotFoundError(
            f"run id prefix '{text}' matches {len(matches)} runs ({shown}); give more characters"
        )
    raise RunNotFoundError(
        f"no run '{text}' in registry {registry.uri}.{did_you_mean(text, ids)} List them with "
        "`mlops runs`; `latest` names the newest."
    )


def _check_deletable(run: Run) -> None:
    if run.status is RunStatus.RUNNING:
        raise DeleteError(
            f"run {run.id} is still running (its lease is live); wait for it to finish, or "
            "stop it and try again once it reads as abandoned"
        )


def delete_runs(registry: Registry, ids: Iterable[str]) -> list[str]:
    """Delete the runs named by ``ids`` (ids, unique prefixes, ``latest``); their ids.

    Every id is resolved and checked before anything is deleted.
    """
    runs = registry.runs.list()
    chosen = [resolve_run_id(registry, text, runs) for text in ids]
    by_id = {r.id: r for r in runs}
    for run_id in chosen:
        _check_deletable(by_id[run_id])
    for run_id in dict.fromkeys(chosen):
        registry.runs.delete(run_id)
    return list(dict.fromkeys(chosen))


def runs_to_prune(
    registry: Registry, keep_last: int, pipeline: str | None = None
) -> tuple[list[Run], list[Run]]:
    """(the runs prune would delete, the older runs it keeps because a live model needs them)."""
    if keep_last < 0:
        raise DeleteError(f"--keep-last must be 0 or more, got {keep_last}")
    runs = registry.runs.list(pipeline)
    live: set[tuple[str, int]] = set()
    for name in {str(r.model["name"]) for r in runs if r.model and r.model.get("name")}:
        current = registry.models.current_stages(name)
        for stage in _LIVE_STAGES:
            number = current.holders.get(stage) if current else None
            if number is not None:
                live.add((name, int(number)))
    by_pipeline: dict[str, list[Run]] = {}
    for r in runs:
        by_pipeline.setdefault(r.pipeline, []).append(r)
    doomed: list[Run] = []
    kept: list[Run] = []
    for group in by_pipeline.values():
        older = group[: max(0, len(group) - keep_last)]
        for r in older:
            m = r.model or {}
            made_live = bool(m.get("created")) and (str(m.get("name")), m.get("number")) in live
            if made_live or r.status is RunStatus.RUNNING:
                kept.append(r)
            else:
                doomed.append(r)
    return sorted(doomed, key=lambda r: r.id), sorted(kept, key=lambda r: r.id)


def prune_runs(
    registry: Registry, keep_last: int, pipeline: str | None = None, dry_run: bool = False
) -> tuple[list[Run], list[Run]]:
    """Delete all but the newest ``keep_last`` runs of each pipeline (see the module docstring)."""
    doomed, kept = runs_to_prune(registry, keep_last, pipeline)
    if not dry_run:
        for r in doomed:
            registry.runs.delete(r.id)
    return doomed, kept


def deleted_versions(registry: Registry, name: str) -> dict[int, dict[str, Any]]:
    """The deleted versions of ``name``: number -> ``{"user", "time"}``."""
    return {
        mv.number: {"user": mv.metadata.get("deleted_by"), "time": mv.metadata.get("deleted")}
        for mv in registry.models.list_versions(name)
        if mv.status is VersionStatus.DELETED
    }


def _users_of(registry: Registry, name: str, numbers: set[int]) -> dict[int, list[str]]:
    """The runs that used (not made) each of ``numbers``."""
    users: dict[int, list[str]] = {}
    for run in registry.runs.list():
        m = run.model or {}
        if m.get("name") == name and not m.get("created") and m.get("number") in numbers:
            users.setdefault(int(m["number"]), []).append(run.id)
    return users


def delete_versions(
    registry: Registry, name: str, numbers: Sequence[int], *, force: bool = False
) -> list[int]:
    """Delete versions ``numbers`` of model ``name`` (see the module docstring); their numbers.

    Raises:
        ModelNotFoundError: a version that does not exist.
        DeleteError: a version in staging or production, or used by a run (without ``force``);
            nothing is deleted then.
    """
    models = registry.models
    last = models.last_number(name)
    wanted = sorted(set(numbers))
    for n in wanted:
        if not 1 <= n <= last:
            have = f"versions 1 to {last}" if last > 1 else ("only version 1" if last else "none")
            raise ModelNotFoundError(f"model '{name}' has no version {n} (it has {have})")
    current = models.current_stages(name)
    holders = current.holders if current else {}
    problems = []
    for stage in _LIVE_STAGES:
        if holders.get(stage) in wanted:
            problems.append(
                f"version {holders[stage]} is in {stage}: move it first "
                f"(`mlops promote {name} {holders[stage]} archived`)"
            )
    for n, runs in sorted(_users_of(registry, name, set(wanted)).items()):
        problems.append(
            f"version {n} was used by run{'s' if len(runs) > 1 else ''} "
            f"{', '.join(runs[:3])}{', ...' if len(runs) > 3 else ''}"
        )
    if problems and not force:
        raise DeleteError(
            f"model '{name}': not deleting: " + "; ".join(problems) + ". Pass --force to delete "
            "anyway."
        )
    if force:
        for stage in _LIVE_STAGES:
            holder = holders.get(stage)
            if holder is not None and holder in wanted:
                # a stage must never point at a version without artifacts
                models.set_stage(name, holder, "archived")
    already = deleted_versions(registry, name)
    for n in wanted:
        if n not in already:
            models.delete_version(name, n)
    return wanted


def clear_cache(registry: Registry, step: str | None = None) -> int:
    """Delete every cache entry (or those of ``step``) and the matching step indexes; how many
    entries were deleted."""
    cache = registry.cache
    keys = cache.entry_keys()
    if step is not None:
        steps = cache.steps_of(keys)
        keys = [k for k in keys if steps[k] == step]
    for key in keys:
        cache.delete_entry(key)
    cache.clear_indexes(step)
    return len(keys)
