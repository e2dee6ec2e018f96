"""The local launcher: worker processes on this machine, through a pool server (`runtime.pool`).

`runtime.pool_client.PoolClient` is all a worker needs to start other workers (and all a worker
process imports): it pushes start requests onto the namespace's request list, which any live
pool server pops. `LocalLauncher` (the client's launcher) also makes sure a pool server is
alive - reusing one that is (warm processes carry over from run to run) or starting `python -m
runtime.pool` detached, with the Redis URL in its environment - and talks to it: prewarm before
a run, cancel a run's workers, shut it down.

A pool outlives the client that started it (its warm processes serve the next run) and exits
after its keep-warm time without work, or when Redis has been gone for a while. The last user
of an embedded Redis stops every pool on it first (`shutdown_all_pools`, the embedded store's
`on_last_user`: `runtime.client.embedded_store`), since their Redis is about to go away; tools
that own a pool outright use `shutdown_on_close=True`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from metadata.connect import blocking_socket_timeout, sync_client
from runtime.defaults import REDIS_URL_ENV, log_dir
from runtime.errors import StoreError
from runtime.launcher import WorkerSpec
from runtime.pool import DEFAULT_KEEP_WARM_S, MAX_PROCESSES, SHUTDOWN_WAIT_S
from runtime.pool_client import REPLY_SLICE_S, PoolClient

log = logging.getLogger(__name__)

POOL_START_TIMEOUT_S = 30.0
"""How long a launcher waits for a pool server it started to say it is ready."""

POOL_RECHECK_S = 1.0
"""A pool found alive (not started by this launcher) is trusted this long without a re-check."""

CONTROL_SOCKET_TIMEOUT_S = blocking_socket_timeout(REPLY_SLICE_S)
"""Socket timeout of launcher clients (their longest command is a reply slice's BLPOP)."""


class LocalLauncher(PoolClient):
    """The client's local launcher: ensures a pool server, then starts workers through it."""

    def __init__(self, url: str, namespace: str, *, keep_warm_s: float = DEFAULT_KEEP_WARM_S,
                 mode: str = "fork", shutdown_on_close: bool = False,
                 max_processes: int = MAX_PROCESSES, python: str | None = None,
                 env: str = "") -> None:
        """`python`/`env`: the interpreter of a prepared worker environment and its key
        (`runtime.environments`); its pool servers are apart from the default ones."""
        super().__init__(sync_client(url, socket_timeout=CONTROL_SOCKET_TIMEOUT_S), namespace,
                         env)
        self.python = python or sys.executable
        self.url = url
        self.keep_warm_s = keep_warm_s
        self.mode = mode
        self.max_processes = max_processes
        self.shutdown_on_close = shutdown_on_close
        self.pool_id: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._checked_at = 0.0

    def ensure_pool(self) -> str:
        """The id of a live pool server, starting one if there is none."""
        now = time.monotonic()
        if self.pool_id is not None:
            if self._proc is not None and self._proc.poll() is None:
                return self.pool_id  # ours, and running
            if self._proc is None and now - self._checked_at < POOL_RECHECK_S:
                return self.pool_id
        live = self.live_pools()
        self.pool_id = live[0] if live else self._spawn_pool()
        self._checked_at = now
        return self.pool_id

    def prewarm(self, configs: Mapping[tuple[int, float], int], modules: Sequence[str]) -> None:
        pool_id = self.ensure_pool()
        msg = {"op": "prewarm", "modules": list(modules),
               "configs": [[m, c, n] for (m, c), n in sorted(configs.items())]}
        self.redis.rpush(self.keys.control(pool_id), json.dumps(msg))

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        self.ensure_pool()
        super().start(specs)

    def shutdown(self) -> None:
        """Stop the pool server this launcher started (busy workers finish first)."""
        proc, self._proc = self._proc, None
        if proc is None or self.pool_id is None:
            return
        if proc.poll() is None:
            self._request(self.pool_id, {"op": "shutdown"}, SHUTDOWN_WAIT_S + 5.0)
            try:
                proc.wait(timeout=SHUTDOWN_WAIT_S + 5.0)
            except subprocess.TimeoutExpired:
                log.warning("pool server %d did not exit; killing it", proc.pid)
                proc.kill()
                proc.wait()
        self.pool_id = None

    def close(self) -> None:
        try:
            if self.shutdown_on_close:
                self.shutdown()
        finally:
            self.redis.close()

    def _spawn_pool(self) -> str:
        token = secrets.token_hex(8)
        argv = [self.python, "-m", "runtime.pool", "--namespace", self.keys.namespace,
                "--keep-warm-s", repr(self.keep_warm_s), "--mode", self.mode,
                "--max-processes", str(self.max_processes), "--ready", token,
                "--env", self.keys.env]
        logs = log_dir()
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "pool.log", "ab") as log_file:
            # argv only (no shell); the URL, which may hold a password, goes in the environment
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_file,
                env={**os.environ, REDIS_URL_ENV: self.url}, start_new_session=True,
                cwd=Path.cwd())
        deadline = time.monotonic() + POOL_START_TIMEOUT_S
        while time.monotonic() < deadline:
            got = self.redis.blpop([self.keys.reply(token)], timeout=REPLY_SLICE_S)
            if got is not None:
                value = got[1]
                return value.decode() if isinstance(value, bytes) else str(value)
            if self._proc.poll() is not None:
                break
        code = self._proc.poll()
        raise StoreError(f"the local pool server did not start (exit status {code}); see "
                         f"{logs / 'pool.log'}")


def shutdown_pools(url: str, namespace: str, timeout_s: float = SHUTDOWN_WAIT_S + 5.0,
                   env: str = "") -> int:
    """Ask every live pool server of `namespace` (of environment `env`) to finish its busy
    workers and exit; returns how many answered. For tests and tools that used a Redis URL
    (whose pool outlives runs)."""
    client = PoolClient(sync_client(url, socket_timeout=CONTROL_SOCKET_TIMEOUT_S), namespace,
                        env)
    try:
        return sum(client._request(pool_id, {"op": "shutdown"}, timeout_s)
                   for pool_id in client.live_pools())
    finally:
        client.redis.close()


def shutdown_all_pools(url: str, timeout_s: float = SHUTDOWN_WAIT_S + 5.0) -> int:
    """`shutdown_pools` for every namespace that has a pool server on this Redis (the last user
    of an embedded server stops them before the server goes away)."""
    client = sync_client(url, socket_timeout=CONTROL_SOCKET_TIMEOUT_S)
    try:
        pools: set[tuple[str, str]] = set()
        for raw in client.scan_iter("*:pool*:{pool}:alive"):  # `<ns>:pool[@<env>]:{pool}:alive`
            head, _, tail = raw.decode()[:-len(":{pool}:alive")].rpartition(":pool")
            if head and (not tail or tail.startswith("@")):
                pools.add((head, tail[1:]))
    finally:
        client.close()
    return sum(shutdown_pools(url, ns, timeout_s, env) for ns, env in sorted(pools))
