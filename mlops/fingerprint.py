"""Step code fingerprints and step signatures, read from source text without importing it.

A step's cache key must change when the code it can reach changes, and must not change for
anything else. Reading this from the source text (the module's AST) instead of the imported
objects has two benefits: a fully cached run never imports the step modules (nor the heavy
libraries they import), and the result does not depend on the process.

What counts as code (see :mod:`mlops._reach` for the model):

* the step function's AST (so comments, blank lines and docstrings do not count: they cannot
  change a result);
* the *definition* of every name of the user's project it reaches, recursively: every
  module-level statement that binds the name or may mutate it (``OPS = {}``, ``@register`` on
  functions, ``OPS.update(...)``, ``OPS["x"] = f``, ``X += 1``, definitions inside module-level
  ``if``/``for``/``try``/``with`` blocks, ``global`` writes), followed through imports at every
  depth and in every form (``import a.b``, ``import a.b as c``, ``from . import x``,
  ``from .mod import *``, imports inside function bodies);
* where static reading cannot know what runs (``importlib.import_module`` or ``__import__`` with
  a computed name, ``getattr`` on a module with a computed name, ``exec``/``eval``,
  ``globals()``, ``vars()``, ``sys.modules[...]``), the whole module, or every module of the
  project, with the reason in its part's name: ``ops:* (dynamic lookup in `run`)``;
* the version of each third-party distribution the reached code imports, and of the
  distributions those require (``dist:scikit-learn`` -> ``1.5.2``; see :mod:`mlops.libraries`).

The standard library and mlops itself are not in it: their versions come with the Python and
mlops versions, and artifact formats carry a version of their own (see
:data:`mlops.serializers.FORMAT_VERSION`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from typing import Any

from . import _deps, signature_cache
from ._reach import library_parts, reach_project
from ._source import is_project_file
from ._units import parse
from .errors import StepDefinitionError
from .hashing import token

__all__ = [
    "LIBRARY_PREFIX",
    "StepSignature",
    "fingerprint",
    "fingerprint_parts",
    "is_project_file",
    "read_step_signature",
    "without_libraries",
]

#: Code parts whose ident starts with this are library versions (``dist:NAME`` -> version).
LIBRARY_PREFIX = "dist:"


@dataclass(frozen=True)
class StepSignature:
    """What the compiler needs to know about a step, read statically or from the function."""

    target: str
    name: str
    params: tuple[str, ...]
    required: frozenset[str]
    outputs: tuple[str, ...]
    enable_cache: bool = True
    code_hash: str = ""
    #: ``(("module:name", hash), ...)``: the hash of each definition the code hash covers, so
    #: that a plan can say which one changed; ``("module:* (why)", hash)`` for a whole module;
    #: ``("dist:NAME", version)`` for a library.
    code_parts: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    annotations: dict[str, str] = field(default_factory=dict, compare=False)


def without_libraries(sig: StepSignature) -> StepSignature:
    """``sig`` without its library versions (``cache.track_libraries=false``).

    Examples:
        >>> s = StepSignature("m.f", "f", (), frozenset(), (), code_parts=(("m:f", "h"),
        ...     ("dist:numpy", "2.0")))
        >>> without_libraries(s).code_parts
        (('m:f', 'h'),)
    """
    parts = tuple(p for p in sig.code_parts if not p[0].startswith(LIBRARY_PREFIX))
    if len(parts) == len(sig.code_parts):
        return sig
    return replace(sig, code_hash=token(sorted(parts)), code_parts=parts)


def fingerprint_parts(module: str, name: str, *, libraries: bool = True) -> dict[str, str] | None:
    """``{"module:name": hash}`` for ``module.name`` and each definition of the user's project
    it reaches (``"module:*"`` for a whole module, ``"dist:NAME": version`` for a library it
    imports); None if the source cannot be read.

    Memoized (:mod:`mlops.signature_cache`): recomputed only when a file it was read from changed.

    .. versionchanged:: 0.2
       imports at every depth, mutations, dynamic fallbacks and library versions; ``libraries``.
    """
    entry = signature_cache.lookup(module, f"parts:{name}", lambda: _project_parts(module, name))
    found = entry.value
    if found is None:
        return None
    parts, tops = found
    out = dict(parts)
    if libraries:
        out.update(_libraries(tuple(tops)).parts)
    return dict(sorted(out.items()))


def _project_parts(module: str, name: str) -> list[Any] | None:
    """``[[[ident, hash], ...], [library top-level module, ...]]`` (JSON, for the memo)."""
    found = reach_project(module, name)
    if found is None:
        return None
    parts, tops = found
    return [[list(p) for p in sorted(parts.items())], list(tops)]


@dataclass(frozen=True)
class _Libraries:
    """The library parts of a set of top-level modules, and a digest of them."""

    parts: dict[str, str]
    digest: str


_NO_LIBRARIES = _Libraries({}, token([]))


def _libraries(tops: tuple[str, ...]) -> _Libraries:
    """:func:`mlops._reach.library_parts`, once per compile session for each set of modules."""
    if not tops:
        return _NO_LIBRARIES
    memo = _deps.session_memo()
    key = ("libraries", tops)
    found = memo.get(key) if memo is not None else None
    if not isinstance(found, _Libraries):
        parts = library_parts(tops)
        found = _Libraries(parts, token(sorted(parts.items())))
        if memo is not None:
            memo[key] = found
    return found


def fingerprint(module: str, name: str) -> str | None:
    """Hash of the code of ``module.name`` and the project code it reaches; None if unreadable.

    Examples:
        >>> fingerprint("mlops.examples.iris.promotion", "promote") == fingerprint(
        ...     "mlops.examples.iris.promotion", "promote")
        True
    """
    parts = fingerprint_parts(module, name)
    return None if parts is None else token(sorted(parts.items()))


# --- static signatures ---------------------------------------------------------------------------


def _const_str(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _subscript_name(node: ast.AST) -> str:
    base = node.value if isinstance(node, ast.Subscript) else node
    if isinstance(base, ast.Attribute):
        return base.attr
    if isinstance(base, ast.Name):
        return base.id
    return ""


def _output_name(node: ast.AST, where: str) -> str | None:
    if isinstance(node, ast.Subscript) and _subscript_name(node) == "Annotated":
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        names = [s for s in (_const_str(e) for e in elts[1:]) if s is not None]
        if len(names) != 1:
            raise StepDefinitionError(
                f"{where}: Annotated[...] needs exactly one string, the output's name, "
                'e.g. Annotated[pd.DataFrame, "features"]'
            )
        return names[0]
    return None


def outputs_from_annotation(node: ast.AST | None, where: str) -> tuple[str, ...]:
    """Output names from a return annotation's AST (see :func:`mlops.steps.output_names`)."""
    if node is None:
        return ("output",)
    text = _const_str(node)
    if text is not None:  # a string annotation: parse it
        node = ast.parse(text, mode="eval").body
    single = _output_name(node, where)
    if single is not None:
        return (single,)
    if isinstance(node, ast.Subscript) and _subscript_name(node) in ("Tuple", "tuple"):
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        names = [_output_name(e, where) for e in elts]
        if all(names):
            return _unique(tuple(n for n in names if n), where)
        if any(names):
            raise StepDefinitionError(
                f"{where}: name every output of a tuple return, e.g. "
                'Tuple[Annotated[X, "a"], Annotated[Y, "b"]]'
            )
    if isinstance(node, ast.Constant) and node.value is None:
        return ()
    return ("output",)


def _unique(names: tuple[str, ...], where: str) -> tuple[str, ...]:
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise StepDefinitionError(f"{where}: output names must be unique, got {dupes[0]!r} twice")
    return names


def read_step_signature(target: str, *, libraries: bool = True) -> StepSignature | None:
    """The signature of the step at import path ``target``, read from source; None if unsure.

    None means the caller must import the module: the function is not a plain ``def`` decorated
    with ``@step`` at the top of its module, bound once (made by a factory, re-exported,
    rebound later, defined in an ``if`` block ...). ``libraries=False`` leaves library versions
    out of its code parts (``cache.track_libraries=false``).

    Memoized (:mod:`mlops.signature_cache`): read again only when a file it was read from
    changed, so a compile of an unchanged pipeline costs about a lookup per step.
    """
    module, _, name = target.rpartition(".")
    if not module:
        return None
    entry = signature_cache.lookup(module, f"sig:{name}", lambda: _read_signature(module, name))
    if entry.value is None:
        return None
    static, tops, *known = entry.value
    lib = _libraries(tuple(tops)) if libraries else _NO_LIBRARIES
    key = (target, libraries, lib.digest)
    sig = entry.derived.get(key)
    if sig is None:
        step_name, params, required, outputs, enable_cache, project = static
        parts = dict(sorted({**dict(map(tuple, project)), **lib.parts}.items()))
        # the code hash is remembered with the digest of the library versions it covers
        variant = f"{libraries}:{lib.digest}"
        if known and isinstance(known[0], list) and known[0][:1] == [variant]:
            code = known[0][1]
        else:
            code = token(sorted(parts.items()))
            entry.value = [static, tops, [variant, code]]
            signature_cache.changed(module)
        sig = StepSignature(
            target,
            step_name,
            tuple(params),
            frozenset(required),
            tuple(outputs),
            enable_cache,
            code,
            tuple(parts.items()),
        )
        entry.derived.clear()  # one variant at a time: a compile uses one setting
        entry.derived[key] = sig
    return sig


def _read_signature(module: str, name: str) -> list[Any] | None:
    """The static signature of ``module.name`` as JSON for the memo (see
    :func:`read_step_signature`): ``[[name, params, required, outputs, enable_cache, parts],
    library top-level modules]``; None if only the function can tell."""
    mod = parse(module)
    if mod is None:
        return None
    node = mod.defs.get(name)
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    if len(mod.binders.get(name, [])) != 1:
        return None  # bound again elsewhere (`f = wrap(f)`): only the function knows
    step_name, enable_cache, decorated = name, True, False
    for dec in node.decorator_list:
        call = dec if isinstance(dec, ast.Call) else None
        func = call.func if call else dec
        dname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if dname != "step":
            return None  # another decorator may change the signature: ask the function
        decorated = True
        for kw in call.keywords if call else []:
            if not isinstance(kw.value, ast.Constant):
                return None
            if kw.arg == "name":
                if not isinstance(kw.value.value, str):
                    return None
                step_name = kw.value.value
            elif kw.arg == "enable_cache":
                enable_cache = bool(kw.value.value)
    if not decorated:
        return None
    args = node.args
    where = f"step {module}.{name}"
    if args.vararg or args.kwarg:
        raise StepDefinitionError(f"{where}: *args and **kwargs are not allowed in a step")
    positional = [*args.posonlyargs, *args.args]
    params = [a.arg for a in [*positional, *args.kwonlyargs]]
    n_required_pos = len(positional) - len(args.defaults)
    required = {a.arg for a in positional[:n_required_pos]}
    required |= {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None}
    outputs = list(outputs_from_annotation(node.returns, where))
    found = _project_parts(module, name) or [[], []]
    project, tops = found
    return [[step_name, params, sorted(required), outputs, enable_cache, project], tops]
