"""The `planflow` process as users and supervisors treat it: stopped by SIGTERM, SIGHUP or
Ctrl-C mid-run (it cleans up like Ctrl-C always did and exits 143/129/130), killed outright (the
next command reclaims what it left), reading history written by another redis-server version,
and piped into `head`. Each drives the real console entry point in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil
import pytest
import redis

from runtime.defaults import DATA_DIR_ENV, REDIS_URL_ENV
from runtime.embedded import REDIS_SERVER_ENV, EmbeddedRedis, server_version
from runtime.keys import NamespaceKeys
from runtime.local import shutdown_pools
from tests.runtime.conftest import pool_processes, run_keys

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 60.0
"""Longest a test waits for a process to do something (a hang fails the test)."""

MODULE = textwrap.dedent('''
    import os, time
    from planflow import task, workflow

    @task
    def sleeper(seconds: float, pidfile: str) -> int:
        with open(pidfile, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(seconds)
        return 1

    @task
    def inc(x: int) -> int:
        return x + 1

    @workflow
    def slow(seconds: float = 60.0, pidfile: str = ""):
        return inc(sleeper(seconds, pidfile))

    @workflow
    def quick(n: int = 20):
        return [inc(i) for i in range(n)]
''')


@pytest.fixture()
def module(tmp_path: Path) -> Path:
    path = tmp_path / "lifecycle_wf.py"
    path.write_text(MODULE)
    return path


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (REDIS_URL_ENV, REDIS_SERVER_ENV)}
    env.update({DATA_DIR_ENV: str(home), "PYTHONPATH": str(ROOT), **extra})
    return env


def planflow(*args: str, env: dict[str, str], **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "planflow", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]


def wait_for_pid(pidfile: Path) -> int:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if pidfile.exists() and pidfile.read_text():
            return int(pidfile.read_text())
        time.sleep(0.05)
    raise AssertionError("the sleeping task never started")


def servers_of(home: Path) -> list[int]:
    """redis-server processes serving `home` (their --dir)."""
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and "redis-server" in cmd[0] and str(home.resolve()) in cmd:
            found.append(proc.info["pid"])
    return found


def pools_of(home: Path) -> list[int]:
    """Pool servers (and their children) started for the embedded store of `home`."""
    found = []
    for pid in pool_processes("planflow"):
        try:
            if psutil.Process(pid).environ().get(DATA_DIR_ENV) == str(home):
                found.append(pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def left_in_home(home: Path, namespace: str = "planflow") -> tuple[list[str], dict[bytes, bytes]]:
    """Run keys and registry entries of `namespace` in the embedded store of `home`."""
    with EmbeddedRedis(data_dir=home, persistent=True) as server:
        client = redis.Redis.from_url(server.url)
        try:
            return run_keys(client, namespace), client.hgetall(NamespaceKeys(namespace).runs())
        finally:
            client.close()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                              (signal.SIGINT, 130)])
def test_a_signal_mid_run_cleans_up_like_ctrl_c(signum: int, code: int, module: Path,
                                                tmp_path: Path) -> None:
    home, pidfile = tmp_path / "home", tmp_path / "sleeper.pid"
    proc = planflow("run", f"{module}:slow", "-p", f"pidfile={pidfile}", "--json",
                    env=env_for(home))
    sleeper = wait_for_pid(pidfile)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == code, err
    doc = json.loads(out)  # still exactly one JSON object
    assert doc["error"]["exit_code"] == code and doc["error"]["exc_type"] == "Interrupted"
    deadline = time.monotonic() + WAIT_S
    while not gone(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(sleeper), "the run's worker outlived the client"
    assert servers_of(home) == [], "the embedded redis-server outlived the client"
    assert pools_of(home) == [], "a pool server outlived the embedded Redis it served"
    keys, entries = left_in_home(home)
    assert keys == [] and entries == {}


def test_the_leftovers_of_a_killed_client_are_reclaimed_by_the_next_command(
        module: Path, tmp_path: Path, redis_url: str) -> None:
    ns = f"kill{uuid.uuid4().hex[:8]}"
    pidfile = tmp_path / "sleeper.pid"
    env = env_for(tmp_path / "home")
    proc = planflow("run", f"{module}:slow", "-p", f"pidfile={pidfile}", "--redis", redis_url,
                    "--namespace", ns, env=env)
    try:
        sleeper = wait_for_pid(pidfile)
        proc.kill()  # SIGKILL: no clean-up at all
        proc.wait(timeout=WAIT_S)
        client = redis.Redis.from_url(redis_url)
        assert run_keys(client, ns) and client.hlen(NamespaceKeys(ns).runs()) == 1
        follow = planflow("metrics", "list", "--redis", redis_url, "--namespace", ns, "--json",
                          env=env)
        _, err = follow.communicate(timeout=WAIT_S)
        assert follow.returncode == 0, err
        assert "reclaim" in err
        assert run_keys(client, ns) == [] and client.hlen(NamespaceKeys(ns).runs()) == 0
        deadline = time.monotonic() + WAIT_S
        while not gone(sleeper) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(sleeper), "the killed client's worker was not stopped"
    finally:
        shutdown_pools(redis_url, ns)


def redis7() -> str:
    """A redis-server 7.x binary beside the shipped 6.2 (CI has Debian's); skipped only
    outside CI when the machine has none."""
    for exe in (os.environ.get("PLANFLOW_TEST_REDIS7", ""), shutil.which("redis-server") or "",
                "/usr/bin/redis-server"):
        if exe and os.access(exe, os.X_OK) and server_version(exe)[0] >= 7:
            return exe
    if os.environ.get("CI"):
        pytest.fail("CI must have a redis-server 7.x (set PLANFLOW_TEST_REDIS7)")
    pytest.skip("no redis-server 7.x on this machine")


def test_history_survives_switching_redis_server_binaries(module: Path, tmp_path: Path) -> None:
    newer = redis7()
    home = tmp_path / "home"
    env = env_for(home)
    for _ in range(2):
        run = planflow("run", f"{module}:quick", "--json", env=env)
        _, err = run.communicate(timeout=WAIT_S)
        assert run.returncode == 0, err

    def runs(env: dict[str, str]) -> tuple[int, str]:
        """(exit code, number of runs listed, or the error message)."""
        listed = planflow("metrics", "list", "--json", env=env)
        out, err = listed.communicate(timeout=WAIT_S)
        doc = json.loads(out)
        if listed.returncode:
            assert doc["error"]["message"] in err
            return listed.returncode, doc["error"]["message"]
        return listed.returncode, str(len(doc["runs"]))

    assert runs(env) == (0, "2")
    assert runs(env_for(home, **{REDIS_SERVER_ENV: newer})) == (0, "2")  # 7.x reads it
    code, text = runs(env)  # and 6.2 refuses what 7.x rewrote, instead of reading it as empty
    assert code == 2
    assert "was written by redis-server 7." in text and REDIS_SERVER_ENV in text
    assert runs(env_for(home, **{REDIS_SERVER_ENV: newer})) == (0, "2")  # nothing was lost


def test_the_redis_server_first_on_path_does_not_matter(module: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'this is not the redis-server planflow runs' >&2\nexit 3\n")
    fake.chmod(0o755)
    env = env_for(tmp_path / "home", PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    run = planflow("run", f"{module}:quick", "--json", env=env)
    out, err = run.communicate(timeout=WAIT_S)
    assert run.returncode == 0, err
    assert json.loads(out)["result"] == list(range(1, 21))


def test_a_closed_stdout_ends_the_command_quietly(module: Path, tmp_path: Path) -> None:
    env = env_for(tmp_path / "home")
    run = planflow("run", f"{module}:quick", "-p", "n=2000", env=env)  # more than a pipe holds
    assert run.wait(timeout=WAIT_S) == 0
    export = planflow("metrics", "export", "--csv", env=env)
    assert export.stdout is not None
    export.stdout.readline()
    export.stdout.close()  # as `| head -1` does
    _, err = export.communicate(timeout=WAIT_S)
    assert export.returncode == 141
    assert "error" not in err and "Traceback" not in err
