"""What-if simulation of a compiled plan: unchanged, every worker on one configuration, a glob
on some tasks, another platform, sampled quantiles, and errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from planner.compiler import CompileOptions, compile_graph
from planner.errors import UsageError
from planner.plan import Plan
from planner.whatif import what_if
from tests.planner.drawn import Spec, dag, diamond, toy_platform


@pytest.fixture(scope="module")
def plan() -> Plan:
    """The diamond of `drawn`: a, b, d on one 2048 MB worker; c alone on 1024 MB."""
    return compile_graph(dag("d", diamond()), CompileOptions(), platform=toy_platform())


def test_unchanged_scenario_is_the_plan_as_compiled(plan: Plan):
    report = what_if(plan, toy_platform())
    assert report.changes == ()
    assert report.compiled == report.scenario
    assert report.scenario.makespan_s == pytest.approx(plan.summary.makespan_s)
    assert report.scenario.cost_usd == pytest.approx(plan.summary.cost_usd)
    assert set(report.difference().values()) == {0}


def test_every_worker_on_one_configuration(plan: Plan):
    report = what_if(plan, toy_platform(), all_memory_mb=1024)
    assert report.scenario.makespan_s == pytest.approx(10.0)  # b takes 8 s
    assert report.difference()["makespan_s"] == pytest.approx(4.0)
    assert report.changes == ("every worker on 1024 MB",)
    assert {t["memory_mb"] for t in report.tasks} == {1024}


def test_set_moves_the_whole_worker_of_a_matching_task(plan: Plan):
    report = what_if(plan, toy_platform(), set_memory=[("c", 2048)])
    assert report.scenario.makespan_s == pytest.approx(6.0)
    assert report.scenario.gb_s == pytest.approx(14.0)  # c: 1 s x 2 GB instead of 1.5 x 1
    report = what_if(plan, toy_platform(), set_memory=[("b*", 1024)])
    assert {t["id"]: t["memory_mb"] for t in report.tasks} == {
        "a": 1024, "b": 1024, "c": 1024, "d": 1024}
    assert report.changes == ("b* -> 1024 MB (1 tasks, 1 workers)",)


def test_the_plans_own_platform_is_no_what_if_and_another_one_is(plan: Plan):
    own = what_if(plan)
    assert own.compiled_for is None and own.to_json()["what_if"] is None
    assert what_if(plan, toy_platform()).compiled_for is None  # equal to the plan's
    other = what_if(plan, toy_platform(cold_start_s=2.0, name="slow"))
    assert other.other_platform and other.compiled_for == plan.platform
    assert other.to_json()["what_if"] == {"platform": "slow", "compiled_for": plan.platform}
    assert other.scenario.makespan_s > own.scenario.makespan_s


def test_another_platform_maps_memory_to_the_nearest_larger_configuration(plan: Plan):
    from simulator import ResourceConfig

    other = toy_platform(configs=(ResourceConfig(1500, cpus=1.0), ResourceConfig(3000, cpus=2.0)),
                         name="other")
    report = what_if(plan, other)
    assert report.platform == "other"
    assert {t["memory_mb"] for t in report.tasks} == {1500, 3000}
    assert len(report.changes) == 2


def test_samples_report_quantiles_reproducibly(plan: Plan):
    one = what_if(plan, toy_platform(), all_memory_mb=1024, samples=30, seed=7)
    two = what_if(plan, toy_platform(), all_memory_mb=1024, samples=30, seed=7)
    assert one.scenario.samples == two.scenario.samples
    quantiles = one.scenario.samples["makespan_s"]  # type: ignore[index]
    assert quantiles["p50"] <= quantiles["p90"] <= quantiles["p99"]


def test_gantt_is_written(plan: Plan, tmp_path: Path):
    out = tmp_path / "g.png"
    report = what_if(plan, toy_platform(), gantt=str(out))
    assert report.gantt == str(out) and out.stat().st_size > 0


def test_errors_name_the_pattern_the_configuration_and_the_task(plan: Plan):
    with pytest.raises(UsageError, match="no task id or function name matches 'nope'"):
        what_if(plan, toy_platform(), set_memory=[("nope", 1024)])
    with pytest.raises(UsageError, match="--all 999: the platform has no such configuration"):
        what_if(plan, toy_platform(), all_memory_mb=999)
    needy = compile_graph(dag("n", {"a": Spec((), memory_mb=1500), "b": Spec(("a",))}),
                          CompileOptions(), platform=toy_platform())
    with pytest.raises(UsageError, match="task 'a' needs 1500 MB"):
        what_if(needy, toy_platform(), all_memory_mb=1024)
