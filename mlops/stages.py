"""Stages: ``staging``, ``production`` and ``archived`` as movable pointers to model versions.

The history of a model's stages is a :class:`~mlops.records.RecordSequence` of
:class:`StageChange` records, each carrying the *whole* assignment that results from it (who
holds ``staging`` and ``production``, who is archived). So the current stages are one read of the
last record, concurrent promotions are totally ordered by the sequence, and a rollback can be
worked out from the history alone. This module holds the values and the pure rules; the model
registry (:mod:`mlops.models`) reads and writes the records.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import StageError, did_you_mean

__all__ = [
    "EXCLUSIVE",
    "SETTABLE",
    "ChangeReason",
    "ModelStages",
    "StageChange",
    "check_stage",
    "holder_stack",
    "next_assignment",
]


class ModelStages(str, enum.Enum):
    """Stages a model version can be in; ``LATEST`` is accepted wherever a stage is read."""

    NONE = "none"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"
    LATEST = "latest"

    def __str__(self) -> str:
        return self.value


#: stages held by at most one version at a time
EXCLUSIVE = ("staging", "production")
#: stages a version can be moved to
SETTABLE = ("none", "staging", "production", "archived")


class ChangeReason(str, enum.Enum):
    """Why a stage change was recorded."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class StageChange:
    """One record of a model's stage history, with the assignment that results from it."""

    seq: int
    stage: str
    version: int | None
    previous: int | None
    holders: Mapping[str, int | None]
    archived: tuple[int, ...]
    run_id: str | None
    user: str
    time: float
    reason: str

    REQUIRED = ("seq", "stage", "holders")

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StageChange:
        """Raises ValueError (or KeyError/TypeError) for a document of the wrong shape."""
        holders = doc["holders"]
        if not isinstance(holders, Mapping):
            raise TypeError("holders is not a mapping")
        change = cls(
            seq=int(doc["seq"]),
            stage=str(doc["stage"]),
            version=_opt_int(doc.get("version")),
            previous=_opt_int(doc.get("previous")),
            holders={k: _opt_int(holders.get(k)) for k in EXCLUSIVE},
            archived=tuple(int(v) for v in doc.get("archived", ())),
            run_id=doc.get("run_id"),
            user=str(doc.get("user", "")),
            time=float(doc.get("time", 0.0)),
            reason=str(doc.get("reason", ChangeReason.PROMOTE)),
        )
        if change.stage not in SETTABLE:
            raise ValueError(f"unknown stage {change.stage!r}")
        return change

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "stage": self.stage,
            "version": self.version,
            "previous": self.previous,
            "holders": dict(self.holders),
            "archived": list(self.archived),
            "run_id": self.run_id,
            "user": self.user,
            "time": self.time,
            "reason": self.reason,
        }

    def stage_of(self, number: int) -> str:
        """The stage version ``number`` is in after this change.

        Examples:
            >>> c = StageChange(1, "production", 2, None, {"production": 2}, (1,), None, "", 0, "")
            >>> c.stage_of(2), c.stage_of(1), c.stage_of(3)
            ('production', 'archived', 'none')
        """
        for stage in EXCLUSIVE:
            if self.holders.get(stage) == number:
                return stage
        return "archived" if number in self.archived else "none"


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a version number, got {value!r}")
    return value


def check_stage(stage: Any, allow: Iterable[str], *, resolving: bool = False) -> str:
    """The stage's name if it is one of ``allow``, else a StageError listing the stages.

    Examples:
        >>> check_stage(ModelStages.PRODUCTION, SETTABLE)
        'production'
    """
    allowed = list(allow)
    value = stage.value if isinstance(stage, ModelStages) else stage
    if isinstance(value, str) and value.lower() in allowed:
        return value.lower()
    hint = did_you_mean(str(value), allowed)
    choices = ", ".join(repr(a) for a in allowed)
    use = f"a version number, 'latest', or one of {choices}" if resolving else f"one of {choices}"
    raise StageError(f"unknown stage {value!r}: use {use}.{hint}")


def next_assignment(
    current: StageChange | None, number: int, target: str, *, force: bool, name: str
) -> tuple[dict[str, int | None], tuple[int, ...], int | None] | None:
    """The assignment after moving version ``number`` to ``target``; None if already there.

    Raises:
        StageError: ``target`` is held by another version and ``force`` is not set.
    """
    holders: dict[str, int | None] = dict(current.holders) if current else dict.fromkeys(EXCLUSIVE)
    archived = set(current.archived) if current else set()
    previous = holders.get(target) if target in EXCLUSIVE else None
    now = current.stage_of(number) if current else "none"
    if now == target:
        return None
    if target in EXCLUSIVE and previous is not None and not force:
        raise StageError(
            f"model '{name}' version {previous} is in '{target}'; pass force=True "
            f"(or --force) to move it to 'archived' and put version {number} in '{target}'"
        )
    for s in EXCLUSIVE:
        if holders.get(s) == number:
            holders[s] = None
    archived.discard(number)
    if target in EXCLUSIVE:
        if previous is not None:
            archived.add(previous)
        holders[target] = number
    elif target == "archived":
        archived.add(number)
    return holders, tuple(sorted(archived)), previous


def holder_stack(history: list[StageChange], stage: str) -> list[int]:
    """The holders of ``stage`` that a rollback can return to, oldest first.

    Each promotion pushes its version; a rollback pops the version it moved out.

    Examples:
        >>> h = [StageChange(i, "production", v, None, {"production": v}, (), None, "", 0.0, r)
        ...      for i, (v, r) in enumerate([(1, "promote"), (2, "promote"), (3, "promote"),
        ...                                  (2, "rollback")], 1)]
        >>> holder_stack(h, "production")
        [1, 2]
    """
    stack: list[int] = []
    for change in history:
        holder = change.holders.get(stage)
        if change.reason == ChangeReason.ROLLBACK and change.stage == stage and stack:
            stack.pop()
        if holder is not None and (not stack or stack[-1] != holder):
            if holder in stack:
                stack.remove(holder)
            stack.append(holder)
    return stack
