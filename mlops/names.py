"""Names that become paths in the registry: models, artifacts, steps, pipelines, run ids.

A name is one path segment on every filesystem the registry may live on, so it is checked once,
here, before it is used to build a path.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidNameError

__all__ = ["MAX_NAME_LENGTH", "check_name"]

#: Longer names would exceed the 255-byte file name limit of common filesystems once a record's
#: suffix is added; they are refused here with a clear message rather than by the OS.
MAX_NAME_LENGTH = 200

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def check_name(kind: str, name: Any) -> str:
    """Return ``name`` if it can be a path segment in the registry, else raise InvalidNameError.

    Examples:
        >>> check_name("model", "iris_classifier")
        'iris_classifier'
        >>> check_name("model", "a/b")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mlops.errors.InvalidNameError: invalid model name 'a/b': use letters, digits, ...
    """
    if not isinstance(name, str) or not name or not _NAME_RE.match(name) or ".." in name:
        raise InvalidNameError(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '-' and '.', starting "
            "with a letter, digit or '_' (no '/', '..', spaces or control characters)"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"invalid {kind} name '{name[:40]}...': {len(name)} characters; use at most "
            f"{MAX_NAME_LENGTH}"
        )
    return name
