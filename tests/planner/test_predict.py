"""Predictions: the hint model at every configuration, recorded edge bytes, feasibility,
quantiles, and history from metadata when it exists."""

from __future__ import annotations

import numpy as np
import pytest

from metadata.access import MetadataAccess
from planner.compiler import CompileOptions, compile_graph
from planner.errors import PlanningError
from planner.graph import TaskCode, TaskGraph, TaskNode
from planner.predict import predict
from planner.trace import TaskOptions
from tests.metadata.factories import task as task_record
from tests.planner.drawn import Spec, dag, diamond, toy_platform


def test_hint_model_at_every_configuration():
    pred = predict(dag("d", diamond()), toy_platform())
    # a: e=1, p=1 -> 1 s at 1 and 2 CPUs; b: e=4, p=2 -> 8 s at 1 CPU, 4 s at 2
    # c: e=1, p=1.5 -> 1.5 s at 1 CPU, 1 s at 2
    assert pred.duration_s.tolist() == [[1.0, 1.0], [8.0, 4.0], [1.5, 1.0], [1.0, 1.0]]
    assert pred.source_counts() == {"history": 0, "history-other-config": 0, "hint": 4,
                                    "prior": 0}


def test_tasks_without_hints_use_the_global_prior():
    specs = {"a": Spec(()), "b": Spec(("a",))}
    graph = dag("p", specs)
    bare = TaskGraph.create("p", [TaskNode(n.id, n.function, n.function_key,
                                           TaskOptions(name=n.id), n.upstream)
                                  for n in graph.nodes], graph.code)
    pred = predict(bare, toy_platform())
    assert (pred.source == "prior").all()
    assert np.allclose(pred.duration_s, 0.1)
    assert pred.edge_bytes.tolist() == [1024.0]


def test_recorded_edge_bytes_override_predicted_output_sizes():
    opts = TaskOptions(name="f", expected_s=1.0, output_bytes=5.0)
    nodes = [TaskNode("a", "f", "k.f", opts), TaskNode("b", "f", "k.f", opts),
             TaskNode("c", "f", "k.f", opts, ("a", "b"), edge_bytes=(100.0, 200.0),
                      storage_bytes=7.0)]
    graph = TaskGraph.create("w", nodes, {n.id: TaskCode(print) for n in nodes})
    pred = predict(graph, toy_platform())
    assert list(zip(pred.edge_src.tolist(), pred.edge_dst.tolist(), pred.edge_bytes.tolist(),
                    strict=True)) == [(0, 2, 100.0), (1, 2, 200.0)]
    assert pred.storage_bytes.tolist() == [0.0, 0.0, 7.0]


def test_least_memory_makes_smaller_configurations_infeasible():
    specs = {"a": Spec((), memory_mb=1500), "b": Spec(("a",))}
    pred = predict(dag("m", specs), toy_platform())
    assert pred.feasible.tolist() == [[False, True], [True, True]]
    specs["a"] = Spec((), memory_mb=4096)
    with pytest.raises(PlanningError, match="task 'a' needs 4096 MB, more than the largest"):
        predict(dag("m", specs), toy_platform())


def test_quantile_plans_on_longer_durations():
    graph = dag("d", diamond())
    median = predict(graph, toy_platform())
    p90 = predict(graph, toy_platform(), quantile=0.9)
    assert (p90.duration_s > median.duration_s).all()
    plan = compile_graph(graph, CompileOptions(quantile=0.9), platform=toy_platform())
    assert plan.summary.makespan_s > 6.0
    assert any("0.9-quantile" in note for note in plan.notes)


def test_history_from_metadata_replaces_the_hint_and_is_counted():
    graph = dag("d", diamond())
    key = graph.node("b").function_key
    records = [task_record(key, cpus=c, memory_mb=int(1024 * c), exec_s=10.0 / c, input_bytes=0)
               for c in (1.0, 2.0) for _ in range(3)]
    access = MetadataAccess.from_records(records, transfer_latency_s=0.0,
                                         transfer_bandwidth_bps=1e18, cold_start_s=0.0,
                                         warm_start_s=0.0)
    pred = predict(graph, toy_platform(), access=access)
    assert pred.source.tolist() == ["hint", "history", "hint", "hint"]
    assert pred.duration_s[1].tolist() == pytest.approx([10.0, 5.0], rel=0.05)
    plan = compile_graph(graph, CompileOptions(), access=access, platform=toy_platform())
    assert plan.prediction_sources["history"] == 1
    assert plan.tasks["b"].prediction_source == "history"


def test_cpu_demand_comes_from_measured_cpu_time() -> None:
    """b slept through its recorded runs (0.01 s of CPU in 1 s): the simulator's input says it
    keeps 0.01 CPU busy; the others keep the demand their durations imply (one CPU)."""
    graph = dag("d", diamond())
    key = graph.node("b").function_key
    records = [task_record(key, run_id=f"dag-{i}", cpus=c, memory_mb=int(1024 * c), exec_s=1.0,
                           cpu_s=0.01, contention_s=0.0, input_bytes=0)
               for c in (1.0, 2.0) for i in range(3)]
    access = MetadataAccess.from_records(records, transfer_latency_s=0.0,
                                         transfer_bandwidth_bps=1e18, cold_start_s=0.0,
                                         warm_start_s=0.0)
    pred = predict(graph, toy_platform(), access=access)
    assert pred.cpu_demand[1].tolist() == pytest.approx([0.01, 0.01])
    assert pred.cpu_demand[0].tolist() == pred.derived_cpu_demand[0].tolist() == [1.0, 1.0]


def test_learned_platform_takes_the_measured_start_ups() -> None:
    from planner.predict import learned_platform
    from tests.metadata.factories import worker

    records = [worker(f"dag-{i}", cold=False, requested_at=1.0, started_at=1.01,
                      plan_download_s=0.01) for i in range(3)]
    access = MetadataAccess.from_records([], worker_records=records, transfer_latency_s=0.0,
                                         transfer_bandwidth_bps=1e9, cold_start_s=1.0,
                                         warm_start_s=0.5)
    platform = learned_platform(toy_platform(), access)
    assert platform.warm_start_s == pytest.approx(0.02)
    assert platform.cold_start_s == toy_platform().cold_start_s
    assert learned_platform(toy_platform(), None) == toy_platform()
