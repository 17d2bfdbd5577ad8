"""Pipelines declared in Python: tracing into a config, handles, names, and tracing errors."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from omegaconf import OmegaConf

import mlops
from mlops import ExternalArtifact, Model, ModelStages, ModelVersion, get_pipeline_context
from mlops.errors import ConfigError, MlopsError
from mlops.pipelines import PipelineDefinitionError

STEPS = """
from typing import Annotated, Any, Tuple

from mlops import step


@step
def load(n: int = 3) -> Annotated[list, "rows"]:
    return list(range(n))


@step
def halves(rows: list) -> Tuple[Annotated[list, "first"], Annotated[list, "second"]]:
    return rows[: len(rows) // 2], rows[len(rows) // 2 :]


@step
def total(values: list, scale: float = 1.0) -> Annotated[float, "total"]:
    return sum(values) * scale


@step
def report(value: float, label: str) -> None:
    print(label, value)


@step
def predict(model: Any, data: list) -> Annotated[list, "predictions"]:
    return [model(x) for x in data]


@step(name="renamed")
def named_step(x: int = 0) -> Annotated[int, "y"]:
    return x
"""


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """A step module on disk (the compiler imports steps by path), importable as pp_steps."""
    folder = tmp_path_factory.mktemp("pp_steps")
    (folder / "pp_steps.py").write_text(STEPS)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("pp_steps")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("pp_steps", None)


def test_trace_is_the_yaml_config(steps: ModuleType) -> None:
    """Calls are steps, handles ${step:...}, params literals; tuple outputs unpack."""

    @mlops.pipeline(name="p", model=Model("m", version=ModelStages.PRODUCTION), enable_cache=False)
    def p() -> None:
        rows = steps.load(n=4)
        first, second = steps.halves(rows)  # positional, bound by the signature
        steps.total(first, scale=2.0)
        steps.predict(model=get_pipeline_context().model_version.get_model_artifact("clf"),
                      data=second)  # fmt: skip

    assert p.to_config() == {
        "pipeline": {"name": "p", "enable_cache": False},
        "model": {"name": "m", "version": "production"},
        "steps": {
            "load": {"_target_": "pp_steps.load", "n": 4},
            "halves": {"_target_": "pp_steps.halves", "rows": "${step:load.rows}"},
            "total": {"_target_": "pp_steps.total", "values": "${step:halves.first}", "scale": 2.0},
            "predict": {
                "_target_": "pp_steps.predict",
                "model": "${model:clf}",
                "data": "${step:halves.second}",
            },
        },
    }


def test_repeated_calls_are_numbered_and_renamed(steps: ModuleType) -> None:
    """A step called again is NAME_2, NAME_3; with_options(name=) and id= name a call."""

    @mlops.pipeline
    def p() -> None:
        rows = steps.load()
        steps.total(rows)
        steps.total(rows, scale=2.0)
        steps.total(rows, scale=3.0)
        steps.total.with_options(name="tripled")(rows, scale=3.0)
        steps.total(rows, id="by_id")
        steps.named_step()
        steps.named_step()

    assert list(p.to_config()["steps"]) == [
        "load", "total", "total_2", "total_3", "tripled", "by_id", "renamed", "renamed_2",
    ]  # fmt: skip
    assert p.to_config()["steps"]["renamed"]["_target_"] == "pp_steps.named_step"
    assert p.name == "p"


def test_step_calls_outside_a_pipeline_run_the_function(steps: ModuleType) -> None:
    """Outside a pipeline's body (and after one), calling a step calls the function."""

    @mlops.pipeline
    def p() -> None:
        steps.load()

    p.to_config()
    assert steps.total([1, 2], scale=2.0) == 6.0
    assert steps.total.with_options(name="x")([1]) == 1


def test_literals_are_escaped_and_normalized(steps: ModuleType) -> None:
    """A '${...}' string stays text through the compiler; tuples become lists; enums values."""
    from mlops.compiler import compile_pipeline
    from mlops.schema import register

    register()

    @mlops.pipeline
    def p() -> None:
        steps.report(value=1.5, label="${not_a_reference} and ${step:load.rows}")
        steps.load(n=ModelStages.PRODUCTION)  # a str Enum: its value
        steps.total(values=(1, [2, 3]), scale={"a": (1,)})  # type: ignore[arg-type]

    cfg = p.to_config()
    assert cfg["steps"]["load"]["n"] == "production"
    assert cfg["steps"]["total"]["values"] == [1, [2, 3]]
    assert cfg["steps"]["total"]["scale"] == {"a": [1]}
    plan = compile_pipeline(OmegaConf.create(cfg), None)
    assert plan.steps["report"].params["label"] == "${not_a_reference} and ${step:load.rows}"
    assert plan.steps["report"].inputs == {}


def test_python_and_yaml_compile_to_the_same_graph() -> None:
    """The packaged YAML train_and_promote and its Python twin give identical graph keys."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from mlops.compiler import compile_pipeline
    from mlops.examples.iris import promotion
    from mlops.examples.iris import steps as s
    from mlops.pipelines import expand_pipeline, split_overrides
    from mlops.schema import register

    @mlops.pipeline(model=Model(name="iris_classifier"))
    def train_and_promote() -> None:
        X_train, X_test, y_train, y_test = s.split(data=s.load_data(), test_size=0.3,
                                                   random_state=42)  # fmt: skip
        model = s.train(X_train=X_train, y_train=y_train, C=1.0, max_iter=500)
        promotion.promote(accuracy=s.evaluate(model=model, X_test=X_test, y_test=y_test),
                          threshold=0.9)  # fmt: skip

    register()
    GlobalHydra.instance().clear()
    overrides = ["steps.train.C=10", "executor=sync"]
    with initialize_config_module("mlops.conf", version_base=None):
        yaml_cfg = compose("mlops", overrides=["+pipeline=train_and_promote", *overrides])
        py_cfg = compose("mlops", overrides=split_overrides(overrides)[0])
    py_cfg = expand_pipeline(py_cfg, overrides, pipeline=train_and_promote)
    yaml_plan, py_plan = compile_pipeline(yaml_cfg, None), compile_pipeline(py_cfg, None)
    assert py_plan.keys == yaml_plan.keys
    assert py_plan.steps["train"].params == {"C": 10, "max_iter": 500}
    assert OmegaConf.to_container(py_cfg) == OmegaConf.to_container(yaml_cfg)


# ---------------------------------------------------------------------------------------------
# Model and ModelVersion


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (None, None),
        (3, 3),
        ("3", 3),
        ("latest", "latest"),
        ("Production", "production"),
        (ModelStages.PRODUCTION, "production"),
        (ModelStages.STAGING, "staging"),
        (ModelStages.LATEST, "latest"),
    ],
)
def test_model_version_values(version: Any, expected: Any) -> None:
    """A version is None, a number, 'latest' or a stage, however it is spelt."""
    assert Model("m", version).version == expected
    assert ModelVersion(name="m", version=version) == Model("m", expected)


@pytest.mark.parametrize("version", ["prod", True, 1.5, "", "v3"])
def test_model_version_refused(version: Any) -> None:
    """Anything else is refused, naming the choices."""
    with pytest.raises(ConfigError, match="a model version is"):
        Model("m", version)


def test_model_version_is_a_spec_when_called_and_a_record_type(tmp_path: Path) -> None:
    """ModelVersion(...) makes a Model; isinstance(x, ModelVersion) holds for registry records."""
    from mlops.models import ModelVersion as Record

    spec = ModelVersion(name="iris_classifier", version=ModelStages.PRODUCTION)
    assert type(spec) is Model
    assert not isinstance(spec, ModelVersion)
    assert issubclass(Record, ModelVersion) and not issubclass(Model, ModelVersion)
    assert ModelVersion.get_model_artifact is Record.get_model_artifact
    reg = mlops.Registry(str(tmp_path / "reg"))
    assert isinstance(reg.register_model_version("m"), ModelVersion)
    assert Model("m", tags=["a", "b"], description="d").to_config() == {
        "name": "m", "version": None, "description": "d", "tags": ["a", "b"],
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------
# handles used as values


HANDLE_USES: list[tuple[str, Callable[[Any], Any]]] = [
    ("len", lambda h: len(h)),
    ("bool", lambda h: bool(h)),
    ("if", lambda h: 1 if h else 0),
    ("greater", lambda h: h > 0.9),
    ("less-equal", lambda h: h <= 0.9),
    ("equals-number", lambda h: h == 0.9),
    ("add", lambda h: h + 1),
    ("radd", lambda h: 1 + h),
    ("multiply", lambda h: h * 2),
    ("divide", lambda h: h / 2),
    ("negate", lambda h: -h),
    ("str", lambda h: str(h)),
    ("f-string", lambda h: f"{h:.2f}"),
    ("iterate", lambda h: list(h)),
    ("unpack", lambda h: [a for a, b in [h]]),
    ("index", lambda h: h[0]),
    ("in", lambda h: 1 in h),
    ("attribute", lambda h: h.mean()),
    ("float", lambda h: float(h)),
    ("int", lambda h: int(h)),
    ("call", lambda h: h()),
    ("range", lambda h: range(h)),
]


@pytest.mark.parametrize(("use", "misuse"), HANDLE_USES, ids=[u for u, _ in HANDLE_USES])
@pytest.mark.parametrize("kind", ["output", "model-artifact"])
def test_handle_used_as_a_value(
    steps: ModuleType, use: str, misuse: Callable[[Any], Any], kind: str
) -> None:
    """Any use of a handle as data is one error: the body is traced once, data comes later."""

    @mlops.pipeline(name="uses", model=Model("m", "production"))
    def p() -> None:
        if kind == "output":
            h = steps.total(steps.load())
        else:
            h = get_pipeline_context().model_version.get_model_artifact("clf")
        misuse(h)

    with pytest.raises(PipelineDefinitionError) as info:
        p.to_config()
    message = str(info.value)
    assert message.startswith("pipeline 'uses': ")
    assert "The body runs once, to build the graph, and data exists only when the steps run" in (
        message
    )
    assert "\n" not in message


def test_handle_error_message() -> None:
    """The whole message for `if accuracy > 0.9`."""
    from mlops.examples.iris import steps as s

    @mlops.pipeline(name="train")
    def p() -> None:
        acc = s.evaluate(model=s.train(X_train=1, y_train=2), X_test=3, y_test=4)
        if acc > 0.9:
            pass

    with pytest.raises(PipelineDefinitionError) as info:
        p.to_config()
    assert str(info.value) == (
        "pipeline 'train': `>` used output 'accuracy' of step 'evaluate' as a value while the "
        "pipeline's body was being traced. The body runs once, to build the graph, and data "
        "exists only when the steps run: pass the handle to a step as an argument and compute "
        "with it inside that step."
    )


# ---------------------------------------------------------------------------------------------
# tracing errors: one case each, whole messages

OTHER: dict[str, Any] = {}


def _other_pipeline_handle(steps: ModuleType) -> Any:
    @mlops.pipeline(name="other")
    def other() -> None:
        OTHER["rows"] = steps.load()

    other.to_config()
    return OTHER["rows"]


def _with_open_file(use: Callable[[Any], Any]) -> Any:
    with open(__file__) as f:
        return use(f)


ERRORS: list[Any] = [
    pytest.param(
        lambda s: s.total(scale=2.0),
        "pipeline 'p', step 'total', argument 'values': missing argument: total() needs "
        "'values'; pass it in the call, as a value or another step's output, e.g. "
        "total(values=...)",
        id="missing-argument",
    ),
    pytest.param(
        lambda s: s.total(s.load(), scal=2.0),
        "pipeline 'p', step 'total', argument 'scal': total() has no parameter 'scal'. Did you "
        "mean 'scale'? Its parameters: values, scale.",
        id="unknown-keyword",
    ),
    pytest.param(
        lambda s: s.total([1], 2.0, 3),
        "pipeline 'p', step 'total': total() takes 2 arguments (values, scale) but 3 were given "
        "positionally",
        id="too-many-positional",
    ),
    pytest.param(
        lambda s: s.total([1], values=[2]),
        "pipeline 'p', step 'total', argument 'values': given both positionally and by keyword; "
        "pass it once",
        id="given-twice",
    ),
    pytest.param(
        lambda s: s.total(OTHER["rows"]),
        "pipeline 'p', step 'total', argument 'values': <output rows of step load> comes from "
        "another pipeline's body ('other'); a step can only read outputs of steps called in the "
        "same pipeline (to share data between pipelines, link it to a model version and read it "
        "with get_pipeline_context().model_version.get_model_artifact(...))",
        id="handle-from-another-pipeline",
    ),
    pytest.param(
        lambda s: None,
        "pipeline 'p': the pipeline's body calls no step. Call @step functions in it: each call "
        "becomes a step of the pipeline (e.g. data = load_data(); predict(data=data))",
        id="no-step",
    ),
    pytest.param(
        lambda s: s.predict(
            model=get_pipeline_context().model_version.get_model_artifact("clf"), data=[1]
        ),
        "pipeline 'p', step 'predict', argument 'model': get_model_artifact('clf') reads an "
        "artifact of the pipeline's model version, but the pipeline registers a new version of "
        "'m' (version=None), which has no artifacts yet. Read an existing one: Model(name='m', "
        "version='production') (or a number, or 'latest')",
        id="model-artifact-of-new-version",
    ),
    pytest.param(
        lambda s: _with_open_file(lambda f: s.total(values=f)),
        "pipeline 'p', step 'total', argument 'values': a TextIOWrapper cannot be written in a "
        "pipeline config. Pass a plain value (number, string, bool, None, or a list or dict of "
        "them), or wrap it as ExternalArtifact(value=...) to store it as an artifact",
        id="open-file",
    ),
    pytest.param(
        lambda s: s.total(values=[1], scale=lambda x: x),
        "pipeline 'p', step 'total', argument 'scale': a function cannot be written in a "
        "pipeline config. Pass a plain value (number, string, bool, None, or a list or dict of "
        "them), or wrap it as ExternalArtifact(value=...) to store it as an artifact",
        id="lambda",
    ),
    pytest.param(
        lambda s: s.total(values=[s.load()]),
        "pipeline 'p', step 'total', argument 'values': <output rows of step load> is nested in "
        "a list; a step output or artifact must be the whole value of an argument",
        id="handle-nested-in-a-list",
    ),
    pytest.param(
        lambda s: (s.load(id="x"), s.total([1], id="x")),
        "pipeline 'p', step 'x': two step calls are named 'x': give each call its own id=",
        id="duplicate-id",
    ),
]


@pytest.mark.parametrize(("body", "message"), ERRORS)
def test_tracing_errors(steps: ModuleType, body: Callable[[Any], Any], message: str) -> None:
    """Each mistake in a pipeline's body is one line naming pipeline, step, argument and fix."""
    _other_pipeline_handle(steps)  # a handle made by another pipeline's trace

    @mlops.pipeline(name="p", model=Model("m"))
    def p() -> None:
        body(steps)

    with pytest.raises(PipelineDefinitionError) as info:
        p.to_config()
    assert str(info.value) == message


def test_no_model_declared(steps: ModuleType) -> None:
    """Asking a pipeline without a model for its model version says how to declare one."""

    @mlops.pipeline(name="p")
    def p() -> None:
        get_pipeline_context().model_version  # noqa: B018 - the read is the case

    with pytest.raises(PipelineDefinitionError, match=r"^pipeline 'p': .*has no model"):
        p.to_config()


def test_step_defined_in_a_function(tmp_path: Path) -> None:
    """A step the compiler cannot import by path is refused when traced, with the fix."""

    @mlops.step
    def local() -> int:
        return 1

    @mlops.pipeline(name="p")
    def p() -> None:
        local()

    with pytest.raises(PipelineDefinitionError, match="defined inside a function"):
        p.to_config()


def test_get_pipeline_context_outside_a_pipeline() -> None:
    """Outside a pipeline's body there is no pipeline context."""
    with pytest.raises(MlopsError, match="outside a pipeline's body"):
        get_pipeline_context()


def test_nested_pipelines_are_refused(steps: ModuleType) -> None:
    """Calling a pipeline inside another's body is an error, not a silent run."""

    @mlops.pipeline(name="inner")
    def inner() -> None:
        steps.load()

    @mlops.pipeline(name="outer")
    def outer() -> None:
        inner.trace()

    with pytest.raises(PipelineDefinitionError, match="pipelines cannot be nested"):
        outer.to_config()


def test_pipeline_parameters(steps: ModuleType) -> None:
    """A pipeline function's parameters are literals in its body; missing ones are one error."""

    @mlops.pipeline(name="p")
    def p(n: int, scale: float = 1.0) -> None:
        steps.total(steps.load(n=n), scale=scale * 2)  # plain values: arithmetic is fine

    assert p.to_config(3)["steps"]["total"]["scale"] == 2.0
    assert p.trace(n=4, scale=2.0).to_config()["steps"]["load"]["n"] == 4
    with pytest.raises(PipelineDefinitionError) as info:
        p.to_config()
    assert str(info.value) == (
        "pipeline 'p': the pipeline function cannot be called with these arguments (missing a "
        "required argument: 'n'). Give its parameters defaults, or pass them: pipeline(...), "
        "pipeline.run(kwargs={...})"
    )


def test_pipeline_decorator_arguments() -> None:
    """model=, model_config= and model_version= are one argument; a non-Model is refused."""
    with pytest.raises(ConfigError, match="one of model=, model_config= and model_version="):
        mlops.pipeline(model=Model("a"), model_config=Model("b"))
    with pytest.raises(ConfigError, match="takes a Model"):
        mlops.pipeline(model="iris_classifier")(lambda: None)  # type: ignore[call-overload]


def test_external_artifact_references(tmp_path: Path) -> None:
    """path= is a ${file:...} reference (quoted when needed); value= names its content."""
    assert ExternalArtifact(path="data/iris.csv").reference() == "${file:data/iris.csv}"
    assert ExternalArtifact(path=tmp_path / "a,b.csv").reference() == (
        f"${{file:'{tmp_path}/a,b.csv'}}"
    )
    a, b = ExternalArtifact(value=[1, 2, 3]), ExternalArtifact(value=[1, 2, 3])
    assert a.reference() == b.reference() != ExternalArtifact(value=[1, 2]).reference()
    assert a.reference().startswith("${object:") and ",json," in a.reference()
    with pytest.raises(ConfigError, match="exactly one of"):
        ExternalArtifact()
    with pytest.raises(ConfigError, match="exactly one of"):
        ExternalArtifact(value=1, path="x")


def test_export_prints_the_yaml_pipeline(steps: ModuleType, tmp_path: Path) -> None:
    """`mlops pipeline export` prints YAML that composes back to the traced config."""
    import io

    from mlops.pipeline_cli import main

    (tmp_path / "pp_pipes.py").write_text(
        textwrap.dedent(
            """
            import mlops
            from pp_steps import load, total

            @mlops.pipeline(model=mlops.Model("m", "latest"))
            def summing():
                total(load(n=5), scale=0.5)
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        out = io.StringIO()
        assert main(["export", "pp_pipes:summing"], out) == 0
        from pp_pipes import summing  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pp_pipes", None)
    text = out.getvalue()
    assert text.startswith("# @package _global_\n")
    assert OmegaConf.to_container(OmegaConf.create(text)) == summing.to_config()


def test_show_prints_steps_and_edges() -> None:
    """`mlops pipeline show NAME` prints a YAML pipeline's steps, params and edges."""
    import io

    from mlops.pipeline_cli import main

    out = io.StringIO()
    assert main(["show", "do_predictions"], out) == 0
    assert out.getvalue() == (
        "pipeline do_predictions (YAML)\n"
        "model: iris_classifier, version production\n"
        "steps:\n"
        "  load_inference_data  mlops.examples.iris.steps.load_inference_data  n_samples=30, "
        "seed=0\n"
        "  predict              mlops.examples.iris.steps.predict\n"
        "edges:\n"
        "  model artifact trained_model -> predict.model\n"
        "  load_inference_data.inference_data -> predict.data\n"
    )


def test_pipeline_command_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown pipeline or import path is one Error line and exit code 1."""
    from mlops.pipeline_cli import main

    assert main(["show", "do_predictionz"]) == 1
    assert capsys.readouterr().err.startswith(
        "Error: +pipeline=do_predictionz: no pipeline named 'do_predictionz'. Did you mean "
        "'do_predictions'?"
    )
    assert main(["export", "mlops.examples.iris.steps:predict"]) == 1
    assert capsys.readouterr().err == (
        "Error: mlops.examples.iris.steps:predict: 'mlops.examples.iris.steps:predict' is not a "
        "pipeline; decorate the function with @pipeline (from mlops import pipeline)\n"
    )


def test_external_estimator_has_a_stable_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unchanged scikit-learn estimator serializes to the same bytes, so the same id."""
    import time

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    first = ExternalArtifact(value=model).reference()
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 60)  # a minute later
    assert ExternalArtifact(value=model).reference() == first
