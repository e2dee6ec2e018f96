"""The planner on drawn DAGs whose right plan is known by hand (toy platform: see `drawn`).

Each drawing is compiled twice, once with its names reversed, so nothing leans on name order.
"""

from __future__ import annotations

import pytest

from planner.compiler import CompileOptions, compile_graph
from planner.errors import PlanningError
from planner.plan import Plan
from tests.planner.drawn import Spec, chain, dag, diamond, fork, reversed_names, toy_platform

NAMINGS = ["as drawn", "reversed"]


def compile_drawn(specs: dict[str, Spec], naming: str, **options: object) -> tuple[Plan, dict]:
    rename = reversed_names(specs) if naming == "reversed" else {t: t for t in specs}
    graph = dag("drawn", specs, rename)
    plan = compile_graph(graph, CompileOptions(**options), platform=toy_platform())  # type: ignore[arg-type]
    return plan, rename


def memory(plan: Plan, rename: dict[str, str]) -> dict[str, int]:
    return {t: plan.tasks[rename[t]].memory_mb for t in rename}


def same_worker(plan: Plan, rename: dict[str, str], *tasks: str) -> bool:
    return len({plan.tasks[rename[t]].worker for t in tasks}) == 1


@pytest.mark.parametrize("naming", NAMINGS)
def test_chain_runs_on_one_worker_at_the_configuration_where_nothing_slows(naming: str):
    plan, rn = compile_drawn(chain(), naming)
    assert same_worker(plan, rn, "a", "b", "c") and len(plan.workers) == 1
    assert memory(plan, rn) == {"a": 1024, "b": 1024, "c": 1024}
    assert plan.summary.makespan_s == pytest.approx(6.0)
    assert plan.summary.gb_s == pytest.approx(6.0)  # 1 GB x 6 s
    assert plan.baseline is not None and plan.baseline.gb_s == pytest.approx(12.0)
    (down,) = plan.downgrades
    assert (down.from_mb, down.to_mb, down.slack_s) == (2048, 1024, None)
    assert down.saved_gb_s == pytest.approx(6.0)
    assert "no task gets slower at 1024 MB" in down.reason
    assert all(t.critical for t in plan.tasks.values())


@pytest.mark.parametrize("naming", NAMINGS)
def test_diamond_downgrades_the_branch_with_slack_and_keeps_the_critical_worker(naming: str):
    plan, rn = compile_drawn(diamond(), naming)
    assert same_worker(plan, rn, "a", "b", "d") and not same_worker(plan, rn, "a", "c")
    assert memory(plan, rn) == {"a": 2048, "b": 2048, "c": 1024, "d": 2048}
    assert plan.summary.makespan_s == pytest.approx(6.0)
    assert plan.summary.gb_s == pytest.approx(12.0 + 1.5)
    c = plan.tasks[rn["c"]]
    assert not c.critical and c.slack_s == pytest.approx(2.5)
    assert c.reasons[0] == "downgrade: slack 3 s; 2048 -> 1024 MB saves 0.5 GB-s"
    assert [plan.tasks[rn[t]].critical for t in "abd"] == [True, True, True]
    assert plan.summary.critical_path == tuple(rn[t] for t in "abd")


@pytest.mark.parametrize("naming", NAMINGS)
def test_fork_downgrades_every_branch_that_fits_its_slack(naming: str):
    specs = fork()
    specs["y"] = Spec(("r",), 2.0, 1.5)  # 2 s at 2048 MB, 3 s at 1024 MB: 3 GB-s < 4
    specs["z"] = Spec(("r",), 1.0, 1.5)
    plan, rn = compile_drawn(specs, naming)
    assert same_worker(plan, rn, "r", "x", "s")
    assert memory(plan, rn) == {"r": 2048, "x": 2048, "y": 1024, "z": 1024, "s": 2048}
    assert plan.summary.makespan_s == pytest.approx(8.0)


@pytest.mark.parametrize("naming", NAMINGS)
def test_least_memory_keeps_a_worker_on_a_configuration_that_fits(naming: str):
    specs = chain()
    specs["b"] = Spec(("a",), 2.0, memory_mb=1500)
    plan, rn = compile_drawn(specs, naming)
    assert memory(plan, rn) == {"a": 2048, "b": 2048, "c": 2048}
    plan, rn = compile_drawn(specs, naming, clustering=False)
    assert memory(plan, rn) == {"a": 1024, "b": 2048, "c": 1024}
    assert len(plan.workers) == 3


def two_parallel_steps() -> dict[str, Spec]:
    """
    a -> b       e = 2, p = 1.5: 2 s each at 2048 MB, 3 s each at 1024 MB
    """
    return {"a": Spec((), 2.0, 1.5), "b": Spec(("a",), 2.0, 1.5)}


@pytest.mark.parametrize("naming", NAMINGS)
def test_deadline_buys_a_slower_cheaper_plan_and_rejects_an_impossible_one(naming: str):
    plan, rn = compile_drawn(two_parallel_steps(), naming, deadline_s=6.0)
    assert memory(plan, rn) == {"a": 1024, "b": 1024}
    assert plan.summary.makespan_s == pytest.approx(6.0)
    plan, rn = compile_drawn(two_parallel_steps(), naming, deadline_s=5.9)
    assert memory(plan, rn) == {"a": 2048, "b": 2048}
    with pytest.raises(PlanningError, match="fastest predicted makespan"):
        compile_drawn(two_parallel_steps(), naming, deadline_s=3.0)


def test_slowdown_is_compared_float_safely():
    # 4 s x 1.5 is 6.000000000000001 or 5.999999999999999 depending on rounding: both fit 6 s
    plan, rn = compile_drawn(two_parallel_steps(), "as drawn", slowdown=0.5)
    assert memory(plan, rn) == {"a": 1024, "b": 1024}
    plan, rn = compile_drawn(two_parallel_steps(), "as drawn", slowdown=0.49)
    assert memory(plan, rn) == {"a": 2048, "b": 2048}


def test_uniform_takes_the_cheapest_single_configuration_within_the_bound():
    plan, rn = compile_drawn(chain(), "as drawn", strategy="uniform")
    assert set(memory(plan, rn).values()) == {1024}
    plan, rn = compile_drawn(diamond(), "as drawn", strategy="uniform")
    assert set(memory(plan, rn).values()) == {2048}  # b would take 8 s at 1024 MB
    cp, _ = compile_drawn(diamond(), "as drawn")
    assert cp.summary.cost_usd < plan.summary.cost_usd


def test_uniform_and_wukong_honour_memory_mb():
    plan, rn = compile_drawn(diamond(), "as drawn", strategy="uniform", memory_mb=1024)
    assert set(memory(plan, rn).values()) == {1024}
    assert plan.summary.makespan_s == pytest.approx(10.0)
    assert any("exceeds the bound" in n for n in plan.notes)
    plan, rn = compile_drawn(diamond(), "as drawn", strategy="wukong")
    assert set(memory(plan, rn).values()) == {2048}
    with pytest.raises(PlanningError, match="no such configuration"):
        compile_drawn(diamond(), "as drawn", strategy="uniform", memory_mb=1000)


def test_octoflows_never_touches_the_critical_path():
    plan, rn = compile_drawn(chain(), "as drawn", strategy="octoflows")
    assert set(memory(plan, rn).values()) == {2048}  # all critical: nothing tried
    cp, _ = compile_drawn(chain(), "as drawn")
    assert cp.summary.cost_usd == pytest.approx(plan.summary.cost_usd / 2)
    plan, rn = compile_drawn(diamond(), "as drawn", strategy="octoflows")
    assert memory(plan, rn) == {"a": 2048, "b": 2048, "c": 1024, "d": 2048}
    assert plan.summary.makespan_s == plan.baseline.makespan_s


def test_the_optimizations_can_be_switched_off():
    specs = {"a": Spec((), 1.0, output_bytes=1e6), "b": Spec(("a",), 1.0, output_bytes=1e6),
             "c": Spec(("a",), 1.0, output_bytes=1e6), "d": Spec(("b", "c"), 1.0)}
    platform = toy_platform(cold_start_s=0.5, storage_latency_s=0.01)
    on = compile_graph(dag("d", specs), CompileOptions(), platform=platform)
    assert {o for t in on.tasks.values() for o in t.optimizations} >= {
        "clustering", "delayed-io", "pre-load", "pre-warm"}
    off = compile_graph(dag("d", specs), CompileOptions(
        clustering=False, delayed_io=False, prewarm=False, preload=False), platform=platform)
    assert {o for t in off.tasks.values() for o in t.optimizations} <= {"downgrade"}
    assert len(off.workers) == 4
    assert all(w.prewarm_at_s is None and not w.preload for w in off.workers)
    assert on.summary.makespan_s < off.summary.makespan_s
