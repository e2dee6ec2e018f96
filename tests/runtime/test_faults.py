"""Fault injection against a real Redis and the local launcher: retries, timeouts, killed and
OOM-killed workers, a lost pool server, a restarted Redis, concurrent runs. Every outcome is
defined (a correct result or a clean, named failure), nothing hangs, nothing is left behind.

Attempts are counted in files: they happen in different worker processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis

from metadata.store import MetricsStore
from planner.plan import Plan
from runtime import leases
from runtime.client import run_plan
from runtime.embedded import EmbeddedRedis
from runtime.errors import RunError, TaskFailed
from runtime.launcher import WorkerSpec
from runtime.local import LocalLauncher
from runtime.result import RunResult
from runtime.threads import ThreadLauncher
from tests.runtime import plans, workflows
from tests.runtime.conftest import namespace_keys, pool_processes, run_keys

WAIT_FOR_S = 30.0
"""Longest a test waits for something another process does (never asserted as a duration)."""


def run(plan: Plan, url: str, launcher: LocalLauncher, **kw: Any) -> RunResult:
    return run_plan(plan, redis_url=url, namespace=launcher.keys.namespace, launcher=launcher,
                    timeout_s=kw.pop("timeout_s", 60.0), **kw)


def wait_for(predicate: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_FOR_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def only_metrics_and_pool_keys(client: redis.Redis, namespace: str) -> None:
    left = namespace_keys(client, namespace)
    assert all(k.startswith((f"{namespace}:metrics:", f"{namespace}:pool:")) for k in left), left


def attempt_records(url: str, launcher: LocalLauncher, plan: Plan, result: RunResult,
                    task_id: str) -> list[tuple[int, bool, str]]:
    """(attempt, ok, error type) of every record of `task_id` in this run, in start order: an
    attempt whose process was killed is recorded by the pool, which saw it die."""
    key = plan.graph.node(task_id).function_key
    with MetricsStore(url, launcher.keys.namespace) as store:
        records = [r for r in store.task_records([key])[key]
                   if r.run_id == result.dag_id and r.task_id == task_id]
    return [(r.attempt, r.ok, (r.error or "").split(":")[0])
            for r in sorted(records, key=lambda r: r.started_at)]


def test_a_task_that_fails_twice_succeeds_with_retries_and_records_each_attempt(
        redis_url: str, local_launcher: LocalLauncher, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    g = plans.graph(workflows.flaky_chain, path=counter, failures=2)
    result = run(plans.per_task(g), redis_url, local_launcher, metrics_upload="per-task")
    assert result.result == 11
    assert counter.read_text() == "3"
    assert result.tasks["flaky-0"].attempts == 3
    key = g.node("flaky-0").function_key
    with MetricsStore(redis_url, local_launcher.keys.namespace) as store:
        records = wait_for(lambda: [r for r in store.task_records([key])[key]
                                    if r.run_id == result.dag_id and len(
                                        [x for x in store.task_records([key])[key]
                                         if x.run_id == result.dag_id]) == 3] or None,
                           "three attempt records")
    assert sorted((r.attempt, r.ok) for r in records) == [(1, False), (2, False), (3, True)]
    assert all("ValueError" in (r.error or "") for r in records if not r.ok)


def test_a_task_that_always_fails_names_itself_and_leaves_only_metrics(
        redis_url: str, local_launcher: LocalLauncher, client: redis.Redis) -> None:
    plan = plans.per_task(plans.graph(workflows.always_failing))
    with pytest.raises(TaskFailed, match=r"task 'always_fails-0' \(always_fails\) failed "
                                         r"\(attempt 3\): RuntimeError: broken on purpose") as info:
        run(plan, redis_url, local_launcher, timeout_s=30.0)
    record = json.loads(Path(info.value.record_path).read_text())
    assert record["task_id"] == "always_fails-0" and record["attempt"] == 3
    assert "RuntimeError: broken on purpose" in record["traceback"]
    assert {"exc_type", "message", "worker_id", "stderr_tail", "generation"} <= set(record)
    assert run_keys(client, local_launcher.keys.namespace) == []
    only_metrics_and_pool_keys(client, local_launcher.keys.namespace)


def test_an_exception_outside_retry_on_is_not_retried(redis_url: str,
                                                      local_launcher: LocalLauncher) -> None:
    plan = plans.one_worker(plans.graph(workflows.not_retried))
    with pytest.raises(TaskFailed) as info:
        run(plan, redis_url, local_launcher, timeout_s=30.0)
    assert (info.value.task_id, info.value.exc_type, info.value.attempt) == \
        ("wrong_kind-0", "KeyError", 1)


def test_a_run_wide_default_retries_tasks_that_set_none(redis_url: str,
                                                        local_launcher: LocalLauncher) -> None:
    plan = plans.one_worker(plans.graph(workflows.failing))
    with pytest.raises(TaskFailed) as info:
        run(plan, redis_url, local_launcher, timeout_s=30.0, retries=2)
    assert (info.value.task_id, info.value.attempt) == ("fail-0", 3)


def test_a_worker_that_kills_itself_once_is_relaunched_and_the_run_completes(
        redis_url: str, local_launcher: LocalLauncher, client: redis.Redis,
        tmp_path: Path) -> None:
    plan = plans.per_task(plans.graph(workflows.dies_once, path=tmp_path / "n", width=3))
    result = run(plan, redis_url, local_launcher)
    assert result.result == 3 + 1 + 2 + 3
    assert [(r["task_id"], r["reason"]) for r in result.recovered] == [("die_once-0", "crash")]
    assert run_keys(client, local_launcher.keys.namespace) == []


def test_a_worker_sigkilled_from_outside_mid_task_is_relaunched(
        redis_url: str, local_launcher: LocalLauncher, tmp_path: Path) -> None:
    pidfile = tmp_path / "sleeper.pid"
    plan = plans.per_task(plans.graph(workflows.slow, seconds=1.0, pidfile=pidfile))

    def kill_first() -> None:
        pid = wait_for(lambda: pidfile.exists() and pidfile.read_text(), "the sleeper's pid")
        os.kill(int(pid), signal.SIGKILL)

    killer = threading.Thread(target=kill_first)
    killer.start()
    result = run(plan, redis_url, local_launcher, metrics_upload="per-task")
    killer.join()
    assert result.result == 2
    assert [r["reason"] for r in result.recovered] == ["crash"]
    killed = result.recovered[0]["task_id"]
    assert attempt_records(redis_url, local_launcher, plan, result, killed) == \
        [(1, False, "WorkerDied"), (1, True, "")]  # a crash is not the task's attempt to count


def test_a_task_past_its_memory_limit_is_retried_on_a_larger_configuration(
        redis_url: str, local_launcher: LocalLauncher) -> None:
    plan = plans.one_worker(plans.graph(workflows.memory_hog, mb=600), memory_mb=256)
    try:
        result = run(plan, redis_url, local_launcher)
    except TaskFailed as err:
        if err.exc_type == "MemoryError":
            pytest.skip("no memory cgroup here (RLIMIT_AS fallback): no OOM kill to recover")
        raise
    assert result.result == 600 << 20
    assert result.upsized["w0"] > 256
    assert {r["reason"] for r in result.recovered} == {"oom"}


def test_an_attempt_past_timeout_s_is_killed_and_retried(redis_url: str,
                                                         local_launcher: LocalLauncher,
                                                         tmp_path: Path) -> None:
    plan = plans.per_task(plans.graph(workflows.stuck_chain, path=tmp_path / "n"))
    result = run(plan, redis_url, local_launcher, metrics_upload="per-task")
    assert result.result == 102
    assert [(r["task_id"], r["reason"]) for r in result.recovered] == \
        [("stuck_once-0", "timeout")]
    assert attempt_records(redis_url, local_launcher, plan, result, "stuck_once-0") == \
        [(1, False, "TaskTimeout"), (2, True, "")]


def test_a_task_past_timeout_s_without_retries_fails_the_run(
        redis_url: str, local_launcher: LocalLauncher, client: redis.Redis) -> None:
    plan = plans.one_worker(plans.graph(workflows.stuck_forever))
    with pytest.raises(TaskFailed) as info:
        run(plan, redis_url, local_launcher)
    assert (info.value.task_id, info.value.exc_type) == ("stuck-0", "TaskTimeout")
    assert run_keys(client, local_launcher.keys.namespace) == []


def test_concurrent_runs_of_one_workflow_do_not_cross_talk(
        redis_url: str, local_launcher: LocalLauncher, client: redis.Redis) -> None:
    plan = plans.round_robin(plans.graph(workflows.fan, width=6), 3)
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: run(plan, redis_url, local_launcher), range(20)))
    assert [r.result for r in results] == [21] * 20
    assert len({r.dag_id for r in results}) == 20
    assert run_keys(client, local_launcher.keys.namespace) == []


class LosingLauncher(ThreadLauncher):
    """A thread launcher that loses the first start request of `lost`: the worker that claimed
    it (its BATCH committed) dies before the request leaves - the soak's `kill_once` killing
    its own process right after its parent's batch."""

    def __init__(self, url: str, lost: str) -> None:
        super().__init__(url)
        self.lost = lost
        self.dropped: list[WorkerSpec] = []

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        kept = []
        for spec in specs:
            if spec.worker_id == self.lost and not self.dropped:
                self.dropped.append(spec)
            else:
                kept.append(spec)
        super().start(kept)


def test_a_worker_claimed_but_never_started_is_relaunched_through_its_claim_lease(
        redis_url: str, namespace: str, client: redis.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """w0 finishes inc-0, its BATCH claims w1, and the start request for w1 is lost. Nobody
    claims w1 again (re-running inc-0 finds it claimed), so before claims carried a lease the
    run waited for its deadline; now w1's claim lease expires and the client relaunches it."""
    monkeypatch.setattr(leases, "LEASE_START_GRACE_S", 1.0)  # the claim lease's lifetime
    launcher = LosingLauncher(redis_url, lost="w1")
    plan = plans.per_task(plans.graph(workflows.chain, n=2))
    try:
        result = run_plan(plan, redis_url=redis_url, namespace=namespace, launcher=launcher,
                          timeout_s=60.0)
    finally:
        launcher.close()
    assert [s.worker_id for s in launcher.dropped] == ["w1"]
    assert result.result == 2
    assert [(r["worker_id"], r["reason"]) for r in result.recovered] == [("w1", "lease-expired")]
    assert run_keys(client, namespace) == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_lost_pool_server_is_noticed_by_the_client_through_the_lease(
        redis_url: str, tmp_path: Path) -> None:
    """The pool server and its busy child are SIGKILLed (the machine vanished): nobody reaps
    the child, its lease expires, the client relaunches the worker (a new pool starts)."""
    ns = f"testlease{uuid.uuid4().hex[:6]}"
    pidfile = tmp_path / "sleeper.pid"
    launcher = LocalLauncher(redis_url, ns, keep_warm_s=30.0, shutdown_on_close=True)
    plan = plans.per_task(plans.graph(workflows.slow, seconds=2.0, pidfile=pidfile))

    def vanish() -> None:
        pid = wait_for(lambda: pidfile.exists() and pidfile.read_text(), "the sleeper's pid")
        for proc in psutil.Process(int(pid)).parents():
            if "runtime.pool" in proc.cmdline():
                proc.kill()
        os.kill(int(pid), signal.SIGKILL)

    killer = threading.Thread(target=vanish)
    killer.start()
    try:
        result = run(plan, redis_url, launcher)
    finally:
        killer.join()
        launcher.close()
    assert result.result == 2
    assert [r["reason"] for r in result.recovered] == ["lease-expired"]
    assert pool_processes(ns) == []


@pytest.mark.slow
def test_redis_restarted_mid_run_fails_the_run_cleanly(tmp_path: Path) -> None:
    """A Redis without persistence restarts while a task runs: the run's state is gone, so the
    run fails with a RunError that says so; no hang, no process left."""
    port, ns = _free_port(), f"testrestart{uuid.uuid4().hex[:6]}"
    pidfile = tmp_path / "sleeper.pid"
    server = EmbeddedRedis(persistent=False, port=port).start()
    launcher = LocalLauncher(server.url, ns, keep_warm_s=30.0, shutdown_on_close=True)
    plan = plans.per_task(plans.graph(workflows.slow, seconds=3.0, pidfile=pidfile))
    servers = [server]

    def restart() -> None:
        wait_for(pidfile.exists, "the sleeper to start")
        servers[0].stop()
        servers.append(EmbeddedRedis(persistent=False, port=port).start())

    restarter = threading.Thread(target=restart)
    restarter.start()
    try:
        with pytest.raises(RunError, match="vanished"):
            run(plan, server.url, launcher)
    finally:
        restarter.join()
        launcher.close()
        servers[-1].stop()
    assert pool_processes(ns) == []


@pytest.mark.slow
def test_a_short_redis_outage_is_ridden_out_and_the_run_completes(tmp_path: Path) -> None:
    """A Redis that keeps its data restarts while tasks run and fetch: every component rides out
    the lost connection (redis-py's Retry, `metadata.connect`) - the workers' fetches, uploads
    and lease renewals, the pool, the client - and the run completes with the right result."""
    port, ns = _free_port(), f"testoutage{uuid.uuid4().hex[:6]}"
    pidfile = tmp_path / "sleeper.pid"
    data = tmp_path / "redis-data"
    server = EmbeddedRedis(data_dir=data, persistent=True, port=port)
    server.start()
    launcher = LocalLauncher(server.url, ns, keep_warm_s=30.0, shutdown_on_close=True)
    plan = plans.per_task(plans.graph(workflows.slow, seconds=4.0, pidfile=pidfile))
    servers = [server]

    def restart() -> None:
        wait_for(pidfile.exists, "the sleeper to start")
        servers[0].stop()  # SIGTERM: the server writes its append-only file and exits
        time.sleep(1.0)  # connections refused meanwhile
        servers.append(EmbeddedRedis(data_dir=data, persistent=True, port=port).start())

    restarter = threading.Thread(target=restart)
    restarter.start()
    try:
        result = run(plan, server.url, launcher)
    finally:
        restarter.join()
        launcher.close()
        servers[-1].stop()
    assert result.result == 2  # inc(sleeper(1)) = 2, see workflows.slow
    assert pool_processes(ns) == []
