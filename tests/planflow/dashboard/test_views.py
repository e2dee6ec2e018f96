"""The dashboard's pure parts, without Redis or a browser: the layered layout and its
aggregation, the task states, the figures (checked against plotly's schema) and the page
shell's escaping."""

from __future__ import annotations

import json
from itertools import pairwise

import plotly.graph_objects as go
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metadata.records import TaskRecord, WorkerRecord
from metadata.runplan import RunPlan
from planflow.dashboard import analysis, figures, layout, pages, views
from planflow.dashboard.rundata import LiveRun, RunData
from planflow.dashboard.states import live_states, recorded_states
from tests.planflow.dashboard.docs import tree_doc


def test_a_reduction_tree_is_drawn_as_a_tree() -> None:
    lay = layout.layout(tree_doc(8))
    gens = {n.label: n.generation for n in lay.nodes}
    assert gens == {"add-0": 0, "add-1": 0, "add-2": 0, "add-3": 0, "add-4": 1, "add-5": 1,
                    "add-6": 2}
    x = {n.label: n.x for n in lay.nodes}
    assert x["add-0"] < x["add-1"] < x["add-2"] < x["add-3"]
    assert x["add-4"] == pytest.approx((x["add-0"] + x["add-1"]) / 2)  # under its parents
    assert x["add-6"] == pytest.approx((x["add-4"] + x["add-5"]) / 2)
    assert not lay.aggregated and lay.tasks_total == 7 and len(lay.edges) == 6
    critical = {lay.nodes[i].label for e in lay.critical_edges for i in e}
    assert critical == {"add-3", "add-5", "add-6"}


def test_the_layout_does_not_lean_on_task_names() -> None:
    """Renaming every task (reversing the names' order) moves no node."""
    doc = tree_doc(16)
    rename = {t["id"]: f"t{999 - i}" for i, t in enumerate(doc["tasks"])}
    renamed = json.loads(json.dumps(doc))
    for t in renamed["tasks"]:
        t["id"] = rename[t["id"]]
        t["upstream"] = [rename[u] for u in t["upstream"]]
    renamed["critical_path"] = [rename[t] for t in doc["critical_path"]]
    a, b = layout.layout(doc), layout.layout(renamed)
    assert [(n.generation, n.x) for n in a.nodes] == [(n.generation, n.x) for n in b.nodes]


def test_a_large_graph_aggregates_by_function_and_generation() -> None:
    doc = tree_doc(2 ** 13)  # 8191 tasks
    lay = layout.layout(doc)
    assert lay.aggregated and lay.tasks_total == 8191
    assert len(lay.nodes) == 13  # one group per generation: one function
    assert [len(n.tasks) for n in lay.nodes] == [2 ** k for k in range(12, -1, -1)]
    assert lay.nodes[0].label == "add \u00d74096"
    assert set(lay.task_node.values()) == set(range(13))
    assert len(lay.edges) == 12 and len(lay.critical_edges) == 12


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 60), max_size=3), min_size=1, max_size=60))
def test_every_node_of_a_generation_is_at_least_a_gap_apart(parents: list[list[int]]) -> None:
    tasks = [{"id": f"t{i}", "function": "f",
              "upstream": sorted({f"t{p}" for p in ps if p < i})} for i, ps in enumerate(parents)]
    lay = layout.layout({"tasks": tasks, "critical_path": []})
    by_gen: dict[int, list[float]] = {}
    for n in lay.nodes:
        by_gen.setdefault(n.generation, []).append(n.x)
    for xs in by_gen.values():
        xs.sort()
        assert all(b - a >= layout.MIN_GAP - 1e-9 for a, b in pairwise(xs))
    gen = layout.generations(tasks)
    for t in tasks:
        assert all(gen[u] < gen[t["id"]] for u in t["upstream"])


def test_live_states_follow_each_workers_program_order() -> None:
    doc = tree_doc(8)  # w0: add-0, add-4; w1: add-1, add-5; w2: add-2, add-6; w3: add-3
    got = live_states(doc, finished={"add-0", "add-1"}, failed=set(),
                      started_workers={"w0", "w1", "w2"})
    assert got == {"add-0": "finished", "add-1": "finished", "add-4": "running",
                   "add-5": "waiting", "add-2": "running", "add-6": "waiting",
                   "add-3": "planned"}
    got = live_states(doc, finished={"add-0"}, failed={"add-1"}, started_workers={"w0", "w1"})
    assert got["add-1"] == "failed" and got["add-4"] == "waiting"


def _record(task_id: str, ok: bool = True, attempt: int = 1, **kw: object) -> TaskRecord:
    base: dict = {"run_id": "dag-1", "task_id": task_id, "function_key": "tree.add:1",
                  "function_name": "add", "worker_id": "w0", "memory_mb": 1769, "cpus": 1.0,
                  "attempt": attempt, "started_at": 1000.5, "input_bytes": 10, "fetch_s": 0.01,
                  "exec_s": 0.2, "output_bytes": 5, "upload_s": 0.02, "update_s": 0.005,
                  "invoke_s": 0.001, "ok": ok}
    base.update(kw)
    return TaskRecord(**base)


def test_recorded_states_after_success_and_after_failure() -> None:
    records = [_record("a"), _record("b", ok=False), _record("b", ok=True, attempt=2),
               _record("c", ok=False)]
    assert recorded_states(["a", "b", "c", "d"], records, run_ok=False) == {
        "a": "finished", "b": "finished", "c": "failed", "d": "not-run"}
    assert recorded_states(["d"], [], run_ok=True) == {"d": "finished"}  # trimmed records


def _finished_run() -> RunData:
    doc = tree_doc(8)
    tasks = tuple(_record(t["id"], started_at=1000.0 + 0.1 * i) for i, t in
                  enumerate(doc["tasks"]))
    workers = tuple(WorkerRecord("dag-1", w["worker_id"], 1769, 1.0, 1000.0, 1000.3, i == 0,
                                 0.05, 2000, 2, 1001.0) for i, w in enumerate(doc["workers"]))
    return RunData("dag-1", RunPlan("dag-1", 1000.0, doc), None, workers, tasks)


def test_where_time_went_adds_every_component_including_the_plan_download() -> None:
    got = analysis.time_components(_finished_run())
    assert list(got) == list(analysis.COMPONENTS)
    assert got["execution"] == pytest.approx(7 * 0.2)
    assert got["input download"] == pytest.approx(7 * 0.01)
    assert got["plan download"] == pytest.approx(4 * 0.05)
    assert got["start-up (cold)"] == pytest.approx(0.3)
    assert got["start-up (warm)"] == pytest.approx(3 * 0.3)


def test_per_function_rows_compare_observed_with_predicted() -> None:
    (row,) = analysis.function_rows(_finished_run())
    assert row["function"] == "add" and row["tasks"] == 7 and row["attempts"] == 7
    assert row["mean_s"] == pytest.approx(0.2) and row["predicted_s"] == pytest.approx(0.1)
    assert row["error"] == pytest.approx(1.0)  # twice as slow as predicted
    assert row["bytes_in"] == 70 and row["bytes_out"] == 35


def test_a_tasks_details_hold_plan_attempts_and_neighbours() -> None:
    d = analysis.task_detail(_finished_run(), "add-4")
    assert d is not None and d["state"] == "finished"  # an ok record
    assert d["planned"]["worker"] == "w0" and d["planned"]["memory_mb"] == 1769
    assert d["upstream"] == ["add-0", "add-1"] and d["downstream"] == ["add-6"]
    assert [a["attempt"] for a in d["attempts"]] == [1]
    assert d["attempts"][0]["start_s"] == pytest.approx(0.4)
    assert analysis.task_detail(_finished_run(), "nope") is None


def test_every_figure_is_a_valid_plotly_figure() -> None:
    data = _finished_run()
    view = views.run_view(data)
    for fig in (view["graph"]["figure"], view["gantt"], view["pie"]):
        go.Figure(fig)  # raises on any property plotly does not know
    assert "plan download" in view["pie"]["data"][0]["labels"]
    nodes = view["graph"]["figure"]["data"][figures.GRAPH_NODE_TRACE]
    assert len(nodes["x"]) == 7 and view["graph"]["tasks_total"] == 7
    rows = views.compare_rows([], {}, {})
    assert rows == []
    go.Figure(figures.compare_figure([{"strategy": "a", "predicted_makespan_s": 1.0}]))


def test_a_large_gantt_merges_touching_bars_and_bands_workers() -> None:
    planned = [analysis.Span(f"t{i}", f"w{i % 400}", i * 0.01, i * 0.01 + 0.01)
               for i in range(20_000)]
    fig = figures.gantt_figure(planned, [], [f"w{k}" for k in range(400)])
    go.Figure(fig)
    rows = fig["layout"]["yaxis"]["categoryarray"]
    assert len(rows) == figures.GANTT_ROWS_MAX and rows[0] == "w0…w4"
    assert sum(len(t["y"]) for t in fig["data"]) < 20_000
    assert "400 workers in rows of 5" in fig["layout"]["title"]["text"]


def test_live_run_without_records_draws_the_timings() -> None:
    doc = tree_doc(8)
    live = LiveRun({"total": 7, "done": 2}, (("add-0", "w0", 1000.1, 1000.2, 1),
                                             ("add-1", "w1", 1000.1, 1000.3, 1)),
                   {}, frozenset({"w0", "w1"}), frozenset())
    data = RunData("dag-1", RunPlan("dag-1", 1000.0, doc), None, live=live)
    assert data.status == "running"
    view = views.run_view(data)
    assert view["state_counts"]["finished"] == 2 and view["state_counts"]["running"] == 1
    observed = [t for t in view["gantt"]["data"] if t["name"] == "observed"]
    assert observed and observed[0]["base"] == [pytest.approx(0.1), pytest.approx(0.1)]


def test_embedded_json_cannot_end_its_script_element() -> None:
    html = pages.page("run", "a </title> b", embedded={"x": "</script><script>alert(1)"})
    assert "</script><script>alert(1)" not in html
    assert "a &lt;/title&gt; b" in html
    start = html.index('id="pf-data">') + len('id="pf-data">')
    payload = html[start:html.index("</script>", start)]
    assert json.loads(payload) == {"x": "</script><script>alert(1)"}
