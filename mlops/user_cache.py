"""The per-user cache folder that mlops' local memos share, and their on/off switches.

The compose cache (``compose/``) and the signature memo (``signatures/``) live under one root:
``$MLOPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlops``, else ``~/.cache/mlops``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_DIR", "cache_root", "switched_on"]

#: the environment variable that moves the root
ENV_DIR = "MLOPS_CACHE_DIR"


def cache_root() -> Path:
    """The folder under which each memo keeps its own subfolder."""
    root = os.environ.get(ENV_DIR)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "mlops")
    return Path(root)


def switched_on(variable: str) -> bool:
    """False when the environment variable is ``0``, ``false``, ``off`` or ``no``.

    Examples:
        >>> switched_on("MLOPS_NO_SUCH_SWITCH")
        True
    """
    return os.environ.get(variable, "1").strip().lower() not in ("0", "false", "off", "no")
