"""Runs on the decentralized executor with in-process (thread) workers: results equal the inline
executor's for any placement, failures reach the client, nothing of a run is left in Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from metadata.store import MetricsStore
from planner.plan import Plan
from runtime.client import RunProgress, run_plan
from runtime.errors import TaskFailed
from runtime.events import Event, TaskSettled, WorkerFinished
from runtime.inline import run_inline
from runtime.keys import RunKeys
from runtime.program import RemoteChild
from runtime.scripts import BatchUpdate, batch_call, call_sync
from runtime.threads import ThreadLauncher
from tests.runtime import counters, plans, workflows
from tests.runtime.conftest import namespace_keys, run_keys

Placement = Callable[[Any], Plan]
PLACEMENTS: dict[str, Placement] = {
    "one-worker": plans.one_worker,
    "per-task": plans.per_task,
    "round-robin-3": lambda g: plans.round_robin(g, 3),
}


def run(plan: Plan, url: str, namespace: str, launcher: ThreadLauncher, **kw: Any) -> Any:
    return run_plan(plan, redis_url=url, namespace=namespace, launcher=launcher,
                    timeout_s=kw.pop("timeout_s", 60.0), **kw)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("wf", [workflows.chain, workflows.fan, workflows.nested,
                                workflows.outputs, workflows.rich_constants],
                         ids=lambda w: w.name)
def test_result_equals_inline(wf: Any, placement: str, redis_url: str, namespace: str,
                              thread_launcher: ThreadLauncher, client: redis.Redis) -> None:
    plan = PLACEMENTS[placement](plans.graph(wf))
    result = run(plan, redis_url, namespace, thread_launcher)
    assert result.result == run_inline(plan).result
    assert set(result.tasks) == {n.id for n in plan.graph.nodes}
    assert result.workers_started == len(plan.workers)
    assert run_keys(client, namespace) == []


def test_nested_arguments_and_keywords_are_rebuilt(redis_url: str, namespace: str,
                                                   thread_launcher: ThreadLauncher) -> None:
    plan = plans.per_task(plans.graph(workflows.nested))
    result = run(plan, redis_url, namespace, thread_launcher).result
    assert result == ("1{'s': {'pair': (3, 4), 'items': [3, {'deep': 6}]}, 'more': [5, "
                      "{'again': {'pair': (3, 4), 'items': [3, {'deep': 6}]}}]}|(5, 5)")


def test_several_outputs_come_back_in_their_structure(redis_url: str, namespace: str,
                                                      thread_launcher: ThreadLauncher) -> None:
    plan = plans.round_robin(plans.graph(workflows.outputs), 2)
    assert run(plan, redis_url, namespace, thread_launcher).result == \
        {"a": 2, "b": [4, 3], "c": (4,)}


def test_only_metrics_remain_after_a_run(redis_url: str, namespace: str,
                                         thread_launcher: ThreadLauncher,
                                         client: redis.Redis) -> None:
    plan = plans.round_robin(plans.graph(workflows.fan, width=6), 3)
    result = run(plan, redis_url, namespace, thread_launcher)
    thread_launcher.join(result.dag_id)  # workers write their metrics after the result
    left = namespace_keys(client, namespace)
    assert left and all(k.startswith(f"{namespace}:metrics:") for k in left), left


def test_metrics_are_recorded_per_task_worker_and_run(redis_url: str, namespace: str,
                                                      thread_launcher: ThreadLauncher) -> None:
    plan = plans.round_robin(plans.graph(workflows.fan, width=4), 2)
    result = run(plan, redis_url, namespace, thread_launcher, metrics_upload="per-task")
    thread_launcher.join(result.dag_id)
    with MetricsStore(redis_url, namespace) as store:
        keys = {n.function_key for n in plan.graph.nodes}
        records = [r for rs in store.task_records(keys).values() for r in rs]
        assert sorted(r.task_id for r in records) == sorted(n.id for n in plan.graph.nodes)
        assert all(r.ok and r.run_id == result.dag_id for r in records)
        sink_worker = plan.tasks["total-0"].worker
        stored = [r for r in records if r.task_id.startswith("add")
                  and plan.tasks[r.task_id].worker != sink_worker]
        assert stored and all(r.output_bytes > 0 for r in stored)  # pickled for the sink
        workers = store.worker_records(result.dag_id)
        assert sorted(w.worker_id for w in workers) == ["w0", "w1"]
        assert sum(w.tasks_run for w in workers) == len(plan.graph.nodes)
        assert all(w.plan_bytes > 0 and w.plan_download_s > 0 for w in workers)
        run_record = store.run(result.dag_id)
        assert run_record is not None and run_record.ok
        assert run_record.observed_makespan_s > 0
        # the record is what `run --json` reported, beside the plan's prediction
        assert run_record.observed_makespan_s == pytest.approx(result.observed_makespan_s)
        assert run_record.predicted_makespan_s == plan.summary.makespan_s


def test_every_workers_metrics_are_stored_when_the_run_returns(redis_url: str,
                                                              namespace: str) -> None:
    """Workers flush after their last task, after the sink may have published the result; the
    client waits for them, so a compile right after a run (or an embedded Redis that stops with
    the run) does not lose the run's records. A slow listener delays every worker's flush."""
    def slow(event: Event) -> None:
        if isinstance(event, WorkerFinished):
            time.sleep(0.3)

    launcher = ThreadLauncher(redis_url, listeners=[slow])
    plan = plans.round_robin(plans.graph(workflows.fan, width=4), 2)
    result = run(plan, redis_url, namespace, launcher)
    with MetricsStore(redis_url, namespace) as store:
        assert sorted(w.worker_id for w in store.worker_records(result.dag_id)) == ["w0", "w1"]
        keys = {n.function_key for n in plan.graph.nodes}
        assert sorted(r.task_id for rs in store.task_records(keys).values() for r in rs
                      if r.run_id == result.dag_id) == sorted(n.id for n in plan.graph.nodes)
    launcher.close()


def test_a_failing_task_raises_task_failed_and_nothing_downstream_runs(
        redis_url: str, namespace: str, thread_launcher: ThreadLauncher,
        client: redis.Redis) -> None:
    plan = plans.per_task(plans.graph(workflows.failing))
    with pytest.raises(TaskFailed) as info:
        run(plan, redis_url, namespace, thread_launcher, timeout_s=30.0)
    err = info.value
    assert (err.task_id, err.function, err.exc_type) == ("fail-0", "fail", "ValueError")
    assert err.message == "cannot handle 1" and "in fail\n" in err.traceback
    assert err.worker_id == plan.tasks["fail-0"].worker
    assert run_keys(client, namespace) == []
    sink_worker = plan.tasks["total-0"].worker
    assert not any(w == sink_worker for _, w in thread_launcher.outcomes)


def test_a_task_run_twice_counts_once(redis_url: str, namespace: str,
                                      thread_launcher: ThreadLauncher) -> None:
    """A retried task re-sends its readiness update: its child must neither become ready
    early (counting it twice would make counted-1 ready before the slow pause-0) nor run twice.
    The listener re-applies counted-0's update right after the worker's own."""
    g = plans.graph(workflows.diamond, seconds=0.3)
    plan = plans.placed(g, {"inc-0": "w0", "counted-0": "w1", "pause-0": "w2",
                            "counted-1": "w3"})
    keys_of: list[RunKeys] = []

    def rerun(event: Event) -> None:
        if isinstance(event, TaskSettled) and event.task_id == "counted-0":
            update = BatchUpdate([("counted-0", [RemoteChild("counted-1", "w3", 2)])])
            call_sync(thread_launcher.ctx.redis, batch_call(keys_of[0], update, 60))

    thread_launcher.listeners.append(rerun)
    before = dict(counters.CALLS)
    dag_id = "dag-1700000000000-counted-00aa"
    keys_of.append(RunKeys(namespace, dag_id))
    result = run(plan, redis_url, namespace, thread_launcher, dag_id=dag_id)
    assert counters.CALLS["child"] - before.get("child", 0) == 1
    assert result.result == run_inline(plan).result == 4
    assert [w for d, w in thread_launcher.outcomes if d == dag_id].count("w3") == 1


def test_progress_is_reported_up_to_completion(redis_url: str, namespace: str,
                                               thread_launcher: ThreadLauncher) -> None:
    seen: list[RunProgress] = []
    plan = plans.round_robin(plans.graph(workflows.diamond, seconds=0.5), 2)
    run(plan, redis_url, namespace, thread_launcher, progress=seen.append)
    assert seen[-1] == RunProgress(4, 4, 0)
    assert all(p.tasks_total == 4 and 0 <= p.tasks_done <= 4 for p in seen)
    assert any(p.workers_running >= 1 for p in seen)
