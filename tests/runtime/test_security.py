"""Security basics: a worker touches only keys of its own namespace and run, and a Redis password
from the URL reaches neither logs nor errors."""

from __future__ import annotations

import logging
import socket
import time

import pytest
import redis

from runtime.client import run_plan
from runtime.context import WorkerContext
from runtime.embedded import EmbeddedRedis
from runtime.errors import TaskFailed
from runtime.ids import new_dag_id
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.program import RunSettings, build_program
from runtime.worker import Worker
from tests.runtime import plans, workflows
from tests.runtime.conftest import namespace_keys


@pytest.mark.parametrize(("namespace", "dag_id"), [
    ("planflow", "dag-1-x-abcd:*"), ("planflow", "../etc"), ("bad:{ns}", "dag-1-x-abcd"),
    ("a*", "dag-1-x-abcd")])
def test_a_worker_refuses_a_malformed_namespace_or_dag_id(redis_url: str, namespace: str,
                                                          dag_id: str) -> None:
    ctx = WorkerContext(redis_url)
    try:
        with pytest.raises(ValueError):
            Worker(ctx, WorkerSpec(namespace, dag_id, "w0", 256, 0.1, time.time()))
    finally:
        ctx.close()


def test_a_worker_refuses_a_plan_of_another_run_or_namespace(redis_url: str, namespace: str,
                                                             client: redis.Redis) -> None:
    """Run A's plan copied under run B's keys in another namespace: B's worker reads it, sees
    that its settings name A, and runs nothing, writing nothing under A."""
    plan = plans.one_worker(plans.graph(workflows.chain, n=3))
    dag_a = new_dag_id("inc")
    settings = RunSettings(namespace, dag_a, "chain", plan.graph.sink, 3, 60, time.time() + 60,
                           "thread", "on-exit", time.time())
    program = build_program(plan, settings)
    other, dag_b = f"{namespace}x", new_dag_id("inc")
    b = RunKeys(other, dag_b)
    client.set(b.shared(), program.shared_blob, ex=60)
    client.set(b.worker_program("w0"), program.worker_blobs["w0"], ex=60)
    client.hset(b.progress(), mapping={"total": 3, "done": 0, "running": 0})
    client.expire(b.progress(), 60)
    ctx = WorkerContext(redis_url)
    try:
        outcome = Worker(ctx, WorkerSpec(other, dag_b, "w0", 256, 0.1, time.time())).run()
    finally:
        ctx.close()
    assert outcome == "refused"
    assert namespace_keys(client, namespace) == []
    assert client.hget(b.progress(), "done") == b"0"
    client.delete(b.shared(), b.worker_program("w0"), b.progress())


def test_a_redis_password_reaches_no_log_and_no_error(caplog: pytest.LogCaptureFixture,
                                                      namespace: str) -> None:
    password = "pw-never-shown-42"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with EmbeddedRedis(persistent=False, port=port) as server:
        redis.Redis.from_url(server.url).config_set("requirepass", password)
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        plan = plans.per_task(plans.graph(workflows.failing))
        caplog.set_level(logging.DEBUG)
        with pytest.raises(TaskFailed) as info:
            run_plan(plan, redis_url=url, namespace=namespace, launcher="thread", timeout_s=30)
    assert password not in caplog.text
    assert password not in str(info.value) and password not in repr(info.value.record)
