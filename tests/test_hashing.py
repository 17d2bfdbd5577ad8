"""Deterministic hashes: idempotent, pickle-stable, type-tagged, the same in every process."""

from __future__ import annotations

import dataclasses
import enum
import pickle
import subprocess
import sys
from typing import Any

import pytest

from mlops.errors import HashingError
from mlops.hashing import Hasher, hash_bytes, token


class Color(enum.Enum):
    RED = 1


@dataclasses.dataclass
class Point:
    x: int
    y: float


VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2**80,
    0.0,
    -0.0,
    1.0,
    0.1,
    float("inf"),
    float("nan"),
    "",
    "1",
    "é",
    b"1",
    [],
    (),
    [1, "a"],
    (1, "a"),
    {"b": 1, "a": [1.5]},
    {1, 2, 3},
    frozenset({"x"}),
    Color.RED,
    Point(1, 2.0),
    {"nested": {"list": [1, (2, {"x": None})]}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_idempotent_and_pickle_round_trip(value: Any) -> None:
    """A value hashes the same twice, and the same after a pickle round trip."""
    assert token(value) == token(value)
    assert token(pickle.loads(pickle.dumps(value))) == token(value)


def test_type_tags_keep_values_apart() -> None:
    """Values that print alike or compare equal never share a token."""
    distinct = [1, 1.0, "1", True, b"1", [1], (1,), {1}, {"1": 1}, None, "None", 0.0, -0.0]
    assert len({token(v) for v in distinct}) == len(distinct)
    assert token(["a", "b"]) != token(["ab"]) != token("ab")
    assert token({"a": 1, "b": 2}) == token({"b": 2, "a": 1})
    assert token({3, 1, 2}) == token({1, 2, 3})


def test_numpy_values() -> None:
    """numpy arrays hash by dtype, shape and bytes; numpy scalars like Python numbers."""
    np = pytest.importorskip("numpy")
    a = np.arange(6)
    assert token(a) == token(a.copy()) != token(a.reshape(2, 3)) != token(a.astype("int32"))
    assert token(np.float64(1.5)) == token(1.5)


def test_refuses_unknown_types() -> None:
    """An object with no deterministic encoding is refused, naming its type."""
    with pytest.raises(HashingError, match="cannot hash a value of type builtins.object"):
        token(object())


def test_streaming_hash_matches_one_shot() -> None:
    """Hashing in pieces gives the content hash of the whole."""
    h = Hasher()
    for piece in (b"ab", b"", b"cde"):
        h.update(piece)
    assert h.hexdigest() == hash_bytes(b"abcde") and len(h.hexdigest()) == 32


_SCRIPT = """
import dataclasses, enum
from mlops.hashing import token
class Color(enum.Enum):
    RED = 1
print(token({"a": [1, 2.5, "x", None], "s": {"p", "q", "r"}, "f": frozenset({1, "z"}),
             "t": (True, b"b"), "c": Color.RED}))
"""


def test_same_token_under_two_hash_seeds() -> None:
    """Tokens do not depend on PYTHONHASHSEED (sets and strings hash differently per seed)."""
    outs = {
        subprocess.run(
            [sys.executable, "-c", _SCRIPT],
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "12345")
    }
    assert len(outs) == 1 and len(outs.pop().strip()) == 32
