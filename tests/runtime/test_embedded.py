"""The embedded Redis: started and stopped by planflow with nothing left behind, and the default
of `run_plan` when no Redis URL is given (metrics persist in the data directory)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import redis

from metadata.store import MetricsStore
from runtime.client import run_plan
from runtime.defaults import DATA_DIR_ENV, REDIS_URL_ENV
from runtime.embedded import EmbeddedRedis, has_history
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
    first = run_plan(plan, timeout_s=60.0)
    second = run_plan(plan, timeout_s=60.0)
    assert first.result == second.result == 10
    assert redis_servers_in(tmp_path) == []
    assert pool_processes("planflow", str(tmp_path)) == []  # (others' pools may be running)
    assert has_history(tmp_path)  # planflow.aof (6.2) or appendonlydir/ (7.x)
    with EmbeddedRedis(data_dir=tmp_path, persistent=True) as server, \
            MetricsStore(server.url, "planflow") as store:
        runs = {r.run_id for r in store.runs()}
        assert {first.dag_id, second.dag_id} <= runs
        c = redis.Redis.from_url(server.url)
        assert [k for k in c.scan_iter("planflow:{*")] == []
        c.close()


def test_users_of_one_data_directory_share_one_server(tmp_path: Path) -> None:
    first = EmbeddedRedis(data_dir=tmp_path, persistent=True).start()
    second = EmbeddedRedis(data_dir=tmp_path, persistent=True).start()
    pid = first.pid
    assert pid is not None and second.pid == pid and redis_servers_in(tmp_path) == [pid]
    c = redis.Redis.from_url(second.url)
    c.set("k", "v")
    first.stop()  # not the last user: the server stays for the second
    assert c.get("k") == b"v"
    c.close()
    second.stop()
    assert redis_servers_in(tmp_path) == []
    with EmbeddedRedis(data_dir=tmp_path, persistent=True) as again:  # the data was kept
        c = redis.Redis.from_url(again.url)
        assert c.get("k") == b"v"
        c.close()


def test_a_server_left_by_a_killed_user_is_adopted_and_stopped(tmp_path: Path) -> None:
    code = ("import sys, time; from pathlib import Path; from runtime.embedded import "
            "EmbeddedRedis; s = EmbeddedRedis(data_dir=Path(sys.argv[1])).start(); "
            "print(s.pid, flush=True); time.sleep(600)")
    user = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                            text=True)
    assert user.stdout is not None
    pid = int(user.stdout.readline())
    user.kill()  # SIGKILL: no chance to stop its server
    user.wait()
    assert redis_servers_in(tmp_path) == [pid]
    with EmbeddedRedis(data_dir=tmp_path, persistent=True) as server:
        assert server.pid == pid
    assert redis_servers_in(tmp_path) == []


def test_a_deep_data_directory_shares_its_socket_too(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    first = EmbeddedRedis(data_dir=deep, persistent=True).start()
    second = EmbeddedRedis(data_dir=deep, persistent=True).start()
    assert first.socket_path == second.socket_path and not first.socket_path.is_relative_to(deep)
    assert first.pid == second.pid
    second.stop()
    first.stop()
    assert redis_servers_in(deep) == []


def test_concurrent_runs_on_the_embedded_store_share_it_and_lose_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    plan = plans.round_robin(plans.graph(workflows.fan, width=6), 3)
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: run_plan(plan, timeout_s=60.0), range(4)))
    assert [r.result for r in results] == [21] * 4
    assert redis_servers_in(tmp_path) == []
    assert pool_processes("planflow", str(tmp_path)) == []
    with EmbeddedRedis(data_dir=tmp_path, persistent=True) as server, \
            MetricsStore(server.url, "planflow") as store:
        assert {r.dag_id for r in results} <= {r.run_id for r in store.runs()}
        for r in results:
            assert len(store.worker_records(r.dag_id)) == 3


def _history_bytes(directory: Path) -> int:
    files = [directory / "planflow.aof", *(directory / "appendonlydir").glob("*")]
    return sum(f.stat().st_size for f in files if f.is_file())


def test_the_last_user_compacts_coordination_traffic_out_of_the_history(tmp_path: Path) -> None:
    """Runs write far more coordination (leases, dependency sets, deletions) than metrics; once
    the last user leaves, the history on disk is about what the data set holds, not what was
    ever written."""
    with EmbeddedRedis(data_dir=tmp_path, persistent=True) as server:
        client = redis.Redis.from_url(server.url)
        client.set("kept", b"k" * 10_000)
        for i in range(3_000):  # churn, like a run's keys: written, then deleted
            client.set(f"run:{i}", b"x" * 1_000)
            client.delete(f"run:{i}")
        churned = int(client.info("persistence")["aof_current_size"])
        kept = len(client.dump("kept") or b"")
        client.close()
    assert churned > 3_000_000
    assert _history_bytes(tmp_path) < 4 * kept + 10_000  # header and preamble
    with EmbeddedRedis(data_dir=tmp_path, persistent=True) as server:
        client = redis.Redis.from_url(server.url)
        assert client.get("kept") == b"k" * 10_000  # nothing kept was lost
        client.close()


def test_data_written_by_a_newer_server_is_refused_not_read_as_empty(tmp_path: Path) -> None:
    import json

    from runtime.embedded import FORMAT_NAME
    from runtime.errors import StoreError

    (tmp_path / FORMAT_NAME).write_text(json.dumps({"server_version": [99, 0, 0]}))
    with pytest.raises(StoreError, match=r"by redis-server 99\.0\.0.*PLANFLOW_REDIS_SERVER"):
        EmbeddedRedis(data_dir=tmp_path, persistent=True).start()
    assert redis_servers_in(tmp_path) == []
