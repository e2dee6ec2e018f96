"""A Redis Cluster of a few shards on free loopback ports, for tests: started and stopped here.

It uses the redis-server the embedded store runs (`runtime.embedded.find_redis_server`) and the
redis-cli that ships beside it (`redis-cli --cluster create`); each shard is one primary without
replicas, no persistence, in its own temporary directory.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from runtime.embedded import find_redis_server

START_TIMEOUT_S = 30.0
"""How long the shards may take to answer and the cluster to reach `cluster_state:ok`."""


def _free_ports(n: int) -> list[int]:
    """`n` free loopback ports whose +10000 cluster-bus ports are free too."""
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port < 55000 and port not in ports:
            with socket.socket() as bus, contextlib.suppress(OSError):
                bus.bind(("127.0.0.1", port + 10000))
                ports.append(port)
    return ports


def _wait_until(check: object, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.1)
    raise RuntimeError(f"the test Redis Cluster did not {what} within {START_TIMEOUT_S:.0f} s")


@contextlib.contextmanager
def redis_cluster(shards: int = 3) -> Iterator[str]:
    """Start a cluster of `shards` primaries; yields the URL of its first node."""
    exe = find_redis_server()
    cli = str(Path(exe).with_name("redis-cli"))
    ports = _free_ports(shards)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="planflow-cluster-") as tmp:
        try:
            for port in ports:
                d = Path(tmp) / str(port)
                d.mkdir()
                procs.append(
                    subprocess.Popen(
                        [
                            exe,
                            "--port",
                            str(port),
                            "--bind",
                            "127.0.0.1",
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            str(d / "nodes.conf"),
                            "--dir",
                            str(d),
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--protected-mode",
                            "no",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            clients = [redis.Redis(port=p, socket_timeout=5) for p in ports]
            for c in clients:
                _wait_until(c.ping, "answer PING")
            nodes = [f"127.0.0.1:{p}" for p in ports]
            subprocess.run(
                [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            for c in clients:
                _wait_until(
                    lambda c=c: c.cluster("info").get("cluster_state") == "ok",
                    "reach cluster_state:ok",
                )
                c.close()
            yield f"redis://127.0.0.1:{ports[0]}/0"
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
