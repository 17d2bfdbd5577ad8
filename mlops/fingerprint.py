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
import os
from dataclasses import dataclass, field, replace

from . import _reach
from ._reach import Chain, Dynamic, Import, Module, Unit, is_project_file
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


def _parse(module: str) -> Module | None:
    return _reach.parse(module)


class _Walker:
    """Follows a step's names through the project (see :mod:`mlops._reach`)."""

    def __init__(self, program: _reach.Program) -> None:
        self.program = program
        self.parts: dict[str, list[str]] = {}
        self.whole: dict[str, set[str]] = {}
        self.libraries: set[str] = set()
        self._entities: set[tuple[str, str]] = set()
        self._units: set[tuple[str, int]] = set()
        self._everything: set[str] = set()

    # names

    def entity(self, mod: Module, name: str) -> None:
        key = (mod.name, name)
        if key in self._entities:
            return
        self._entities.add(key)
        own = [
            (mod, mod.units[i])
            for i in mod.binders.get(name, [])
            if name not in mod.units[i].imports
        ]
        mutators = []
        for m_name, i in [
            *self.program.mutators.get(key, []),
            *self.program.mutators.get((mod.name, "*"), []),
        ]:
            m = self.program.modules[m_name]
            mutators.append((m, m.units[i]))
        units = own + [u for u in mutators if u not in own]
        if units:
            units.sort(key=lambda mu: (mu[0].name != mod.name, mu[0].name, mu[1].index))
            self.parts[f"{mod.name}:{name}"] = [
                u.dump if m is mod else f"{m.name}\n{u.dump}" for m, u in units
            ]
        for m, unit in units:
            self.unit(m, unit)
        for m, unit in mutators:
            for bound in unit.binds:
                if bound not in unit.imports:
                    self.entity(m, bound)

    def chain(self, mod: Module, chain: Chain, local: dict[str, list[Import]] | None) -> None:
        head, rest = chain[0], chain[1:]
        if local and head in local:
            for src in local[head]:
                self.import_(src, rest)
            return
        binders = mod.binders.get(head, [])
        defined = False
        for i in binders:
            unit = mod.units[i]
            if head in unit.imports:
                self.import_(unit.imports[head], rest)
            else:
                defined = True
        if defined or (mod.name, head) in self.program.mutators:
            self.entity(mod, head)
        if binders:
            return
        for star in mod.star:
            kind = _reach.kind_of(star)
            if kind == "library":
                self.libraries.add(star.split(".")[0])
                continue
            target = self.program.get(star) if kind == "project" else None
            if target is not None and (head in target.binders or target.star):
                self.chain(target, chain, None)
        if mod.has_getattr and not defined:
            self.module(mod, None)

    def import_(self, src: Import, rest: Chain) -> None:
        module = src.module
        if src.attr is not None:
            kind = _reach.kind_of(module)
            if kind == "library":
                self.libraries.add(module.split(".")[0])
                return
            if kind != "project":
                return
            target = self.program.get(module)
            if target is not None and (
                src.attr in target.binders
                or (module, src.attr) in self.program.mutators
                or (target.star and _reach.module_file(f"{module}.{src.attr}") is None)
            ):
                self.chain(target, (src.attr, *rest), None)
                return
            module = f"{module}.{src.attr}"
        self.module_chain(module, rest)

    def module_chain(self, module: str, rest: Chain, reason: str | None = None) -> None:
        while True:
            kind = _reach.kind_of(module)
            if kind == "library":
                self.libraries.add(module.split(".")[0])
                return
            target = self.program.get(module) if kind == "project" else None
            if target is None:
                return
            if rest and (rest[0] in target.binders or (module, rest[0]) in self.program.mutators):
                self.chain(target, rest, None)
                return
            sub = f"{module}.{rest[0]}" if rest else None
            if sub is not None and _reach.module_file(sub) is not None:
                module, rest = sub, rest[1:]
                continue
            # the module object itself is used (passed on, iterated, an unknown attribute)
            self.module(target, reason)
            return

    def module(self, mod: Module, reason: str | None) -> None:
        """A whole module: all of its code, and what its statements reach."""
        reasons = self.whole.setdefault(mod.name, set())
        if reason:
            reasons.add(reason)
        if mod.name in self._everything:
            return
        self._everything.add(mod.name)
        for name in sorted(mod.binders):
            if any(name not in mod.units[i].imports for i in mod.binders[name]):
                self.entity(mod, name)
        for unit in mod.units:
            self.unit(mod, unit)
            for src in unit.imports.values():
                self.import_(src, ())

    # statements

    def unit(self, mod: Module, unit: Unit) -> None:
        key = (mod.name, unit.index)
        if key in self._units:
            return
        self._units.add(key)
        for chain in sorted(unit.chains):
            self.chain(mod, chain, unit.local_imports)
        for dyn in unit.dynamic:
            self.dynamic(mod, unit, dyn)

    def dynamic(self, mod: Module, unit: Unit, dyn: Dynamic) -> None:
        where = dyn.where or f"module `{mod.name}`"
        where = f"`{dyn.where}`" if dyn.where else f"the module-level code of `{mod.name}`"
        if dyn.kind == "import":
            self.everything(f"dynamic import in {where}")
        elif dyn.kind == "exec":
            self.everything(f"{dyn.detail} in {where}")
        elif dyn.kind == "import-literal" and dyn.detail:
            self.module_chain(dyn.detail, ())
        elif dyn.kind == "sys.modules":
            if dyn.detail:
                self.module_chain(dyn.detail, (), f"dynamic lookup in {where}")
            else:
                self.everything(f"dynamic lookup in {where}")
        elif dyn.kind == "lookup":
            reason = f"dynamic lookup in {where}"
            if not dyn.chain:
                self.module(mod, reason)
                return
            for module in self._modules_named(mod, dyn.chain, unit.local_imports):
                self.module_chain(module, (), reason)

    def _modules_named(
        self, mod: Module, chain: Chain, local: dict[str, list[Import]]
    ) -> list[str]:
        """The modules a chain may denote (``ops``, ``pkg.ops``, a name imported as a module)."""
        head, rest = chain[0], chain[1:]
        sources = list(local.get(head, [])) if local else []
        if not sources:
            sources = [
                mod.units[i].imports[head]
                for i in mod.binders.get(head, [])
                if head in mod.units[i].imports
            ]
        found = []
        for src in sources:
            module = src.module
            if src.attr is not None:
                if _reach.module_file(f"{module}.{src.attr}") is None:
                    target = self.program.get(module)
                    if target is not None and src.attr in target.binders:
                        found.extend(self._modules_named(target, (src.attr, *rest), {}))
                    continue
                module = f"{module}.{src.attr}"
            for attr in rest:
                if _reach.module_file(f"{module}.{attr}") is None:
                    break
                module = f"{module}.{attr}"
            found.append(module)
        return found

    def everything(self, reason: str) -> None:
        """Every module of the project: what a computed import or exec may run."""
        for name in _project_modules(self.program):
            target = self.program.get(name)
            if target is not None:
                self.module(target, reason)

    def result(self, libraries: bool) -> dict[str, str]:
        out = {
            ident: token(dumps[0]) if len(dumps) == 1 else token(dumps)
            for ident, dumps in self.parts.items()
        }
        for name, reasons in self.whole.items():
            mod = self.program.modules[name]
            why = f" ({'; '.join(sorted(reasons))})" if reasons else ""
            out[f"{name}:*{why}"] = token(mod.dump)
        if libraries and self.libraries:
            from .libraries import distributions_of, with_dependencies

            dists = []
            for top in sorted(self.libraries):
                folder = _reach._top_folder(top)
                if folder is not None:
                    dists.extend(distributions_of(top, [folder]))
            for dist in with_dependencies(dists):
                out[dist.ident] = dist.version
        return dict(sorted(out.items()))


def _project_modules(program: _reach.Program) -> list[str]:
    """Every module under the folders the program's modules were found in."""
    roots: set[str] = set()
    for mod in program.modules.values():
        depth = mod.name.count(".") + (2 if mod.is_package else 1)
        root = mod.path
        for _ in range(depth):
            root = os.path.dirname(root)
        roots.add(root)
    names: set[str] = set()
    for root in sorted(roots):
        for folder, dirs, files in os.walk(root):
            rel = os.path.relpath(folder, root)
            prefix = "" if rel == "." else rel.replace(os.sep, ".") + "."
            if rel != "." and "__init__.py" not in files:
                dirs[:] = []
                continue
            dirs[:] = sorted(d for d in dirs if d.isidentifier() and not d.startswith("."))
            for f in files:
                stem = f[:-3]
                if f.endswith(".py") and stem.isidentifier():
                    name = prefix + stem if stem != "__init__" else prefix.rstrip(".")
                    if name and _reach.kind_of(name) == "project":
                        names.add(name)
    return sorted(names)


def fingerprint_parts(module: str, name: str, *, libraries: bool = True) -> dict[str, str] | None:
    """``{"module:name": hash}`` for ``module.name`` and each definition of the user's project
    it reaches (``"module:*"`` for a whole module, ``"dist:NAME": version`` for a library it
    imports); None if the source cannot be read.

    .. versionchanged:: 0.2
       imports at every depth, mutations, dynamic fallbacks and library versions; ``libraries``.
    """
    mod = _parse(module)
    if mod is None or not any(name not in mod.units[i].imports for i in mod.binders.get(name, [])):
        return None
    walker = _Walker(_reach.program_for(mod))
    walker.entity(mod, name)
    return walker.result(libraries)


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
    """
    module, _, name = target.rpartition(".")
    if not module:
        return None
    mod = _parse(module)
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
    where = f"step {target}"
    if args.vararg or args.kwarg:
        raise StepDefinitionError(f"{where}: *args and **kwargs are not allowed in a step")
    positional = [*args.posonlyargs, *args.args]
    params = tuple(a.arg for a in [*positional, *args.kwonlyargs])
    n_required_pos = len(positional) - len(args.defaults)
    required = {a.arg for a in positional[:n_required_pos]}
    required |= {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None}
    outputs = outputs_from_annotation(node.returns, where)
    parts = fingerprint_parts(module, name, libraries=libraries) or {}
    code = token(sorted(parts.items()))
    return StepSignature(
        target,
        step_name,
        params,
        frozenset(required),
        outputs,
        enable_cache,
        code,
        tuple(parts.items()),
    )
