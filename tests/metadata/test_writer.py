"""MetricsWriter upload strategies against a real Redis, including a SIGKILLed worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from metadata.errors import MetadataError, MetricsStoreError
from metadata.store import MetricsStore
from metadata.writer import MetricsWriter, UploadStrategy
from tests.metadata.factories import run, task, worker

FN = "wf.f:abc"
REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 10.0
"""Upper bound on waiting for something asynchronous (a periodic flush, a child process)."""


@pytest.fixture()
def store(redis_url: str, namespace: str) -> Iterator[MetricsStore]:
    with MetricsStore(redis_url, namespace) as s:
        yield s


def stored(store: MetricsStore) -> int:
    return len(store.task_records([FN])[FN])


def test_on_exit_writes_only_at_close(store: MetricsStore) -> None:
    writer = MetricsWriter(store, "on-exit")
    for i in range(5):
        writer.add(task(FN, task_id=f"f-{i}"))
    assert stored(store) == 0 and writer.pending == 5
    writer.close()
    assert stored(store) == 5 and writer.written == 5 and writer.pending == 0
    writer.close()  # idempotent
    with pytest.raises(MetadataError, match="after close"):
        writer.add(task(FN))


def test_per_task_writes_inside_add(store: MetricsStore) -> None:
    with MetricsWriter(store, UploadStrategy.PER_TASK) as writer:
        for i in range(3):
            writer.add(task(FN, task_id=f"f-{i}"))
            assert stored(store) == i + 1
        writer.add(worker())
        assert store.worker_records("dag-1") == [worker()]


def test_batched_writes_every_n_and_the_rest_at_exit(store: MetricsStore) -> None:
    with MetricsWriter(store, "batched", batch_size=3) as writer:
        writer.add(task(FN))
        writer.add(task(FN))
        assert stored(store) == 0
        writer.add(task(FN))
        assert stored(store) == 3
        writer.add(task(FN))
        assert stored(store) == 3
    assert stored(store) == 4


def test_periodic_writes_without_being_asked(store: MetricsStore) -> None:
    writer = MetricsWriter(store, "periodic", period_s=0.05)
    try:
        writer.add(task(FN))
        writer.add(run())
        deadline = time.monotonic() + WAIT_S
        while stored(store) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stored(store) == 1 and store.run("dag-1") == run()
        writer.add(task(FN))
    finally:
        writer.close()
    assert stored(store) == 2


def test_unknown_strategy_and_non_records_are_clear_errors(store: MetricsStore) -> None:
    with pytest.raises(MetadataError, match="unknown upload strategy 'sometimes'"):
        MetricsWriter(store, "sometimes")
    with MetricsWriter(store, "periodic") as writer, pytest.raises(TypeError, match="record"):
        writer.add({"exec_s": 1.0})  # type: ignore[arg-type]


def test_failed_flush_keeps_records_for_the_next_one(redis_url: str, namespace: str) -> None:
    dead = MetricsStore("redis://127.0.0.1:1/0", namespace, outage_s=0)  # fail at once
    writer = MetricsWriter(dead, "batched", batch_size=2)
    writer.add(task(FN, task_id="f-0"))
    with pytest.raises(MetricsStoreError):
        writer.add(task(FN, task_id="f-1"))
    assert writer.pending == 2
    with MetricsStore(redis_url, namespace) as live:
        writer.store = live
        writer.close()
        assert [r.task_id for r in live.task_records([FN])[FN]] == ["f-0", "f-1"]


CHILD = textwrap.dedent('''
    import sys, time
    from metadata.writer import MetricsWriter
    from tests.metadata.factories import task
    url, namespace, strategy, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    writer = MetricsWriter.from_url(url, namespace, strategy)
    for i in range(k):
        writer.add(task("wf.f:abc", task_id=f"f-{i}"))
    print("done", flush=True)
    time.sleep(60)      # killed here, mid-run: close() never happens
''')


def run_and_kill(redis_url: str, namespace: str, strategy: str, k: int) -> None:
    """Start a worker-like process that records k tasks, then SIGKILL it."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, redis_url, namespace, strategy, str(k)],
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "done"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(WAIT_S)
    assert proc.returncode == -signal.SIGKILL


def test_per_task_worker_killed_mid_run_loses_no_finished_task(
        store: MetricsStore, redis_url: str, namespace: str) -> None:
    run_and_kill(redis_url, namespace, "per-task", k=7)
    assert [r.task_id for r in store.task_records([FN])[FN]] == [f"f-{i}" for i in range(7)]


def test_on_exit_worker_killed_mid_run_loses_its_records(
        store: MetricsStore, redis_url: str, namespace: str) -> None:
    """The trade-off `per-task` pays a round trip per task to avoid."""
    run_and_kill(redis_url, namespace, "on-exit", k=7)
    assert stored(store) == 0
