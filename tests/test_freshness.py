"""In-process re-runs: which imported project modules changed on disk, and reloading them so
that the code that runs is the code that was hashed."""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from mlops import freshness

HELPERS = "def clean(x):\n    return x + 1\n"
MIDDLE = "from .helpers import clean\n\ndef wrap(x):\n    return clean(x) * 10\n"
STEPS = "from .middle import wrap\nfrom . import other\n\ndef f(x):\n    return wrap(x)\n"
OTHER = "VALUE = 1\n"


class Project:
    def __init__(self, root: Path) -> None:
        self.name = f"fresh_{uuid.uuid4().hex[:10]}"
        self.dir = root / self.name
        self.dir.mkdir()
        (self.dir / "__init__.py").write_text("")
        for module, text in {
            "helpers": HELPERS,
            "middle": MIDDLE,
            "steps": STEPS,
            "other": OTHER,
        }.items():
            (self.dir / f"{module}.py").write_text(text)

    def module(self, name: str) -> str:
        return f"{self.name}.{name}"

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.dir / f"{name}.py"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))
        _later(path)

    def steps(self) -> ModuleType:
        return sys.modules[self.module("steps")]


def _later(path: Path) -> None:
    """Give the file a modification time clearly after any import so far (coarse clocks)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    sys.path.insert(0, str(tmp_path))
    p = Project(tmp_path)
    try:
        importlib.import_module(p.module("steps"))
        yield p
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith(p.name)]:
            del sys.modules[name]


def test_nothing_changed_nothing_stale(project: Project) -> None:
    """Freshly imported modules are not stale, and refresh reloads nothing."""
    names = [project.module(n) for n in ("steps", "middle", "helpers", "other")]
    assert freshness.stale_modules(names) == []
    assert freshness.refresh([project.module("steps")]) == []


@pytest.mark.parametrize(
    ("edited", "old", "new", "reloaded", "result"),
    [
        pytest.param("helpers", "x + 1", "x + 2", ["helpers", "middle", "steps"], 30, id="deep"),
        pytest.param("middle", "* 10", "* 100", ["middle", "steps"], 200, id="middle"),
        pytest.param("steps", "wrap(x)\n", "wrap(x) + 1\n", ["steps"], 21, id="step-module"),
        pytest.param("other", "VALUE = 1", "VALUE = 2", ["other", "steps"], 20, id="sibling"),
    ],
)
def test_changed_module_and_its_importers_reload_in_order(
    project: Project, edited: str, old: str, new: str, reloaded: list[str], result: int
) -> None:
    """An edited module is stale; refresh reloads it and the modules that import it, deps first."""
    assert project.steps().f(1) == 20
    project.edit(edited, old, new)
    assert freshness.stale_modules([project.module(n) for n in reloaded]) == [
        project.module(edited)
    ]
    order = freshness.refresh([project.module("steps")])
    assert order == [project.module(n) for n in reloaded]
    assert project.steps().f(1) == result
    assert freshness.refresh([project.module("steps")]) == []  # stamped: not again


def test_touch_without_change_is_not_a_change_once_stamped(project: Project) -> None:
    """A source rewritten with the same bytes is not reloaded once its content is known."""
    helpers = project.module("helpers")
    assert freshness.stale_modules([helpers]) == []  # checked: its digest is now known
    _later(project.dir / "helpers.py")
    assert freshness.stale_modules([helpers]) == []


def test_unimported_library_and_mlops_modules_are_never_stale(project: Project) -> None:
    """Only imported modules of the project count."""
    assert freshness.stale_modules(["json", "mlops.fingerprint", "not_imported_anywhere"]) == []


def test_broken_edit_raises_and_does_not_run(project: Project) -> None:
    """An edit that does not import is an error, not a silent run of the old code."""
    project.edit("helpers", "return x + 1", "return x +")
    with pytest.raises(SyntaxError):
        freshness.refresh([project.module("steps")])


def test_module_imported_before_the_clock_counts_as_changed_once(project: Project) -> None:
    """Without any evidence of what was imported (no import time, no bytecode stamp), a module
    is reloaded once and known from then on."""
    helpers = project.module("helpers")
    freshness._IMPORT_STARTED.pop(helpers, None)
    freshness._STAMPS.pop(helpers, None)
    sys.modules[helpers].__cached__ = None  # type: ignore[attr-defined]
    assert freshness.stale_modules([helpers]) == [helpers]
    assert freshness.refresh([project.module("steps")])[0] == helpers
    assert freshness.stale_modules([helpers]) == []
