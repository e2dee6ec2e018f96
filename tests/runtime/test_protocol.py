"""The protocol's building blocks: key names, the plan split, and the BATCH/ERROR scripts on a
real Redis (including the idempotency property: any order, any duplicates, any batching)."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.codec import loads_blob
from runtime.embedded import EmbeddedRedis
from runtime.errors import UnrunnablePlan
from runtime.ids import new_dag_id
from runtime.keys import PoolKeys, RunKeys
from runtime.launcher import WorkerSpec
from runtime.leases import (
    LEASE_START_GRACE_S,
    LEASE_TTL_S,
    Death,
    lease_call,
    parse_lease,
    relaunch_call,
    relaunch_spec,
    server_time,
)
from runtime.program import RemoteChild, RunSettings, build_program, decode_program
from runtime.scripts import BatchUpdate, batch_call, call_sync, error_call, started_workers
from tests.runtime import plans, workflows


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def settings_for(dag_id: str, namespace: str = "ns") -> RunSettings:
    return RunSettings(namespace, dag_id, "wf", "sink", 1, 60, 0.0, "thread", "on-exit", 0.0)


@pytest.fixture(scope="module")
def rclient(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server.url)
    yield c
    c.close()


def test_every_run_key_shares_the_runs_hash_tag() -> None:
    keys = RunKeys("ns", "dag-1700000000000-f-abcd")
    names = [keys.shared(), keys.worker_program("w"), keys.started(), keys.deps("t"),
             keys.notify("w"), keys.outputs("w2"), keys.progress(), keys.timings(),
             keys.errors(), keys.done(), keys.result()]
    assert all(n.startswith("ns:{dag-1700000000000-f-abcd}:") for n in names)
    assert len(set(names)) == len(names)
    assert not PoolKeys("ns").requests().startswith("ns:{")


def test_each_worker_program_holds_only_its_tasks() -> None:
    """fan(width=4): w0 has inc-0, add-0, add-2 and the sink; w1 has add-1 and add-3."""
    g = plans.graph(workflows.fan, width=4)
    plan = plans.placed(g, {"inc-0": "w0", "add-0": "w0", "add-1": "w1", "add-2": "w0",
                            "add-3": "w1", "total-0": "w0"})
    program = build_program(plan, settings_for(new_dag_id("total")))
    progs = {w: decode_program(b) for w, b in program.worker_blobs.items()}
    for w in plan.workers:
        assert [s.task_id for s in progs[w.worker_id].steps] == list(w.tasks)
    w1 = progs["w1"]
    assert all(s.remote_parents == ("inc-0",) for s in w1.steps)
    assert all(s.remote_children == (RemoteChild("total-0", "w0", 2),) for s in w1.steps)
    assert program.root_workers == ("w0",)
    assert progs["w0"].cleanup and not w1.cleanup  # only the sink's worker cleans up


def test_programs_round_trip_plain_and_rich_arguments() -> None:
    g = plans.graph(workflows.rich_constants)
    program = build_program(plans.per_task(g), settings_for(new_dag_id("describe")))
    steps = {s.task_id: s for b in program.worker_blobs.values()
             for s in decode_program(b).steps}
    assert steps["describe-0"].args == g.code["describe-0"].args
    assert repr(steps["describe-0"].kwargs) == repr(g.code["describe-0"].kwargs)
    assert steps["inc-0"].args == (1,)


def test_functions_are_shipped_once() -> None:
    g = plans.graph(workflows.chain, n=50)
    program = build_program(plans.per_task(g), settings_for(new_dag_id("inc")))
    assert len(loads_blob(program.shared_blob).functions) == 1


def test_a_worker_order_that_breaks_a_dependency_is_refused() -> None:
    g = plans.graph(workflows.chain, n=3)
    plan = plans.one_worker(g)
    backwards = replace(plan.workers[0], tasks=tuple(reversed(plan.workers[0].tasks)))
    broken = replace(plan, workers=(backwards,))
    with pytest.raises(UnrunnablePlan, match="runs 'inc-2' before its parent 'inc-1'"):
        build_program(broken, settings_for(new_dag_id("inc")))


def test_a_task_on_no_worker_is_refused() -> None:
    g = plans.graph(workflows.chain, n=3)
    plan = plans.per_task(g)
    short = replace(plan, workers=plan.workers[:-1])
    with pytest.raises(UnrunnablePlan, match="task 'inc-2' is on no worker"):
        build_program(short, settings_for(new_dag_id("inc")))


# -- BATCH: idempotent readiness -------------------------------------------------------------

@st.composite
def completions(draw: st.DrawFn) -> tuple[dict[str, tuple[list[str], str]],
                                            list[tuple[str, str]], list[int]]:
    """Children with their remote parents and worker; completion events covering every
    (parent, child) pair at least once, with duplicates, shuffled; batch boundaries."""
    parents = [f"p{i}" for i in range(5)]
    children = {
        f"c{j}": (draw(st.lists(st.sampled_from(parents), min_size=1, max_size=3, unique=True)),
                  draw(st.sampled_from(["wa", "wb", "wc"])))
        for j in range(draw(st.integers(1, 4)))}
    pairs = [(p, c) for c, (ps, _) in children.items() for p in ps]
    extra = draw(st.lists(st.sampled_from(pairs), max_size=8))
    events = draw(st.permutations(pairs + extra))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(events) - 1)), max_size=4)))
    return children, events, cuts


@settings(max_examples=60, deadline=None)
@given(case=completions())
def test_readiness_counts_each_parent_once(redis_server: EmbeddedRedis,
                                           case: tuple[dict[str, tuple[list[str], str]],
                                                       list[tuple[str, str]], list[int]]) -> None:
    """Whatever the order, duplicates (re-run tasks) and batching: a child is pushed to its
    worker's notify list exactly once, only after all its remote parents finished, and each
    worker's start is claimed exactly once."""
    children, events, cuts = case
    keys = RunKeys("prop", new_dag_id("c"))
    c = redis.Redis.from_url(redis_server.url)
    c.hset(keys.progress(), "total", 1)
    seen: set[tuple[str, str]] = set()
    claimed: list[str] = []
    bounds = [0, *cuts, len(events)]
    for lo, hi in itertools.pairwise(bounds):
        batch = events[lo:hi]
        update = BatchUpdate([(p, [RemoteChild(ch, children[ch][1], len(children[ch][0]))])
                              for p, ch in batch], done=len(batch))
        alive, started = started_workers(call_sync(c, batch_call(keys, update, 60)))
        assert alive
        claimed += started
        seen.update(batch)
        for worker in {w for _, w in children.values()}:
            notified = [_text(x) for x in c.lrange(keys.notify(worker), 0, -1)]
            for child in notified:
                assert all((p, child) in seen for p in children[child][0]), "ready too early"
    for worker in {w for _, w in children.values()}:
        notified = sorted(_text(x) for x in c.lrange(keys.notify(worker), 0, -1))
        assert notified == sorted(ch for ch, (_, w) in children.items() if w == worker)
    assert sorted(claimed) == sorted({w for _, w in children.values()})
    assert int(c.hget(keys.progress(), "done") or 0) == len(events)
    c.delete(keys.progress(), keys.started(), keys.timings(), keys.leases(),
             *(keys.deps(ch) for ch in children), *(keys.notify(w) for w in ("wa", "wb", "wc")))
    c.close()


def test_a_claim_writes_the_claimed_workers_first_lease_once(rclient: redis.Redis) -> None:
    """The claim and the start request cannot be one step (the request leaves after the
    script): the claimed worker holds a generation-1 lease from the claim on, so a request lost
    with its sender is noticed when that lease expires. A repeated update claims nothing and
    leaves the lease (by then the worker's own) alone."""
    keys = RunKeys(f"t{uuid.uuid4().hex[:8]}", new_dag_id("c"))
    rclient.hset(keys.progress(), "total", 2)
    update = BatchUpdate([("p", [RemoteChild("c", "wc", 1)])], 1)
    assert started_workers(call_sync(rclient, batch_call(keys, update, 60))) == (True, ["wc"])
    generation, expires_at = parse_lease(rclient.hget(keys.leases(), "wc") or b"")
    assert generation == 1
    assert expires_at > time.time()
    assert 0 < rclient.ttl(keys.leases()) <= 60
    rclient.hset(keys.leases(), "wc", "1 123.0")  # the worker renewed it meanwhile
    assert started_workers(call_sync(rclient, batch_call(keys, update, 60))) == (True, [])
    assert rclient.hget(keys.leases(), "wc") == b"1 123.0"
    rclient.delete(keys.progress(), keys.started(), keys.timings(), keys.leases(),
                   keys.deps("c"), keys.notify("wc"))


def test_leases_expire_by_the_redis_servers_clock(rclient: redis.Redis,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers, pools and the client may run where clocks disagree: every lease (claim, renewal,
    relaunch) is stamped with the server's TIME, whatever the writer's clock says."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600.0)  # the writer's clock is 1 h off
    keys = RunKeys(f"t{uuid.uuid4().hex[:8]}", new_dag_id("c"))
    rclient.hset(keys.progress(), "total", 2)

    def lease_left(worker: str) -> float:
        _, expires_at = parse_lease(rclient.hget(keys.leases(), worker) or b"")
        return expires_at - server_time(rclient.time())

    update = BatchUpdate([("p", [RemoteChild("c", "wc", 1)])], 1)
    call_sync(rclient, batch_call(keys, update, 60))
    assert LEASE_START_GRACE_S - 5 < lease_left("wc") <= LEASE_START_GRACE_S
    assert call_sync(rclient, lease_call(keys, "wc", 1, 60, "p1")) == 1
    assert LEASE_TTL_S - 5 < lease_left("wc") <= LEASE_TTL_S
    old = WorkerSpec(keys.namespace, keys.dag_id, "wc", 512, 0.29, real(), 1)
    new = relaunch_spec(old, Death("crash"))
    assert new is not None
    assert call_sync(rclient, relaunch_call(keys, old, new, Death("crash"), 60)) == 1
    assert LEASE_START_GRACE_S - 5 < lease_left("wc") <= LEASE_START_GRACE_S
    rclient.delete(keys.progress(), keys.started(), keys.timings(), keys.leases(),
                   keys.notify("wc"), keys.deps("c"), keys.recovered())


def test_a_relaunched_claimer_starts_the_workers_its_dead_generation_claimed(
        rclient: redis.Redis) -> None:
    """A claimer killed between its BATCH and its start request leaves a worker claimed but
    never asked for. Its relaunched generation, re-running the same tasks, asks again (instead
    of the run waiting out the claim lease); nobody else does, nor the same generation twice.
    Should both requests arrive, the first process to write its lease keeps it."""
    keys = RunKeys(f"t{uuid.uuid4().hex[:8]}", new_dag_id("c"))
    rclient.hset(keys.progress(), "total", 2)
    update = BatchUpdate([("p", [RemoteChild("c", "wc", 1)])], 1)

    def claims(claimer: str) -> list[str]:
        return started_workers(call_sync(rclient, batch_call(keys, update, 60, claimer)))[1]

    assert claims("w0 1") == ["wc"]
    assert claims("w0 1") == []  # the same generation asks once
    assert claims("w9 1") == []  # another worker never asks for it
    assert claims("w0 2") == ["wc"]  # w0 died after its claim: generation 2 asks again
    assert call_sync(rclient, lease_call(keys, "wc", 1, 60, "first")) == 1
    assert call_sync(rclient, lease_call(keys, "wc", 1, 60, "second")) == 0  # a duplicate
    assert call_sync(rclient, lease_call(keys, "wc", 1, 60, "first")) == 1
    assert claims("w0 3") == []  # wc runs: nothing to ask for
    old = WorkerSpec(keys.namespace, keys.dag_id, "wc", 512, 0.29, time.time(), 1)
    new = relaunch_spec(old, Death("crash"))
    assert new is not None
    assert call_sync(rclient, relaunch_call(keys, old, new, Death("crash"), 60)) == 1
    assert claims("w0 4") == []  # relaunched by the pool: not the claimer's to ask for
    assert call_sync(rclient, lease_call(keys, "wc", 1, 60, "first")) == 0  # superseded
    assert call_sync(rclient, lease_call(keys, "wc", 2, 60, "third")) == 1
    rclient.delete(keys.progress(), keys.started(), keys.timings(), keys.leases(),
                   keys.notify("wc"), keys.deps("c"), keys.recovered())


def test_batch_of_a_finished_run_writes_nothing(rclient: redis.Redis) -> None:
    ns = f"t{uuid.uuid4().hex[:8]}"
    keys = RunKeys(ns, new_dag_id("c"))
    update = BatchUpdate([("p", [RemoteChild("c", "w", 1)])], 1, -1, "[]")
    alive, started = started_workers(call_sync(rclient, batch_call(keys, update, 60)))
    assert (alive, started) == (False, [])
    assert list(rclient.scan_iter(f"{ns}:*")) == []


def test_error_record_only_while_the_run_exists(rclient: redis.Redis) -> None:
    ns = f"t{uuid.uuid4().hex[:8]}"
    keys = RunKeys(ns, new_dag_id("c"))
    record = json.dumps({"task_id": "t"})
    assert call_sync(rclient, error_call(keys, "t", record, 60)) == 0
    assert list(rclient.scan_iter(f"{ns}:*")) == []
    rclient.hset(keys.progress(), "total", 1)  # the run's liveness key
    assert call_sync(rclient, error_call(keys, "t", record, 60)) == 1
    assert rclient.lrange(keys.done(), 0, -1) == [b"error"]
    assert json.loads(rclient.hget(keys.errors(), "t") or b"{}") == {"task_id": "t"}
    assert 0 < rclient.ttl(keys.errors()) <= 60
    rclient.delete(keys.progress(), keys.done(), keys.errors())


def test_scripts_survive_a_flushed_script_cache(rclient: redis.Redis) -> None:
    keys = RunKeys("flush", new_dag_id("c"))
    rclient.hset(keys.progress(), "total", 1)
    rclient.script_flush()
    update = BatchUpdate([("p", [RemoteChild("c", "w", 1)])], 1)
    assert started_workers(call_sync(rclient, batch_call(keys, update, 60))) == (True, ["w"])
    rclient.delete(keys.progress(), keys.started(), keys.deps("c"), keys.notify("w"))
