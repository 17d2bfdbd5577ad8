"""What code a step reaches, read from the source text of the user's project (no imports).

The model. A project module is read into *units*: every statement that runs when the module is
imported -- a ``def``, a ``class``, an assignment, an expression statement, an import -- at any
depth of module-level ``if``/``for``/``while``/``try``/``with``/``match`` blocks; a compound
statement's header (its test, loop target, handlers) is a unit too, and the units inside carry
their headers, so a definition moved into an ``else`` branch is a different definition. For each
unit the scan records:

* the names it binds (``binds``) and, for imports, where each name comes from;
* the free names it refers to, as attribute chains (``helpers.clean`` -> ``("helpers",
  "clean")``), with names bound by imports *inside* function bodies resolved through those
  imports (``def f(): from helpers import clean``);
* the names it may *mutate*: at import time (``OPS["x"] = f``, ``OPS.update(...)``, ``OPS`` passed
  to a call, ``setattr(mod, "x", f)``), or in a function body when that function is called
  (the same forms, and ``global`` writes);
* the dynamic lookups static reading cannot follow (``importlib.import_module``, ``__import__``,
  ``getattr`` with a computed name, ``exec``/``eval``, ``globals()``, ``vars()``,
  ``sys.modules[...]``).

A name's *definition* is every unit that binds it or may mutate it, across the project modules
loaded with the step's module. A unit that calls a function at import time (a decorator such as
``@register``, a call ``register(f)``, a subclass whose base has ``__init_subclass__``) mutates
what that function's body mutates, transitively; and a function whose body writes a global or
stores into it is part of that global's definition. The walk starts at the step function and
follows every name of every unit it includes, into other modules through imports; whatever
cannot be followed falls back to the whole module or to every module of the project, with the
reason recorded. It may over-approximate; it never under-approximates for code it can read.
"""

from __future__ import annotations

import os

from ._deps import Dep, in_session, note, recording, still_valid
from ._source import kind_of, module_file, top_folder
from ._units import Chain, Dynamic, Entity, Import, Module, Unit, parse
from .hashing import token

__all__ = ["Program", "library_parts", "program_for", "reach", "reach_project"]


def _submodule(module: str, attr: str) -> str | None:
    sub = f"{module}.{attr}"
    return sub if module_file(sub) is not None else None


class Program:
    """The project modules that load with a root module, and who mutates what across them."""

    def __init__(self, root: Module) -> None:
        self.modules: dict[str, Module] = {}
        self.unreadable: set[str] = set()  # project modules loaded that do not parse
        self.mutators: dict[Entity, list[tuple[str, int]]] = {}
        self._effects: dict[Entity, frozenset[Entity]] = {}
        #: what building it read (files and searched folders): a step that reuses the program
        #: depends on them too (:mod:`mlops._deps`)
        self.deps: set[Dep] = set()
        with recording(self.deps):
            self._load(root)
            self._index()

    def get(self, name: str) -> Module | None:
        mod = self.modules.get(name)
        if mod is None:
            with recording(self.deps):
                if kind_of(name) == "project":
                    mod = parse(name)
                    if mod is not None:
                        self.modules[name] = mod
        return mod

    def stamp(self) -> tuple[int, ...]:
        return tuple(id(m) for m in self.modules.values())

    def _load(self, root: Module) -> None:
        todo = [root]
        self.modules[root.name] = root
        while todo:
            mod = todo.pop()
            wanted: set[str] = set()
            parts = mod.name.split(".")
            wanted.update(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
            sources: list[Import] = []
            for unit in mod.units:
                sources.extend(unit.imports.values())
                for lst in unit.local_imports.values():
                    sources.extend(lst)
                for dyn in unit.dynamic:
                    if dyn.kind == "import-literal" and dyn.detail:
                        sources.append(Import(dyn.detail))
            sources.extend(Import(s) for s in mod.star)
            for src in sources:
                names = src.module.split(".")
                wanted.update(".".join(names[:i]) for i in range(1, len(names) + 1))
                if src.attr is not None:
                    sub = (
                        _submodule(src.module, src.attr)
                        if kind_of(src.module) == "project"
                        else None
                    )
                    if sub:
                        wanted.add(sub)
            for name in sorted(wanted):
                if name and name not in self.modules and kind_of(name) == "project":
                    try:
                        target = parse(name)
                    except (SyntaxError, ValueError):
                        self.unreadable.add(name)  # an error if the walk reaches it, not before
                        continue
                    if target is not None:
                        self.modules[name] = target
                        todo.append(target)

    # resolution of names to entities

    def resolve(
        self,
        mod: Module,
        chain: Chain,
        local: dict[str, list[Import]] | None = None,
        depth: int = 0,
    ) -> list[Entity]:
        """The project definitions a free name chain of ``mod`` may denote."""
        if not chain or depth > 50:
            return []
        head, rest = chain[0], chain[1:]
        if head == "*":
            return [(mod.name, "*")]
        if local and head in local:
            return [e for src in local[head] for e in self._resolve_import(src, rest, depth)]
        found: list[Entity] = []
        binders = mod.binders.get(head, [])
        own = False
        for i in binders:
            unit = mod.units[i]
            if head in unit.imports:
                found.extend(self._resolve_import(unit.imports[head], rest, depth))
            else:
                own = True
        if own or (not binders and (mod.name, head) in self.mutators):
            found.append((mod.name, head))
        if not binders:
            for star in mod.star:
                target = self.get(star)
                if target is not None and head in target.binders:
                    found.extend(self.resolve(target, chain, None, depth + 1))
        return found

    def _resolve_import(self, src: Import, rest: Chain, depth: int) -> list[Entity]:
        module = src.module
        if src.attr is not None:
            target = self.get(module)
            if target is not None and (src.attr in target.binders or target.star):
                found = self.resolve(target, (src.attr, *rest), None, depth + 1)
                if found:
                    return found
            module = f"{module}.{src.attr}"
        return self._resolve_module(module, rest, depth)

    def _resolve_module(self, module: str, rest: Chain, depth: int) -> list[Entity]:
        while True:
            target = self.get(module)
            if target is None:
                return []
            if not rest:
                return []  # the module object itself
            if rest[0] in target.binders:
                return self.resolve(target, rest, None, depth + 1)
            sub = _submodule(module, rest[0])
            if sub is None:
                return [(module, rest[0])]  # set from outside (monkeypatching), or missing
            module, rest = sub, rest[1:]

    # who mutates what

    def effects(self, entity: Entity) -> frozenset[Entity]:
        """What calling (or instantiating, or subclassing) ``entity`` may mutate, transitively."""
        cached = self._effects.get(entity)
        if cached is not None:
            return cached
        seen = {entity}
        todo = [entity]
        out: set[Entity] = set()
        while todo:
            mod_name, name = todo.pop()
            mod = self.modules.get(mod_name)
            if mod is None or name == "*":
                continue
            for i in mod.binders.get(name, []):
                unit = mod.units[i]
                if name in unit.imports:
                    continue
                for chain in unit.mut_body:
                    out.update(self.resolve(mod, chain, unit.local_imports))
                for chain in unit.chains:
                    for e in self.resolve(mod, chain, unit.local_imports):
                        if e not in seen:
                            seen.add(e)
                            todo.append(e)
        result = frozenset(out)
        self._effects[entity] = result
        return result

    def _index(self) -> None:
        for mod in list(self.modules.values()):
            for unit in mod.units:
                targets: set[Entity] = set()
                for chain in unit.mut_now | unit.mut_store:
                    targets.update(self.resolve(mod, chain, unit.local_imports))
                for chain in unit.now:
                    for e in self.resolve(mod, chain, unit.local_imports):
                        targets.update(self.effects(e))
                for target in targets:
                    if target[1] in unit.binds and target[0] == mod.name:
                        continue  # its own binder, listed already
                    self.mutators.setdefault(target, []).append((mod.name, unit.index))


_PROGRAMS: dict[str, Program] = {}


def _parses(module: str) -> bool:
    try:
        return parse(module) is not None
    except (SyntaxError, ValueError):
        return False


def program_for(root: Module) -> Program:
    """The program of ``root``, rebuilt when any of its modules changed on disk.

    A program already built for another step module that loads ``root`` is reused: the
    modules ``root`` loads are among its modules, so its mutation index can only hold more
    (an over-approximation), never less.
    """
    candidates = [_PROGRAMS[root.name]] if root.name in _PROGRAMS else []
    candidates += [p for p in _PROGRAMS.values() if p.modules.get(root.name) is root]
    for program in candidates:
        if (
            program.modules.get(root.name) is root
            and all(parse(n) is mod for n, mod in program.modules.items() if n != root.name)
            and not any(_parses(n) for n in program.unreadable)
            # no module created or removed where it searched: checked in a compile session,
            # where each folder is read once (outside one, module lookups are remembered too)
            and (not in_session() or still_valid(program.deps))
        ):
            _PROGRAMS[root.name] = program
            note(program.deps)
            return program
    program = Program(root)
    _PROGRAMS[root.name] = program
    return program


class _Walker:
    """Follows a step's names through the project (see :mod:`mlops._reach`)."""

    def __init__(self, program: Program) -> None:
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
            kind = kind_of(star)
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
            kind = kind_of(module)
            if kind == "library":
                self.libraries.add(module.split(".")[0])
                return
            if kind != "project":
                return
            target = self.program.get(module)
            if target is not None and (
                src.attr in target.binders
                or (module, src.attr) in self.program.mutators
                or (target.star and module_file(f"{module}.{src.attr}") is None)
            ):
                self.chain(target, (src.attr, *rest), None)
                return
            module = f"{module}.{src.attr}"
        self.module_chain(module, rest)

    def module_chain(self, module: str, rest: Chain, reason: str | None = None) -> None:
        while True:
            kind = kind_of(module)
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
            if sub is not None and module_file(sub) is not None:
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
                if module_file(f"{module}.{src.attr}") is None:
                    target = self.program.get(module)
                    if target is not None and src.attr in target.binders:
                        found.extend(self._modules_named(target, (src.attr, *rest), {}))
                    continue
                module = f"{module}.{src.attr}"
            for attr in rest:
                if module_file(f"{module}.{attr}") is None:
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

    def result(self) -> dict[str, str]:
        """The project code parts reached (library versions apart: see :func:`library_parts`)."""
        out = {
            ident: token(dumps[0]) if len(dumps) == 1 else token(dumps)
            for ident, dumps in self.parts.items()
        }
        for name, reasons in self.whole.items():
            mod = self.program.modules[name]
            why = f" ({'; '.join(sorted(reasons))})" if reasons else ""
            out[f"{name}:*{why}"] = token(mod.dump)
        return out


def library_parts(tops: tuple[str, ...]) -> dict[str, str]:
    """``{"dist:NAME": version}`` for the distributions owning the top-level modules ``tops``,
    and those they require (see :mod:`mlops.libraries`)."""
    if not tops:
        return {}
    from .libraries import distributions_of, with_dependencies

    dists = []
    for top in tops:
        folder = top_folder(top)
        if folder is not None:
            dists.extend(distributions_of(top, [folder]))
    return {dist.ident: dist.version for dist in with_dependencies(dists)}


def _project_modules(program: Program) -> list[str]:
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
                    if name and kind_of(name) == "project":
                        names.add(name)
    return sorted(names)


def reach_project(module: str, name: str) -> tuple[dict[str, str], tuple[str, ...]] | None:
    """The project code parts of ``module.name`` (``{ident: hash}``, see :func:`reach`) and the
    top-level modules of the libraries it imports, sorted; None as for :func:`reach`."""
    mod = parse(module)
    if mod is None or not any(name not in mod.units[i].imports for i in mod.binders.get(name, [])):
        return None
    walker = _Walker(program_for(mod))
    walker.entity(mod, name)
    return walker.result(), tuple(sorted(walker.libraries))


def reach(module: str, name: str, *, libraries: bool = True) -> dict[str, str] | None:
    """The code parts of ``module.name``: ``{ident: hash}`` for each definition it reaches,
    ``{"module:* (why)": hash}`` for each module taken whole, ``{"dist:NAME": version}`` for
    each library; None if ``name`` is not bound in the readable source of ``module``."""
    found = reach_project(module, name)
    if found is None:
        return None
    parts, tops = found
    if libraries:
        parts.update(library_parts(tops))
    return dict(sorted(parts.items()))
