"""What a skops file may name, and importing skops.io cheaply: the trust policy of model files.

skops rebuilds an object from a description of its types; any type it is told to trust can be
built, and a callable among them can be called (while loading, or when the model predicts).
:func:`trusted_skops_type` is the list mlops trusts: exactly the types it saves. :func:`skops_io`
imports ``skops.io`` without the list of every scikit-learn estimator skops builds for its own
defaults, which mlops does not use. Used by :class:`mlops.serializers.SklearnSkops`.
"""

from __future__ import annotations

import functools
import re
import sys
import threading
import types
from typing import Any

__all__ = ["SAFE_BASES", "SAFE_BUILTINS", "SAFE_NAMES", "skops_io", "trusted_skops_type"]

# -- importing skops.io without importing every estimator ------------------------------------------

_SKOPS_LOCK = threading.Lock()
_SKOPS: Any = None


def skops_io() -> Any:
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
