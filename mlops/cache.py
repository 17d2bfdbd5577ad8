"""Cache keys, cache entries, and the decision of what is cached and why.

A step's cache key is computed when its inputs are known, from:

* its static key (:mod:`mlops.compiler`): the code hash, the params, the artifact format version,
  and the concrete model versions and artifact ids it reads through references;
* the content hash of each input that comes from an upstream step.

Using *content* hashes of inputs, not upstream keys, gives early cutoff: an upstream step that
re-runs and produces byte-identical output leaves everything below it cached.

Storage (under the registry root)::

    cache/<k[:2]>/<k>.json              the entry for key k: outputs, model reads, metadata
    cache/steps/<pipeline>/<step>.json  the index: the key of the entry the step last stored or
                                        reused, and its ingredients -- what a plan compares
                                        with to say *why* a step runs

An entry is trusted only if every artifact it names exists with the recorded size, the model
versions the step read from its step context are still the ones this run resolved, and -- for an
artifact that a step of this run will load -- its bytes hash to its id. Hashing is only done for
those: a fully cached run reads no payload.

:func:`decide` walks a plan in order and predicts each step's fate without running anything;
``plan=true`` prints it (:mod:`mlops.explain`) and the executor uses it to know which cached
artifacts must be verified before they are trusted.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ArtifactError
from .hashing import token
from .serializers import FORMAT_VERSION
from .store import ArtifactRef

if TYPE_CHECKING:
    from .compiler import Plan, StepPlan
    from .registry import Registry

__all__ = [
    "CacheEntry",
    "CacheLookup",
    "Decision",
    "cache_key",
    "decide",
    "index_path",
    "ingredients",
    "reasons",
]


def cache_key(static_key: str, input_ids: dict[str, str]) -> str:
    """The cache key of a step from its static key and its inputs' content hashes.

    Examples:
        >>> cache_key("s", {"x": "a"}) == cache_key("s", {"x": "a"})
        True
        >>> cache_key("s", {"x": "a"}) != cache_key("s", {"x": "b"})
        True
    """
    return token("cache", static_key, input_ids)


_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def _segment(name: str) -> str:
    return name if _SEGMENT.match(name) and ".." not in name else "h-" + token(name)[:16]


def index_path(pipeline: str, step: str) -> str:
    """Where the index of a step's last stored entry lives.

    Examples:
        >>> index_path("train_and_promote", "train")
        'cache/steps/train_and_promote/train.json'
    """
    return f"cache/steps/{_segment(pipeline)}/{_segment(step)}.json"


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
        return self.path_for(self.key)

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


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists; others their repr)."""
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError):
        return repr(value)


def ingredients(sp: StepPlan, input_ids: dict[str, str | None]) -> dict[str, Any]:
    """What went into a step's key, in readable form (kept in the entry and the index)."""
    return {
        "format": FORMAT_VERSION,
        "target": sp.target,
        "code": dict(sp.signature.code_parts) or {sp.target: sp.signature.code_hash},
        "params": {k: _plain(v) for k, v in sp.params.items()},
        "inputs": {arg: input_ids.get(arg) for arg in sp.inputs},
        "models": {
            arg: {"name": i.model, "version": i.version, "requested": i.requested}
            for arg, i in sp.inputs.items()
            if i.kind == "artifact"
        },
    }


# -- why a step runs ------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    return repr(value)


def _moved(name: str, requested: Any, old: Any, new: Any) -> str:
    if requested is not None and not str(requested).isdigit():
        return f"model `{name}` {requested} moved from v{old} to v{new}"
    return f"model `{name}` changed from v{old} to v{new}"


def reasons(
    previous: dict[str, Any] | None, current: dict[str, Any], *, inputs: bool = True
) -> list[str]:
    """Why ``current`` ingredients differ from the ``previous`` ones (the index), in words.

    Examples:
        >>> old = {"format": 1, "target": "m.train", "code": {"m:train": "a"},
        ...        "params": {"C": 1.0}, "inputs": {"X": "x1"}, "models": {}}
        >>> new = {**old, "params": {"C": 10}, "inputs": {"X": "x2"}}
        >>> reasons(old, new)
        ['param `C` changed from 1.0 to 10', 'input `X` changed']
        >>> reasons(None, new)
        ['first run']
        >>> lib = {**old, "code": {"m:train": "a", "ops:* (dynamic lookup in `run`)": "b",
        ...        "dist:scikit-learn": "1.5.2"}}
        >>> reasons(lib, {**lib, "code": {"m:train": "a", "ops:* (dynamic lookup in `run`)": "c",
        ...        "dist:scikit-learn": "1.6.0"}})
        ['scikit-learn 1.5.2 -> 1.6.0', 'code of module `ops` (dynamic lookup in `run`) changed']
    """
    if previous is None:
        return ["first run"]
    out: list[str] = []
    if previous.get("format") != current["format"]:
        out.append(
            f"the artifact format changed (version {previous.get('format')} to {current['format']})"
        )
    target = current["target"]
    if previous.get("target") != target:
        out.append(f"its function changed from `{previous.get('target')}` to `{target}`")
    else:
        module, _, fn = target.rpartition(".")
        old_code, new_code = previous.get("code") or {}, current["code"]
        idents = sorted(set(old_code) | set(new_code))
        changed = [k for k in idents if old_code.get(k) != new_code.get(k)]
        own = f"{module}:{fn}"
        if own in changed or target in changed:
            out.append(f"code of `{fn}` changed")
        # a module taken whole says it once, not once more per definition in it
        whole = {k.partition(" ")[0][:-2] for k in changed if k.partition(" ")[0].endswith(":*")}
        for ident in changed:
            if ident in (own, target) or (":*" not in ident and ident.rpartition(":")[0] in whole):
                continue
            if ident.startswith("dist:"):  # a library: its version is the part's value
                dist, old, new = ident[5:], old_code.get(ident), new_code.get(ident)
                out.append(
                    f"{dist} {old} -> {new}"
                    if old and new
                    else f"it now uses {dist} {new}"
                    if new
                    else f"it no longer uses {dist}"
                )
                continue
            head, _, why = ident.partition(" ")  # "ops:* (dynamic lookup in `run`)": why
            mod, _, name = head.rpartition(":")
            module_text = f"module `{mod}`{' ' + why if why else ''}"
            if name == "*" and ident in old_code and ident in new_code:
                out.append(f"code of {module_text} changed")
            elif name == "*":
                now = "now" if ident in new_code else "no longer"
                out.append(f"it {now} uses all of {module_text}")
            elif ident in new_code and ident not in old_code:
                out.append(f"it now uses `{mod}.{name}`")
            elif ident in old_code and ident not in new_code:
                out.append(f"it no longer uses `{mod}.{name}`")
            else:
                out.append(f"code of `{mod}.{name}` changed")
    old_params, new_params = previous.get("params") or {}, current["params"]
    for k in sorted(set(old_params) | set(new_params)):
        if k not in old_params:
            out.append(f"param `{k}` set to {_fmt(new_params[k])} (was its default)")
        elif k not in new_params:
            out.append(f"param `{k}` back to its default (was {_fmt(old_params[k])})")
        elif old_params[k] != new_params[k] or type(old_params[k]) is not type(new_params[k]):
            out.append(f"param `{k}` changed from {_fmt(old_params[k])} to {_fmt(new_params[k])}")
    old_models, new_models = previous.get("models") or {}, current["models"]
    moved_args = set()
    for arg, m in new_models.items():
        o = old_models.get(arg)
        if o and (o.get("name"), o.get("version")) != (m["name"], m["version"]):
            moved_args.add(arg)
            if o.get("name") != m["name"]:
                out.append(f"input `{arg}` now reads model `{m['name']}` v{m['version']}")
            else:
                out.append(_moved(m["name"], m["requested"], o.get("version"), m["version"]))
    if inputs:
        old_inputs, new_inputs = previous.get("inputs") or {}, current["inputs"]
        for arg in current["inputs"]:
            if arg in moved_args or new_inputs[arg] is None:
                continue
            if arg not in old_inputs:
                out.append(f"new input `{arg}`")
            elif old_inputs[arg] != new_inputs[arg]:
                out.append(f"input `{arg}` changed")
    return out


# -- looking entries up ---------------------------------------------------------------------------


@dataclass
class Decision:
    """What a run would do with one step: ``cached``, ``will run`` or ``may run``, and why.

    ``may run``: an input comes from a step that runs, so the key is known only then; the step is
    still a hit if that input comes out byte-identical (early cutoff).
    """

    step: str
    status: str
    why: list[str] = field(default_factory=list)
    key: str | None = None
    entry: CacheEntry | None = None
    #: the input content hashes ``key`` was computed from (a runner seeing the same ones reuses it)
    inputs: dict[str, str] | None = None

    @property
    def cached(self) -> bool:
        return self.status == "cached"


class CacheLookup:
    """Reads and checks cache entries for one run; remembers what it read and verified.

    Args:
        plan: the compiled plan (its model resolution is what recorded model reads must match).
        registry: where entries and artifacts live.
        enabled: ``cache.enabled``.
        refresh: ``cache.refresh``: steps to run even if cached.
    """

    def __init__(
        self,
        plan: Plan,
        registry: Registry,
        *,
        enabled: bool = True,
        refresh: frozenset[str] = frozenset(),
    ) -> None:
        self.plan = plan
        self.registry = registry
        self.enabled = enabled
        self.refresh = frozenset(refresh)
        self._docs: dict[str, dict[str, Any] | None] = {}
        self._entries: dict[str, CacheEntry | None] = {}  # key -> parsed _docs[key]
        self._index_keys: dict[str, str | None] = {}  # step -> key in its index (prefetched)
        self._sizes: dict[str, bool] = {}
        self.verified: set[str] = set()  # artifact ids whose bytes were hashed and matched
        self.corrupted: dict[str, ArtifactRef] = {}  # artifact id -> ref, bytes do not match
        self.lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()

    # what is allowed

    def off_reason(self, sp: StepPlan) -> str | None:
        """Why caching does not apply to ``sp`` in this run, or None if it does."""
        if not sp.enable_cache:
            return "caching is off for this step (@step(enable_cache=False))"
        if not self.plan.enable_cache:
            return "caching is off for this pipeline (pipeline.enable_cache=false)"
        if not self.enabled:
            return "caching is off for this run (cache.enabled=false)"
        if sp.name in self.refresh:
            return "cache.refresh names it"
        return None

    def storable(self, sp: StepPlan) -> bool:
        """Whether a run of ``sp`` may store an entry (``cache.enabled=false`` still stores)."""
        return sp.enable_cache and self.plan.enable_cache

    # reading

    def read(self, key: str) -> CacheEntry | None:
        with self.lock:
            if key in self._entries:
                return self._entries[key]
            if key not in self._docs:
                self._docs[key] = self.registry.storage.read_json(CacheEntry.path_for(key))
            doc = self._docs[key]
            try:
                entry = CacheEntry.from_json(doc) if doc is not None else None
            except (KeyError, TypeError, ValueError):
                entry = None  # an entry from an incompatible version: not trusted
            self._entries[key] = entry
            return entry

    def forget(self, key: str) -> None:
        with self.lock:
            self._docs.pop(key, None)
            self._entries.pop(key, None)

    def present(self, ref: ArtifactRef) -> bool:
        with self.lock:
            if ref.id not in self._sizes:
                self._sizes[ref.id] = self.registry.store.has(ref)
            return self._sizes[ref.id]

    def verify(self, ref: ArtifactRef) -> bool:
        """Hash the artifact's bytes (once per run); False if missing or corrupted."""
        with self.lock:
            if ref.id in self.verified:
                return True
            if ref.id in self.corrupted:
                return False
        try:
            ok = self.registry.store.verify(ref)
        except ArtifactError:
            ok = False
        with self.lock:
            if ok:
                self.verified.add(ref.id)
            else:
                self.corrupted[ref.id] = ref
                self._sizes[ref.id] = False
        return ok

    def check(self, sp: StepPlan, key: str) -> tuple[CacheEntry | None, list[str]]:
        """The usable entry for ``sp`` under ``key``, or None and why it is not usable."""
        entry = self.read(key)
        if entry is None:
            return None, []
        if set(entry.outputs) != set(sp.outputs):
            return None, ["its outputs changed"]
        model = self.plan.model
        for read_name, read_number in entry.model_reads:
            if model is None or model.name != read_name:
                return None, [f"it read model `{read_name}`, which this pipeline no longer names"]
            if model.creates_version:
                return None, [
                    f"it read model `{read_name}` v{read_number}; this run registers a new version"
                ]
            if model.number != read_number:
                return None, [_moved(read_name, model.requested, read_number, model.number)]
        for out, ref in entry.outputs.items():
            if ref.id in self.corrupted:
                return None, [f"cached output `{out}` is corrupted"]
            if not self.present(ref):
                return None, [f"cached output `{out}` is missing or incomplete"]
        return entry, []

    def previous(self, sp: StepPlan) -> dict[str, Any] | None:
        """The ingredients of the entry ``sp`` last stored or used in this pipeline (the index)."""
        doc = self.registry.storage.read_json(index_path(self.plan.pipeline, sp.name))
        return doc.get("ingredients") if isinstance(doc, dict) else None

    def write(self, sp: StepPlan, entry: CacheEntry) -> None:
        """Store ``entry``, then point the step's index at it (both small atomic writes)."""
        self.registry.storage.write_json(entry.path, entry.to_json())
        self._write_index(sp, entry)
        with self.lock:
            self._docs[entry.key] = entry.to_json()
            self._entries.pop(entry.key, None)

    def prefetch_index(self, steps: list[str]) -> None:
        """Read the indexes of ``steps`` in one batch (the steps predicted to be hits), so that
        :meth:`touch` needs no read of its own."""
        paths = {index_path(self.plan.pipeline, name): name for name in steps}
        docs = self.registry.storage.read_json_many(list(paths))
        with self.lock:
            for path, name in paths.items():
                doc = docs.get(path)
                self._index_keys[name] = doc.get("key") if isinstance(doc, dict) else None

    def touch(self, sp: StepPlan, entry: CacheEntry) -> None:
        """After a hit: point the step's index at ``entry`` if it points elsewhere, so that a
        plan compares with what the step last used (a write only on change)."""
        with self.lock:
            prefetched = sp.name in self._index_keys
            current = self._index_keys.pop(sp.name, None)
        if not prefetched:
            doc = self.registry.storage.read_json(index_path(self.plan.pipeline, sp.name))
            current = doc.get("key") if isinstance(doc, dict) else None
        if current != entry.key:
            self._write_index(sp, entry)

    def _write_index(self, sp: StepPlan, entry: CacheEntry) -> None:
        with self.lock:
            self._index_keys.pop(sp.name, None)
        self.registry.storage.write_json(
            index_path(self.plan.pipeline, sp.name),
            {
                "key": entry.key,
                "ingredients": entry.ingredients,
                "model_reads": [list(r) for r in entry.model_reads],
                "run_id": entry.run_id,
                "created": entry.created,
            },
        )


def decide(lookup: CacheLookup, *, explain: bool = False) -> dict[str, Decision]:
    """Predict, in plan order, which steps are cached and which run, without running any.

    Every cached artifact that a running (or possibly running) step will load is verified by
    hashing its bytes; a corrupted one turns its producer into a step that runs, which is then
    taken into account for the steps below it. ``explain`` also works out the reasons of steps
    that run (reading each step's index); without it only the statuses are computed.
    """
    plan = lookup.plan
    while True:
        decisions: dict[str, Decision] = {}
        for name, sp in plan.steps.items():
            decisions[name] = _decide_step(lookup, sp, decisions, explain)
        # Verify what running steps will load from cached ones; repeat if something was bad.
        bad = False
        for name, sp in plan.steps.items():
            if decisions[name].cached:
                continue
            for i in sp.inputs.values():
                producer = decisions.get(i.step or "")
                if i.kind == "step" and producer is not None and producer.entry is not None:
                    ref = producer.entry.outputs[i.output or ""]
                    if not lookup.verify(ref):
                        bad = True
        if not bad:
            return decisions


def _decide_step(
    lookup: CacheLookup, sp: StepPlan, decisions: dict[str, Decision], explain: bool
) -> Decision:
    off = lookup.off_reason(sp)
    if off is not None:
        return Decision(sp.name, "will run", [off])
    input_ids: dict[str, str | None] = {}
    recomputed: dict[str, list[str]] = {}  # producer that runs -> args it feeds
    for arg, i in sp.inputs.items():
        if i.kind == "step":
            producer = decisions[i.step or ""]
            if producer.entry is not None:
                input_ids[arg] = producer.entry.outputs[i.output or ""].id
            else:
                input_ids[arg] = None
                recomputed.setdefault(i.step or "", []).append(arg)
        else:
            input_ids[arg] = i.artifact.id if i.artifact else None
    if recomputed:
        pending = [
            f"input{'s' if len(args) > 1 else ''} {', '.join(f'`{a}`' for a in args)} "
            f"{'are' if len(args) > 1 else 'is'} recomputed by `{step}`"
            for step, args in recomputed.items()
        ]
        # The key is known only once those inputs are made; what is known now may decide it.
        current = ingredients(sp, input_ids)
        why = reasons(lookup.previous(sp), current, inputs=False) if explain else []
        if why:
            return Decision(sp.name, "will run", why)
        return Decision(sp.name, "may run", pending)
    known = {k: v for k, v in input_ids.items() if v is not None}
    key = cache_key(sp.static_key, known)
    entry, problems = lookup.check(sp, key)
    if entry is not None:
        return Decision(sp.name, "cached", [], key, entry, known)
    if not problems and explain:
        problems = reasons(lookup.previous(sp), ingredients(sp, input_ids)) or [
            "no cache entry for these ingredients"
        ]
    return Decision(sp.name, "will run", problems, key, None, known)


def warn(message: str) -> None:
    """A warning line for the person running the pipeline (stderr)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
