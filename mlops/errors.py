"""Exceptions raised by mlops.

Every error a user can cause derives from :class:`MlopsError` and from the builtin that
matches it, so ``except ValueError`` keeps working for code that does not know mlops::

    MlopsError
    ├── ConfigError (ValueError)            bad pipeline config; carries ``key``
    │   ├── UnknownStepError (LookupError)  a reference to a step or output that does not exist
    │   └── CycleError                      steps that depend on each other in a loop
    ├── StepDefinitionError (TypeError)     a function that cannot be a step
    ├── ModelNotFoundError (LookupError)    no such model, version or stage holder
    ├── RunNotFoundError (LookupError)      no run with that id
    ├── StageError (ValueError)             an invalid stage change
    ├── InvalidNameError (ValueError)       a name with ``/``, ``..`` or control characters
    ├── RegistryError (OSError)             the registry cannot be reached or read
    │   └── DamagedRecordError (ValueError) a record that exists but cannot be read (``path``)
    ├── ArtifactError (ValueError)          an artifact cannot be stored, loaded or verified
    ├── HashingError (TypeError)            a value that cannot be hashed deterministically
    └── StepFailedError (RuntimeError)      a step raised; carries ``step`` and chains the cause

The command line prints the message of an ``MlopsError`` without a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ArtifactError",
    "ConfigError",
    "CycleError",
    "DamagedRecordError",
    "HashingError",
    "InvalidNameError",
    "MlopsError",
    "ModelNotFoundError",
    "RegistryError",
    "RunNotFoundError",
    "StageError",
    "StepDefinitionError",
    "StepFailedError",
    "UnknownStepError",
    "describe",
    "did_you_mean",
]


class MlopsError(Exception):
    """Root of every error mlops raises on purpose."""


class ConfigError(MlopsError, ValueError):
    """The pipeline config is wrong; ``key`` is the full config key, e.g. ``steps.train.C``."""

    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


class UnknownStepError(ConfigError, LookupError):
    """A reference names a step or output that the pipeline does not have."""


class CycleError(ConfigError):
    """Steps depend on each other in a loop; ``cycle`` lists it, first step repeated last."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__(
            "the steps form a cycle: "
            + " -> ".join(cycle)
            + ". Remove one of these references so that the steps can be ordered.",
            key="steps",
        )


class StepDefinitionError(MlopsError, TypeError):
    """A function that cannot be made a step (bad annotation, *args, ...)."""


class ModelNotFoundError(MlopsError, LookupError):
    """No such model, version, or no version holds the requested stage."""

    def __str__(self) -> str:  # LookupError's KeyError-like quoting is not wanted
        return str(self.args[0]) if self.args else ""


class RunNotFoundError(ModelNotFoundError):
    """No run with the given id in the registry."""


class StageError(MlopsError, ValueError):
    """An invalid stage name or a stage change that needs ``force``."""


class InvalidNameError(MlopsError, ValueError):
    """A model, artifact, step or pipeline name that is not allowed in the registry."""


class RegistryError(MlopsError, OSError):
    """The registry at ``uri`` cannot be reached, read or written."""

    def __init__(self, message: str, uri: str | None = None) -> None:
        self.uri = uri
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class DamagedRecordError(RegistryError, ValueError):
    """A registry record exists but is not what it must be (truncated, garbage, wrong shape).

    Readers never fall back to an older state when they meet one: they raise this, naming the
    record (``path``, relative to the registry root) and what to do about it.
    """

    def __init__(self, message: str, uri: str | None = None, path: str | None = None) -> None:
        self.path = path
        super().__init__(message, uri)


class ArtifactError(MlopsError, ValueError):
    """An artifact cannot be serialized, found, or its bytes do not match its hash."""


class HashingError(MlopsError, TypeError):
    """A value that cannot be hashed deterministically (and so cannot be part of a cache key)."""


class StepFailedError(MlopsError, RuntimeError):
    """A step raised an exception; ``step`` names it and ``__cause__`` is the original error."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(message)

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # rebuilt with both arguments when it crosses a process (processes, dask.distributed)
        return (type(self), (self.step, str(self)))


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the nearest choice, or ``""``.

    Examples:
        >>> did_you_mean("trian", ["train", "evaluate"])
        " Did you mean 'train'?"
        >>> did_you_mean("zzz", ["train"])
        ''
    """
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


#: OS errors whose cause a person can act on, named in words rather than by errno
_OS_CAUSES = {
    "ENOSPC": "no space left on the device",
    "EDQUOT": "the disk quota is exceeded",
    "EROFS": "the file system is read-only",
    "ENAMETOOLONG": "a file name is too long",
}


def describe(error: BaseException | None) -> str:
    """One line for a person: what went wrong, without a traceback.

    An mlops error is its message; Ctrl-C is ``interrupted``; an OS error that says the disk is
    full (or read-only, or over quota) says so first; anything else is ``Type: message``.

    Examples:
        >>> describe(ConfigError("must be a string", "steps.a._target_"))
        'steps.a._target_: must be a string'
        >>> describe(ValueError("could not convert string to float: 'abc'"))
        "ValueError: could not convert string to float: 'abc'"
        >>> import errno
        >>> describe(OSError(errno.ENOSPC, "No space left on device"))
        'no space left on the device: [Errno 28] No space left on device'
        >>> describe(KeyboardInterrupt()), describe(None)
        ('interrupted', '')
    """
    if error is None:
        return ""
    if isinstance(error, MlopsError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return str(error) or "interrupted"
    if isinstance(error, OSError) and error.errno is not None:
        import errno

        cause = _OS_CAUSES.get(errno.errorcode.get(error.errno, ""))
        if cause is not None:
            return f"{cause}: {error}"
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
