"""Code that reaches a step through a pickled input value is in the consumer's key.

With ``registry.allow_pickle=true`` a producer may hand on an instance of one of the project's
classes (or a project function); its consumer calls the value's methods, whose code its own
reading cannot see. A pickle names classes but not their code, so without more an edited method
would leave the stored bytes, and the consumer's key, unchanged: a stale hit. Per variant, each
edit must make the consumer give what a brand-new registry gives, on a cached re-run, and an
edit nothing reaches must leave both steps cached.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run_mlops

from mlops import Registry
from mlops.serializers import code_identity


@dataclass(frozen=True)
class Variant:
    files: dict[str, str]  # module of the variant's package -> text ({pkg}: the package)
    edit: tuple[str, str, str]  # module, old, new: code the consumer runs through its input
    unrelated: tuple[str, str, str] | None = None  # an edit nothing reaches


SCALER = (
    "class Scaler:\n    def __init__(self, k):\n        self.k = k\n\n"
    "    def apply(self, x):\n        return x * self.k\n\n\ndef unused():\n    return 0\n"
)
USE_APPLY = "    return s.apply(10)\n"

VARIANTS = {
    "method": Variant(
        {"model": SCALER, "steps": "from .model import Scaler\n"},
        ("model", "x * self.k", "x * self.k + 1"),
        ("model", "return 0", "return 1"),
    ),
    "helper_of_method": Variant(
        {
            "util": "def boost(v):\n    return v + 1\n",
            "model": "from .util import boost\n\n\nclass Scaler:\n    def __init__(self, k):\n"
            "        self.k = k\n\n    def apply(self, x):\n        return boost(x * self.k)\n",
            "steps": "from .model import Scaler\n",
        },
        ("util", "v + 1", "v + 2"),
    ),
    "base_class_other_module": Variant(
        {
            "base": "class Base:\n    def apply(self, x):\n        return x * self.k\n",
            "model": "from .base import Base\n\n\nclass Scaler(Base):\n"
            "    def __init__(self, k):\n        self.k = k\n",
            "steps": "from .model import Scaler\n",
        },
        ("base", "x * self.k", "x - self.k"),
    ),
    "nested_in_containers": Variant(
        {
            "model": SCALER,
            "steps": "from .model import Scaler as _S\n\n\ndef Scaler(k):\n"
            "    return {'items': [(_S(k),)]}\n",
        },
        ("model", "x * self.k", "x * self.k * 3"),
    ),
    "function_value": Variant(
        {
            "model": "def double(x):\n    return 2 * x\n",
            "steps": "from .model import double\n\n\ndef Scaler(k):\n    return {'fn': double}\n",
        },
        ("model", "2 * x", "3 * x"),
    ),
}

USES = {
    "nested_in_containers": "    return s['items'][0][0].apply(10)\n",
    "function_value": "    return s['fn'](10)\n",
}


def _steps_text(variant: str, head: str) -> str:
    return (
        head
        + "from mlops import step\n\n\n@step\ndef make(k: int = 2):\n    return Scaler(k)\n\n\n"
        "@step\ndef use(s) -> int:\n" + USES.get(variant, USE_APPLY)
    )


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "project"
    folder.mkdir()
    pkgs = {name: f"pc_{name}_{uuid.uuid4().hex[:6]}" for name in VARIANTS}
    lines = ["# @package _global_", "pipeline:", "  name: pc", "steps:"]
    for name, variant in VARIANTS.items():
        pkg = folder / pkgs[name]
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        for module, text in variant.files.items():
            if module == "steps":
                text = _steps_text(name, text)
            (pkg / f"{module}.py").write_text(text.replace("{pkg}", pkgs[name]))
        lines += [f"  make_{name}:", f"    _target_: {pkgs[name]}.steps.make"]
        lines += [f"  use_{name}:", f"    _target_: {pkgs[name]}.steps.use"]
        lines += [f"    s: ${{step:make_{name}}}"]
    (folder / "conf" / "pipeline").mkdir(parents=True)
    (folder / "conf" / "pipeline" / "pc.yaml").write_text("\n".join(lines) + "\n")
    return folder, pkgs


def _run(folder: Path, registry: Path, *extra: str) -> str:
    args = ("+pipeline=pc", f"registry.uri={registry}", "registry.allow_pickle=true", *extra)
    return run_mlops(*args, cwd=folder, check=True).output


def _uses(registry: Path) -> dict[str, object]:
    run = Registry(str(registry), allow_pickle=True).list_runs(pipeline="pc")[-1]
    return {name: run.load(f"use_{name}") for name in VARIANTS}


def _statuses(output: str) -> dict[str, str]:
    found = dict(re.findall(r"\] (\S+)\s+(cached|done|failed)\s", output))
    return {k: "ran" if v == "done" else v for k, v in found.items()}


def _edit(folder: Path, pkg: str, edit: tuple[str, str, str]) -> None:
    module, old, new = edit
    path = folder / pkg / f"{module}.py"
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new, 1))


def test_code_held_by_a_pickled_input_is_in_the_consumers_key(
    project: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, pkgs = project
    registry = folder / "registry"
    _run(folder, registry)
    for i, (name, variant) in enumerate(VARIANTS.items()):
        if variant.unrelated:
            _edit(folder, pkgs[name], variant.unrelated)
            statuses = _statuses(_run(folder, registry))
            assert set(statuses.values()) == {"cached"}, (name, statuses)
        before = _uses(registry)[name]
        _edit(folder, pkgs[name], variant.edit)
        output = _run(folder, registry)
        statuses = _statuses(output)
        assert statuses[f"use_{name}"] == "ran", (name, output)
        fresh = tmp_path / f"fresh-{i}"
        _run(folder, fresh)
        cached, expected = _uses(registry), _uses(fresh)
        assert cached == expected, (name, cached, expected)
        assert cached[name] != before, name  # the edit changes the result: the test can fail


def test_code_identity_covers_project_code_only() -> None:
    """Values that hold no project code keep byte-stable pickles, with no identity appended."""
    import datetime
    import fractions

    for value in [
        1,
        "x",
        [1.5, None],
        {"a": (1, 2)},
        fractions.Fraction(1, 3),
        datetime.date.today,
    ]:
        assert code_identity(value) == ""
