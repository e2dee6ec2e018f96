"""Shared host CPUs (`Platform.host_cpus`, `simulator.host`): processor sharing of task execution.

Toy platform (conftest) with start-up, latency and transfers zeroed where a test is about CPU
sharing only, so times are the durations stretched by sharing: 1 GB = 1024 MB is 0.58 CPUs under
the Lambda rule, so the tests give configurations explicit CPUs (1 and 2).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Platform, PlatformError, ResourceConfig, SimInput, simulate
from simulator.host import HostCpus
from tests.simulator import dags
from tests.simulator.conftest import assert_log, toy_platform


def host(host_cpus: float | None, **changes: object) -> Platform:
    """Toy platform with one-CPU (1 GB) and two-CPU (2 GB) configurations, free start and I/O."""
    free = {"cold_start_s": 0.0, "warm_start_s": 0.0, "storage_latency_s": 0.0,
            "storage_bandwidth_bps": 1e18}
    return toy_platform(configs=(ResourceConfig(1024, cpus=1.0), ResourceConfig(2048, cpus=2.0)),
                        host_cpus=host_cpus, **(free | changes))


def bag(durations: list[float], configs: list[int] | None = None) -> SimInput:
    """
        t0  t1 ... tk      k+1 independent tasks on one worker each, joined by a sink
          \\  |   /         (duration 0, on t0's worker); outputs 0 bytes
            sink
    """
    n = len(durations)
    return SimInput.build([*durations, 0.0], [(i, n) for i in range(n)],
                          worker=[*range(n), 0], worker_config=configs)


def test_four_one_cpu_tasks_on_two_cpus_take_twice_as_long() -> None:
    unlimited = simulate(bag([1.0] * 4), host(None))
    shared = simulate(bag([1.0] * 4), host(2.0))
    assert unlimited.makespan_s == 1.0
    assert shared.makespan_s == 2.0
    assert list(shared.task_finish_s[:4]) == [2.0] * 4


def test_tasks_within_the_host_capacity_run_at_full_speed() -> None:
    assert simulate(bag([1.0, 3.0]), host(2.0)).makespan_s == 3.0


def test_a_finishing_task_speeds_up_the_others() -> None:
    """
    Three one-CPU tasks (1, 2, 2 s) on 2 CPUs: each runs at 2/3 until the 1 s task has done its
    work at t = 1.5; the two others have 1 s of work left at full speed: done at 2.5.
    """
    result = simulate(bag([1.0, 2.0, 2.0]), host(2.0), record_events=True)
    assert list(result.task_finish_s[:3]) == [1.5, 2.5, 2.5]
    assert result.makespan_s == 2.5


def test_sharing_is_max_min_fair_with_quotas_as_caps() -> None:
    """
    Host of 3 CPUs: one two-CPU task (2 s of work) and two one-CPU tasks (1 s). Demands
    2 + 1 + 1 = 4 > 3, the equal share is 1: the one-CPU tasks get their whole 1 CPU (full
    speed, done at 1), the two-CPU task the 1 CPU left (rate 1/2: 0.5 s of work by t = 1), then
    all 3 CPUs, so its 1.5 s left run at full speed: done at 2.5. (Proportional sharing would
    have slowed all three by 3/4.)
    """
    result = simulate(bag([2.0, 1.0, 1.0], configs=[1, 0, 0]), host(3.0))
    assert list(result.task_finish_s[:3]) == [2.5, 1.0, 1.0]


def test_a_task_never_demands_more_than_the_host() -> None:
    """A two-CPU task alone on a one-CPU host runs at full speed (its quota cannot bind)."""
    assert simulate(bag([1.0], configs=[1]), host(1.0)).makespan_s == 1.0


def test_waiting_does_not_use_host_cpus(toy: Platform) -> None:
    """A task waiting for its inputs does not slow the task that executes meanwhile (the fan-out's
    workers start once the root's output is there, so no start-up overlaps a task either)."""
    plain = simulate(dags.fan_out(), toy)
    shared = simulate(dags.fan_out(), toy.with_overrides(host_cpus=2.0))
    assert shared.makespan_s == plain.makespan_s


def test_start_ups_share_the_host_cpus() -> None:
    """Four roots on their own one-CPU workers, cold start 1 s each, on 2 CPUs: the four
    start-ups (one CPU each) share the CPUs, so all are ready at 2; then the 1 s tasks share
    them too: done at 4. The sink (0 s) on worker 0 ends there."""
    inp = bag([1.0] * 4)
    result = simulate(inp, host(2.0, cold_start_s=1.0), record_events=True)
    assert result.worker_ready_s.tolist() == [2.0] * 4
    assert result.task_finish_s[:4].tolist() == [4.0] * 4
    assert result.makespan_s == 4.0
    alone = simulate(inp, host(None, cold_start_s=1.0))
    assert alone.makespan_s == 2.0


def test_a_start_up_below_one_cpu_demands_its_configuration_cpus() -> None:
    """A half-CPU worker's start-up keeps half a CPU busy: two of them and a one-CPU task fit
    2 CPUs, so nothing is stretched."""
    plat = toy_platform(configs=(ResourceConfig(512, cpus=0.5), ResourceConfig(2048, cpus=1.0)),
                        cold_start_s=1.0, warm_start_s=0.0, storage_latency_s=0.0,
                        storage_bandwidth_bps=1e18, host_cpus=2.0)
    inp = SimInput.build([3.0, 1.0, 1.0, 0.0], [(0, 3), (1, 3), (2, 3)], worker=[0, 1, 2, 0],
                         worker_config=[1, 0, 0])
    result = simulate(inp, plat)
    assert result.worker_ready_s.tolist() == [1.0, 1.0, 1.0]


def test_event_log_and_critical_path_follow_the_stretched_durations() -> None:
    result = simulate(bag([1.0] * 3), host(1.0), record_events=True)
    assert_log(result, """
        0  worker 0  request
        0  worker 0  cold start
        0  worker 0  ready
        0  worker 1  request
        0  worker 1  cold start
        0  worker 1  ready
        0  worker 2  request
        0  worker 2  cold start
        0  worker 2  ready
        0  task 0    ready
        0  task 0    start
        0  task 1    ready
        0  task 1    start
        0  task 2    ready
        0  task 2    start
        3  task 0    finish
        3  task 0    uploaded
        3  task 1    finish
        3  task 1    uploaded
        3  task 2    finish
        3  task 2    uploaded
        3  task 3    ready
        3  task 3    start
        3  task 3    finish
        3  task 3    uploaded
        3  worker 0  stop
        3  worker 1  stop
        3  worker 2  stop
    """)
    assert result.makespan_s == 3.0
    assert result.critical_path[-1] == 3
    assert result.task_finish_s[result.critical_path[0]] == 3.0


def test_lambda_does_not_share_host_cpus_and_local_shares_this_machines() -> None:
    from simulator import load_platform
    from simulator.host_platform import host_facts

    assert load_platform("lambda").host_cpus is None
    assert load_platform("local").host_cpus == host_facts().cpus


def test_host_cpus_must_be_positive() -> None:
    with pytest.raises(PlatformError, match="host_cpus"):
        host(0.0)


def test_platform_file_reads_host_cpus(tmp_path: object) -> None:
    from pathlib import Path

    from simulator import load_platform

    path = Path(str(tmp_path)) / "box.toml"
    path.write_text('extends = "lambda"\nhost_cpus = 4\n')
    assert load_platform(str(path)).host_cpus == 4.0
    path.write_text('extends = "lambda"\nhost_cpus = -1\n')
    with pytest.raises(PlatformError, match="host_cpus"):
        load_platform(str(path))


def test_host_cpus_water_fill_by_hand() -> None:
    cpus = HostCpus(2.0, [0.5, 1.0, 2.0])
    for task, config in enumerate([0, 1, 1, 2]):
        cpus.start(0.0, task, config, 1.0)
    # demands 0.5 + 1 + 1 + 2 = 4.5 > 2: equal share 0.5 each; the 0.5-CPU task gets its 0.5
    assert cpus.rate == [1.0, 0.5, 0.25]
    assert cpus.next_completion() == (1.0, 0, 0)


durations = st.lists(st.floats(0.0, 4.0, allow_nan=False).map(lambda x: round(x * 8) / 8),
                     min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(durations, st.sampled_from([0.5, 1.0, 2.0, 3.0]), st.data())
def test_sharing_bounds_hold_for_any_bag(work: list[float], capacity: float,
                                         data: st.DataObject) -> None:
    """A bag of tasks on a shared host: makespan is at least the unshared one and the total
    CPU-seconds over the capacity, at most running them one after another; CPU share never
    makes a task faster; with ample capacity nothing changes."""
    configs = data.draw(st.lists(st.sampled_from([0, 1]), min_size=len(work),
                                 max_size=len(work)))
    inp = bag(work, configs)
    free = simulate(inp, host(None))
    shared = simulate(inp, host(capacity))
    quota = np.where(np.array(configs) == 0, 1.0, 2.0)
    demand = np.minimum(quota, capacity)
    tol = 1e-9 * (1 + sum(work))
    assert shared.makespan_s >= free.makespan_s - tol
    assert shared.makespan_s >= float(np.dot(demand, work)) / capacity - tol
    assert shared.makespan_s <= sum(work) + tol
    taken = shared.task_finish_s - shared.task_start_s
    assert np.all(taken >= inp.duration_s - tol)
    ample = simulate(inp, host(float(quota.sum())))
    assert ample.makespan_s == free.makespan_s
    assert np.array_equal(ample.task_finish_s, free.task_finish_s)


def test_order_does_not_lean_on_task_names() -> None:
    """The same bag with tasks listed in reverse finishes each task at the same time."""
    work = [1.0, 2.0, 0.5, 1.5]
    forward = simulate(bag(work), host(2.0)).task_finish_s[:4]
    backward = simulate(bag(work[::-1]), host(2.0)).task_finish_s[:4]
    assert list(forward) == list(backward[::-1])


def test_slack_holds_the_sharing_fixed() -> None:
    """Slack is computed on the stretched durations: a bag's tasks finishing last have none."""
    result = simulate(bag([1.0, 1.0, 0.5]), host(1.0))
    assert result.slack_s[0] == 0.0 or result.slack_s[1] == 0.0
    assert dataclasses.is_dataclass(result)


def test_a_task_takes_of_the_host_only_the_cpus_it_keeps_busy() -> None:
    """Two single-threaded tasks on two-CPU workers (config 1): by their configuration they
    would demand 4 CPUs of 2; with their demand of one CPU each, both run at full speed."""
    by_config = bag([1.0, 1.0], configs=[1, 1])
    assert simulate(by_config, host(2.0)).makespan_s == 2.0
    single = dataclasses.replace(by_config, cpu_demand=np.array([1.0, 1.0, 1.0]))
    assert simulate(single, host(2.0)).makespan_s == 1.0


def test_a_cpu_demand_per_task_is_checked() -> None:
    with pytest.raises(Exception, match="cpu_demand"):
        dataclasses.replace(bag([1.0]), cpu_demand=np.array([1.0]))
    with pytest.raises(Exception, match="cpu_demand"):
        dataclasses.replace(bag([1.0]), cpu_demand=np.array([1.0, 0.0]))


def test_moving_data_uses_the_host_cpus_too() -> None:
    """On one machine an upload or a fetch is (de)serialising and copying: CPU work. Two 1 s
    tasks, each with a 1 s upload, on a 1-CPU host: 4 s of work, done at 4; the sink's 1 s
    fetch then runs alone (done at 5). With the CPUs unshared: 2, then 3."""
    inp = SimInput.build([1.0, 1.0, 0.0], [(0, 2), (1, 2)], worker=[0, 1, 0],
                         output_bytes=[1.0, 1.0, 0.0])
    assert simulate(inp, host(None).with_overrides(storage_bandwidth_bps=1.0)).makespan_s == 3.0
    shared = simulate(inp, host(1.0).with_overrides(storage_bandwidth_bps=1.0))
    assert list(shared.task_finish_s[:2]) == [2.0, 2.0]  # each part stretched alike: the
    assert list(shared.task_done_s[:2]) == [4.0, 4.0]  # execution by 2, the upload by 4
    assert shared.makespan_s == 5.0
