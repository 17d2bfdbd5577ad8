"""Serializers: how each type of step output becomes bytes in the registry, and back.

One class per format, each with three primitives (fsspec's shape: few methods, the docstring is
the contract):

* ``can_handle(obj) -> bool`` -- whether this format stores ``obj`` faithfully;
* ``dump(obj, f)`` -- write ``obj`` to the binary file ``f``;
* ``load(f)`` -- read it back from the binary file ``f``.

The table is consulted in order; the first serializer that can handle a value stores it. Formats
never execute code on load except the opt-in ``pickle`` one (see the README's trust boundary):
scikit-learn estimators go through skops, trusting only the types :mod:`mlops._skops` vets.

Type checks go by module name first, so that checking a value never imports pandas, numpy or
scikit-learn for a step that does not use them.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from typing import IO, Any

from ._skops import skops_io, trusted_skops_type
from .errors import ArtifactError

__all__ = [
    "FORMAT_VERSION",
    "Serializer",
    "get_serializer",
    "serializer_for",
    "serializers",
    "trusted_skops_type",
]

#: Part of every cache key: bump it when a format's bytes change, so old entries are not reused.
#: 2: JSON keeps the key order of dicts (it was sorted), so a consumer sees the producer's order.
FORMAT_VERSION = 2


def _module(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


class Serializer:
    """Base class; subclasses set ``name`` and implement the three primitives."""

    name: str = ""

    def can_handle(self, obj: Any) -> bool:
        raise NotImplementedError

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        raise NotImplementedError

    def load(self, f: IO[bytes]) -> Any:
        raise NotImplementedError

    def loads(self, data: bytes | memoryview) -> Any:
        """Load from bytes already in memory (the store reads and verifies them first).

        The default wraps them in a file; formats that can read a buffer in place override it,
        so that loading makes no copy of the payload.
        """
        return self.load(io.BytesIO(data))


class DataFrameParquet(Serializer):
    """pandas DataFrame as Parquet (index and dtypes kept through pandas metadata)."""

    name = "parquet"

    def can_handle(self, obj: Any) -> bool:
        if _module(obj) != "pandas":
            return False
        import pandas as pd

        return isinstance(obj, pd.DataFrame)

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(obj, preserve_index=None)
        pq.write_table(table, f)

    def load(self, f: IO[bytes]) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(f).to_pandas()

    def loads(self, data: bytes | memoryview) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        return pq.read_table(pa.BufferReader(data)).to_pandas()


class SeriesParquet(Serializer):
    """pandas Series as a one-column Parquet file; the name is kept."""

    name = "series-parquet"
    _NONAME = "__mlops_series__"

    def can_handle(self, obj: Any) -> bool:
        if _module(obj) != "pandas":
            return False
        import pandas as pd

        return isinstance(obj, pd.Series)

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = obj.name if obj.name is not None else self._NONAME
        frame = obj.to_frame(name=str(name))
        table = pa.Table.from_pandas(frame, preserve_index=None)
        meta = dict(table.schema.metadata or {})
        meta[b"mlops.series_name"] = json.dumps(obj.name).encode()
        pq.write_table(table.replace_schema_metadata(meta), f)

    def load(self, f: IO[bytes]) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = pa.BufferReader(f.getbuffer()) if isinstance(f, io.BytesIO) else f
        table = pq.read_table(source)
        name = json.loads((table.schema.metadata or {}).get(b"mlops.series_name", b"null"))
        series = table.to_pandas().iloc[:, 0]
        series.name = name
        return series


class NumpyNpy(Serializer):
    """numpy ndarray as .npy, without pickle (object arrays are refused)."""

    name = "npy"

    def can_handle(self, obj: Any) -> bool:
        if _module(obj) != "numpy":
            return False
        import numpy as np

        return isinstance(obj, np.ndarray) and not obj.dtype.hasobject

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import numpy as np

        np.save(f, obj, allow_pickle=False)

    def load(self, f: IO[bytes]) -> Any:
        import numpy as np

        return np.load(f, allow_pickle=False)


class SklearnSkops(Serializer):
    """scikit-learn estimators with skops; loading refuses every type mlops does not vet.

    skops rebuilds objects from a description of their types, and a type it is told to trust can
    be a function it will call (``builtins.exec``, ``os.system``) or one a model calls when it
    predicts. So loading first asks skops which types of the file it does not trust by default,
    and trusts only those that :func:`trusted_skops_type` accepts; any other one refuses the
    whole file before anything in it is constructed.
    """

    name = "skops"

    def can_handle(self, obj: Any) -> bool:
        if _module(obj) != "sklearn":
            return False
        from sklearn.base import BaseEstimator

        return isinstance(obj, BaseEstimator)

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        sio = skops_io()
        data = sio.dumps(obj)
        # Refuse now what loading would refuse later: a model holding a function or class of the
        # user's own (a FunctionTransformer of a project function) fails in the step that makes
        # it, not in every run that reads it.
        refused = _refused(sio.get_untrusted_types(data=data))
        if refused:
            raise ArtifactError(
                f"it holds {', '.join(refused)}, which mlops would refuse to load from a skops "
                "file (loading it could run code). Keep the model to scikit-learn, NumPy and "
                "SciPy objects (e.g. FunctionTransformer(numpy.log1p), not a function of yours)"
            )
        f.write(_stable_zip(data))

    def load(self, f: IO[bytes]) -> Any:
        return self.loads(f.read())

    def loads(self, data: bytes | memoryview) -> Any:
        sio = skops_io()
        raw = bytes(data)
        try:
            untrusted = sio.get_untrusted_types(data=raw)
        except Exception as e:  # not a skops file, or one skops cannot even describe
            raise ArtifactError(f"the model artifact is not a readable skops file: {e}") from e
        refused = _refused(untrusted)
        if refused:
            raise ArtifactError(
                "the model artifact names types that mlops does not trust: "
                + ", ".join(refused)
                + ". It was not loaded and nothing in it ran: from skops files mlops loads only "
                "scikit-learn estimators, NumPy and SciPy types and plain builtin values. If "
                "others can write to this registry, check who wrote this model."
            )
        return sio.loads(raw, trusted=untrusted)


def _refused(untrusted: list[str]) -> list[str]:
    return sorted(t for t in untrusted if not trusted_skops_type(t))


_SKOPS_IDS = re.compile(rb'"__id__": (\d+)|"(\d+)\.npy"')


def _stable_zip(data: bytes) -> bytes:
    """The same skops archive without what differs between two dumps of the same estimator.

    skops stamps each zip member with the current time, and names objects by their memory
    address (``"__id__": 140545384686144``, ``140545493137904.npy``), so an unchanged estimator
    would get new bytes -- a new content hash, a cache miss downstream (no early cutoff), a new
    upload. The ids are renumbered in order of first appearance in ``schema.json`` (the same
    object keeps one number, so shared references stay shared), and the members are written in
    a fixed order with a fixed time and the same compression.
    """
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = {info.filename: (info, src.read(info.filename)) for info in src.infolist()}
    schema_info, schema = members.pop("schema.json")
    numbers: dict[bytes, bytes] = {}

    def renumber(m: re.Match[bytes]) -> bytes:
        old = m.group(1) or m.group(2)
        new = numbers.setdefault(old, str(len(numbers) + 1).encode())
        return b'"__id__": ' + new if m.group(1) else b'"' + new + b'.npy"'

    schema = _SKOPS_IDS.sub(renumber, schema)
    renamed = {"schema.json": (schema_info, schema)}
    for name, member in members.items():
        stem = name[: -len(".npy")].encode() if name.endswith(".npy") else None
        renamed[f"{numbers[stem].decode()}.npy" if stem in numbers else name] = member
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in sorted(renamed):
            info, content = renamed[name]
            fixed = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = info.compress_type
            fixed.external_attr = 0o644 << 16
            dst.writestr(fixed, content)
    return out.getvalue()


class Json(Serializer):
    """JSON-able values: None, bool, int, float, str, and lists and dicts of them."""

    name = "json"

    def can_handle(self, obj: Any) -> bool:
        return _jsonable(obj)

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        f.write(json.dumps(obj, separators=(",", ":"), allow_nan=True).encode())

    def load(self, f: IO[bytes]) -> Any:
        return json.loads(f.read())


class Pickle(Serializer):
    """Any picklable value, with joblib. Opt-in only: loading a pickle runs code from the file."""

    name = "pickle"

    def can_handle(self, obj: Any) -> bool:
        return True

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        import joblib

        joblib.dump(obj, f)
        # A pickle names the classes and functions it holds but not their code, so an instance
        # of the project's ``Scaler`` pickles to the same bytes after ``Scaler.apply`` is edited,
        # and a consumer calling ``s.apply`` would be a cache hit with the old result. The
        # code of what the value holds goes after the pickle (which loading ignores), so the
        # artifact's hash, and with it every consumer's key, changes with that code.
        code = code_identity(obj)
        if code:
            f.write(_CODE_MARK + code.encode())

    def load(self, f: IO[bytes]) -> Any:
        import joblib

        return joblib.load(f)


#: what separates a pickle from the identity of the project code it holds (:meth:`Pickle.dump`)
_CODE_MARK = b"\nmlops-code:"


def code_identity(obj: Any) -> str:
    """A token of the code of every class and function of the user's project that ``obj``
    holds when pickled (``""`` if it holds none), from the same static reading as step keys.

    Examples:
        >>> code_identity({"a": [1, 2.0, "x"]})
        ''
    """
    import pickle
    import sys
    import types

    found: set[tuple[str, str]] = set()

    class _Collect(pickle.Pickler):
        def reducer_override(self, o: Any) -> Any:
            kind = o if isinstance(o, (type, types.FunctionType)) else type(o)
            module = getattr(kind, "__module__", None)
            qualname = getattr(kind, "__qualname__", None)
            if isinstance(module, str) and isinstance(qualname, str):
                found.add((module, qualname))
            return NotImplemented

    class _Discard:
        def write(self, data: Any) -> int:
            return len(data)

    # protocol 5 with a buffer callback: big arrays' buffers are handed out, not copied
    _Collect(_Discard(), protocol=5, buffer_callback=lambda _: None).dump(obj)
    from .fingerprint import fingerprint, is_project_file

    parts = []
    for module, qualname in sorted(found):
        mod = sys.modules.get(module)
        if mod is None or not is_project_file(getattr(mod, "__file__", None)):
            continue
        top = qualname.split(".", 1)[0]
        parts.append((module, top, fingerprint(module, top) or "unreadable"))
    if not parts:
        return ""
    from .hashing import token

    return token(sorted(set(parts)))


def _jsonable(obj: Any, depth: int = 0) -> bool:
    if obj is None or type(obj) in (bool, int, float, str):
        return True
    if depth > 50:
        return False
    if type(obj) in (list, tuple):
        return type(obj) is list and all(_jsonable(v, depth + 1) for v in obj)
    if type(obj) is dict:
        return all(type(k) is str and _jsonable(v, depth + 1) for k, v in obj.items())
    return False


_SERIALIZERS: dict[str, Serializer] = {
    s.name: s for s in (DataFrameParquet(), SeriesParquet(), NumpyNpy(), SklearnSkops(), Json())
}
_OPT_IN: dict[str, Serializer] = {"pickle": Pickle()}


def serializers() -> Mapping[str, Serializer]:
    """The serializers in the order they are tried (a read-only view)."""
    from types import MappingProxyType

    return MappingProxyType(_SERIALIZERS)


def serializer_for(obj: Any, *, allow_pickle: bool = False) -> Serializer:
    """The first serializer that can store ``obj``.

    Raises:
        ArtifactError: nothing can store it (and pickle was not allowed).
    """
    for s in _SERIALIZERS.values():
        if s.can_handle(obj):
            return s
    if allow_pickle:
        return _OPT_IN["pickle"]
    tp = f"{type(obj).__module__}.{type(obj).__qualname__}"
    raise ArtifactError(
        f"no serializer stores a value of type {tp}. Return a DataFrame, Series, ndarray, "
        "scikit-learn estimator or JSON-able value, or set registry.allow_pickle=true to store "
        "it with pickle (only for registries whose writers you trust)."
    )


def get_serializer(name: str) -> Serializer:
    """The serializer named ``name`` (as recorded in an artifact)."""
    if name in _SERIALIZERS:
        return _SERIALIZERS[name]
    if name in _OPT_IN:
        return _OPT_IN[name]
    raise ArtifactError(f"unknown artifact format {name!r}; is this mlops older than the registry?")
