"""Properties of every plan, on random DAGs with random duration tables (hypothesis).

* the plan's simulated makespan never exceeds the allowed bound;
* critical-path is never costlier than wukong when both meet the same bound;
* every task gets a feasible configuration, and a worker's tasks share its configuration;
* planning twice gives the same plan;
* the octoflows baseline never touches a critical-path worker and keeps the makespan exactly.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.compiler import CompileOptions, compile_graph
from planner.downgrade import within
from planner.graph import TaskGraph
from planner.plan import Plan
from simulator import load_platform
from tests.planner.drawn import Spec, dag

LAMBDA = load_platform("lambda")
LOCAL = load_platform("local")
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def graphs(draw: st.DrawFn, max_tasks: int = 9) -> TaskGraph:
    """A random DAG of 2..max_tasks tasks with random hints (durations, parallelism, sizes,
    memory needs); every task but the last feeds a later one."""
    n = draw(st.integers(2, max_tasks))
    specs: dict[str, Spec] = {}
    for i in range(n):
        parents: list[int] = []
        if i:
            parents = sorted(set(draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=3))))
        specs[f"t{i}"] = Spec(
            tuple(f"t{p}" for p in parents),
            expected_s=draw(st.floats(0.01, 30.0)),
            parallelism=draw(st.sampled_from([0.2, 0.5, 1.0, 1.5, 2.0, 4.0])),
            memory_mb=draw(st.sampled_from([None, None, None, 300, 2000])),
            output_bytes=draw(st.sampled_from([0.0, 1e3, 1e6, 5e7])))
    used = {p for s in specs.values() for p in s.parents}
    leaves = tuple(t for t in list(specs)[:-1] if t not in used)
    last = list(specs)[-1]
    specs[last] = Spec((*specs[last].parents, *leaves), specs[last].expected_s,
                       specs[last].parallelism, specs[last].memory_mb)
    return dag("random", specs)


def plan_of(graph: TaskGraph, platform: Any = LAMBDA, **options: Any) -> Plan:
    return compile_graph(graph, CompileOptions(**options), platform=platform)


def decisions(plan: Plan) -> tuple[Any, ...]:
    doc = plan.to_json()
    return (doc["tasks"], doc["workers"], doc["makespan_s"], doc["cost_usd"])


@SETTINGS
@given(graphs(), st.sampled_from([0.0, 0.0, 0.1, 0.5]))
def test_makespan_never_exceeds_the_bound(graph: TaskGraph, slowdown: float):
    plan = plan_of(graph, slowdown=slowdown)
    assert plan.baseline is not None
    assert within(plan.summary.makespan_s, plan.baseline.makespan_s * (1 + slowdown))
    assert plan.summary.cost_usd <= plan.baseline.cost_usd


@SETTINGS
@given(graphs())
def test_makespan_bound_holds_under_a_binding_concurrency_limit(graph: TaskGraph):
    plan = plan_of(graph, platform=LOCAL.with_overrides(concurrency_limit=2))
    assert plan.baseline is not None
    assert within(plan.summary.makespan_s, plan.baseline.makespan_s)


@SETTINGS
@given(graphs())
def test_critical_path_is_never_costlier_than_wukong_at_the_same_bound(graph: TaskGraph):
    wukong = plan_of(graph, strategy="wukong")
    planned = plan_of(graph, deadline_s=max(wukong.summary.makespan_s,
                                            plan_of(graph).summary.makespan_s))
    assert planned.summary.cost_usd <= wukong.summary.cost_usd * (1 + 1e-9)


@SETTINGS
@given(graphs(), st.sampled_from(["critical-path", "uniform", "wukong", "octoflows"]),
       st.booleans())
def test_every_task_gets_a_feasible_configuration_shared_by_its_worker(
        graph: TaskGraph, strategy: str, clustering: bool):
    plan = plan_of(graph, strategy=strategy, clustering=clustering)
    workers = {w.worker_id: w for w in plan.workers}
    for node in graph.nodes:
        decided = plan.tasks[node.id]
        assert decided.memory_mb in LAMBDA.memory_sizes
        assert decided.memory_mb >= (node.options.memory_mb or 0)
        assert decided.memory_mb == workers[decided.worker].memory_mb
        assert node.id in workers[decided.worker].tasks


@SETTINGS
@given(graphs())
def test_planning_twice_gives_the_same_plan(graph: TaskGraph):
    assert decisions(plan_of(graph)) == decisions(plan_of(graph))


@SETTINGS
@given(graphs())
def test_octoflows_keeps_the_critical_path_and_its_time_exactly(graph: TaskGraph):
    plan = plan_of(graph, strategy="octoflows")
    assert plan.baseline is not None
    assert plan.summary.makespan_s == plan.baseline.makespan_s
    best = max(LAMBDA.memory_sizes)  # the most CPUs: every worker's baseline configuration
    on_path = {plan.tasks[t].worker for t in plan.baseline.critical_path}
    for w in plan.workers:
        assert w.memory_mb == best if w.worker_id in on_path else w.memory_mb <= best
