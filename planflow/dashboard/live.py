"""Live push: server-sent events fed by reading a running run's keys incrementally.

One `LiveFeed` per open run page. Every `LIVE_POLL_S` it sends one pipeline to Redis:
`HGETALL progress`, `LRANGE timings <next> -1` (only the batches not seen yet: the list is
append-only while the run goes), `HGETALL errors`, `HKEYS started`; it derives the task states
(`planflow.dashboard.states`) and pushes what changed. The browser never polls: it holds one
EventSource and recolours the graph. Events (`event:` name, JSON `data:`):

| event      | data                                                   | when                       |
|------------|--------------------------------------------------------|----------------------------|
| `states`   | {task id: state}, only the tasks that changed          | first poll: every task     |
| `timings`  | [[task, worker, start s, finish s, attempt]], run time | new rows in `timings`      |
| `progress` | {done, total, running, workers}                        | a counter changed          |
| `reload`   | {reason}                                               | the plan was recorded late |
| `ended`    | {status, view}: the run's final view                   | the run's keys are gone and|
|            |                                                        | its records have settled   |

A run ends when its `progress` key disappears (the client deletes every key). Its RunRecord
and the workers' last records arrive just after, so `ended` waits (at most `END_WAIT_S`) until
the RunRecord exists and every started worker has written its WorkerRecord, and it carries
the run's final view: the page redraws from it without another request. `runs_events` does
the same for the runs page: it pushes `runs` when the set of registered live runs
(`runtime.keys.NamespaceKeys.runs`) or the number of recorded runs changes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aredis

from metadata import keys as metrics_keys
from metadata.errors import RecordError
from metadata.runplan import decode_doc
from planflow.dashboard.states import live_states
from runtime.keys import NamespaceKeys, RunKeys
from runtime.session import decode_timings

LIVE_POLL_S = 0.25
"""Interval between two reads of a live run's keys (per open run page)."""

RUNS_POLL_S = 1.0
"""Interval between two looks for new or finished runs (per open runs page)."""

HEARTBEAT_S = 15.0
"""A comment line is sent when nothing else was for this long (keeps proxies from closing)."""

END_WAIT_S = 10.0
"""Longest wait, after a run's keys vanish, for its RunRecord and WorkerRecords."""

RECONNECT_MS = 2000
"""`retry:` sent to the browser: how long EventSource waits before reconnecting."""


def sse(event: str, data: Any) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class LiveFeed:
    """Reads one run incrementally; `poll` returns the events since the last call."""

    def __init__(self, client: aredis.Redis, namespace: str, run_id: str,
                 doc: dict[str, Any] | None, t0: float) -> None:
        self.client = client
        self.namespace = namespace
        self.run_id = run_id
        self.keys = RunKeys(namespace, run_id)
        self.doc = doc
        self.t0 = t0
        self.cursor = 0
        self.finished: set[str] = set()
        self.states: dict[str, str] = {}
        self.progress: dict[str, int] = {}
        self.gone_since: float | None = None
        self.workers_seen = 0
        self.ended = False

    async def poll(self) -> list[tuple[str, Any]]:
        if self.gone_since is not None:
            return await self._settle()
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.progress())
        pipe.lrange(self.keys.timings(), self.cursor, -1)
        pipe.hgetall(self.keys.errors())
        pipe.hkeys(self.keys.started())
        if self.doc is None:
            pipe.hmget(metrics_keys.run_plan_key(self.namespace, self.run_id),
                       ["doc", "recorded_at"])
        progress, items, errors, started, *plan = await pipe.execute()
        if not progress:
            self.gone_since = time.monotonic()
            return await self._settle()
        events: list[tuple[str, Any]] = []
        if plan and plan[0][0] is not None:
            events += self._plan_found(plan[0])
        self.cursor += len(items)
        rows = decode_timings(items)
        self.finished.update(r[0] for r in rows)
        if rows:
            events.append(("timings", [[t, w, s - self.t0, f - self.t0, a]
                                       for t, w, s, f, a in rows]))
        started_ids = {_text(w) for w in started}
        self.workers_seen = max(self.workers_seen, len(started_ids))
        counters = {"done": int(progress.get(b"done", 0)), "total": int(progress.get(b"total", 0)),
                    "running": int(progress.get(b"running", 0)), "workers": len(started_ids)}
        if counters != self.progress:
            self.progress = counters
            events.append(("progress", counters))
        if self.doc is not None:
            now = live_states(self.doc, self.finished, {_text(k) for k in errors}, started_ids)
            changed = {t: s for t, s in now.items() if self.states.get(t) != s}
            self.states = now
            if changed:
                events.append(("states", changed))
        return events

    def _plan_found(self, raw: list[Any]) -> list[tuple[str, Any]]:
        try:
            self.doc = decode_doc(raw[0], self.run_id)
        except RecordError as err:
            return [("reload", {"reason": str(err)})]
        self.t0 = float(raw[1] or self.t0)
        return [("reload", {"reason": "the run's plan was recorded"})]

    async def _settle(self) -> list[tuple[str, Any]]:
        """After the keys vanished: `ended` once the records are in (or END_WAIT_S passed)."""
        ns = self.namespace
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(metrics_keys.runs_key(ns), self.run_id)
        pipe.llen(metrics_keys.worker_records_key(ns, self.run_id))
        record, workers = await pipe.execute()
        waited = time.monotonic() - (self.gone_since or time.monotonic())
        if (record is None or int(workers) < self.workers_seen) and waited < END_WAIT_S:
            return []
        self.ended = True
        status = "unknown"
        if record is not None:
            status = "ok" if json.loads(record).get("ok") else "failed"
        return [("ended", {"status": status})]


async def run_events(feed: LiveFeed,
                     final_view: Callable[[], Awaitable[dict[str, Any]]] | None = None
                     ) -> AsyncIterator[str]:
    """The SSE stream of one run page; it ends with `ended`, whose data carries the run's
    final view (`final_view()`) so the page needs no further request."""
    yield f"retry: {RECONNECT_MS}\n\n"
    quiet_since = time.monotonic()
    while True:
        events = await feed.poll()
        for name, data in events:
            if name == "ended" and final_view is not None:
                data = {**data, "view": await final_view()}
            yield sse(name, data)
        if events:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > HEARTBEAT_S:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        if feed.ended:
            return
        await asyncio.sleep(LIVE_POLL_S)


async def runs_events(client: aredis.Redis, namespace: str) -> AsyncIterator[str]:
    """The SSE stream of the runs page: `runs` whenever runs start or finish."""
    yield f"retry: {RECONNECT_MS}\n\n"
    last: tuple[frozenset[str], int] | None = None
    quiet_since = time.monotonic()
    while True:
        pipe = client.pipeline(transaction=False)
        pipe.hkeys(NamespaceKeys(namespace).runs())  # the registry of live runs
        pipe.hlen(metrics_keys.runs_key(namespace))
        registered, count = await pipe.execute()
        live = {_text(k) for k in registered}
        recorded = int(count)
        now = (frozenset(live), recorded)
        if last is not None and now != last:
            yield sse("runs", {"live": sorted(live), "recorded": recorded})
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > HEARTBEAT_S:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        last = now
        await asyncio.sleep(RUNS_POLL_S)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
