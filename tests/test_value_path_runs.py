"""One value path through real runs: consumers of a frame or an array that mutate it in place.

One producer makes a DataFrame (of a generated kind) and an ndarray; one consumer per kind of
in-place mutation changes its input and reports what it then holds; readers declared before and
after them report what they see. Run fresh, cache-off, and with the producers cached (consumers
refreshed), on ``sync``, ``threads`` and ``processes``, with every payload kept in memory and
with none (``KEEP_BYTES=0``, the path of big outputs): every step's result is the same, and the
readers see exactly what loading the stored outputs gives.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from conftest import run_mlops

from mlops.registry import Registry

STEPS = '''\
"""Steps that mutate their inputs in place, and readers that must not notice."""

import hashlib
import os
import warnings
from typing import Annotated

import numpy as np
import pandas as pd

import mlops.executor
from mlops import step

# the size up to which outputs are handed on as the bytes just written (0: read back, as big
# outputs are), set by the test for every process that runs steps
mlops.executor.KEEP_BYTES = int(os.environ.get("VALUE_PATH_KEEP", mlops.executor.KEEP_BYTES))
warnings.simplefilter("ignore")  # pandas 4 deprecations of inplace=


def _frame(kind):
    n = 6
    df = pd.DataFrame({"f": np.arange(n) / 4, "i": np.arange(n) * 3})
    df.loc[2, "f"] = np.nan
    if kind in ("mixed", "objects"):
        df["s"] = pd.array(["a", None, "c", "d", "", "f"], "str")
        df["n"] = pd.array([1, None, 3, 4, 5, 6], "Int64")
        df["t"] = pd.date_range("2020", periods=n, tz="UTC")
    if kind == "indexed":
        df.index = pd.Index([f"r{i}" for i in range(n)], name="row")
    if kind == "unconsolidated":  # two float blocks in the producer's frame, one in a load
        df = df.drop(columns="i")
        df["g"] = np.arange(n) / 8
    if kind == "objects":  # list cells: decoded for each consumer, never shared
        df["l"] = [[i, i + 1] for i in range(n)]
    return df


def digest(value):
    if isinstance(value, pd.DataFrame):
        text = value.to_json(orient="split", date_format="iso") + repr(list(value.dtypes))
        text += repr(value.index.name) + repr(value.attrs)
    else:
        text = repr(value.dtype) + repr(value.shape) + repr(value.tolist())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@step
def make(kind: str) -> Annotated[pd.DataFrame, "frame"]:
    return _frame(kind)


@step
def make_array() -> Annotated[np.ndarray, "array"]:
    return np.arange(12.0).reshape(3, 4)


def _mutate(df, how):
    num = "f"
    if how == "assign":
        df[num] = -1.0
    elif how == "iloc":
        df.iloc[0, 0] = 99.0
    elif how == "loc":
        df.loc[df.index[1], "i" if "i" in df else "g"] = -7
    elif how == "iat":
        df.iat[2, 1] = 5
    elif how == "fillna_inplace":
        df.fillna({"f": 0.0}, inplace=True)
    elif how == "sort_inplace":
        df.sort_values(num, ascending=False, inplace=True)
    elif how == "drop_inplace":
        df.drop(columns=[num], inplace=True)
    elif how == "update":
        df.update(df.iloc[::-1].set_axis(df.index))
    elif how == "index_name":
        df.index.name = "changed"
    elif how == "attrs":
        df.attrs["changed"] = True
    elif how == "to_numpy_writeable":
        arr = df[num].to_numpy()
        arr.flags.writeable = True
        arr[0] = 123.0
    elif how == "array_write":
        df[num].array[0] = 321.0
    elif how == "values_write":
        df.values[0, 0] = 555
    else:
        raise AssertionError(how)


@step
def mutate(frame: pd.DataFrame, how: str) -> Annotated[str, "after"]:
    try:
        _mutate(frame, how)
    except ValueError as e:  # a read-only array: the same refusal wherever the step runs
        return "refused: " + str(e)[:40]
    return digest(frame)


@step
def mutate_array(array: np.ndarray, how: str) -> Annotated[str, "after"]:
    if how == "iadd":
        array += 1
    elif how == "setitem":
        array[0, 0] = 42
    elif how == "sort":
        array.sort(axis=0)
        array[:] = array[::-1]
    elif how == "out":
        np.multiply(array, 2, out=array)
    return digest(array)


@step
def read(frame: pd.DataFrame) -> Annotated[str, "seen"]:
    return digest(frame)


@step
def read_array(array: np.ndarray) -> Annotated[str, "seen"]:
    return digest(array)
'''

FRAME_MUTATIONS = [
    "assign", "iloc", "loc", "iat", "fillna_inplace", "sort_inplace", "drop_inplace", "update",
    "index_name", "attrs", "to_numpy_writeable", "array_write", "values_write",
]  # fmt: skip
ARRAY_MUTATIONS = ["iadd", "setitem", "sort", "out"]


def _pipeline() -> str:
    lines = [
        "# @package _global_",
        "pipeline:",
        "  name: values",
        "steps:",
        "  make:",
        "    _target_: valuesteps.make",
        "    kind: numeric",
        "  make_array:",
        "    _target_: valuesteps.make_array",
        "  read_first:",
        "    _target_: valuesteps.read",
        "    frame: ${step:make.frame}",
        "  read_array_first:",
        "    _target_: valuesteps.read_array",
        "    array: ${step:make_array.array}",
    ]
    for how in FRAME_MUTATIONS:
        lines += [
            f"  mutate_{how}:",
            "    _target_: valuesteps.mutate",
            "    frame: ${step:make.frame}",
            f"    how: {how}",
        ]
    for how in ARRAY_MUTATIONS:
        lines += [
            f"  array_{how}:",
            "    _target_: valuesteps.mutate_array",
            "    array: ${step:make_array.array}",
            f"    how: {how}",
        ]
    lines += [
        "  read_last:",
        "    _target_: valuesteps.read",
        "    frame: ${step:make.frame}",
        "  read_array_last:",
        "    _target_: valuesteps.read_array",
        "    array: ${step:make_array.array}",
    ]
    return "\n".join(lines) + "\n"


CONSUMERS = (
    ["read_first", "read_array_first", "read_last", "read_array_last"]
    + [f"mutate_{h}" for h in FRAME_MUTATIONS]
    + [f"array_{h}" for h in ARRAY_MUTATIONS]
)


def _project(root: Path) -> Path:
    (root / "conf" / "pipeline").mkdir(parents=True)
    (root / "valuesteps.py").write_text(STEPS)
    (root / "conf" / "pipeline" / "values.yaml").write_text(_pipeline())
    return root


def _run(project: Path, registry: Path, keep: int, *overrides: str) -> dict[str, Any]:
    res = run_mlops(
        "+pipeline=values",
        f"registry.uri={registry}",
        f"hydra.run.dir={project / 'outputs' / os.urandom(4).hex()}",
        *overrides,
        cwd=project,
        env={"VALUE_PATH_KEEP": str(keep)},
    )
    assert res.returncode == 0, res.output
    run = Registry(str(registry)).list_runs("values")[-1]
    return {"status": run.steps, "values": {n: run.load(n) for n in run.steps}, "run": run}


@pytest.mark.parametrize("keep", [0, 64 << 20], ids=["read back", "kept in memory"])
@pytest.mark.parametrize("kind", ["numeric", "mixed", "indexed", "unconsolidated", "objects"])
@pytest.mark.parametrize("executor", ["sync", "threads", "processes"])
def test_mutating_consumers_change_nothing_others_see(
    tmp_path: Path, executor: str, kind: str, keep: int
) -> None:
    import sys

    project = _project(tmp_path / "project")
    sys.path.insert(0, str(project))
    try:
        import valuesteps  # the digest the readers compute, here on what a load gives
    finally:
        sys.path.remove(str(project))
    registry = tmp_path / "registry"
    opts = (f"executor={executor}", f"steps.make.kind={kind}")
    fresh = _run(project, registry, keep, *opts)
    loaded = fresh["run"]
    stored_frame = valuesteps.digest(loaded.load("make"))
    stored_array = valuesteps.digest(loaded.load("make_array"))
    for name in ("read_first", "read_last"):
        assert fresh["values"][name] == stored_frame, name
    for name in ("read_array_first", "read_array_last"):
        assert fresh["values"][name] == stored_array, name

    off = _run(project, tmp_path / "off", keep, *opts, "cache.enabled=false")
    refresh = "cache.refresh=[" + ",".join(CONSUMERS) + "]"
    cached = _run(project, registry, keep, *opts, refresh)
    assert cached["status"]["make"] == "cached" and cached["status"]["read_first"] == "ran"
    for name in ("make", "make_array"):  # the same stored values: compare what a load gives
        for res in (fresh, off, cached):
            res["values"][name] = valuesteps.digest(res["values"][name])
    assert fresh["values"] == off["values"] == cached["values"]
    refused = {n for n, v in fresh["values"].items() if str(v).startswith("refused")}
    assert refused <= {"mutate_array_write", "mutate_to_numpy_writeable", "mutate_values_write"}


RELEASE_STEPS = '''\
from typing import Annotated

import numpy as np
import pandas as pd

from mlops import step

KEPT = []  # the producer keeps its frame, as a module-level table would be


@step
def make() -> Annotated[pd.DataFrame, "frame"]:
    df = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5)})
    KEPT.append(df)
    return df


@step
def use(frame: pd.DataFrame) -> Annotated[float, "sum"]:
    return float(frame["a"].sum())


@step
def after(x: float, y: float) -> Annotated[str, "writable"]:
    """Runs once both consumers are done: the frame is no longer shared, so is writable."""
    if not KEPT:  # the producer ran in another process (or was cached)
        return "n/a"
    try:
        KEPT[0]["a"].array[0] = 10.0  # refused only while the frame is shared
    except ValueError as e:
        return str(e)
    return "yes"
'''

RELEASE_PIPELINE = """\
# @package _global_
pipeline:
  name: release
steps:
  make:
    _target_: releasesteps.make
  use_a:
    _target_: releasesteps.use
    frame: ${step:make.frame}
  use_b:
    _target_: releasesteps.use
    frame: ${step:make.frame}
  after:
    _target_: releasesteps.after
    x: ${step:use_a.sum}
    y: ${step:use_b.sum}
"""


@pytest.mark.parametrize("executor", ["sync", "threads"])
def test_a_frame_is_let_go_when_its_consumers_are_done(tmp_path: Path, executor: str) -> None:
    """The shared frame is released (memory, read-only guard) once its last consumer finished,
    not at the end of the run."""
    project = tmp_path / "project"
    (project / "conf" / "pipeline").mkdir(parents=True)
    (project / "releasesteps.py").write_text(RELEASE_STEPS)
    (project / "conf" / "pipeline" / "release.yaml").write_text(RELEASE_PIPELINE)
    res = run_mlops(
        "+pipeline=release",
        f"registry.uri={tmp_path / 'registry'}",
        f"hydra.run.dir={tmp_path / 'out'}",
        f"executor={executor}",
        cwd=project,
    )
    assert res.returncode == 0, res.output
    run = Registry(str(tmp_path / "registry")).list_runs("release")[-1]
    assert run.load("use_a") == run.load("use_b") == 10.0
    assert run.load("after") == "yes"
