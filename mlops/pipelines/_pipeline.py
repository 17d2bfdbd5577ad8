"""``@pipeline``: a Python function whose body declares a pipeline by calling steps."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

from ..errors import ConfigError
from ._model import Model
from ._tracing import TracedPipeline, trace

if TYPE_CHECKING:
    from ..run_store import Run

__all__ = ["Pipeline", "pipeline"]


class Pipeline:
    """A pipeline declared in Python. Make one with :func:`pipeline`.

    Its body is traced (run once, with step calls recorded) into the config a YAML pipeline is;
    from there on it is compiled, keyed and cached exactly like one.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        model: Model | None = None,
        enable_cache: bool = True,
    ) -> None:
        if model is not None and not isinstance(model, Model):
            raise ConfigError(
                f"@pipeline(model=...) takes a Model(name=..., version=...), got {model!r}"
            )
        self.fn = fn
        self.name = name or fn.__name__
        self.model = model
        self.enable_cache = bool(enable_cache)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def trace(self, *args: Any, **kwargs: Any) -> TracedPipeline:
        """Trace the body with these arguments (the pipeline function's own parameters)."""
        return trace(
            self.fn,
            name=self.name,
            model=self.model,
            enable_cache=self.enable_cache,
            args=args,
            kwargs=kwargs,
        )

    def to_config(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The pipeline config (plain data) this pipeline traces to; nothing is stored.

        Examples:
            >>> from mlops.examples.iris.promotion import promote
            >>> @pipeline(name="p")
            ... def p():
            ...     promote(accuracy=0.95)
            >>> p.to_config()["steps"]
            {'promote': {'_target_': 'mlops.examples.iris.promotion.promote', 'accuracy': 0.95}}
        """
        return self.trace(*args, **kwargs).to_config()

    def run(
        self,
        overrides: Sequence[str] = (),
        *,
        quiet: bool = False,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Run:
        """Run the pipeline with Hydra overrides, as ``python -m mlops`` would.

        Args:
            overrides: the command line's overrides, e.g. ``["registry.uri=/tmp/reg",
                "model.version=latest", "steps.predict.batch_size=64", "executor=sync"]``.
            quiet: do not print progress.
            args: positional arguments of the pipeline function.
            kwargs: keyword arguments of the pipeline function.

        Returns:
            The run record.
        """
        # through the package's public entry point (as user code would call it), which the
        # front end above this package provides: the tracing here never depends on running
        import mlops

        return mlops.run_pipeline(self, overrides, quiet=quiet, args=tuple(args), kwargs=kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Run:
        """Run the pipeline with the default config (registry ``.mlops`` in the current folder)."""
        return self.run(args=args, kwargs=kwargs)

    def __repr__(self) -> str:
        return f"<Pipeline {self.name} ({self.fn.__module__}.{self.fn.__qualname__})>"


@overload
def pipeline(fn: Callable[..., Any], /) -> Pipeline: ...
@overload
def pipeline(
    *,
    name: str | None = None,
    model: Model | None = None,
    model_config: Model | None = None,
    model_version: Model | None = None,
    enable_cache: bool = True,
) -> Callable[[Callable[..., Any]], Pipeline]: ...
def pipeline(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    model: Model | None = None,
    model_config: Model | None = None,
    model_version: Model | None = None,
    enable_cache: bool = True,
) -> Pipeline | Callable[[Callable[..., Any]], Pipeline]:
    """Make ``fn`` a pipeline: calling steps in its body declares the pipeline's steps.

    Args:
        fn: the function; its body calls steps and passes their outputs on.
        name: the pipeline's name (default: the function's name).
        model: the model the pipeline registers (``version=None``) or reads (a number,
            ``"latest"`` or a stage). ``model_config=`` and ``model_version=`` are ZenML's
            older spellings of it.
        enable_cache: False runs every step every time.

    Example::

        @pipeline(model=Model(name="iris_classifier", version=ModelStages.PRODUCTION))
        def do_predictions():
            model_version = get_pipeline_context().model_version
            predict(model=model_version.get_model_artifact("trained_model"), data=load_data())

    .. versionadded:: 0.2.0
    """
    given = [m for m in (model, model_config, model_version) if m is not None]
    if len(given) > 1:
        raise ConfigError("@pipeline takes one of model=, model_config= and model_version=")
    the_model = given[0] if given else None

    def make(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, model=the_model, enable_cache=enable_cache)

    return make(fn) if fn is not None else make
