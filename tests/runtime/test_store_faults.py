"""Faults of the store and of values, each ending in a clear, named failure within seconds
(every run here has a deadline far longer than it needs: a hang fails as a deadline error,
never as a pass) and with nothing of the run left in Redis:

- a value larger than the store accepts is refused before upload, naming the task and limits;
- a store out of memory fails the run as StoreError OOM (not an internal error, not a hang);
- a run that finished before the store filled up still returns its result;
- `sys.exit()` in a task is that task's failure, named;
- a failed 10,000-leaf run leaves no key behind, however late its stragglers write.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from planner.plan import Plan
from runtime.client import run_plan
from runtime.embedded import EmbeddedRedis
from runtime.errors import StoreError, TaskFailed
from runtime.local import LocalLauncher
from runtime.session import RunSession
from runtime.threads import ThreadLauncher
from tests.runtime import plans, workflows
from tests.runtime.conftest import pool_processes, run_keys

DEADLINE_S = 120.0
"""Each run's deadline: far past what a clean failure takes."""

MB = 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def private_redis() -> Iterator[EmbeddedRedis]:
    """A Redis of this test only (its configuration is changed)."""
    with EmbeddedRedis(persistent=False, port=_free_port()) as server:
        yield server


@pytest.fixture()
def private_pool(private_redis: EmbeddedRedis) -> Iterator[LocalLauncher]:
    launcher = LocalLauncher(private_redis.url, f"p{uuid.uuid4().hex[:8]}", keep_warm_s=30.0,
                             shutdown_on_close=True)
    yield launcher
    launcher.close()
    assert pool_processes(launcher.keys.namespace) == []


def run(plan: Plan, url: str, launcher: Any, namespace: str, **kw: Any) -> Any:
    return run_plan(plan, redis_url=url, namespace=namespace, launcher=launcher,
                    timeout_s=DEADLINE_S, **kw)


def test_a_value_larger_than_the_store_accepts_fails_its_task_before_upload(
        private_redis: EmbeddedRedis, private_pool: LocalLauncher) -> None:
    client = redis.Redis.from_url(private_redis.url)
    client.config_set("proto-max-bulk-len", str(MB))  # the smallest Redis allows
    plan = plans.per_task(plans.graph(workflows.big_value, nbytes=2 * MB))
    ns = private_pool.keys.namespace
    with pytest.raises(TaskFailed) as info:
        run(plan, private_redis.url, private_pool, ns, shm_max_bytes=0)  # Redis is the path
    err = info.value
    assert (err.task_id, err.exc_type) == ("blob-0", "ValueTooLarge")
    assert "2.0 MiB" in err.message and "1 MiB" in err.message and "path" in err.message
    assert run_keys(client, ns) == []
    # through shared memory (the default on one host) the same value is no problem
    assert run(plan, private_redis.url, private_pool, ns).result == 2 * MB


def test_a_store_out_of_memory_fails_the_run_naming_the_condition(
        private_redis: EmbeddedRedis, private_pool: LocalLauncher,
        caplog: pytest.LogCaptureFixture) -> None:
    client = redis.Redis.from_url(private_redis.url)
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", str(used + 4 * MB))  # the plan fits, the values do not
    plan = plans.per_task(plans.graph(workflows.fan_of_blobs, width=8, nbytes=2 * MB))
    ns = private_pool.keys.namespace
    with pytest.raises(StoreError) as info:
        run(plan, private_redis.url, private_pool, ns, shm_max_bytes=0)  # values go to Redis
    assert info.value.condition == "OOM"
    assert "out of memory" in str(info.value) and "maxmemory" in str(info.value)
    # the clean-up meets the same full store: named in one line each, never a traceback
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    client.config_set("maxmemory", "0")
    assert run_keys(client, ns) == []


def test_a_run_that_finished_returns_its_result_from_a_full_store(
        private_redis: EmbeddedRedis, private_pool: LocalLauncher,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = redis.Redis.from_url(private_redis.url)
    collect = RunSession._collect

    def collect_from_a_full_store(session: RunSession) -> Any:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")  # every write refused from here on
        return collect(session)

    monkeypatch.setattr(RunSession, "_collect", collect_from_a_full_store)
    plan = plans.per_task(plans.graph(workflows.fan, width=8))
    ns = private_pool.keys.namespace
    try:
        assert run(plan, private_redis.url, private_pool, ns).result == 36
    finally:
        client.config_set("maxmemory", "0")
    assert run_keys(client, ns) == []


def test_sys_exit_in_a_task_is_that_tasks_failure(redis_url: str,
                                                  local_launcher: LocalLauncher) -> None:
    plan = plans.per_task(plans.graph(workflows.exiting, code=3))
    with pytest.raises(TaskFailed) as info:
        run(plan, redis_url, local_launcher, local_launcher.keys.namespace)
    assert (info.value.task_id, info.value.function, info.value.exc_type) == \
        ("exits-0", "exits", "SystemExit")
    assert info.value.message == "3"


@pytest.mark.parametrize("launcher_kind", ["thread", "local"])
def test_a_failed_run_of_10000_leaves_leaves_no_key(launcher_kind: str, redis_url: str,
                                                   local_launcher: LocalLauncher,
                                                   thread_launcher: ThreadLauncher,
                                                   namespace: str, client: redis.Redis) -> None:
    """One leaf of 10,000 fails while the others run on 16 workers: the run fails, and no
    straggler recreates any of its keys after the clean-up (they used to: 504 keys left)."""
    g = plans.graph(workflows.failing_fan, width=10_000, fail_at=5_000)
    plan = plans.placed(g, lambda i, t: "sink" if t == g.sink else f"w{i % 16}")
    launcher: Any = local_launcher if launcher_kind == "local" else thread_launcher
    ns = local_launcher.keys.namespace if launcher_kind == "local" else namespace
    with pytest.raises(TaskFailed, match="'fail_at_index-"):
        run(plan, redis_url, launcher, ns)
    time.sleep(2.0)  # stragglers: batches and lease renewals in flight when the run failed
    assert run_keys(client, ns) == []
