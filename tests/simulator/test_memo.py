"""The engine memo (`simulator.simulate.EngineMemo`): a repeated simulation, or one that differs
only in what the bill reads (memory, prices), gives exactly the result of a fresh engine run;
anything the engine reads (durations, start-ups, pre-warm, which workers share a configuration,
the host's demand classes) makes a fresh run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simulator import Platform, SimInput, SimResult, SimulatorError, simulate
from simulator.simulate import EngineMemo
from tests.simulator.conftest import toy_platform


def _random_input(seed: int, n: int = 300, configs: tuple[int, ...] = (0, 1)) -> SimInput:
    """A random DAG: task t > 0 depends on 1-2 earlier tasks, every output reaches the sink
    n - 1; about half the tasks continue the previous task's worker."""
    rng = np.random.default_rng(seed)
    pairs = {(int(rng.integers(0, t)), t) for t in range(1, n) for _ in range(2)}
    has_consumer = {a for a, _ in pairs}
    edges = sorted(pairs | {(t, n - 1) for t in range(n - 1) if t not in has_consumer})
    worker = np.empty(n, np.int64)
    count = 0
    for t in range(n):
        if t and rng.random() < 0.5:
            worker[t] = worker[t - 1]
        else:
            worker[t], count = count, count + 1
    return SimInput.build(rng.lognormal(0.0, 1.0, n), edges,
                          output_bytes=rng.lognormal(4.0, 1.0, n), worker=worker,
                          worker_config=rng.choice(configs, count),
                          worker_preload=rng.random(count) < 0.25,
                          delayed_io=rng.random(n) < 0.5)


def _same(a: SimResult, b: SimResult) -> None:
    for field in dataclasses.fields(SimResult):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name == "timeline":
            assert x.critical_nodes == y.critical_nodes
            np.testing.assert_array_equal(x.node_time, y.node_time)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y, field.name


PLATFORMS = {
    "links": toy_platform(),
    "host": toy_platform(host_cpus=1.5),
    "host+store": toy_platform(host_cpus=1.5, store_throughput_bps=400.0, store_op_s=0.01),
}


@pytest.mark.parametrize("name", sorted(PLATFORMS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_hit_is_the_fresh_run(name: str, seed: int) -> None:
    platform: Platform = PLATFORMS[name]
    inp = _random_input(seed)
    memo = EngineMemo()
    first = simulate(inp, platform, memo=memo)
    again = simulate(inp, platform, memo=memo)
    assert memo.hits == 1
    _same(again, simulate(inp, platform, memo=None))
    _same(first, again)


def test_memory_and_prices_only_change_the_bill() -> None:
    """Two configurations that differ only in memory: one engine run, two bills."""
    base = toy_platform(host_cpus=1.5)
    same_cpus = dataclasses.replace(base.configs[1], cpus=base.configs[0].cpus)
    platform = dataclasses.replace(base, configs=(base.configs[0], same_cpus))
    memo = EngineMemo()
    small = _random_input(4, configs=(0,))
    large = dataclasses.replace(small, worker_config=np.ones_like(small.worker_config))
    a = simulate(small, platform, memo=memo)
    b = simulate(large, platform, memo=memo)
    assert memo.hits == 1
    _same(b, simulate(large, platform, memo=None))
    assert a.makespan_s == b.makespan_s and b.cost_usd > a.cost_usd


@pytest.mark.parametrize("change", ["duration", "config", "prewarm", "limit"])
def test_what_the_engine_reads_makes_a_fresh_run(change: str) -> None:
    platform = toy_platform(host_cpus=1.5)
    inp = _random_input(5)
    memo = EngineMemo()
    simulate(inp, platform, memo=memo)
    if change == "duration":
        other = dataclasses.replace(inp, duration_s=inp.duration_s * 1.5)
    elif change == "config":  # the host shares different CPUs
        other = dataclasses.replace(inp, worker_config=1 - inp.worker_config)
    elif change == "prewarm":
        other = dataclasses.replace(inp, worker_prewarm_at_s=np.zeros(inp.n_workers))
    else:
        platform = platform.with_overrides(concurrency_limit=3)
        other = inp
    try:
        fresh = simulate(other, platform, memo=None)
    except SimulatorError:
        with pytest.raises(SimulatorError):
            simulate(other, platform, memo=memo)
        return
    _same(simulate(other, platform, memo=memo), fresh)
    assert memo.hits == 0


def test_a_deadlock_is_remembered_and_raised_again() -> None:
    platform = toy_platform(concurrency_limit=1)
    inp = SimInput.build([1.0, 1.0, 1.0], [(0, 2), (1, 2)], worker=[0, 1, 0])
    memo = EngineMemo()
    for _ in range(2):
        with pytest.raises(SimulatorError, match="deadlocks"):
            simulate(inp, platform, memo=memo)
    assert memo.hits == 1
