"""The dashboard in a real browser (headless Debian chromium under Playwright) against real
runs: the runs page lists them and filters, the run page draws the graph with every task,
shows the plan-download slice, opens a task's details on a click, recolours tasks live while a
run of sleeping tasks goes (pushed, no reload), the comparison and the static report render;
no page logs a console error. Screenshots are saved (see conftest) for people to look at."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from planflow.dashboard.figures import GRAPH_NODE_TRACE
from planflow.dashboard.report import write_report
from planflow.dashboard.source import RunSource
from runtime.result import RunResult
from tests.planflow.dashboard.test_api import run_example_module, wait_for_live_run

READY_TIMEOUT_MS = 60_000


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']", timeout=READY_TIMEOUT_MS)


def graph_points(page: Any) -> int:
    return int(page.evaluate(
        f"document.getElementById('graph').data[{GRAPH_NODE_TRACE}].x.length"))


def click_task(page: Any, label: str) -> None:
    """Click the graph node labelled `label` where a person would: on its marker."""
    index = page.evaluate(
        f"document.getElementById('graph').data[{GRAPH_NODE_TRACE}].text.indexOf({label!r})")
    assert index >= 0, f"no node labelled {label}"
    point = page.locator("#graph .scatterlayer .trace").nth(GRAPH_NODE_TRACE) \
        .locator("path.point").nth(index)
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_runs_page_lists_the_runs_and_filters_them(page, dashboard, tree_runs: list[RunResult],
                                                   artifacts: Path):
    open_page(page, f"{dashboard}/")
    text = page.inner_text("#runs")
    for run in tree_runs:
        assert run.dag_id in text
    page.screenshot(path=str(artifacts / "runs.png"), full_page=True)
    page.select_option("#filter-strategy", "wukong")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    assert tree_runs[2].dag_id in page.inner_text("#runs")
    assert "strategy=wukong" in page.url
    assert page.problems == []


def test_run_page_draws_every_task_the_pie_and_a_tasks_details(
        page, dashboard, tree_runs: list[RunResult], artifacts: Path):
    run = tree_runs[0]
    open_page(page, f"{dashboard}/runs/{run.dag_id}")
    assert graph_points(page) == 15
    assert page.inner_text("#state-counts [data-state='finished'] .count") == "15"
    legend = page.locator("#pie .legendtext").all_text_contents()  # SVG text
    assert "plan download" in legend
    page.screenshot(path=str(artifacts / "run.png"), full_page=True)
    sink = run.predicted.critical_path[-1]
    click_task(page, sink)
    page.wait_for_selector("#task-title")
    details = page.inner_text("#details")
    assert sink in page.inner_text("#task-title")
    for shown in ("configuration", "MB", run.tasks[sink].worker, "Attempts", "exec"):
        assert shown in details
    page.locator("#details").screenshot(path=str(artifacts / "run-task-details.png"))
    assert page.problems == []


def test_states_update_live_while_a_workflow_runs(page, dashboard, redis_server,
                                                  dash_namespace, launcher, sleepy_module,
                                                  artifacts: Path):
    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(result=run_example_module(
        redis_server.url, launcher, sleepy_module)))
    thread.start()
    try:
        dag_id = wait_for_live_run(redis_server.url, dash_namespace)
        open_page(page, f"{dashboard}/runs/{dag_id}")
        page.evaluate("window.__sameDocument = true")
        assert graph_points(page) == 10
        assert page.locator("#progress-bar").count() == 1, "the page opened after the run"
        page.wait_for_function(
            "Number(document.querySelector(\"#state-counts [data-state='finished'] .count\")"
            ".textContent) >= 2", timeout=READY_TIMEOUT_MS)
        page.screenshot(path=str(artifacts / "run-live.png"), full_page=True)
        page.wait_for_selector("body[data-ended='ok']", timeout=READY_TIMEOUT_MS)
    finally:
        thread.join(60)
    assert outcome["result"].result == 10
    assert page.evaluate("window.__sameDocument") is True  # pushed, never reloaded
    assert int(page.evaluate("document.body.dataset.updates")) >= 3
    assert page.inner_text("#state-counts [data-state='finished'] .count") == "10"
    page.screenshot(path=str(artifacts / "run-live-ended.png"), full_page=True)
    assert page.problems == []


def test_comparison_page_shows_each_strategy(page, dashboard, tree_runs, artifacts: Path):
    open_page(page, f"{dashboard}/compare?workflow=tree_reduction")
    rows = page.locator("main table tbody tr").all_inner_texts()
    assert len(rows) == 2 and rows[0].startswith("critical-path") and rows[1].startswith(
        "wukong")
    page.screenshot(path=str(artifacts / "compare.png"), full_page=True)
    assert page.problems == []


def test_the_static_report_works_without_a_server(page, redis_server, dash_namespace,
                                                  tree_runs, artifacts: Path):
    source = RunSource(redis_server.url, dash_namespace)
    try:
        path = write_report(source, tree_runs[0].dag_id, artifacts / "report.html")
    finally:
        source.close()
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(
        "file:") else route.continue_())  # no network at all
    open_page(page, path.as_uri())
    assert graph_points(page) == 15
    click_task(page, tree_runs[0].predicted.critical_path[0])
    page.wait_for_selector("#task-title")
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    assert page.problems == []
