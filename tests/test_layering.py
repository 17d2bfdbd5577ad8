"""Imports flow one way: cli -> api/executor -> compiler -> steps/schema/hashing; the storage
layer (storage, store, serializers, registry, runs) never imports the compiler or executor."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlops"

# module -> modules of mlops it must not import (at run time; TYPE_CHECKING imports are fine)
FORBIDDEN = {
    "errors": {"*"},
    "hashing": {"compiler", "executor", "api", "cli", "registry", "store", "storage"},
    "storage": {"compiler", "executor", "api", "cli", "cache", "registry", "store"},
    "serializers": {"compiler", "executor", "api", "cli", "cache", "registry", "storage"},
    "store": {"compiler", "executor", "api", "cli", "cache", "registry"},
    "registry": {"compiler", "executor", "api", "cli", "cache", "sweep", "distributed"},
    "runs": {"compiler", "executor", "api", "cli", "cache", "sweep", "distributed"},
    "fingerprint": {"compiler", "executor", "api", "cli", "registry", "store", "storage"},
    "steps": {"compiler", "executor", "api", "cli", "cache"},
    "schema": {"compiler", "executor", "api", "cli"},
    "compiler": {"executor", "api", "cli", "sweep", "distributed"},
    "cache": {"executor", "api", "cli", "sweep", "distributed"},
    "executor": {"api", "cli", "sweep"},
}


def runtime_imports(path: Path) -> set[str]:
    """mlops modules imported by ``path`` outside ``if TYPE_CHECKING:`` blocks."""
    depth = len(path.relative_to(PACKAGE).parts)  # 1 for mlops/x.py, 2 for mlops/pkg/x.py
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level == depth and node.module:
                found.add(node.module.split(".")[0])
            elif node.module and node.module.startswith("mlops."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mlops."))
    return found


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_imports_flow_one_way(module: str) -> None:
    """Each module imports none of the modules above it."""
    single = PACKAGE / f"{module}.py"
    files = [single] if single.exists() else sorted((PACKAGE / module).glob("*.py"))
    assert files, module
    imported = set().union(*map(runtime_imports, files))
    forbidden = FORBIDDEN[module]
    bad = imported if "*" in forbidden else imported & forbidden
    assert not bad, f"mlops/{module}.py imports {sorted(bad)}"
