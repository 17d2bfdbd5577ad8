"""The code part of the cache key, end to end: real ``python -m mlops`` runs on a small project.

One project holds one independent step per variant (each in its own package of modules). After a
first run, each variant's reached code is edited in turn: ``plan=true`` must say that exactly that
step will run, and why, and the run must then miss exactly that step and give every step the
value a run on a brand-new registry gives (on ``sync``, ``threads`` and ``processes`` in turn);
an edit nothing reaches (a comment, an unused function) must leave every step cached. Library
versions are simulated with a throwaway installed distribution (a ``*.dist-info`` folder on
``PYTHONPATH``).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_mlops

from mlops import Registry


@dataclass(frozen=True)
class Variant:
    files: dict[str, str]  # module under the variant's package -> text ({pkg} = the package)
    edit: tuple[str, str, str]  # module, old, new: reached code
    why: str  # a reason the plan must give ({pkg} = the package)
    unrelated: tuple[str, str, str] | None = None  # an edit nothing reaches


HELPERS = "def clean(x):\n    return x + 1\n\n\ndef unused():\n    return 0\n"
CLEAN = ("helpers", "return x + 1", "return x + 2")
UNUSED = ("helpers", "return 0", "return 1")
OPS = (
    "OPS = {}\n\n\ndef register(fn):\n    OPS[fn.__name__] = fn\n    return fn\n\n\n"
    "@register\ndef add(x):\n    return x + 1\n\n\ndef unused():\n    return 0\n"
)
STEP = "from mlops import step\n\n\n@step\ndef f(x: int = 1) -> int:\n"

VARIANTS = {
    "body_import": Variant(
        {
            "helpers": HELPERS,
            "steps": STEP + "    from .helpers import clean\n    return clean(x)\n",
        },
        CLEAN,
        "code of `{pkg}.helpers.clean` changed",
        UNUSED,
    ),
    "nested_import_as": Variant(
        {
            "helpers": HELPERS,
            "steps": STEP + "    def inner(v):\n        import {pkg}.helpers as h\n"
            "        return h.clean(v)\n    return inner(x)\n",
        },
        CLEAN,
        "code of `{pkg}.helpers.clean` changed",
        UNUSED,
    ),
    "method_import": Variant(
        {
            "helpers": HELPERS,
            "steps": "class K:\n    def run(self, x):\n        from . import helpers\n"
            "        return helpers.clean(x)\n\n\n" + STEP + "    return K().run(x)\n",
        },
        CLEAN,
        "code of `{pkg}.helpers.clean` changed",
        UNUSED,
    ),
    "decorator_registry": Variant(
        {"ops": OPS, "steps": "from .ops import OPS\n" + STEP + "    return OPS['add'](x)\n"},
        ("ops", "return x + 1", "return x + 2"),
        "code of `{pkg}.ops.OPS` changed",
        ("ops", "return 0", "return 1"),
    ),
    "update_in_if": Variant(
        {
            "ops": "OPS = {}\nif True:\n    def _add(x):\n        return x + 1\n\n"
            "    OPS.update(add=_add)\n",
            "steps": "from .ops import OPS\n" + STEP + "    return OPS['add'](x)\n",
        },
        ("ops", "return x + 1", "return x + 2"),
        "code of `{pkg}.ops._add` changed",
    ),
    "augmented": Variant(
        {
            "ops": "LIMIT = 1\nLIMIT += 1\n",
            "steps": "from . import ops\n" + STEP + "    return x + ops.LIMIT\n",
        },
        ("ops", "LIMIT += 1", "LIMIT += 2"),
        "code of `{pkg}.ops.LIMIT` changed",
    ),
    "getattr_dynamic": Variant(
        {
            "ops": "def add(x):\n    return x + 1\n\n\ndef other():\n    return 0\n",
            "steps": "from . import ops\n\nNAME = 'add'\n"
            + STEP
            + "    return getattr(ops, NAME)(x)\n",
        },
        ("ops", "return 0", "return 1"),
        "code of module `{pkg}.ops` (dynamic lookup in `f`) changed",
    ),
    "import_module_dynamic": Variant(
        {
            "ops": "def add(x):\n    return x + 1\n",
            "spare": "def other():\n    return 0\n",
            "steps": "import importlib\n\nNAME = 'ops'\n"
            + STEP
            + "    return importlib.import_module(__package__ + '.' + NAME).add(x)\n",
        },
        ("spare", "return 0", "return 1"),
        "code of module `{pkg}.spare` (dynamic import in `f`) changed",
    ),
}


def _pipeline(pkgs: dict[str, str]) -> str:
    lines = ["# @package _global_", "pipeline:", "  name: codekey", "steps:"]
    for name, pkg in pkgs.items():
        lines += [f"  {name}:", f"    _target_: {pkg}.steps.f"]
    lines += ["  lib:", "    _target_: libstep.f"]
    return "\n".join(lines) + "\n"


FAKELIB_META = "Metadata-Version: 2.1\nName: fakelib-dist\nVersion: {v}\n"


def _install_fakelib(libs: Path, version: str) -> None:
    """A throwaway installed distribution: module ``fakelib`` of ``fakelib-dist`` at ``version``."""
    for old in libs.glob("fakelib_dist-*.dist-info"):
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    info = libs / f"fakelib_dist-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(FAKELIB_META.format(v=version))
    (info / "top_level.txt").write_text("fakelib\n")
    (libs / "fakelib").mkdir(exist_ok=True)
    (libs / "fakelib" / "__init__.py").write_text("VALUE = 1\n")  # the code never changes


EXECUTORS = ("sync", "threads", "processes")


def _values(registry: Path) -> dict[str, object]:
    """What each step of the last ``codekey`` run returned."""
    run = Registry(str(registry)).list_runs(pipeline="codekey")[-1]
    return {step: run.load(step) for step in [*VARIANTS, "lib"]}


def _statuses(output: str) -> dict[str, str]:
    """Each step's final status in a run's progress lines (``done`` is a step that ran)."""
    found = dict(re.findall(r"\] (\S+)\s+(cached|done|failed)\s", output))
    return {k: "ran" if v == "done" else v for k, v in found.items()}


def _plan(output: str) -> dict[str, str]:
    return dict(re.findall(r"^  (\S+)\s+(cached|will run.*|may run.*)$", output, re.M))


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    folder = tmp_path / "project"
    folder.mkdir()
    pkgs = {name: f"ck_{name}_{uuid.uuid4().hex[:6]}" for name in VARIANTS}
    for name, variant in VARIANTS.items():
        pkg = folder / pkgs[name]
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        for module, text in variant.files.items():
            (pkg / f"{module}.py").write_text(text.replace("{pkg}", pkgs[name]))
    (folder / "libstep.py").write_text(
        "import fakelib\n\nfrom mlops import step\n\n\n@step\ndef f(x: int = 1) -> int:\n"
        "    return x + fakelib.VALUE\n"
    )
    (folder / "conf" / "pipeline").mkdir(parents=True)
    (folder / "conf" / "pipeline" / "codekey.yaml").write_text(_pipeline(pkgs))
    libs = tmp_path / "libs"
    _install_fakelib(libs, "1.0")
    env = {"PYTHONPATH": str(libs)}
    return folder, pkgs, env


def _edit(folder: Path, pkg: str, edit: tuple[str, str, str]) -> None:
    module, old, new = edit
    path = folder / pkg / f"{module}.py"
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new, 1))


def test_each_reached_edit_misses_its_step_and_says_why(
    project: tuple[Path, dict[str, str], dict[str, str]],
) -> None:
    """Per variant: the plan names the change, exactly that step runs, unrelated edits hit."""
    folder, pkgs, env = project
    reg = f"registry.uri={folder / 'registry'}"
    first = run_mlops("+pipeline=codekey", reg, cwd=folder, env=env, check=True)
    assert set(_statuses(first.stdout).values()) == {"ran"}, first.output
    all_cached = {name: "cached" for name in [*VARIANTS, "lib"]}
    for i, (name, variant) in enumerate(VARIANTS.items()):
        if variant.unrelated:
            _edit(folder, pkgs[name], variant.unrelated)
        _edit(folder, pkgs[name], variant.edit)
        plan = run_mlops("+pipeline=codekey", reg, "plan=true", cwd=folder, env=env, check=True)
        decided = _plan(plan.stdout)
        why = variant.why.replace("{pkg}", pkgs[name])
        assert decided[name].startswith("will run") and why in decided[name], plan.output
        # a step that imports a computed module name may run any module of the project
        runs = {name, "import_module_dynamic"}
        assert {k for k, v in decided.items() if v != "cached"} == runs, plan.output
        executor = f"executor={EXECUTORS[i % len(EXECUTORS)]}"
        ran = run_mlops("+pipeline=codekey", reg, executor, cwd=folder, env=env, check=True)
        assert _statuses(ran.stdout) == {**all_cached, **dict.fromkeys(runs, "ran")}, ran.output
        fresh = folder / f"fresh-{name}"
        run_mlops("+pipeline=codekey", f"registry.uri={fresh}", cwd=folder, env=env, check=True)
        assert _values(folder / "registry") == _values(fresh), name
    # comments, docstrings and formatting anywhere: nothing runs
    for name, variant in VARIANTS.items():
        for module in variant.files:
            path = folder / pkgs[name] / f"{module}.py"
            path.write_text('"""Documented."""\n# a comment\n' + path.read_text() + "\n\n")
    plan = run_mlops("+pipeline=codekey", reg, "plan=true", cwd=folder, env=env, check=True)
    assert _plan(plan.stdout) == all_cached, plan.output


def test_library_version_is_in_the_key(
    project: tuple[Path, dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    """Upgrading a distribution re-runs exactly the steps that import it; the plan says so;
    ``cache.track_libraries=false`` leaves versions out."""
    folder, _, env = project
    reg = f"registry.uri={folder / 'registry'}"
    run_mlops("+pipeline=codekey", reg, cwd=folder, env=env, check=True)
    _install_fakelib(tmp_path / "libs", "2.0")
    plan = run_mlops("+pipeline=codekey", reg, "plan=true", cwd=folder, env=env, check=True)
    decided = _plan(plan.stdout)
    # the step importing a computed module name may run libstep, and so fakelib, too
    runs = {"lib", "import_module_dynamic"}
    assert {k: v for k, v in decided.items() if k in runs} == dict.fromkeys(
        runs, "will run: fakelib-dist 1.0 -> 2.0"
    ), plan.output
    assert {v for k, v in decided.items() if k not in runs} == {"cached"}, plan.output
    ran = run_mlops("+pipeline=codekey", reg, cwd=folder, env=env, check=True)
    assert {k for k, v in _statuses(ran.stdout).items() if v == "ran"} == runs, ran.output
    # without library tracking, a version change is no change
    off = [reg, "cache.track_libraries=false"]
    run_mlops("+pipeline=codekey", *off, cwd=folder, env=env, check=True)
    _install_fakelib(tmp_path / "libs", "3.0")
    plan = run_mlops("+pipeline=codekey", *off, "plan=true", cwd=folder, env=env, check=True)
    assert set(_plan(plan.stdout).values()) == {"cached"}, plan.output
