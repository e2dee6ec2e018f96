"""The live runs of a namespace, and reclaiming the runs of clients that were killed.

A run's client registers it in hash `<ns>:runs` (`runtime.keys.NamespaceKeys.runs`) before it
uploads anything, renews the entry's heartbeat while it waits, and removes it once the run's keys
are deleted. The entry names the client: its host, pid and the pid's start time (a pid alone may
be reused), and the time until which its heartbeat holds, by the Redis server's clock.

A client that dies without cleaning up (SIGKILL, a lost machine) leaves its entry behind, with
its run's keys and possibly workers still running. The next planflow command on the same store
(`reclaim_orphans`, called by `run` and by every command that opens the metrics store) finds such
entries - the client is gone from this host, or its heartbeat ran out `ORPHAN_GRACE_S` ago - and
reclaims them: the run's workers are cancelled through the local pools, its keys deleted
(liveness key first, so no late write recreates any: `runtime.scripts`) and the entry removed.

The heartbeat write is also the client's canary: a store that refuses writes (out of memory,
read-only replica, failing disk) refuses it, and the client fails the run naming the condition
instead of waiting for workers that cannot write either.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass

import psutil
import redis

from runtime.keys import NamespaceKeys, RunKeys, run_key_pattern
from runtime.leases import server_time

log = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 60.0
"""A client's entry holds this long past its last renewal (it renews every LEASE_CHECK_S)."""

ORPHAN_GRACE_S = 30.0
"""An entry whose heartbeat ran out this long ago is reclaimed whatever host it names."""

SCAN_COUNT = 1000
"""Keys per SCAN step when reclaiming a run's keys."""

PID_START_TOLERANCE_S = 1.0
"""How far a process's start time may differ from the recorded one and still be the client."""


@dataclass(frozen=True)
class RunEntry:
    """What the registry says of one live run."""

    dag_id: str
    workflow: str
    strategy: str
    tasks_total: int
    started_at: float
    deadline_at: float
    host: str
    pid: int
    pid_started_at: float
    heartbeat_until: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> RunEntry:
        d = json.loads(raw)
        return cls(str(d["dag_id"]), str(d["workflow"]), str(d["strategy"]),
                   int(d["tasks_total"]), float(d["started_at"]), float(d["deadline_at"]),
                   str(d["host"]), int(d["pid"]), float(d["pid_started_at"]),
                   float(d.get("heartbeat_until", 0.0)))

    def client_gone(self, now: float) -> bool:
        """Whether this entry's client is known dead: gone from this host, or silent past its
        heartbeat by ORPHAN_GRACE_S (`now` by the Redis server's clock)."""
        if now > self.heartbeat_until + ORPHAN_GRACE_S:
            return True
        if self.host != socket.gethostname():
            return False
        try:
            started = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            return True
        except psutil.AccessDenied:  # cannot tell: let its heartbeat decide
            return False
        return abs(started - self.pid_started_at) > PID_START_TOLERANCE_S


def this_client() -> tuple[str, int, float]:
    """(host, pid, pid start time) of the calling process."""
    return socket.gethostname(), os.getpid(), psutil.Process().create_time()


class RunRegistry:
    """The `<ns>:runs` hash of one namespace, on one sync client."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self.redis = client
        self.namespace = namespace
        self.key = NamespaceKeys(namespace).runs()

    def add(self, entry: RunEntry, pipe: redis.client.Pipeline | None = None) -> None:
        """Register `entry` (its heartbeat is set here, by the server's clock)."""
        target = pipe if pipe is not None else self.redis
        fresh = RunEntry(**{**asdict(entry), "heartbeat_until":
                            server_time(self.redis.time()) + HEARTBEAT_TTL_S})
        target.hset(self.key, entry.dag_id, fresh.to_json())

    def heartbeat(self, entry: RunEntry, now: float) -> RunEntry:
        """Renew `entry`'s heartbeat (a write: it fails when the store refuses writes)."""
        fresh = RunEntry(**{**asdict(entry), "heartbeat_until": now + HEARTBEAT_TTL_S})
        self.redis.hset(self.key, entry.dag_id, fresh.to_json())
        return fresh

    def remove(self, dag_id: str) -> None:
        self.redis.hdel(self.key, dag_id)

    def entries(self) -> list[RunEntry]:
        out = []
        for raw_id, raw in self.redis.hgetall(self.key).items():
            try:
                out.append(RunEntry.from_json(raw))
            except (ValueError, KeyError, TypeError):
                log.warning("run registry of %s: dropping a malformed entry %r", self.namespace,
                            raw_id)
                self.redis.hdel(self.key, raw_id)
        return sorted(out, key=lambda e: e.started_at)


def reclaim_orphans(client: redis.Redis, namespace: str,
                    stop_workers: Callable[[str], None]) -> list[RunEntry]:
    """Reclaim every run of `namespace` whose client is gone: `stop_workers(dag_id)` cancels its
    workers, then its keys and its entry are deleted. Returns the runs reclaimed."""
    registry = RunRegistry(client, namespace)
    entries = registry.entries()
    if not entries:
        return []
    now = server_time(client.time())
    reclaimed = []
    for entry in entries:
        if not entry.client_gone(now):
            continue
        log.warning("reclaiming run %s of '%s': its client (pid %d on %s) is gone",
                    entry.dag_id, entry.workflow, entry.pid, entry.host)
        try:
            stop_workers(entry.dag_id)
        except Exception as err:  # keys are deleted anyway; workers then find the run gone
            log.warning("cannot stop the workers of %s: %s", entry.dag_id, err)
        delete_run_keys(client, namespace, entry.dag_id)
        registry.remove(entry.dag_id)
        reclaimed.append(entry)
    return reclaimed


def delete_run_keys(client: redis.Redis, namespace: str, dag_id: str) -> int:
    """Delete every key of a run found by SCAN, its liveness key (`progress`) first."""
    keys = RunKeys(namespace, dag_id)
    client.unlink(keys.progress())
    found = [k for k in client.scan_iter(run_key_pattern(namespace, dag_id), count=SCAN_COUNT)]
    for i in range(0, len(found), SCAN_COUNT):
        client.unlink(*found[i:i + SCAN_COUNT])
    return len(found)
