"""The metrics store: metric records on Redis, kept across runs, read incrementally.

Key layout: see `metadata.keys`. Writes append each record with one command (RPUSH/HSET/ZADD),
sent in one pipeline per batch; each function's list is capped at `max_records_per_function`
(oldest dropped) in the same pipeline, so a store that is never pruned still loads fast, and
writing a run record drops the run and worker records of all but the newest `max_runs` runs:
that retention is the policy, so the store's size tracks what is kept, not how long it has been
used (`planflow metrics prune` trims further by hand). Reads fetch only what is asked:
`task_records(keys)` is one pipelined LRANGE per requested function.
A run's plan document (`write_plan`/`plan`, `metadata.runplan`) is one hash per run, written
once as the run starts and dropped with the run's other records; `plan_summaries` reads only
its small summary field.

A batch write is not idempotent (a batch retried after a lost reply is appended twice); a
duplicate sample costs the predictor nothing measurable, so the writer prefers never losing one.

Redis problems surface as `MetricsStoreError` naming the URL without its password and the
condition the server reported (`metadata.store_errors`). The URL comes
from the caller only: this module reads no environment variable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar, cast

import redis

from metadata import keys
from metadata.connect import OUTAGE_S, sync_client
from metadata.errors import MetricsStoreError, RecordError, redact_url
from metadata.keys import DEFAULT_NAMESPACE
from metadata.records import Record, RunRecord, TaskRecord, WorkerRecord
from metadata.runplan import RunPlan, decode_doc, encode_doc, summary_of
from metadata.store_errors import condition_of

log = logging.getLogger(__name__)

PLAN_RECORD_NICE = 19
"""Niceness of the thread that records a run's plan document (the lowest priority)."""

DEFAULT_MAX_RECORDS_PER_FUNCTION = 5000
"""Task records kept per function (newest); older ones are trimmed on write."""

DEFAULT_MAX_RUNS = 1000
"""Runs whose run and worker records are kept (newest); older ones are dropped on write."""

RETENTION_SLACK_RUNS = 50
"""Run records beyond `max_runs` tolerated before a write trims them (trims are batched)."""

WIDTHS_KEPT = 20
"""Widths remembered per dynamic fan-out: enough for a robust median, few enough to follow a
workload whose width changes."""

SOCKET_TIMEOUT_S = 30.0
"""How long one Redis command may take before the store gives up."""

READ_BATCH_FUNCTIONS = 64
"""Functions fetched per pipeline when scanning the whole store (export, prune)."""

EXPORT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TaskRecord))
"""Columns of `MetricsStore.export_rows()`, in order (the CSV header)."""


@dataclass(frozen=True)
class FunctionInfo:
    """A function known to the store and how many task records it has."""

    function_key: str
    function_name: str
    records: int


@dataclass(frozen=True)
class PruneResult:
    """What `MetricsStore.prune` removed."""

    records_removed: int
    functions_removed: int
    runs_removed: int


class MetricsStore:
    """Metric records in Redis under `<namespace>:metrics:...` (sync redis-py client)."""

    def __init__(self, url: str, namespace: str = DEFAULT_NAMESPACE, *,
                 max_records_per_function: int = DEFAULT_MAX_RECORDS_PER_FUNCTION,
                 max_runs: int = DEFAULT_MAX_RUNS, outage_s: float = OUTAGE_S) -> None:
        if max_records_per_function < 1:
            raise ValueError("max_records_per_function must be >= 1")
        if max_runs < 1:
            raise ValueError("max_runs must be >= 1")
        self.max_runs = max_runs
        self.namespace = keys.check_namespace(namespace)
        self.url = redact_url(url)
        """The URL without its password (safe to show)."""
        self.max_records_per_function = max_records_per_function
        self._raw_url = url
        try:
            self._client: redis.Redis = sync_client(url, decode_responses=True,
                                                    socket_timeout=SOCKET_TIMEOUT_S,
                                                    outage_s=outage_s)
            self._raw: redis.Redis = sync_client(url, socket_timeout=SOCKET_TIMEOUT_S,
                                                 outage_s=outage_s)
            """Bytes replies, for the compressed plan documents."""
        except ValueError as err:
            raise MetricsStoreError(f"bad metrics store URL {self.url}: {err}") from err

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()
        self._raw.close()

    def __enter__(self) -> MetricsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> None:
        """Raise `MetricsStoreError` at once unless the server answers (a first contact is not
        an outage to ride out: a wrong URL must not take the reconnect policy's 30 s)."""
        probe = sync_client(self._raw_url, socket_timeout=SOCKET_TIMEOUT_S, outage_s=0)
        try:
            with self._guard("connecting"):
                probe.ping()
        finally:
            probe.close()

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as err:
            condition = condition_of(err)
            raise MetricsStoreError(f"metrics store: {condition.describe(self.url, action)} "
                                    f"(server said: {err})", condition=condition.name) from err

    # -- writing --------------------------------------------------------------------------------

    def write(self, records: Iterable[Record]) -> int:
        """Append any mix of records in one pipeline; returns how many were written. Task
        records go first: once a worker's WorkerRecord (its last) is readable, so are they."""
        ns = self.namespace
        names: dict[str, str] = {}  # function key -> function name
        tasks: dict[str, list[str]] = {}  # function key -> its records, in order
        others: list[WorkerRecord | RunRecord] = []
        count = 0
        for rec in records:
            count += 1
            if isinstance(rec, TaskRecord):
                tasks.setdefault(rec.function_key, []).append(rec.to_json())
                names[rec.function_key] = rec.function_name
            elif isinstance(rec, WorkerRecord | RunRecord):
                others.append(rec)
            else:
                raise TypeError(f"not a metric record: {rec!r}")
        if not count:
            return 0
        pipe = self._client.pipeline(transaction=False)
        for fk, lines in tasks.items():  # one variadic RPUSH per function, then its cap
            pipe.rpush(keys.task_records_key(ns, fk), *lines)
            pipe.ltrim(keys.task_records_key(ns, fk), -self.max_records_per_function, -1)
        if names:
            pipe.hset(keys.functions_key(ns), mapping=cast(Any, names))  # redis-py's Mapping type
        for rec in others:  # after the task records: a worker's record says all of its are in
            if isinstance(rec, WorkerRecord):
                pipe.rpush(keys.worker_records_key(ns, rec.run_id), rec.to_json())
                pipe.zadd(keys.worker_runs_key(ns), {rec.run_id: rec.requested_at}, nx=True)
            else:
                pipe.hset(keys.runs_key(ns), rec.run_id, rec.to_json())
        with self._guard(f"writing {count} metric records"):
            pipe.execute()
        return count

    def record_width(self, workflow: str, task_id: str, width: int) -> None:
        """Remember the width a dynamic fan-out had (the newest `WIDTHS_KEPT` per fan-out)."""
        key = keys.width_key(self.namespace, workflow, task_id)
        pipe = self._client.pipeline(transaction=False)
        pipe.rpush(key, int(width))
        pipe.ltrim(key, -WIDTHS_KEPT, -1)
        with self._guard(f"recording the width of {task_id}"):
            pipe.execute()

    def widths(self, workflow: str, task_ids: Iterable[str]) -> dict[str, list[int]]:
        """Recorded widths of dynamic fan-outs of `workflow`, oldest first (absent: none)."""
        ids = list(task_ids)
        pipe = self._client.pipeline(transaction=False)
        for t in ids:
            pipe.lrange(keys.width_key(self.namespace, workflow, t), 0, -1)
        with self._guard("reading dynamic fan-out widths"):
            found = pipe.execute()
        return {t: [int(v) for v in values] for t, values in zip(ids, found, strict=True)
                if values}

    def write_tasks(self, records: Iterable[TaskRecord]) -> int:
        return self.write(records)

    def write_worker(self, record: WorkerRecord) -> None:
        self.write([record])

    def write_run(self, record: RunRecord) -> None:
        """Store (or replace) the record of one run, then apply the retention policy: the run
        and worker records of all but the newest `max_runs` runs are dropped."""
        self.write([record])
        with self._guard("counting runs"):
            runs = int(self._client.hlen(keys.runs_key(self.namespace)))
        if runs > self.max_runs + RETENTION_SLACK_RUNS:
            self.prune(keep_runs=self.max_runs)

    def write_plan(self, run_id: str, doc: dict[str, Any], *,
                   recorded_at: float | None = None) -> None:
        """Keep the plan document (`plan.json`) of run `run_id`, compressed, with its summary
        figures apart (`metadata.runplan`); written once, as the run starts."""
        at = time.time() if recorded_at is None else recorded_at
        ns = self.namespace
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(keys.run_plan_key(ns, run_id), mapping=cast(Any, {
            "doc": encode_doc(doc), "summary": json.dumps(summary_of(doc)),
            "recorded_at": repr(at)}))
        pipe.zadd(keys.plan_runs_key(ns), {run_id: at})
        with self._guard(f"recording the plan of run {run_id}"):
            pipe.execute()

    @classmethod
    def write_plan_in_background(cls, url: str, namespace: str, run_id: str,
                                 make_doc: Callable[[], dict[str, Any]]) -> threading.Thread:
        """`write_plan(run_id, make_doc())` on a thread of its own, recorded now (the run's
        start): building and packing a large plan.json takes ~60 us per task, which must not
        delay the run (the thread runs at the lowest CPU priority: on a host the run's workers
        share, it takes only what they leave). Not a daemon thread, so the process finishes the
        write before it exits; a failure is logged, never raised (metrics never fail a run)."""
        recorded_at = time.time()

        def write() -> None:
            # Linux niceness is per thread: this work yields the CPUs to the run's workers
            with contextlib.suppress(OSError, AttributeError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PLAN_RECORD_NICE)
            try:
                with cls(url, namespace) as store:
                    store.write_plan(run_id, make_doc(), recorded_at=recorded_at)
            except Exception as err:
                log.warning("metrics: cannot record the plan of run %s: %s", run_id, err)

        thread = threading.Thread(target=write, name=f"plan-record-{run_id}")
        thread.start()
        return thread

    # -- reading --------------------------------------------------------------------------------

    def plan(self, run_id: str) -> RunPlan | None:
        """The plan document run `run_id` recorded (None: it recorded none)."""
        with self._guard(f"reading the plan of run {run_id}"):
            raw = self._raw.hmget(keys.run_plan_key(self.namespace, run_id),
                                  ["doc", "recorded_at"])
        blob, at = raw
        if blob is None:
            return None
        data = blob.encode() if isinstance(blob, str) else blob  # bytes: `_raw` does not decode
        return RunPlan(run_id, float(at or 0.0), decode_doc(data, run_id))

    def plan_summaries(self, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Run id -> the summary figures of its recorded plan (`metadata.runplan.summary_of`,
        plus `recorded_at`), for the runs that recorded one; one pipelined read."""
        wanted = list(dict.fromkeys(run_ids))
        pipe = self._client.pipeline(transaction=False)
        for run_id in wanted:
            pipe.hmget(keys.run_plan_key(self.namespace, run_id), ["summary", "recorded_at"])
        with self._guard(f"reading the plan summaries of {len(wanted)} runs"):
            raw = pipe.execute() if wanted else []
        out: dict[str, dict[str, Any]] = {}
        for run_id, (summary, at) in zip(wanted, raw, strict=True):
            if summary is not None:
                out[run_id] = {**json.loads(summary), "recorded_at": float(at or 0.0)}
        return out

    def planned_runs(self, since: float | None = None) -> list[str]:
        """Run ids with a recorded plan (recorded at or after `since`), oldest first."""
        low = "-inf" if since is None else repr(since)
        with self._guard("listing runs with a recorded plan"):
            return _str_list(self._client.zrangebyscore(keys.plan_runs_key(self.namespace),
                                                        low, "+inf"))


    def task_records(self, function_keys: Iterable[str], *,
                     last: int | None = None) -> dict[str, list[TaskRecord]]:
        """The task records of exactly these functions (oldest first; `last` newest only).

        Every requested key is in the result, with an empty list when it has no history.
        """
        wanted = list(dict.fromkeys(function_keys))
        start = -last if last else 0
        pipe = self._client.pipeline(transaction=False)
        for fk in wanted:
            pipe.lrange(keys.task_records_key(self.namespace, fk), start, -1)
        with self._guard(f"reading task records of {len(wanted)} functions"):
            raw = pipe.execute() if wanted else []
        return {fk: _decode(TaskRecord, items, fk) for fk, items in zip(wanted, raw, strict=True)}

    def functions(self) -> list[FunctionInfo]:
        """Every function with history, sorted by name then key."""
        with self._guard("listing functions"):
            names = _str_dict(self._client.hgetall(keys.functions_key(self.namespace)))
            pipe = self._client.pipeline(transaction=False)
            ordered = sorted(names, key=lambda fk: (names[fk], fk))
            for fk in ordered:
                pipe.llen(keys.task_records_key(self.namespace, fk))
            counts = pipe.execute() if ordered else []
        return [FunctionInfo(fk, names[fk], int(n)) for fk, n in zip(ordered, counts, strict=True)]

    def resolve(self, name_or_key: str) -> list[str]:
        """Function keys matching a full key, `module.qualname` (any hash) or a function name."""
        found = []
        for info in self.functions():
            base = info.function_key.rpartition(":")[0]
            if name_or_key in (info.function_key, base, info.function_name):
                found.append(info.function_key)
        return found

    def runs(self) -> list[RunRecord]:
        """Every run record, oldest submission first."""
        with self._guard("listing runs"):
            raw = _str_dict(self._client.hgetall(keys.runs_key(self.namespace)))
        runs = _decode(RunRecord, raw.values(), "runs")
        return sorted(runs, key=lambda r: (r.submitted_at, r.run_id))

    def run(self, run_id: str) -> RunRecord | None:
        with self._guard(f"reading run {run_id}"):
            raw = self._client.hget(keys.runs_key(self.namespace), run_id)
        return None if raw is None else _decode(RunRecord, [str(raw)], run_id)[0]

    def run_workflows(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The workflow of each of `run_ids` that has a run record (one HMGET)."""
        if not run_ids:
            return {}
        with self._guard("reading run records"):
            raw = self._client.hmget(keys.runs_key(self.namespace), list(run_ids))
        found = [(run_id, item) for run_id, item in zip(run_ids, raw, strict=True)
                 if item is not None]
        runs = _decode(RunRecord, [item for _, item in found], "runs")
        return {r.run_id: r.workflow for r in runs}

    def worker_records(self, run_id: str) -> list[WorkerRecord]:
        with self._guard(f"reading worker records of {run_id}"):
            raw = self._client.lrange(keys.worker_records_key(self.namespace, run_id), 0, -1)
        return _decode(WorkerRecord, raw, run_id)

    def worker_record_count(self, run_id: str) -> int:
        """How many workers of `run_id` have written their WorkerRecord (their last record)."""
        with self._guard(f"counting worker records of {run_id}"):
            return int(self._client.llen(keys.worker_records_key(self.namespace, run_id)))

    def recent_worker_records(self, max_runs: int = 20) -> list[WorkerRecord]:
        """Worker records of the `max_runs` most recent runs that have any."""
        ns = self.namespace
        with self._guard("reading recent worker records"):
            run_ids = _str_list(self._client.zrevrange(keys.worker_runs_key(ns), 0, max_runs - 1))
            pipe = self._client.pipeline(transaction=False)
            for run_id in run_ids:
                pipe.lrange(keys.worker_records_key(ns, run_id), 0, -1)
            raw = pipe.execute() if run_ids else []
        out: list[WorkerRecord] = []
        for run_id, items in zip(run_ids, raw, strict=True):
            out.extend(_decode(WorkerRecord, items, run_id))
        return out

    def export_rows(self) -> Iterator[dict[str, Any]]:
        """Every task record as a flat dict with keys `EXPORT_COLUMNS` (for CSV export)."""
        infos = self.functions()
        for i in range(0, len(infos), READ_BATCH_FUNCTIONS):
            chunk = [info.function_key for info in infos[i:i + READ_BATCH_FUNCTIONS]]
            for records in self.task_records(chunk).values():
                for rec in records:
                    row = rec.to_dict()
                    yield {col: row[col] for col in EXPORT_COLUMNS}

    # -- pruning --------------------------------------------------------------------------------

    def prune(self, *, keep_last: int | None = None, functions: Sequence[str] = (),
              runs_before: float | None = None, keep_runs: int | None = None) -> PruneResult:
        """Drop whole functions, trim every function to its newest `keep_last` records, and/or
        drop run and worker records and recorded plans of runs submitted before
        `runs_before` (unix seconds) or older than the newest `keep_runs`."""
        if keep_last is not None and keep_last < 0:
            raise ValueError("keep_last must be >= 0")
        if keep_runs is not None and keep_runs < 0:
            raise ValueError("keep_runs must be >= 0")
        removed, dropped = self._drop_functions(functions)
        if keep_last is not None:
            removed += self._trim_functions(keep_last)
        if keep_runs is not None:
            runs = self.runs()
            if len(runs) > keep_runs:
                cut = runs[len(runs) - keep_runs].submitted_at if keep_runs else float("inf")
                runs_before = cut if runs_before is None else max(runs_before, cut)
        runs_removed = self._drop_runs(runs_before) if runs_before is not None else 0
        return PruneResult(removed, dropped, runs_removed)

    def _drop_functions(self, function_keys: Sequence[str]) -> tuple[int, int]:
        ns = self.namespace
        wanted = list(dict.fromkeys(function_keys))
        if not wanted:
            return 0, 0
        # not MULTI: the functions' lists lie in different Redis Cluster slots
        pipe = self._client.pipeline(transaction=False)
        for fk in wanted:
            pipe.llen(keys.task_records_key(ns, fk))
            pipe.delete(keys.task_records_key(ns, fk))
        pipe.hdel(keys.functions_key(ns), *wanted)
        with self._guard(f"dropping {len(wanted)} functions"):
            out = pipe.execute()
        return sum(int(n) for n in out[0:-1:2]), int(out[-1])

    def _trim_functions(self, keep_last: int) -> int:
        ns = self.namespace
        infos = [i for i in self.functions() if i.records > keep_last]
        if keep_last == 0:
            return self._drop_functions([i.function_key for i in infos])[0]
        pipe = self._client.pipeline(transaction=False)
        for info in infos:
            pipe.ltrim(keys.task_records_key(ns, info.function_key), -keep_last, -1)
        with self._guard(f"trimming {len(infos)} functions to {keep_last} records"):
            if infos:
                pipe.execute()
        return sum(i.records - keep_last for i in infos)

    def _drop_runs(self, before: float) -> int:
        ns = self.namespace
        old = [r.run_id for r in self.runs() if r.submitted_at < before]
        with self._guard("dropping old runs"):
            worker_runs = _str_list(
                self._client.zrangebyscore(keys.worker_runs_key(ns), "-inf", f"({before}"))
            plan_runs = _str_list(
                self._client.zrangebyscore(keys.plan_runs_key(ns), "-inf", f"({before}"))
            gone = sorted(set(old) | set(worker_runs) | set(plan_runs))
            if not gone:
                return 0
            pipe = self._client.pipeline(transaction=False)
            if old:
                pipe.hdel(keys.runs_key(ns), *old)
            pipe.zrem(keys.worker_runs_key(ns), *gone)
            pipe.zrem(keys.plan_runs_key(ns), *gone)
            for run_id in gone:  # one key per DEL: a run's keys lie in different cluster slots
                pipe.delete(keys.worker_records_key(ns, run_id))
                pipe.delete(keys.run_plan_key(ns, run_id))
            pipe.execute()
        return len(old)


R = TypeVar("R", TaskRecord, WorkerRecord, RunRecord)


def _decode(cls: type[R], items: Iterable[Any], where: str) -> list[R]:
    try:
        return [cls.from_json(item) for item in items]
    except RecordError as err:
        raise RecordError(f"metrics of {where}: {err}") from err


def _str_list(value: Any) -> list[str]:
    return [str(v) for v in value]


def _str_dict(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()}
