"""Tracing a pipeline's body: step calls become config entries, their results become handles.

While a ``@pipeline`` function's body runs under :func:`trace`, calling a step does not run it:
:data:`mlops.steps._CALL_HOOK` hands the call to :meth:`_Trace.record`, which binds the arguments
to the step's signature, names the call (``predict``, then ``predict_2`` ...) and returns an
``OutputHandle`` per output the step's ``Annotated`` return declares (:mod:`._handles`). Passing
a handle to another step is what makes an edge; ``get_pipeline_context().model_version`` gives
the model's artifacts as ``ModelArtifactHandle``. The result, :class:`TracedPipeline`, is written
as the same plain config a YAML pipeline composes to (``${step:...}``, ``${model:...}``), so the
compiler cannot tell the two apart.

The body runs once and no data exists during it: a handle used as a value (``len(h)``,
``if h > 0.9``, ``f"{h}"``) raises ``PipelineDefinitionError`` saying so.
"""

from __future__ import annotations

import contextvars
import enum
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import MlopsError, did_you_mean
from ._external import ExternalArtifact
from ._handles import ModelArtifactHandle, OutputHandle, PipelineDefinitionError, _Handle
from ._model import Model

if TYPE_CHECKING:
    from ..steps import Step
    from ..store import ArtifactStore

__all__ = [
    "PipelineContext",
    "StepCall",
    "TracedPipeline",
    "get_pipeline_context",
    "trace",
]


# ---------------------------------------------------------------------------------------------
# the pipeline context


class PipelineModelVersion:
    """The pipeline's model version as its body sees it: a name and a requested version.

    Nothing is resolved while tracing; :meth:`get_model_artifact` names an artifact that the
    compiler resolves (to a concrete version, before any cache key) when the pipeline runs.
    """

    def __init__(self, trace: _Trace, model: Model) -> None:
        self._trace = trace
        self.name = model.name
        self.version = model.version
        self.model = model

    def get_model_artifact(self, name: str) -> ModelArtifactHandle:
        """The artifact linked to the model version under ``name`` (e.g. ``trained_model``)."""
        if not isinstance(name, str) or not name:
            raise PipelineDefinitionError(
                f"get_model_artifact() takes an artifact's name, got {name!r}",
                pipeline=self._trace.pipeline,
            )
        return ModelArtifactHandle(self._trace, name)

    get_artifact = get_model_artifact  # ZenML's other spelling

    def __repr__(self) -> str:
        return f"<model {self.name} version {self.version!r} of pipeline {self._trace.pipeline}>"


@dataclass(frozen=True)
class PipelineContext:
    """What a pipeline's body can ask while it is traced: ``get_pipeline_context()``.

    Attributes:
        name: the pipeline's name.
        enable_cache: the pipeline's cache setting.

    .. versionadded:: 0.2.0
    """

    name: str
    enable_cache: bool
    _trace: _Trace = field(repr=False)

    @property
    def model_version(self) -> PipelineModelVersion:
        """The model the pipeline declares (``@pipeline(model=Model(...))``)."""
        model = self._trace.model
        if model is None:
            raise PipelineDefinitionError(
                "get_pipeline_context().model_version: the pipeline has no model. Declare one: "
                "@pipeline(model=Model(name='iris_classifier', version='production'))",
                pipeline=self.name,
            )
        return PipelineModelVersion(self._trace, model)

    model = model_version


_TRACE: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar(
    "mlops_pipeline_trace", default=None
)


def get_pipeline_context() -> PipelineContext:
    """The context of the pipeline whose body is being traced.

    Raises:
        MlopsError: outside a ``@pipeline`` function's body.

    .. versionadded:: 0.2.0
    """
    tr = _TRACE.get()
    if tr is None:
        raise MlopsError(
            "get_pipeline_context() was called outside a pipeline's body: call it inside a "
            "function decorated with @pipeline (in a running step, use get_step_context())"
        )
    return tr.context


# ---------------------------------------------------------------------------------------------
# recording step calls


@dataclass(frozen=True)
class StepCall:
    """One step called in a pipeline's body: its name, import path and bound arguments."""

    name: str
    target: str
    step: Step[Any]
    args: dict[str, Any]


class _Trace:
    """The state of one pipeline body's trace."""

    def __init__(self, pipeline: str, model: Model | None, enable_cache: bool) -> None:
        self.pipeline = pipeline
        self.model = model
        self.calls: dict[str, StepCall] = {}
        self.context = PipelineContext(pipeline, enable_cache, self)

    def record(self, step: Step[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        params = list(step.signature.parameters)
        name = self._name(step, kwargs, params)
        error = _ErrorAt(self.pipeline, name)
        if len(args) > len(params):
            error(
                f"{step.name}() takes {len(params)} arguments ({', '.join(params) or 'none'}) "
                f"but {len(args)} were given positionally"
            )
        bound: dict[str, Any] = dict(zip(params, args, strict=False))
        for arg, value in kwargs.items():
            if arg not in params:
                error(
                    f"{step.name}() has no parameter '{arg}'."
                    f"{did_you_mean(arg, params)} Its parameters: {', '.join(params) or '(none)'}.",
                    arg,
                )
            if arg in bound:
                error("given both positionally and by keyword; pass it once", arg)
            bound[arg] = value
        for p in step.signature.parameters.values():
            if p.name not in bound and p.default is inspect.Parameter.empty:
                error(
                    f"missing argument: {step.name}() needs '{p.name}'; pass it in the call, as a "
                    f"value or another step's output, e.g. {step.name}({p.name}=...)",
                    p.name,
                )
        for arg, value in bound.items():
            bound[arg] = self._check_value(value, error, arg)
        self.calls[name] = StepCall(name, _target_of(step, error), step, bound)
        handles = tuple(OutputHandle(self, name, out) for out in step.outputs)
        if not handles:
            return None
        return handles[0] if len(handles) == 1 else handles

    def _name(self, step: Step[Any], kwargs: dict[str, Any], params: list[str]) -> str:
        """The call's key under ``steps:``: ``id=`` if given, else the step's name, numbered."""
        if "id" in kwargs and "id" not in params:
            given = kwargs.pop("id")
            if not isinstance(given, str) or not given:
                raise PipelineDefinitionError(
                    f"id= names the step's call in the pipeline and must be a string, got "
                    f"{given!r}",
                    pipeline=self.pipeline,
                    step=step.name,
                )
            if given in self.calls:
                raise PipelineDefinitionError(
                    f"two step calls are named '{given}': give each call its own id=",
                    pipeline=self.pipeline,
                    step=given,
                )
            return given
        base, n = step.name, 1
        name = base
        while name in self.calls:
            n += 1
            name = f"{base}_{n}"
        return name

    def _check_value(self, value: Any, error: _ErrorAt, arg: str) -> Any:
        if isinstance(value, _Handle):
            if value._trace is not self:
                error(
                    f"{value!r} comes from another pipeline's body ('{value._trace.pipeline}'); "
                    "a step can only read outputs of steps called in the same pipeline (to "
                    "share data between pipelines, link it to a model version and read it with "
                    "get_pipeline_context().model_version.get_model_artifact(...))",
                    arg,
                )
            if (
                isinstance(value, ModelArtifactHandle)
                and self.model is not None
                and self.model.creates_version
            ):
                error(
                    f"get_model_artifact('{value.output}') reads an artifact of the "
                    f"pipeline's model version, but the pipeline registers a new version of "
                    f"'{self.model.name}' (version=None), which has no artifacts yet. Read "
                    f"an existing one: Model(name='{self.model.name}', version='production') "
                    "(or a number, or 'latest')",
                    arg,
                )
            return value
        if isinstance(value, ExternalArtifact):
            return value
        return literal(value, error, arg)


class _ErrorAt:
    """Raises a PipelineDefinitionError at one step call of one pipeline."""

    def __init__(self, pipeline: str, step: str) -> None:
        self.pipeline, self.step = pipeline, step

    def __call__(self, message: str, argument: str | None = None) -> NoReturn:
        raise PipelineDefinitionError(
            message, pipeline=self.pipeline, step=self.step, argument=argument
        )


def literal(value: Any, error: Callable[[str, str], NoReturn], arg: str) -> Any:
    """``value`` as a config literal: None, bool, int, float, str, and lists and dicts of them.

    A string containing ``${`` is escaped, so it stays text rather than becoming a reference;
    a tuple becomes a list (what YAML can say); an Enum its value.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return literal(value.value, error, arg)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return value.replace("${", "\\${")
    if isinstance(value, (list, tuple)):
        return [literal(v, error, arg) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                error(f"a dict param needs string keys to be written in a config, got {k!r}", arg)
            if isinstance(v, (_Handle, ExternalArtifact)):
                error(
                    f"{v!r} is nested in a dict; a step output or artifact must be the whole "
                    "value of an argument",
                    arg,
                )
            out[k] = literal(v, error, arg)
        return out
    if isinstance(value, (_Handle, ExternalArtifact)):
        error(
            f"{value!r} is nested in a list; a step output or artifact must be the whole value "
            "of an argument",
            arg,
        )
    error(
        f"a {type(value).__qualname__} cannot be written in a pipeline config. Pass a plain "
        "value (number, string, bool, None, or a list or dict of them), or wrap it as "
        "ExternalArtifact(value=...) to store it as an artifact",
        arg,
    )


def _target_of(step: Step[Any], error: _ErrorAt) -> str:
    """The import path the compiler will load the step from (``package.module.function``)."""
    from ..steps import Step

    fn = step.fn
    if "<locals>" in fn.__qualname__:
        error(
            f"step function {fn.__qualname__} is defined inside a function; the compiler imports "
            "steps by path, so define it at the top level of a module"
        )
    module_name = _importable_module_name(fn.__module__)
    module = sys.modules.get(fn.__module__)
    attr = fn.__qualname__
    if module is not None:
        obj = getattr(module, attr, None)
        if not (isinstance(obj, Step) and obj.fn is fn):
            found = [k for k, v in vars(module).items() if isinstance(v, Step) and v.fn is fn]
            if not found:
                error(
                    f"step function {fn.__module__}.{fn.__qualname__} is not a module-level "
                    f"step; decorate it where it is defined (@step def {fn.__name__}...)"
                )
            attr = sorted(found)[0]
    return f"{module_name}.{attr}"


def _importable_module_name(module: str) -> str:
    """The name under which ``module`` can be imported again; ``__main__`` is mapped to its file.

    A script run as ``python my_pipelines.py`` defines its steps in ``__main__``; the compiler and
    the executors import them as ``my_pipelines``, exactly as ``python -m mlops`` would.
    """
    if module != "__main__":
        return module
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name)  # python -m package.module
    path = getattr(main, "__file__", None)
    if path:
        import os

        stem = os.path.splitext(os.path.basename(path))[0]
        folder = os.path.dirname(os.path.abspath(path))
        roots = {os.path.abspath(p or os.getcwd()) for p in sys.path}
        if folder in roots and stem.isidentifier():
            return stem
    return module


# ---------------------------------------------------------------------------------------------
# the traced pipeline


@dataclass(frozen=True)
class TracedPipeline:
    """A pipeline body's trace: its steps in call order, its model and cache setting."""

    name: str
    enable_cache: bool
    model: Model | None
    calls: dict[str, StepCall]

    @property
    def external(self) -> list[ExternalArtifact]:
        """The ExternalArtifact arguments, in call order."""
        return [v for c in self.calls.values() for v in c.args.values()
                if isinstance(v, ExternalArtifact)]  # fmt: skip

    def to_config(
        self, store: ArtifactStore | None = None, *, allow_pickle: bool = False
    ) -> dict[str, Any]:
        """The pipeline config a YAML pipeline of the same meaning composes to (plain data).

        Args:
            store: where ``ExternalArtifact(value=...)`` values are stored; None computes their
                references without storing them.
            allow_pickle: store values no safe format handles with pickle.
        """
        steps: dict[str, dict[str, Any]] = {}
        for call in self.calls.values():
            entry: dict[str, Any] = {"_target_": call.target}
            for arg, value in call.args.items():
                if isinstance(value, (OutputHandle, ModelArtifactHandle)):
                    entry[arg] = value.reference()
                elif isinstance(value, ExternalArtifact):
                    entry[arg] = value.reference(store, allow_pickle=allow_pickle)
                else:
                    entry[arg] = value
            steps[call.name] = entry
        out: dict[str, Any] = {"pipeline": {"name": self.name, "enable_cache": self.enable_cache}}
        if self.model is not None:
            out["model"] = self.model.to_config()
        out["steps"] = steps
        return out


def trace(
    fn: Callable[..., Any],
    *,
    name: str,
    model: Model | None,
    enable_cache: bool,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
) -> TracedPipeline:
    """Run ``fn``'s body once with step calls recorded, and return what it declared."""
    from ..steps import _CALL_HOOK

    if _TRACE.get() is not None:
        raise PipelineDefinitionError(
            f"pipeline '{name}' was called inside the body of pipeline "
            f"'{_TRACE.get().pipeline}'; pipelines cannot be nested: call the inner pipeline's "  # type: ignore[union-attr]
            "steps directly",
            pipeline=name,
        )
    try:
        inspect.signature(fn).bind(*args, **(kwargs or {}))
    except TypeError as e:
        raise PipelineDefinitionError(
            f"the pipeline function cannot be called with these arguments ({e}). Give its "
            "parameters defaults, or pass them: pipeline(...), pipeline.run(kwargs={...})",
            pipeline=name,
        ) from None
    tr = _Trace(name, model, enable_cache)
    trace_token = _TRACE.set(tr)
    hook_token = _CALL_HOOK.set(tr.record)
    try:
        fn(*args, **(kwargs or {}))
    finally:
        _CALL_HOOK.reset(hook_token)
        _TRACE.reset(trace_token)
    if not tr.calls:
        raise PipelineDefinitionError(
            "the pipeline's body calls no step. Call @step functions in it: each call becomes a "
            "step of the pipeline (e.g. data = load_data(); predict(data=data))",
            pipeline=name,
        )
    return TracedPipeline(name, enable_cache, model, dict(tr.calls))
