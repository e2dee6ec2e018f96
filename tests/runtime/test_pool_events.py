"""What wakes the pool server (`runtime.pool_events`): a request on an outstanding BLPOP, a
child's exit through SIGCHLD; and a BLPOP still outstanding when the server leaves gives back
what it popped instead of losing it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from metadata.connect import sync_client
from runtime.pool_events import ChildExits, RequestWaiter, wait_readable

WAKE_WITHIN_S = 5.0
"""How long a test waits for an event it caused (the event, not this bound, wakes the wait)."""


@pytest.fixture()
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = sync_client(redis_url)
    yield client
    client.close()


def _keys() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"t:{{{tag}}}:control", f"t:{{{tag}}}:requests"


def test_a_request_wakes_the_outstanding_wait(store: redis.Redis) -> None:
    control, requests = _keys()
    waiter = RequestWaiter(store, [control, requests])
    sock = waiter.arm()
    assert sock is not None
    assert wait_readable([sock], 0.05) == set()  # nothing yet
    store.rpush(requests, b"spec")
    assert wait_readable([sock], WAKE_WITHIN_S) == {sock}
    assert waiter.take() == (requests.encode(), b"spec")
    waiter.finish(control)


def test_leaving_with_a_wait_outstanding_keeps_what_it_popped(store: redis.Redis) -> None:
    control, requests = _keys()
    waiter = RequestWaiter(store, [control, requests])
    waiter.arm()
    assert waiter.finish(control) is None  # woken by its own message, which is consumed
    assert store.llen(control) == 0
    sock = waiter.arm()
    store.rpush(requests, b"late")
    assert wait_readable([sock], WAKE_WITHIN_S)  # popped by the server, not read yet
    assert waiter.finish(control) == (requests.encode(), b"late")
    assert store.llen(control) == 0  # the wake message it sent is not left behind


def test_a_child_exit_wakes_the_server() -> None:
    exits = ChildExits()
    try:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        assert wait_readable([exits], WAKE_WITHIN_S) == {exits}
        exits.drain()
        os.waitpid(pid, 0)
        assert wait_readable([exits], 0.05) == set()  # drained
    finally:
        exits.close()
