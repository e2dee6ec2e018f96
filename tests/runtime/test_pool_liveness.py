"""Which pool servers the client takes for alive: a recent heartbeat, or, on this machine, a
process that is still there (an overloaded host's heartbeat can be late; a pool taken for dead
has its running workers relaunched)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import psutil
import redis

from runtime.keys import PoolKeys
from runtime.pool_client import PoolClient, process_identity


def test_a_late_heartbeat_of_a_pool_still_running_here_is_alive(redis_url: str) -> None:
    ns = f"testlive{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(redis_url)
    me = process_identity()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits; not reaped until wait()
    deadline = time.monotonic() + 30
    while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the child never exited"
        time.sleep(0.01)
    late = time.time() - 60
    entries = {
        "fresh": {"pid": 1, "expires_at": time.time() + 30},
        "late-here": {"pid": os.getpid(), "expires_at": late, **me},
        "late-elsewhere": {"pid": os.getpid(), "expires_at": late,
                           "host": me["host"] + "-other", "created": me["created"]},
        "late-pid-reused": {"pid": os.getpid(), "expires_at": late,
                            "host": me["host"], "created": me["created"] - 1000},
        "late-gone": {"pid": 2**22 + 12345, "expires_at": late, **me},
        "late-old-format": {"pid": os.getpid(), "expires_at": late},
        "late-zombie": {"pid": zombie.pid, "expires_at": late,
                        **_identity_of(zombie.pid)},
    }
    try:
        client.hset(PoolKeys(ns).alive(), mapping={k: json.dumps(v) for k, v in entries.items()})
        assert PoolClient(client, ns).live_pools() == ["fresh", "late-here"]
    finally:
        client.delete(PoolKeys(ns).alive())
        client.close()
        zombie.wait()


def _identity_of(pid: int) -> dict[str, object]:
    return {"host": process_identity()["host"], "created": psutil.Process(pid).create_time()}
