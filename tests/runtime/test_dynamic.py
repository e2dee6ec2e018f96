"""Dynamic fan-outs (`planflow.map`) on the decentralized executor: results equal the inline
executor's at every width, elements retry and fail by name, and nothing of a run is left."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import redis

import planflow
from metadata.access import MetadataAccess
from metadata.store import MetricsStore
from planflow import task, workflow
from planner.compiler import CompileOptions, compile_graph
from planner.dynamic import MAX_NEW_WORKERS
from planner.plan import Plan
from runtime.client import run_plan
from runtime.errors import TaskFailed
from runtime.inline import run_inline
from runtime.local import LocalLauncher
from runtime.threads import ThreadLauncher
from tests.runtime import counters, plans
from tests.runtime.conftest import run_keys


@task
def make(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int, plus: int = 0) -> int:
    return x * x + plus


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@task
def rows(n: int) -> list[list[int]]:
    return [list(range(i)) for i in range(n)]


@task(retries=2, retry_backoff_s=0.01)
def flaky(x: int) -> int:
    """Fails the first two attempts of element 3 (counted per process: thread launcher)."""
    with counters.LOCK:
        counters.CALLS[f"flaky-{x}"] += 1
        calls = counters.CALLS[f"flaky-{x}"]
    if x == 3 and calls <= 2:
        raise RuntimeError(f"attempt {calls} of {x}")
    return -x


@task
def broken(x: int) -> int:
    if x == 17:
        raise ValueError("seventeen")
    return x


@task
def number(n: int) -> int:
    return n


@task
def dies_once(x: int, marker_dir: str, at: tuple[int, ...]) -> int:
    """Kills its own process the first time it runs element `x` in `at` (a marker file)."""
    marker = Path(marker_dir) / str(x)
    if x in at and not marker.exists():
        marker.write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return 10 * x


@workflow
def mapped(n: int = 10):
    """make-0 -> square-0 (map, n elements) -> total-0"""
    return total(planflow.map(square, make(n), plus=1))


@workflow
def chained(n: int = 6):
    """make-0 -> square-0 (map) -> square-1 (map over its result) -> total-0, and rows-0 ->
    total-1 (map of total over lists) beside it: a map whose elements are lists."""
    twice = planflow.map(square, planflow.map(square, make(n)))
    sums = planflow.map(total, rows(n))
    return {"twice": total(twice), "sums": sums, "raw": twice}


@workflow
def with_flaky(n: int = 6):
    return total(planflow.map(flaky, make(n)))


@workflow
def with_broken(n: int = 30):
    return total(planflow.map(broken, make(n)))


@workflow
def with_deaths(n: int = 9, marker_dir: str = "", at: str = "0,5"):
    kill = tuple(int(i) for i in at.split(","))
    return total(planflow.map(dies_once, make(n), marker_dir=marker_dir, at=kill))


@workflow
def not_a_list():
    return total(planflow.map(square, number(3)))


def compiled(wf: Any, **params: Any) -> Plan:
    return compile_graph(plans.graph(wf, **params), CompileOptions(platform="local"))


def run(plan: Plan, url: str, namespace: str, launcher: Any, **kw: Any) -> Any:
    return run_plan(
        plan,
        redis_url=url,
        namespace=namespace,
        launcher=launcher,
        timeout_s=kw.pop("timeout_s", 120.0),
        **kw,
    )


@pytest.mark.parametrize("n", [0, 1, 1000])
def test_widths_equal_inline_and_leave_nothing(
    n: int, redis_url: str, namespace: str, thread_launcher: ThreadLauncher, client: redis.Redis
) -> None:
    plan = compiled(mapped, n=n)
    result = run(plan, redis_url, namespace, thread_launcher)
    assert result.result == run_inline(plan).result == sum(x * x + 1 for x in range(n))
    assert {f"square-0[{i}]" for i in range(n)} <= set(result.tasks)
    assert run_keys(client, namespace) == []


def test_nested_chains_equal_inline(
    redis_url: str, namespace: str, thread_launcher: ThreadLauncher, client: redis.Redis
) -> None:
    plan = compiled(chained, n=7)
    result = run(plan, redis_url, namespace, thread_launcher).result
    assert result == run_inline(plan).result
    assert result["raw"] == [x**4 for x in range(7)]
    assert result["sums"] == [sum(range(i)) for i in range(7)]
    assert run_keys(client, namespace) == []


def test_a_failing_element_is_retried_in_place(
    redis_url: str, namespace: str, thread_launcher: ThreadLauncher
) -> None:
    counters.CALLS.clear()
    result = run(compiled(with_flaky), redis_url, namespace, thread_launcher)
    assert result.result == -sum(range(6))
    assert counters.CALLS["flaky-3"] == 3
    assert result.tasks["flaky-0[3]"].attempts == 3


def test_an_element_that_keeps_failing_fails_the_run_by_name(
    redis_url: str, namespace: str, thread_launcher: ThreadLauncher, client: redis.Redis
) -> None:
    with pytest.raises(TaskFailed) as info:
        run(compiled(with_broken), redis_url, namespace, thread_launcher)
    assert info.value.task_id == "broken-0[17]"
    assert "seventeen" in info.value.message
    assert run_keys(client, namespace) == []


def test_mapping_over_a_value_that_is_not_a_sequence_names_task_and_type(
    redis_url: str, namespace: str, thread_launcher: ThreadLauncher
) -> None:
    with pytest.raises(TaskFailed) as info:
        run(compiled(not_a_list), redis_url, namespace, thread_launcher)
    assert info.value.task_id == "square-0"
    assert "int" in info.value.message and "square-0" in info.value.message


def test_the_width_is_recorded_and_plans_the_next_compile(
    redis_url: str, namespace: str, thread_launcher: ThreadLauncher
) -> None:
    run(compiled(mapped, n=40), redis_url, namespace, thread_launcher)
    with MetricsStore(redis_url, namespace) as store:
        access = MetadataAccess(
            store,
            transfer_latency_s=0.001,
            transfer_bandwidth_bps=1e8,
            cold_start_s=0.1,
            warm_start_s=0.01,
        )
        plan = compile_graph(
            plans.graph(mapped, n=40), CompileOptions(platform="local"), access=access
        )
    assert (plan.dynamic["square-0"].width, plan.dynamic["square-0"].source) == (40, "history")


def test_worker_processes_expand_and_clean_up(
    local_launcher: LocalLauncher, client: redis.Redis
) -> None:
    plan = compiled(chained, n=12)
    ns = local_launcher.keys.namespace
    result = run(plan, local_launcher.url, ns, local_launcher)
    assert result.result == run_inline(plan).result
    assert any(w.startswith("square-0.g") for w in {t.worker for t in result.tasks.values()})
    assert run_keys(client, ns) == []


@pytest.mark.slow
def test_ten_thousand_elements_on_worker_processes(
    local_launcher: LocalLauncher, client: redis.Redis
) -> None:
    plan = compiled(mapped, n=10_000)
    ns = local_launcher.keys.namespace
    result = run(plan, local_launcher.url, ns, local_launcher, timeout_s=600.0)
    assert result.result == sum(x * x + 1 for x in range(10_000))
    groups = {t.worker for t in result.tasks.values() if t.worker.startswith("square-0.g")}
    assert 0 < len(groups) <= MAX_NEW_WORKERS
    assert run_keys(client, ns) == []


@pytest.mark.parametrize("placement", ["one-worker", "per-task"])
def test_any_placement_of_the_map_node_equals_inline(
    placement: str,
    redis_url: str,
    namespace: str,
    thread_launcher: ThreadLauncher,
    client: redis.Redis,
) -> None:
    """The map node on its producer's worker, or on its own (its input then fetched)."""
    graph = plans.graph(chained, n=9)
    plan = plans.one_worker(graph) if placement == "one-worker" else plans.per_task(graph)
    assert run(plan, redis_url, namespace, thread_launcher).result == run_inline(plan).result
    assert run_keys(client, namespace) == []


def test_killed_element_workers_are_relaunched_and_the_map_completes(
    local_launcher: LocalLauncher, client: redis.Redis, tmp_path: Path
) -> None:
    """Element 0 runs on the map's own worker (it dies mid-expansion and re-expands), element
    5 on a group worker (the hand-placed split: one local, then two per new worker)."""
    plan = plans.per_task(plans.graph(with_deaths, marker_dir=tmp_path, at="0,5"))
    ns = local_launcher.keys.namespace
    result = run(plan, local_launcher.url, ns, local_launcher)
    assert result.result == sum(10 * x for x in range(9))
    died = sorted(r["task_id"] for r in result.recovered)
    assert died == ["dies_once-0[0]", "dies_once-0[5]"]
    assert run_keys(client, ns) == []
