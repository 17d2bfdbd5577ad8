"""``mlops diff``: runs and versions compared from the records real runs leave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cache_project import make_project
from conftest import run_mlops
from report_records import IrisRecords, iris_records, read_records

from mlops.diff import Change, DiffResult, diff_runs, diff_versions, format_diff, to_json


@pytest.fixture(scope="session")
def records(tmp_path_factory: pytest.TempPathFactory) -> IrisRecords:
    return iris_records(tmp_path_factory)


def _keys(changes: tuple[Change, ...]) -> list[tuple[str, Any, Any]]:
    return [(c.key, c.a, c.b) for c in changes]


def test_runs_that_differ_by_one_param(records: IrisRecords) -> None:
    """Only the overridden param differs; code and data are known and the same."""
    a, b = records.run("first"), records.run("small_c")
    d = diff_runs(a, b, ingredients=records.entries)
    assert _keys(d.params) == [("steps.train.C", 1.0, 0.1)]
    assert d.code_known and d.code == ()
    assert d.data == ()
    assert not d.same
    text = format_diff(d)
    assert text.splitlines() == [
        f"diff run {a['id']} -> run {b['id']}",
        "params (1 differ):",
        "  steps.train.C  1.0 -> 0.1",
        "code: same",
        "data: same",
        "libraries: not recorded",
        "metrics: none recorded",
    ]


def test_a_run_against_itself_is_the_same(records: IrisRecords) -> None:
    """Nothing differs between a run and itself."""
    a = records.run("small_c")
    d = diff_runs(a, a, ingredients=records.entries)
    assert d.same and d.params == d.code == d.data == ()


def test_versions_with_metric_deltas(records: IrisRecords) -> None:
    """v1 vs v3: the threshold param differs; the metric is listed with a delta of 0."""
    by_number = {v["number"]: v for v in records.versions}
    v1, v3 = by_number[1], by_number[3]
    d = diff_versions(
        v1,
        v3,
        run_a=records.runs[v1["run_id"]],
        run_b=records.runs[v3["run_id"]],
        ingredients=records.entries,
    )
    assert (d.a, d.b) == ("iris_classifier v1", "iris_classifier v3")
    assert _keys(d.params) == [("steps.promote.threshold", 0.9, 1.01)]
    accuracy = v1["metadata"]["accuracy"]
    assert [(m.key, m.a, m.b, m.delta) for m in d.metrics] == [
        ("accuracy", accuracy, accuracy, 0.0)
    ]
    assert "  accuracy  " in format_diff(d) and "(+0)" in format_diff(d)
    doc = to_json(d)
    assert json.loads(json.dumps(doc)) == doc
    assert doc["metrics"] == [{"key": "accuracy", "a": accuracy, "b": accuracy, "delta": 0.0}]
    assert doc["code"] == [] and doc["libraries"] is None


def test_version_without_metric(records: IrisRecords) -> None:
    """A metric one side lacks is listed with no delta (the failed run's version has none)."""
    by_number = {v["number"]: v for v in records.versions}
    d = diff_versions(by_number[2], by_number[4])
    (m,) = d.metrics
    assert m.key == "accuracy" and m.b is None and m.delta is None
    assert d.params == () and not d.code_known, "no runs given: nothing but metrics"


def test_code_and_data_changes_in_a_user_project(tmp_path: Path) -> None:
    """An edited helper shows as that function's code; a new param value as data downstream."""
    project = make_project(tmp_path / "project")
    args = ["+pipeline=tiny", f"registry.uri={project.registry}"]
    run_mlops(*args, cwd=project.folder, check=True)
    project.edit("helpers", "return round(value * factor", "return round(factor * value")
    run_mlops(*args, "steps.make.n=4", cwd=project.folder, check=True)
    recs = read_records(Path(project.registry), {})
    a, b = recs.runs.values()
    d = diff_runs(a, b, ingredients=recs.entries)
    assert _keys(d.params) == [("steps.make.n", 3, 4)]
    assert [c.key for c in d.code] == [f"{project.pkg}.helpers:scale"]
    assert all(c.a and c.b and c.a != c.b for c in d.code)
    assert [c.key for c in d.data] == ["make.numbers"]
    text = format_diff(d)
    assert "code (1 differ):" in text and f"{project.pkg}.helpers:scale" in text


CASES = [
    pytest.param({"C": 1}, {"C": 1.0}, [("steps.t.C", 1, 1.0)], id="int-to-float"),
    pytest.param({"C": 1}, {}, [("steps.t.C", 1, None)], id="removed"),
    pytest.param({}, {"C": None}, [("steps.t.C", None, None)], id="added-null"),
    pytest.param(
        {"o": {"a": 1, "b": 2}}, {"o": {"a": 1, "b": 3}}, [("steps.t.o.b", 2, 3)], id="nested"
    ),
    pytest.param({"l": [1, 2]}, {"l": [2, 1]}, [("steps.t.l", [1, 2], [2, 1])], id="list-order"),
    pytest.param(
        {"x": "${step:a.o}"},
        {"x": "${step:b.o}"},
        [("steps.t.x", "${step:a.o}", "${step:b.o}")],
        id="rewired",
    ),
    pytest.param({"s": "a"}, {"s": "a"}, [], id="same"),
    pytest.param({"b": True}, {"b": 1}, [("steps.t.b", True, 1)], id="bool-vs-int"),
]


@pytest.mark.parametrize(("old", "new", "expected"), CASES)
def test_param_changes(old: dict[str, Any], new: dict[str, Any], expected: list[Any]) -> None:
    """Params are compared by value and type, flattened, references included."""
    a = {"id": "a", "config": {"steps": {"t": {"_target_": "m.f", **old}}}}
    b = {"id": "b", "config": {"steps": {"t": {"_target_": "m.f", **new}}}}
    assert _keys(diff_runs(a, b).params) == expected
    assert _keys(diff_runs(b, a).params) == [(k, vb, va) for k, va, vb in expected]


def test_libraries_and_metrics_from_records() -> None:
    """Library versions and metrics are read when the records carry them."""
    a = {"id": "a", "libraries": {"sklearn": "1.5.0", "pandas": "2.2"}, "metrics": {"acc": 0.5}}
    b = {"id": "b", "libraries": {"sklearn": "1.6.1", "pandas": "2.2"}, "metrics": {"acc": 0.75}}
    d = diff_runs(a, b)
    assert d.libraries_known and _keys(d.libraries) == [("sklearn", "1.5.0", "1.6.1")]
    assert [(m.key, m.delta) for m in d.metrics] == [("acc", 0.25)]
    assert '  sklearn  "1.5.0" -> "1.6.1"' in format_diff(d)
    assert "(+0.25)" in format_diff(d)


def test_code_of_a_step_missing_on_one_side_is_unknown_not_changed() -> None:
    """A step without a cache entry on one side (caching off, failed) is not a code change."""
    a = {"id": "a", "steps": {"t": {"cache_key": "k1"}, "u": {"cache_key": "k2"}}}
    b = {"id": "b", "steps": {"t": {"cache_key": "k3"}, "u": {}}}
    entries = {
        "k1": {"ingredients": {"code": {"m:t": "1"}}},
        "k2": {"ingredients": {"code": {"m:u": "2"}}},
        "k3": {"ingredients": {"code": {"m:t": "1", "m:helper": "9"}}},
    }
    d = diff_runs(a, b, ingredients=entries)
    assert _keys(d.code) == [("m:helper", None, "9")], "a helper t now uses is a change"


def test_json_shape() -> None:
    """--json: every section, with deltas for metrics and null for what was not recorded."""
    d = DiffResult("run a", "run b", params=(Change("steps.t.C", 1, 2),))
    assert to_json(d) == {
        "a": "run a",
        "b": "run b",
        "same": False,
        "params": [{"key": "steps.t.C", "a": 1, "b": 2}],
        "code": None,
        "data": [],
        "libraries": None,
        "metrics": [],
    }
