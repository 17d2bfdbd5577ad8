"""Serializers: how each type of step output becomes bytes in the registry, and back.

One class per format, each with three primitives (fsspec's shape: few methods, the docstring is
the contract):

* ``can_handle(obj) -> bool`` -- whether this format stores ``obj`` faithfully;
* ``dump(obj, f)`` -- write ``obj`` to the binary file ``f``;
* ``load(f)`` -- read it back from the binary file ``f``.

The table is consulted in order; the first serializer that can handle a value stores it. Formats
never execute code on load except the opt-in ``pickle`` one (see the README's trust boundary):
scikit-learn estimators go through skops, whose loader refuses types it was not told to trust.

Type checks go by module name first, so that checking a value never imports pandas, numpy or
scikit-learn for a step that does not use them.
"""

from __future__ import annotations

import functools
import io
import json
import re
import sys
import threading
import types
from collections.abc import Mapping
from typing import IO, Any

from .errors import ArtifactError

__all__ = [
    "FORMAT_VERSION",
    "Serializer",
    "get_serializer",
    "serializer_for",
    "serializers",
]

#: Part of every cache key: bump it when a format's bytes change, so old entries are not reused.
FORMAT_VERSION = 1


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
        f.write(_skops_io().dumps(obj))

    def load(self, f: IO[bytes]) -> Any:
        return self.loads(f.read())

    def loads(self, data: bytes | memoryview) -> Any:
        sio = _skops_io()
        raw = bytes(data)
        try:
            untrusted = sio.get_untrusted_types(data=raw)
        except Exception as e:  # not a skops file, or one skops cannot even describe
            raise ArtifactError(f"the model artifact is not a readable skops file: {e}") from e
        refused = sorted(t for t in untrusted if not trusted_skops_type(t))
        if refused:
            raise ArtifactError(
                "the model artifact names types that mlops does not trust: "
                + ", ".join(refused)
                + ". It was not loaded and nothing in it ran: mlops loads only scikit-learn "
                "estimators, NumPy and SciPy types and plain builtin values from skops files. "
                "A registry holding this was written by someone else's code or was tampered "
                "with; check where it came from."
            )
        return sio.loads(raw, trusted=untrusted)


# -- importing skops.io without importing every estimator ------------------------------------------

_SKOPS_LOCK = threading.Lock()
_SKOPS: Any = None


def _skops_io() -> Any:
    """``skops.io``, imported without building skops's list of every scikit-learn estimator.

    Importing ``skops.io`` calls ``sklearn.utils.all_estimators()`` to make its default trusted
    list, which imports every estimator module of scikit-learn: about 0.3 s of the 0.45 s the
    import costs, in every process that stores or loads a model. mlops does not need that list:
    it decides what to trust itself (:func:`trusted_skops_type`) and passes those names to
    ``loads``. skops has no public way to skip it (up to 0.16 at least), so when mlops is the
    first to import ``skops.io`` in a process, ``all_estimators`` answers an empty list for the
    duration of that import. That only makes skops's defaults stricter: estimators are then
    reported by ``get_untrusted_types`` and vetted by mlops.

    Code of the user that calls skops itself in the same process must not see the difference:
    its first call to ``skops.io.load``, ``loads``, ``get_untrusted_types`` or ``visualize``
    fills skops's list in (once, then those functions are skops's own again). mlops keeps
    skops's own functions and never fills it. If ``skops.io`` was imported before (by user
    code), or a skops version builds its list differently, this does nothing.
    """
    global _SKOPS
    if _SKOPS is not None:
        return _SKOPS
    with _SKOPS_LOCK:
        if _SKOPS is None:
            _SKOPS = _import_skops_io()
    return _SKOPS


def _import_skops_io() -> Any:
    if "skops.io" in sys.modules:
        import skops.io

        return skops.io
    import sklearn.utils

    real = sklearn.utils.all_estimators
    sklearn.utils.all_estimators = lambda *args, **kwargs: []
    try:
        import skops.io
    finally:
        sklearn.utils.all_estimators = real
    trusted_types = sys.modules.get("skops.io._trusted_types")
    names = getattr(trusted_types, "SKLEARN_ESTIMATOR_TYPE_NAMES", None)
    if not isinstance(names, list) or names:
        return skops.io  # a skops that does not build its list this way: nothing was skipped
    # mlops's view: skops's functions, with the list left empty
    view = types.SimpleNamespace(
        dumps=skops.io.dumps, loads=skops.io.loads, get_untrusted_types=skops.io.get_untrusted_types
    )
    public = ("load", "loads", "get_untrusted_types", "visualize")
    originals = {name: getattr(skops.io, name) for name in public if hasattr(skops.io, name)}

    def fill_in() -> None:
        with _SKOPS_LOCK:
            if getattr(skops.io, "_mlops_filled", False):
                return
            from skops.io._utils import get_type_name

            names.extend(
                name
                for name in (get_type_name(cls) for _, cls in real())
                if name.startswith("sklearn.")
            )
            for name, function in originals.items():
                setattr(skops.io, name, function)
            skops.io._mlops_filled = True

    def wrap(function: Any) -> Any:
        @functools.wraps(function)
        def first_call(*args: Any, **kwargs: Any) -> Any:
            fill_in()
            return function(*args, **kwargs)

        return first_call

    for name, function in originals.items():
        setattr(skops.io, name, wrap(function))
    return view


# -- which types a skops file may name ------------------------------------------------------------

#: Builtin types a model's state is made of: scalars and containers, no callables.
SAFE_BUILTINS = frozenset(
    f"builtins.{t}"
    for t in (
        "bool", "int", "float", "complex", "str", "bytes", "bytearray",
        "list", "tuple", "dict", "set", "frozenset", "slice", "range",
    )
)  # fmt: skip

#: Other types and functions scikit-learn estimators hold, by their full name (as skops names
#: them): pure functions of arrays that an estimator keeps as a parameter, and a few types.
SAFE_NAMES = frozenset(
    {
        "collections.OrderedDict",
        "numpy.dtype",
        # FeatureAgglomeration(pooling_func=np.mean) and friends
        *(
            f"numpy.{f}"
            for f in (
                "mean", "median", "average", "sum", "prod", "max", "min", "amax", "amin",
                "std", "var", "ptp", "nanmean", "nanmedian", "nansum", "nanmax", "nanmin",
                "nanstd", "nanvar", "asarray",
            )
        ),
        # SplineTransformer's BSpline keeps SciPy's array-API alias of numpy.asarray
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
        "scipy.interpolate._bsplines.BSpline",
    }
)  # fmt: skip

#: Classes of scikit-learn and SciPy whose subclasses may be rebuilt: estimators and the
#: internal objects fitted estimators hold (trees, kernels, losses, distance metrics, ...).
#: Names that do not exist in the installed version are skipped.
SAFE_BASES = (
    "sklearn.base.BaseEstimator",
    "sklearn.gaussian_process.kernels.Kernel",
    "sklearn._loss.loss.BaseLoss",
    "sklearn._loss.link.BaseLink",
    "sklearn._loss.link.Interval",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors.KDTree",
    "sklearn.neighbors.BallTree",
    "sklearn.neighbors._kd_tree.BinaryTree64",
    "sklearn.neighbors._kd_tree.BinaryTree32",
    "sklearn.neighbors._ball_tree.BinaryTree64",
    "sklearn.neighbors._ball_tree.BinaryTree32",
    "sklearn.metrics.DistanceMetric",
    "sklearn.metrics._scorer._BaseScorer",
    "sklearn.metrics._scorer._PassthroughScorer",
    "sklearn.metrics._scorer._MultimetricScorer",
    "sklearn.model_selection.BaseCrossValidator",
    "sklearn.model_selection.BaseShuffleSplit",
    "sklearn.model_selection._split._CVIterableWrapper",
    "sklearn.neural_network._stochastic_optimizers.BaseOptimizer",
    "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.utils.Bunch",
    "scipy.sparse.spmatrix",
    "scipy.sparse.sparray",
)

#: Functions of scikit-learn an estimator may keep (a score function, a metric, the k-means
#: variant it ran): every public function of these modules, and the named private ones.
SAFE_FUNCTION_MODULES = ("sklearn.metrics", "sklearn.feature_selection")
SAFE_PRIVATE_FUNCTIONS = (
    "sklearn.cluster._kmeans._kmeans_single_lloyd",
    "sklearn.cluster._kmeans._kmeans_single_elkan",
)

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def trusted_skops_type(name: str) -> bool:
    """Whether a skops file may name ``name`` (a type or function, as skops names it).

    Trusted: the builtin scalars and containers of :data:`SAFE_BUILTINS`, the names of
    :data:`SAFE_NAMES`, classes of scikit-learn and SciPy that derive from one of
    :data:`SAFE_BASES`, and the functions of scikit-learn's metrics and feature selection.
    Nothing else: no builtin function (``eval``, ``exec``, ``getattr``, ``__import__``), no
    ``functools.partial`` or ``operator`` callers, no method of an object, no NumPy function
    outside the list (``numpy.load``), no module of the standard library (``os``,
    ``subprocess``).

    Only a name under ``sklearn.`` or ``scipy.`` is looked up (importing that module of the
    installed library, as loading the file would), to check what it names.

    Examples:
        >>> [trusted_skops_type(n) for n in ("builtins.int", "builtins.eval", "posix.system")]
        [True, False, False]
        >>> trusted_skops_type("sklearn.tree._tree.Tree")
        True
        >>> trusted_skops_type("sklearn.utils._testing.assert_run_python_script_without_output")
        False
    """
    if name in SAFE_BUILTINS or name in SAFE_NAMES:
        return True
    if not name.startswith(("sklearn.", "scipy.")) or not _DOTTED.match(name):
        return False
    obj = _resolve(name)
    if obj is None:
        return False
    if isinstance(obj, type):
        return issubclass(obj, _safe_bases())
    return name in SAFE_PRIVATE_FUNCTIONS or any(obj is f for f in _safe_functions())


def _resolve(name: str) -> Any:
    """The object ``module.attr`` names, if it is defined there (not merely imported there)."""
    import importlib

    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except Exception:  # no such module or attribute in the installed version
        return None
    if getattr(obj, "__module__", None) != module or getattr(obj, "__name__", None) != attr:
        return None
    return obj


@functools.cache
def _safe_bases() -> tuple[type, ...]:
    import importlib

    bases = []
    for name in SAFE_BASES:
        module, _, attr = name.rpartition(".")
        try:
            base = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            continue
        if isinstance(base, type):
            bases.append(base)
    return tuple(bases)


@functools.cache
def _safe_functions() -> tuple[Any, ...]:
    import importlib
    import inspect

    found = []
    for module_name in SAFE_FUNCTION_MODULES:
        module = importlib.import_module(module_name)
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr, None)
            if inspect.isfunction(obj):
                found.append(obj)
    return tuple(found)


class Json(Serializer):
    """JSON-able values: None, bool, int, float, str, and lists and dicts of them."""

    name = "json"

    def can_handle(self, obj: Any) -> bool:
        return _jsonable(obj)

    def dump(self, obj: Any, f: IO[bytes]) -> None:
        f.write(json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True).encode())

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

    def load(self, f: IO[bytes]) -> Any:
        import joblib

        return joblib.load(f)


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
