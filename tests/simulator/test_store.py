"""The store as one serial server (`Platform.store_throughput_bps`) and the shared-memory path
(`Platform.shm_bandwidth_bps`): hand-computed cases and properties.

The hand cases use a platform with free start-up, no latency and an unbounded per-worker link,
so every second comes from the store: throughput 100 bytes/s (100 bytes = 1 s).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import shm
from simulator import Platform, ResourceConfig, SimInput, simulate
from simulator.store import SHM_MIN_BYTES
from tests.simulator.conftest import toy_platform
from tests.simulator.test_properties import MAX_TASKS, TOL, check_critical_path, sim_inputs


def store(**changes: object) -> Platform:
    """Free start-up and link; a store of 100 bytes/s and no per-request time."""
    base = {"cold_start_s": 0.0, "warm_start_s": 0.0, "storage_latency_s": 0.0,
            "storage_bandwidth_bps": 1e18, "store_throughput_bps": 100.0, "store_op_s": 0.0}
    return toy_platform(**(base | changes))


def pair_into_sink(out0: float, out1: float) -> SimInput:
    """
        t0   t1      two 1 s tasks on workers 0 and 1, outputs out0 and out1 bytes,
          \\ /        joined by a sink (0 s, 0 bytes) on worker 2
          sink
    """
    return SimInput.build([1.0, 1.0, 0.0], [(0, 2), (1, 2)], output_bytes=[out0, out1, 0.0],
                          worker=[0, 1, 2], delayed_io=[True] * 3)


def test_runtime_and_simulator_agree_on_the_shared_memory_threshold() -> None:
    assert SHM_MIN_BYTES == shm.SHM_MIN_BYTES


def test_two_uploads_at_once_queue_at_the_store() -> None:
    """Both tasks finish at 1 and upload 100 bytes: t0's (lower index) is served 1-2, t1's
    2-3; the sink's worker starts at 3 and fetches 200 bytes in one batch, 3-5."""
    result = simulate(pair_into_sink(100.0, 100.0), store())
    assert result.task_done_s.tolist() == [2.0, 3.0, 5.0]
    assert result.task_start_s[2] == 5.0
    links = simulate(pair_into_sink(100.0, 100.0), store(store_throughput_bps=None))
    assert math.isclose(links.makespan_s, 1.0)  # independent links of unbounded bandwidth


def test_every_request_costs_the_store_its_operation_time() -> None:
    """op = 0.25 s: uploads 1-2.25 and 2.25-3.5; the sink's two-value fetch 3.5-6 (2 x 0.25 +
    2 s), its own upload of 0 bytes 6-6.25."""
    result = simulate(pair_into_sink(100.0, 100.0), store(store_op_s=0.25))
    assert result.task_done_s.tolist() == [2.25, 3.5, 6.25]
    assert result.task_finish_s[2] == 6.0


def test_a_shared_memory_value_skips_the_store() -> None:
    """Store and shared memory both move 2**18 bytes/s. t0's 2**17 bytes go through the store
    (1-1.5); t1's 2**19 (over the threshold) are written to shared memory (1-2), then only a
    reference is stored (no time). The sink at 2 fetches t0's bytes from the store (2-2.5),
    then reads t1's file (1 s): start 3.5. Without the shared-memory path t1's upload queues
    behind t0's (1.5-3.5) and the sink fetches 2.5 s: 6."""
    rate = float(SHM_MIN_BYTES)
    inp = pair_into_sink(2.0**17, 2.0**19)
    shared = simulate(inp, store(store_throughput_bps=rate, shm_bandwidth_bps=2.0**19))
    assert shared.task_done_s.tolist() == [1.5, 2.0, 3.5]
    through_store = simulate(inp, store(store_throughput_bps=rate))
    assert through_store.task_done_s.tolist() == [1.5, 3.5, 6.0]


def test_shared_memory_without_the_store_model_uses_its_own_bandwidth() -> None:
    """Link-only: latency 0.5 s; t1's 2**19 bytes at 2**19 bytes/s through shared memory take
    1 s (+ the reference's latency) instead of 2**19 / 100 s through the link."""
    inp = pair_into_sink(0.0, 2.0**19)
    plat = toy_platform(cold_start_s=0.0, warm_start_s=0.0, storage_bandwidth_bps=100.0,
                        shm_bandwidth_bps=2.0**19)
    result = simulate(inp, plat)
    assert result.task_done_s[:2].tolist() == [1.5, 2.5]
    assert result.task_start_s[2] == 2.5 + 0.5 + 1.0


def test_store_and_host_cpus_together() -> None:
    """Four one-CPU tasks (1 s) on 2 CPUs finish at 2; their 100-byte uploads are served
    2-3, 3-4, 4-5, 5-6. The sink (on t0's worker, 0 s) fetches its three remote inputs
    (300 bytes) from 6: done at 9."""
    configs = (ResourceConfig(1024, cpus=1.0), ResourceConfig(2048, cpus=2.0))
    inp = SimInput.build([1.0] * 4 + [0.0], [(i, 4) for i in range(4)],
                         output_bytes=[100.0] * 4 + [0.0], worker=[0, 1, 2, 3, 0])
    result = simulate(inp, store(configs=configs, host_cpus=2.0))
    assert result.task_finish_s[:4].tolist() == [2.0] * 4
    assert result.task_done_s.tolist() == [3.0, 4.0, 5.0, 6.0, 9.0]
    check_critical_path(result)


def test_pre_load_downloads_are_served_by_the_store_too() -> None:
    """Uploads are served 1-2 (t0) and 2-3 (t1); the pre-loading sink worker starts when its
    inputs are all available (3) and requests both then: t0's download is served 3-4, t1's
    (behind it on the worker's link) 4-5: the sink starts at 5."""
    inp = SimInput.build([1.0, 1.0, 0.0], [(0, 2), (1, 2)], output_bytes=[100.0, 100.0, 0.0],
                         worker=[0, 1, 2], delayed_io=[True] * 3,
                         worker_preload=[False, False, True])
    result = simulate(inp, store())
    assert result.task_done_s[:2].tolist() == [2.0, 3.0]
    assert result.task_start_s[2] == 5.0
    check_critical_path(result)


settings.register_profile("simulator", deadline=None, max_examples=150)
settings.load_profile("simulator")


def plain(**changes: object) -> Platform:
    """One configuration per possible worker (no container reuse), unlimited concurrency."""
    configs = tuple(ResourceConfig(1024 * (i + 1)) for i in range(MAX_TASKS))
    return toy_platform(configs=configs, **changes)


@given(sim_inputs(plain=True), st.sampled_from([10.0, 100.0, 1000.0]),
       st.sampled_from([0.0, 0.01, 0.5]))
def test_the_store_never_makes_a_run_faster_than_independent_links(
    inp: SimInput, throughput: float, op: float
) -> None:
    """Every transfer ends no earlier than on its own link, and without greedy decisions the
    model is monotone: so no task is done earlier with the store than without."""
    links = simulate(inp, plain())
    served = simulate(inp, plain(store_throughput_bps=throughput, store_op_s=op))
    assert served.makespan_s >= links.makespan_s - TOL
    assert (served.task_done_s >= links.task_done_s - TOL).all()


@given(sim_inputs(), st.sampled_from([50.0, 1000.0]), st.booleans(), st.booleans())
def test_with_the_store_the_critical_path_is_tight(
    inp: SimInput, throughput: float, shared: bool, cpus: bool
) -> None:
    plat = toy_platform(store_throughput_bps=throughput, store_op_s=0.125,
                        shm_bandwidth_bps=200.0 if shared else None,
                        host_cpus=1.0 if cpus else None)
    result = simulate(inp, plat)
    check_critical_path(result)
    assert (result.slack_s >= 0).all()
    assert result.makespan_s == result.task_done_s.max()
    assert math.isfinite(result.cost_usd)
    assert np.all(result.task_start_s >= result.task_ready_s - TOL)


def test_a_fetch_of_nothing_still_waits_for_the_store() -> None:
    """Start-ups take 0.5 s. t1 (1 s) hands t2 a 0-byte value at 1.5; t2's worker is ready at
    2 and requests it (no latency, no request time), but t0's 100-byte upload (not delayed)
    occupies the store 1.75-2.75: the fetch is served at 2.75. With independent links t2 starts
    at 2."""
    inp = SimInput.build([1.25, 1.0, 1.0, 0.0], [(0, 3), (1, 2), (2, 3)],
                         output_bytes=[100.0, 0.0, 0.0, 0.0], worker=[0, 1, 2, 0],
                         delayed_io=[False, True, True, True])
    result = simulate(inp, store(cold_start_s=0.5, warm_start_s=0.5))
    assert result.task_done_s[:2].tolist() == [2.75, 1.5]
    assert result.task_start_s[2] == 2.75
    links = simulate(inp, store(cold_start_s=0.5, warm_start_s=0.5, store_throughput_bps=None))
    assert links.task_start_s[2] == 2.0
