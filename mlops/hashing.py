"""Deterministic hashes: artifact content, parameter values and step code.

Two kinds of hash live here and are kept apart:

* **content hashes** identify bytes (an artifact payload). They use xxh3-128, which runs at
  memory speed, so hashing while serializing costs next to nothing.
* **tokens** identify values (params, cache-key ingredients). A value is first encoded
  canonically -- every item tagged with its type, lengths spelled out, dict keys sorted -- so that
  two different values can never share an encoding, and the encoding does not depend on the
  process, the machine or ``PYTHONHASHSEED``. ``hash()`` is never used.

A value of a type this module does not know is refused with :class:`~mlops.errors.HashingError`
rather than guessed at; a class can opt in by defining ``__mlops_token__(self)`` returning any
value this module can encode.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from typing import Any

import xxhash

from .errors import HashingError

__all__ = ["Hasher", "hash_bytes", "token", "encode"]


class Hasher:
    """A streaming content hash (xxh3-128, hex digest of 32 characters).

    Examples:
        >>> h = Hasher(); h.update(b"ab"); h.update(b"c")
        >>> h.hexdigest() == hash_bytes(b"abc")
        True
    """

    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = xxhash.xxh3_128()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Content hash of ``data``."""
    return xxhash.xxh3_128_hexdigest(data)


def _encode_str(tag: bytes, data: bytes, out: list[bytes]) -> None:
    out.append(tag)
    out.append(str(len(data)).encode())
    out.append(b":")
    out.append(data)


_Encoder = Callable[[Any, list[bytes]], None]
_ENCODERS: dict[type, _Encoder] = {}


def _encode_float(value: float, out: list[bytes]) -> None:
    # float.hex is exact and canonical; nan/inf spelled out; -0.0 differs from 0.0 on purpose
    # (they can lead to different results).
    out.append(b"F" + (value.hex() if math.isfinite(value) else repr(value)).encode() + b";")


def _encode_items(tag: bytes, items: list[bytes], out: list[bytes]) -> None:
    out.append(tag + str(len(items)).encode() + b"[")
    out.extend(items)
    out.append(b"]")


def encode(value: Any, out: list[bytes] | None = None) -> list[bytes]:
    """Append the canonical, type-tagged encoding of ``value`` to ``out`` and return it.

    Examples:
        >>> b"".join(encode([1, "a"]))
        b'L2[I1;S1:a]'
        >>> encode(1) != encode(1.0) != encode("1") != encode(True)
        True
    """
    if out is None:
        out = []
    if value is None:
        out.append(b"N")
    elif value is True or value is False:
        out.append(b"T" if value else b"B")
    elif isinstance(value, enum.Enum):
        encode(f"{type(value).__module__}.{type(value).__qualname__}", out)
        encode(value.value, out)
    elif type(value) is int:
        out.append(b"I" + str(value).encode() + b";")
    elif type(value) is float:
        _encode_float(value, out)
    elif type(value) is str:
        _encode_str(b"S", value.encode("utf-8", "surrogatepass"), out)
    elif type(value) in (bytes, bytearray):
        _encode_str(b"Y", bytes(value), out)
    elif type(value) in (list, tuple):
        tag = b"L" if type(value) is list else b"U"
        _encode_items(tag, [b"".join(encode(v)) for v in value], out)
    elif isinstance(value, dict):
        pairs = sorted(b"".join(encode(k)) + b"=" + b"".join(encode(v)) for k, v in value.items())
        _encode_items(b"D", pairs, out)
    elif isinstance(value, (set, frozenset)):
        _encode_items(b"E", sorted(b"".join(encode(v)) for v in value), out)
    elif hasattr(value, "__mlops_token__"):
        out.append(b"O")
        encode(f"{type(value).__module__}.{type(value).__qualname__}", out)
        encode(value.__mlops_token__(), out)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        out.append(b"C")
        encode(f"{type(value).__module__}.{type(value).__qualname__}", out)
        encode({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, out)
    else:
        encoder = _lookup_encoder(type(value))
        if encoder is None:
            raise HashingError(
                f"cannot hash a value of type {type(value).__module__}.{type(value).__qualname__} "
                f"deterministically: {_short_repr(value)}. Pass a plain value (number, string, "
                "list, dict) or give the class a __mlops_token__() method."
            )
        encoder(value, out)
    return out


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _lookup_encoder(cls: type) -> _Encoder | None:
    for base in cls.__mro__:
        if base in _ENCODERS:
            return _ENCODERS[base]
    # numpy scalars and omegaconf containers are common in params; handle them by name so that
    # neither library is imported unless such a value shows up.
    module = cls.__module__.split(".")[0]
    if module == "numpy":
        import numpy as np

        def _np(value: Any, out: list[bytes]) -> None:
            if isinstance(value, np.ndarray):
                out.append(b"A")
                encode(str(value.dtype), out)
                encode(list(value.shape), out)
                _encode_str(b"Y", np.ascontiguousarray(value).tobytes(), out)
            elif isinstance(value, np.generic):
                encode(value.item(), out)
            else:  # pragma: no cover - other numpy objects
                raise HashingError(f"cannot hash numpy object {_short_repr(value)}")

        _ENCODERS[cls] = _np
        return _np
    if module == "omegaconf":
        from omegaconf import OmegaConf

        def _oc(value: Any, out: list[bytes]) -> None:
            encode(OmegaConf.to_container(value, resolve=True), out)

        _ENCODERS[cls] = _oc
        return _oc
    return None


def token(*values: Any) -> str:
    """A stable hex token (xxh3-128) of the canonical encoding of ``values``.

    Examples:
        >>> token({"b": 1, "a": 2}) == token({"a": 2, "b": 1})
        True
        >>> token(["a", "b"]) != token(["ab"])
        True
    """
    h = xxhash.xxh3_128()
    for part in encode(list(values)):
        h.update(part)
    return h.hexdigest()
