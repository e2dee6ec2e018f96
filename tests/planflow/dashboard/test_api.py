"""The dashboard's HTTP API over real runs (tree-reduction example on worker processes, real
Redis): runs list and filters, a run's view, a task's details, the comparison, the static
report, live events, and errors that name what is wrong."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from planflow.dashboard.app import create_app
from planflow.dashboard.report import write_report
from planflow.dashboard.source import RunSource
from runtime.embedded import EmbeddedRedis
from runtime.result import RunResult
from tests.planflow.dashboard.conftest import run_example


@pytest.fixture(scope="module")
def client(redis_server: EmbeddedRedis, dash_namespace: str):
    with TestClient(create_app(redis_server.url, dash_namespace)) as c:
        yield c


def test_the_runs_page_lists_every_run_with_its_figures(client, tree_runs: list[RunResult]):
    doc = client.get("/api/runs").json()
    ids = {r["run_id"] for r in doc["runs"]}
    assert {r.dag_id for r in tree_runs} <= ids
    row = next(r for r in doc["runs"] if r["run_id"] == tree_runs[0].dag_id)
    assert row["workflow"] == "tree_reduction" and row["status"] == "ok"
    assert row["strategy"] == "critical-path" and row["tasks"] == 15
    assert row["observed_makespan_s"] > 0 and row["predicted_makespan_s"] > 0
    assert doc["strategies"] == ["critical-path", "wukong"]


def test_runs_filter_by_workflow_and_strategy(client, tree_runs: list[RunResult]):
    doc = client.get("/api/runs", params={"strategy": "wukong"}).json()
    assert [r["run_id"] for r in doc["runs"]] == [tree_runs[2].dag_id]
    assert client.get("/api/runs", params={"workflow": "nope"}).json()["runs"] == []


def test_a_runs_view_has_its_graph_timeline_pie_and_functions(client, tree_runs):
    run = tree_runs[0]
    view = client.get(f"/api/runs/{run.dag_id}").json()
    assert view["summary"]["status"] == "ok" and view["summary"]["tasks"] == 15
    assert view["graph"]["tasks_total"] == 15 and len(view["graph"]["nodes"]) == 15
    assert view["state_counts"]["finished"] == 15
    assert view["summary"]["critical_path"] == list(run.predicted.critical_path)
    pie = view["pie"]["data"][0]
    slices = dict(zip(pie["labels"], pie["values"], strict=True))
    assert slices["plan download"] > 0 and slices["start-up (cold)"] + slices[
        "start-up (warm)"] > 0
    (fn,) = view["functions"]
    assert fn["function"] == "add" and fn["tasks"] == 15 and fn["attempts"] == 15
    names = {t["name"] for t in view["gantt"]["data"]}
    assert {"planned", "observed"} <= names or {"planned, critical", "observed"} <= names


def test_a_tasks_details_name_its_configuration_worker_and_attempts(client, tree_runs):
    run = tree_runs[0]
    sink = run.predicted.critical_path[-1]
    d = client.get(f"/api/runs/{run.dag_id}/tasks/{sink}").json()
    assert d["id"] == sink and d["state"] == "finished" and d["planned"]["critical"]
    assert d["planned"]["memory_mb"] > 0 and d["planned"]["worker"] == run.tasks[sink].worker
    assert len(d["attempts"]) == 1 and d["attempts"][0]["ok"]
    assert d["attempts"][0]["input_bytes"] > 0 and len(d["upstream"]) == 2


def test_the_comparison_groups_runs_by_strategy(client, tree_runs):
    doc = client.get("/api/compare", params={"workflow": "tree_reduction"}).json()
    rows = {r["strategy"]: r for r in doc["rows"]}
    assert rows["critical-path"]["runs"] == 2 and rows["wukong"]["runs"] == 1
    for r in rows.values():
        assert r["observed_makespan_s"] > 0 and r["predicted_gb_s"] > 0
        assert r["observed_gb_s"] > 0 and r["makespan_error"] is not None
    assert doc["figure"]["data"][0]["x"] == ["critical-path", "wukong"]


def test_unknown_runs_and_tasks_are_404s_naming_them(client, tree_runs):
    res = client.get("/api/runs/dag-1700000000000-add-abcd")
    assert res.status_code == 404 and "no run dag-1700000000000-add-abcd" in res.json()["error"]
    res = client.get("/api/runs/not-a-run")
    assert res.status_code == 404 and "bad run id 'not-a-run'" in res.json()["error"]
    res = client.get(f"/api/runs/{tree_runs[0].dag_id}/tasks/nope-1")
    assert res.status_code == 404 and "no task 'nope-1'" in res.json()["error"]


def test_pages_and_assets_are_served_from_the_package(client):
    html = client.get("/").text
    assert '<script src="/static/plotly.min.js">' in html and "http" not in html.split(
        "<body>")[0].replace('href="data:,"', "")
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert client.get("/static/dashboard.js").headers["content-type"].startswith(
        "text/javascript")
    assert client.get("/static/secret.txt").status_code == 404


def test_a_redis_that_is_gone_is_a_503_naming_it(dash_namespace):
    with TestClient(create_app("redis://127.0.0.1:1/0", dash_namespace)) as c:
        res = c.get("/api/runs")
    assert res.status_code == 503 and "reading Redis failed" in res.json()["error"]


def test_the_report_is_one_self_contained_file(redis_server, dash_namespace, tree_runs,
                                               tmp_path: Path):
    source = RunSource(redis_server.url, dash_namespace)
    try:
        path = write_report(source, tree_runs[0].dag_id, tmp_path / "report.html")
    finally:
        source.close()
    html = path.read_text()
    assert not re.search(r"<script[^>]*\bsrc=|<link[^>]*stylesheet", html)  # nothing linked
    assert "plotly.js v" in html  # inlined
    start = html.index('id="pf-data">') + len('id="pf-data">')
    data = json.loads(html[start:html.index("</script>", start)])
    assert data["view"]["graph"]["tasks_total"] == 15 and len(data["tasks"]) == 15


def test_live_events_recolour_tasks_and_end_with_the_final_view(
        redis_server, dash_namespace, launcher, dashboard, tmp_path: Path, sleepy_module):
    """A workflow of sleeping tasks: the stream reports states as they change, progress, and
    ends with the final view once the run's records are in."""
    url = redis_server.url
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(
        result=run_example_module(url, launcher, sleepy_module)))
    thread.start()
    dag_id = wait_for_live_run(url, dash_namespace)
    events = []
    with httpx.stream("GET", f"{dashboard}/api/runs/{dag_id}/events", timeout=60) as res:
        name = None
        for line in res.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if name == "ended":
                    break
    thread.join(60)
    names = [n for n, _ in events]
    assert names[-1] == "ended" and events[-1][1]["status"] == "ok"
    assert events[-1][1]["view"]["state_counts"]["finished"] == 10
    finished_seen = [s for n, d in events if n == "states" for s in d.values()]
    assert "finished" in finished_seen and "running" in finished_seen
    assert names.count("states") >= 3  # states were pushed as they changed, not once


def wait_for_live_run(url: str, namespace: str, timeout_s: float = 30.0) -> str:
    source = RunSource(url, namespace)
    try:
        give_up = time.monotonic() + timeout_s
        while time.monotonic() < give_up:
            live = source.live_run_ids()
            if live:
                return live[0]
            time.sleep(0.05)
    finally:
        source.close()
    raise AssertionError("no run went live")


def run_example_module(url, launcher, module: Path) -> RunResult:
    import planflow
    from runtime.client import run_plan

    plan = planflow.compile(str(module), {}, platform="local", redis=url,
                            namespace=launcher.keys.namespace)
    return run_plan(plan, redis_url=url, namespace=launcher.keys.namespace, launcher=launcher,
                    timeout_s=120.0)


__all__ = ["run_example"]


def test_run_with_dashboard_serves_while_the_run_goes(redis_server, dash_namespace):
    from typer.testing import CliRunner

    from planflow.cli import app
    from tests.planflow.dashboard.conftest import EXAMPLES

    res = CliRunner().invoke(app, [
        "run", str(EXAMPLES / "tree_reduction.py"), "-p", "n=8", "--redis", redis_server.url,
        "--namespace", dash_namespace, "--launcher", "thread", "--dashboard", "--json"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["result"] == 28
    assert "dashboard of this run: http://127.0.0.1:" in res.stderr
    assert "dashboard stopped" in res.stderr


def test_dashboard_refuses_the_inline_executor_and_report_names_unknown_runs(
        redis_server, dash_namespace, tmp_path: Path):
    from typer.testing import CliRunner

    from planflow.cli import app
    from tests.planflow.dashboard.conftest import EXAMPLES

    res = CliRunner().invoke(app, ["run", str(EXAMPLES / "tree_reduction.py"), "--inline",
                                   "--dashboard"])
    assert res.exit_code == 2 and "drop --inline" in res.stderr
    res = CliRunner().invoke(app, ["report", "dag-1700000000000-add-abcd", "-o",
                                   str(tmp_path / "r.html"), "--redis", redis_server.url,
                                   "--namespace", dash_namespace])
    assert res.exit_code == 2 and "no run dag-1700000000000-add-abcd" in res.stderr
    assert not (tmp_path / "r.html").exists()


def test_report_command_writes_the_file(redis_server, dash_namespace, tree_runs,
                                        tmp_path: Path):
    from typer.testing import CliRunner

    from planflow.cli import app

    out = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["report", tree_runs[0].dag_id, "-o", str(out), "--redis",
                                   redis_server.url, "--namespace", dash_namespace, "--json"])
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["report"] == str(out) and doc["bytes"] == out.stat().st_size > 1_000_000
