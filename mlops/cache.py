"""Cache keys, cache entries, and the decision of what is cached and why.

A step's cache key is computed when its inputs are known, from:

* its static key (:mod:`mlops.compiler`): the code hash, the params, the artifact format version,
  and the concrete model versions and artifact ids it reads through references;
* the content hash of each input that comes from an upstream step.

Using *content* hashes of inputs, not upstream keys, gives early cutoff: an upstream step that
re-runs and produces byte-identical output leaves everything below it cached.

Entries and the per-step index that says *why* a step runs are kept by the cache store
(:mod:`mlops.cache_store`); artifacts by the artifact store (:mod:`mlops.store`).

An entry is trusted only if every artifact it names exists with the recorded size, the model
versions the step read from its step context are still the ones this run resolved, and -- for an
artifact that a step of this run will load -- its bytes hash to its id. Hashing is only done for
those: a fully cached run reads no payload.

:func:`decide` walks a plan in order and predicts each step's fate without running anything;
``plan=true`` prints it (:mod:`mlops.explain`) and the executor uses it to know which cached
artifacts must be verified before they are trusted.
"""

from __future__ import annotations

import enum
import json
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .cache_store import CacheEntry, CacheStore
from .compiler import ArtifactInput, FileInput, StepInput, StoredInput
from .errors import ArtifactError
from .hashing import token
from .serializers import FORMAT_VERSION
from .store import ArtifactRef, ArtifactStore

if TYPE_CHECKING:
    from .compiler import Plan, StepPlan

__all__ = [
    "CacheEntry",
    "CacheLookup",
    "Decision",
    "Fate",
    "cache_key",
    "decide",
    "hide_secret_reason",
    "ingredients",
    "reasons",
    "why_it_runs",
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


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists; others their repr)."""
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError):
        return repr(value)


def ingredients(sp: StepPlan, input_ids: dict[str, str | None]) -> dict[str, Any]:
    """What went into a step's key, in readable form (kept in the entry and the index).

    A param whose name is secret (``password``, ``api_token``; :mod:`mlops.redaction`) is in
    the key, but only a fingerprint of it is kept here (so that a plan can say it changed), and
    secret keys nested in other params are kept as ``***``.
    """
    from .redaction import secret_param

    return {
        "format": FORMAT_VERSION,
        "target": sp.target,
        "code": dict(sp.signature.code_parts) or {sp.target: sp.signature.code_hash},
        "params": {k: secret_param(k, _plain(v)) for k, v in sp.params.items()},
        "inputs": {arg: input_ids.get(arg) for arg in sp.inputs},
        "models": {
            arg: {"name": i.model, "version": i.version, "requested": i.requested}
            for arg, i in sp.inputs.items()
            if isinstance(i, ArtifactInput)
        },
        "files": {
            arg: {"path": i.path, "digest": i.digest}
            for arg, i in sp.inputs.items()
            if isinstance(i, FileInput)
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
    old_files, new_files = previous.get("files") or {}, current.get("files") or {}
    for arg, f in new_files.items():
        o = old_files.get(arg)
        if o is None:
            out.append(f"new file input `{arg}` ({f['path']})")
        elif o.get("path") != f["path"]:
            out.append(f"input `{arg}` now reads file `{f['path']}` (was `{o.get('path')}`)")
        elif o.get("digest") != f["digest"]:
            out.append(f"file `{f['path']}` changed")
    if inputs:
        old_inputs, new_inputs = previous.get("inputs") or {}, current["inputs"]
        for arg in current["inputs"]:
            if arg in moved_args or arg in new_files or new_inputs[arg] is None:
                continue
            if arg not in old_inputs:
                out.append(f"new input `{arg}`")
            elif old_inputs[arg] != new_inputs[arg]:
                out.append(f"input `{arg}` changed")
    return out


# -- looking entries up ---------------------------------------------------------------------------


class Fate(str, enum.Enum):
    """What a run would do with a step."""

    CACHED = "cached"
    WILL_RUN = "will run"
    #: an input comes from a step that runs, so the key is known only then; the step is still a
    #: hit if that input comes out byte-identical (early cutoff)
    MAY_RUN = "may run"

    def __str__(self) -> str:
        return self.value


class Problem(str, enum.Enum):
    """Why an entry that exists cannot be used, when that calls for a warning."""

    CORRUPTED = "corrupted"
    MISSING = "missing"


@dataclass(frozen=True)
class Decision:
    """What a run would do with one step (:class:`Fate`), and why."""

    step: str
    status: Fate
    why: list[str] = field(default_factory=list)
    cache_key: str | None = None
    entry: CacheEntry | None = None
    #: the input content hashes ``cache_key`` was computed from (a runner seeing the same ones
    #: reuses it)
    inputs: dict[str, str] | None = None

    @property
    def cached(self) -> bool:
        return self.status is Fate.CACHED


class CacheLookup:
    """Reads and checks cache entries for one run; remembers what it read and verified.

    Args:
        plan: the compiled plan (its model resolution is what recorded model reads must match).
        cache: where entries live.
        artifacts: where the artifacts they name live.
        enabled: ``cache.enabled``.
        refresh: ``cache.refresh``: steps to run even if cached.
    """

    def __init__(
        self,
        plan: Plan,
        cache: CacheStore,
        artifacts: ArtifactStore,
        *,
        enabled: bool = True,
        refresh: frozenset[str] = frozenset(),
    ) -> None:
        self.plan = plan
        self.cache = cache
        self.artifacts = artifacts
        self.enabled = enabled
        self.refresh = frozenset(refresh)
        self._docs: dict[str, dict[str, Any] | None] = {}
        self._entries: dict[str, CacheEntry | None] = {}  # key -> parsed _docs[key]
        self._index_keys: dict[str, str | None] = {}  # step -> key in its index (prefetched)
        self._stamps: dict[str, str | None] = {}  # artifact id -> its storage stamp now
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
                self._docs[key] = self.cache.read_entry_doc(key)
            entry = CacheStore.parse(self._docs[key])
            if entry is not None and entry.cache_key != key:
                entry = None  # an entry copied from another key: never a hit
            self._entries[key] = entry
            return entry

    def forget(self, key: str) -> None:
        with self.lock:
            self._docs.pop(key, None)
            self._entries.pop(key, None)

    def intact(self, ref: ArtifactRef, stamp: str | None) -> Problem | None:
        """Whether a cached output can be trusted without reading it: its storage stamp is the
        one recorded when it was written (so are its bytes). Otherwise -- an entry from before
        stamps, a copied registry, or bytes changed in place -- its bytes are hashed, once per
        run. None if intact, else what is wrong."""
        with self.lock:
            if ref.id not in self._stamps:
                self._stamps[ref.id] = self.artifacts.stamp(ref)
            now = self._stamps[ref.id]
        if now is None:
            return Problem.MISSING
        if stamp is not None and now == stamp:
            return None
        return None if self.verify(ref) else Problem.CORRUPTED

    def verify(self, ref: ArtifactRef) -> bool:
        """Hash the artifact's bytes (once per run); False if missing or corrupted."""
        with self.lock:
            if ref.id in self.verified:
                return True
            if ref.id in self.corrupted:
                return False
        try:
            ok = self.artifacts.verify(ref)
        except ArtifactError:
            ok = False
        with self.lock:
            if ok:
                self.verified.add(ref.id)
            else:
                self.corrupted[ref.id] = ref
        return ok

    def check(self, sp: StepPlan, key: str) -> tuple[CacheEntry | None, list[str], Problem | None]:
        """The usable entry for ``sp`` under ``key``, or None, why it is not usable, and whether
        that is a damaged or missing artifact (which deserves a warning)."""
        entry = self.read(key)
        if entry is None:
            return None, [], None
        if set(entry.outputs) != set(sp.outputs):
            return None, ["its outputs changed"], None
        model = self.plan.model
        for read_name, read_number in entry.model_reads:
            if model is None or model.name != read_name:
                why = f"it read model `{read_name}`, which this pipeline no longer names"
                return None, [why], None
            if model.creates_version:
                why = (
                    f"it read model `{read_name}` v{read_number}; this run registers a new version"
                )
                return None, [why], None
            if model.number != read_number:
                return None, [_moved(read_name, model.requested, read_number, model.number)], None
        for out, ref in entry.outputs.items():
            problem = (
                Problem.CORRUPTED
                if ref.id in self.corrupted
                else self.intact(ref, entry.stamps.get(out))
            )
            if problem is Problem.CORRUPTED:
                return None, [f"cached output `{out}` is corrupted"], problem
            if problem is Problem.MISSING:
                why = f"cached output `{out}` is missing or incomplete"
                return None, [why], problem
        return entry, [], None

    def previous(self, sp: StepPlan) -> dict[str, Any] | None:
        """The ingredients of the entry ``sp`` last stored or used in this pipeline (the index)."""
        index = self.cache.read_index(self.plan.pipeline, sp.name)
        return dict(index.ingredients) if index and index.ingredients is not None else None

    def write(self, sp: StepPlan, entry: CacheEntry) -> None:
        """Store ``entry``, then point the step's index at it (both small atomic writes)."""
        self.cache.write_entry(entry)
        self._write_index(sp, entry)
        with self.lock:
            self._docs[entry.cache_key] = entry.to_json()
            self._entries.pop(entry.cache_key, None)

    def prefetch_index(self, steps: list[str]) -> None:
        """Read the indexes of ``steps`` in one batch (the steps predicted to be hits), so that
        :meth:`touch` needs no read of its own."""
        keys = self.cache.read_index_keys(self.plan.pipeline, steps)
        with self.lock:
            self._index_keys.update(keys)

    def touch(self, sp: StepPlan, entry: CacheEntry) -> None:
        """After a hit: point the step's index at ``entry`` if it points elsewhere, so that a
        plan compares with what the step last used (a write only on change)."""
        with self.lock:
            prefetched = sp.name in self._index_keys
            current = self._index_keys.pop(sp.name, None)
        if not prefetched:
            index = self.cache.read_index(self.plan.pipeline, sp.name)
            current = index.cache_key if index else None
        if current != entry.cache_key:
            self._write_index(sp, entry)

    def _write_index(self, sp: StepPlan, entry: CacheEntry) -> None:
        with self.lock:
            self._index_keys.pop(sp.name, None)
        self.cache.write_index(self.plan.pipeline, entry)


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
                if not isinstance(i, StepInput):
                    continue
                producer = decisions.get(i.step)
                if producer is not None and producer.entry is not None:
                    ref = producer.entry.outputs[i.output]
                    if not lookup.verify(ref):
                        bad = True
        if not bad:
            return decisions


def _decide_step(
    lookup: CacheLookup, sp: StepPlan, decisions: dict[str, Decision], explain: bool
) -> Decision:
    off = lookup.off_reason(sp)
    if off is not None:
        return Decision(sp.name, Fate.WILL_RUN, [off])
    input_ids: dict[str, str | None] = {}
    recomputed: dict[str, list[str]] = {}  # producer that runs -> args it feeds
    for arg, i in sp.inputs.items():
        if isinstance(i, StepInput):
            producer = decisions[i.step]
            if producer.entry is not None:
                input_ids[arg] = producer.entry.outputs[i.output].id
            else:
                input_ids[arg] = None
                recomputed.setdefault(i.step, []).append(arg)
        else:
            input_ids[arg] = input_id(i)
    if recomputed:
        pending = [
            f"input{'s' if len(args) > 1 else ''} {', '.join(f'`{a}`' for a in args)} "
            f"{'are' if len(args) > 1 else 'is'} recomputed by `{step}`"
            for step, args in recomputed.items()
        ]
        # The key is known only once those inputs are made; what is known now may decide it.
        why = (
            reasons(lookup.previous(sp), ingredients(sp, input_ids), inputs=False)
            if explain
            else []
        )
        if why:
            return Decision(sp.name, Fate.WILL_RUN, why)
        return Decision(sp.name, Fate.MAY_RUN, pending)
    known = {k: v for k, v in input_ids.items() if v is not None}
    key = cache_key(sp.static_key, known)
    entry, problems, _ = lookup.check(sp, key)
    if entry is not None:
        return Decision(sp.name, Fate.CACHED, [], key, entry, known)
    if not problems and explain:
        problems = reasons(lookup.previous(sp), ingredients(sp, input_ids)) or [
            "no cache entry for these ingredients"
        ]
    return Decision(sp.name, Fate.WILL_RUN, problems, key, None, known)


def why_it_runs(
    lookup: CacheLookup, sp: StepPlan, key: str, input_ids: dict[str, str]
) -> list[str]:
    """Why ``sp`` runs now that its inputs are known, in the plan's words (kept in the run record).

    Called only for a step that runs, before it stores anything (its index still names what it
    last used). A first run reads one missing index and compares nothing.
    """
    off = lookup.off_reason(sp)
    if off is not None:
        return [off]
    _, problems, _ = lookup.check(sp, key)  # read and checked just before: remembered
    if problems:
        return problems
    previous = lookup.previous(sp)
    if previous is None:
        return ["first run"]
    why = reasons(previous, ingredients(sp, dict(input_ids)))
    return [hide_secret_reason(w) for w in why] or ["no cache entry for these ingredients"]


_PARAM_REASON = re.compile(r"param `(?P<name>[^`]+)` (?P<what>changed|set to|back to its default)")


def hide_secret_reason(reason: str) -> str:
    """A reason about a secret param (``password``, ``api_token``) without its values.

    Cache records keep only a fingerprint of such a param; a plan or a run record says that it
    changed and nothing about its value.

    Examples:
        >>> hide_secret_reason("param `password` changed from '*** a' to '*** b'")
        'param `password` changed (a secret: its values are not shown)'
        >>> hide_secret_reason("param `C` changed from 1.0 to 10")
        'param `C` changed from 1.0 to 10'
    """
    from .redaction import is_secret_key

    m = _PARAM_REASON.match(reason)
    if m is None or not is_secret_key(m["name"]):
        return reason
    what = {"changed": "changed", "set to": "set", "back to its default": "back to its default"}
    return f"param `{m['name']}` {what[m['what']]} (a secret: its values are not shown)"


def input_id(i: ArtifactInput | FileInput | StoredInput) -> str:
    """What stands for an input that is known before the run in its step's ``input_ids``."""
    if isinstance(i, (ArtifactInput, StoredInput)):
        return i.artifact.id
    return f"file:{i.digest}"


def warn(message: str) -> None:
    """A warning line for the person running the pipeline (the ``mlops.cache`` logger: stderr)."""
    from .console import say

    say(f"warning: {message}", err=True, logger="mlops.cache")
