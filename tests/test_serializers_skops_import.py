"""mlops imports skops.io without importing every scikit-learn estimator, and nobody else notices.

Each test runs in a fresh interpreter (the import happens once per process).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("skops.io")

# an estimator module that neither skops nor the iris model needs: imported only by the list of
# every estimator
UNRELATED = "sklearn.semi_supervised"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    _python(
        f"""
        import skops.io as sio
        from sklearn.datasets import load_iris
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        X, y = load_iris(return_X_y=True)
        open({str(folder / "iris.skops")!r}, "wb").write(
            sio.dumps(LogisticRegression(max_iter=500).fit(X, y)))
        open({str(folder / "forest.skops")!r}, "wb").write(
            sio.dumps(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)))
        """
    )
    return folder


def _python(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_loading_the_iris_model_imports_no_unrelated_estimator(models: Path) -> None:
    out = _python(
        f"""
        import sys
        from mlops.serializers import get_serializer
        model = get_serializer("skops").loads(open({str(models / "iris.skops")!r}, "rb").read())
        print(type(model).__name__, {UNRELATED!r} in sys.modules)
        """
    )
    assert out.split() == ["LogisticRegression", "False"]
    # the control: skops's own import does import it (so the assertion above can fail)
    assert _python(f"import sys, skops.io; print({UNRELATED!r} in sys.modules)").strip() == "True"


def test_user_code_calling_skops_sees_its_defaults(models: Path) -> None:
    """After mlops loaded a model, skops called directly trusts its usual estimators."""
    out = _python(
        f"""
        from mlops.serializers import get_serializer
        skops_format = get_serializer("skops")
        iris = open({str(models / "iris.skops")!r}, "rb").read()
        forest = open({str(models / "forest.skops")!r}, "rb").read()
        skops_format.loads(iris)
        import skops.io as sio
        from skops.io import get_untrusted_types, loads
        print(get_untrusted_types(data=iris), get_untrusted_types(data=forest))
        print(type(loads(iris)).__name__, type(sio.loads(iris)).__name__)
        print(type(skops_format.loads(forest)).__name__)  # mlops still loads after the fill
        """
    )
    lines = out.splitlines()
    assert lines[0] == "[] ['sklearn.tree._tree.Tree']"
    assert lines[1:] == ["LogisticRegression LogisticRegression", "RandomForestClassifier"]


def test_skops_imported_first_by_user_code(models: Path) -> None:
    out = _python(
        f"""
        import skops.io as sio
        from mlops.serializers import get_serializer
        print(type(get_serializer("skops").loads(
            open({str(models / "forest.skops")!r}, "rb").read())).__name__)
        print(sio.get_untrusted_types(data=open({str(models / "iris.skops")!r}, "rb").read()))
        """
    )
    assert out.splitlines() == ["RandomForestClassifier", "[]"]


def test_first_loads_from_many_threads_at_once(models: Path) -> None:
    out = _python(
        f"""
        from concurrent.futures import ThreadPoolExecutor
        from mlops.serializers import get_serializer
        paths = [{str(models / "iris.skops")!r}, {str(models / "forest.skops")!r}] * 8
        def load(path):
            return type(get_serializer("skops").loads(open(path, "rb").read())).__name__
        with ThreadPoolExecutor(16) as pool:
            print(sorted(set(pool.map(load, paths))))
        """
    )
    assert out.strip() == "['LogisticRegression', 'RandomForestClassifier']"


def test_a_planted_payload_is_refused_before_and_after_the_fill(tmp_path: Path) -> None:
    """The skipped list only ever makes skops stricter; mlops's own check decides."""
    from test_security_skops import call_payload

    marker = tmp_path / "marker"
    payload = tmp_path / "payload.skops"
    payload.write_bytes(call_payload("builtins.exec", f"open({str(marker)!r}, 'w').close()"))
    out = _python(
        f"""
        from mlops.serializers import get_serializer
        from mlops.errors import ArtifactError
        data = open({str(payload)!r}, "rb").read()
        for _ in range(2):
            try:
                get_serializer("skops").loads(data)
            except ArtifactError as e:
                print("refused" if "builtins.exec" in str(e) else e)
            import skops.io
            skops.io.get_untrusted_types(data=data)  # fills skops's list in
        """
    )
    assert out.split() == ["refused", "refused"]
    assert not marker.exists()
