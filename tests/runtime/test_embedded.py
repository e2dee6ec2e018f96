"""The embedded Redis: started and stopped by planflow with nothing left behind, and the default
of `run_plan` when no Redis URL is given (metrics persist in the data directory)."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
import redis

from metadata.store import MetricsStore
from runtime.client import run_plan
from runtime.embedded import DATA_DIR_ENV, EmbeddedRedis
from runtime.worker import REDIS_URL_ENV
from tests.runtime import plans, workflows
from tests.runtime.conftest import pool_processes


def redis_servers_in(directory: Path) -> list[int]:
    """Pids of redis-server processes whose arguments mention `directory`."""
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "redis-server" in cmdline and str(directory) in cmdline:
            found.append(proc.info["pid"])
    return found


def test_embedded_server_starts_and_stops_cleanly(tmp_path: Path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path, persistent=True).start()
    pid = server.pid
    assert pid is not None and psutil.pid_exists(pid)
    c = redis.Redis.from_url(server.url)
    assert c.ping()
    c.close()
    socket_path = server.socket_path
    server.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert redis_servers_in(tmp_path) == []
    assert not socket_path.exists()


def test_run_without_a_url_uses_an_embedded_server_and_keeps_metrics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    plan = plans.round_robin(plans.graph(workflows.fan, width=4), 2)
    pools_before = set(pool_processes("planflow"))  # another test's pool may be running
    first = run_plan(plan, timeout_s=60.0)
    second = run_plan(plan, timeout_s=60.0)
    assert first.result == second.result == 10
    assert redis_servers_in(tmp_path) == []
    assert set(pool_processes("planflow")) <= pools_before
    assert (tmp_path / "planflow.aof").exists()
    with EmbeddedRedis(data_dir=tmp_path, persistent=True) as server, \
            MetricsStore(server.url, "planflow") as store:
        runs = {r.run_id for r in store.runs()}
        assert {first.dag_id, second.dag_id} <= runs
        c = redis.Redis.from_url(server.url)
        assert [k for k in c.scan_iter("planflow:{*")] == []
        c.close()
