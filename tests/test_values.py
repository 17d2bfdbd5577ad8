"""One value path for frames (mlops/values.py): a shared frame is what a load gives, and no
holder of a copy can change what another sees.

Generated frames (dtypes, missing values, indexes, column names, attrs) check that whenever the
producer's frame is handed on instead of a decode (:func:`loads_back` says yes), it is exactly
what loading the stored bytes gives; generated mutations check that a consumer writing to its copy
in any way pandas or NumPy offers changes nothing another copy, the producer or the stored value
shows.
"""

from __future__ import annotations

import contextlib
import gc
import random
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.storage import open_storage
from mlops.store import ArtifactStore
from mlops.values import TAIL_BYTES, is_frame, loads_back, share, shareable

ROWS = 7


def _column(kind: str, rng: random.Random) -> Any:
    """One column of ``kind``, with the awkward values of its type (NaN, NA, NaT, -0.0, '')."""
    n = ROWS
    if kind == "float64":
        return np.array([rng.choice([0.5, -0.0, np.nan, np.inf, 1e300, 3.25]) for _ in range(n)])
    if kind == "float32":
        return np.array([rng.choice([0.5, np.nan, -2.0]) for _ in range(n)], dtype="float32")
    if kind == "float16":
        return np.array([0.5] * n, dtype="float16")
    if kind == "int64":
        return np.array([rng.randint(-(2**62), 2**62) for _ in range(n)])
    if kind == "uint8":
        return np.array([rng.randint(0, 255) for _ in range(n)], dtype="uint8")
    if kind == "bool":
        return np.array([rng.random() < 0.5 for _ in range(n)])
    if kind == "str":
        return pd.array([rng.choice(["", "é", "x y", None, "long" * 5]) for _ in range(n)], "str")
    if kind == "string[python]":
        return pd.array([rng.choice(["a", None, ""]) for _ in range(n)], "string[python]")
    if kind == "Int64":
        return pd.array([rng.choice([1, None, -3]) for _ in range(n)], "Int64")
    if kind == "boolean":
        return pd.array([rng.choice([True, None, False]) for _ in range(n)], "boolean")
    if kind == "Float64":
        return pd.array([rng.choice([1.5, None, np.nan]) for _ in range(n)], "Float64")
    if kind == "datetime":
        return pd.to_datetime(
            [rng.choice(["2020-01-01 00:00:00.000000001", None, "1999-12-31"]) for _ in range(n)],
            format="ISO8601",
        )
    if kind == "datetime[s]":
        return pd.date_range("2020", periods=n, freq="D").as_unit("s")
    if kind == "datetime tz":
        return pd.date_range("2020", periods=n, freq="h", tz="Europe/Paris")
    if kind == "timedelta":
        return pd.to_timedelta([rng.choice([1, None, -5]) for _ in range(n)], unit="s")
    if kind == "category":
        return pd.Categorical([rng.choice(["b", "a"]) for _ in range(n)])
    if kind == "object ints":
        return pd.array([rng.randint(0, 9) for _ in range(n)], dtype=object)
    if kind == "object mixed":
        return pd.array([rng.choice([1, 2.5, "s"]) for _ in range(n)], dtype=object)
    if kind == "lists":
        return pd.array([[rng.randint(0, 9)] for _ in range(n)], dtype=object)
    raise AssertionError(kind)


KINDS = [
    "float64", "float32", "float16", "int64", "uint8", "bool", "str", "string[python]", "Int64",
    "boolean", "Float64", "datetime", "datetime[s]", "datetime tz", "timedelta", "category",
    "object ints", "object mixed", "lists",
]  # fmt: skip


def _index(rng: random.Random) -> Any:
    choice = rng.choice(["range", "range shifted", "range named", "ints", "strs", "dates", "multi"])
    if choice == "range":
        return pd.RangeIndex(ROWS)
    if choice == "range shifted":
        return pd.RangeIndex(5, 5 + 3 * ROWS, 3)
    if choice == "range named":
        return pd.RangeIndex(ROWS, name=rng.choice(["r", 0]))
    if choice == "ints":
        return pd.Index([rng.randint(0, 99) for _ in range(ROWS)], name="i")
    if choice == "strs":
        return pd.Index([f"k{i}" for i in range(ROWS)])
    if choice == "dates":
        return pd.date_range("2021", periods=ROWS, name="when")
    return pd.MultiIndex.from_arrays([list(range(ROWS)), list("abcdefg")[:ROWS]])


def _frame(seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    kinds = rng.sample(KINDS, rng.randint(1, 4))
    names: list[Any] = [rng.choice([f"c{i}", i, f"c{i}"]) for i in range(len(kinds))]
    df = pd.DataFrame(
        {name: _column(kind, rng) for name, kind in zip(names, kinds, strict=True)},
        index=_index(rng),
    )
    if rng.random() < 0.2:
        df.attrs["source"] = rng.choice(["x", 1])
    if rng.random() < 0.2:
        df.columns.name = "cols"
    return df


def _store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(open_storage(str(tmp_path / "registry")))


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a, b, check_exact=True, check_index_type=True, check_column_type=True, check_flags=True
    )
    assert a.attrs == b.attrs
    assert list(a.columns.names) == list(b.columns.names)


@pytest.mark.parametrize("keep", [0, 1 << 30], ids=["tail only", "all bytes kept"])
def test_a_frame_handed_on_is_exactly_what_a_load_gives(tmp_path: Path, keep: int) -> None:
    """Over generated frames: when the stored schema says the producer's frame loads back, the
    load gives exactly that frame; frames it cannot vouch for are decoded instead."""
    store = _store(tmp_path)
    vouched = refused = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mixed-type column names: pyarrow warns, we compare
        for seed in range(300):
            df = _frame(seed)
            try:
                ref, data, tail = store.put_keeping(df, keep, TAIL_BYTES)
            except Exception:  # a frame Parquet cannot store: nothing to hand on
                continue
            assert (data is not None) == (keep > 0)
            assert tail is not None and bytes(tail) == store.read_verified(ref)[-len(tail) :]
            if loads_back(df, ref.format, tail):
                vouched += 1
                _same(store.get(ref), df)
            else:
                refused += 1
    assert vouched > 25 and refused > 25, (vouched, refused)


def test_only_plain_frames_are_vouched_for(tmp_path: Path) -> None:
    store = _store(tmp_path)
    plain = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", None], "n": pd.array([1, None])})
    ref, _, tail = store.put_keeping(plain, 0, TAIL_BYTES)
    assert tail is not None
    assert loads_back(plain, ref.format, tail)
    assert not loads_back(plain, ref.format, tail[-100:])  # the footer is not all there
    assert not loads_back(plain, "json", tail)
    objects = pd.DataFrame({"l": [[1], [2]]})
    ref, _, tail = store.put_keeping(objects, 0, TAIL_BYTES)
    assert not loads_back(objects, ref.format, tail)
    assert not shareable(store.get(ref))  # list cells could be changed in place
    assert is_frame(plain) and not is_frame(plain["a"]) and not is_frame({"a": 1})


def _writeable_hack(get: Callable[[pd.DataFrame], Any]) -> Callable[[pd.DataFrame], None]:
    def mutate(df: pd.DataFrame) -> None:
        arr = get(df)
        arr.flags.writeable = True
        arr.flat[0] = 99

    return mutate


def _first_numeric(df: pd.DataFrame) -> Any:
    return df.select_dtypes("number").columns[0]


MUTATIONS: dict[str, Callable[[pd.DataFrame], Any]] = {
    "assign column": lambda df: df.__setitem__(df.columns[0], 0),
    "assign new column": lambda df: df.__setitem__("new", 1),
    "iloc": lambda df: df.iloc.__setitem__((0, 0), df.iloc[1, 0]),
    "iloc row": lambda df: df.iloc.__setitem__(0, df.iloc[1]),
    "loc": lambda df: df.loc.__setitem__((df.index[0], _first_numeric(df)), 42),
    "iat": lambda df: df.iat.__setitem__((0, 0), df.iat[1, 0]),
    "column +=": lambda df: df.__setitem__(_first_numeric(df), df[_first_numeric(df)] + 1),
    "frame +=": lambda df: df.select_dtypes("number").__iadd__(1),
    "fillna inplace": lambda df: df.fillna({_first_numeric(df): 7}, inplace=True),
    "replace inplace": lambda df: df.replace({_first_numeric(df): {1.0: 9.0}}, inplace=True),
    "mask inplace": lambda df: df.mask(df.isna(), inplace=True),
    "update": lambda df: df.update(df.iloc[::-1].set_axis(df.index)),
    "sort inplace": lambda df: df.sort_values(_first_numeric(df), inplace=True),
    "drop inplace": lambda df: df.drop(columns=df.columns[0], inplace=True),
    "rename inplace": lambda df: df.rename(columns=str.upper, inplace=True),
    "reset_index inplace": lambda df: df.reset_index(inplace=True),
    "insert": lambda df: df.insert(0, "first", 0),
    "pop": lambda df: df.pop(df.columns[0]),
    "del": lambda df: df.__delitem__(df.columns[0]),
    "index name": lambda df: setattr(df.index, "name", "renamed"),
    "columns name": lambda df: setattr(df.columns, "name", "renamed"),
    "set index": lambda df: setattr(df, "index", list(range(len(df)))[::-1]),
    "attrs": lambda df: df.attrs.__setitem__("added", 1),
    "flags": lambda df: setattr(df.flags, "allows_duplicate_labels", False),
    "to_numpy write": lambda df: df[_first_numeric(df)].to_numpy().__setitem__(0, 5),
    "values write": lambda df: df.values.__setitem__((0, 0), 5),
    "series array write": lambda df: df[_first_numeric(df)].array.__setitem__(0, 5),
    "to_numpy writeable": _writeable_hack(lambda df: df[_first_numeric(df)].to_numpy()),
    "asarray writeable": _writeable_hack(lambda df: np.asarray(df[_first_numeric(df)])),
    "values writeable": _writeable_hack(lambda df: df.select_dtypes("number").values),
    "index writeable": _writeable_hack(lambda df: df.index.to_numpy()),
    "series of frame": lambda df: df[_first_numeric(df)].iloc.__setitem__(0, 5),
}

FRAMES: dict[str, Callable[[], pd.DataFrame]] = {
    "floats": lambda: pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["a", "b", "c"]),
    "mixed": lambda: pd.DataFrame(
        {
            "f": [1.0, np.nan, 3.0, 4.0],
            "i": [1, 2, 3, 4],
            "s": ["w", None, "y", "z"],
            "n": pd.array([1, None, 3, 4], "Int64"),
            "t": pd.date_range("2020", periods=4, tz="UTC"),
            "b": [True, False, True, True],
        }
    ),
    "indexed": lambda: pd.DataFrame(
        {"v": [1.5, 2.5, 3.5], "w": [1, 2, 3]}, index=pd.Index([10, 20, 30], name="k")
    ),
}


@pytest.mark.parametrize("frame", sorted(FRAMES))
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_no_copy_changes_another(frame: str, mutation: str) -> None:
    """A consumer mutating its copy in any way changes nothing the producer, another consumer
    or a later consumer sees; the only writes refused are those that bypass copy-on-write."""
    produced = FRAMES[frame]()
    expected = FRAMES[frame]()
    shared = share(produced)
    assert shared is not None
    mine, sibling = shared.hand(), shared.hand()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 4 deprecations of inplace=, chained assignment
        try:
            MUTATIONS[mutation](mine)
        except ValueError as e:  # a write to an array pandas or mlops made read-only
            assert "read-only" in str(e) or "WRITEABLE" in str(e), e
    _same(sibling, expected)
    _same(shared.hand(), expected)
    _same(produced, expected)


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_copies_are_independent_across_threads(mutation: str) -> None:
    """Consumers on the threads executor mutate their copies at the same time."""
    shared = share(FRAMES["mixed"]())
    assert shared is not None
    seen: list[pd.DataFrame] = []

    def consumer(mutate: bool) -> None:
        df = shared.hand()
        if mutate:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with contextlib.suppress(ValueError):  # a read-only write: refused
                    MUTATIONS[mutation](df)
        else:
            seen.append(df.copy(deep=True))

    threads = [threading.Thread(target=consumer, args=(i % 2 == 0,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for df in seen:
        _same(df, FRAMES["mixed"]())


def test_the_producers_frame_is_writable_again_once_unshared() -> None:
    """Sealing lasts while the value is shared: a frame the producer keeps (a module-level
    table) can be changed in place after the run dropped it, as before."""
    produced = FRAMES["mixed"]()
    shared = share(produced)
    copy = shared.hand() if shared is not None else None
    with pytest.raises(ValueError, match="read-only"):
        produced["f"].array[0] = 5.0  # bypasses copy-on-write: refused while shared
    del shared, copy
    gc.collect()
    produced.loc[0, "f"] = 5.0
    produced["f"].array[1] = 6.0
    assert produced["f"].tolist()[:2] == [5.0, 6.0]


def test_overlapping_shares_keep_arrays_sealed_until_the_last_goes() -> None:
    """A consumer that returns its input unchanged makes a second shared value over the same
    arrays: dropping the first must not unseal what the second still shares."""
    first = share(FRAMES["floats"]())
    assert first is not None
    second = share(first.hand())
    assert second is not None
    del first
    gc.collect()
    with pytest.raises(ValueError):
        _writeable_hack(lambda df: df["a"].to_numpy())(second.hand())
    _same(second.hand(), FRAMES["floats"]())


SERIES_MUTATIONS: dict[str, Callable[[pd.Series], Any]] = {
    "iloc": lambda s: s.iloc.__setitem__(0, 9.0),
    "iadd": lambda s: s.__iadd__(1),
    "name": lambda s: setattr(s, "name", "renamed"),
    "fillna inplace": lambda s: s.fillna(0, inplace=True),
    "array write": lambda s: s.array.__setitem__(0, 9.0),
    "to_numpy writeable": _writeable_hack(lambda s: s.to_numpy()),
    "index writeable": _writeable_hack(lambda s: s.index.to_numpy()),
}


@pytest.mark.parametrize("mutation", sorted(SERIES_MUTATIONS))
def test_no_copy_of_a_series_changes_another(mutation: str) -> None:
    """A decoded Series output is shared the same way as a frame."""

    def make() -> pd.Series:
        return pd.Series([1.0, np.nan, 3.0], index=pd.Index([4, 5, 6]), name="s")

    produced = make()
    assert shareable(produced)
    shared = share(produced)
    assert shared is not None
    mine, sibling = shared.hand(), shared.hand()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            SERIES_MUTATIONS[mutation](mine)
        except ValueError as e:
            assert "read-only" in str(e) or "WRITEABLE" in str(e), e
    for seen in (sibling, shared.hand(), produced):
        pd.testing.assert_series_equal(seen, make(), check_exact=True)


def _unconsolidated() -> pd.DataFrame:
    df = pd.DataFrame({"a": np.arange(4.0)})
    df["b"] = np.arange(4.0) * 2  # a second float block, until pandas consolidates
    assert df._mgr.nblocks == 2
    return df


BOTH_PATHS = {**FRAMES, "unconsolidated": _unconsolidated}


@pytest.mark.parametrize("frame", sorted(BOTH_PATHS))
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_fresh_and_cached_copies_behave_alike(tmp_path: Path, frame: str, mutation: str) -> None:
    """A consumer's mutation does the same to a copy of the producer's frame (a fresh run) as to
    a copy of the frame decoded from the stored bytes (a cached run): it raises on both or
    leaves equal frames on both."""
    store = _store(tmp_path)
    produced = BOTH_PATHS[frame]()
    ref, _, tail = store.put_keeping(produced, 0, TAIL_BYTES)
    assert loads_back(produced, ref.format, tail)
    outcomes = []
    for value in (produced, store.get(ref)):
        shared = share(value)
        assert shared is not None
        mine = shared.hand()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                MUTATIONS[mutation](mine)
            except ValueError as e:
                outcomes.append(("raised", str(e)))
                continue
        outcomes.append(("ok", mine))
    (kind_a, a), (kind_b, b) = outcomes
    assert kind_a == kind_b, outcomes
    if kind_a == "ok":
        _same(a, b)
    else:
        assert a == b
