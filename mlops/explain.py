"""``plan=true``: compile, look up the cache, and say for each step what a run would do and why.

Nothing is run and nothing is written. Each step is one of:

* ``cached`` -- its entry exists, its artifacts are there (and verified, when a running step
  would load them), and the model versions it read are still the ones resolved;
* ``will run`` -- with the reasons, found by comparing the step's ingredients with those of the
  last entry the step stored in this pipeline (``cache/steps/<pipeline>/<step>.json``):
  ``first run``, ``code of `train` changed``, ``param `C` changed from 1.0 to 10``,
  ``input `data` changed``, ``model `iris_classifier` production moved from v3 to v4``, caching
  turned off, ``cache.refresh`` naming it, a missing or corrupted cached output;
* ``may run`` -- an input comes from a step that runs, so the step is a hit again only if that
  input comes out byte-identical (early cutoff).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cache import CacheLookup, decide, hide_secret_reason
from .compiler import Plan

if TYPE_CHECKING:
    from .registry import Registry

__all__ = ["explain"]


def explain(
    plan: Plan, registry: Registry, *, refresh: list[str] | None = None, enabled: bool = True
) -> str:
    """The plan text: a header, then one line per step in run order.

    Example output::

        plan for train_and_promote (nothing is run):
          load_data  cached
          split      cached
          train      will run: param `C` changed from 1.0 to 10
          evaluate   may run: input `model` comes from `train`, which runs
          promote    will run: caching is off for this step (@step(enable_cache=False))
    """
    lookup = CacheLookup(
        plan,
        registry.cache,
        registry.artifacts,
        enabled=enabled,
        refresh=frozenset(refresh or ()),
    )
    decisions = decide(lookup, explain=True)
    width = max(len(name) for name in plan.steps)
    lines = [f"plan for {plan.pipeline} (nothing is run):"]
    for name, d in decisions.items():
        why = [hide_secret_reason(w) for w in d.why]
        text = str(d.status) + (": " + "; ".join(why) if why else "")
        lines.append(f"  {name:<{width}}  {text}")
    return "\n".join(lines)
