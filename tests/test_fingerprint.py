"""Code fingerprints, read from source: what reaches a step's code hash and what does not."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops.fingerprint import fingerprint, fingerprint_parts


class Pkg:
    """A fresh importable package of modules in a temporary folder."""

    def __init__(self, root: Path) -> None:
        self.name = f"fp_{uuid.uuid4().hex[:10]}"
        self.dir = root / self.name
        self.dir.mkdir()
        (self.dir / "__init__.py").write_text("")

    def write(self, module: str, text: str) -> None:
        (self.dir / f"{module}.py").write_text(text)

    def hash(self, module: str = "steps", name: str = "f") -> str | None:
        return fingerprint(f"{self.name}.{module}", name)


@pytest.fixture
def pkg(tmp_path: Path) -> Iterator[Pkg]:
    sys.path.insert(0, str(tmp_path))
    try:
        yield Pkg(tmp_path)
    finally:
        sys.path.remove(str(tmp_path))


HELPERS = "K = 1\n\ndef g(x):\n    return x + K\n\ndef unrelated():\n    return 0\n"

# id, steps module text; each uses helpers.g (and so helpers.K)
FORMS = [
    pytest.param("from .helpers import g\n\ndef f(x):\n    return g(x)\n", id="from-relative"),
    pytest.param("from {pkg}.helpers import g\n\ndef f(x):\n    return g(x)\n", id="from-absolute"),
    pytest.param("from . import helpers\n\ndef f(x):\n    return helpers.g(x)\n", id="module-attr"),
    pytest.param(
        "import {pkg}.helpers\n\ndef f(x):\n    return {pkg}.helpers.g(x)\n", id="import-dotted"
    ),
    pytest.param("import {pkg}.helpers as h\n\ndef f(x):\n    return h.g(x)\n", id="import-as"),
    pytest.param("from .helpers import *\n\ndef f(x):\n    return g(x)\n", id="star-import"),
    pytest.param(
        "from . import helpers as h\n\ndef f(x):\n    fn = h\n    return fn.g(x)\n",
        id="module-object",
    ),
]


@pytest.mark.parametrize("steps", FORMS)
def test_helper_changes_reach_the_step(pkg: Pkg, steps: str) -> None:
    """A helper in another module counts, however it is imported; unrelated code does not."""
    pkg.write("helpers", HELPERS)
    pkg.write("steps", steps.format(pkg=pkg.name))
    before = pkg.hash()
    assert before is not None
    pkg.write("helpers", HELPERS.replace("return x + K", "return x + K + 0"))
    changed_helper = pkg.hash()
    assert changed_helper != before
    pkg.write("helpers", HELPERS.replace("K = 1", "K = 2").replace("+ K", "+ K + 0"))
    assert pkg.hash() != changed_helper  # a module-level constant the helper uses


def test_unrelated_code_comments_and_docstrings_do_not_count(pkg: Pkg) -> None:
    """Comments, docstrings, formatting and code the step does not reach leave the hash alone."""
    pkg.write("helpers", HELPERS)
    pkg.write(
        "steps", "from .helpers import g\n\ndef f(x):\n    return g(x)\n\ndef other():\n    pass\n"
    )
    before = pkg.hash()
    pkg.write("helpers", '"""Doc."""\n' + HELPERS.replace("return 0", "return 1  # changed"))
    pkg.write(
        "steps",
        "# a comment\nfrom .helpers import g\n\n\ndef f(x):\n    '''Docstring.'''\n"
        "    return g( x )  # why\n\ndef other():\n    return 42\n",
    )
    assert pkg.hash() == before


def test_parameter_named_like_a_function_is_not_that_function(pkg: Pkg) -> None:
    """A parameter or local variable shadowing a module-level name does not pull it in."""
    pkg.write(
        "steps",
        "def parity(n):\n    return n % 2\n\ndef f(parity):\n    x = parity\n    return x\n",
    )
    assert set(fingerprint_parts(f"{pkg.name}.steps", "f") or {}) == {f"{pkg.name}.steps:f"}


def test_defaults_and_same_module_definitions(pkg: Pkg) -> None:
    """Module-level names used in a default value or the body are followed, recursively."""
    pkg.write("steps", "C = 1\n\ndef h():\n    return 2\n\ndef f(x=C):\n    return h()\n")
    parts = set(fingerprint_parts(f"{pkg.name}.steps", "f") or {})
    assert parts == {f"{pkg.name}.steps:{n}" for n in ("f", "C", "h")}


def test_libraries_are_not_hashed_nor_imported(pkg: Pkg) -> None:
    """Installed libraries enter by version, not code, and reading the source imports nothing."""
    pkg.write(
        "steps",
        "import json\nfrom sklearn.datasets import load_iris\n\n"
        "def f(x):\n    return json.dumps(load_iris)\n",
    )
    already = "sklearn.datasets" in sys.modules
    parts = fingerprint_parts(f"{pkg.name}.steps", "f") or {}
    assert {k for k in parts if not k.startswith("dist:")} == {f"{pkg.name}.steps:f"}
    assert "dist:scikit-learn" in parts  # its version, not its code (json is the stdlib's)
    assert f"{pkg.name}.steps" not in sys.modules
    assert already or "sklearn.datasets" not in sys.modules


def test_unreadable_is_none(pkg: Pkg) -> None:
    """A missing module or name gives None (the compiler then imports the function)."""
    assert fingerprint(f"{pkg.name}.nope", "f") is None
    pkg.write("steps", "x = 1\n")
    assert pkg.hash() is None
