"""Placement rules on drawn DAGs: chains stay together, a fan-out continues with its most
critical child, a fan-in runs where its largest input is; WUKONG's rule; wait-free variants."""

from __future__ import annotations

import numpy as np

from planner import placement
from planner.predict import Predictions, predict
from tests.planner.drawn import Spec, dag, diamond, fork, toy_platform

PLATFORM = toy_platform(storage_latency_s=0.01, storage_bandwidth_bps=1e6)


def setup(specs: dict[str, Spec]) -> tuple[Predictions, np.ndarray, np.ndarray]:
    pred = predict(dag("p", specs), PLATFORM)
    best = np.full(pred.n_tasks, 1, np.int64)
    lag = placement.edge_lag(pred, PLATFORM.storage_latency_s, PLATFORM.storage_bandwidth_bps)
    return pred, best, lag


def groups(pred: Predictions, worker: np.ndarray) -> list[list[str]]:
    out: dict[int, list[str]] = {}
    for t, k in zip(pred.task_ids, worker.tolist(), strict=True):
        out.setdefault(k, []).append(t)
    return [out[k] for k in sorted(out)]


def test_a_chain_is_one_worker():
    specs = {"a": Spec(()), "b": Spec(("a",)), "c": Spec(("b",))}
    pred, best, lag = setup(specs)
    assert groups(pred, placement.cluster(pred, best, lag)) == [["a", "b", "c"]]


def test_a_fan_out_continues_with_the_child_on_the_longest_path():
    pred, best, lag = setup(fork())  # x is the 6 s branch
    assert groups(pred, placement.cluster(pred, best, lag)) == [["r", "x", "s"], ["y"], ["z"]]


def test_a_fan_in_runs_where_its_largest_input_is():
    """
       a   b      a: 1 s, 10 MB out; b: 1 s, 1 KB out (transfer of 10 MB: 10 s at 1 MB/s)
        \\ /
         c
    """
    specs = {"a": Spec((), 1.0, output_bytes=1e7), "b": Spec((), 1.0, output_bytes=1e3),
             "c": Spec(("b", "a"))}
    pred, best, lag = setup(specs)
    assert groups(pred, placement.cluster(pred, best, lag)) == [["a", "c"], ["b"]]


def test_wukong_runs_a_fan_in_on_its_last_parent_and_a_fan_out_on_its_first_child():
    specs = diamond()  # b (4 s) finishes after c (1 s): d runs on b's worker
    pred, best, lag = setup(specs)
    assert groups(pred, placement.wukong(pred, best, lag)) == [["a", "b", "d"], ["c"]]
    specs["c"] = Spec(("a",), 9.0)  # now c finishes last
    pred, best, lag = setup(specs)
    assert groups(pred, placement.wukong(pred, best, lag)) == [["a", "b"], ["c", "d"]]


def test_wait_free_drops_continuations_into_fan_ins_only():
    pred, best, lag = setup(diamond())
    clustered = placement.cluster(pred, best, lag)
    assert groups(pred, placement.wait_free(pred, clustered)) == [["a", "b"], ["c"], ["d"]]


def test_singletons():
    pred, _, _ = setup(diamond())
    assert placement.singletons(pred.n_tasks).tolist() == [0, 1, 2, 3]


def test_lanes_list_schedule_onto_at_most_k_workers():
    """Four independent 1 s tasks under a root, on 2 lanes: two each, the root with the first;
    the sink goes to the lane where it can start first."""
    specs = {"r": Spec(()), **{c: Spec(("r",)) for c in "abcd"}, "s": Spec(tuple("abcd"))}
    pred, best, lag = setup(specs)
    assert groups(pred, placement.lanes(pred, best, lag, 2)) == \
        [["r", "a", "c"], ["b", "d", "s"]]
    assert groups(pred, placement.lanes(pred, best, lag, 1)) == [list("rabcds")]


def test_cpu_demand_is_cpu_work_over_duration():
    """At two CPUs a single-threaded task keeps one busy, a fully parallel one two; at one CPU
    every task keeps one."""
    specs = {"one": Spec((), parallelism=1.0), "two": Spec(("one",), parallelism=2.0)}
    pred = predict(dag("d", specs), PLATFORM)
    assert pred.cpu_demand.tolist() == [[1.0, 1.0], [1.0, 2.0]]
