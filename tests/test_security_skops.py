"""Nothing loaded from the registry runs code: planted skops payloads are refused, by name.

A payload is what a registry writer who means harm stores: a skops file whose description names
a callable (``builtins.exec``, ``os.system``, ``subprocess.Popen``, ``functools.partial``, an
``operator`` caller, a NumPy function that touches files) where a model's type should be. Each
one here is shown to be live first (loading it with every type trusted, as mlops did before,
creates a marker file), then loaded through mlops, which must refuse it with one error naming
the type, and the marker must not exist.
"""

from __future__ import annotations

import functools
import io
import json
import operator
import os
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import run_mlops

from mlops.errors import ArtifactError
from mlops.serializers import get_serializer, trusted_skops_type

sio = pytest.importorskip("skops.io")


def _schema(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return json.loads(z.read("schema.json"))


def _with_schema(data: bytes, schema: dict[str, Any]) -> bytes:
    """``data`` (a skops zip) with its schema.json replaced by ``schema``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = json.dumps(schema) if item.filename == "schema.json" else src.read(item)
            dst.writestr(item, body)
    return out.getvalue()


def call_payload(target: str, *args: Any) -> bytes:
    """A skops file that, if trusted, calls ``target(*args)`` while it is being loaded.

    Built as an attacker would: ``skops.io.dumps`` of the arguments, then schema.json edited so
    that the root is a node that rebuilds an object by calling its type with them.
    """
    data = sio.dumps(tuple(args))
    inner = _schema(data)
    module, _, name = target.rpartition(".")
    root = {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {k: v for k, v in inner.items() if k not in ("protocol", "_skops_version")},
        "protocol": inner["protocol"],
        "_skops_version": inner["_skops_version"],
    }
    return _with_schema(data, root)


def object_payload(target: str) -> bytes:
    """A real LogisticRegression dump whose root type is renamed to ``target``."""
    from sklearn.linear_model import LogisticRegression

    data = sio.dumps(LogisticRegression())
    schema = _schema(data)
    schema["__module__"], _, schema["__class__"] = target.rpartition(".")
    return _with_schema(data, schema)


def transformer_payload(func: Any, **kw: Any) -> bytes:
    """A FunctionTransformer that calls ``func`` when it transforms: dumped as skops does."""
    from sklearn.preprocessing import FunctionTransformer

    return sio.dumps(FunctionTransformer(func=func, validate=False, **kw))


def _touch_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


# name -> builds (payload, how to trigger it once loaded); the trigger gets the loaded object
Trigger = Callable[[Any], Any]
CALL_PAYLOADS: dict[str, Callable[[Path], tuple[bytes, Trigger | None]]] = {
    "builtins.exec": lambda m: (call_payload("builtins.exec", _touch_code(m)), None),
    "builtins.eval": lambda m: (call_payload("builtins.eval", _touch_code(m)), None),
    "os.system": lambda m: (call_payload("os.system", f"touch {m}"), None),
    "posix.system": lambda m: (call_payload("posix.system", f"touch {m}"), None),
    "subprocess.Popen": lambda m: (call_payload("subprocess.Popen", ["touch", str(m)]), None),
    "subprocess.call": lambda m: (call_payload("subprocess.call", ["touch", str(m)]), None),
    "builtins.__import__": lambda m: (call_payload("builtins.__import__", "os"), None),
    "builtins.getattr": lambda m: (call_payload("builtins.getattr", "x", "upper"), None),
    "builtins.open": lambda m: (call_payload("builtins.open", str(m), "w"), None),
    "numpy.save": lambda m: (call_payload("numpy.save", str(m), [1, 2]), None),
    "numpy.load": lambda m: (call_payload("numpy.load", str(m)), None),
    # a scikit-learn function that runs Python source in a subprocess: not every sklearn name
    # is safe just because it is in sklearn
    "sklearn.utils._testing.assert_run_python_script_without_output": lambda m: (
        call_payload(
            "sklearn.utils._testing.assert_run_python_script_without_output", _touch_code(m)
        ),
        None,
    ),
}

TRANSFORM_PAYLOADS: dict[str, Callable[[Path], tuple[bytes, Trigger]]] = {
    "builtins.exec": lambda m: (transformer_payload(exec), lambda t: t.transform(_touch_code(m))),
    "builtins.eval": lambda m: (transformer_payload(eval), lambda t: t.transform(_touch_code(m))),
    "posix.system": lambda m: (transformer_payload(os.system), lambda t: t.transform(f"touch {m}")),
    "subprocess.Popen": lambda m: (
        transformer_payload(subprocess.Popen),
        lambda t: t.transform(["touch", str(m)]).wait(),
    ),
    "functools.partial": lambda m: (
        transformer_payload(functools.partial(os.system, f"touch {m}")),
        lambda t: t.func(),
    ),
    "operator.methodcaller": lambda m: (
        transformer_payload(operator.methodcaller("system", f"touch {m}")),
        lambda t: t.transform(os),
    ),
    "operator.attrgetter": lambda m: (
        transformer_payload(operator.attrgetter("system")),
        lambda t: t.transform(os)(f"touch {m}"),
    ),
    "numpy.save": lambda m: (
        transformer_payload(__import__("numpy").save, kw_args={"arr": [1]}),
        lambda t: t.transform(str(m)),
    ),
}


def _refused(data: bytes, name: str) -> ArtifactError:
    with pytest.raises(ArtifactError) as info:
        get_serializer("skops").loads(data)
    message = str(info.value)
    assert "does not trust" in message and name in message, message
    assert message.count("\n") == 0
    return info.value


def _live(data: bytes, trigger: Trigger | None) -> None:
    """Load the way mlops used to (every type skops reports trusted), then trigger it."""
    try:
        obj = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
        if trigger is not None:
            trigger(obj)
        if isinstance(obj, subprocess.Popen):
            obj.wait()
        elif hasattr(obj, "close"):
            obj.close()
    except Exception:
        pass  # e.g. a call's return value that is not an object skops can finish building


@pytest.mark.parametrize("name", sorted(CALL_PAYLOADS))
def test_payload_called_while_loading_is_refused(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker.npy"  # numpy.save adds no suffix to a .npy name
    data, _ = CALL_PAYLOADS[name](marker)
    _refused(data, name)
    assert not marker.exists()
    if name in ("builtins.__import__", "builtins.getattr", "numpy.load"):
        return  # these make no file; refusing them is the point
    _live(data, None)
    assert marker.exists(), f"the {name} payload is not live: this test could not fail"


@pytest.mark.parametrize("name", sorted(TRANSFORM_PAYLOADS))
def test_payload_called_when_predicting_is_refused(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "marker.npy"  # numpy.save adds no suffix to a .npy name
    data, trigger = TRANSFORM_PAYLOADS[name](marker)
    _refused(data, name)
    assert not marker.exists()
    _live(data, trigger)
    assert marker.exists(), f"the {name} payload is not live: this test could not fail"


@pytest.mark.parametrize(
    "target",
    [
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "builtins.__import__",
        "builtins.type",
        "builtins.object",
        "functools.partial",
        "operator.attrgetter",
        "operator.methodcaller",
        "numpy.load",
        "os.system",
        "subprocess.Popen",
        "sklearn.utils._testing.TempMemmap",
        "sklearn.base.clone",
    ],
)
def test_renamed_model_type_is_refused(target: str) -> None:
    """A real model whose type in schema.json was edited to name something else."""
    _refused(object_payload(target), target)


@pytest.mark.parametrize(
    "name",
    [
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.getattr",
        "builtins.setattr",
        "builtins.__import__",
        "builtins.open",
        "builtins.type",
        "builtins.object",
        "builtins.map",
        "builtins.filter",
        "builtins.breakpoint",
        "builtins.input",
        "functools.partial",
        "functools.reduce",
        "operator.attrgetter",
        "operator.itemgetter",
        "operator.methodcaller",
        "numpy.load",
        "numpy.save",
        "numpy.fromfile",
        "numpy.lib.npyio.load",
        "numpy.ctypeslib.load_library",
        "os.system",
        "posix.system",
        "subprocess.Popen",
        "sklearn.utils._testing.assert_run_python_script_without_output",
        "sklearn.datasets.fetch_openml",
        "sklearn.datasets.dump_svmlight_file",
        "sklearn.base.clone",
        "sklearn.linear_model._logistic.LogisticRegression.fit",  # a method
        "sklearn.linear_model._logistic.os",  # a module imported by a sklearn module
        "sklearn.utils.validation.np",
        "scipy.io.loadmat",
        "scipy.io.savemat",
        "sklearn..base.BaseEstimator",
        "sklearn.base.BaseEstimator; import os",
        "collections.defaultdict",
        "pickle.loads",
        "joblib.load",
    ],
)
def test_untrusted_names(name: str) -> None:
    assert not trusted_skops_type(name)


@pytest.mark.parametrize(
    "name",
    [
        "builtins.int",
        "builtins.str",
        "builtins.dict",
        "builtins.tuple",
        "numpy.dtype",
        "numpy.mean",
        "sklearn.tree._tree.Tree",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
        "sklearn.gaussian_process.kernels.RBF",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.metrics._classification.accuracy_score",
        "scipy.sparse._csr.csr_matrix",
    ],
)
def test_trusted_names(name: str) -> None:
    assert trusted_skops_type(name)


# -- what mlops saves still loads ---------------------------------------------------------------


def _estimators() -> list[tuple[str, Any]]:
    """Every scikit-learn estimator that can be made with its defaults, plus meta-estimators."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import StackingClassifier, VotingClassifier
    from sklearn.feature_selection import SelectKBest, mutual_info_classif
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.tree import DecisionTreeClassifier
    from sklearn.utils import all_estimators

    out: list[tuple[str, Any]] = []
    for name, cls in all_estimators():
        try:
            out.append((name, cls()))
        except TypeError:
            continue  # needs arguments: the meta-estimators below cover those
    out += [
        ("Pipeline", Pipeline([("s", StandardScaler()), ("m", LogisticRegression())])),
        ("GridSearchCV", GridSearchCV(DecisionTreeClassifier(), {"max_depth": [1, 2]}, cv=2)),
        (
            "GridSearchCV-scoring",
            GridSearchCV(LogisticRegression(), {"C": [1.0]}, scoring="f1_macro", cv=2),
        ),
        (
            "StackingClassifier",
            StackingClassifier([("t", DecisionTreeClassifier()), ("l", LogisticRegression())]),
        ),
        ("VotingClassifier", VotingClassifier([("t", DecisionTreeClassifier())])),
        ("ColumnTransformer", ColumnTransformer([("s", StandardScaler(), [0, 1])])),
        ("FeatureUnion", FeatureUnion([("s", StandardScaler())])),
        ("SelectKBest-mi", SelectKBest(mutual_info_classif, k=2)),
        ("FunctionTransformer-log1p", FunctionTransformer(func=__import__("numpy").log1p)),
    ]
    return out


def test_every_default_estimator_round_trips() -> None:
    """A broad generated sample: each estimator fitted on iris loads back and predicts alike."""
    import warnings

    import numpy as np
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    ser = get_serializer("skops")
    checked, failures = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, est in _estimators():
            try:
                try:
                    est.fit(X, y)
                except Exception:
                    est.fit(X)
                buf = io.BytesIO()
                ser.dump(est, buf)
            except ArtifactError as e:  # mlops refused to store it: a type it would not load
                failures.append(f"{name}: {e}")
                continue
            except Exception:
                continue  # not fittable on iris with defaults, or not storable by skops
            try:
                back = ser.loads(buf.getvalue())
            except Exception as e:
                failures.append(f"{name}: {e}")
                continue
            for method in ("predict", "transform"):
                if hasattr(est, method) and hasattr(back, method):
                    try:
                        expected = getattr(est, method)(X)
                    except Exception:
                        continue
                    got = getattr(back, method)(X)
                    if hasattr(expected, "toarray"):
                        expected, got = expected.toarray(), got.toarray()
                    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected), name)
            checked.append(name)
    assert not failures, failures
    assert len(checked) > 150, checked


# -- through the registry --------------------------------------------------------------------------

PLANT_STEPS = '''
"""A writer who means harm: its model bytes are a payload (mlops's skops format is replaced)."""
from typing import Annotated, Tuple

from sklearn.linear_model import LogisticRegression

from mlops import get_step_context, step

PAYLOAD = bytes.fromhex(open("payload.hex").read())


@step
def train(seed: int = 0) -> Tuple[
    Annotated[LogisticRegression, "trained_model"], Annotated[float, "accuracy"]
]:
    from mlops.serializers import SklearnSkops

    SklearnSkops.dump = lambda self, obj, f: f.write(PAYLOAD)
    return LogisticRegression(), 1.0


@step(enable_cache=False)
def promote(accuracy: float) -> Annotated[str, "promotion"]:
    get_step_context().model_version.set_stage("production", force=True)
    return "promoted"


@step
def evaluate(model: LogisticRegression) -> Annotated[str, "kind"]:
    return type(model).__name__
'''

PLANT = """\
# @package _global_
pipeline:
  name: plant
model:
  name: iris_classifier
  version: null
steps:
  train:
    _target_: plant_steps.train
  promote:
    _target_: plant_steps.promote
    accuracy: ${step:train.accuracy}
"""

# the same train step (so a cache hit on the planted output), then a step that loads it
REUSE = """\
# @package _global_
pipeline:
  name: reuse
steps:
  train:
    _target_: plant_steps.train
  evaluate:
    _target_: plant_steps.evaluate
    model: ${step:train.trained_model}
"""


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A registry whose production iris_classifier runs ``exec`` when loaded (mlops 0.1 did)."""
    folder = tmp_path_factory.mktemp("plant")
    marker = folder / "PWNED"
    (folder / "conf" / "pipeline").mkdir(parents=True)
    (folder / "conf" / "pipeline" / "plant.yaml").write_text(PLANT)
    (folder / "conf" / "pipeline" / "reuse.yaml").write_text(REUSE)
    (folder / "plant_steps.py").write_text(PLANT_STEPS)
    (folder / "payload.hex").write_text(call_payload("builtins.exec", _touch_code(marker)).hex())
    registry = folder / "registry"
    run_mlops("+pipeline=plant", f"registry.uri={registry}", cwd=folder, check=True)
    assert not marker.exists()
    return folder, str(registry), marker


def test_do_predictions_refuses_a_planted_model(planted: tuple[Path, str, Path]) -> None:
    folder, registry, marker = planted
    result = run_mlops("+pipeline=do_predictions", f"registry.uri={registry}", cwd=folder)
    assert result.returncode == 1, result.output
    assert "builtins.exec" in result.output and "does not trust" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()


def test_get_model_artifact_refuses_a_planted_model(planted: tuple[Path, str, Path]) -> None:
    from mlops import Registry

    _, registry, marker = planted
    version = Registry(registry).get_model_version("iris_classifier", "production")
    with pytest.raises(ArtifactError, match=r"does not trust: builtins\.exec\."):
        version.get_model_artifact("trained_model")
    assert not marker.exists()


def test_run_load_refuses_a_planted_model(planted: tuple[Path, str, Path]) -> None:
    from mlops import Registry

    _, registry, marker = planted
    (run,) = [r for r in Registry(registry).list_runs() if r.pipeline == "plant"]
    with pytest.raises(ArtifactError, match=r"builtins\.exec"):
        run.load("train", "trained_model")
    assert not marker.exists()


def test_a_cached_planted_output_is_refused(planted: tuple[Path, str, Path]) -> None:
    """Another pipeline hits the planted step's cache entry and feeds its output to a step."""
    folder, registry, marker = planted
    result = run_mlops("+pipeline=reuse", f"registry.uri={registry}", cwd=folder)
    assert result.returncode == 1, result.output
    assert "builtins.exec" in result.output
    assert not marker.exists()


def test_the_iris_model_loads(tmp_path: Path) -> None:
    """The reference workflow's own model still loads, through the command line."""
    registry = tmp_path / "registry"
    run_mlops("+pipeline=train_and_promote", f"registry.uri={registry}", cwd=tmp_path, check=True)
    result = run_mlops("+pipeline=do_predictions", f"registry.uri={registry}", cwd=tmp_path)
    assert result.returncode == 0, result.output


def test_the_example_project_model_loads(tmp_path: Path) -> None:
    import shutil

    from conftest import ROOT

    project = tmp_path / "my_project"
    shutil.copytree(ROOT / "examples" / "my_project", project)
    registry = tmp_path / "registry"
    run_mlops("+pipeline=train_regressor", f"registry.uri={registry}", cwd=project, check=True)
    result = run_mlops("+pipeline=score_batch", f"registry.uri={registry}", cwd=project)
    assert result.returncode == 0, result.output


def test_a_planted_model_on_s3_is_refused(s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    """The same plant on an S3 registry (moto on loopback): do_predictions refuses it."""
    folder = tmp_path / "plant"
    (folder / "conf" / "pipeline").mkdir(parents=True)
    (folder / "conf" / "pipeline" / "plant.yaml").write_text(PLANT)
    (folder / "plant_steps.py").write_text(PLANT_STEPS)
    marker = tmp_path / "PWNED"
    (folder / "payload.hex").write_text(call_payload("builtins.exec", _touch_code(marker)).hex())
    overrides = s3_server.overrides(f"{s3_bucket}/reg")
    run_mlops("+pipeline=plant", *overrides, cwd=folder, check=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    result = run_mlops("+pipeline=do_predictions", *overrides, cwd=victim)
    assert result.returncode == 1, result.output
    assert "does not trust: builtins.exec." in result.output
    assert not marker.exists()


def test_a_model_that_could_not_be_loaded_is_not_stored(tmp_path: Path) -> None:
    """A model holding a function of the project fails where it is made, naming the function."""
    from sklearn.preprocessing import FunctionTransformer

    with pytest.raises(ArtifactError, match=r"it holds test_security_skops\._touch_code"):
        get_serializer("skops").dump(FunctionTransformer(func=_touch_code), io.BytesIO())
    data = io.BytesIO()
    get_serializer("skops").dump(FunctionTransformer(func=__import__("numpy").log1p), data)
    assert get_serializer("skops").loads(data.getvalue()).func is __import__("numpy").log1p
