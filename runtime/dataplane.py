"""The worker's data plane: a background thread running an asyncio loop with redis.asyncio.

The worker's main thread runs tasks; everything that can overlap with them happens here:

- **fetches** of remote inputs, as HMGETs on the producing workers' output hashes (no per-read
  EXISTS: a missing field reads as None), pipelined; the worker
  prefetches the inputs of every task it learns is ready, so transfers overlap with the tasks
  before it;
- **uploads** by group commit: a finished task is queued (`Uploader.put`) and the main thread
  moves on; the loop sends everything queued so far as one pipeline - outputs (PUT), one
  BATCH script (progress, timings, readiness of all the batch's remote children) - and starts
  the workers the script claimed. Fast tasks share a round trip; a slow task's update leaves as
  soon as it is queued. Tasks whose output nobody remote needs are queued as non-urgent: they
  ride along with the next batch or the periodic progress flush.

Ordering guarantees the protocol relies on: within a batch, outputs (PUT) precede BATCH, and
BATCH updates counters and timings before it makes anyone ready, so by the time a child can run
(and the sink can clean up), everything its parents' workers wrote is in place. The sink's batch
ends with FINISH, which stores the result, deletes the intermediate keys and signals `ok`.

The loop also holds the worker's **lease** (`runtime.leases`): written at start, renewed every
`LEASE_RENEW_S`, deleted by the worker's last batch.

Every write is a guarded script (`runtime.scripts`), so a batch that arrives after its run ended
writes nothing. Concurrency is bounded by construction: a fetch of any number of inputs is a few
pipelines of HMGETs, at most `FETCH_PIPELINES_IN_FLIGHT` in flight, over a blocking pool
(`metadata.connect`) whose reconnect policy resends what a lost connection interrupted. An error
that outlasts it, or a refusal of the server (out of memory, read-only, ...), becomes the
worker's `error`, a `StoreError` naming the condition: the worker stops and the run fails with
that message, never as a failure of the user's task.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from metadata.connect import async_client
from runtime.defaults import CLAIM_GRACE_S, POOL_ID_ENV
from runtime.errors import store_error
from runtime.keys import RunKeys
from runtime.leases import LEASE_RENEW_S, lease_call
from runtime.program import TaskStep
from runtime.scripts import (
    SCRIPTS,
    BatchUpdate,
    ScriptCall,
    batch_call,
    call_async,
    finish_call,
    is_noscript,
    put_calls,
    queue_call,
    started_workers,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

FETCH_FIELDS_PER_COMMAND = 512
"""Fields per HMGET of a fetch."""

FETCH_COMMANDS_PER_PIPELINE = 8
"""HMGETs per pipeline (one round trip)."""

FETCH_PIPELINES_IN_FLIGHT = 4
"""Fetch pipelines a process has in flight at once, whatever the number of inputs (the rest
wait their turn): a task with 100,000 inputs needs a handful of connections, not thousands."""

ASYNC_CONNECTIONS = FETCH_PIPELINES_IN_FLIGHT + 4
"""Connections of the data-plane client: the fetches, the uploader and the lease."""

PROGRESS_FLUSH_S = 0.25
"""Longest time a finished task's progress/timing waits when nothing else is sent."""

SOCKET_TIMEOUT_S = 120.0
"""Longest a data-plane command may take (a value of hundreds of MB included)."""

DEFAULT_VALUE_LIMIT_BYTES = 512 * 1024 * 1024
"""Largest value Redis accepts (its `proto-max-bulk-len` default), when the server will not say."""

DEFAULT_QUERY_LIMIT_BYTES = 1024 * 1024 * 1024
"""Redis closes a client whose pending command exceeds this (`client-query-buffer-limit`)."""

PUT_BYTES_MAX = 64 * 1024 * 1024
"""Values per PUT command, in bytes (more are split across commands; one larger value goes
alone): far below the server's query-buffer limit."""


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """What the server accepts: the largest value (bytes) and the largest pending command."""

    value_bytes: int = DEFAULT_VALUE_LIMIT_BYTES
    query_bytes: int = DEFAULT_QUERY_LIMIT_BYTES

    @classmethod
    async def read(cls, client: aioredis.Redis) -> StoreLimits:
        """The server's limits (CONFIG GET), or the defaults where it does not tell (managed
        services often disable CONFIG)."""
        found: dict[str, int] = {}
        for name in ("proto-max-bulk-len", "client-query-buffer-limit"):
            try:
                reply: dict[Any, Any] = await client.config_get(name)
                raw = reply.get(name) or reply.get(name.encode())
                if raw is not None:
                    found[name] = int(raw)
            except (redis.ResponseError, ValueError):
                continue
        return cls(found.get("proto-max-bulk-len", DEFAULT_VALUE_LIMIT_BYTES),
                   found.get("client-query-buffer-limit", DEFAULT_QUERY_LIMIT_BYTES))


class IoLoop:
    """A daemon thread running an asyncio loop and one redis.asyncio client (connection pool)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="planflow-io", daemon=True)
        self._thread.start()
        self._fetch_slots: asyncio.Semaphore
        self.limits = StoreLimits()
        self.client: aioredis.Redis = self.call(self._connect(url))

    async def _connect(self, url: str) -> aioredis.Redis:
        client = async_client(url, socket_timeout=SOCKET_TIMEOUT_S,
                              max_connections=ASYNC_CONNECTIONS)
        self._fetch_slots = asyncio.Semaphore(FETCH_PIPELINES_IN_FLIGHT)
        for script in SCRIPTS:  # so EVALSHA finds them (NOSCRIPT is still handled)
            await client.script_load(script.source)
        self.limits = await StoreLimits.read(client)
        return client

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        """Cancel what still runs on the loop (lease renewals, tickers), then disconnect."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        close = getattr(self.client, "aclose", None) or self.client.close  # redis-py 5.0.0
        await close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.submit(coro).result()

    def call_soon(self, fn: Callable[[], object]) -> None:
        self._loop.call_soon_threadsafe(fn)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def fetch(self, fields: Sequence[tuple[str, str]]) -> Future[list[bytes | None]]:
        """Values of (hash key, field) pairs, in order (None where missing): HMGETs of at most
        FETCH_FIELDS_PER_COMMAND fields, pipelined, at most FETCH_PIPELINES_IN_FLIGHT at once.
        A lost connection is resent by the client's reconnect policy (`metadata.connect`)."""
        return self.submit(self._fetch(list(fields)))

    async def _fetch(self, fields: list[tuple[str, str]]) -> list[bytes | None]:
        by_key: dict[str, list[int]] = {}
        for i, (key, _) in enumerate(fields):
            by_key.setdefault(key, []).append(i)
        reads = [(key, idx[j:j + FETCH_FIELDS_PER_COMMAND]) for key, idx in by_key.items()
                 for j in range(0, len(idx), FETCH_FIELDS_PER_COMMAND)]
        groups = [reads[j:j + FETCH_COMMANDS_PER_PIPELINE]
                  for j in range(0, len(reads), FETCH_COMMANDS_PER_PIPELINE)]
        parts = await asyncio.gather(*(self._read_group(fields, g) for g in groups))
        out: list[bytes | None] = [None] * len(fields)
        for group, replies in zip(groups, parts, strict=True):
            for (_, idx), values in zip(group, replies, strict=True):
                for i, value in zip(idx, values, strict=True):
                    out[i] = value.encode() if isinstance(value, str) else value
        return out

    async def _read_group(self, fields: list[tuple[str, str]],
                          group: list[tuple[str, list[int]]]) -> list[Any]:
        async with self._fetch_slots:
            pipe = self.client.pipeline(transaction=False)
            for key, idx in group:
                pipe.hmget(key, [fields[i][1] for i in idx])
            return list(await pipe.execute())

    def close(self) -> None:
        if not self._loop.is_running():
            return
        try:
            self.call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


async def _new_lock() -> asyncio.Lock:
    return asyncio.Lock()  # created inside the loop that uses it


@dataclass(slots=True)
class Completion:
    """A finished task, as queued for upload. `payload` is its pickled output when a consumer
    runs elsewhere (or the result, for the sink); `last` marks the worker's last task."""

    step: TaskStep
    payload: bytes | None
    started_at: float
    finished_at: float
    last: bool = False
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class BatchSent:
    """What one batch cost: the pipeline round trip and the worker starts it triggered."""

    items: tuple[Completion, ...]
    round_trip_s: float
    invoke_s: float
    started: tuple[str, ...]


class Uploader:
    """Group-commits one worker's finished tasks. Thread-safe `put`; `drain` waits for all."""

    def __init__(self, io: IoLoop, keys: RunKeys, worker_id: str, ttl_s: int,
                 cleanup: Sequence[str], start_workers: Callable[[Sequence[str]], None],
                 on_sent: Callable[[BatchSent], None], generation: int = 1,
                 claim_grace_s: float = CLAIM_GRACE_S) -> None:
        self._io = io
        self._keys = keys
        self._worker_id = worker_id
        self.ttl_s = ttl_s
        self._cleanup = list(cleanup)
        self._start_workers = start_workers
        self._on_sent = on_sent
        self._lock = threading.Lock()
        self._items: list[Completion] = []
        self._scheduled = False
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        self.gone = False
        """Set when Redis said the run no longer exists (finished elsewhere or cancelled)."""
        self.superseded = False
        """Set when a newer generation of this worker holds the lease (we were presumed dead)."""
        self._generation = generation
        self._claim_grace_s = claim_grace_s
        pool = os.environ.get(POOL_ID_ENV)
        self._holder = f"{os.getpid()}-{secrets.token_hex(4)}" + (f"@{pool}" if pool else "")
        """Names this process (and the pool running it) in the lease: of two processes started
        for one generation (a start request sent twice), the first to write its lease keeps
        it."""
        self._lease_lock = io.call(_new_lock())
        """Held by each lease renewal and by the last batch: once the last batch has deleted
        the lease (`_released`), no renewal in flight can write it back."""
        self._released = False
        self._ticker = io.submit(self._tick())
        self._lease = io.submit(self._hold_lease())

    def put(self, item: Completion, urgent: bool) -> None:
        with self._lock:
            self._items.append(item)
            kick = urgent and not self._scheduled
            if kick:
                self._scheduled = True
        if kick:
            self._io.call_soon(self._kick)

    def drain(self) -> None:
        """Block until everything queued is sent; raise the data plane's error if any."""
        self._io.call(self._drain())
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._ticker.cancel()
        self._lease.cancel()

    # -- inside the loop ----------------------------------------------------------------------

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = self._io.loop.create_task(self._flush())

    async def _drain(self) -> None:
        while True:
            if self._task is not None and not self._task.done():
                await asyncio.shield(self._task)
                continue
            with self._lock:
                if not self._items:
                    return
                self._scheduled = True
            self._kick()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_FLUSH_S)
            with self._lock:
                kick = bool(self._items) and not self._scheduled
                if kick:
                    self._scheduled = True
            if kick:
                self._kick()

    async def _hold_lease(self) -> None:
        """Write the lease now, renew it every LEASE_RENEW_S. A lost connection is ridden out by
        the client's reconnect policy; an error that outlasts it, or any refusal of the server
        (out of memory, read-only...), fails the worker: a worker that cannot hold its lease
        would be presumed dead and relaunched while it still runs."""
        while True:
            call = lease_call(self._keys, self._worker_id, self._generation, self.ttl_s,
                              self._holder)
            try:
                async with self._lease_lock:
                    if self._released:
                        return
                    reply = int(await call_async(self._io.client, call))
            except redis.RedisError as err:
                self._fail(store_error(err, self._io.url, f"renewing the lease of worker "
                                       f"{self._worker_id}"))
                return
            if reply == 0:
                log.error("worker %s: another process (a newer generation, or a second start "
                          "of this one) holds the lease; stopping", self._worker_id)
                self.superseded = True
            elif reply < 0:
                self.gone = True
            await asyncio.sleep(LEASE_RENEW_S)

    def _fail(self, err: BaseException) -> None:
        if self.error is None:
            log.error("worker %s: %s", self._worker_id, err)
            self.error = err

    async def _flush(self) -> None:
        while True:
            with self._lock:
                items, self._items = self._items, []
                if not items:
                    self._scheduled = False
                    return
            if self.error is not None:
                continue  # the worker is failing: drop, the error path reports it
            try:
                await self._send(items)
            except redis.RedisError as err:
                tasks = ", ".join(c.step.task_id for c in items[:3])
                more = f" and {len(items) - 3} more" if len(items) > 3 else ""
                self._fail(store_error(err, self._io.url,
                                       f"storing the outputs and updates of {tasks}{more}"))
            except Exception as err:
                self._fail(err)

    async def _send(self, items: list[Completion]) -> None:
        keys, ttl = self._keys, self.ttl_s
        sink = items[-1] if items and items[-1].step.is_sink else None
        running = -int(any(c.last for c in items))  # +1 was sent with the download
        rows = [[c.step.task_id, self._worker_id, c.started_at, c.finished_at]
                + ([c.attempt] if c.attempt > 1 else []) for c in items]
        update = BatchUpdate(
            [(c.step.task_id, c.step.remote_children) for c in items if c.step.remote_children],
            len(items), running, json.dumps(rows, separators=(",", ":")) if rows else "")
        outputs = {c.step.task_id: c.payload for c in items
                   if c.payload is not None and not c.step.is_sink}
        # outputs first: a child made ready by BATCH must find its inputs
        calls = put_calls(keys, self._worker_id, outputs, ttl, PUT_BYTES_MAX)
        batch_at = len(calls)
        calls.append(batch_call(keys, update, ttl,
                                claimer=f"{self._worker_id} {self._generation}",
                                claim_grace_s=self._claim_grace_s))
        if sink is not None:
            calls.append(finish_call(keys, sink.payload or b"", self._cleanup, ttl))
        pipe = self._io.client.pipeline(transaction=False)
        for call in calls:
            queue_call(pipe, call)
        if running:  # the worker's last batch: it no longer needs a lease
            pipe.hdel(keys.leases(), self._worker_id)
        t0 = time.perf_counter()
        if running:
            async with self._lease_lock:
                self._released = True
                replies = await pipe.execute(raise_on_error=False)
        else:
            replies = await pipe.execute(raise_on_error=False)
        replies[:len(calls)] = await self._resend_unknown(calls, replies[:len(calls)])
        round_trip = time.perf_counter() - t0
        for r in replies:
            if isinstance(r, Exception):
                raise r
        alive, started = started_workers(replies[batch_at])
        if not alive:
            self.gone = True
        invoke = 0.0
        if started:
            t1 = time.perf_counter()
            await self._io.loop.run_in_executor(None, self._start_workers, started)
            invoke = time.perf_counter() - t1
        if items:
            self._on_sent(BatchSent(tuple(items), round_trip, invoke, tuple(started)))

    async def _resend_unknown(self, calls: list[ScriptCall], replies: list[Any]) -> list[Any]:
        """Replies of `calls`, with every call the server did not know (NOSCRIPT: a restart or
        SCRIPT FLUSH emptied its script cache) loaded and sent again, in order - safe, since
        every script is idempotent."""
        out = list(replies)
        for i, reply in enumerate(replies):
            if isinstance(reply, redis.ResponseError) and is_noscript(reply):
                out[i] = await call_async(self._io.client, calls[i])
        return out
