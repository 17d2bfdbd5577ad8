"""Import paths in configs (``_target_``): the module they name, imported with one clear error."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ConfigError

__all__ = ["import_target"]


def import_target(
    target: str, key: str | None, *, colon: bool = False
) -> tuple[ModuleType, str, str]:
    """The module of ``target`` (``package.module.name``, or ``module:name`` with ``colon``), the
    module's name as written, and the name in it.

    Raises:
        ConfigError: naming ``key``: not an import path, or the module cannot be imported.

    Examples:
        >>> module, module_name, name = import_target("os.path.join", "steps.a._target_")
        >>> module_name, name
        ('os.path', 'join')
    """
    module_name, sep, attr = target.partition(":") if colon else ("", "", "")
    if not sep:
        module_name, _, attr = target.rpartition(".")
    if not module_name or not attr:
        raise ConfigError(
            f"'{target}' is not an import path; write it as package.module.function", key
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(
            f"cannot import module '{module_name}' of '{target}': {e}. Check the spelling, and "
            "that the module is importable from the current folder (or installed).",
            key,
        ) from e
    return module, module_name, attr
