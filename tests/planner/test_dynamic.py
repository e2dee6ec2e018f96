"""Dynamic fan-outs in the planner: the API's errors, the expected width and where it comes
from, the planning graph, the plan file, and the what-if on widths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import planflow
from metadata.access import MetadataAccess
from planflow import task, workflow
from planner.compiler import CompileOptions, compile_graph
from planner.dynamic import MAX_NEW_WORKERS, PRIOR_WIDTH, expand_graph, layout
from planner.dynamic_plan import expand_plan
from planner.errors import UsageError, WorkflowDefinitionError
from planner.loader import trace_workflow
from planner.plan import load_plan
from planner.whatif import what_if
from runtime.errors import TaskFailed
from runtime.inline import run_inline
from simulator import load_platform


@task
def make(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int, plus: int = 0) -> int:
    return x * x + plus


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def hinted(n: int = 5):
    """make-0 -> square-0 (map, hint 40) -> square-1 (map, no hint) -> total-0"""
    return total(planflow.map(square, planflow.map(square, make(n), expected_width=40)))


def widths(known: dict[str, int]) -> MetadataAccess:
    """An access without task history that knows recorded widths of `hinted`'s fan-outs."""
    return MetadataAccess.from_records(
        [],
        transfer_latency_s=0.001,
        transfer_bandwidth_bps=1e8,
        cold_start_s=0.1,
        warm_start_s=0.01,
        widths={("hinted", k): v for k, v in known.items()},
    )


def compiled(wf: Any, access: Any = None, **params: Any) -> Any:
    graph = trace_workflow(wf, {k: str(v) for k, v in params.items()})
    return compile_graph(graph, CompileOptions(platform="local"), access=access)


def test_map_needs_a_task_and_a_reference() -> None:
    @workflow
    def not_a_task():
        return planflow.map(len, make(3))

    @workflow
    def not_a_ref():
        return planflow.map(square, [1, 2, 3])

    @workflow
    def ref_in_constants():
        xs = make(3)
        return planflow.map(square, xs, plus=total(xs))

    with pytest.raises(WorkflowDefinitionError, match="must be a @task"):
        trace_workflow(not_a_task, {})
    with pytest.raises(WorkflowDefinitionError, match=r"a list; .* static fan-out"):
        trace_workflow(not_a_ref, {})
    with pytest.raises(WorkflowDefinitionError, match="'plus' holds the task reference"):
        trace_workflow(ref_in_constants, {})


def test_expected_width_comes_from_history_then_hint_then_prior() -> None:
    plain = compiled(hinted)
    assert [(d.width, d.source) for d in plain.dynamic.values()] == [
        (40, "hint"),
        (PRIOR_WIDTH, "prior"),
    ]
    learned = compiled(hinted, widths({"square-0": 7, "square-1": 3}))
    assert [(d.width, d.source) for d in learned.dynamic.values()] == [
        (7, "history"),
        (3, "history"),
    ]


def test_the_plan_states_the_width_and_folds_the_elements(tmp_path: Path) -> None:
    plan = compiled(hinted)
    assert [n.id for n in plan.graph.nodes] == ["make-0", "square-0", "square-1", "total-0"]
    assert set(plan.tasks) == {n.id for n in plan.graph.nodes}
    assert all("[" not in t for w in plan.workers for t in w.tasks)
    assert all("[" not in t for t in plan.summary.critical_path)
    again = load_plan(plan.save(tmp_path / "h.plan"))
    assert again.dynamic == plan.dynamic
    assert plan.to_json()["dynamic"]["square-0"]["width"] == 40


def test_the_planning_graph_runs_to_the_same_result() -> None:
    plan = compiled(hinted, n=6)
    expanded = expand_plan(plan, {"square-0": 6, "square-1": 6})
    assert len(expanded.graph) == 4 + 12
    assert run_inline(expanded).result == run_inline(plan).result == sum(x**4 for x in range(6))


def test_width_zero_plans_and_runs() -> None:
    graph = trace_workflow(hinted, {"n": "0"})
    assert len(expand_graph(graph, {"square-0": 0, "square-1": 0})) == 4
    plan = compiled(hinted, widths({"square-0": 0, "square-1": 0}), n=0)
    assert run_inline(plan).result == 0


def test_what_if_width_simulates_the_scenario_against_the_plan() -> None:
    plan = compiled(hinted)
    platform = load_platform("local")
    wider = what_if(plan, platform, widths={"square-0": 400})
    assert wider.changes[0] == "square-0: 400 elements (planned for 40)"
    assert wider.compiled == what_if(plan, platform).compiled
    assert wider.scenario.gb_s > wider.compiled.gb_s
    with pytest.raises(UsageError, match="not a dynamic fan-out"):
        what_if(plan, platform, widths={"total-0": 3})


def test_inline_names_the_failing_element() -> None:
    @task
    def broken(x: int) -> int:
        if x == 2:
            raise ValueError("two")
        return x

    @workflow
    def fails():
        return total(planflow.map(broken, make(4)))

    with pytest.raises(TaskFailed) as info:
        run_inline(compiled(fails))
    assert info.value.task_id == "broken-0[2]"


@given(width=st.integers(0, 30_000), local=st.integers(0, 50), per=st.integers(1, 50))
def test_layout_covers_every_element_once(width: int, local: int, per: int) -> None:
    split = layout(width, local, per)
    covered = list(range(split.local)) + [i for lo, hi in split.groups for i in range(lo, hi)]
    assert covered == list(range(width))
    assert len(split.groups) <= MAX_NEW_WORKERS
    assert all(hi - lo >= 1 for lo, hi in split.groups)


def test_a_wide_expectation_is_planned_on_a_sample_and_simulated_whole() -> None:
    @workflow
    def wide():
        return total(planflow.map(square, make(3), expected_width=5000))

    plan = compiled(wide)
    d = plan.dynamic["square-0"]
    assert d.width == 5000
    expanded = expand_plan(plan)
    assert len(expanded.graph) == 3 + 5000
    assert plan.summary.workers == len(expanded.workers)
    compiled_figures = what_if(plan, load_platform("local")).compiled
    assert compiled_figures.makespan_s == pytest.approx(plan.summary.makespan_s)
    assert compiled_figures.cost_usd == pytest.approx(plan.summary.cost_usd)
