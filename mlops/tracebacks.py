"""A failed step's traceback as its author needs it: their code's frames, the file and line.

When a step raises, the executor keeps (in the run record, ``steps.<name>.traceback``) the
traceback with the frames of mlops itself, Dask, distributed, Hydra and OmegaConf left out -- what
remains starts at the step function and goes down into whatever it called -- and names the
innermost frame of the user's own code (not a library's) in the one-line error.

Both are worked out where the step ran (a thread, a process, a remote worker), since a traceback
does not survive pickling; :class:`StepCrashed` carries them back.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from types import TracebackType

from .errors import StepFailedError

__all__ = ["StepCrashed", "framework_file", "user_location", "user_traceback"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_EXAMPLES = os.path.join(_PACKAGE, "examples") + os.sep
_FRAMEWORKS = ("dask", "distributed", "hydra", "omegaconf")


def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {
        paths.get("stdlib"),
        paths.get("platstdlib"),
        paths.get("purelib"),
        paths.get("platlib"),
    }
    return tuple(sorted(os.path.abspath(r) + os.sep for r in roots if r))


_LIBRARIES = _library_roots()


def framework_file(path: str) -> bool:
    """Whether a frame in ``path`` belongs to the machinery that ran the step.

    That is mlops (except its examples, which are user code), Dask, distributed, Hydra and
    OmegaConf.

    Examples:
        >>> import dask, mlops.executor, mlops.examples.iris.promotion as p
        >>> framework_file(mlops.executor.__file__), framework_file(p.__file__)
        (True, False)
        >>> framework_file(dask.__file__)
        True
    """
    path = os.path.abspath(path)
    if path.startswith(_PACKAGE + os.sep):
        return not path.startswith(_EXAMPLES)
    parts = path.split(os.sep)
    return any(
        part in _FRAMEWORKS and parts[i - 1] in ("site-packages", "dist-packages")
        for i, part in enumerate(parts)
        if i
    )


def _library_file(path: str) -> bool:
    """A file of an installed package or the standard library (not the user's project).

    Examples:
        >>> import json, dask
        >>> _library_file(json.__file__), _library_file(dask.__file__), _library_file("/srv/a.py")
        (True, True, False)
    """
    parts = os.path.abspath(path).split(os.sep)
    return (
        os.path.abspath(path).startswith(_LIBRARIES)
        or "site-packages" in parts
        or "dist-packages" in parts
        or path.startswith("<")  # <frozen ...>, <string>
    )


def _frames(tb: TracebackType | None) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(tb) if not framework_file(f.filename)]


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` (and the exceptions it chains) without framework frames.

    Examples:
        >>> def fail(): return {}["missing"]
        >>> try:
        ...     fail()
        ... except KeyError as e:
        ...     text = user_traceback(e)
        >>> text.splitlines()[0], text.splitlines()[-1]
        ('Traceback (most recent call last):', "KeyError: 'missing'")
    """
    te = traceback.TracebackException.from_exception(exc)
    for link in _chain(te):
        link.stack = traceback.StackSummary.from_list(
            [f for f in link.stack if not framework_file(f.filename)]
        )
    return "".join(te.format()).rstrip("\n")


def _chain(te: traceback.TracebackException) -> list[traceback.TracebackException]:
    out, seen = [], set()
    node: traceback.TracebackException | None = te
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        out.append(node)
        node = node.__cause__ or (None if node.__suppress_context__ else node.__context__)
    return out


def user_location(exc: BaseException) -> str | None:
    """``file:line in function`` of the innermost frame of the user's own code, or None.

    The user's code is what is neither the framework nor an installed library; when every
    remaining frame is a library's, the first one (the step function) is named.
    """
    frames = _frames(exc.__traceback__)
    if not frames:
        return None
    own = [f for f in frames if not _library_file(f.filename)]
    f = own[-1] if own else frames[0]
    return f"{_short_path(f.filename)}:{f.lineno} in {f.name}"


def _short_path(path: str) -> str:
    """A path relative to the current folder when it is inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


class StepCrashed(StepFailedError):
    """A step function raised: the message names the user's file and line; ``traceback`` is the
    trimmed traceback and ``log`` the step's captured log (an artifact reference as JSON)."""

    def __init__(
        self, step: str, message: str, traceback: str = "", log: dict[str, object] | None = None
    ) -> None:
        super().__init__(step, message)
        self.traceback = traceback
        self.log = log

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:  # type: ignore[override]
        return (type(self), (self.step, str(self), self.traceback, self.log))


def crashed(step: str, exc: Exception, log: dict[str, object] | None = None) -> StepCrashed:
    """The error for step ``step`` whose function raised ``exc``, made where the step ran.

    Examples:
        >>> try:
        ...     {}["missing"]
        ... except KeyError as e:
        ...     err = crashed("b", e)
        >>> str(err).startswith("step 'b' failed: KeyError: 'missing' (at ")
        True
    """
    from .errors import MlopsError

    text = str(exc)
    what = (
        text
        if isinstance(exc, MlopsError)
        else (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    )
    where = user_location(exc)
    message = f"step '{step}' failed: {what}" + (f" (at {where})" if where else "")
    return StepCrashed(step, message, user_traceback(exc), log)
