"""What a step reaches, read from source, case by case: every form of import at every depth,
every kind of module-level binding and mutation, every dynamic lookup. Each case is a small
package; each edit either must change the step's code parts (it changes what runs) or must not
(comments, docstrings, code the step cannot reach).
"""

# ruff: noqa: E501 - the cases are small source files, one statement per line of a string

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops.fingerprint import fingerprint_parts


@dataclass(frozen=True)
class Edit:
    module: str
    old: str
    new: str
    changes: bool = True  # must the step's code parts change?
    part: str | None = None  # a part ident (with {pkg}) that must be among the changed ones


@dataclass(frozen=True)
class Case:
    files: dict[str, str]  # module path under the package ("sub/mod") -> text, with {pkg}
    edits: tuple[Edit, ...]
    step: str = "steps"


class Pkg:
    """A fresh importable package of modules in a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.name = f"fpr_{uuid.uuid4().hex[:10]}"
        self.dir = root / self.name
        self.dir.mkdir()
        (self.dir / "__init__.py").write_text("")

    def path(self, module: str) -> Path:
        return self.dir / f"{module}.py"

    def write(self, module: str, text: str) -> None:
        path = self.path(module)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent != self.dir and not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(text.replace("{pkg}", self.name))

    def edit(self, module: str, old: str, new: str) -> None:
        path = self.path(module)
        text = path.read_text()
        old, new = old.replace("{pkg}", self.name), new.replace("{pkg}", self.name)
        assert old in text, (old, text)
        path.write_text(text.replace(old, new, 1))

    def parts(self, module: str = "steps", name: str = "f") -> dict[str, str]:
        parts = fingerprint_parts(f"{self.name}.{module.replace('/', '.')}", name)
        assert parts is not None
        return parts


@pytest.fixture
def pkg(tmp_path: Path) -> Iterator[Pkg]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield Pkg(tmp_path)
    finally:
        sys.path.remove(str(tmp_path))


HELPERS = '''\
"""Helpers."""


def clean(x):
    return x + 1


def unrelated():
    return 0
'''

CLEAN = Edit("helpers", "return x + 1", "return x + 2", part="{pkg}.helpers:clean")
UNRELATED = Edit("helpers", "return 0", "return 1  # not reached", changes=False)
COMMENT = Edit("helpers", '"""Helpers."""', '"""Helpers, documented."""\n# a comment', False)


def _imports(steps: str) -> Case:
    return Case({"helpers": HELPERS, "steps": steps}, (CLEAN, UNRELATED, COMMENT))


# -- imports at every depth and in every form ------------------------------------------------------

IMPORTS = {
    "module-from-relative": "from .helpers import clean\n\ndef f(x):\n    return clean(x)\n",
    "module-import-dotted": "import {pkg}.helpers\n\ndef f(x):\n    return {pkg}.helpers.clean(x)\n",
    "module-import-as": "import {pkg}.helpers as h\n\ndef f(x):\n    return h.clean(x)\n",
    "module-from-package": "from . import helpers\n\ndef f(x):\n    return helpers.clean(x)\n",
    "module-star": "from .helpers import *\n\ndef f(x):\n    return clean(x)\n",
    "body-from-absolute": "def f(x):\n    from {pkg}.helpers import clean\n    return clean(x)\n",
    "body-from-relative": "def f(x):\n    from .helpers import clean\n    return clean(x)\n",
    "body-import-dotted": "def f(x):\n    import {pkg}.helpers\n    return {pkg}.helpers.clean(x)\n",
    "body-import-as": "def f(x):\n    import {pkg}.helpers as h\n    return h.clean(x)\n",
    "body-from-package": "def f(x):\n    from . import helpers\n    return helpers.clean(x)\n",
    "body-alias": "def f(x):\n    from .helpers import clean as c\n    return c(x)\n",
    "nested-function": (
        "def f(x):\n    def inner(v):\n        from .helpers import clean\n        return clean(v)\n"
        "    return inner(x)\n"
    ),
    "lambda": "def f(x):\n    from .helpers import clean\n    g = lambda v: clean(v)\n    return g(x)\n",
    "comprehension": (
        "def f(x):\n    from . import helpers\n    return [helpers.clean(v) for v in [x]][0]\n"
    ),
    "method": (
        "class K:\n    def run(self, x):\n        from .helpers import clean\n        return clean(x)\n"
        "\ndef f(x):\n    return K().run(x)\n"
    ),
    "nested-class-in-function": (
        "def f(x):\n    class L:\n        def run(self, v):\n            import {pkg}.helpers as h\n"
        "            return h.clean(v)\n    return L().run(x)\n"
    ),
    "try-import": (
        "try:\n    from .fast_helpers import clean\nexcept ImportError:\n"
        "    from .helpers import clean\n\ndef f(x):\n    return clean(x)\n"
    ),
    "if-import": "if True:\n    from .helpers import clean\n\ndef f(x):\n    return clean(x)\n",
    "import-module-relative": (
        "import importlib\n\ndef f(x):\n"
        "    return importlib.import_module('.helpers', __package__).clean(x)\n"
    ),
    "getattr-literal": "from . import helpers\n\ndef f(x):\n    return getattr(helpers, 'clean')(x)\n",
    "import-module-literal": (
        "import importlib\n\ndef f(x):\n    return importlib.import_module('{pkg}.helpers').clean(x)\n"
    ),
}


def _two_hops(steps_text: str) -> Case:
    wrapper = "def wrap(x):\n    from .helpers import clean\n    return clean(x)\n"
    return Case(
        {"helpers": HELPERS, "middle": wrapper, "steps": steps_text}, (CLEAN, UNRELATED, COMMENT)
    )


CASES: dict[str, Case] = {f"import-{k}": _imports(v) for k, v in IMPORTS.items()}
# the module object is used as a whole: every edit of it counts (the safe side)
for _k in ("import-module-literal", "import-module-relative"):
    CASES[f"import-{_k}"] = Case(
        {"helpers": HELPERS, "steps": IMPORTS[_k]},
        (CLEAN, Edit("helpers", "return 0", "return 1"), COMMENT),
    )
CASES["import-two-hops-body"] = _two_hops(
    "def f(x):\n    from .middle import wrap\n    return wrap(x)\n"
)
CASES["import-subpackage-parent"] = Case(
    {
        "helpers": HELPERS,
        "sub/steps": "from ..helpers import clean\n\ndef f(x):\n    return clean(x)\n",
    },
    (CLEAN, UNRELATED),
    step="sub/steps",
)
CASES["import-subpackage-body-parent"] = Case(
    {
        "helpers": HELPERS,
        "sub/steps": "def f(x):\n    from .. import helpers\n    return helpers.clean(x)\n",
    },
    (CLEAN, UNRELATED),
    step="sub/steps",
)
CASES["import-reexport-package-init"] = Case(
    {
        "helpers": HELPERS,
        "__init__": "from .helpers import clean\n",
        "steps": "def f(x):\n    from {pkg} import clean\n    return clean(x)\n",
    },
    (CLEAN, UNRELATED),
)
CASES["import-star-in-body-chain"] = Case(
    {
        "helpers": HELPERS,
        "middle": "from .helpers import *\n",
        "steps": "def f(x):\n    from .middle import clean\n    return clean(x)\n",
    },
    (CLEAN, UNRELATED),
)

# -- module-level bindings and mutations ------------------------------------------------------------

OPS_REGISTER = """\
OPS = {}


def register(fn):
    OPS[fn.__name__] = fn
    return fn


@register
def add(x):
    return x + 1


def unrelated():
    return 0
"""
USE_OPS = "from .ops import OPS\n\ndef f(x):\n    return OPS['add'](x)\n"
ADD = Edit("ops", "return x + 1", "return x + 2")
OPS_UNRELATED = Edit("ops", "return 0", "return 1", changes=False)


def _ops(ops: str, *edits: Edit, steps: str = USE_OPS, **more: str) -> Case:
    return Case({"ops": ops, "steps": steps, **more}, edits)


CASES["bind-decorator-registry"] = _ops(OPS_REGISTER, ADD, OPS_UNRELATED)
CASES["bind-decorator-registry-other-module"] = Case(
    {
        "ops": "OPS = {}\n\ndef register(fn):\n    OPS[fn.__name__] = fn\n    return fn\n",
        "impls": "from .ops import register\n\n@register\ndef add(x):\n    return x + 1\n"
        "\ndef unrelated():\n    return 0\n",
        "steps": "from . import impls\nfrom .ops import OPS\n\ndef f(x):\n    return OPS['add'](x)\n",
    },
    (
        Edit("impls", "return x + 1", "return x + 2"),
        Edit("impls", "return 0", "return 1", changes=False),
    ),
)
CASES["bind-update"] = _ops(
    "OPS = {}\n\ndef _add(x):\n    return x + 1\n\nOPS.update(add=_add)\n", ADD
)
CASES["bind-subscript"] = _ops(
    "OPS = {}\n\ndef _add(x):\n    return x + 1\n\nOPS['add'] = _add\n", ADD
)
CASES["bind-subscript-from-other-module"] = Case(
    {
        "ops": "OPS = {}\n",
        "impls": "from .ops import OPS\n\ndef _add(x):\n    return x + 1\n\nOPS['add'] = _add\n",
        "steps": "from . import impls\nfrom .ops import OPS\n\ndef f(x):\n    return OPS['add'](x)\n",
    },
    (Edit("impls", "return x + 1", "return x + 2"),),
)
CASES["bind-setdefault-method"] = _ops(
    "OPS = {}\n\ndef _add(x):\n    return x + 1\n\nOPS.setdefault('add', _add)\n", ADD
)
CASES["bind-call-fills-argument"] = _ops(
    "OPS = {}\n\ndef _add(x):\n    return x + 1\n\ndef _fill(d):\n    d['add'] = _add\n\n_fill(OPS)\n",
    ADD,
)
CASES["bind-list-append"] = _ops(
    "PIPE = []\n\ndef _add(x):\n    return x + 1\n\nPIPE.append(_add)\n",
    ADD,
    steps="from .ops import PIPE\n\ndef f(x):\n    return PIPE[0](x)\n",
)
CASES["bind-augmented"] = _ops(
    "X = 1\nX += 1\n",
    Edit("ops", "X += 1", "X += 2"),
    steps="from .ops import X\n\ndef f(x):\n    return x + X\n",
)
CASES["bind-annotated"] = _ops(
    "X: int = 1\n",
    Edit("ops", "X: int = 1", "X: int = 2"),
    steps="from .ops import X\n\ndef f(x):\n    return x + X\n",
)
CASES["bind-walrus"] = _ops(
    "(X := 1)\n",
    Edit("ops", "(X := 1)", "(X := 2)"),
    steps="from .ops import X\n\ndef f(x):\n    return x + X\n",
)
CASES["bind-global-write-at-import"] = _ops(
    "X = 1\n\ndef setup():\n    global X\n    X = 2\n\nsetup()\n",
    Edit("ops", "X = 2", "X = 3"),
    steps="from .ops import X\n\ndef f(x):\n    return x + X\n",
)
CASES["bind-global-write-function"] = _ops(
    "X = 1\n\ndef setup():\n    global X\n    X = 2\n",
    Edit("ops", "X = 2", "X = 3"),
    steps="from . import ops\n\ndef f(x):\n    return x + ops.X\n",
)
CASES["bind-setattr-module"] = Case(
    {
        "ops": "X = 1\n",
        "steps": "from . import ops\n\nsetattr(ops, 'X', 5)\n\ndef f(x):\n    return x + ops.X\n",
    },
    (Edit("steps", "'X', 5", "'X', 6"),),
)
CASES["bind-attribute-store-other-module"] = Case(
    {
        "ops": "X = 1\n",
        "patch": "from . import ops\n\nops.X = 5\n",
        "steps": "from . import patch\nfrom . import ops\n\ndef f(x):\n    return x + ops.X\n",
    },
    (Edit("patch", "ops.X = 5", "ops.X = 6"),),
)
for _kind, _block in {
    "if": "if FLAG:\n    def clean(x):\n        return x + 1\nelse:\n    def clean(x):\n        return x\n",
    "for": "for _i in range(1):\n    def clean(x):\n        return x + 1\n",
    "while": "while True:\n    def clean(x):\n        return x + 1\n    break\n",
    "try": "try:\n    def clean(x):\n        return x + 1\nexcept Exception:\n    pass\n",
    "with": "import contextlib\nwith contextlib.nullcontext():\n    def clean(x):\n        return x + 1\n",
    "match": "match FLAG:\n    case True:\n        def clean(x):\n            return x + 1\n",
}.items():
    _edits = [Edit("ops", "return x + 1", "return x + 2")]
    if _kind in ("if", "match"):
        _edits.append(Edit("ops", "FLAG = True", "FLAG = False"))
    CASES[f"bind-def-in-{_kind}"] = _ops(
        "FLAG = True\n\n" + _block + "\ndef unrelated():\n    return 0\n",
        *_edits,
        OPS_UNRELATED,
        steps="from .ops import clean\n\ndef f(x):\n    return clean(x)\n",
    )
for _kind, _block in {
    "if": "if (K := 1):\n    pass\n",
    "elif": "if False:\n    pass\nelif (K := 1):\n    pass\n",
    "while": "while (K := 1):\n    break\n",
    "for": "for _i in [(K := 1)]:\n    pass\n",
    "with": "import contextlib\nwith contextlib.nullcontext((K := 1)):\n    pass\n",
    "match": "match (K := 1):\n    case _:\n        pass\n",
    "comprehension": "_xs = [(K := i) for i in [1]]\n",
    "call": "print((K := 1), end='')\n",
}.items():
    CASES[f"bind-walrus-in-{_kind}"] = _ops(
        _block + "\ndef unrelated():\n    return 0\n",
        Edit("ops", "1", "2"),
        OPS_UNRELATED,
        steps="from .ops import K\n\ndef f(x):\n    return x + K\n",
    )
CASES["bind-loop-fills-dict"] = _ops(
    "OPS = {}\n\ndef make(n):\n    return lambda x: x + n\n\nfor name in ['add']:\n"
    "    OPS[name] = make(1)\n",
    Edit("ops", "x + n", "x + n + 1"),
    Edit("ops", "make(1)", "make(2)"),
)
CASES["bind-init-subclass"] = _ops(
    "class Base:\n    registry = {}\n\n    def __init_subclass__(cls, **kw):\n"
    "        Base.registry[cls.__name__] = cls\n\n\nclass Add(Base):\n    def run(self, x):\n"
    "        return x + 1\n",
    ADD,
    steps="from .ops import Base\n\ndef f(x):\n    return Base.registry['Add']().run(x)\n",
)
CASES["bind-init-subclass-cls"] = _ops(
    "class Base:\n    registry = {}\n\n    def __init_subclass__(cls, **kw):\n"
    "        cls.registry[cls.__name__] = cls\n\n\nclass Add(Base):\n    def run(self, x):\n"
    "        return x + 1\n",
    ADD,
    steps="from .ops import Base\n\ndef f(x):\n    return Base.registry['Add']().run(x)\n",
)
CASES["bind-decorator-method-registry"] = _ops(
    "class Registry:\n    def __init__(self):\n        self.ops = {}\n\n    def register(self, fn):\n"
    "        self.ops[fn.__name__] = fn\n        return fn\n\n\nREG = Registry()\n\n\n"
    "@REG.register\ndef add(x):\n    return x + 1\n",
    ADD,
    steps="from .ops import REG\n\ndef f(x):\n    return REG.ops['add'](x)\n",
)
CASES["bind-same-name-rebound"] = _ops(
    "def clean(x):\n    return x + 1\n\n_old = clean\n\ndef clean(x):\n    return _old(x) * 1\n",
    ADD,
    steps="from .ops import clean\n\ndef f(x):\n    return clean(x)\n",
)

CASES["bind-setattr-own-module-computed"] = _ops(
    "import sys\n\ndef _add(x):\n    return x + 1\n\nfor _n in ['add']:\n"
    "    setattr(sys.modules[__name__], _n, _add)\n",
    ADD,
    steps="from . import ops\n\ndef f(x):\n    return ops.add(x)\n",
)
CASES["bind-globals-update"] = _ops(
    "def _add(x):\n    return x + 1\n\nglobals().update(add=_add)\n",
    ADD,
    steps="from . import ops\n\ndef f(x):\n    return ops.add(x)\n",
)
CASES["bind-exec-at-import"] = _ops(
    "exec('def add(x):\\n    return x + 1\\n')\n",
    ADD,
    steps="from . import ops\n\ndef f(x):\n    return ops.add(x)\n",
)

# -- dynamic lookups: the whole module, or every module of the project -----------------------------

OPS_PLAIN = "def add(x):\n    return x + 1\n\n\ndef other():\n    return 0\n"
OTHER = Edit("ops", "return 0", "return 1")  # not referenced by name: only a fallback sees it
EXTRA = Edit("extra", "return 0", "return 1")  # a module nobody imports by name
DYNAMIC = {
    "getattr-module": (
        "from . import ops\n\ndef f(x, name='add'):\n    return getattr(ops, name)(x)\n",
        "ops",
        "dynamic lookup in `f`",
        (OTHER,),
    ),
    "vars-module": (
        "from . import ops\n\ndef f(x, name='add'):\n    return vars(ops)[name](x)\n",
        "ops",
        "dynamic lookup in `f`",
        (OTHER,),
    ),
    "dict-of-module": (
        "from . import ops\n\ndef f(x, name='add'):\n    return ops.__dict__[name](x)\n",
        "ops",
        "dynamic lookup in `f`",
        (OTHER,),
    ),
    "globals": (
        "def add(x):\n    return x + 1\n\ndef other():\n    return 0\n\ndef f(x, name='add'):\n    return globals()[name](x)\n",
        "steps",
        "dynamic lookup in `f`",
        (Edit("steps", "return 0", "return 1"),),
    ),
    "sys-modules-name": (
        "import sys\n\ndef add(x):\n    return x + 1\n\ndef other():\n    return 0\n\ndef f(x, name='add'):\n    return getattr(sys.modules[__name__], name)(x)\n",
        "steps",
        "dynamic lookup in `f`",
        (Edit("steps", "return 0", "return 1"),),
    ),
    "sys-modules-literal": (
        "import sys\n\ndef f(x):\n    return sys.modules['{pkg}.ops'].add(x)\n",
        "ops",
        "dynamic lookup in `f`",
        (OTHER,),
    ),
    "sys-modules-computed": (
        "import sys\n\ndef f(x, name='{pkg}.ops'):\n    return sys.modules[name].add(x)\n",
        "extra",
        "dynamic lookup in `f`",
        (OTHER, EXTRA),
    ),
    "import-module-computed": (
        "import importlib\n\ndef f(x, name='{pkg}.ops'):\n    return importlib.import_module(name).add(x)\n",
        "extra",
        "dynamic import in `f`",
        (OTHER, EXTRA),
    ),
    "import-module-from": (
        "from importlib import import_module\n\ndef f(x, name='ops'):\n    return import_module('{pkg}.' + name).add(x)\n",
        "extra",
        "dynamic import in `f`",
        (OTHER, EXTRA),
    ),
    "dunder-import": (
        "def f(x, name='{pkg}.ops'):\n    return __import__(name, fromlist=['add']).add(x)\n",
        "extra",
        "dynamic import in `f`",
        (OTHER, EXTRA),
    ),
    "runpy": (
        "import runpy\n\ndef f(x, name='{pkg}.ops'):\n    return runpy.run_module(name)['add'](x)\n",
        "extra",
        "dynamic import in `f`",
        (OTHER, EXTRA),
    ),
    "spec-from-file": (
        "import importlib.util\n\ndef f(x, path='ops.py'):\n"
        "    spec = importlib.util.spec_from_file_location('ops', path)\n"
        "    mod = importlib.util.module_from_spec(spec)\n    spec.loader.exec_module(mod)\n"
        "    return mod.add(x)\n",
        "extra",
        "dynamic import in `f`",
        (OTHER, EXTRA),
    ),
    "exec": (
        "def f(x, code='from {pkg}.ops import add'):\n    ns = {}\n    exec(code, ns)\n    return ns['add'](x)\n",
        "extra",
        "exec in `f`",
        (OTHER, EXTRA),
    ),
    "eval": (
        "from . import ops\n\ndef f(x, expr='ops.add'):\n    return eval(expr)(x)\n",
        "extra",
        "eval in `f`",
        (OTHER, EXTRA),
    ),
    "body-import-getattr": (
        "def f(x, name='add'):\n    from . import ops\n    return getattr(ops, name)(x)\n",
        "ops",
        "dynamic lookup in `f`",
        (OTHER,),
    ),
    "method-getattr": (
        "from . import ops\n\nclass K:\n    def run(self, x, name):\n        return getattr(ops, name)(x)\n\ndef f(x):\n    return K().run(x, 'add')\n",
        "ops",
        "dynamic lookup in `K.run`",
        (OTHER,),
    ),
    "import-module-alias": (
        "from importlib import import_module as im\n\ndef f(x, name='{pkg}.ops'):\n"
        "    return im(name).add(x)\n",
        "extra",
        "dynamic import in `f`",
        (OTHER, EXTRA),
    ),
    "sys-alias": (
        "import sys as s\n\ndef f(x, name='{pkg}.ops'):\n    return s.modules[name].add(x)\n",
        "extra",
        "dynamic lookup in `f`",
        (OTHER, EXTRA),
    ),
    "from-sys-modules": (
        "from sys import modules\n\ndef f(x, name='{pkg}.ops'):\n    return modules[name].add(x)\n",
        "extra",
        "dynamic lookup in `f`",
        (OTHER, EXTRA),
    ),
    "builtins-getattr": (
        "import builtins\nfrom . import ops\n\ndef f(x, name='add'):\n"
        "    return builtins.getattr(ops, name)(x)\n",
        "ops",
        "dynamic lookup in `f`",
        (OTHER,),
    ),
    "module-level-lookup": (
        "from . import ops\n\nNAME = 'add'\nCHOSEN = getattr(ops, NAME)\n\ndef f(x):\n"
        "    return CHOSEN(x)\n",
        "ops",
        "dynamic lookup in the module-level code of `{pkg}.steps`",
        (OTHER,),
    ),
}
for _name, (_steps, _whole, _why, _dyn_edits) in DYNAMIC.items():
    CASES[f"dynamic-{_name}"] = Case(
        {"ops": OPS_PLAIN, "extra": "def g():\n    return 0\n", "steps": _steps},
        (*_dyn_edits, Edit(_whole if _whole != "steps" else "steps", "", "# a comment\n", False)),
    )


@pytest.mark.parametrize(("name", "case"), [pytest.param(k, c, id=k) for k, c in CASES.items()])
def test_edit_changes_exactly_what_the_step_reaches(pkg: Pkg, name: str, case: Case) -> None:
    """Each edit to reached code changes the step's parts; the others leave them alone; only a
    dynamic lookup (or a module object used as such) takes a whole module."""
    for module, text in case.files.items():
        if module == "__init__":
            (pkg.dir / "__init__.py").write_text(text.replace("{pkg}", pkg.name))
        else:
            pkg.write(module, text)
    before = pkg.parts(case.step)
    whole_ok = (
        "import-import-module-literal",
        "import-import-module-relative",
        "bind-exec-at-import",
        "bind-globals-update",
    )
    if name.startswith(("import-", "bind-")) and name not in whole_ok and "computed" not in name:
        assert not [k for k in before if ":*" in k], sorted(before)
    for edit in case.edits:
        pkg.edit(edit.module, edit.old, edit.new)
        after = pkg.parts(case.step)
        changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        if edit.changes:
            assert changed, f"{edit} left {sorted(before)} unchanged"
            if edit.part:
                assert edit.part.replace("{pkg}", pkg.name) in changed, changed
        else:
            assert not changed, f"{edit} changed {changed}"
        before = after


@pytest.mark.parametrize(
    ("name", "whole", "why"),
    [pytest.param(k, w, y, id=k) for k, (_, w, y, _) in DYNAMIC.items()],
)
def test_dynamic_lookups_name_the_module_and_why(pkg: Pkg, name: str, whole: str, why: str) -> None:
    """A fallback part names the module it takes whole and the reason, for the plan to say."""
    steps = DYNAMIC[name][0]
    pkg.write("ops", OPS_PLAIN)
    pkg.write("extra", "def g():\n    return 0\n")
    pkg.write("steps", steps)
    parts = pkg.parts()
    assert f"{pkg.name}.{whole}:* ({why.replace('{pkg}', pkg.name)})" in parts, sorted(parts)


def test_unreached_module_level_code_is_left_out(pkg: Pkg) -> None:
    """Statements that neither bind nor mutate a reached name are not in the parts."""
    pkg.write(
        "ops",
        "OPS = {}\nOTHER = {}\n\ndef _add(x):\n    return x + 1\n\ndef _sub(x):\n    return x - 1\n"
        "\nOPS['add'] = _add\nOTHER['sub'] = _sub\nprint(len(OTHER))\n",
    )
    pkg.write("steps", USE_OPS)
    parts = pkg.parts()
    assert sorted(parts) == sorted(f"{pkg.name}.{p}" for p in ("ops:OPS", "ops:_add", "steps:f")), (
        sorted(parts)
    )


def test_project_module_named_like_the_standard_library_is_project_code(pkg: Pkg) -> None:
    """A top-level project module that shadows a standard-library name (``code.py``) is hashed."""
    (pkg.dir.parent / "code.py").write_text("def clean(x):\n    return x + 1\n")
    pkg.write("steps", "from code import clean\n\ndef f(x):\n    return clean(x)\n")
    sys.modules.pop("code", None)
    try:
        assert "code:clean" in pkg.parts()
    finally:
        sys.modules.pop("code", None)


def test_parts_are_the_same_in_every_process(pkg: Pkg, tmp_path: Path) -> None:
    """Parts do not depend on the hash seed or on the order names were met in."""
    pkg.write("ops", OPS_REGISTER)
    pkg.write("extra", "def g():\n    return 0\n")
    pkg.write(
        "steps", DYNAMIC["exec"][0].replace("{pkg}", pkg.name) + USE_OPS.replace("def f", "def h")
    )
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from mlops.fingerprint import "
        f"fingerprint_parts; print(json.dumps(fingerprint_parts('{pkg.name}.steps', 'f')))"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("0", "1", "2")
    }
    assert len(outs) == 1
    assert json.loads(outs.pop()) == pkg.parts()


@pytest.mark.parametrize(
    ("steps", "libraries"),
    [
        pytest.param("import numpy\n\ndef f(x):\n    return x\n", set(), id="unused-import"),
        pytest.param(
            "import numpy as np\n\ndef f(x):\n    return np.asarray(x)\n",
            {"dist:numpy"},
            id="module-level",
        ),
        pytest.param(
            "def f(x):\n    import numpy\n    return numpy.asarray(x)\n", {"dist:numpy"}, id="body"
        ),
        pytest.param(
            "from .helpers import arr\n\ndef f(x):\n    return arr(x)\n",
            {"dist:numpy"},
            id="through-project-code",
        ),
        pytest.param(
            "import json, typing\nimport mlops\n\ndef f(x: typing.Any):\n"
            "    return json.dumps(x), mlops.step\n",
            set(),
            id="stdlib-and-mlops",
        ),
        pytest.param(
            "from sklearn.linear_model import LogisticRegression\n\ndef f(x):\n"
            "    return LogisticRegression()\n",
            {"dist:scikit-learn", "dist:numpy", "dist:scipy", "dist:joblib"},
            id="with-requirements",
        ),
    ],
)
def test_libraries_the_reached_code_imports(pkg: Pkg, steps: str, libraries: set[str]) -> None:
    """A library counts when reached code uses it, at any depth, with what it requires; the
    standard library, mlops and unused imports do not."""
    pkg.write("helpers", "import numpy\n\ndef arr(x):\n    return numpy.asarray(x)\n")
    pkg.write("steps", steps)
    found = {k for k in pkg.parts() if k.startswith("dist:")}
    assert libraries <= found
    if not libraries:
        assert not found
    else:
        assert all(k.startswith("dist:") for k in found)


def test_unreadable_module_is_an_error_only_when_reached(pkg: Pkg) -> None:
    """A module with a syntax error that the step never reaches does not stop it being read;
    one it reaches does (it cannot be hashed, and it would not import)."""
    pkg.write("broken", "def g(:\n")
    pkg.write("steps", "def f(x):\n    return x\n\ndef other():\n    from . import broken\n")
    assert sorted(pkg.parts()) == [f"{pkg.name}.steps:f"]
    pkg.write("steps", "def f(x):\n    from . import broken\n    return broken.g(x)\n")
    with pytest.raises(SyntaxError):
        pkg.parts()
    pkg.write("broken", "def g(x):\n    return x\n")  # fixed: read again, not remembered
    assert f"{pkg.name}.broken:g" in pkg.parts()
