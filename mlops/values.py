"""Values handed to consumers: one DataFrame per output and process, shared copy-on-write.

Every consumer of an output must get a value equal to what loading the output's stored bytes
gives, and no consumer may change what another sees. Decoding the bytes once per consumer keeps
that promise at the price of parsing a large frame again and again, so for DataFrames and Series
one value per output and process is kept -- either the producer's own frame, when the stored
schema proves a load gives it back (:func:`loads_back`), or the frame decoded by the first
consumer -- and each consumer gets a copy of it (:meth:`Shared.hand`):

* the copy is shallow, and pandas' copy-on-write (always on from pandas 3) copies a column the
  first time any holder writes to it, so an assignment, ``iloc``/``loc``/``iat`` set or
  ``inplace=True`` operation changes the writer's frame only;
* while the value is shared, its NumPy arrays (and the arrays they view) are read-only, so the
  ways around copy-on-write -- ``arr.flags.writeable = True`` on ``to_numpy()``, a write through
  ``Series.array`` -- raise instead of changing a sibling's input. They are made writable again
  when the value is no longer shared (the run dropped the producer's result), so a frame the
  producer also keeps elsewhere is left as it was;
* only frames whose columns hold immutable elements are shared: numbers, booleans, dates,
  durations, strings. A column of Python objects (lists, dicts) could be changed element by
  element, so such frames are decoded for each consumer.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from typing import Any

__all__ = ["TAIL_BYTES", "Shared", "is_frame", "loads_back", "share", "shareable"]

#: bytes kept from the end of a written Parquet payload: its footer, whose schema says what a
#: load gives (a larger footer means the frame is decoded instead)
TAIL_BYTES = 1 << 20

#: nullable (masked) dtypes whose Parquet round trip keeps every value; ``Float32``/``Float64``
#: are not among them: a NaN that is not missing comes back missing
_MASKED = frozenset(
    {"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "boolean"}
)
_NUMPY_KINDS = "biufMm"  # bool, int, uint, float, datetime64, timedelta64


def _is_pandas(obj: Any) -> bool:
    return type(obj).__module__.split(".", 1)[0] == "pandas"


def is_frame(obj: Any) -> bool:
    """True for a pandas DataFrame (checked without importing pandas)."""
    if not _is_pandas(obj):
        return False
    import pandas as pd

    return isinstance(obj, pd.DataFrame)


def _immutable_dtype(dtype: Any, *, exact: bool) -> bool:
    """True if the dtype's elements cannot be changed in place (and, with ``exact``, come back
    from Parquet unchanged)."""
    import numpy as np
    import pandas as pd

    if isinstance(dtype, np.dtype):
        return dtype.kind in _NUMPY_KINDS and dtype != np.float16
    if isinstance(dtype, (pd.StringDtype, pd.DatetimeTZDtype)):
        return True
    if str(dtype) in _MASKED:
        return True
    if exact:
        return False
    return str(dtype) in ("Float32", "Float64") or isinstance(dtype, pd.CategoricalDtype)


def _frame_parts_ok(obj: Any, *, exact: bool) -> bool:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        dtypes = list(obj.dtypes)
    elif isinstance(obj, pd.Series):
        dtypes = [obj.dtype]
    else:
        return False
    index = obj.index
    if isinstance(index, pd.MultiIndex):
        return False
    if not isinstance(index, pd.RangeIndex) and not _immutable_dtype(index.dtype, exact=exact):
        return False
    return all(_immutable_dtype(d, exact=exact) for d in dtypes)


def shareable(obj: Any) -> bool:
    """True if ``obj`` (a value decoded from stored bytes) can be shared copy-on-write: a pandas
    DataFrame or Series whose columns and index hold immutable elements."""
    return _is_pandas(obj) and _frame_parts_ok(obj, exact=False)


def loads_back(obj: Any, fmt: str, tail: bytes | memoryview | None) -> bool:
    """True if loading the Parquet payload whose last bytes are ``tail`` gives a frame equal to
    ``obj``, the DataFrame that was written.

    The stored schema (in the footer) gives the column names, dtypes, index and ``attrs`` that
    a load builds; they must be exactly ``obj``'s. Values then come back unchanged because every
    column's dtype is one whose round trip is exact (numbers, booleans, dates, durations,
    strings, nullable integers and booleans; a float NaN comes back NaN). Anything else --
    object columns, nullable floats, a MultiIndex, a footer not in ``tail`` -- says False, and
    consumers decode the stored bytes instead.
    """
    if fmt != "parquet" or tail is None or not _is_pandas(obj):
        return False
    import pandas as pd

    if not isinstance(obj, pd.DataFrame) or not _frame_parts_ok(obj, exact=True):
        return False
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(pa.BufferReader(tail))
        loaded = schema.empty_table().to_pandas()
        meta = schema.pandas_metadata or {}
    except Exception:  # the footer is not all in the tail, or pyarrow cannot read it back
        return False
    try:
        same = (
            list(obj.dtypes) == list(loaded.dtypes)
            and type(obj.columns) is type(loaded.columns)
            and obj.columns.dtype == loaded.columns.dtype
            and obj.columns.equals(loaded.columns)
            and list(obj.columns.names) == list(loaded.columns.names)
            and obj.attrs == loaded.attrs
            and obj.flags.allows_duplicate_labels == loaded.flags.allows_duplicate_labels
        )
    except Exception:  # attrs that cannot be compared
        return False
    return bool(same) and _index_loads_back(obj, loaded, meta)


def _index_loads_back(obj: Any, loaded: Any, meta: dict[str, Any]) -> bool:
    import pandas as pd

    index = obj.index
    described = meta.get("index_columns", [])
    if isinstance(index, pd.RangeIndex):
        # stored as a description, rebuilt by the load when its length matches the rows
        if len(described) != 1 or not isinstance(described[0], dict):
            return False
        d = described[0]
        return bool(
            d.get("kind") == "range"
            and (d.get("start"), d.get("stop"), d.get("step"))
            == (index.start, index.stop, index.step)
            and type(d.get("name")) is type(index.name)
            and d.get("name") == index.name
        )
    return bool(
        type(index) is type(loaded.index)
        and index.dtype == loaded.index.dtype
        and list(index.names) == list(loaded.index.names)
        # a date index's frequency is not stored: a load gives it none
        and getattr(index, "freq", None) is None
    )


class Shared:
    """One frame that every consumer in this process gets a copy-on-write copy of.

    Holds its own shallow copy of the frame, so that whoever else holds the frame (the producer)
    writing to it copies first too. The frame's arrays are read-only while this object lives.
    """

    def __init__(self, frame: Any) -> None:
        if not frame._mgr.is_consolidated():
            # one block per dtype, as a load builds it: whether ``df.values`` is a (read-only)
            # view or a (writable) copy depends on it, and must not depend on the path
            frame = frame._consolidate()
        self._origin = frame.copy(deep=False)
        self._lock = threading.Lock()
        sealed = _seal(self._origin)
        weakref.finalize(self, _unseal, sealed)

    def hand(self) -> Any:
        """A copy for one consumer: equal to the frame, sharing its memory until written."""
        with self._lock:  # pandas' reference tracking is not made for concurrent copies
            return self._origin.copy(deep=False)


def share(frame: Any) -> Shared | None:
    """A :class:`Shared` for ``frame``, or None if its arrays cannot be found (a pandas whose
    internals differ): then consumers decode their own copy."""
    try:
        return Shared(frame)
    except AttributeError:
        return None


#: arrays made read-only by :func:`_seal`, by id, with how many shared values hold them so
_SEALS: dict[int, int] = {}
_SEALS_LOCK = threading.Lock()


def _arrays(frame: Any) -> list[Any]:
    """The NumPy arrays holding ``frame``'s values and index, each followed by its bases."""
    import numpy as np
    import pandas as pd

    holders = list(frame._mgr.arrays)  # pandas internals: checked by tests
    if not isinstance(frame.index, pd.RangeIndex):  # (whose values would be made, not found)
        holders.append(frame.index._values)
    out: list[Any] = []
    for held in holders:
        for arr in (held, *(getattr(held, a, None) for a in ("_ndarray", "_data", "_mask"))):
            while isinstance(arr, np.ndarray):
                out.append(arr)
                arr = arr.base
    return out


def _seal(frame: Any) -> list[Any]:
    """Make ``frame``'s arrays read-only; returns those this call sealed (to unseal later)."""
    sealed = []
    with _SEALS_LOCK:
        for arr in _arrays(frame):
            key = id(arr)
            if key in _SEALS:
                _SEALS[key] += 1
            elif arr.flags.writeable:
                arr.flags.writeable = False
                _SEALS[key] = 1
            else:
                continue  # read-only before us (a memory map, an Arrow buffer): left so
            sealed.append(arr)
    return sealed


def _unseal(sealed: list[Any]) -> None:
    with _SEALS_LOCK:
        # bases first: a view can be made writable only once the array it views is
        for arr in reversed(sealed):
            key = id(arr)
            _SEALS[key] -= 1
            if _SEALS[key] == 0:
                del _SEALS[key]
                # (a view whose base another value still seals stays read-only)
                with contextlib.suppress(ValueError):
                    arr.flags.writeable = True
