"""The executor at the sizes users have: wide fan-ins whose every input is remote, a 10,000-leaf
tree, 10,000 chains, and more workers than the pool may run at once. Real Redis, both launchers;
each run's result is checked, and nothing of a run may be left in Redis afterwards.

The widths are well past redis-py 8's default pool size (100 connections), which a fan-in of 102
used to exhaust ("Too many connections", blamed on the user's task)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from planner.plan import Plan
from runtime.client import run_plan
from runtime.local import LocalLauncher
from runtime.result import RunResult
from runtime.threads import ThreadLauncher
from tests.runtime import plans, workflows
from tests.runtime.conftest import pool_processes, run_keys

TIMEOUT_S = 600.0
"""Deadline of these runs (a hang fails the test instead of blocking the suite)."""


def remote_inputs(width: int, producers: int) -> Plan:
    """A fan-in of `width` whose sink runs alone, so every one of its inputs is remote: the
    producers (and their root) are spread round-robin over `producers` workers.

        inc-0 -> add-0..add-(width-1) (on w0..w{producers-1}) -> total-0 (on "sink")
    """
    g = plans.graph(workflows.fan, width=width)
    return plans.placed(g, lambda i, t: "sink" if t == g.sink else f"w{i % producers}")


def run(plan: Plan, url: str, launcher: Any, **kw: Any) -> RunResult:
    namespace = launcher.keys.namespace if isinstance(launcher, LocalLauncher) else kw.pop(
        "namespace")
    return run_plan(plan, redis_url=url, namespace=namespace, launcher=launcher,
                    timeout_s=TIMEOUT_S, **kw)


def fan_total(width: int) -> int:
    return sum(1 + i for i in range(width))


@pytest.mark.parametrize("width", [150, 10_000])
def test_a_wide_fan_in_with_every_input_remote_runs_on_the_local_launcher(
        width: int, redis_url: str, local_launcher: LocalLauncher, client: redis.Redis) -> None:
    result = run(remote_inputs(width, 16), redis_url, local_launcher)
    assert result.result == fan_total(width)
    assert run_keys(client, local_launcher.keys.namespace) == []


@pytest.mark.parametrize("width", [150, 10_000])
def test_a_wide_fan_in_with_every_input_remote_runs_on_the_thread_launcher(
        width: int, redis_url: str, thread_launcher: ThreadLauncher, namespace: str,
        client: redis.Redis) -> None:
    result = run(remote_inputs(width, 16), redis_url, thread_launcher, namespace=namespace)
    assert result.result == fan_total(width)
    assert run_keys(client, namespace) == []


def test_a_fan_in_whose_producers_each_run_alone_runs(redis_url: str,
                                                     thread_launcher: ThreadLauncher,
                                                     namespace: str) -> None:
    """150 producer workers, one connection-hungry fetch each way (the thread launcher shares
    one data-plane client among all workers of the process)."""
    g = plans.graph(workflows.fan, width=150)
    result = run(plans.per_task(g), redis_url, thread_launcher, namespace=namespace)
    assert result.result == fan_total(150)


@pytest.mark.slow
def test_a_tree_of_10000_leaves_runs(redis_url: str, local_launcher: LocalLauncher,
                                     client: redis.Redis) -> None:
    g = plans.graph(workflows.tree, leaves=10_000)
    result = run(plans.round_robin(g, 8), redis_url, local_launcher)
    assert result.result == sum(range(1, 10_001))
    assert run_keys(client, local_launcher.keys.namespace) == []


@pytest.mark.slow
def test_10000_chains_into_one_sink_run(redis_url: str, local_launcher: LocalLauncher,
                                        client: redis.Redis) -> None:
    g = plans.graph(workflows.chains, width=10_000, length=4)
    owner: dict[str, str] = {}
    for n in g.nodes:  # each chain on one of 16 workers (whole), the sink alone
        if n.id != g.sink:
            owner[n.id] = owner[n.upstream[0]] if n.upstream else f"w{len(owner) % 16}"
    plan = plans.placed(g, lambda i, t: owner.get(t, "sink"))
    result = run(plan, redis_url, local_launcher)
    assert result.result == sum(i + 4 for i in range(10_000))
    assert run_keys(client, local_launcher.keys.namespace) == []


@pytest.fixture()
def small_pool(redis_server: Any, planflow_home: Path) -> Any:
    """A pool of its own namespace that runs at most 4 worker processes at once."""
    import uuid

    launcher = LocalLauncher(redis_server.url, f"small{uuid.uuid4().hex[:8]}", keep_warm_s=30.0,
                             shutdown_on_close=True, max_processes=4)
    launcher.ensure_pool()
    yield launcher
    launcher.close()
    assert pool_processes(launcher.keys.namespace) == []


def test_workers_waiting_for_pool_slots_are_not_presumed_dead(redis_url: str,
                                                              small_pool: LocalLauncher) -> None:
    """80 workers of 0.5 s each through 4 processes wait up to ~10 s for a slot, past the 4 s
    claim grace this run sets: their pool renews their leases while they wait, so none is
    relaunched (a relaunch would be recorded in `recovered`)."""
    g = plans.graph(workflows.slow_fan, width=80, seconds=0.5)
    result = run(plans.per_task(g), redis_url, small_pool, claim_grace_s=4.0)
    assert result.result == 80
    assert result.recovered == ()


@pytest.mark.slow
def test_1000_workers_wait_for_64_processes(redis_url: str, planflow_home: Path,
                                            redis_server: Any) -> None:
    import uuid

    launcher = LocalLauncher(redis_server.url, f"big{uuid.uuid4().hex[:8]}", keep_warm_s=30.0,
                             shutdown_on_close=True, max_processes=64)
    try:
        g = plans.graph(workflows.slow_fan, width=1000, seconds=0.5)  # ~8 s of backlog
        result = run(plans.per_task(g, memory_mb=128), redis_url, launcher, claim_grace_s=5.0)
        assert result.result == 1000
        assert result.recovered == ()
    finally:
        launcher.close()
