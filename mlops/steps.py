"""Steps: plain Python functions made pipeline steps with :func:`step`.

A step's parameters are its inputs (filled from other steps' outputs or model artifacts) and its
params (literal values from the config); the compiler tells them apart by what the config binds to
them. Its return annotation names its outputs::

    @step
    def split(data: pd.DataFrame, test_size: float = 0.3) -> Tuple[
        Annotated[pd.DataFrame, "X_train"], Annotated[pd.DataFrame, "X_test"]
    ]: ...

An unannotated step has one output named ``output``; ``-> None`` has none.
"""

from __future__ import annotations

import contextvars
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from .errors import MlopsError, StepDefinitionError

if TYPE_CHECKING:
    from .models import ModelVersion

__all__ = ["Step", "StepContext", "get_step_context", "output_names", "step"]

F = TypeVar("F", bound=Callable[..., Any])


def output_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """Output names of ``fn`` from its return annotation.

    Examples:
        >>> from typing import Annotated, Tuple
        >>> def f() -> Tuple[Annotated[int, "a"], Annotated[str, "b"]]: ...
        >>> output_names(f)
        ('a', 'b')
        >>> def g(): ...
        >>> output_names(g)
        ('output',)
    """
    where = f"step {fn.__module__}.{fn.__qualname__}"
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward refs: fall back to the source text
        import ast

        from .fingerprint import outputs_from_annotation

        ret = inspect.signature(fn).return_annotation
        if ret is inspect.Signature.empty:
            return ("output",)
        node = ast.parse(ret if isinstance(ret, str) else repr(ret), mode="eval").body
        return outputs_from_annotation(node, where)
    if "return" not in hints:
        return ("output",)
    ret = hints["return"]
    if ret is type(None):
        return ()

    def name_of(tp: Any) -> str | None:
        if typing.get_origin(tp) is typing.Annotated:
            names = [m for m in tp.__metadata__ if isinstance(m, str)]
            if len(names) != 1:
                raise StepDefinitionError(
                    f"{where}: Annotated[...] needs exactly one string, the output's name, "
                    'e.g. Annotated[pd.DataFrame, "features"]'
                )
            return names[0]
        return None

    single = name_of(ret)
    if single is not None:
        return (single,)
    if typing.get_origin(ret) is tuple:
        names = [name_of(a) for a in typing.get_args(ret)]
        if names and all(names):
            result = tuple(n for n in names if n)
            if len(set(result)) != len(result):
                raise StepDefinitionError(f"{where}: output names must be unique, got {result}")
            return result
        if any(names):
            raise StepDefinitionError(
                f"{where}: name every output of a tuple return, e.g. "
                'Tuple[Annotated[X, "a"], Annotated[Y, "b"]]'
            )
    return ("output",)


class Step(Generic[F]):
    """A function made a pipeline step. Calling it calls the function, so steps stay testable.

    Use :func:`step` to make one.
    """

    def __init__(self, fn: F, *, name: str | None = None, enable_cache: bool = True) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.enable_cache = enable_cache
        self.signature = inspect.signature(fn)
        for p in self.signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise StepDefinitionError(
                    f"step {fn.__module__}.{fn.__qualname__}: *args and **kwargs are not "
                    "allowed in a step"
                )
        self.outputs = output_names(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__module__ = fn.__module__
        self.__qualname__ = fn.__qualname__
        self.__name__ = fn.__name__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        hook = _CALL_HOOK.get()
        if hook is not None:  # inside a pipeline's body (mlops.pipelines): record, do not run
            return hook(self, args, kwargs)
        return self.fn(*args, **kwargs)

    def with_options(self, *, name: str) -> Step[F]:
        """This step under another name: in a Python pipeline, its key under ``steps:``.

        .. versionadded:: 0.2.0
        """
        return Step(self.fn, name=name, enable_cache=self.enable_cache)

    def __repr__(self) -> str:
        return f"<Step {self.name} ({self.fn.__module__}.{self.fn.__qualname__})>"


# Set by mlops.pipelines while a pipeline's body is traced: a step called there is recorded as a
# node of the pipeline (the hook returns handles to its outputs) instead of being run.
_CALL_HOOK: contextvars.ContextVar[
    Callable[[Step[Any], tuple[Any, ...], dict[str, Any]], Any] | None
] = contextvars.ContextVar("mlops_step_call_hook", default=None)


@overload
def step(fn: F, /) -> Step[F]: ...
@overload
def step(*, name: str | None = None, enable_cache: bool = True) -> Callable[[F], Step[F]]: ...
def step(
    fn: F | None = None, /, *, name: str | None = None, enable_cache: bool = True
) -> Step[F] | Callable[[F], Step[F]]:
    """Make ``fn`` a pipeline step.

    Args:
        fn: the function; its parameters are the step's inputs and params.
        name: the step's name in progress lines and errors (default: the function's name).
        enable_cache: ``False`` for a step that must run every time, such as one with side
            effects (promoting a model, sending a report).

    Examples:
        >>> from typing import Annotated
        >>> @step
        ... def double(x: int) -> Annotated[int, "doubled"]:
        ...     return 2 * x
        >>> double.outputs, double(2)
        (('doubled',), 4)
    """
    if fn is not None:
        return Step(fn, name=name, enable_cache=enable_cache)
    return lambda f: Step(f, name=name, enable_cache=enable_cache)


@dataclass
class StepContext:
    """What a running step can ask about itself: ``mlops.get_step_context()`` returns it.

    Attributes:
        step_name: the step's key in the pipeline config.
        run_id: the id of the run the step belongs to.
        pipeline_name: the pipeline's name.
    """

    step_name: str
    run_id: str
    pipeline_name: str
    #: the pipeline's model version (set by the executor), and whether this run registers it
    version: ModelVersion | None = field(default=None, repr=False)
    creates_version: bool = field(default=False, repr=False)
    #: what the step did with the model version: (name, number, created by this run) per read,
    #: metadata it logged for this run's version, stage changes it asked for (stage, force)
    model_reads: list[tuple[str, int, bool]] = field(default_factory=list, repr=False)
    logged_metadata: dict[str, Any] = field(default_factory=dict, repr=False)
    stage_requests: list[tuple[str, bool]] = field(default_factory=list, repr=False)

    @property
    def model_version(self) -> ModelVersion:
        """The pipeline's model version: the one this run registers, or the one it resolved.

        Reading it is recorded, and the step's cache entry is only reused while the same concrete
        version is resolved.
        """
        mv = self.version
        if mv is None:
            raise MlopsError(
                f"step '{self.step_name}' asked for the model version, but the pipeline has no "
                "model: add a `model:` block with `name:` to the pipeline config."
            )
        entry = (mv.name, mv.number, self.creates_version)
        if entry not in self.model_reads:
            self.model_reads.append(entry)
        return mv


_CURRENT: contextvars.ContextVar[StepContext | None] = contextvars.ContextVar(
    "mlops_step_context", default=None
)


def get_step_context() -> StepContext:
    """The context of the step that is running in this thread.

    Raises:
        MlopsError: when called outside a running step.
    """
    ctx = _CURRENT.get()
    if ctx is None:
        raise MlopsError("get_step_context() was called outside a running step")
    return ctx


def _set_context(ctx: StepContext | None) -> contextvars.Token[StepContext | None]:
    return _CURRENT.set(ctx)


def _reset_context(tok: contextvars.Token[StepContext | None]) -> None:
    _CURRENT.reset(tok)
