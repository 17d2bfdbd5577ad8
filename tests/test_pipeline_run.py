"""Running Python pipelines: shared cache with YAML, overrides, the command line, sweeps, the
ZenML page's snippets as written, and ExternalArtifact keys."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, run_mlops

import mlops
from mlops import Registry

EXAMPLES = ROOT / "examples" / "python_pipelines"


@pytest.fixture(scope="module")
def iris_pipelines() -> Iterator[object]:
    """The example module iris_pipelines, imported from examples/python_pipelines."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import iris_pipelines  # type: ignore[import-not-found]

        yield iris_pipelines
    finally:
        sys.path.remove(str(EXAMPLES))
        sys.modules.pop("iris_pipelines", None)


def _compiled_keys(cfg_overrides: list[str], pipeline: object = None, name: str = "") -> list[str]:
    """Graph keys of a pipeline compiled against the registry named in the overrides."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from mlops.api import open_registry
    from mlops.compiler import compile_pipeline
    from mlops.pipelines import expand_pipeline, split_overrides
    from mlops.schema import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_module("mlops.conf", version_base=None):
        if pipeline is None:
            cfg = compose("mlops", overrides=[f"+pipeline={name}", *cfg_overrides])
        else:
            cfg = compose("mlops", overrides=split_overrides(cfg_overrides)[0])
            cfg = expand_pipeline(cfg, cfg_overrides, pipeline=pipeline)  # type: ignore[arg-type]
    return compile_pipeline(cfg, open_registry(cfg).models).keys


def test_python_and_yaml_share_the_cache(
    iris_pipelines: object, registry_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A YAML run, then the Python twin on the same registry: everything cacheable is a hit."""
    monkeypatch.chdir(tmp_path)
    o = [f"registry.uri={registry_uri}", "executor=sync"]
    first = mlops.run("train_and_promote", o, quiet=True)
    assert set(first.steps.values()) == {"ran"}
    second = iris_pipelines.train_and_promote.run(o, quiet=True)  # type: ignore[attr-defined]
    assert second.steps == {
        "load_data": "cached",
        "split": "cached",
        "train": "cached",
        "evaluate": "cached",
        "promote": "ran",  # @step(enable_cache=False)
    }
    yaml_pred = mlops.run("do_predictions", o, quiet=True)
    assert set(yaml_pred.steps.values()) == {"ran"}
    py_pred = mlops.run(iris_pipelines.do_predictions, o, quiet=True)  # type: ignore[attr-defined]
    assert set(py_pred.steps.values()) == {"cached"}
    assert list(py_pred.load("predict", "predictions")) == list(
        yaml_pred.load("predict", "predictions")
    )
    for name in ("train_and_promote", "do_predictions", "do_predictions_from_context"):
        python = getattr(iris_pipelines, name)
        assert _compiled_keys(o, python) == _compiled_keys(o, name=name), name


def test_overrides_reach_traced_steps(
    iris_pipelines: object, registry_uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command line's overrides act on the traced steps and model as on a YAML pipeline."""
    monkeypatch.chdir(tmp_path)
    o = [f"registry.uri={registry_uri}", "executor=sync"]
    train = iris_pipelines.train_and_promote  # type: ignore[attr-defined]
    train.run(o, quiet=True)  # v1, production
    run = train.run([*o, "steps.train.C=0.5", "steps.promote.threshold=1.01"], quiet=True)
    assert run.steps["train"] == "ran" and run.config["steps"]["train"]["C"] == 0.5
    assert Registry(registry_uri).get_model_version("iris_classifier", "production").number == 1
    predict = iris_pipelines.do_predictions  # type: ignore[attr-defined]
    run = predict.run([*o, "model.version=latest", "steps.load_inference_data.n_samples=7"])
    assert run.model is not None and int(run.model["number"]) == 2
    assert len(run.load("predict", "predictions")) == 7
    run = predict.run([*o, "~steps.load_inference_data.n_samples"], quiet=True)  # the default
    assert "n_samples" not in run.config["steps"]["load_inference_data"]
    assert len(run.load("predict", "predictions")) == 30
    with pytest.raises(mlops.MlopsError, match=r"steps\.predict\.batch_size: .*no parameter"):
        predict.run([*o, "steps.predict.batch_size=64"], quiet=True)
    with pytest.raises(mlops.MlopsError, match=r"model\.versio"):
        predict.run([*o, "model.versio=3"], quiet=True)


PROJECT_PIPELINES = """
from mlops import Model, get_pipeline_context, pipeline
from mlops.examples.iris.steps import load_inference_data, predict


@pipeline(model=Model(name="iris_classifier", version="production"))
def scoring():
    data = load_inference_data(n_samples=30, seed=0)
    predict(model=get_pipeline_context().model_version.get_model_artifact("trained_model"),
            data=data)
"""

PROJECT_YAML = """\
# @package _global_
pipeline:
  name: nightly_scoring
  _target_: my_pipelines.scoring
steps:
  load_inference_data:
    n_samples: 12
"""


@pytest.fixture
def project(workdir: Path) -> Path:
    (workdir / "conf" / "pipeline").mkdir(parents=True)
    (workdir / "conf" / "pipeline" / "nightly_scoring.yaml").write_text(PROJECT_YAML)
    (workdir / "conf" / "pipeline" / "py_train.yaml").write_text(
        "# @package _global_\npipeline:\n  name: py_train\n  _target_: iris_pipelines."
        "train_and_promote\n"
    )
    (workdir / "my_pipelines.py").write_text(PROJECT_PIPELINES)
    (workdir / "iris_pipelines.py").write_text((EXAMPLES / "iris_pipelines.py").read_text())
    return workdir


def test_command_line_runs_a_python_pipeline(project: Path) -> None:
    """+pipeline=NAME finds a Python pipeline through its YAML; YAML and overrides set params."""
    run_mlops("+pipeline=py_train", "executor=sync", cwd=project, check=True)
    out = run_mlops("+pipeline=nightly_scoring", cwd=project, check=True).output
    assert "mlops: nightly_scoring completed" in out
    assert "iris_classifier v1 used (production)" in out
    (run,) = Registry(str(project / ".mlops")).list_runs(pipeline="nightly_scoring")
    assert run.config["steps"]["load_inference_data"]["n_samples"] == 12  # from the YAML
    assert run.config["pipeline"]["_target_"] is None  # expanded: the steps are in the record
    assert len(run.load("predict", "predictions")) == 12
    run_mlops("+pipeline=nightly_scoring", "steps.load_inference_data.n_samples=5", cwd=project,
              check=True)  # fmt: skip
    last = Registry(str(project / ".mlops")).list_runs(pipeline="nightly_scoring")[-1]
    assert len(last.load("predict", "predictions")) == 5  # the override beats the YAML
    shown = subprocess.run(
        [sys.executable, "-m", "mlops", "pipeline", "show", "nightly_scoring"],
        cwd=project, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "pipeline nightly_scoring (Python, my_pipelines.scoring)" in shown
    assert "load_inference_data.inference_data -> predict.data" in shown
    assert "n_samples=12" in shown


def test_command_line_errors_for_python_pipelines(project: Path) -> None:
    """A YAML naming a missing pipeline, or a broken body, is one Error line."""
    (project / "conf" / "pipeline" / "broken.yaml").write_text(
        "# @package _global_\npipeline:\n  name: broken\n  _target_: my_pipelines.scorin\n"
    )
    res = run_mlops("+pipeline=broken", cwd=project)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        "Error: pipeline._target_: module 'my_pipelines' has no 'scorin'. Did you mean "
        "'scoring'? Its pipelines: scoring."
    )
    (project / "bad_pipes.py").write_text(
        "from mlops import pipeline\nfrom mlops.examples.iris.steps import predict\n\n"
        "@pipeline\ndef bad():\n    predict(data=1)\n"
    )
    (project / "conf" / "pipeline" / "bad.yaml").write_text(
        "# @package _global_\npipeline:\n  name: bad\n  _target_: bad_pipes.bad\n"
    )
    res = run_mlops("+pipeline=bad", cwd=project)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        "Error: pipeline 'bad', step 'predict', argument 'model': missing argument: predict() "
        "needs 'model'; pass it in the call, as a value or another step's output, e.g. "
        "predict(model=...)"
    )


def test_sweep_over_a_python_pipeline(project: Path) -> None:
    """-m sweeps a Python pipeline; each job's override reaches its traced step."""
    res = run_mlops("-m", "+pipeline=py_train", "steps.train.C=0.5,2.0", cwd=project, check=True)
    assert "2 of 2 jobs completed" in res.output
    runs = Registry(str(project / ".mlops")).list_runs(pipeline="py_train")
    assert sorted(r.config["steps"]["train"]["C"] for r in runs) == [0.5, 2.0]
    assert all(r.steps["load_data"] in ("ran", "cached") for r in runs)


# ---------------------------------------------------------------------------------------------
# the ZenML page's snippets, with only the imports changed (and a load_data step next to them)

LOAD_DATA = """
@step
def load_data() -> Annotated[pd.DataFrame, "inference_data"]:
    from sklearn.datasets import load_iris

    from mlops.examples.iris.steps import FEATURES

    return pd.DataFrame(load_iris().data[:20], columns=FEATURES)
"""

# "One way of achieving this is to fetch the model directly in your step" (imports: mlops)
SNIPPET_STEP = (
    """
from typing_extensions import Annotated
import pandas as pd
from mlops import step, get_step_context, pipeline, ModelVersion, ModelStages
"""
    + LOAD_DATA
    + """

# IMPORTANT: Cache needs to be disabled to avoid unexpected behavior
@step(enable_cache=False)
def predict(
    data: pd.DataFrame,
) -> Annotated[pd.Series, "predictions"]:
    # model_name and model_version derived from pipeline context
    model_version = get_step_context().model_version

    # Fetch the model directly from the model control plane
    model = model_version.get_model_artifact("trained_model")

    # Make predictions
    predictions = pd.Series(model.predict(data))
    return predictions


@pipeline(model_config=ModelVersion(name="iris_classifier", version=ModelStages.PRODUCTION))
def do_predictions():
    predict(data=load_data())


if __name__ == "__main__":
    do_predictions()
"""
)

# "one other way of achieving this would be to resolve the artifact at the pipeline level"
SNIPPET_PIPELINE = (
    """
from typing_extensions import Annotated
from mlops import get_pipeline_context, pipeline, ExternalArtifact, step
from mlops import ModelStages
from mlops import ModelVersion
import pandas as pd
from sklearn.base import ClassifierMixin
"""
    + LOAD_DATA
    + """

@step
def predict(
    model: ClassifierMixin,
    data: pd.DataFrame,
) -> Annotated[pd.Series, "predictions"]:
    predictions = pd.Series(model.predict(data))
    return predictions

@pipeline(
    model_config=ModelVersion(
        name="iris_classifier",
        # Using the production stage
        version=ModelStages.PRODUCTION,
    ),
)
def do_predictions():
    # model_name and model_version derived from pipeline context
    model_version = get_pipeline_context().model_version
    inference_data = load_data()
    predict(
        # Here, we load in the `trained_model` from a trainer step
        model=model_version.get_model_artifact("trained_model"),
        data=inference_data,
    )


if __name__ == "__main__":
    do_predictions()
"""
)


@pytest.mark.parametrize(
    "snippet", [SNIPPET_STEP, SNIPPET_PIPELINE], ids=["model-in-step", "model-in-pipeline"]
)
def test_zenml_snippets_run_as_written(workdir: Path, snippet: str) -> None:
    """`python snippet.py` runs the page's do_predictions against the production model."""
    run_mlops("+pipeline=train_and_promote", "executor=sync", cwd=workdir, check=True)
    (workdir / "snippet.py").write_text(textwrap.dedent(snippet))
    for attempt in ("ran", "cached"):
        proc = subprocess.run(
            [sys.executable, "snippet.py"], cwd=workdir, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "iris_classifier v1 used (production)" in proc.stdout
        (run,) = Registry(str(workdir / ".mlops")).list_runs(pipeline="do_predictions")[-1:]
        assert run.config["steps"]["predict"]["_target_"] == "snippet.predict"
        assert len(run.load("predict", "predictions")) == 20
        if attempt == "cached" and "get_pipeline_context" in snippet:
            assert set(run.steps.values()) == {"cached"}


# ---------------------------------------------------------------------------------------------
# ExternalArtifact

EXTERNAL = """
from typing import Annotated

import pandas as pd

from mlops import ExternalArtifact, pipeline, step


@step
def count_rows(frame: pd.DataFrame) -> Annotated[int, "rows"]:
    return len(frame)


@pipeline
def counting(frame):
    count_rows(frame=ExternalArtifact(value=frame))


@pipeline
def counting_file(path):
    count_rows(frame=ExternalArtifact(path=path))
"""


@pytest.fixture
def external(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    folder = tmp_path / "ext"
    folder.mkdir()
    (folder / "ext_pipes.py").write_text(EXTERNAL)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.chdir(folder)
    import ext_pipes  # type: ignore[import-not-found]

    yield ext_pipes
    sys.modules.pop("ext_pipes", None)


def _objects(uri: str) -> set[str]:
    return {p.name for p in Path(uri, "objects").glob("*/*") if p.parent.name != "tmp"}


def test_external_value_is_stored_once_and_keyed_by_content(
    external: object, registry_uri: str
) -> None:
    """An unchanged DataFrame is a hit and stores nothing new; a changed one is a miss."""
    import pandas as pd

    o = [f"registry.uri={registry_uri}", "executor=sync"]
    counting = external.counting  # type: ignore[attr-defined]
    frame = pd.DataFrame({"a": [1, 2, 3]})
    assert counting.run(o, quiet=True, args=(frame,)).steps == {"count_rows": "ran"}
    stored = _objects(registry_uri)
    again = counting.run(o, quiet=True, args=(pd.DataFrame({"a": [1, 2, 3]}),))
    assert again.steps == {"count_rows": "cached"}
    assert _objects(registry_uri) == stored
    changed = counting.run(o, quiet=True, args=(pd.DataFrame({"a": [1, 2, 3, 4]}),))
    assert changed.steps == {"count_rows": "ran"}
    assert changed.load("count_rows", "rows") == 4
    from mlops.api import run_pipeline

    before = _objects(registry_uri)
    with pytest.raises(AssertionError, match="plan=true returns a plan"):
        run_pipeline(counting, [*o, "plan=true"], quiet=True, args=(pd.DataFrame({"b": [9]}),))
    assert _objects(registry_uri) == before


def test_external_path_is_keyed_by_content(external: object, registry_uri: str) -> None:
    """An unchanged file is a hit; a changed one is a miss."""
    data = Path("data.csv")
    data.write_text("a\n1\n2\n")
    o = [f"registry.uri={registry_uri}", "executor=sync"]
    counting_file = external.counting_file  # type: ignore[attr-defined]
    assert counting_file.run(o, quiet=True, args=(str(data),)).steps == {"count_rows": "ran"}
    assert counting_file.run(o, quiet=True, args=(str(data),)).steps == {"count_rows": "cached"}
    data.write_text("a\n1\n2\n3\n")
    assert counting_file.run(o, quiet=True, args=(str(data),)).steps == {"count_rows": "ran"}


def test_examples_run(workdir: Path, registry_uri: str) -> None:
    """examples/python_pipelines runs with run.py and with +pipeline= from its folder."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "run.py"), f"registry.uri={registry_uri}"],
        cwd=workdir, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mlops: do_predictions_from_context completed" in proc.stdout
    assert "predictions: [" in proc.stdout
    res = run_mlops(
        "+pipeline=do_predictions", f"registry.uri={registry_uri}",
        f"hydra.run.dir={workdir / 'outputs'}", cwd=EXAMPLES, check=True,
    )  # fmt: skip
    assert "mlops: do_predictions completed" in res.output and "(2 cached)" in res.output
    (run,) = Registry(registry_uri).list_runs(pipeline="do_predictions")[-1:]
    assert run.config["pipeline"]["_target_"] is None
    assert not (EXAMPLES / "outputs").exists() and not (EXAMPLES / ".mlops").exists()
