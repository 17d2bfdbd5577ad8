"""A project module read into units: the statements that run when it is imported.

See :mod:`mlops._reach` for the model. A unit is a ``def``, a ``class``, an assignment, an
expression statement or an import at any depth of module-level blocks, or a compound
statement's header; for each the scan records the names it binds, the free names it uses
(attribute chains), the names it may mutate (at import, or when its functions run), and the
dynamic lookups static reading cannot follow.
"""

from __future__ import annotations

import ast
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ._deps import RACY_NS, file_digest, note_file
from ._source import module_file

__all__ = ["Chain", "Dynamic", "Entity", "Import", "Module", "Unit", "parse", "resolve_relative"]

Chain = tuple[str, ...]
Entity = tuple[str, str]  # (module, name); name "*" stands for any name of the module

_DYNAMIC_IMPORTS = {"__import__", "import_module"}
_EXEC = {"exec", "eval", "compile"}
# code loaded by file name or by a computed module name, past the import statement
_LOADERS = {"run_module", "run_path", "spec_from_file_location", "module_from_spec", "exec_module"}
_COMPOUND = (ast.If, ast.For, ast.AsyncFor, ast.While, ast.Try, ast.With, ast.AsyncWith, ast.Match)
if sys.version_info >= (3, 11):
    _COMPOUND = (*_COMPOUND, ast.TryStar)
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


@dataclass(frozen=True)
class Import:
    """Where an imported name comes from: ``from module import attr`` or ``import module``."""

    module: str
    attr: str | None = None


@dataclass(frozen=True)
class Dynamic:
    """A lookup static reading cannot follow: ``kind`` is ``import`` (computed module name),
    ``import-literal`` (``detail`` is the module), ``lookup`` (``chain`` is the object, or empty
    for the module itself), ``sys.modules`` (``detail`` the literal name, or None) or ``exec``."""

    kind: str
    where: str
    chain: Chain = ()
    detail: str | None = None


@dataclass
class Unit:
    index: int
    context: tuple[str, ...]  # the headers of the blocks it sits in, and which branch
    text: str | None  # a header's text; None for a statement (dumped when first needed)
    binds: frozenset[str]
    imports: dict[str, Import]  # module-level import statement: bound name -> source
    chains: frozenset[Chain]  # free names used anywhere in the unit
    now: frozenset[Chain]  # free names used when the statement runs (at import)
    local_imports: dict[str, list[Import]]  # imports inside bodies: name -> sources
    mut_now: frozenset[Chain]  # mutated when the statement runs
    mut_body: frozenset[Chain]  # mutated when its function(s) run (stores, calls, receivers)
    mut_store: frozenset[Chain]  # stored into / global writes in its function bodies
    dynamic: tuple[Dynamic, ...]
    is_def: bool  # a def or class at the top level (no enclosing block)
    node: ast.AST | None = None
    _dump: str | None = field(default=None, repr=False)

    @property
    def dump(self) -> str:
        """The unit's code (with its enclosing headers), without comments or formatting."""
        if self._dump is None:
            text = self.text if self.text is not None else dump(self.node) if self.node else ""
            self._dump = "\n".join([*self.context, text])
        return self._dump


@dataclass
class Module:
    name: str
    path: str
    tree: ast.Module
    is_package: bool
    units: list[Unit]
    binders: dict[str, list[int]]
    star: list[str]
    defs: dict[str, ast.AST]  # top-level def/class nodes by name (for static signatures)
    has_getattr: bool = False
    _dump: str | None = field(default=None, repr=False)

    @property
    def dump(self) -> str:
        if self._dump is None:
            self._dump = dump(self.tree)
        return self._dump


def dump(node: ast.AST) -> str:
    """The code of ``node`` without comments, docstrings, formatting or line numbers."""
    return ast.dump(node, annotate_fields=False, include_attributes=False)


def _strip_docstrings(body: list[ast.stmt]) -> None:
    """Drop the docstrings of the module, classes and functions in ``body`` (in place): they
    cannot change a result. Only statements are visited, not every expression node."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            _drop_first_string(node)
            _strip_docstrings(node.body)
        elif isinstance(node, _COMPOUND):
            for _, block in _headers(node)[2]:
                _strip_docstrings(block)


def _drop_first_string(node: Any) -> None:
    body = node.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        node.body = body[1:] or [ast.Pass()]


def resolve_relative(package: str, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` inside ``package``."""
    if not level:
        return module or ""
    parts = package.split(".") if package else []
    parts = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join(parts + ([module] if module else []))


def _import_sources(node: ast.Import | ast.ImportFrom, package: str) -> dict[str, Import]:
    out: dict[str, Import] = {}
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                out[alias.asname] = Import(alias.name)
            else:
                top = alias.name.split(".")[0]
                out[top] = Import(top)
        return out
    base = resolve_relative(package, node.level, node.module)
    for alias in node.names:
        if alias.name != "*":
            out[alias.asname or alias.name] = Import(base, alias.name)
    return out


def local_names(node: ast.AST) -> set[str]:
    """Names a function binds itself (parameters, assignments, loop and comprehension variables,
    local imports and definitions), nested scopes merged, minus ``global`` declarations."""
    bound: set[str] = set()
    declared_global: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, _FUNCS):
            a = n.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None:
                    bound.add(arg.arg)
            if n is not node and not isinstance(n, ast.Lambda):
                bound.add(n.name)
        elif isinstance(n, ast.ClassDef) and n is not node:
            bound.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            bound.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and n.name:
            bound.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            bound.add(n.rest)
        elif isinstance(n, ast.Global):
            declared_global.update(n.names)
    return bound - declared_global


def _globals_declared(fn: ast.AST) -> set[str]:
    return {name for n in ast.walk(fn) if isinstance(n, ast.Global) for name in n.names}


def _chain(node: ast.AST) -> tuple[Chain, ast.AST]:
    """``a.b.c`` -> (("a", "b", "c"), Name a); for a non-name base, ((), the base)."""
    attrs: list[str] = []
    cur = node
    while isinstance(cur, ast.Attribute):
        attrs.append(cur.attr)
        cur = cur.value
    if isinstance(cur, ast.Name):
        return (cur.id, *reversed(attrs)), cur
    return (), cur


def _literal(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


@dataclass
class _Scope:
    locals: frozenset[str] = frozenset()
    deferred: bool = False  # inside a function body: runs when called, not at import
    where: str = ""
    globals: frozenset[str] = frozenset()
    receiver: str | None = None  # a method's first parameter (self / cls)


class _Scan:
    """Collects what one unit uses, mutates and looks up dynamically (see the module doc)."""

    def __init__(
        self, package: str, owner: str | None, aliases: dict[str, Chain] | None = None
    ) -> None:
        self.package = package
        self.owner = owner  # the name the unit defines (for mutations through self / cls)
        self.aliases = aliases or {}  # `from importlib import import_module as im`: im
        self.chains: set[Chain] = set()
        self.now: set[Chain] = set()
        self.local_imports: dict[str, list[Import]] = {}
        self.mut_now: set[Chain] = set()
        self.mut_body: set[Chain] = set()
        self.mut_store: set[Chain] = set()
        self.dynamic: list[Dynamic] = []

    # recording

    def _free(self, chain: Chain, scope: _Scope) -> Chain | None:
        if not chain:
            return None
        head = chain[0]
        if scope.receiver is not None and head == scope.receiver and self.owner:
            return None  # handled as a mutation of the class, never a module name
        if head in scope.locals and head not in self.local_imports:
            return None
        return chain

    def use(self, chain: Chain, scope: _Scope) -> None:
        free = self._free(chain, scope)
        if free is not None:
            self.chains.add(free)
            if not scope.deferred:
                self.now.add(free)

    def mutate(self, chain: Chain, scope: _Scope, *, store: bool) -> None:
        if not chain:
            return
        if scope.receiver is not None and chain[0] == scope.receiver and self.owner:
            # self.registry[k] = v / cls.x = v in a method: the class object may change
            chain = (self.owner,)
        elif (
            chain[0] in scope.locals
            and chain[0] not in scope.globals
            and chain[0] not in self.local_imports
        ):
            return  # a local variable: not a module-level name
        if not scope.deferred:
            self.mut_now.add(chain)
        else:
            self.mut_body.add(chain)
            if store:
                self.mut_store.add(chain)

    # walking

    def visit(self, node: ast.AST, scope: _Scope) -> None:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is not None:
            method(node, scope)
        else:
            for child in ast.iter_child_nodes(node):
                self.visit(child, scope)

    def visit_Name(self, node: ast.Name, scope: _Scope) -> None:
        if isinstance(node.ctx, ast.Load):
            self.use((node.id,), scope)
        elif scope.deferred and node.id in scope.globals:
            self.mutate((node.id,), scope, store=True)  # `global X` ... X = ...

    def visit_Attribute(self, node: ast.Attribute, scope: _Scope) -> None:
        chain, base = _chain(node)
        if not chain:
            self.visit(base, scope)
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                inner, _ = _chain(base) if isinstance(base, ast.Attribute) else ((), None)
                self.mutate(inner, scope, store=True)
            return
        self.use(chain, scope)
        if chain[-1] == "__dict__":
            self.dynamic.append(Dynamic("lookup", scope.where, chain[:-1]))
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.mutate(chain, scope, store=True)
            self.mutate(chain[:-1], scope, store=True)

    def _canonical(self, chain: Chain) -> Chain:
        """``chain`` with an alias of a builtin, ``sys`` or ``importlib`` spelled out."""
        if chain and chain[0] in self.aliases:
            return (*self.aliases[chain[0]], *chain[1:])
        return chain

    def visit_Subscript(self, node: ast.Subscript, scope: _Scope) -> None:
        chain, _ = _chain(node.value)
        if self._canonical(chain) == ("sys", "modules"):
            key = node.slice
            name = _literal(key)
            if isinstance(key, ast.Name) and key.id == "__name__":
                self.dynamic.append(Dynamic("lookup", scope.where, ()))
            else:
                self.dynamic.append(Dynamic("sys.modules", scope.where, (), name))
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self.mutate(chain, scope, store=True)
            if _is_globals_call(node.value):
                self.mutate(("*",), scope, store=True)
        self.visit(node.value, scope)
        self.visit(node.slice, scope)

    def visit_Call(self, node: ast.Call, scope: _Scope) -> None:
        func = node.func
        raw, _ = _chain(func)
        chain = self._canonical(raw)
        name = chain[-1] if chain else None
        args = node.args
        if name in _DYNAMIC_IMPORTS and (len(chain) == 1 or name == "import_module"):
            target = _literal(args[0]) if args else None
            if target is not None and target.startswith("."):
                given = args[1] if len(args) > 1 else None
                given = given or next((k.value for k in node.keywords if k.arg == "package"), None)
                pkg = _literal(given) if given is not None else None
                if isinstance(given, ast.Name) and given.id == "__package__":
                    pkg = self.package  # import_module(".ops", __package__)
                level = len(target) - len(target.lstrip("."))
                target = resolve_relative(pkg, level, target.lstrip(".") or None) if pkg else None
            if target is None:
                self.dynamic.append(Dynamic("import", scope.where))
            else:
                self.dynamic.append(Dynamic("import-literal", scope.where, (), target))
        elif name in _LOADERS:
            self.dynamic.append(Dynamic("import", scope.where))
        elif len(chain) == 1 and name in _EXEC and name not in scope.locals:
            self.dynamic.append(Dynamic("exec", scope.where, (), name))
            if not scope.deferred:
                self.mutate(("*",), scope, store=False)  # exec at import may bind any name
        elif len(chain) == 1 and name in ("globals", "vars") and not args:
            self.dynamic.append(Dynamic("lookup", scope.where, ()))
            if not scope.deferred:
                self.mutate(("*",), scope, store=False)  # globals().update(...) at import
        elif len(chain) == 1 and name in ("getattr", "hasattr", "setattr", "delattr", "vars"):
            obj, _ = _chain(args[0]) if args else ((), None)
            attr = _literal(args[1]) if len(args) > 1 else None
            if obj and attr is not None:
                self.use((*obj, attr), scope)
                if name in ("setattr", "delattr"):
                    self.mutate((*obj, attr), scope, store=True)
                for rest in args[1:]:
                    self.visit(rest, scope)
                for kw in node.keywords:
                    self.visit(kw.value, scope)
                return  # `getattr(helpers, "clean")` is `helpers.clean`, not all of helpers
            elif obj:
                self.dynamic.append(Dynamic("lookup", scope.where, obj))
                if name in ("setattr", "delattr"):
                    self.mutate((*obj, "*"), scope, store=True)
            elif name in ("setattr", "delattr") and args and not scope.deferred:
                # setattr(sys.modules[__name__], name, f): any name of this module
                self.mutate(("*",), scope, store=True)
        if isinstance(func, ast.Attribute) and len(raw) > 1:
            self.mutate(raw[:-1], scope, store=False)  # OPS.update(...), OPS.append(...)
        for arg in [*args, *(k.value for k in node.keywords)]:
            inner: ast.AST = arg.value if isinstance(arg, ast.Starred) else arg
            arg_chain, _ = _chain(inner)
            if arg_chain:
                self.mutate(arg_chain, scope, store=False)  # register(OPS, f) may fill OPS
        for child in ast.iter_child_nodes(node):
            self.visit(child, scope)

    def _function(self, node: Any, scope: _Scope, in_class: str | None) -> None:
        if not isinstance(node, ast.Lambda):
            for dec in node.decorator_list:
                self.visit(dec, scope)
            if node.returns is not None:
                self.visit(node.returns, scope)
        a = node.args
        for d in [*a.defaults, *a.kw_defaults]:
            if d is not None:
                self.visit(d, scope)
        for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
            if arg is not None and arg.annotation is not None:
                self.visit(arg.annotation, scope)
        receiver = None
        positional = [*a.posonlyargs, *a.args]
        if in_class and positional:
            static = any(_chain(d)[0][-1:] == ("staticmethod",) for d in node.decorator_list)
            receiver = None if static else positional[0].arg
        name = getattr(node, "name", "<lambda>")
        where = f"{scope.where}.{name}" if scope.where else name
        inner_scope = _Scope(
            scope.locals | local_names(node),
            True,
            where if not isinstance(node, ast.Lambda) else scope.where,
            scope.globals | _globals_declared(node),
            receiver if receiver is not None else scope.receiver,
        )
        body = [node.body] if isinstance(node, ast.Lambda) else node.body
        for stmt in body:
            self.visit(stmt, inner_scope)

    def visit_FunctionDef(self, node: ast.FunctionDef, scope: _Scope) -> None:
        self._function(node, scope, None)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda, scope: _Scope) -> None:
        self._function(node, scope, None)

    def visit_ClassDef(self, node: ast.ClassDef, scope: _Scope) -> None:
        for expr in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expr, scope)
        where = f"{scope.where}.{node.name}" if scope.where else node.name
        inner = _Scope(scope.locals, scope.deferred, where, scope.globals, scope.receiver)
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(stmt, inner, node.name)
            else:
                self.visit(stmt, inner)

    def _comprehension(self, node: Any, scope: _Scope) -> None:
        bound = {
            n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)
        }
        inner = _Scope(
            scope.locals | bound, scope.deferred, scope.where, scope.globals, scope.receiver
        )
        for child in ast.iter_child_nodes(node):
            self.visit(child, inner)

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def collect_imports(self, node: ast.AST) -> None:
        """Note the imports inside a definition before its names are read: a name may be used
        in a nested function above the import that binds it."""
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Import, ast.ImportFrom)):
                for local, source in _import_sources(inner, self.package).items():
                    self.local_imports.setdefault(local, []).append(source)

    def visit_Import(self, node: ast.Import, scope: _Scope) -> None:
        pass  # noted beforehand (collect_imports)

    visit_ImportFrom = visit_Import  # type: ignore[assignment]


def _is_globals_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("globals", "vars")
        and not node.args
    )


def _target_names(node: ast.AST) -> set[str]:
    """Names a module-level statement binds: assignment targets, walrus targets, deletions."""
    names: set[str] = set()
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = node.targets
    else:
        targets = []
    for t in targets:
        names.update(_store_names(t))
    return names | _walrus_names(node)


def _walrus_names(node: ast.AST) -> set[str]:
    """Names ``:=`` binds in the module's scope within ``node`` (not inside lambdas, functions
    or classes, whose scope is their own).

    Examples:
        >>> sorted(_walrus_names(ast.parse("if (k := 1) and [(j := i) for i in x]: pass")))
        ['j', 'k']
    """
    names: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.NamedExpr) and isinstance(n.target, ast.Name):
            names.add(n.target.id)
        if not isinstance(n, (*_FUNCS, ast.ClassDef)) or n is node:
            stack.extend(ast.iter_child_nodes(n))
    return names


def _store_names(target: ast.AST) -> set[str]:
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, (ast.Tuple, ast.List)):
        return {n for e in target.elts for n in _store_names(e)}
    if isinstance(target, ast.Starred):
        return _store_names(target.value)
    return set()


def _pattern_names(pattern: ast.AST) -> set[str]:
    names: set[str] = set()
    for n in ast.walk(pattern):
        if isinstance(n, (ast.MatchAs, ast.MatchStar)) and n.name:
            names.add(n.name)
        elif isinstance(n, ast.MatchMapping) and n.rest:
            names.add(n.rest)
    return names


def _headers(node: ast.stmt) -> tuple[list[ast.AST], set[str], list[tuple[str, list[ast.stmt]]]]:
    """A compound statement's header expressions, the names it binds, and its blocks."""
    blocks: list[tuple[str, list[ast.stmt]]] = []
    exprs: list[ast.AST] = []
    binds: set[str] = set()
    if isinstance(node, (ast.If, ast.While)):
        exprs = [node.test]
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        exprs = [node.target, node.iter]
        binds = _store_names(node.target)
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        for item in node.items:
            exprs.append(item.context_expr)
            if item.optional_vars is not None:
                exprs.append(item.optional_vars)
                binds |= _store_names(item.optional_vars)
    elif isinstance(node, ast.Match):
        exprs = [node.subject]
        for i, case in enumerate(node.cases):
            exprs.append(case.pattern)
            if case.guard is not None:
                exprs.append(case.guard)
            binds |= _pattern_names(case.pattern)
            blocks.append((f"case{i}", case.body))
    else:  # try
        for i, handler in enumerate(getattr(node, "handlers", [])):
            if handler.type is not None:
                exprs.append(handler.type)
            if handler.name:
                binds.add(handler.name)
            blocks.append((f"handler{i}", handler.body))
    for expr in exprs:  # ``if (n := f()):`` and ``while (line := read()):`` bind module names
        binds |= _walrus_names(expr)
    for attr in ("body", "orelse", "finalbody"):
        body = getattr(node, attr, None)
        if body and not isinstance(node, ast.Match):
            blocks.insert(0, (attr, body)) if attr == "body" else blocks.append((attr, body))
    return exprs, binds, blocks


def _flatten(
    body: list[ast.stmt], context: tuple[str, ...]
) -> Iterator[tuple[Any, tuple[str, ...], bool]]:
    """(statement or header, enclosing header context, is_header) for every module-level unit."""
    for node in body:
        if isinstance(node, _COMPOUND):
            exprs, _, blocks = _headers(node)
            header = type(node).__name__ + ":" + "|".join(dump(e) for e in exprs)
            yield node, context, True
            for branch, stmts in blocks:
                yield from _flatten(stmts, (*context, f"{header}#{branch}"))
        else:
            yield node, context, False


_ALIASED = {
    ("importlib", "import_module"): ("import_module",),
    ("sys", "modules"): ("sys", "modules"),
}


def _aliases(tree: ast.Module) -> dict[str, Chain]:
    """Other names for the dynamic lookups: ``import sys as s``, ``from builtins import getattr
    as ga``, ``from importlib import import_module as im``, ``from sys import modules``."""
    out: dict[str, Chain] = {"builtins": ()}  # builtins.getattr(...) is getattr(...)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and a.name in ("sys", "importlib", "builtins"):
                    out[a.asname] = () if a.name == "builtins" else (a.name,)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            for a in node.names:
                local = a.asname or a.name
                if node.module == "builtins":
                    out[local] = (a.name,)
                elif (node.module or "", a.name) in _ALIASED:
                    out[local] = _ALIASED[(node.module or "", a.name)]
    return out


def parse_module(name: str, path: str, source: bytes) -> Module:
    """Read a module's source into units (see the module docstring)."""
    tree = ast.parse(source, filename=path)
    _drop_first_string(tree)  # docstrings cannot change a result: drop them once
    _strip_docstrings(tree.body)
    is_package = os.path.basename(path) == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    units: list[Unit] = []
    binders: dict[str, list[int]] = {}
    star: list[str] = []
    defs: dict[str, ast.AST] = {}
    contexts: dict[str, frozenset[Chain]] = {}  # header context -> names its headers use
    # most modules rename none of these: skip walking every node to find out
    renamed = b"import_module" in source or b"builtins" in source or b"sys import" in source
    aliases: dict[str, Chain] = {"builtins": ()}
    if renamed or b"import sys as" in source:
        aliases = _aliases(tree)
    for node, context, is_header in _flatten(tree.body, ()):
        owner: str | None = None
        imports: dict[str, Import] = {}
        text: str | None
        scan = _Scan(package, None, aliases)
        if is_header:
            exprs, binds, _ = _headers(node)
            text = type(node).__name__ + ":" + "|".join(dump(e) for e in exprs)
            for expr in exprs:
                scan.visit(expr, _Scope())
        else:
            text = None
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                owner = node.name
                binds = {node.name}
                scan.collect_imports(node)
                if not context:
                    defs[node.name] = node
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                imports = _import_sources(node, package)
                binds = set(imports)
                if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                    star.append(resolve_relative(package, node.level, node.module))
            else:
                binds = _target_names(node)
            scan.owner = owner
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                scan.visit(node, _Scope())
            if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Delete)):
                targets = (
                    node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                )
                for t in targets:  # `OPS["x"] = f`, `OPS.a = f` mutate OPS
                    for sub in ast.walk(t):
                        if isinstance(sub, (ast.Subscript, ast.Attribute)):
                            c, _ = _chain(sub.value)
                            scan.mutate(c, _Scope(), store=True)
        context_chains: set[Chain] = set()
        for ctx in context:
            context_chains |= contexts.get(ctx, frozenset())
        if is_header:
            # the units inside this block run only as its header says: they use its names
            header_chains = frozenset(scan.now) | frozenset(context_chains)
            for branch, _ in _headers(node)[2]:
                contexts[f"{text}#{branch}"] = header_chains
        unit = Unit(
            index=len(units),
            context=context,
            text=text,
            binds=frozenset(binds),
            imports=imports,
            chains=frozenset(scan.chains | context_chains),
            now=frozenset(scan.now | context_chains),
            local_imports=scan.local_imports,
            mut_now=frozenset(scan.mut_now),
            mut_body=frozenset(scan.mut_body),
            mut_store=frozenset(scan.mut_store),
            dynamic=tuple(scan.dynamic),
            is_def=owner is not None and not context,
            node=node,
        )
        units.append(unit)
        for b in binds:
            binders.setdefault(b, []).append(unit.index)
    has_getattr = "__getattr__" in defs
    return Module(name, path, tree, is_package, units, binders, star, defs, has_getattr)


_PARSED: dict[tuple[str, str], tuple[tuple[int, int, int, int], bytes, str, Module]] = {}
_RACY_NS = RACY_NS  # a file modified this recently may change again within one tick


def parse(module: str) -> Module | None:
    """The parsed project module ``module``; None if it has no source file.

    Cached by content: the source is re-read unless its size, inode, modification and change
    times are those of the cached parse *and* those times are more than two seconds old. (Two
    edits within one tick of the file system's clock keep one time; a parse cached by stamp
    alone would then be stale -- git calls this the racy-clean problem.) The digest of the bytes
    parsed is noted as a dependency of what is being memoized (:mod:`mlops._deps`), also when
    the source does not parse.
    """
    path = module_file(module)
    if path is None or not path.endswith(".py"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    # the change time too: a modification time set back by hand still moves it
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)
    cached = _PARSED.get((module, path))
    recent = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) <= _RACY_NS
    if cached is not None and cached[0] == stamp and not recent:
        note_file(path, cached[2])
        return cached[3]
    try:
        with open(path, "rb") as f:
            source = f.read()
    except OSError:
        return None
    digest = file_digest(source)
    note_file(path, digest)
    if cached is not None and cached[1] == source:
        _PARSED[(module, path)] = (stamp, source, digest, cached[3])
        return cached[3]
    parsed = parse_module(module, path, source)
    _PARSED[(module, path)] = (stamp, source, digest, parsed)
    return parsed
