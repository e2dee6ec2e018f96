"""Event-log tests: small drawn DAGs (tests/simulator/dags.py) with timelines computed by hand.

Toy platform (conftest): cold 1 s, warm 0.25 s, keep-warm 10 s, latency 0.5 s, 100 bytes/s, so
one 100-byte transfer takes 1.5 s. Log lines are `time who what`, ordered by time, then causally.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator import Platform, SimulatorError, simulate
from tests.simulator import dags
from tests.simulator.conftest import assert_log, toy_platform


def test_chain_on_one_worker_moves_data_for_free(toy: Platform) -> None:
    result = simulate(dags.chain_one_worker(), toy, record_events=True)
    assert_log(result, """
        0    worker 0  request
        0    worker 0  cold start
        1    worker 0  ready
        1    task 0    ready
        1    task 0    start
        2    task 0    finish
        2    task 1    ready
        2    task 1    start
        4    task 1    finish
        4    task 2    ready
        4    task 2    start
        7    task 2    finish
        8.5  task 2    uploaded
        8.5  worker 0  stop
    """)
    assert result.makespan_s == 8.5
    assert result.critical_path == (0, 1, 2)
    assert result.cost_usd == pytest.approx(8.5 * 1.0 + 0.25)
    assert list(result.slack_s) == [0, 0, 0]


def test_without_delayed_io_every_output_is_uploaded(toy: Platform) -> None:
    result = simulate(dags.chain_one_worker(delayed_io=False), toy, record_events=True)
    uploads = [(t, who) for t, who, what in result.events if what == "uploaded"]
    assert uploads == [(3.5, "task 0"), (7.0, "task 1"), (11.5, "task 2")]
    assert result.makespan_s == 11.5  # two extra 1.5 s uploads


def test_fan_out_starts_both_branches_when_the_root_output_is_stored(toy: Platform) -> None:
    result = simulate(dags.fan_out(), toy, record_events=True)
    assert_log(result, """
        0    worker 0  request
        0    worker 0  cold start
        1    worker 0  ready
        1    task 0    ready
        1    task 0    start
        2    task 0    finish
        3.5  task 0    uploaded
        3.5  worker 1  request
        3.5  worker 1  cold start
        3.5  worker 2  request
        3.5  worker 2  cold start
        4.5  worker 1  ready
        4.5  task 1    ready
        4.5  worker 2  ready
        4.5  task 2    ready
        6    task 1    start
        6    task 2    start
        8    task 1    finish
        8.5  task 2    finish
        10   task 2    uploaded
        10   worker 2  stop
        10.5 task 1    uploaded
        10.5 task 3    ready
        10.5 worker 1  stop
        14   task 3    start
        15   task 3    finish
        15.5 task 3    uploaded
        15.5 worker 0  stop
    """)
    assert result.critical_path == (0, 1, 3)
    assert result.slack_s.tolist() == [0, 0, 0.5, 0]
    # worker 0 is billed while it waits for b and c; workers 1 and 2 for 7 and 6.5 s
    assert result.worker_billed_s.tolist() == [15.5, 7.0, 6.5]
    assert result.gb_s == 29.0
    assert result.cost_usd == pytest.approx(29.0 + 3 * 0.25)


def test_fan_in_fetches_remote_inputs_as_one_batch(toy: Platform) -> None:
    result = simulate(dags.fan_in(), toy, record_events=True)
    assert_log(result, """
        0    worker 0  request
        0    worker 0  cold start
        0    worker 1  request
        0    worker 1  cold start
        0    worker 2  request
        0    worker 2  cold start
        1    worker 0  ready
        1    task 0    ready
        1    task 0    start
        1    worker 1  ready
        1    task 1    ready
        1    task 1    start
        1    worker 2  ready
        1    task 2    ready
        1    task 2    start
        2    task 0    finish
        2    task 1    finish
        3    task 2    finish
        3.5  task 1    uploaded
        3.5  worker 1  stop
        6.5  task 2    uploaded
        6.5  task 3    ready
        6.5  worker 2  stop
        11   task 3    start
        12   task 3    finish
        12.5 task 3    uploaded
        12.5 worker 0  stop
    """)
    # d fetches b (100 B) and c (300 B) together: 0.5 + 400 / 100 = 4.5 s; a's output is local
    assert result.critical_path == (2, 3)
    assert result.slack_s.tolist() == [4.5, 3.0, 0, 0]
    assert result.gb_s == 12.5 + 2 * 3.5 + 6.5  # worker 1 has 2 GB
    assert result.cold_starts == 3


def test_diamond_on_a_shared_worker(toy: Platform) -> None:
    result = simulate(dags.diamond_shared_worker(), toy, record_events=True)
    assert_log(result, """
        0    worker 0  request
        0    worker 0  cold start
        1    worker 0  ready
        1    task 0    ready
        1    task 0    start
        2    task 0    finish
        3.5  task 0    uploaded
        3.5  task 2    ready
        3.5  task 2    start
        3.5  worker 1  request
        3.5  worker 1  cold start
        4.5  worker 1  ready
        4.5  task 1    ready
        6    task 1    start
        6.5  task 2    finish
        7    task 1    finish
        8.5  task 1    uploaded
        8.5  task 3    ready
        8.5  worker 1  stop
        10   task 3    start
        11   task 3    finish
        12.5 task 3    uploaded
        12.5 worker 0  stop
    """)
    assert result.task_uploads.tolist() == [True, True, False, True]  # c -> d is local
    assert result.critical_path == (0, 1, 3)
    assert result.slack_s[2] == 2.0  # c could run until d's inputs arrive


@pytest.mark.parametrize(("b_duration", "c_cold"), [(1.0, False), (6.0, False), (6.5, True)])
def test_warm_reuse_within_keep_warm(toy: Platform, b_duration: float, c_cold: bool) -> None:
    """c (1 GB) reuses a's container (1 GB), idle since 3.5, if requested within 10 s
    (inclusive: requested at 13.5 is still warm)."""
    result = simulate(dags.chain_three_workers(b_duration), toy, record_events=True)
    assert result.worker_cold.tolist() == [True, True, c_cold]
    assert result.worker_request_s[2] == 7.5 + b_duration
    start_up = 1.0 if c_cold else 0.25
    assert result.makespan_s == 7.5 + b_duration + start_up + 1.5 + 1 + 1.5
    if b_duration == 1.0:
        assert_log(result, """
            0     worker 0  request
            0     worker 0  cold start
            1     worker 0  ready
            1     task 0    ready
            1     task 0    start
            2     task 0    finish
            3.5   task 0    uploaded
            3.5   worker 0  stop
            3.5   worker 1  request
            3.5   worker 1  cold start
            4.5   worker 1  ready
            4.5   task 1    ready
            6     task 1    start
            7     task 1    finish
            8.5   task 1    uploaded
            8.5   worker 1  stop
            8.5   worker 2  request
            8.5   worker 2  warm start
            8.75  worker 2  ready
            8.75  task 2    ready
            10.25 task 2    start
            11.25 task 2    finish
            12.75 task 2    uploaded
            12.75 worker 2  stop
        """)


def test_preload_overlaps_the_download_with_earlier_work(toy: Platform) -> None:
    result = simulate(dags.preload_pair(preload=True), toy, record_events=True)
    assert_log(result, """
        0    worker 0  request
        0    worker 0  cold start
        0    worker 1  request
        0    worker 1  cold start
        1    worker 0  ready
        1    task 0    ready
        1    task 0    start
        1    worker 1  ready
        1    task 1    ready
        1    task 1    start
        2    task 0    finish
        3.5  task 0    uploaded
        3.5  worker 0  stop
        3.5  task 2    fetch task 0
        5    task 1    finish
        5    task 2    got task 0
        5    task 2    ready
        5    task 2    start
        6    task 2    finish
        7.5  task 2    uploaded
        7.5  worker 1  stop
    """)
    without = simulate(dags.preload_pair(preload=False), toy)
    assert without.task_start_s[2] == 6.5  # fetch starts when the worker reaches c
    assert without.makespan_s == result.makespan_s + 1.5


@pytest.mark.parametrize(("preload", "start"), [(True, 7.5), (False, 8.5)])
def test_storage_reads_happen_when_the_worker_reaches_the_task(
    toy: Platform, preload: bool, start: float
) -> None:
    """c reads 200 B from storage. Pre-loading: a's output arrives by 5, the storage read is
    requested at 5 and ends at 5 + 0.5 + 2 = 7.5. Without: one batch 0.5 + 300/100 from 5."""
    result = simulate(dags.preload_pair(preload, storage_bytes=200), toy)
    assert result.task_start_s[2] == start


def test_preloads_arriving_together_share_the_link(toy: Platform) -> None:
    result = simulate(dags.preload_two_inputs(), toy, record_events=True)
    fetches = [e for e in result.events if e[1] == "task 3"]
    assert fetches == [
        (3.5, "task 3", "fetch task 0"),
        (3.5, "task 3", "fetch task 1"),
        (5.0, "task 3", "got task 0"),  # latencies overlap, bytes take turns on the link
        (5.5, "task 3", "ready"),  # c is done
        (6.0, "task 3", "got task 1"),
        (6.0, "task 3", "start"),
        (7.0, "task 3", "finish"),
        (7.5, "task 3", "uploaded"),
    ]
    # the download of b's output is on the critical path, queued behind a's on the link
    assert result.critical_path[-1] == 3
    assert result.timeline.node_label(result.timeline.critical_nodes[-2]) == "download 1->3"


def test_concurrency_limit_queues_worker_starts() -> None:
    platform = toy_platform(concurrency_limit=2)
    result = simulate(dags.three_roots_join(), platform, record_events=True)
    assert_log(result, """
        0     worker 0  request
        0     worker 0  cold start
        0     worker 1  request
        0     worker 1  cold start
        0     worker 2  request
        1     worker 0  ready
        1     task 0    ready
        1     task 0    start
        1     worker 1  ready
        1     task 1    ready
        1     task 1    start
        2     task 0    finish
        3     task 1    finish
        4.5   task 1    uploaded
        4.5   worker 1  stop
        4.5   worker 2  warm start
        4.75  worker 2  ready
        4.75  task 2    ready
        4.75  task 2    start
        5.75  task 2    finish
        7.25  task 2    uploaded
        7.25  task 3    ready
        7.25  worker 2  stop
        9.75  task 3    start
        10.75 task 3    finish
        12.25 task 3    uploaded
        12.25 worker 0  stop
    """)
    assert result.critical_path == (1, 2, 3)  # c waited for b's worker to free a slot
    assert result.cost_usd == pytest.approx(12.25 + 4.5 + 2.75 + 3 * 0.25)


def test_a_worker_waiting_for_a_queued_worker_is_a_deadlock() -> None:
    """a, d on w0 and b on w1 with one slot: w0 holds it while d waits for b."""
    inp = dags.SimInput.build([1, 1, 1], [(0, 2), (1, 2)], worker=[0, 1, 0])
    with pytest.raises(SimulatorError, match="concurrency limit"):
        simulate(inp, toy_platform(concurrency_limit=1))


def test_prewarm_starts_the_worker_before_its_inputs_exist(toy: Platform) -> None:
    result = simulate(dags.prewarmed_pair(0.5), toy, record_events=True)
    assert_log(result, """
        0    worker 0  request
        0    worker 0  cold start
        0.5  worker 1  prewarm
        0.5  worker 1  cold start
        1    worker 0  ready
        1    task 0    ready
        1    task 0    start
        1.5  worker 1  ready
        2    task 0    finish
        3.5  task 0    uploaded
        3.5  task 1    ready
        3.5  worker 0  stop
        5    task 1    start
        6    task 1    finish
        7.5  task 1    uploaded
        7.5  worker 1  stop
    """)
    assert result.worker_prewarmed.tolist() == [False, True]
    assert result.gb_s == 3.5 + 2 * 7.0  # the 2 GB worker is billed from 0.5, idle included
    cold = simulate(dags.prewarmed_pair(math.nan), toy)
    assert cold.makespan_s == result.makespan_s + 1.0  # its cold start was on the path


def test_prewarm_later_than_the_inputs_is_ignored(toy: Platform) -> None:
    late = simulate(dags.prewarmed_pair(10.0), toy)
    plain = simulate(dags.prewarmed_pair(math.nan), toy)
    assert late.worker_prewarmed.tolist() == [False, False]
    assert late.makespan_s == plain.makespan_s
    assert np.array_equal(late.task_start_s, plain.task_start_s)


def test_a_critical_prewarmed_start_up_starts_the_critical_path(toy: Platform) -> None:
    """Pre-warmed at 3: ready at 4, after a's output (3.5), so b waits for its worker."""
    result = simulate(dags.prewarmed_pair(3.0), toy)
    assert result.task_ready_s[1] == 4.0
    assert result.critical_path == (1,)
    assert result.timeline.node_label(result.timeline.critical_nodes[0]) == "worker 1"
    assert result.slack_s[0] == 0.5


def test_billing_rounds_each_worker_up_to_the_granularity() -> None:
    platform = toy_platform(billing_granularity_s=1.0)
    result = simulate(dags.fan_out(), platform)
    assert result.worker_billed_s.tolist() == [16.0, 7.0, 7.0]
    assert result.cost_usd == pytest.approx(30.0 + 0.75)
