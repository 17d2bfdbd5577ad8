"""The HTML reports, rendered from the records real iris runs leave, read as a parser reads them.

What a browser shows is checked in test_report_browser.py; here: every step is there with its
status and its edges, the page is self-contained and small, user text is escaped wherever it
lands, and the layout keeps its promises on generated graphs.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from report_records import IrisRecords, iris_plan, iris_records

from mlops.report import (
    ModelView,
    RunView,
    StepView,
    VersionView,
    model_view,
    plan_view,
    render_model,
    render_plan,
    render_run,
    run_view,
)
from mlops.report.layout import crossings, layout
from mlops.report.records import step_deps

MAX_BYTES = 300_000  # "a few hundred KB at most for the iris runs"


@pytest.fixture(scope="session")
def records(tmp_path_factory: pytest.TempPathFactory) -> IrisRecords:
    return iris_records(tmp_path_factory)


class Page(HTMLParser):
    """Every start tag with its attributes, and the text of ``<title>`` elements."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.tags
            if t == tag and (cls is None or cls in a.get("class", "").split())
        ]


def _boxes(page: Page) -> dict[str, str]:
    return {a["data-step"]: a["data-status"] for a in page.find("a", "step")}


def _check_self_contained(text: str) -> None:
    """No URL the browser would fetch: no src, no external href, no @import, no url(http)."""
    page = Page(text)
    for tag, attrs in page.tags:
        assert "src" not in attrs, (tag, attrs)
        if "href" in attrs:
            assert attrs["href"].startswith("#"), (tag, attrs)
    assert "@import" not in text
    assert not re.search(r"url\((?!#)", text), "only url(#local) references"
    assert [t for t, _ in page.tags].count("script") == 1, "only the page's own script"
    assert len(text.encode()) < MAX_BYTES


@pytest.mark.parametrize("role", ["first", "small_c", "not_promoted", "predict", "failed"])
def test_run_report_shows_every_step_with_status_and_edges(records: IrisRecords, role: str) -> None:
    """Each configured step is a box with its recorded status, each reference an edge."""
    doc = records.run(role)
    text = render_run(run_view(doc))
    page = Page(text)
    configured = set(doc["config"]["steps"])
    expected = {n: (doc["steps"].get(n) or {}).get("status", "skipped") for n in configured}
    assert _boxes(page) == expected
    details = {a["data-step"]: a["data-status"] for a in page.find("details", "step")}
    assert details == expected
    edges = {(a["data-from"], a["data-to"]) for a in page.find("path", "edge")}
    assert edges == {(d, n) for n, deps in step_deps(doc).items() for d in deps}
    assert doc["id"] in text and doc["pipeline"] in text
    _check_self_contained(text)


def test_failed_run_report(records: IrisRecords) -> None:
    """The failed step's error is shown and its details are open; the steps after it skipped."""
    doc = records.run("failed")
    page = Page(render_run(run_view(doc)))
    assert _boxes(page) == {
        "load_data": "cached",
        "split": "cached",
        "train": "failed",
        "evaluate": "skipped",
        "promote": "skipped",
    }
    opened = [a["data-step"] for a in page.find("details", "step") if "open" in a]
    assert opened == ["train"]
    assert any("Got -1 instead" in t for t in page.text)


def test_run_report_shows_params_inputs_outputs_overrides_model(records: IrisRecords) -> None:
    """A step's params and hashed outputs, its inputs' sources, the overrides, the model."""
    doc = records.run("small_c")
    view = run_view(doc, overrides=["steps.train.C=0.1"], logs={"train": "fitting <C=0.1>"})
    train = next(s for s in view.steps if s.name == "train")
    assert ("C", "0.1") in train.params
    assert {i.name: i.source for i in train.inputs} == {
        "X_train": "split.X_train",
        "y_train": "split.y_train",
    }
    assert all(i.id for i in train.inputs), "inputs carry the upstream outputs' hashes"
    assert [o.name for o in train.outputs] == ["trained_model"]
    text = render_run(view)
    model_id = doc["steps"]["train"]["outputs"]["trained_model"]["id"]
    assert model_id[:12] in text
    assert "steps.train.C=0.1" in text
    assert "fitting &lt;C=0.1&gt;" in text
    assert f"v{doc['model']['number']}</b> registered" in text
    assert [s.name for s in view.steps] == ["load_data", "split", "train", "evaluate", "promote"]


def test_running_run_shows_steps_not_reached_as_pending(records: IrisRecords) -> None:
    """A record written at the start (status running, no steps yet) shows every step pending."""
    doc = {**records.run("first"), "status": "running", "finished": None, "steps": {}}
    page = Page(render_run(run_view(doc)))
    assert set(_boxes(page).values()) == {"pending"}
    assert len(_boxes(page)) == len(doc["config"]["steps"])


def test_prediction_report_names_the_model_version_used(records: IrisRecords) -> None:
    """do_predictions reads the model: the input says which version, the aside says used."""
    doc = records.run("predict")
    view = run_view(doc)
    predict = next(s for s in view.steps if s.name == "predict")
    sources = {i.name: i.source for i in predict.inputs}
    assert sources["model"] == f"iris_classifier v{doc['model']['number']} trained_model"
    assert view.model is not None and not view.model.created
    assert "used" in render_run(view)


def test_plan_report(records: IrisRecords) -> None:
    """A changed param: cached upstream, will run with the reason, may run below."""
    doc = iris_plan(records.registry, "steps.train.max_iter=100")
    text = render_plan(plan_view(doc))
    page = Page(text)
    assert _boxes(page) == {
        "load_data": "cached",
        "split": "cached",
        "train": "will run",
        "evaluate": "may run",
        "promote": "will run",
    }
    assert "param `max_iter` changed from 500 to 100" in "".join(page.text)
    assert "steps.train.max_iter=100" in text
    _check_self_contained(text)


def _model(records: IrisRecords) -> ModelView:
    return model_view(
        "iris_classifier",
        records.versions,
        records.history,
        runs=records.runs,
        ingredients=records.entries,
    )


def test_model_report(records: IrisRecords) -> None:
    """One point per version with the metric; holders marked; every stage change listed."""
    view = _model(records)
    text = render_model(view)
    page = Page(text)
    with_metric = [v["number"] for v in records.versions if "accuracy" in v["metadata"]]
    points = page.find("g", "point")
    assert sorted(int(p["data-version"]) for p in points) == with_metric
    holders = dict(view.holders)
    assert holders == {"production": 1, "staging": 3}, "rolled back to v1; v3 in staging"
    assert {int(p["data-version"]): p["data-stage"] for p in points if "data-stage" in p} == {
        1: "production",
        3: "staging",
    }
    steps = page.find("li")
    assert [int(a["data-seq"]) for a in steps if "data-seq" in a] == [
        h["seq"] for h in records.history
    ]
    assert "rollback" in [a["class"] for a in steps if "data-seq" in a]
    _check_self_contained(text)


def test_model_report_identities(records: IrisRecords) -> None:
    """Params that vary are named; code is the same for all; the failed version is incomplete."""
    view = _model(records)
    by_number = {v.number: v for v in view.versions}
    assert dict(by_number[2].params)["train.C"] == "0.1"
    failed = records.run("failed")
    assert [v.number for v in view.versions if v.incomplete] == [failed["model"]["number"]]
    complete = [v for v in view.versions if not v.incomplete]
    assert len({v.code for v in complete}) == 1 and complete[0].code
    assert "mlops.examples.iris.steps:train" in dict(complete[0].code_parts)
    assert all(v.data == by_number[1].data for v in view.versions)
    text = render_model(view)
    assert 'class="changed"' not in text, "same code and data, and incomplete is no change"
    assert "train.C=0.1" in text and "promote.threshold=1.01" in text


def test_model_report_marks_changed_identities() -> None:
    """A version whose code or data differs from the one before is highlighted, once each."""
    versions = (
        VersionView(1, code="c1", data="d1"),
        VersionView(2, code="c2", data="d1"),
        VersionView(3, code="c2", data="d2"),
        VersionView(4, code="c9", data="d9", incomplete=True),
    )
    page = render_model(ModelView("m", versions))
    assert re.findall(r'<code class="changed" title="[^"]*">(\w+)</code>', page) == ["c2", "d2"]


HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "</style><b>x</b>",
    "a & b ' \" <",
    "]]><!--",
    "</details></pre></textarea>",
]


def _hostile_run(text: str) -> dict[str, Any]:
    return {
        "id": f"run-{text}",
        "pipeline": f"p{text}",
        "status": "failed",
        "started": 0.0,
        "finished": 1.0,
        "error": text,
        "overrides": [f"steps.a.x={text}"],
        "final_text": text,
        "model": {"name": f"m{text}", "number": 1, "created": True, "metrics": {text: text}},
        "config": {
            "steps": {
                "a": {"_target_": f"pkg.{text}", text: text, "n": {"k": text}},
                "b": {"_target_": "pkg.b", "x": "${step:a.out}", "f": f"${{file:{text}}}"},
            }
        },
        "steps": {
            "a": {
                "status": "ran",
                "seconds": 0.1,
                "outputs": {text: {"id": text, "format": text, "size": 3}},
                "log": text,
                "why": [text],
            },
            "b": {"status": "failed", "error": text, "traceback": text},
        },
    }


@pytest.mark.parametrize(("text", "kind"), list(itertools.product(HOSTILE, ["run", "model"])))
def test_user_text_is_escaped_everywhere(text: str, kind: str) -> None:
    """Hostile text in any field of a record never becomes markup."""
    doc = _hostile_run(text)
    if kind == "run":
        page = render_run(run_view(doc))
    else:
        version = {"number": 1, "run_id": doc["id"], "metadata": {text: 0.5, "acc": text}}
        change = {"seq": 1, "stage": "production", "version": 1, "user": text, "run_id": text}
        page = render_model(model_view(text, [version], [change], runs={doc["id"]: doc}))
    assert text not in page
    assert [t for t, _ in Page(page).tags].count("script") == 1
    assert not any(a.get("onerror") for _, a in Page(page).tags)
    assert not [t for t, _ in Page(page).tags if t in ("img", "textarea")]


def test_step_names_never_break_anchors() -> None:
    """Boxes link to their details by position, whatever the names are."""
    steps = tuple(StepView(name, "ran", deps=()) for name in ["a b", "#x", 'q"'])
    page = Page(render_run(RunView("run", "p", steps, run_id="r")))
    hrefs = [a["href"] for a in page.find("a", "step")]
    ids = [a["id"] for a in page.find("details", "step")]
    assert hrefs == [f"#{i}" for i in ids] == ["#step-0", "#step-1", "#step-2"]


def test_long_log_is_cut() -> None:
    """A huge log does not make a huge page; the page says how much was left out."""
    log = "x" * 500_000
    page = render_run(RunView("run", "p", (StepView("a", "ran", log=log),), run_id="r"))
    assert len(page) < 100_000
    assert "more characters in the stored log" in page


def test_chart_with_many_versions_and_one_value() -> None:
    """A point per version whatever the count; one repeated value still draws."""
    for n in (1, 2, 7, 60):
        versions = tuple(VersionView(i, metrics=(("acc", 0.9),)) for i in range(1, n + 1))
        page = Page(render_model(ModelView("m", versions)))
        assert len(page.find("g", "point")) == n
        circles = page.find("circle")
        ys = {c["cy"] for c in circles}
        assert len(ys) == 1, "equal values sit on one line"


def _random_dag(rng: random.Random, n: int) -> dict[str, list[str]]:
    names = [f"s{i}" for i in range(n)]
    return {
        name: rng.sample(names[:i], k=min(i, rng.randint(0, 3))) for i, name in enumerate(names)
    }


@pytest.mark.parametrize("seed", range(12))
def test_layout_left_to_right_without_overlap(seed: int) -> None:
    """On generated DAGs every edge runs rightwards, no two boxes overlap, all fit the canvas."""
    rng = random.Random(seed)
    deps = _random_dag(rng, rng.randint(1, 40))
    names = list(deps)
    lay = layout(names, deps)
    assert set(lay.boxes) == set(names)
    for route in lay.routes:
        assert lay.boxes[route.source].layer < lay.boxes[route.target].layer
        xs = [x for x, _ in route.points]
        assert xs == sorted(xs), "an edge never runs backwards"
    boxes = list(lay.boxes.values())
    for a, b in itertools.combinations(boxes, 2):
        apart_x = a.x + lay.box_width <= b.x or b.x + lay.box_width <= a.x
        apart_y = a.y + lay.box_height <= b.y or b.y + lay.box_height <= a.y
        assert apart_x or apart_y, (a, b)
    for b in boxes:
        assert b.x >= 0 and b.x + lay.box_width <= lay.width
        assert b.y >= 0 and b.y + lay.box_height <= lay.height
    assert len(lay.routes) == sum(len(d) for d in deps.values())


def test_layout_orders_to_remove_crossings() -> None:
    """Two chains given interleaved come out untangled."""
    names = ["a1", "b1", "b2", "a2", "a3", "b3"]
    deps = {"a2": ["a1"], "b2": ["b1"], "a3": ["a2"], "b3": ["b2"]}
    lay = layout(names, deps)
    columns: dict[int, list[str]] = {}
    for box in sorted(lay.boxes.values(), key=lambda b: b.y):
        columns.setdefault(box.layer, []).append(box.name)
    edges = [(d, n) for n, ds in deps.items() for d in ds]
    assert sum(crossings(columns[i], columns[i + 1], edges) for i in (0, 1)) == 0


def test_rendering_is_pure(records: IrisRecords) -> None:
    """Rendering twice gives the same page and leaves the records as they were."""
    before = json.dumps([records.runs, records.versions, records.history], sort_keys=True)
    pages = [
        (render_run(run_view(records.run("small_c"))), render_model(_model(records)))
        for _ in range(2)
    ]
    assert pages[0] == pages[1]
    assert json.dumps([records.runs, records.versions, records.history], sort_keys=True) == before


def test_import_is_light() -> None:
    """The report and diff modules import no heavy library and nothing of the registry."""
    import subprocess
    import sys

    code = (
        "import sys, mlops.report, mlops.diff; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'sklearn', 'dask', 'hydra', 'omegaconf', 'fsspec') "
        "or m in ('mlops.registry', 'mlops.run_store', 'mlops.cache', 'mlops.compiler')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
