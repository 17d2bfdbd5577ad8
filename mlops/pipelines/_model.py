"""``Model``: which model a Python pipeline registers or reads, as the config's ``model:`` block.

``mlops.ModelVersion`` is two things, as on ZenML's pages: *called*, it is the old spelling of
:class:`Model` (``@pipeline(model_config=ModelVersion(name=..., version=...))``); as a *type*, it
is the registry's version record (:class:`mlops.registry.ModelVersion`), so
``isinstance(get_step_context().model_version, mlops.ModelVersion)`` holds and a spec made by
calling it is a :class:`Model`, never a record.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

__all__ = ["Model", "ModelVersion"]

# the stages and aliases a version may name (mlops.registry.ModelStages, without importing it)
_NAMED_VERSIONS = ("latest", "staging", "production", "archived", "none")


def _normalize_version(version: Any) -> int | str | None:
    """The config value for a requested version: None, a number, ``latest`` or a stage.

    Examples:
        >>> _normalize_version("3"), _normalize_version(3), _normalize_version(None)
        (3, 3, None)
        >>> _normalize_version("Production")
        'production'
    """
    if isinstance(version, enum.Enum):  # ModelStages.PRODUCTION
        version = version.value
    if version is None:
        return None
    if isinstance(version, bool):
        raise ConfigError(f"a model version is a number, 'latest' or a stage, got {version!r}")
    if isinstance(version, int):
        return version
    if isinstance(version, str):
        text = version.strip()
        if text.isdigit():
            return int(text)
        if text.lower() in _NAMED_VERSIONS:
            return text.lower()
    raise ConfigError(
        f"a model version is None (register a new one), a number, or one of "
        f"{', '.join(_NAMED_VERSIONS)}; got {version!r}"
    )


@dataclass(frozen=True)
class Model:
    """The model of a pipeline: its name and the version it registers or reads.

    Args:
        name: the model's name in the registry, e.g. ``iris_classifier``.
        version: None (each run registers a new version), a number, ``"latest"``, or a stage
            (``"production"``, ``ModelStages.PRODUCTION`` ...), resolved once when the pipeline
            is compiled.
        description: for the versions the pipeline registers (``model.description``).
        tags: for the versions the pipeline registers (``model.tags``).

    Examples:
        >>> Model("iris_classifier", "production").to_config()
        {'name': 'iris_classifier', 'version': 'production'}

    .. versionadded:: 0.2.0
    """

    name: str
    version: int | str | None = None
    description: str | None = None
    tags: Sequence[str] = field(default=())  # kept as a tuple

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"Model(name=...) must be a model's name, got {self.name!r}")
        object.__setattr__(self, "version", _normalize_version(self.version))
        tags: Sequence[Any] = (self.tags,) if isinstance(self.tags, str) else self.tags
        object.__setattr__(self, "tags", tuple(str(t) for t in tags))

    @property
    def creates_version(self) -> bool:
        """True when a run of the pipeline registers a new version (``version`` is None)."""
        return self.version is None

    def to_config(self) -> dict[str, Any]:
        """The ``model:`` block of a pipeline config."""
        out: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.description is not None:
            out["description"] = self.description
        if self.tags:
            out["tags"] = list(self.tags)
        return out


class _ModelVersionType(type):
    """``isinstance`` and ``issubclass`` check for the registry's version record."""

    def __instancecheck__(cls, obj: Any) -> bool:
        from ..models import ModelVersion as Record

        return isinstance(obj, Record)

    def __subclasscheck__(cls, sub: type) -> bool:
        from ..models import ModelVersion as Record

        return issubclass(sub, Record)

    def __getattr__(cls, name: str) -> Any:  # the record's methods, for help() and docs
        from ..models import ModelVersion as Record

        return getattr(Record, name)


if TYPE_CHECKING:  # to a type checker, an annotation `mv: mlops.ModelVersion` is the record
    from ..models import ModelVersion as _RecordForTypes
else:  # at run time nothing is imported (the registry pulls in storage)
    _RecordForTypes = object


class ModelVersion(_RecordForTypes, metaclass=_ModelVersionType):
    """A model version: ``ModelVersion(name=..., version=...)`` is :class:`Model` (ZenML's
    spelling); ``isinstance(x, ModelVersion)`` is true for the registry's version records
    (:class:`mlops.registry.ModelVersion`: name, number, run, artifacts, metadata).

    .. versionchanged:: 0.2.0
       Calling it makes a :class:`Model` for ``@pipeline(model_config=...)``.
    """

    def __new__(  # type: ignore[misc]  # by design: the spec, never an instance of this class
        cls,
        name: str,
        version: int | str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
    ) -> Model:
        return Model(name, version, description, tuple(tags))
