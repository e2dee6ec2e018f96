"""Incremental loading: MetadataAccess reads only the functions asked for, once, pipelined.

The Redis server's own MONITOR stream is the witness: it shows every command the store sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import redis

from metadata import keys
from metadata.access import MetadataAccess
from metadata.store import MetricsStore
from tests.metadata.factories import PLATFORM, history, worker

FUNCTIONS = [f"wf.f{i}:h{i}" for i in range(5)]


@pytest.fixture()
def store(redis_url: str, namespace: str) -> Iterator[MetricsStore]:
    with MetricsStore(redis_url, namespace) as s:
        for i, key in enumerate(FUNCTIONS):
            s.write_tasks(history(key, lambda x, c, i=i: 0.1 * (i + 1), cpus=[1.0, 2.0],
                                  inputs=[1e3], runs=2))
        s.write_worker(worker())
        yield s


@pytest.fixture()
def commands(redis_url: str) -> Callable[[Callable[[], object]], list[list[str]]]:
    """Run an action and return the commands the server saw meanwhile (MONITOR)."""

    def watch(action: Callable[[], object]) -> list[list[str]]:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        sentinel = f"end-{uuid.uuid4().hex}"
        seen: list[list[str]] = []
        with client.monitor() as monitor:
            action()
            client.echo(sentinel)
            while True:
                cmd = monitor.next_command()["command"].split()
                if sentinel in cmd[-1]:
                    break
                seen.append([part.strip('"') for part in cmd])
        client.close()
        return seen

    return watch


def lranged(seen: list[list[str]], namespace: str) -> set[str]:
    """Function keys whose task lists were read."""
    prefix = keys.task_records_key(namespace, "")
    return {c[1][len(prefix):] for c in seen
            if c[0].upper() == "LRANGE" and c[1].startswith(prefix)}


def test_load_reads_only_requested_functions_and_only_once(
        store: MetricsStore, namespace: str,
        commands: Callable[[Callable[[], object]], list[list[str]]]) -> None:
    access = MetadataAccess(store, **PLATFORM)
    first = commands(lambda: access.load(FUNCTIONS[:2]))
    assert lranged(first, namespace) == set(FUNCTIONS[:2])
    assert not any(c[0].upper() in ("KEYS", "SCAN", "HGETALL") for c in first)

    second = commands(lambda: access.load(FUNCTIONS[1:3]))
    assert lranged(second, namespace) == {FUNCTIONS[2]}
    assert not any(c[0].upper() == "ZREVRANGE" for c in second)  # worker records: fetched once

    third = commands(lambda: access.predict_durations(FUNCTIONS[:3], np.zeros(3), np.ones(1)))
    assert lranged(third, namespace) == set()
    assert access.loaded == set(FUNCTIONS[:3])


def test_predictions_from_the_store_match_those_from_the_same_records(
        store: MetricsStore) -> None:
    from_store = MetadataAccess(store, **PLATFORM)
    records = [r for rs in store.task_records(FUNCTIONS).values() for r in rs]
    from_records = MetadataAccess.from_records(records, worker_records=[worker()], **PLATFORM)
    cpus = np.array([0.5, 1.0, 3.0])
    a = from_store.predict_durations(FUNCTIONS, np.zeros(5), cpus)
    b = from_records.predict_durations(FUNCTIONS, np.zeros(5), cpus)
    np.testing.assert_allclose(a.mean_s, b.mean_s)
    assert a.source.tolist() == b.source.tolist() == ["history"] * 5
    np.testing.assert_allclose(a.mean_s[:, 1], [0.1, 0.2, 0.3, 0.4, 0.5], rtol=1e-6)


def test_history_limit_reads_only_the_newest_records(store: MetricsStore) -> None:
    access = MetadataAccess(store, history_limit=2, **PLATFORM)
    access.load(FUNCTIONS[:1])
    assert len(access.records(FUNCTIONS[0])) == 2
