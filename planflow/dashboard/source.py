"""Reading runs for the dashboard: the metrics store and the live keys of one namespace.

`RunSource` is synchronous (redis-py); the web app calls it from a thread pool. Finished runs
do not change once their records settle, so `RunSource.run` keeps the last `CACHE_RUNS` of them
for `CACHE_TTL_S` (a page reload, a click on a task, or the static export reads Redis once).
The live feed (`planflow.dashboard.live`) reads a running run incrementally on its own.

Live runs come from the runtime's registry of the namespace (`runtime.registry.RunRegistry`,
hash `NamespaceKeys.runs`), kept only while their `progress` key exists (an entry can outlive a
killed client until the next command reclaims it).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import redis

from metadata.connect import sync_client
from metadata.errors import MetadataError, RecordError, redact_url
from metadata.keys import check_namespace
from metadata.records import RunRecord, TaskRecord, WorkerRecord
from metadata.store import MetricsStore
from planflow.dashboard.rundata import LiveRun, RunData
from planner.errors import UsageError
from runtime.errors import StoreError
from runtime.ids import DAG_ID_PATTERN
from runtime.keys import RunKeys
from runtime.registry import RunEntry, RunRegistry
from runtime.session import decode_timings

CACHE_RUNS = 16
"""Finished runs kept in memory by a RunSource."""

CACHE_TTL_S = 30.0
"""How long a finished run's data is reused before it is read again (late worker records)."""

SOCKET_TIMEOUT_S = 10.0
"""Longest one dashboard read may take."""

READ_OUTAGE_S = 2.0
"""How long a dashboard read rides out a lost Redis before the page says so (a page waits for a
person, who would rather read '503: Redis is gone' at once than stare at a spinner)."""


@dataclass(frozen=True)
class RunRow:
    """One line of the runs page."""

    run_id: str
    workflow: str
    strategy: str
    status: str
    submitted_at: float
    predicted_makespan_s: float | None
    observed_makespan_s: float | None
    predicted_cost_usd: float | None
    observed_cost_usd: float | None
    tasks: int | None
    platform: str | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class RunSource:
    """Runs of one namespace on one Redis."""

    def __init__(self, url: str, namespace: str = "planflow") -> None:
        self.url = url
        try:
            self.namespace = check_namespace(namespace)
        except MetadataError as err:
            raise UsageError(str(err)) from err
        try:
            self.store = MetricsStore(url, namespace, outage_s=READ_OUTAGE_S)
            self.redis: redis.Redis = sync_client(url, socket_timeout=SOCKET_TIMEOUT_S,
                                                  outage_s=READ_OUTAGE_S)
        except MetadataError as err:
            raise StoreError(f"dashboard: {err}") from err
        self._cache: OrderedDict[str, tuple[float, RunData]] = OrderedDict()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.store.close()
        self.redis.close()

    def ping(self) -> None:
        """Raise StoreError (naming the URL without its password) unless Redis answers."""
        try:
            self.redis.ping()
        except redis.RedisError as err:
            raise StoreError(f"dashboard: cannot reach Redis at {redact_url(self.url)}: {err}"
                             ) from err

    # -- the runs page --------------------------------------------------------------------------

    def live_runs(self) -> dict[str, RunEntry]:
        """The runs going on now: registered, and their `progress` key exists."""
        entries = RunRegistry(self.redis, self.namespace).entries()
        pipe = self.redis.pipeline(transaction=False)
        for e in entries:
            pipe.exists(RunKeys(self.namespace, e.dag_id).progress())
        alive = pipe.execute() if entries else []
        return {e.dag_id: e for e, ok in zip(entries, alive, strict=True) if ok}

    def live_run_ids(self) -> list[str]:
        return sorted(self.live_runs())

    def runs(self) -> list[RunRow]:
        """Every recorded run and every live one, newest first."""
        records = {r.run_id: r for r in self.store.runs()}
        live = self.live_runs()
        ids = set(records) | set(live)
        summaries = self.store.plan_summaries(ids)
        rows = [_row(i, records.get(i), summaries.get(i), live.get(i)) for i in ids]
        return sorted(rows, key=lambda r: (-r.submitted_at, r.run_id))

    # -- one run --------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunData:
        """Everything about run `run_id` (StoreError when nothing at all is known of it)."""
        check_run_id(run_id)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(run_id)
            if hit is not None and now - hit[0] < CACHE_TTL_S:
                return hit[1]
        data = self._read(run_id)
        if data.live is None and data.record is not None:
            with self._lock:
                self._cache[run_id] = (now, data)
                while len(self._cache) > CACHE_RUNS:
                    self._cache.popitem(last=False)
        return data

    def _read(self, run_id: str) -> RunData:
        plan, plan_error = None, None
        try:
            plan = self.store.plan(run_id)
        except RecordError as err:
            plan_error = str(err)
        record = self.store.run(run_id)
        live = self.live(run_id)
        workers = tuple(self.store.worker_records(run_id))
        if plan is None and record is None and live is None and not workers:
            raise UnknownRun(f"no run {run_id} in namespace '{self.namespace}' at "
                             f"{redact_url(self.url)}: it never ran here, or its metrics were "
                             "pruned")
        keys = [t["function_key"] for t in plan.doc["tasks"]] if plan else \
            [f.function_key for f in self.store.functions()]
        tasks = self._task_records(run_id, keys)
        return RunData(run_id, plan, record, workers, tasks, live, plan_error)

    def _task_records(self, run_id: str, function_keys: list[str]) -> tuple[TaskRecord, ...]:
        out: list[TaskRecord] = []
        for records in self.store.task_records(function_keys).values():
            out.extend(r for r in records if r.run_id == run_id)
        return tuple(out)

    def live(self, run_id: str) -> LiveRun | None:
        """The run's live keys now, or None when it is not going (its `progress` is gone)."""
        keys = RunKeys(self.namespace, run_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.progress())
        pipe.lrange(keys.timings(), 0, -1)
        pipe.hgetall(keys.errors())
        pipe.hkeys(keys.started())
        pipe.hkeys(keys.leases())
        progress, timings, errors, started, leases = pipe.execute()
        if not progress:
            return None
        return LiveRun({_text(k): int(v) for k, v in progress.items()},
                       tuple(decode_timings(timings)), _errors(errors),
                       frozenset(map(_text, started)), frozenset(map(_text, leases)),
                       rows_read=len(timings))

    def worker_records(self, run_id: str) -> list[WorkerRecord]:
        return self.store.worker_records(run_id)

    def run_records(self) -> list[RunRecord]:
        return self.store.runs()


class UnknownRun(StoreError):
    """A run id the namespace knows nothing about."""

    exit_code = 2


def check_run_id(run_id: str) -> str:
    if not DAG_ID_PATTERN.match(run_id):
        raise UnknownRun(f"bad run id {run_id!r}: expected dag-<unix ms>-<name>-<4 hex> "
                         "(`planflow metrics list` or the dashboard's runs page lists them)")
    return run_id


def _row(run_id: str, record: RunRecord | None, summary: dict[str, Any] | None,
         live: RunEntry | None) -> RunRow:
    s = dict(summary or {})
    if live is not None:
        s.setdefault("workflow", live.workflow)
        s.setdefault("strategy", live.strategy)
        s.setdefault("tasks", live.tasks_total)
        s.setdefault("recorded_at", live.started_at)
    status = "running" if live else ("ok" if record.ok else "failed") if record else "unknown"
    return RunRow(
        run_id=run_id,
        workflow=record.workflow if record else str(s.get("workflow", "?")),
        strategy=record.strategy if record else str(s.get("strategy", "?")),
        status=status,
        submitted_at=record.submitted_at if record else float(s.get("recorded_at", 0.0)),
        predicted_makespan_s=record.predicted_makespan_s if record else s.get("makespan_s"),
        observed_makespan_s=None if live is not None or record is None
        else record.observed_makespan_s,
        predicted_cost_usd=record.predicted_cost_usd if record else s.get("cost_usd"),
        observed_cost_usd=record.observed_cost_usd if record else None,
        tasks=s.get("tasks"), platform=s.get("platform"))


def _errors(raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    import json

    out: dict[str, dict[str, Any]] = {}
    for k, v in raw.items():
        try:
            record = json.loads(v)
        except ValueError:
            record = {"message": _text(v)}
        out[_text(k)] = record if isinstance(record, dict) else {"message": str(record)}
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
