"""The metrics store on a real Redis: layout, incremental reads, listing, pruning, errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from metadata import keys
from metadata.errors import MetricsStoreError, RecordError
from metadata.store import EXPORT_COLUMNS, MetricsStore
from tests.metadata.factories import run, task, worker


@pytest.fixture()
def store(redis_url: str, namespace: str) -> Iterator[MetricsStore]:
    with MetricsStore(redis_url, namespace) as s:
        yield s


def test_records_live_under_the_metrics_prefix(store: MetricsStore, redis_url: str,
                                               namespace: str) -> None:
    store.write([task("m.f:1"), worker(), run()])
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    found = set(client.scan_iter(f"{namespace}:*"))
    assert found == {
        keys.functions_key(namespace), keys.task_records_key(namespace, "m.f:1"),
        keys.runs_key(namespace), keys.worker_records_key(namespace, "dag-1"),
        keys.worker_runs_key(namespace)}
    assert all(k.startswith(f"{namespace}:metrics:") for k in found)


def test_task_records_come_back_per_function_oldest_first(store: MetricsStore) -> None:
    recs = [task("m.f:1", task_id=f"f-{i}") for i in range(3)] + [task("m.g:2", task_id="g-0")]
    assert store.write_tasks(recs) == 4
    got = store.task_records(["m.f:1", "m.g:2", "m.absent:0"])
    assert got["m.f:1"] == recs[:3]
    assert got["m.g:2"] == recs[3:]
    assert got["m.absent:0"] == []
    assert store.task_records(["m.f:1"], last=2)["m.f:1"] == recs[1:3]


def test_functions_lists_names_and_counts(store: MetricsStore) -> None:
    store.write_tasks([task("m.f:1"), task("m.f:1"), task("m.f:2"), task("m.g:3")])
    assert [(i.function_key, i.function_name, i.records) for i in store.functions()] == [
        ("m.f:1", "f", 2), ("m.f:2", "f", 1), ("m.g:3", "g", 1)]
    assert store.resolve("f") == ["m.f:1", "m.f:2"]
    assert store.resolve("m.g") == ["m.g:3"]
    assert store.resolve("m.f:2") == ["m.f:2"]
    assert store.resolve("nope") == []


def test_runs_and_workers(store: MetricsStore) -> None:
    store.write_run(run("dag-2", submitted_at=200.0))
    store.write_run(run("dag-1", submitted_at=100.0))
    store.write_run(run("dag-1", submitted_at=100.0, ok=False))  # replaces
    assert [(r.run_id, r.ok) for r in store.runs()] == [("dag-1", False), ("dag-2", True)]
    assert store.run("dag-2") == run("dag-2", submitted_at=200.0)
    assert store.run("dag-9") is None
    store.write_worker(worker("dag-1", worker_id="w-0"))
    store.write_worker(worker("dag-1", worker_id="w-1", cold=False))
    store.write_worker(worker("dag-2", requested_at=300.0))
    assert [w.worker_id for w in store.worker_records("dag-1")] == ["w-0", "w-1"]
    assert [w.run_id for w in store.recent_worker_records(max_runs=1)] == ["dag-2"]
    assert len(store.recent_worker_records()) == 3


def test_history_is_capped_per_function(redis_url: str, namespace: str) -> None:
    with MetricsStore(redis_url, namespace, max_records_per_function=5) as small:
        small.write_tasks(task("m.f:1", task_id=f"f-{i}") for i in range(8))
        assert [r.task_id for r in small.task_records(["m.f:1"])["m.f:1"]] == [
            "f-3", "f-4", "f-5", "f-6", "f-7"]


def test_prune(store: MetricsStore) -> None:
    store.write_tasks([task("m.f:1", task_id=f"f-{i}") for i in range(5)] + [task("m.g:2")])
    store.write_run(run("dag-old", submitted_at=10.0))
    store.write_run(run("dag-new", submitted_at=1000.0))
    store.write_worker(worker("dag-old", requested_at=10.0))
    result = store.prune(keep_last=2, functions=["m.g:2"], runs_before=500.0)
    assert (result.records_removed, result.functions_removed, result.runs_removed) == (4, 1, 1)
    assert [i.function_key for i in store.functions()] == ["m.f:1"]
    assert [r.task_id for r in store.task_records(["m.f:1"])["m.f:1"]] == ["f-3", "f-4"]
    assert [r.run_id for r in store.runs()] == ["dag-new"]
    assert store.worker_records("dag-old") == []
    assert store.prune(keep_last=0).records_removed == 2
    assert store.functions() == []


def test_export_rows_have_the_csv_columns(store: MetricsStore) -> None:
    store.write_tasks([task("m.f:1"), task("m.g:2", error="x", ok=False)])
    rows = list(store.export_rows())
    assert [tuple(r) for r in rows] == [EXPORT_COLUMNS] * 2
    assert {r["function_key"] for r in rows} == {"m.f:1", "m.g:2"}


def test_unreachable_store_names_the_url_without_password() -> None:
    store = MetricsStore(f"redis://user:hunter2@127.0.0.1:{_unused_port()}/0")
    with pytest.raises(MetricsStoreError) as info:
        store.ping()
    assert "127.0.0.1" in str(info.value)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)


def test_bad_url_and_namespace_are_errors() -> None:
    with pytest.raises(MetricsStoreError, match="bad metrics store URL"):
        MetricsStore("http://:pw@nowhere")
    with pytest.raises(Exception, match="namespace"):
        MetricsStore("redis://localhost", "has space")


def test_a_record_of_another_version_in_the_store_is_a_clear_error(
        store: MetricsStore, redis_url: str, namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.rpush(keys.task_records_key(namespace, "m.f:1"), '{"v": 99, "kind": "task"}')
    with pytest.raises(RecordError, match=r"metrics of m.f:1: .*schema version 99"):
        store.task_records(["m.f:1"])


def _unused_port() -> int:
    """A localhost TCP port that nothing listens on (bound, read, released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _plan_doc(tasks: int = 3) -> dict:
    return {"workflow": "tree", "strategy": "critical-path", "platform": "local",
            "makespan_s": 1.5, "cost_usd": 0.001, "gb_s": 2.0, "cold_starts": 1,
            "workers": [{"worker_id": "w0"}],
            "tasks": [{"id": f"add-{i}", "upstream": []} for i in range(tasks)]}


def test_a_runs_plan_comes_back_whole_and_its_summary_alone(store: MetricsStore) -> None:
    doc = _plan_doc(2000)
    store.write_plan("dag-1", doc, recorded_at=123.5)
    got = store.plan("dag-1")
    assert got is not None and got.doc == doc and got.recorded_at == 123.5
    assert store.plan("dag-absent") is None
    summaries = store.plan_summaries(["dag-1", "dag-absent"])
    assert summaries == {"dag-1": {"workflow": "tree", "strategy": "critical-path",
                                   "platform": "local", "makespan_s": 1.5, "cost_usd": 0.001,
                                   "gb_s": 2.0, "cold_starts": 1, "tasks": 2000, "workers": 1,
                                   "recorded_at": 123.5}}
    assert store.planned_runs() == ["dag-1"] and store.planned_runs(since=200.0) == []


def test_a_plan_that_is_not_a_plan_document_is_refused(store: MetricsStore) -> None:
    with pytest.raises(RecordError, match=r"not a plan\.json object"):
        store.write_plan("dag-1", {"workflow": "tree"})


def test_a_corrupt_recorded_plan_names_the_run(store: MetricsStore, redis_url: str,
                                              namespace: str) -> None:
    store.write_plan("dag-1", _plan_doc())
    redis.Redis.from_url(redis_url).hset(keys.run_plan_key(namespace, "dag-1"), "doc", b"junk")
    with pytest.raises(RecordError, match="recorded plan of run dag-1 is corrupt"):
        store.plan("dag-1")


def test_pruning_old_runs_drops_their_plans(store: MetricsStore) -> None:
    store.write_plan("dag-old", _plan_doc(), recorded_at=50.0)
    store.write_plan("dag-new", _plan_doc(), recorded_at=500.0)
    assert store.prune(runs_before=100.0).runs_removed == 0  # no RunRecord: plan only
    assert store.plan("dag-old") is None and store.plan("dag-new") is not None
    assert store.planned_runs() == ["dag-new"]


def test_a_plan_written_in_the_background_is_there_once_the_thread_ends(
        store: MetricsStore, redis_url: str, namespace: str) -> None:
    thread = MetricsStore.write_plan_in_background(redis_url, namespace, "dag-1", _plan_doc)
    thread.join(10)
    got = store.plan("dag-1")
    assert got is not None and got.doc == _plan_doc() and got.recorded_at > 0


def test_a_plan_that_cannot_be_built_is_logged_not_raised(
        redis_url: str, namespace: str, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict:
        raise ValueError("no plan")

    MetricsStore.write_plan_in_background(redis_url, namespace, "dag-1", broken).join(10)
    assert "cannot record the plan of run dag-1: no plan" in caplog.text
