"""``plan=true``: compile, look up the cache, and say for each step what a run would do."""

from __future__ import annotations

from .cache import CacheEntry, cache_key
from .compiler import Plan
from .registry import Registry

__all__ = ["explain"]


def explain(plan: Plan, registry: Registry, *, refresh: list[str] | None = None, enabled: bool = True) -> str:
    lines = [f"plan for {plan.pipeline} (nothing is run):"]
    ids: dict[str, dict[str, str] | None] = {}
    for sp in plan.steps.values():
        input_ids: dict[str, str] = {}
        unknown = []
        for arg, i in sp.inputs.items():
            if i.kind == "step":
                outs = ids.get(i.step or "")
                if outs is None:
                    unknown.append(i.step)
                else:
                    input_ids[arg] = outs[i.output or ""]
            else:
                input_ids[arg] = i.artifact.id if i.artifact else ""
        status = "will run"
        if not (enabled and plan.enable_cache and sp.enable_cache):
            reason = "caching is off for this step"
        elif refresh and sp.name in refresh:
            reason = "cache.refresh names it"
        elif unknown:
            reason = f"its input from {', '.join(sorted(set(unknown)))} will be recomputed"
        else:
            doc = registry.storage.read_json(CacheEntry.path_for(cache_key(sp.static_key, input_ids)))
            if doc is not None:
                entry = CacheEntry.from_json(doc)
                if all(registry.store.has(r) for r in entry.outputs.values()):
                    ids[sp.name] = {k: v.id for k, v in entry.outputs.items()}
                    lines.append(f"  {sp.name}: cached")
                    continue
            reason = "no cache entry"
        ids[sp.name] = None
        lines.append(f"  {sp.name}: {status} ({reason})")
    return "\n".join(lines)
