"""Cache keys and cache entries: ``cache/<key>.json`` says which artifacts a step produced.

A step's cache key is computed when its inputs are known, from:

* its static key (:mod:`mlops.compiler`): the code hash, the params, the artifact format version,
  and the concrete model versions and artifact ids it reads through references;
* the content hash of each input that comes from an upstream step.

Using *content* hashes of inputs, not upstream keys, gives early cutoff: an upstream step that
re-runs and produces byte-identical output leaves everything below it cached.

An entry is trusted only if every artifact it names exists with the recorded size (loading then
checks the hash), and if the model versions the step read from its step context are still the
ones this run resolved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .hashing import token
from .store import ArtifactRef

__all__ = ["CacheEntry", "cache_key"]


def cache_key(static_key: str, input_ids: dict[str, str]) -> str:
    """The cache key of a step from its static key and its inputs' content hashes.

    Examples:
        >>> cache_key("s", {"x": "a"}) == cache_key("s", {"x": "a"})
        True
        >>> cache_key("s", {"x": "a"}) != cache_key("s", {"x": "b"})
        True
    """
    return token("cache", static_key, input_ids)


@dataclass
class CacheEntry:
    """What a step produced for one cache key, and what it read while producing it."""

    key: str
    step: str
    outputs: dict[str, ArtifactRef]
    model_reads: list[tuple[str, int]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    ingredients: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    created: float = field(default_factory=time.time)

    @property
    def path(self) -> str:
        return f"cache/{self.key[:2]}/{self.key}.json"

    @staticmethod
    def path_for(key: str) -> str:
        return f"cache/{key[:2]}/{key}.json"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "step": self.step,
            "outputs": {k: v.to_json() for k, v in self.outputs.items()},
            "model_reads": [list(r) for r in self.model_reads],
            "metadata": self.metadata,
            "ingredients": self.ingredients,
            "run_id": self.run_id,
            "created": self.created,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CacheEntry:
        return cls(
            key=doc["key"],
            step=doc["step"],
            outputs={k: ArtifactRef.from_json(v) for k, v in doc["outputs"].items()},
            model_reads=[(str(n), int(v)) for n, v in doc.get("model_reads", [])],
            metadata=doc.get("metadata") or {},
            ingredients=doc.get("ingredients") or {},
            run_id=doc.get("run_id"),
            created=float(doc.get("created", 0.0)),
        )
