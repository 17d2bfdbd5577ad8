"""``ExternalArtifact``: data from outside the project, passed to a step of a Python pipeline.

Either a file (``path=``, a local path or an fsspec URL), which becomes a ``${file:PATH}``
reference that the compiler keys by the file's content; or a value (``value=``), which is stored
once by content in the registry's artifact store when the pipeline is built for a run and becomes
``${object:ID,FORMAT,SIZE}``. An unchanged value serializes to the same bytes, so it has the same
id and gives the same cache keys however often the pipeline is built, and it is stored once.
"""

from __future__ import annotations

import io
import os
import re
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..store import ArtifactStore

__all__ = ["ExternalArtifact"]

_NEEDS_QUOTES = re.compile(r"[,'\"{}\[\]\\$]|^\s|\s$")


class ExternalArtifact:
    """A step argument that comes from outside the pipeline: a file, or an in-memory value.

    Args:
        value: any value a serializer stores (a DataFrame, an array, a JSON-able value, a
            scikit-learn estimator ...); stored by content when the pipeline runs.
        path: a file or fsspec URL (``data/iris.csv``, ``s3://bucket/iris.csv``); its content
            is part of the step's cache key.

    Examples:
        >>> ExternalArtifact(path="data/iris.csv").reference()
        '${file:data/iris.csv}'

    .. versionadded:: 0.2.0
    """

    __slots__ = ("_value", "path")

    def __init__(self, value: Any = None, *, path: str | os.PathLike[str] | None = None) -> None:
        if (value is None) == (path is None):
            raise ConfigError(
                "ExternalArtifact takes exactly one of value=... (a value to store) or "
                "path=... (a file or URL)"
            )
        self._value = value
        self.path = None if path is None else os.fspath(path)

    @property
    def value(self) -> Any:
        return self._value

    def __repr__(self) -> str:
        if self.path is not None:
            return f"ExternalArtifact(path={self.path!r})"
        return f"ExternalArtifact(value=<{type(self._value).__qualname__}>)"

    def reference(self, store: ArtifactStore | None = None, *, allow_pickle: bool = False) -> str:
        """The reference that stands for this artifact in a pipeline config.

        Args:
            store: where a ``value=`` is stored (once: an object already there is not written
                again). None computes the reference without storing anything, as ``plan=true``
                and ``mlops pipeline show`` need.
            allow_pickle: store a value no safe format handles with pickle.
        """
        if self.path is not None:
            path = self.path
            if _NEEDS_QUOTES.search(path):
                path = "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
            return f"${{file:{path}}}"
        from ..schema import ObjectRef

        if store is not None:
            ref = store.put(self._value)
            return str(ObjectRef(ref.id, ref.format, ref.size))
        return str(_content_ref(self._value, allow_pickle=allow_pickle))


def _content_ref(value: Any, *, allow_pickle: bool) -> Any:
    """The ObjectRef ``store.put(value)`` would return, computed in memory."""
    from ..hashing import Hasher
    from ..schema import ObjectRef
    from ..serializers import serializer_for

    ser = serializer_for(value, allow_pickle=allow_pickle)
    buf = io.BytesIO()
    ser.dump(value, buf)  # type: ignore[arg-type]  # a binary file
    data = buf.getbuffer()
    h = Hasher()
    h.update(data)
    return ObjectRef(h.hexdigest(), ser.name, data.nbytes)
