"""Fixtures of the runtime tests: launchers, a Redis client, and leftover checks.

The local launcher (worker processes, warm pool) is session-wide: its pool server starts once
and is shut down at the end, and the session then checks that none of its processes is left.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from runtime.defaults import REDIS_URL_ENV
from runtime.embedded import EmbeddedRedis
from runtime.local import LocalLauncher
from runtime.threads import ThreadLauncher

POOL_KEEP_WARM_S = 120.0
"""Keep-warm time of the test session's pool (it is shut down explicitly at the end)."""


@pytest.fixture(scope="session")
def pool_namespace() -> str:
    return f"testpool{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def local_launcher(redis_server: EmbeddedRedis, pool_namespace: str,
                   planflow_home: Path) -> Iterator[LocalLauncher]:
    launcher = LocalLauncher(redis_server.url, pool_namespace, keep_warm_s=POOL_KEEP_WARM_S,
                             shutdown_on_close=True)
    launcher.ensure_pool()
    yield launcher
    launcher.close()
    assert pool_processes(pool_namespace) == [], "the pool server or its workers outlived it"


@pytest.fixture()
def thread_launcher(redis_url: str) -> Iterator[ThreadLauncher]:
    launcher = ThreadLauncher(redis_url)
    yield launcher
    launcher.close()


@pytest.fixture()
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def run_keys(client: redis.Redis, namespace: str) -> list[str]:
    """Keys of any run of `namespace` (`<ns>:{<dag>}:...`), found by SCAN."""
    return sorted(k.decode() for k in client.scan_iter(f"{namespace}:{{*", count=1000))


def namespace_keys(client: redis.Redis, namespace: str) -> list[str]:
    return sorted(k.decode() for k in client.scan_iter(f"{namespace}:*", count=1000))


def pool_processes(namespace: str, url_part: str = "") -> list[int]:
    """Pids of pool servers of `namespace` (serving a Redis whose URL holds `url_part`, e.g. an
    embedded server's data directory) and of their worker processes."""
    found: list[int] = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "runtime.pool" not in cmdline or namespace not in cmdline:
            continue
        with contextlib.suppress(psutil.Error):
            if url_part and url_part not in proc.environ().get(REDIS_URL_ENV, ""):
                continue
            found.append(proc.info["pid"])
            found.extend(c.pid for c in proc.children(recursive=True))
    return found
