"""Records: small JSON documents in the registry, read strictly, and numbered record sequences.

Two things every store needs and none should spell twice:

* :func:`read_record` / :func:`read_records` -- a record is either absent (None) or exactly what
  its writer wrote. Writes are atomic, so a record that does not parse, or parses to the wrong
  shape, was damaged after the fact: it raises :class:`~mlops.errors.DamagedRecordError` naming
  the file, and never reads as "absent" or as an older state.
* :class:`RecordSequence` -- records ``1..N`` in a folder, each created with a create-if-absent
  write, so that of several concurrent writers of record ``n`` exactly one wins. The set of
  existing records is always a prefix ``1..N`` (record ``n+1`` is only attempted by a writer
  that saw ``n``), so the last one is found with a bounded number of probes from a hint
  (``head.json``) that may lag. Readers never write: only writers move the hint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .errors import DamagedRecordError
from .storage import Storage

__all__ = ["RecordSequence", "damaged", "read_record", "read_records"]


def damaged(storage: Storage, rel: str, problem: str) -> DamagedRecordError:
    """The error for a damaged record: which file, what is wrong, what to do."""
    return DamagedRecordError(
        f"registry '{storage.uri}': record '{rel}' is damaged ({problem}). Run `mlops check` to "
        "see what depends on it; restore the file from a backup, or remove it if `mlops check "
        "--repair` says that is safe.",
        storage.uri,
        rel,
    )


def _parse(storage: Storage, rel: str, data: bytes, required: Iterable[str]) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise damaged(storage, rel, "not valid JSON") from None
    except RecursionError:  # valid JSON nested deeper than any record: not one
        raise damaged(storage, rel, "nested too deeply") from None
    if not isinstance(doc, dict):
        raise damaged(storage, rel, f"a JSON {type(doc).__name__}, not an object")
    missing = [k for k in required if k not in doc]
    if missing:
        raise damaged(storage, rel, f"missing {', '.join(repr(k) for k in missing)}")
    return doc


def read_record(storage: Storage, rel: str, required: Iterable[str] = ()) -> dict[str, Any] | None:
    """The record at ``rel``, or None if there is none.

    Raises:
        DamagedRecordError: the file exists but is not a JSON object with the ``required`` keys.
    """
    try:
        data = storage.read(rel)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return _parse(storage, rel, data, required)


def read_records(
    storage: Storage, rels: list[str], required: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """:func:`read_record` for many records at once; absent ones are left out."""
    keys = tuple(required)
    return {rel: _parse(storage, rel, data, keys) for rel, data in storage.read_many(rels).items()}


class RecordSequence:
    """Records numbered ``1..N`` under ``folder``, created in order, never rewritten.

    Args:
        storage: where they live.
        folder: the folder of the sequence's hint (``<folder>/head.json``).
        path_of: the path of record ``n``.
    """

    def __init__(self, storage: Storage, folder: str, path_of: Callable[[int], str]) -> None:
        self.storage = storage
        self.folder = folder
        self.path_of = path_of

    def _hint(self) -> int:
        """Where to start probing: ``head.json``'s number. A damaged hint is only a slower
        start (the probes below find the true end either way), so it reads as 0."""
        try:
            doc = json.loads(self.storage.read(f"{self.folder}/head.json"))
        except (FileNotFoundError, NotADirectoryError, ValueError, RecursionError):
            return 0
        n = doc.get("n") if isinstance(doc, dict) else None
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0

    def _has(self, n: int) -> bool:
        return self.storage.has_record(self.path_of(n))

    def last(self) -> int:
        """The highest existing record number (0 if none), in O(log lag) probes; writes nothing.

        Examples:
            >>> from mlops.storage import open_storage
            >>> seq = RecordSequence(open_storage("memory://doctest-seq"), "s", lambda n: f"s/{n}")
            >>> [seq.create_next(lambda n: {"n": n}) for _ in range(3)], seq.last()
            ([1, 2, 3], 3)
        """
        lo = self._hint()
        if lo and not self._has(lo):  # a hint that leads (edited by hand): search below it
            hi, lo = lo, 0
        elif not self._has(lo + 1):
            return lo
        else:
            lo, step = lo + 1, 1
            while True:
                hi = lo + step
                if not self._has(hi):
                    break
                lo, step = hi, step * 2
        while hi - lo > 1:  # invariant: lo exists (or is 0), hi does not
            mid = (lo + hi) // 2
            if self._has(mid):
                lo = mid
            else:
                hi = mid
        return lo

    def advance(self, n: int) -> None:
        """Move the hint to ``n`` (which exists) unless it is already there or further on.

        Writers call this after creating a record; two writers may interleave and move it back a
        little, which costs later readers a few probes, never a wrong answer.
        """
        if self._hint() >= n:
            return
        self.storage.write_json(f"{self.folder}/head.json", {"n": n})

    def create_next(
        self, doc_for: Callable[[int], dict[str, Any]], after: int | None = None
    ) -> int:
        """Create the next record (``doc_for(n)``), racing other writers; its number.

        Args:
            after: the last number the caller already knows exists (saves the probes).
        """
        n = self.last() if after is None else after
        while True:
            n += 1
            if self.storage.create_json(self.path_of(n), doc_for(n)):
                self.advance(n)
                return n
            # another writer took n: the next one is free unless it was taken too
