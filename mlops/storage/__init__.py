"""Storage for the registry: one interface, a local-folder backend and an fsspec backend.

:func:`open_storage` picks the backend for a URI: a folder on this machine (a path, or a
``file://`` URL) is a :class:`LocalStorage`, which calls the OS directly; anything else is an
:class:`FsspecStorage`. Both implement :class:`Storage`; see :mod:`mlops.storage.base` for the
contract. (fsspec's own local filesystem writes records in place and checks before it creates,
so neither its replace nor its create-if-absent is atomic: local folders never go through it.)
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import RegistryError
from .base import PendingWrite, Storage, redact_uri
from .fsspec import FsspecStorage
from .local import LocalStorage

__all__ = [
    "FsspecStorage",
    "LocalStorage",
    "PendingWrite",
    "Storage",
    "open_storage",
    "redact_uri",
]


def open_storage(uri: str, storage_options: dict[str, Any] | None = None) -> Storage:
    """The storage at ``uri``: a local folder, or any fsspec URL with its options.

    Nothing is read or written (call :meth:`Storage.check` for that).

    Raises:
        RegistryError: storage options given for a local folder (they configure remote
            filesystems), or no filesystem is installed for the URL's protocol.

    Examples:
        >>> open_storage("/tmp/reg")
        LocalStorage('/tmp/reg')
        >>> open_storage("memory://doctest")
        FsspecStorage('memory://doctest')

    .. versionadded:: 0.2
    """
    raw = str(uri)
    if _local_folder(raw):
        if storage_options:
            shown = redact_uri(raw)
            raise RegistryError(
                f"registry '{shown}' is a local folder, which takes no storage options (got "
                f"{', '.join(sorted(storage_options))}). Remove registry.storage_options, or "
                "point registry.uri at the remote storage they are for.",
                shown,
            )
        return LocalStorage(raw)
    return FsspecStorage(raw, storage_options)


def _local_folder(raw: str) -> bool:
    """True for a POSIX folder path with no protocol, or a ``file://`` URL."""
    if os.sep != "/" or not raw:
        return False
    return raw.startswith("file://") or ":" not in raw
