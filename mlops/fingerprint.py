"""Step code fingerprints and step signatures, read from source text without importing it.

A step's cache key must change when its code changes -- the function itself and the functions,
classes, constants and modules *of the user's project* that it reaches -- and must not change for
anything else. Reading this from the source text (the module's AST) instead of the imported
objects has two benefits: a fully cached run never imports the step modules (nor the heavy
libraries they import), and the result does not depend on the process.

What counts as code:

* the step function's AST (so comments, blank lines and docstrings do not count: they cannot
  change a result);
* every module-level function, class or assignment of the same module the step refers to by name,
  recursively;
* every name the step imports from another module of the user's project (``from .helpers import
  clean``, ``import mypkg.features as f`` ... ``f.build``), recursively, down to the definitions
  that are used; a whole module when the step uses the module object in a way the AST cannot follow.

Installed libraries (anything under site-packages or the standard library) and mlops itself are
not hashed: their versions are the environment's business, and artifact formats carry a version of
their own (see :data:`mlops.serializers.FORMAT_VERSION`).
"""

from __future__ import annotations

import ast
import functools
import importlib.machinery
import importlib.util
import os
import site
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import StepDefinitionError
from .hashing import token

__all__ = [
    "StepSignature",
    "fingerprint",
    "fingerprint_parts",
    "is_project_file",
    "read_step_signature",
]


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
    #: that a plan can say which one changed.
    code_parts: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    annotations: dict[str, str] = field(default_factory=dict, compare=False)


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = set(site.getsitepackages() + [site.getusersitepackages()])
    paths = sysconfig.get_paths()
    roots.update({paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]})
    roots.add(os.path.dirname(os.__file__))
    return tuple(os.path.realpath(r) + os.sep for r in roots if r)


_MLOPS_ROOT = os.path.realpath(os.path.dirname(__file__)) + os.sep
_MLOPS_EXAMPLES = os.path.join(_MLOPS_ROOT, "examples") + os.sep


def is_project_file(path: str | None) -> bool:
    """True when ``path`` is user code: not an installed library, not mlops itself."""
    if not path or not path.endswith(".py"):
        return False
    real = os.path.realpath(path)
    if real.startswith(_MLOPS_EXAMPLES):
        return True  # the packaged examples are user code like any other
    if real.startswith(_MLOPS_ROOT):
        return False
    return not real.startswith(_library_roots())


@functools.lru_cache(maxsize=512)
def _module_file(module: str) -> str | None:
    """The source file of ``module``, found without importing it or its parent packages.

    ``importlib.util.find_spec("pkg.sub")`` imports ``pkg`` (and so whatever ``pkg/__init__.py``
    imports: ``sklearn.datasets`` costs a second). Walking the packages' search paths with
    :class:`importlib.machinery.PathFinder` imports nothing.
    """
    loaded = sys.modules.get(module)
    if loaded is not None:
        return getattr(loaded, "__file__", None)
    head, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(head)  # a top-level name: nothing is imported
        if spec is None:
            return None
        for i in range(len(rest)):
            search = spec.submodule_search_locations
            if search is None:
                return None
            spec = importlib.machinery.PathFinder.find_spec(
                ".".join([head, *rest[: i + 1]]), list(search)
            )
            if spec is None:
                return None
    except (ImportError, ValueError):
        return None
    return spec.origin if spec.has_location else None


@dataclass
class _Module:
    name: str
    path: str
    tree: ast.Module
    defs: dict[str, ast.AST]
    imports: dict[str, tuple[str, str | None]]  # local name -> (module, attribute or None)
    is_package: bool
    star: list[str] = field(default_factory=list)  # modules of `from m import *`


_PARSED: dict[tuple[str, float, int], _Module] = {}


def _parse(module: str) -> _Module | None:
    path = _module_file(module)
    if path is None or not path.endswith(".py"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_mtime, st.st_size)
    if key in _PARSED:
        return _PARSED[key]
    with open(path, "rb") as f:
        tree = ast.parse(f.read(), filename=path)
    tree = _NoDocstrings().visit(tree)  # docstrings cannot change a result: drop them once
    is_package = os.path.basename(path) == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    defs: dict[str, ast.AST] = {}
    imports: dict[str, tuple[str, str | None]] = {}
    star: list[str] = []
    for node in _module_statements(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        # several statements may bind one name (x = ...; x += ...): keep them all
                        prev = defs.get(n.id)
                        defs[n.id] = node if prev is None else ast.Module([prev, node], [])  # type: ignore[list-item]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    imports[alias.asname] = (alias.name, None)
                else:
                    top = alias.name.split(".")[0]
                    imports[top] = (top, None)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                if alias.name == "*":
                    star.append(base)
                else:
                    imports[alias.asname or alias.name] = (base, alias.name)
    parsed = _Module(module, path, tree, defs, imports, is_package, star)
    _PARSED[key] = parsed
    return parsed


def _module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Top-level statements, including those inside module-level ``if``/``try``/``with`` blocks
    (``try: import fast_json as json`` / ``if TYPE_CHECKING:`` ...)."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            yield from _module_statements(node.body)
            for extra in ("orelse", "finalbody"):
                yield from _module_statements(getattr(node, extra, []))
            for handler in getattr(node, "handlers", []):
                yield from _module_statements(handler.body)


class _NoDocstrings(ast.NodeTransformer):
    """Drops docstrings (of the module, classes and functions): they cannot change a result."""

    def _strip(self, node: Any) -> Any:
        self.generic_visit(node)
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _strip


def _dump(node: ast.AST) -> str:
    """The code of ``node`` without comments, docstrings, formatting or line numbers.

    (Docstrings were removed from the whole tree once, when it was parsed.)
    """
    return ast.dump(node, annotate_fields=False, include_attributes=False)


def _local_names(node: ast.AST) -> set[str]:
    """Names a function binds itself (parameters, assignments, loop and comprehension variables,
    local imports and definitions): a parameter ``parity`` is not the module's ``parity``.

    Nested scopes are merged (an over-approximation that can only hide a use of a module-level
    name that is also bound locally somewhere in the same function, which Python would reject
    as an UnboundLocalError in the same scope anyway).
    """
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        return set()
    bound: set[str] = set()
    declared_global: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = n.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None:
                    bound.add(arg.arg)
            if n is not node and not isinstance(n, ast.Lambda):
                bound.add(n.name)
        elif isinstance(n, ast.ClassDef):
            bound.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            bound.add(n.id)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in n.names)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            declared_global.update(n.names)
    return bound - declared_global


def _used_names(node: ast.AST) -> set[tuple[str, ...]]:
    """Free names a definition refers to, with attribute chains: ``f.build`` -> ("f", "build")."""
    found: set[tuple[str, ...]] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute):
            chain: list[str] = []
            cur: ast.AST = n
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name):
                found.add((cur.id, *reversed(chain)))
        elif isinstance(n, ast.Name):
            found.add((n.id,))
    local = _local_names(node)
    # defaults and decorators are evaluated in the enclosing scope: keep their names
    outer: set[tuple[str, ...]] = set()
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for expr in [*node.args.defaults, *node.args.kw_defaults, *node.decorator_list]:
            if expr is not None:
                outer |= _used_names(expr)
    return {c for c in found if c[0] not in local} | outer


class _Walker:
    def __init__(self) -> None:
        self.parts: dict[str, str] = {}

    def add_def(self, mod: _Module, name: str) -> None:
        ident = f"{mod.name}:{name}"
        if ident in self.parts:
            return
        node = mod.defs.get(name)
        if node is None:
            if name in mod.imports:
                self.add_import(mod, name, ())
            return
        self.parts[ident] = _dump(node)
        for chain in _used_names(node):
            self.add_name(mod, chain)

    def add_name(self, mod: _Module, chain: tuple[str, ...]) -> None:
        head = chain[0]
        if head in mod.defs:
            self.add_def(mod, head)
        elif head in mod.imports:
            self.add_import(mod, head, chain[1:])
        else:
            for module in mod.star:  # `from helpers import *`: the name may come from there
                target = _parse(module) if is_project_file(_module_file(module)) else None
                if target is not None and (head in target.defs or head in target.imports):
                    self.add_name(target, chain)
                    return

    def add_import(self, mod: _Module, local: str, rest: tuple[str, ...]) -> None:
        module, attr = mod.imports[local]
        if attr is not None:
            # `from module import attr`: attr is a definition of module, or a submodule
            target = _parse(module) if is_project_file(_module_file(module)) else None
            if target is not None and (attr in target.defs or attr in target.imports):
                self.add_def(target, attr)
                return
            module = f"{module}.{attr}"
        # `import module` (or a submodule): follow the attribute chain into project modules
        while True:
            path = _module_file(module)
            if not is_project_file(path):
                return
            target = _parse(module)
            if target is None:
                return
            if rest and rest[0] in target.defs:
                self.add_def(target, rest[0])
                return
            if rest and _module_file(f"{module}.{rest[0]}") is not None:
                module, rest = f"{module}.{rest[0]}", rest[1:]
                continue
            self.add_module(target)
            return

    def add_module(self, mod: _Module) -> None:
        """A whole module (used as an object): all of its code, and what its definitions reach."""
        ident = f"{mod.name}:*"
        if ident in self.parts:
            return
        self.parts[ident] = _dump(mod.tree)
        for name in mod.defs:
            self.add_def(mod, name)


def fingerprint_parts(module: str, name: str) -> dict[str, str] | None:
    """``{"module:name": hash}`` for ``module.name`` and each definition of the user's project
    it reaches (``"module:*"`` for a whole module); None if the source cannot be read."""
    mod = _parse(module)
    if mod is None or name not in mod.defs:
        return None
    walker = _Walker()
    walker.add_def(mod, name)
    return {ident: token(dump) for ident, dump in sorted(walker.parts.items())}


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


def read_step_signature(target: str) -> StepSignature | None:
    """The signature of the step at import path ``target``, read from source; None if unsure.

    None means the caller must import the module: the function is not a plain ``def`` decorated
    with ``@step`` at the top of its module (made by a factory, re-exported, ...).
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
    parts = fingerprint_parts(module, name) or {}
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
