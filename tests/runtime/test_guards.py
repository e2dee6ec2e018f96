"""Invariants that keep a run's state consistent whatever arrives late or half-written:

- once a run's liveness key (`progress`) is gone, no script writes any key of that run;
- a status slot is never read half-written (the pool server used to crash on one);
- crash budgets are per task: a worker whose tasks are each killed once still finishes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.child import Running, StatusSlot
from runtime.client import run_plan
from runtime.embedded import EmbeddedRedis
from runtime.ids import new_dag_id
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.leases import (
    MAX_DEATHS_PER_TASK,
    Death,
    hold_call,
    lease_call,
    relaunch_call,
    relaunch_spec,
)
from runtime.local import LocalLauncher
from runtime.program import RemoteChild
from runtime.scripts import (
    BatchUpdate,
    NewWorker,
    ScriptCall,
    batch_call,
    call_sync,
    error_call,
    expand_call,
    finish_call,
    push_call,
    put_calls,
)
from tests.runtime import plans, workflows
from tests.runtime.conftest import run_keys


@pytest.fixture(scope="module")
def rclient(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)
    yield c
    c.close()


def every_write(keys: RunKeys) -> list[ScriptCall]:
    """One call of every script that writes run keys, as late arrivals would send them."""
    spec = WorkerSpec(keys.namespace, keys.dag_id, "w1", 1769, 1.0, 0.0)
    batch = BatchUpdate([("t0", (RemoteChild("t1", "w2", 1), RemoteChild("t2", "w3", 2)))], 1,
                        -1, json.dumps([["t0", "w1", 0.0, 1.0]]))
    new = relaunch_spec(spec, Death("crash", "t0"))
    assert new is not None
    return [batch_call(keys, batch, 60, claimer="w1 1"),
            error_call(keys, "t0", json.dumps({"task_id": "t0"}), 60),
            *put_calls(keys, "w1", {"t0": b"value", "t1": b"other"}, 60, 1 << 20),
            finish_call(keys, b"result", [keys.outputs("w1"), keys.deps("t1")], 60),
            push_call(keys, [keys.notify("w2")], "\x00stop", 60),
            lease_call(keys, "w1", 1, 60, "holder"),
            relaunch_call(keys, spec, new, Death("crash", "t0"), 60),
            hold_call(keys, [spec], 60),
            expand_call(keys, [NewWorker("m-0.g0", b"program", spec.to_json())],
                        [keys.outputs("m-0.g0")], 60, "w1 1", 5.0, keys.deps("m-0[*]"), 3)]


def test_no_script_writes_a_key_of_a_run_whose_liveness_key_is_gone(
        rclient: redis.Redis) -> None:
    ns = f"g{uuid.uuid4().hex[:8]}"
    keys = RunKeys(ns, new_dag_id("sink"))
    for call in every_write(keys):
        call_sync(rclient, call)
    assert list(rclient.scan_iter(f"{ns}:*")) == []


def test_the_same_scripts_do_write_while_the_run_exists(rclient: redis.Redis) -> None:
    """The guard is the only thing that stops them (so the test above can fail)."""
    ns = f"g{uuid.uuid4().hex[:8]}"
    keys = RunKeys(ns, new_dag_id("sink"))
    rclient.hset(keys.progress(), mapping={"total": 3, "done": 0, "running": 0})
    for call in every_write(keys):
        call_sync(rclient, call)
    written = {k.decode() for k in rclient.scan_iter(f"{ns}:*")}
    assert {keys.errors(), keys.result(), keys.done(), keys.notify("w2"), keys.leases(),
            keys.recovered(), keys.relaunched(), keys.timings()} <= written
    assert keys.outputs("w1") not in written  # FINISH unlinked what it was given
    rclient.delete(*written)


def test_put_splits_values_so_no_command_carries_more_than_the_bound() -> None:
    keys = RunKeys("ns", new_dag_id("sink"))
    values = {f"t{i}": b"x" * 400 for i in range(10)}
    calls = put_calls(keys, "w", values, 60, max_bytes=1000)
    assert [len(c.args[1:]) // 2 for c in calls] == [2, 2, 2, 2, 2]
    assert put_calls(keys, "w", {"big": b"x" * 5000}, 60, max_bytes=1000)[0].args[1:] == \
        ["big", b"x" * 5000]  # a larger value goes alone


# -- status slots -------------------------------------------------------------------------------

TEXTS = [Running(f"task-{i}", "fn" * i, 1e9 + i, 1 + i, 3, 1e9, "mod.fn:abc", 10 ** i).dumps()
         for i in range(8)] + [""]


def test_a_status_slot_is_never_read_half_written() -> None:
    """A child rewrites its slot (long and short texts alternately) while the server reads it:
    every read is one of the texts written, and parses (the pool used to crash on a
    half-written slot: `ValueError: invalid literal for int()`)."""
    slot = StatusSlot()
    pid = os.fork()
    if pid == 0:  # the child: write for a while, then exit
        try:
            for i in range(200_000):
                slot.write(TEXTS[i % len(TEXTS)])
        finally:
            os._exit(0)
    seen: set[str] = set()
    try:
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            text = slot.read()
            assert text in TEXTS
            Running.parse(text)
            seen.add(text)
            if done:
                break
    finally:
        slot.close()
    assert len(seen) > 1  # it did read while the child wrote


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parsing_a_slot_never_raises(text: str) -> None:
    Running.parse(text)


# -- budgets ------------------------------------------------------------------------------------

def test_the_crash_budget_is_per_task() -> None:
    spec = WorkerSpec("ns", new_dag_id("s"), "w", 1769, 1.0, 0.0)
    for task in ("a", "b", "c", "d"):  # one death of each of many tasks: always relaunched
        new = relaunch_spec(spec, Death("crash", task))
        assert new is not None
        spec = new
    for _ in range(MAX_DEATHS_PER_TASK - 1):  # "a" died once already
        new = relaunch_spec(spec, Death("crash", "a"))
        assert new is not None
        spec = new
    assert relaunch_spec(spec, Death("crash", "a")) is None
    assert spec.deaths_of("a") == MAX_DEATHS_PER_TASK and spec.deaths_of("b") == 1
    assert WorkerSpec.from_json(spec.to_json()) == spec


def test_a_worker_whose_tasks_are_each_killed_once_finishes(
        redis_url: str, local_launcher: LocalLauncher, tmp_path: Path,
        client: redis.Redis) -> None:
    """Five tasks on one worker, each SIGKILLs its process the first time it runs: five
    relaunches of one worker, each for a different task (a budget per worker failed the run
    at the third)."""
    g = plans.graph(workflows.each_dies_once, path=tmp_path / "marker", width=5)
    result = run_plan(plans.one_worker(g), redis_url=redis_url,
                      namespace=local_launcher.keys.namespace, launcher=local_launcher,
                      timeout_s=120.0)
    assert result.result == sum(range(5))
    assert len(result.recovered) == 5
    assert {r["task_id"] for r in result.recovered} == {f"die_once_each-{i}" for i in range(5)}
    assert run_keys(client, local_launcher.keys.namespace) == []


def test_a_tasks_sys_exit_is_retried_like_an_exception() -> None:
    from planner.trace import TaskOptions
    from runtime.retry import RetryPolicy

    policy = RetryPolicy.of(TaskOptions(retries=1))
    assert policy.should_retry(SystemExit(3), 1) and policy.should_retry(KeyboardInterrupt(), 1)
    assert not policy.should_retry(SystemExit(3), 2)  # no attempt left
    narrow = RetryPolicy.of(TaskOptions(retries=1, retry_on=(ValueError,)))
    assert not narrow.should_retry(SystemExit(3), 1)  # only what retry_on names


def test_a_process_asked_to_exit_is_never_given_another_worker(redis_url: str) -> None:
    """An idle process past its keep-warm time is sent `exit`; until it is reaped it still looks
    idle, and it used to be the *preferred* one for the next request (it read `exit`, left with
    status 0, and each of three relaunches met another such process: 'relaunches exhausted')."""
    import socket

    from runtime.pool import PoolServer, Process

    server = PoolServer(redis_url, f"g{uuid.uuid4().hex[:8]}")
    pairs = [socket.socketpair() for _ in range(2)]
    try:
        spec = WorkerSpec(server.keys.namespace, new_dag_id("s"), "w", 1769, 1.0, 0.0)
        old = Process(1, spec.config, pairs[0][0], None, idle_since=10.0)
        fresh = Process(2, spec.config, pairs[1][0], None, idle_since=5.0)
        server.procs = {1: old, 2: fresh}
        assert server._idle(spec) is old  # the most recently idle one is preferred
        server._retire(old)
        assert pairs[0][1].recv(16) == b"exit\n"
        assert server._idle(spec) is fresh
        server._retire(fresh)
        assert server._idle(spec) is None
    finally:
        server.procs = {}
        server.redis.close()
        for a, b in pairs:
            a.close()
            b.close()
