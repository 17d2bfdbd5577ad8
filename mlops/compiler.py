"""Compile a composed config into a :class:`Plan`: steps bound, references resolved, ordered.

``compile_pipeline(cfg, models, files=...)`` is pure -- it reads the model registry (to resolve
model versions and stages) and declared input files, but writes nothing and reads no clock -- so
compiling twice gives the same plan, and a plan can be shown (``plan=true``) without side effects.

What it does, in order:

1. imports nothing it does not have to: each ``_target_``'s signature, outputs and code hash are
   read from the module's source (:mod:`mlops.fingerprint`); only a step defined in a way the
   source cannot tell (a factory, a re-export) is imported;
2. binds each step's config keys to the function's parameters -- a literal is a param, a
   reference (``${step:...}``, ``${model:...}``, ``${artifact:...}``, ``${file:...}``) an input --
   and reports unknown and missing names;
3. resolves model references once, to concrete version numbers and artifact ids, so that cache
   keys depend on *which* version a stage pointed to when the run started;
4. orders the steps (graphlib), reporting a cycle as ``a -> b -> a``;
5. derives each step's static key: a hash of its code, params, the artifact format version and
   the concrete model artifacts and the content identities of the files it reads
   (:mod:`mlops.cache` adds its step inputs' content hashes at run time). Graph keys are
   ``<step>-<hash of the static keys up to it>``, so identical steps of different jobs are one
   task in a combined graph.

The Dask graph is a plain dict built by :meth:`Plan.graph`:
``{graph_key: (task, step_name, *upstream_graph_keys)}``.
"""

from __future__ import annotations

import graphlib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import (
    ConfigError,
    CycleError,
    MlopsError,
    StepDefinitionError,
    UnknownStepError,
    did_you_mean,
)
from .fingerprint import (
    StepSignature,
    fingerprint_parts,
    read_step_signature,
    without_libraries,
)
from .hashing import token
from .schema import ArtifactInputRef, FileRef, Keys, ModelArtifactRef, ObjectRef, StepOutputRef
from .serializers import FORMAT_VERSION
from .signature_cache import session as signature_session
from .store import ArtifactRef

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from .file_inputs import FileStamp, StampSource

__all__ = [
    "ArtifactInput",
    "FileInput",
    "Input",
    "ModelPlan",
    "ModelResolver",
    "Plan",
    "StepInput",
    "StepPlan",
    "StoredInput",
    "compile_pipeline",
    "load_step",
]


class ResolvedVersion(Protocol):
    """What the compiler reads of a resolved model version."""

    @property
    def number(self) -> int: ...

    def get_artifact_ref(self, name: str) -> ArtifactRef: ...


class ModelResolver(Protocol):
    """Read-only access to model versions: all the compiler needs of the model registry."""

    def resolve(self, name: str, version: int | str) -> ResolvedVersion: ...


@dataclass(frozen=True)
class ModelPlan:
    """The pipeline's model: ``number`` None means the run registers a new version."""

    name: str
    requested: int | str | None
    number: int | None

    @property
    def creates_version(self) -> bool:
        return self.number is None


@dataclass(frozen=True)
class StepInput:
    """A step input that is an upstream step's output."""

    step: str
    output: str

    def describe(self) -> str:
        return f"{self.step}.{self.output}"


@dataclass(frozen=True)
class ArtifactInput:
    """A step input that is a stored artifact of a model version, resolved to a concrete one."""

    output: str
    model: str
    version: int
    requested: str
    artifact: ArtifactRef

    def describe(self) -> str:
        return f"{self.model} v{self.version} {self.output}"


@dataclass(frozen=True)
class FileInput:
    """A declared file or folder (``${file:PATH}``): the step gets ``path``; the key, ``digest``."""

    path: str
    digest: str

    def describe(self) -> str:
        return f"file {self.path}"


@dataclass(frozen=True)
class StoredInput:
    """A value stored by content in the artifact store (``${object:ID,FORMAT,SIZE}``, what an
    ``ExternalArtifact(value=...)`` becomes): keyed by its content id, loaded like an artifact."""

    artifact: ArtifactRef

    def describe(self) -> str:
        return f"stored value {self.artifact.id[:12]}"


Input = StepInput | ArtifactInput | FileInput | StoredInput


@dataclass(frozen=True)
class StepPlan:
    """One step, bound and keyed.

    Attributes:
        graph_key: the step's task key in the Dask graph (``<name>-<hash>``).
        static_key: what its cache key is made of, apart from its step inputs' content hashes.
    """

    name: str
    target: str
    signature: StepSignature
    params: dict[str, Any]
    inputs: dict[str, Input]
    deps: tuple[str, ...]
    graph_key: str
    static_key: str
    enable_cache: bool

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.signature.outputs


@dataclass(frozen=True)
class Plan:
    """A compiled pipeline, ready to execute."""

    pipeline: str
    model: ModelPlan | None
    steps: dict[str, StepPlan]
    enable_cache: bool = True
    config: dict[str, Any] = field(default_factory=dict)
    #: stat stamps of declared input files hashed while compiling, for a run to remember
    file_stamps: dict[str, FileStamp] = field(default_factory=dict)

    def graph(self, task: Callable[..., Any]) -> dict[str, tuple[Any, ...]]:
        """The Dask graph: each step's key maps to ``(task, step_name, *upstream_keys)``.

        Examples:
            >>> sig = StepSignature("m.f", "f", (), frozenset(), ("out",))
            >>> a = StepPlan("a", "m.f", sig, {}, {}, (), "a-1", "1", True)
            >>> b = StepPlan("b", "m.f", sig, {}, {}, ("a",), "b-2", "2", True)
            >>> Plan("p", None, {"a": a, "b": b}).graph(len)
            {'a-1': (<built-in function len>, 'a'), 'b-2': (<built-in function len>, 'b', 'a-1')}
        """
        return {
            sp.graph_key: (task, sp.name, *(self.steps[d].graph_key for d in sp.deps))
            for sp in self.steps.values()
        }

    @property
    def keys(self) -> list[str]:
        """The graph keys of every step, in run order."""
        return [sp.graph_key for sp in self.steps.values()]


def load_step(target: str, key: str | None = None) -> Any:
    """Import the step object at ``target`` (``pkg.module.fn``)."""
    from .steps import Step
    from .targets import import_target

    module, module_name, attr = import_target(target, key)
    obj = getattr(module, attr, None)
    if obj is None:
        names = [n for n, v in vars(module).items() if isinstance(v, Step)]
        raise ConfigError(
            f"module '{module_name}' has no '{attr}'.{did_you_mean(attr, names)}"
            + (f" Its steps: {', '.join(sorted(names))}." if names else ""),
            key,
        )
    if not isinstance(obj, Step):
        raise ConfigError(
            f"'{target}' is not a step; decorate the function with @step (from mlops import step)",
            key,
        )
    return obj


def _signature(target: str, key: str) -> StepSignature:
    if not isinstance(target, str) or not target:
        raise ConfigError(
            "missing _target_: set it to the import path of the step function, "
            "e.g. mypackage.steps.train",
            key,
        )
    try:
        sig = read_step_signature(target)
    except StepDefinitionError as e:
        raise ConfigError(str(e), key) from e
    except SyntaxError as e:
        raise ConfigError(f"cannot read '{target}': {e}", key) from e
    if sig is not None:
        return sig
    step_obj = load_step(target, key)
    params = tuple(step_obj.signature.parameters)
    required = frozenset(
        n for n, p in step_obj.signature.parameters.items() if p.default is inspect.Parameter.empty
    )
    module, _, name = target.rpartition(".")
    parts = fingerprint_parts(step_obj.fn.__module__, step_obj.fn.__name__)
    if parts is None:  # no readable source file (a notebook, a generated function)
        try:
            parts = {target: token(inspect.getsource(step_obj.fn))}
        except (OSError, TypeError):
            parts = {target: _code_token(step_obj.fn.__code__)}
    return StepSignature(
        target,
        step_obj.name,
        params,
        required,
        step_obj.outputs,
        step_obj.enable_cache,
        token(sorted(parts.items())),
        tuple(parts.items()),
    )


def _code_token(code: Any) -> str:
    """A process-independent token of a code object (no reprs with memory addresses)."""
    consts = [
        _code_token(c) if inspect.iscode(c) else c
        for c in code.co_consts
        if c is None or inspect.iscode(c) or isinstance(c, (bool, int, float, str, bytes))
    ]
    return token(code.co_code, consts, list(code.co_names))


def _check_targets(steps_args: dict[str, dict[str, Any]]) -> None:
    """A step without ``_target_`` is most often a misspelt step name in an override."""
    named = [n for n, a in steps_args.items() if a.get(Keys.TARGET)]
    for name, args in steps_args.items():
        if args.get(Keys.TARGET) is None:
            hint = did_you_mean(name, named)
            raise ConfigError(
                "this step has no _target_: set it to the import path of the step function "
                "(e.g. mypackage.steps.train)"
                + (f", or fix the step's name in the override.{hint}" if hint else ""),
                f"steps.{name}",
            )


def _check_target_types(steps_args: dict[str, dict[str, Any]]) -> None:
    """``_target_`` is an import path: a number or a list there is not a missing target.

    Examples:
        >>> _check_target_types({"a": {"_target_": 123}})
        Traceback (most recent call last):
        ...
        mlops.errors.ConfigError: steps.a._target_: must be a string, the import path of the \
step function (e.g. mypackage.steps.train); got 123 (int)
    """
    for name, args in steps_args.items():
        target = args.get(Keys.TARGET)
        if target is not None and not isinstance(target, str):
            raise ConfigError(
                "must be a string, the import path of the step function (e.g. "
                f"mypackage.steps.train); got {target!r} ({type(target).__name__})",
                f"steps.{name}.{Keys.TARGET}",
            )


def _check_linked_outputs(
    model: ModelPlan | None,
    outputs: Mapping[str, Sequence[str]],
    deps: Mapping[str, Sequence[str]],
) -> None:
    """Two steps that run in parallel may not both make an output the new version links.

    The version a run registers links every output by name; when two steps that do not depend
    on each other both output ``score``, it would link whichever finished last.

    Examples:
        >>> m = ModelPlan("m", None, None)
        >>> _check_linked_outputs(m, {"a": ("score",), "b": ("score",)}, {"a": (), "b": ()})
        Traceback (most recent call last):
        ...
        mlops.errors.ConfigError: steps: steps 'a' and 'b' both output 'score' and neither runs \
after the other, so version N of model 'm' would link whichever finished last. Give one of them \
another output name (-> Annotated[T, "NAME"]).
        >>> _check_linked_outputs(m, {"a": ("score",), "b": ("score",)}, {"a": (), "b": ("a",)})
    """
    if model is None or not model.creates_version:
        return
    upstream: dict[str, set[str]] = {}

    def ancestors(step: str) -> set[str]:
        if step not in upstream:
            found: set[str] = set()
            for d in deps.get(step, ()):
                found |= {d, *ancestors(d)}
            upstream[step] = found
        return upstream[step]

    first: dict[str, list[str]] = {}
    for step, outs in outputs.items():
        for out in outs:
            for other in first.get(out, []):
                if other not in ancestors(step) and step not in ancestors(other):
                    raise ConfigError(
                        f"steps '{other}' and '{step}' both output '{out}' and neither runs after "
                        f"the other, so version N of model '{model.name}' would link whichever "
                        "finished last. Give one of them another output name (-> Annotated[T, "
                        '"NAME"]).',
                        "steps",
                    )
            first.setdefault(out, []).append(step)


def _container(value: Any, key: str) -> Any:
    """Plain Python for a config value, with references kept as marker objects."""
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        if isinstance(value, (DictConfig, ListConfig)):
            return OmegaConf.to_container(value, resolve=True)
        return value
    except OmegaConfBaseException as e:
        raise ConfigError(f"{e.msg if hasattr(e, 'msg') else e}", key) from e


def _read_steps(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    from omegaconf import DictConfig
    from omegaconf.errors import OmegaConfBaseException

    steps_cfg = cfg.get("steps")
    if not steps_cfg:
        raise ConfigError("the pipeline has no steps; add them under `steps:`", "steps")
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(steps_cfg, resolve=False)
    assert isinstance(raw, dict)
    out: dict[str, dict[str, Any]] = {}
    for raw_name, raw_args in raw.items():
        name = str(raw_name)
        key = f"steps.{name}"
        if isinstance(raw_args, dict):  # a mapping: read its values without OmegaConf if we can
            pairs = [(arg, _plain_value(value)) for arg, value in raw_args.items()]
        else:  # an interpolation to a mapping, or not a mapping: OmegaConf decides
            node = steps_cfg[name]
            if not isinstance(node, DictConfig):
                raise ConfigError(
                    f"a step must be a mapping with _target_ and its arguments, got {node!r}", key
                )
            pairs = [(arg, _RESOLVE) for arg in node]
        args: dict[str, Any] = {}
        for arg, value in pairs:
            if value is _RESOLVE:
                try:
                    value = _container(steps_cfg[name][arg], f"{key}.{arg}")
                except OmegaConfBaseException as e:
                    raise ConfigError(str(e).splitlines()[0], f"{key}.{arg}") from e
            args[str(arg)] = value
        out[name] = args
    return out


# Resolving an interpolation through OmegaConf runs its ANTLR parser (about 0.3 ms each), which
# dominated compiling a large pipeline. The common values need no resolution: literals without
# interpolations, and a plain ${step:NAME.OUTPUT}, whose resolver only splits the text. Anything
# else (other interpolations, escapes, missing values, names OmegaConf would read as null, bool,
# inf or nan) still goes through OmegaConf.
_RESOLVE = object()
_PLAIN_STEP_REF = re.compile(r"\$\{step:([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?\}")
_GRAMMAR_WORDS = frozenset({"null", "true", "false", "inf", "nan"})


def _plain_value(raw: Any) -> Any:
    """The value of an unresolved config value that needs no resolution; ``_RESOLVE`` otherwise.

    Examples:
        >>> _plain_value("${step:split.X_train}")
        StepOutputRef(step='split', output='X_train')
        >>> _plain_value({"a": [1, "x"]})
        {'a': [1, 'x']}
        >>> _plain_value("${oc.env:HOME}") is _RESOLVE, _plain_value("???") is _RESOLVE
        (True, True)
    """
    if isinstance(raw, str):
        m = _PLAIN_STEP_REF.fullmatch(raw)
        if m is not None:
            if m.group(1).lower() in _GRAMMAR_WORDS and m.group(2) is None:
                return _RESOLVE
            return StepOutputRef(m.group(1), m.group(2))
        return _RESOLVE if "${" in raw or raw == "???" else raw
    if isinstance(raw, dict):
        items = list(raw.keys()) + list(raw.values())
    elif isinstance(raw, list):
        items = raw
    else:
        return raw
    for item in items:
        if isinstance(item, (str, dict, list)) and _plain_value(item) is _RESOLVE:
            return _RESOLVE
        if isinstance(item, str) and _PLAIN_STEP_REF.fullmatch(item):
            return _RESOLVE  # a reference nested in a container: let _bind report it
    return raw


def _resolve_model(cfg: DictConfig, models: ModelResolver | None) -> ModelPlan | None:
    model_cfg = cfg.get("model") or {}
    name = model_cfg.get("name")
    requested = model_cfg.get("version")
    if name is None:
        if requested is not None:
            raise ConfigError(
                f"model.version={requested} is set but model.name is not; name the model",
                "model.name",
            )
        return None
    from .names import check_name

    try:
        check_name("model", name)
    except MlopsError as e:
        raise ConfigError(str(e), "model.name") from e
    if requested is None:
        return ModelPlan(name, None, None)
    if models is None:  # pragma: no cover - compile without a registry is for tests only
        raise ConfigError("resolving a model version needs a registry", "model.version")
    try:
        mv = models.resolve(name, requested)
    except MlopsError as e:
        raise ConfigError(str(e), "model.version") from e
    return ModelPlan(name, requested, mv.number)


def _bind(
    name: str,
    args: dict[str, Any],
    sig: StepSignature,
    model: ModelPlan | None,
    models: ModelResolver | None,
    outputs: Mapping[str, tuple[str, ...]],
    files: _Files,
) -> tuple[dict[str, Any], dict[str, Input]]:
    params: dict[str, Any] = {}
    inputs: dict[str, Input] = {}
    for arg, value in args.items():
        if arg == Keys.TARGET:
            continue
        key = f"steps.{name}.{arg}"
        if arg not in sig.params:
            raise ConfigError(
                f"{sig.target}() has no parameter '{arg}'.{did_you_mean(arg, sig.params)} "
                f"Its parameters: {', '.join(sig.params) or '(none)'}.",
                key,
            )
        if isinstance(value, StepOutputRef):
            if value.step not in outputs:
                raise UnknownStepError(
                    f"{value} refers to step '{value.step}', which this pipeline does not have."
                    f"{did_you_mean(value.step, outputs)} Steps: {', '.join(outputs)}.",
                    key,
                )
            available = outputs[value.step]
            output = value.output
            if output is None:
                if len(available) != 1:
                    example = available[0] if available else "x"
                    raise UnknownStepError(
                        f"step '{value.step}' has outputs {', '.join(available) or '(none)'}; "
                        f"name one, e.g. ${{step:{value.step}.{example}}}",
                        key,
                    )
                output = available[0]
            elif output not in available:
                raise UnknownStepError(
                    f"step '{value.step}' has no output '{output}'."
                    f"{did_you_mean(output, available)} Its outputs: "
                    f"{', '.join(available) or '(none)'}.",
                    key,
                )
            inputs[arg] = StepInput(value.step, output)
        elif isinstance(value, (ModelArtifactRef, ArtifactInputRef)):
            inputs[arg] = _artifact_input(value, model, models, key)
        elif isinstance(value, FileRef):
            inputs[arg] = files.input(value, key)
        elif isinstance(value, ObjectRef):  # ExternalArtifact(value=...) of a Python pipeline
            inputs[arg] = StoredInput(ArtifactRef(value.id, value.format, int(value.size)))
        elif _contains_ref(value):
            raise ConfigError(
                "references (${step:...}, ${model:...}, ${artifact:...}, ${file:...}) must be the "
                "whole value of a step argument, not nested in a list or mapping",
                key,
            )
        else:
            params[arg] = value
    missing = [p for p in sig.params if p in sig.required and p not in params and p not in inputs]
    if missing:
        arg = missing[0]
        raise ConfigError(
            f"missing argument '{arg}' of {sig.target}(): set steps.{name}.{arg} to a value, or "
            f"to a reference such as ${{step:OTHER_STEP.OUTPUT}}",
            f"steps.{name}",
        )
    return params, inputs


def _contains_ref(value: Any) -> bool:
    if isinstance(value, (StepOutputRef, ModelArtifactRef, ArtifactInputRef, FileRef, ObjectRef)):
        return True
    if isinstance(value, dict):
        return any(_contains_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_ref(v) for v in value)
    return False


def _artifact_input(
    ref: ModelArtifactRef | ArtifactInputRef,
    model: ModelPlan | None,
    models: ModelResolver | None,
    key: str,
) -> ArtifactInput:
    if isinstance(ref, ModelArtifactRef):
        if model is None:
            raise ConfigError(
                f"{ref} reads the pipeline's model, but the pipeline has no model: add a "
                "`model:` block with name and version",
                key,
            )
        if model.number is None:
            raise ConfigError(
                f"{ref} reads an artifact of the pipeline's model version, but model.version is "
                "null (this run registers a new version, which has no artifacts yet). Set "
                "model.version to a number, latest or a stage, e.g. model.version=production",
                key,
            )
        name, requested, number = model.name, str(model.requested), model.number
    else:
        name, requested, number = ref.model, ref.version, None
    assert models is not None
    try:
        mv = models.resolve(name, number if number is not None else requested)
        artifact = mv.get_artifact_ref(ref.output)
    except MlopsError as e:
        raise ConfigError(str(e), key) from e
    return ArtifactInput(ref.output, name, mv.number, requested, artifact)


class _Files:
    """Identifies declared input files once per compile (see :mod:`mlops.file_inputs`)."""

    def __init__(self, base: str, stamps: StampSource | None) -> None:
        self.base = base
        from .file_inputs import NoStamps

        self.stamps: StampSource = stamps if stamps is not None else NoStamps()
        self.fresh: dict[str, FileStamp] = {}
        self._seen: dict[str, FileInput] = {}

    def input(self, ref: FileRef, key: str) -> FileInput:
        if not ref.path:
            raise ConfigError("${file:...} needs a path, e.g. ${file:data/train.csv}", key)
        if ref.path not in self._seen:
            from .file_inputs import identify

            try:
                ident, fresh = identify(ref.path, self.base, self.stamps)
            except FileNotFoundError as e:
                raise ConfigError(
                    f"file '{ref.path}' does not exist (looked for {e.args[0] if e.args else ''})"
                    "; check the path (relative paths are read from the folder you run in)",
                    key,
                ) from None
            except OSError as e:
                raise ConfigError(f"cannot read file '{ref.path}': {e}", key) from e
            self.fresh.update(fresh)
            self._seen[ref.path] = FileInput(ref.path, ident.digest)
        return self._seen[ref.path]


def _order(deps: dict[str, tuple[str, ...]]) -> list[str]:
    """Steps in an order that runs every step after what it reads; config order among equals.

    Examples:
        >>> _order({"b": ("a",), "a": ()})
        ['a', 'b']
    """
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name, ds in deps.items():
        sorter.add(name, *ds)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as e:
        raise CycleError(_cycle_path(e.args[1], list(deps))) from None


def _cycle_path(found: list[str], config_order: list[str]) -> list[str]:
    """graphlib's cycle (each step feeds the next), started at the step listed first in the config.

    Examples:
        >>> _cycle_path(["c", "a", "b", "c"], ["a", "b", "c"])
        ['a', 'b', 'c', 'a']
    """
    loop = found[:-1]
    start = min(range(len(loop)), key=lambda i: config_order.index(loop[i]))
    loop = loop[start:] + loop[:start]
    return [*loop, loop[0]]


def _check_names(pipeline: Any, steps: Any) -> None:
    """Pipeline and step names become paths in the registry: reject '/', '..' and the like."""
    _check_names_of("pipeline", pipeline, "pipeline.name")
    for s in steps:
        _check_names_of("step", s, f"steps.{s}")


def _check_names_of(kind: str, name: Any, key: str) -> None:
    from .names import check_name

    try:
        check_name(kind, name)
    except MlopsError as e:
        raise ConfigError(str(e), key) from e


def compile_pipeline(
    cfg: DictConfig,
    models: ModelResolver | None,
    *,
    base_dir: str | None = None,
    file_stamps: StampSource | None = None,
) -> Plan:
    """Compile a composed config into a :class:`Plan` (see the module docstring).

    Args:
        models: resolves model references (``registry.models``); None compiles pipelines that
            read no model version.
        base_dir: where relative ``${file:...}`` paths are read (default: the current folder).
        file_stamps: remembered hashes of declared input files (``registry.cache``).
    """
    pipeline_cfg = cfg.get("pipeline") or {}
    pipeline = pipeline_cfg.get("name")
    if not pipeline:
        raise ConfigError("no pipeline selected: run with +pipeline=NAME", "pipeline.name")
    enable_cache = bool(pipeline_cfg.get("enable_cache", True))
    _check_names(pipeline, cfg.get("steps") or {})
    model = _resolve_model(cfg, models)
    steps_args = _read_steps(cfg)
    _check_targets(steps_args)
    _check_target_types(steps_args)
    sigs: dict[str, StepSignature] = {}
    by_target: dict[Any, StepSignature] = {}  # many steps often share one function
    with signature_session():  # each source file is checked once for the whole pipeline
        for name, args in steps_args.items():
            target: Any = args.get(Keys.TARGET)
            if not isinstance(target, str) or target not in by_target:
                sig = _signature(target, f"steps.{name}._target_")
                if isinstance(target, str):
                    by_target[target] = sig
            sigs[name] = by_target[target] if isinstance(target, str) else sig
    if not (cfg.get("cache") or {}).get("track_libraries", True):
        sigs = {name: without_libraries(sig) for name, sig in sigs.items()}
    outputs = {name: sig.outputs for name, sig in sigs.items()}
    for name, sig in sigs.items():
        for out in sig.outputs:
            _check_names_of("artifact", out, f"steps.{name}._target_")
    import os

    files = _Files(base_dir or os.getcwd(), file_stamps)
    bound = {
        name: _bind(name, args, sigs[name], model, models, outputs, files)
        for name, args in steps_args.items()
    }
    deps = {
        name: tuple(dict.fromkeys(i.step for i in inputs.values() if isinstance(i, StepInput)))
        for name, (_, inputs) in bound.items()
    }
    order = _order(deps)
    _check_linked_outputs(model, outputs, deps)
    static: dict[str, str] = {}
    graph: dict[str, str] = {}
    steps: dict[str, StepPlan] = {}
    for name in order:
        sig = sigs[name]
        params, inputs = bound[name]
        try:
            params_token = token({k: _ordered(v) for k, v in params.items()})
        except MlopsError as e:
            raise ConfigError(str(e), f"steps.{name}") from e
        # The step's own ingredients: what the cache key is made of, together with the content
        # hashes of its step inputs at run time. Upstream steps enter only through those content
        # hashes (early cutoff), never through their keys.
        static[name] = token(
            "step",
            FORMAT_VERSION,
            sig.code_hash,
            params_token,
            {arg: _input_token(i) for arg, i in inputs.items()},
        )
        # The graph key also names what is upstream, so that in a graph combining several jobs
        # (a sweep) two steps are one task only if everything they depend on is the same.
        upstream = {arg: graph[i.step] for arg, i in inputs.items() if isinstance(i, StepInput)}
        graph[name] = token(static[name], upstream)
        steps[name] = StepPlan(
            name=name,
            target=sig.target,
            signature=sig,
            params=params,
            inputs=inputs,
            deps=deps[name],
            graph_key=f"{name}-{graph[name]}",
            static_key=static[name],
            enable_cache=sig.enable_cache,
        )
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(config, dict)
    return Plan(
        pipeline,
        model,
        steps,
        enable_cache,
        {str(k): v for k, v in config.items()},
        files.fresh,
    )


class _OrderedDict:
    """A dict param as the step sees it: its keys in their order (``",".join(d)`` depends on it).

    Only nested values are wrapped, so the keys of params without dicts are unchanged.
    """

    def __init__(self, items: list[tuple[Any, Any]]) -> None:
        self.items = items

    def __mlops_token__(self) -> Any:
        return ["ordered-dict", [[k, v] for k, v in self.items]]


def _ordered(value: Any) -> Any:
    """``value`` with every dict in it made order-sensitive for hashing.

    Examples:
        >>> token(_ordered({"a": 1, "b": 2})) != token(_ordered({"b": 2, "a": 1}))
        True
        >>> token(_ordered([1, "x"])) == token([1, "x"])
        True
    """
    if isinstance(value, dict):
        return _OrderedDict([(k, _ordered(v)) for k, v in value.items()])
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def _input_token(i: Input) -> tuple[Any, ...]:
    """What an input contributes to its step's static key (step inputs add content at run time)."""
    if isinstance(i, StepInput):
        return ("step", i.output)
    if isinstance(i, ArtifactInput):
        return ("artifact", i.model, i.version, i.artifact.id)
    if isinstance(i, StoredInput):
        return ("stored", i.artifact.id)
    return ("file", i.digest)
