"""The reports opened from disk in a real headless Chromium, as a user opens them.

Debian's ``chromium`` driven by Playwright through ``executable_path`` (no browser download).
Skipped only when Chromium or Playwright is missing on a developer's machine; under CI
(``CI=true``) a missing one fails the test, since ``.ci/run`` installs both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from report_records import IrisRecords, iris_plan, iris_records

from mlops.report import (
    model_view,
    plan_view,
    render_model,
    render_plan,
    render_run,
    run_view,
)
from mlops.report.adapters import CACHED_WHY

CHROMIUM = os.environ.get("MLOPS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}; CI must run the browser tests (.ci/run installs it)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def records(tmp_path_factory: pytest.TempPathFactory) -> IrisRecords:
    return iris_records(tmp_path_factory)


class Opened:
    """A report opened in a fresh page, with every request and console message it caused."""

    def __init__(self, browser: Any, path: Path, *, javascript: bool = True) -> None:
        self.context = browser.new_context(
            java_script_enabled=javascript, viewport={"width": 1280, "height": 860}
        )
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # anything but the file itself is refused, so a fetch shows as a request and an error
        self.context.route(
            "**/*",
            lambda route: (
                route.continue_() if route.request.url == path.as_uri() else route.abort()
            ),
        )
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")
        self.path = path

    def boxes(self) -> dict[str, str]:
        return dict(
            self.page.eval_on_selector_all(
                "svg.graph a.step",
                "els => els.map(e => [e.dataset.step, e.dataset.status])",
            )
        )

    def check_offline_and_clean(self) -> None:
        assert self.requests == [self.path.as_uri()], "only the file itself was loaded"
        problems = [m for m in self.console if m.startswith(("error", "warning"))]
        assert problems == [] and self.errors == []

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def opened(browser: Any) -> Iterator[Any]:
    pages: list[Opened] = []

    def open_(path: Path, **kwargs: Any) -> Opened:
        pages.append(Opened(browser, path, **kwargs))
        return pages[-1]

    yield open_
    for p in pages:
        p.close()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("role", ["small_c", "failed", "predict"])
def test_run_report_in_browser(
    records: IrisRecords, opened: Any, tmp_path: Path, role: str
) -> None:
    """Every step is drawn with its status and time; clicking a box opens its details."""
    doc = records.run(role)
    if role == "failed":  # a traceback as the run record keeps it (user frames only)
        doc = {**doc, "steps": {**doc["steps"]}}
        doc["steps"]["train"] = {
            **doc["steps"]["train"],
            "traceback": 'File "steps.py", line 40, in train\n    model.fit(X, y)\nValueError: C',
        }
    path = _write(tmp_path, f"run-{role}.html", render_run(run_view(doc)))
    view = opened(path)
    expected = {
        n: (doc["steps"].get(n) or {}).get("status", "skipped") for n in doc["config"]["steps"]
    }
    assert view.boxes() == expected
    page = view.page
    for name, status in expected.items():
        box = page.locator(f'svg.graph a.step[data-step="{name}"]')
        assert box.is_visible()
        text = box.locator("text").all_text_contents()
        assert text[0] == name and text[1].startswith(status)
        seconds = (doc["steps"].get(name) or {}).get("seconds")
        if seconds is not None:
            assert text[1].endswith("s")
    target = next(n for n in expected if expected[n] != "skipped")
    details = page.locator(f'details.step[data-step="{target}"]')
    assert details.get_attribute("open") is None or expected[target] == "failed"
    page.locator(f'svg.graph a.step[data-step="{target}"]').click()
    assert details.get_attribute("open") is not None
    assert details.locator("h3", has_text="Outputs").is_visible()
    for name, status in expected.items():  # why each step ran, as the run record keeps it
        why = (doc["steps"].get(name) or {}).get("why")
        if status in ("ran", "failed"):
            assert why, f"the record of {name} ({status}) says why it ran"
        elif status == "cached":
            why = [CACHED_WHY]
        if not why:
            continue
        page.locator(f'svg.graph a.step[data-step="{name}"]').click()
        panel = page.locator(f'details.step[data-step="{name}"]')
        assert panel.get_attribute("open") is not None
        assert panel.locator("h3", has_text="Why it ran").is_visible()
        assert panel.locator("h3 + ul li").all_inner_texts() == why
    if role == "small_c":
        train = page.locator('details.step[data-step="train"] h3 + ul li')
        assert train.all_inner_texts() == ["param `C` changed from 1.0 to 0.1"]
    if role == "failed":
        failed = page.locator('details.step[data-step="train"]')
        assert failed.locator("pre.traceback").inner_text().endswith("ValueError: C")
        assert "Got -1 instead" in failed.locator("pre.error").inner_text()
    view.check_offline_and_clean()
    page.screenshot(path=str(tmp_path / f"run-{role}.png"), full_page=True)


def test_plan_report_in_browser(records: IrisRecords, opened: Any, tmp_path: Path) -> None:
    """A plan's boxes say cached / will run / may run; hovering shows why (the SVG title)."""
    doc = iris_plan(records.registry, "steps.train.C=3")
    path = _write(tmp_path, "plan.html", render_plan(plan_view(doc)))
    view = opened(path)
    assert view.boxes() == {
        "load_data": "cached",
        "split": "cached",
        "train": "will run",
        "evaluate": "may run",
        "promote": "will run",
    }
    tip = view.page.locator('a.step[data-step="train"] > title').text_content()
    assert "param `C` changed" in tip
    view.check_offline_and_clean()
    view.page.screenshot(path=str(tmp_path / "plan.png"), full_page=True)


def test_model_report_in_browser(records: IrisRecords, opened: Any, tmp_path: Path) -> None:
    """The chart has one point per version, the holders are marked, the history is listed."""
    mv = model_view(
        "iris_classifier",
        records.versions,
        records.history,
        runs=records.runs,
        ingredients=records.entries,
    )
    path = _write(tmp_path, "model.html", render_model(mv))
    view = opened(path)
    page = view.page
    chart = page.locator('svg.chart[data-metric="accuracy"]')
    assert chart.is_visible()
    with_metric = sorted(v["number"] for v in records.versions if "accuracy" in v["metadata"])
    points = chart.locator("g.point")
    assert sorted(int(p.get_attribute("data-version")) for p in points.all()) == with_metric
    assert points.count() == len(with_metric)
    for p in points.all():
        box = p.locator("circle").last.bounding_box()
        assert box is not None and box["width"] > 0
    marked = {p.get_attribute("data-stage") for p in chart.locator("g.point[data-stage]").all()}
    assert marked == {"production", "staging"}
    assert chart.locator("text.stage").all_text_contents() == ["production", "staging"]
    assert page.locator("ol.timeline li").count() == len(records.history)
    assert page.locator("table.versions tbody tr").count() == len(records.versions)
    view.check_offline_and_clean()
    page.screenshot(path=str(tmp_path / "model.png"), full_page=True)


def test_run_report_without_javascript(records: IrisRecords, opened: Any, tmp_path: Path) -> None:
    """With scripts off the graph still shows, and a box still leads to its step's details."""
    doc = records.run("small_c")
    path = _write(tmp_path, "run-nojs.html", render_run(run_view(doc)))
    view = opened(path, javascript=False)
    page = view.page
    svg = page.locator("svg.graph")
    box = svg.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 40
    assert len(view.boxes()) == len(doc["config"]["steps"])
    for rect in svg.locator("rect").all():
        assert (rect.bounding_box() or {}).get("width", 0) > 50
    page.locator('svg.graph a.step[data-step="train"]').click()
    assert page.url.endswith("#step-2")
    details = page.locator("details.step:target")
    assert details.get_attribute("data-step") == "train"
    details.locator("summary").click()  # <details> opens without any script
    assert details.locator("h3", has_text="Params").is_visible()
    view.check_offline_and_clean()
    page.screenshot(path=str(tmp_path / "run-nojs.png"), full_page=True)


def test_guard_sees_a_fetch(opened: Any, tmp_path: Path) -> None:
    """The offline check itself fails on a page that fetches something or logs an error."""
    path = _write(
        tmp_path,
        "fetching.html",
        '<!DOCTYPE html><html><body><img src="https://example.invalid/x.png">'
        "<script>console.error('boom')</script></body></html>",
    )
    view = opened(path)
    assert any(u.startswith("https://example.invalid/") for u in view.requests)
    with pytest.raises(AssertionError):
        view.check_offline_and_clean()
