"""Placement on a host-bound platform (`host_cpus`): the candidates, their worker counts, and
the pick by simulated makespan.

* one worker for everything is always a candidate, and so is one lane per host CPU;
* no candidate asks for more workers than `worker_cap` (host CPUs over the tasks' CPU demand,
  within the concurrency limit): CPU-bound tasks get one worker per CPU;
* the picked placement's simulated makespan is the least of the candidates' (within NEAR_TIE,
  where the cheaper wins), and the plan lists every candidate's figures.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from planner import placement
from planner.compiler import CompileOptions, compile_graph
from planner.downgrade import within
from planner.graph import TaskGraph
from planner.plan import Plan
from planner.predict import Predictions, predict
from planner.target import NEAR_TIE, worker_cap
from simulator import load_platform
from tests.planner.drawn import Spec, dag, toy_platform
from tests.planner.test_compile_properties import SETTINGS, graphs

HOST = load_platform("local").with_overrides(host_cpus=2.0)
TOY = toy_platform(storage_latency_s=0.01, storage_bandwidth_bps=1e6)


def fan_out(width: int, seconds: float = 1.0) -> dict[str, Spec]:
    """
        r
      / | \\        r: a root; c0..c{width-1}: `seconds` each; s: the reduce
    c0 c1 ... c{width-1}
      \\ | /
        s
    """
    kids = {f"c{i}": Spec(("r",), seconds) for i in range(width)}
    return {"r": Spec((), 0.01), **kids, "s": Spec(tuple(kids), 0.01)}


def host_plan(graph: TaskGraph, **options: object) -> Plan:
    return compile_graph(graph, CompileOptions(**options), platform=HOST)  # type: ignore[arg-type]


def candidates(plan: Plan) -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in plan.planning["candidates"]}


@SETTINGS
@given(graphs())
def test_the_pick_is_the_fastest_candidate_and_no_candidate_oversubscribes(graph: TaskGraph):
    plan = host_plan(graph)
    found = candidates(plan)
    assert "one worker" in found and found["one worker"]["workers"] == 1
    assert "2 lanes (one per host CPU)" in found or len(graph.nodes) == 1
    # hinted tasks keep at least one CPU busy: no candidate asks for more than the 2 CPUs
    assert all(c["workers"] <= 2 for c in found.values())
    picked = [c for c in found.values() if c["picked"]]
    assert len(picked) == 1 and picked[0]["name"] == plan.planning["placement"]
    fastest = min(c["makespan_s"] for c in found.values() if c["makespan_s"] is not None)
    assert picked[0]["makespan_s"] <= fastest * (1 + NEAR_TIE)
    assert plan.baseline is not None
    assert plan.baseline.makespan_s == picked[0]["makespan_s"]
    assert within(plan.summary.makespan_s, plan.baseline.makespan_s)
    assert len(plan.workers) <= 2


@SETTINGS
@given(st.integers(3, 24), st.floats(0.05, 5.0))
def test_a_cpu_bound_fan_out_uses_one_worker_per_host_cpu(width: int, seconds: float):
    """CPU-bound tasks (demand 1 each): two workers keep 2 CPUs busy; more only take turns."""
    plan = host_plan(dag("fan", fan_out(width, seconds)))
    assert len(plan.workers) == 2
    assert all(c["workers"] <= 2 for c in candidates(plan).values())


def test_the_one_worker_plan_wins_when_tasks_are_too_short_to_pay_a_start_up():
    plan = host_plan(dag("tiny", fan_out(8, 0.0005)))
    assert plan.planning["placement"] == "one worker"
    assert len(plan.workers) == 1


def test_the_plan_lists_every_candidate_in_a_note():
    plan = host_plan(dag("fan", fan_out(8)))
    note = next(n for n in plan.notes if n.startswith("placement: "))
    for name in candidates(plan):
        assert name in note


def with_demand(pred: Predictions, demand: float) -> Predictions:
    """`pred` whose tasks keep `demand` CPUs busy at every configuration (as a sleeping task
    learned from history does)."""
    pred.__dict__["cpu_demand"] = np.full(pred.duration_s.shape, demand)
    return pred


def test_worker_cap_is_host_cpus_over_the_mean_demand_within_the_limit():
    pred = predict(dag("fan", fan_out(20)), HOST)
    best = np.full(pred.n_tasks, len(HOST.configs) - 1, np.int64)
    assert worker_cap(with_demand(pred, 1.0), best, 2.0, 8) == 2
    assert worker_cap(with_demand(pred, 2.0), best, 2.0, 8) == 1
    assert worker_cap(with_demand(pred, 0.5), best, 2.0, 8) == 4
    assert worker_cap(with_demand(pred, 0.01), best, 2.0, 8) == 8


def groups(pred: Predictions, worker: np.ndarray) -> list[list[str]]:
    out: dict[int, list[str]] = {}
    for t, k in zip(pred.task_ids, worker.tolist(), strict=True):
        out.setdefault(k, []).append(t)
    return [out[k] for k in sorted(out)]


def test_capped_packs_chains_onto_the_worker_free_first():
    """Four 1 s chains of two tasks (a_i -> b_i) under no root, packed onto 2 workers: two
    chains each, in order of their start (ties: chain order)."""
    specs = {
        **{f"a{i}": Spec(()) for i in range(4)},
        **{f"b{i}": Spec((f"a{i}",)) for i in range(4)},
    }
    specs["s"] = Spec(tuple(f"b{i}" for i in range(4)))
    pred = predict(dag("chains", specs), TOY)
    best = np.full(pred.n_tasks, 1, np.int64)
    lag = placement.edge_lag(pred, TOY.storage_latency_s, TOY.storage_bandwidth_bps)
    chains = placement.cluster(pred, best, lag)
    assert int(chains.max()) + 1 == 4
    packed = placement.capped(pred, best, lag, chains, 2)
    assert int(packed.max()) + 1 == 2
    for group in groups(pred, packed):  # a chain is never split
        for i in range(4):
            assert (f"a{i}" in group) == (f"b{i}" in group)
    assert placement.capped(pred, best, lag, chains, 4) is chains


def test_a_lane_tie_keeps_a_consumer_on_its_largest_input():
    """
    a   b      a: 1 s, 1 KB out; b: 1 s, 10 MB out; on the toy platform with no transfer
     \\ /       cost both lanes let c start at 1 s: it goes where b (its largest input) ran.
      c
    """
    specs = {
        "a": Spec((), output_bytes=1e3),
        "b": Spec((), output_bytes=1e7),
        "c": Spec(("a", "b")),
    }
    pred = predict(dag("tie", specs), toy_platform())
    best = np.full(pred.n_tasks, 1, np.int64)
    lag = np.zeros(pred.edge_src.shape[0])
    assert groups(pred, placement.lanes(pred, best, lag, 2)) == [["a"], ["b", "c"]]
