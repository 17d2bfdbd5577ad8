"""Imports flow one way, as the contracts in pyproject.toml's ``[tool.importlinter]`` say.

The contracts are checked by import-linter over every import, function bodies included (only
``if TYPE_CHECKING:`` imports are left out: they never run). CI runs ``lint-imports`` too; this
test keeps the check in the README's test command.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    """`lint-imports` finds every contract kept."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    res = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "BROKEN" not in res.stdout and " KEPT" in res.stdout
