"""What a worker needs to start other workers on this machine's pools: `PoolClient`.

It pushes `WorkerSpec` start requests onto `<ns>:pool:{pool}:requests`, which any live pool server
(`runtime.pool`) pops, and asks pools to cancel a run's workers. Worker processes import this,
never the client-side launcher (`runtime.local.LocalLauncher`, which also spawns and manages
pool servers).
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psutil
import redis

from runtime.keys import PoolKeys
from runtime.launcher import WorkerSpec

log = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 30.0
"""How long a launcher waits for a pool's reply to `cancel`."""

REPLY_SLICE_S = 0.5
"""BLPOP slice while waiting for a reply (the pool process is checked between slices)."""


def process_identity() -> dict[str, Any]:
    """What names this process beyond its pid: the machine it runs on and when it started (a
    pid alone may be reused)."""
    return {"host": socket.gethostname(), "created": psutil.Process().create_time()}


def process_alive(pid: int | None) -> bool:
    """Whether process `pid` of this machine runs (exists and is not a zombie)."""
    if pid is None:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def _still_here(entry: Mapping[str, Any]) -> bool:
    """Whether the process a heartbeat entry names runs on this machine right now."""
    if entry.get("host") != socket.gethostname() or "created" not in entry:
        return False
    try:
        proc = psutil.Process(int(entry["pid"]))
        return proc.create_time() == entry["created"] and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, ValueError, TypeError):
        return False


class PoolClient:
    """Starts workers by pushing requests to the namespace's pool servers."""

    name = "local"

    def __init__(self, client: redis.Redis, namespace: str, env: str = "") -> None:
        self.redis = client
        self.keys = PoolKeys(namespace, env)

    def prewarm(self, configs: Mapping[tuple[int, float], int], modules: Sequence[str]) -> None:
        return None

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        if specs:
            self.redis.rpush(self.keys.requests(), *(s.to_json() for s in specs))

    def live_pools(self) -> list[str]:
        """Ids of pool servers whose heartbeat is recent, or that run on this machine and whose
        process is still there: on an overloaded host a heartbeat can be seconds late, and a
        pool taken for dead has its workers relaunched while they run."""
        now = time.time()
        entries = self.redis.hgetall(self.keys.alive())
        alive = []
        for pool_id, raw in entries.items():
            entry = json.loads(raw)
            if entry.get("expires_at", 0) > now or _still_here(entry):
                alive.append(pool_id.decode() if isinstance(pool_id, bytes) else str(pool_id))
        return sorted(alive)

    def pools_here(self) -> list[str]:
        """Ids of pool servers whose process runs on this machine right now."""
        entries = self.redis.hgetall(self.keys.alive())
        return sorted((k.decode() if isinstance(k, bytes) else str(k))
                      for k, raw in entries.items() if _still_here(json.loads(raw)))

    def stop(self, dag_id: str) -> None:
        """Ask every live pool to kill the run's workers; wait for their replies."""
        for pool_id in self.live_pools():
            self._request(pool_id, {"op": "cancel", "dag": dag_id}, REPLY_TIMEOUT_S)

    def close(self) -> None:
        return None

    def _request(self, pool_id: str, msg: dict[str, object], timeout_s: float) -> bool:
        token = secrets.token_hex(8)
        self.redis.rpush(self.keys.control(pool_id), json.dumps({**msg, "reply": token}))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.redis.blpop([self.keys.reply(token)], timeout=REPLY_SLICE_S) is not None:
                return True
            if pool_id not in self.live_pools():
                return False
        log.warning("pool %s did not answer %s within %.0f s", pool_id, msg.get("op"), timeout_s)
        return False
