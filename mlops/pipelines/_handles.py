"""Handles: what a step call in a pipeline's body returns, standing for data not made yet.

A handle is written into the config as a reference (``${step:STEP.OUTPUT}``, ``${model:NAME}``).
The body runs once, before any step, so using a handle as a value (``len(h)``, ``if h > 0.9``,
``f"{h}"``, ``h + 1``) can only be a mistake: each such use raises
:class:`PipelineDefinitionError` saying so, rather than giving a meaningless answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import MlopsError

if TYPE_CHECKING:
    from ._tracing import _Trace

__all__ = ["ModelArtifactHandle", "OutputHandle", "PipelineDefinitionError"]


class PipelineDefinitionError(MlopsError, TypeError):
    """A Python pipeline that cannot be traced; names the pipeline, step and argument.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        message: str,
        *,
        pipeline: str | None = None,
        step: str | None = None,
        argument: str | None = None,
    ) -> None:
        self.pipeline, self.step, self.argument = pipeline, step, argument
        where = [
            f"{kind} '{name}'"
            for kind, name in (("pipeline", pipeline), ("step", step), ("argument", argument))
            if name
        ]
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class _Handle:
    """Something that only exists when the pipeline runs; any use as a value is an error."""

    __slots__ = ("_trace",)

    def __init__(self, trace: _Trace) -> None:
        self._trace = trace

    def _what(self) -> str:
        raise NotImplementedError

    def _misuse(self, use: str) -> NoReturn:
        raise PipelineDefinitionError(
            f"{use} used {self._what()} as a value while the pipeline's body was being traced. "
            "The body runs once, to build the graph, and data exists only when the steps run: "
            "pass the handle to a step as an argument and compute with it inside that step.",
            pipeline=self._trace.pipeline,
        )

    def __bool__(self) -> bool:
        self._misuse("`if`/`bool()`")

    def __len__(self) -> int:
        self._misuse("len()")

    def __iter__(self) -> Any:
        self._misuse("iterating over it (or unpacking it)")

    def __contains__(self, item: Any) -> bool:
        self._misuse("`in`")

    def __getitem__(self, key: Any) -> Any:
        self._misuse(f"indexing ([{key!r}])")

    def __str__(self) -> str:
        self._misuse("str() or formatting")

    def __format__(self, spec: str) -> str:
        self._misuse("an f-string or format()")

    def __int__(self) -> int:
        self._misuse("int()")

    def __float__(self) -> float:
        self._misuse("float()")

    def __index__(self) -> int:
        self._misuse("an index")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._misuse("calling it")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocols probed by copy, pickle, numpy: not supported
            raise AttributeError(name)
        self._misuse(f"`.{name}`")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Handle):
            return self is other
        self._misuse("`==`")

    def __ne__(self, other: object) -> bool:
        if isinstance(other, _Handle):
            return self is not other
        self._misuse("`!=`")

    __hash__ = object.__hash__


def _operator(symbol: str) -> Callable[..., Any]:
    def method(self: _Handle, *args: Any) -> Any:
        self._misuse(f"`{symbol}`")

    return method


for _name, _symbol in {
    "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "add": "+", "sub": "-", "mul": "*",
    "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**", "matmul": "@", "and": "&",
    "or": "|", "xor": "^", "lshift": "<<", "rshift": ">>", "neg": "unary -", "pos": "unary +",
    "abs": "abs()", "invert": "~", "round": "round()",
}.items():  # fmt: skip
    setattr(_Handle, f"__{_name}__", _operator(_symbol))
    if _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and",
                 "or", "xor", "lshift", "rshift"):  # fmt: skip
        setattr(_Handle, f"__r{_name}__", _operator(_symbol))


class OutputHandle(_Handle):
    """An output of a step called in a pipeline's body: ``${step:STEP.OUTPUT}`` in the config.

    .. versionadded:: 0.2.0
    """

    __slots__ = ("output", "step")

    def __init__(self, trace: _Trace, step: str, output: str) -> None:
        super().__init__(trace)
        self.step = step
        self.output = output

    def _what(self) -> str:
        return f"output '{self.output}' of step '{self.step}'"

    def reference(self) -> str:
        return f"${{step:{self.step}.{self.output}}}"

    def __repr__(self) -> str:
        return f"<output {self.output} of step {self.step}>"


class ModelArtifactHandle(_Handle):
    """An artifact of the pipeline's model version: ``${model:NAME}`` in the config.

    .. versionadded:: 0.2.0
    """

    __slots__ = ("output",)

    def __init__(self, trace: _Trace, output: str) -> None:
        super().__init__(trace)
        self.output = output

    def _what(self) -> str:
        return f"model artifact '{self.output}'"

    def reference(self) -> str:
        return f"${{model:{self.output}}}"

    def __repr__(self) -> str:
        return f"<model artifact {self.output}>"
