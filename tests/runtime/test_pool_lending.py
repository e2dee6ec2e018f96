"""A pool smaller than a plan's waiting workers: a worker blocked on its inputs lends its process
slot (`runtime.pool`), so workers waiting on workers still queued cannot deadlock the run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from runtime.client import run_plan
from runtime.inline import run_inline
from runtime.local import LocalLauncher
from tests.runtime import plans, workflows
from tests.runtime.conftest import pool_processes

POOL_CAP = 2


@pytest.fixture()
def small_pool(redis_url: str) -> Iterator[LocalLauncher]:
    namespace = f"testcap{uuid.uuid4().hex[:8]}"
    launcher = LocalLauncher(redis_url, namespace, keep_warm_s=60, shutdown_on_close=True,
                             max_processes=POOL_CAP)
    yield launcher
    launcher.close()
    assert pool_processes(namespace) == []


def test_a_fan_in_of_8_workers_runs_on_a_pool_of_2(redis_url: str,
                                                  small_pool: LocalLauncher) -> None:
    """The two half sums' workers start first (they own inc-0 and inc-1, the first roots), then
    wait for leaves owned by six workers still queued behind them: both slots held by waiters.
    Lending the slots lets the leaves run; without it the run hangs until its deadline."""
    g = plans.graph(workflows.halves, width=8)
    where = {"inc-0": "h0", "inc-1": "h1", "total-0": "h0", "total-1": "h1", "add-0": "h0"}
    plan = plans.placed(g, lambda i, t: where.get(t, f"leaf{t.split('-')[1]}"))
    assert [w.worker_id for w in plan.workers][:2] == ["h0", "h1"]
    assert len(plan.workers) == 8
    result = run_plan(plan, redis_url=redis_url, namespace=small_pool.keys.namespace,
                      launcher=small_pool, timeout_s=30.0)
    assert result.result == run_inline(plan).result == sum(range(1, 9))
