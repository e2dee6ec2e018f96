"""The worker's data plane: a background thread running an asyncio loop with redis.asyncio.

The worker's main thread runs tasks; everything that can overlap with them happens here:

- **fetches** of remote inputs, as HMGETs on the producing workers' output hashes (no per-read
  EXISTS: a missing field reads as None), split into chunks fetched concurrently; the worker
  prefetches the inputs of every task it learns is ready, so transfers overlap with the tasks
  before it;
- **uploads** by group commit: a finished task is queued (`Uploader.put`) and the main thread
  moves on; the loop sends everything queued so far as one pipeline - outputs (one HSET), one
  BATCH script (progress, timings, readiness of all the batch's remote children) - and starts
  the workers the script claimed. Fast tasks share a round trip; a slow task's update leaves as
  soon as it is queued. Tasks whose output nobody remote needs are queued as non-urgent: they
  ride along with the next batch or the periodic progress flush.

Ordering guarantees the protocol relies on: within a batch, outputs precede the script, and the
script updates counters and timings before it makes anyone ready, so by the time a child can
run (and the sink can clean up), everything its parents' workers wrote is in place. The sink's
batch is one MULTI that stores the result, deletes the intermediate keys and signals `ok`.

The loop also holds the worker's **lease** (`runtime.leases`): written at start, renewed every
`LEASE_RENEW_S`, deleted by the worker's last batch. A batch that fails on a lost connection is
sent again with capped backoff for `REDIS_RETRY_S` (safe: BATCH is idempotent), then the worker
fails.
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

from runtime.keys import RunKeys
from runtime.leases import LEASE_RENEW_S, lease_call
from runtime.program import TaskStep
from runtime.scripts import (
    SCRIPTS,
    BatchUpdate,
    batch_call,
    call_async,
    is_noscript,
    started_workers,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

FETCH_CHUNK_KEYS = 64
"""Fields per HMGET; larger fetches are split into chunks sent concurrently."""

PROGRESS_FLUSH_S = 0.25
"""Longest time a finished task's progress/timing waits when nothing else is sent."""

UNLINK_CHUNK_KEYS = 1000
"""Keys per UNLINK command in the sink's clean-up."""

SOCKET_TIMEOUT_S = 60.0
"""Longest a data-plane command may take before the worker treats Redis as gone."""

REDIS_RETRY_S = 20.0
"""How long a batch (or the lease) is retried on a lost connection before the worker fails."""

RETRY_FIRST_S = 0.1
"""First wait before resending after a lost connection; doubled up to RETRY_MAX_S."""

RETRY_MAX_S = 2.0
"""Longest wait between two resends."""


class IoLoop:
    """A daemon thread running an asyncio loop and one redis.asyncio client (connection pool)."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="planflow-io", daemon=True)
        self._thread.start()
        self.client: aioredis.Redis = self.call(self._connect(url))

    @staticmethod
    async def _connect(url: str) -> aioredis.Redis:
        client = aioredis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S)
        for script in SCRIPTS:  # so EVALSHA finds them (NOSCRIPT is still handled)
            await client.script_load(script.source)
        return client

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

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
        """Values of (hash key, field) pairs, in order (None where missing): one HMGET per
        hash and chunk, all sent concurrently."""
        return self.submit(self._fetch(list(fields)))

    async def _fetch(self, fields: list[tuple[str, str]]) -> list[bytes | None]:
        by_key: dict[str, list[int]] = {}
        for i, (key, _) in enumerate(fields):
            by_key.setdefault(key, []).append(i)
        reads = [(key, idx[j:j + FETCH_CHUNK_KEYS]) for key, idx in by_key.items()
                 for j in range(0, len(idx), FETCH_CHUNK_KEYS)]
        parts = await asyncio.gather(*(self.client.hmget(key, [fields[i][1] for i in idx])
                                       for key, idx in reads))
        out: list[bytes | None] = [None] * len(fields)
        for (_, idx), values in zip(reads, parts, strict=True):
            for i, value in zip(idx, values, strict=True):
                out[i] = value.encode() if isinstance(value, str) else value
        return out

    def close(self) -> None:
        if not self._loop.is_running():
            return
        try:
            self.call(self.client.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


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
                 on_sent: Callable[[BatchSent], None], generation: int = 1) -> None:
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
        self._outputs_expire = False  # the outputs hash gets its TTL with its first field
        self.error: BaseException | None = None
        self.gone = False
        """Set when Redis said the run no longer exists (finished elsewhere or cancelled)."""
        self.superseded = False
        """Set when a newer generation of this worker holds the lease (we were presumed dead)."""
        self._generation = generation
        self._holder = f"{os.getpid()}-{secrets.token_hex(4)}"
        """Names this process in the lease: of two processes started for one generation (a
        start request sent twice), the first to write its lease keeps it."""
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
        """Write the lease now, renew it every LEASE_RENEW_S; a renewal that fails on a lost
        connection is retried at the next one, for REDIS_RETRY_S at most."""
        lost_since: float | None = None
        while True:
            call = lease_call(self._keys, self._worker_id, self._generation, self.ttl_s,
                              self._holder)
            try:
                reply = int(await call_async(self._io.client, call))
                lost_since = None
                if reply == 0:
                    log.error("worker %s: another process (a newer generation, or a second "
                              "start of this one) holds the lease; stopping", self._worker_id)
                    self.superseded = True
                elif reply < 0:
                    self.gone = True
            except (redis.ConnectionError, redis.TimeoutError) as err:
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > REDIS_RETRY_S and self.error is None:
                    self.error = err
            await asyncio.sleep(LEASE_RENEW_S)

    async def _flush(self) -> None:
        while True:
            with self._lock:
                items, self._items = self._items, []
                if not items:
                    self._scheduled = False
                    return
            if self.error is not None:
                continue  # the worker is failing: drop, the error path reports it
            await self._send_retrying(items)

    async def _send_retrying(self, items: list[Completion]) -> None:
        give_up, wait = time.monotonic() + REDIS_RETRY_S, RETRY_FIRST_S
        while True:
            try:
                await self._send(items)
                return
            except (redis.ConnectionError, redis.TimeoutError) as err:
                if time.monotonic() > give_up:
                    log.error("worker %s: upload failed: %s", self._worker_id, err)
                    self.error = err
                    return
                log.warning("worker %s: Redis connection lost (%s); resending in %.1f s",
                            self._worker_id, err, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, RETRY_MAX_S)
            except Exception as err:
                log.error("worker %s: upload failed: %s", self._worker_id, err)
                self.error = err
                return

    async def _send(self, items: list[Completion]) -> None:
        keys, ttl = self._keys, self.ttl_s
        sink = items[-1] if items and items[-1].step.is_sink else None
        running = -int(any(c.last for c in items))  # +1 was sent with the download
        rows = [[c.step.task_id, self._worker_id, c.started_at, c.finished_at]
                + ([c.attempt] if c.attempt > 1 else []) for c in items]
        update = BatchUpdate(
            [(c.step.task_id, c.step.remote_children) for c in items if c.step.remote_children],
            len(items), running, json.dumps(rows, separators=(",", ":")) if rows else "")
        call = batch_call(keys, update, ttl, claimer=f"{self._worker_id} {self._generation}")
        pipe = self._io.client.pipeline(transaction=sink is not None)
        outputs = {c.step.task_id: c.payload for c in items
                   if c.payload is not None and not c.step.is_sink}
        if outputs:  # outputs first: a child made ready below must find its inputs
            pipe.hset(keys.outputs(self._worker_id), mapping=outputs)  # type: ignore[arg-type]
            if not self._outputs_expire:
                pipe.expire(keys.outputs(self._worker_id), ttl)
                self._outputs_expire = True
        script_at = len(pipe.command_stack)
        if sink is None:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys_and_args)
        else:  # inside MULTI a NOSCRIPT could not be retried before `ok`: send the source
            pipe.eval(call.script.source, len(call.keys), *call.keys_and_args)
        if sink is not None:
            self._add_sink(pipe, sink)
        if running:  # the worker's last batch: it no longer needs a lease
            pipe.hdel(keys.leases(), self._worker_id)
        t0 = time.perf_counter()
        replies = await pipe.execute(raise_on_error=False)
        round_trip = time.perf_counter() - t0
        reply = replies[script_at]
        if isinstance(reply, redis.ResponseError) and is_noscript(reply):
            reply = await call_async(self._io.client, call)  # idempotent: safe to send again
        for r in (*replies[:script_at], reply, *replies[script_at + 1:]):
            if isinstance(r, redis.ResponseError):
                raise r
        alive, started = started_workers(reply)
        if not alive:
            self.gone = True
        invoke = 0.0
        if started:
            t1 = time.perf_counter()
            await self._io.loop.run_in_executor(None, self._start_workers, started)
            invoke = time.perf_counter() - t1
        if items:
            self._on_sent(BatchSent(tuple(items), round_trip, invoke, tuple(started)))

    def _add_sink(self, pipe: Any, sink: Completion) -> None:
        keys = self._keys
        pipe.set(keys.result(), sink.payload or b"", ex=self.ttl_s)
        for i in range(0, len(self._cleanup), UNLINK_CHUNK_KEYS):
            pipe.unlink(*self._cleanup[i:i + UNLINK_CHUNK_KEYS])
        pipe.rpush(keys.done(), "ok")
        pipe.expire(keys.done(), self.ttl_s)

