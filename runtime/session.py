"""One run from the client's side, step by step: upload, start, wait, collect, clean up, record.

`runtime.client.run_plan` prepares the Redis server, the launcher and the program, then hands
them to a `RunSession`. The order below is the protocol's:

0. the run is registered among the namespace's live runs (`runtime.registry`), naming this
   client, so a later command can reclaim it if this process is killed;
1. one pipeline uploads the shared part and every worker program, creates `progress` (the run
   exists while it does) and claims the root workers in `started`, each with its first lease
   (so a start request that never reaches a worker is relaunched); all with a TTL;
2. the launcher starts the root workers; a thread of its own records the plan's plan.json in
   the metrics store (`MetricsStore.write_plan_in_background`), for whoever watches the run;
3. BLPOP on `done` (in slices, to report progress and honour the deadline); every
   `LEASE_CHECK_S` one pipeline checks the run still exists (a Redis restarted without
   persistence lost it: the run fails, naming that) and relaunches workers whose lease expired
   (`runtime.leases`: the client is the backstop of the pool server), and the client renews its
   entry in the registry of live runs (`runtime.registry`), a write that fails at once when the
   store refuses writes (out of memory, read-only); a lost connection is ridden out by the
   reconnect policy (`metadata.connect`), then the run fails with a StoreError naming the
   condition and the step;
4. `ok`: one MULTI reads the result and timings and deletes every key of the run (`progress`
   first);
   `error`: the error records name the failed task (the first one is also written to
   `<PLANFLOW_HOME>/logs/<dag id>.error.json`, atomically); workers are stopped, keys deleted;
   deadline or interrupt (Ctrl-C, SIGTERM, SIGHUP: `runtime.interrupts`): workers are stopped,
   keys deleted, the error (or the interrupt) re-raised; further interrupts wait until that
   clean-up is done;
5. the RunRecord goes to the metrics store, whatever the outcome; after a successful run the
   client also waits (at most `METRICS_SETTLE_S`) until every started worker has flushed its
   records: a worker flushes right after its last task, which can be after the sink published
   the result, and a compile right after the run (or the embedded Redis stopping) must not miss
   them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import redis

from metadata.connect import disconnect, server_clock, sync_client
from metadata.errors import redact_url
from metadata.records import RunRecord
from metadata.store import MetricsStore
from planner.dynamic import layout
from planner.plan import Plan
from runtime import shm
from runtime.defaults import log_dir
from runtime.errors import RunError, StoreError, TaskFailed, store_error
from runtime.interrupts import deferred_interrupts
from runtime.keys import RunKeys
from runtime.launcher import Launcher, WorkerSpec
from runtime.leases import (
    LEASE_CHECK_S,
    POOL_ALIVE_GRACE_S,
    Death,
    lease_pid,
    lease_pool,
    parse_lease,
    relaunch_call,
    relaunch_spec,
    server_time,
)
from runtime.pool_client import process_alive
from runtime.program import RunProgram
from runtime.registry import RunEntry, RunRegistry, this_client
from runtime.result import RunResult, TaskTiming
from runtime.scripts import call_sync
from runtime.values import ValueCodec

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2
"""How often the progress callback is called while a run is going."""

WAIT_SLICE_S = 2.0
"""Longest single BLPOP of the client (the deadline is checked between slices)."""

SOCKET_TIMEOUT_S = 60.0
"""Longest any one client command may take (the upload of a large plan included; blocking
waits are shorter slices)."""

PENDING_NAMED_MAX = 10
"""Pending tasks named in a deadline error (the rest are counted)."""

METRICS_SETTLE_S = 2.0
"""Longest wait, after a successful run, for the workers' last metrics records (a worker killed
mid-run never writes its own, so the wait is bounded)."""

METRICS_POLL_S = 0.005
"""Polling interval of that wait."""

ERROR_FILE_SUFFIX = ".error.json"
"""A failed run's first error record is kept in `<PLANFLOW_HOME>/logs/<dag id>` + this."""


@dataclass(frozen=True)
class RunProgress:
    """How far a run is, as the progress callback sees it."""

    tasks_done: int
    tasks_total: int
    workers_running: int


class RunSession:
    """Executes one uploaded program; `execute` returns the result or raises."""

    def __init__(self, plan: Plan, program: RunProgram, url: str, launcher: Launcher,
                 progress: Callable[[RunProgress], None] | None = None) -> None:
        self.plan = plan
        self.program = program
        self.settings = program.settings
        self.url = url
        self.launcher = launcher
        self.progress = progress
        self.keys = RunKeys(self.settings.namespace, self.settings.dag_id)
        self.redis = sync_client(url, socket_timeout=SOCKET_TIMEOUT_S)
        self.registry = RunRegistry(self.redis, self.settings.namespace)
        self.entry: RunEntry | None = None
        self.started_at = 0.0
        self._doing = "connecting"
        self._failures: Any = None
        """Subscription to the run's `failures` channel (records the store refused to keep)."""
        self._heard: list[dict[str, Any]] = []

    def execute(self, timeout_s: float) -> RunResult:
        deadline = time.monotonic() + timeout_s
        result: RunResult | None = None
        try:
            try:
                result = self._execute(deadline, timeout_s)
            except redis.RedisError as err:
                raise store_error(err, self.url, f"{self._doing} (run "
                                  f"{self.settings.dag_id})") from err
            return result
        except BaseException:
            with deferred_interrupts():  # a second Ctrl-C or SIGTERM must not cut the clean-up
                self._abort()
            raise
        finally:
            with deferred_interrupts():
                self._record(result)
            if self._failures is not None:
                with contextlib.suppress(redis.RedisError):
                    self._failures.close()
            self.redis.close()

    def _execute(self, deadline: float, timeout_s: float) -> RunResult:
        self._doing = "preparing the workers"
        self._prewarm()
        self._doing = "registering the run"
        self._register()
        self._doing = "uploading the plan"
        if self.settings.same_host and self.settings.shm_max_bytes:
            shm.create_run_dir(self.settings.namespace, self.settings.dag_id)
        self._upload()
        self.started_at = time.time()
        self._doing = "starting the root workers"
        self._start_roots()
        MetricsStore.write_plan_in_background(self.url, self.settings.namespace,
                                              self.settings.dag_id,
                                              lambda: plan_document(self.plan))
        self._doing = "waiting for the run"
        signal = self._wait(deadline, timeout_s)
        if signal != "ok":
            raise self._failure()
        self._doing = "collecting the result"
        return self._collect()

    # -- steps --------------------------------------------------------------------------------

    def _prewarm(self) -> None:
        configs: dict[tuple[int, float], int] = {}
        for w in self.plan.workers:
            configs[(w.memory_mb, w.cpus)] = configs.get((w.memory_mb, w.cpus), 0) + 1
        for d in self.plan.dynamic.values():  # the new workers of the widths planned for
            groups = len(layout(d.width, d.local, d.per_worker).groups)
            configs[(d.memory_mb, d.cpus)] = configs.get((d.memory_mb, d.cpus), 0) + groups
        fns = {id(c.fn): c.fn for c in self.plan.graph.code.values()}
        self.launcher.prewarm(configs, modules_of(fns.values()))

    def _register(self) -> None:
        self._failures = self.redis.pubsub(ignore_subscribe_messages=True)
        self._failures.subscribe(self.keys.failures())
        host, pid, pid_started = this_client()
        s = self.settings
        self.entry = RunEntry(s.dag_id, s.workflow, self.plan.strategy, s.tasks_total,
                              time.time(), s.deadline_at, host, pid, pid_started)
        self.registry.add(self.entry)

    def _upload(self) -> None:
        ttl, keys, prog = self.settings.ttl_s, self.keys, self.program
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(keys.shared(), prog.shared_blob, ex=ttl)
        for worker_id, blob in prog.worker_blobs.items():
            pipe.set(keys.worker_program(worker_id), blob, ex=ttl)
        pipe.hset(keys.progress(), mapping={"total": self.settings.tasks_total, "done": 0,
                                            "running": 0})
        pipe.expire(keys.progress(), ttl)
        pipe.hset(keys.started(), mapping=dict.fromkeys(prog.root_workers, 1))
        pipe.expire(keys.started(), ttl)
        # a claim comes with the worker's first lease (as BATCH does for the workers it claims):
        # a start request lost on its way (the pool died holding it) is then relaunched
        grace = self.settings.claim_grace_s
        clock = server_clock(self.redis, keys.leases())  # the clock the lease scripts read
        claim = f"1 {server_time(clock) + grace!r} c"
        pipe.hset(keys.leases(), mapping=dict.fromkeys(prog.root_workers, claim))
        pipe.expire(keys.leases(), ttl)
        pipe.execute()

    def _start_roots(self) -> None:
        now = time.time()
        specs = [WorkerSpec(self.settings.namespace, self.settings.dag_id, w,
                            self.plan.worker(w).memory_mb, self.plan.worker(w).cpus, now,
                            sizes=self.settings.sizes)
                 for w in self.program.root_workers]
        self.launcher.start(specs)

    def _wait(self, deadline: float, timeout_s: float) -> str:
        """BLPOP `done` in slices until the signal; a lost connection is ridden out by the
        client's reconnect policy (`metadata.connect`), then fails the run (StoreError)."""
        slice_s = PROGRESS_INTERVAL_S if self.progress else WAIT_SLICE_S
        next_check = time.monotonic() + LEASE_CHECK_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RunError(self._deadline_message(timeout_s))
            got = self.redis.blpop([self.keys.done()], timeout=max(0.01, min(slice_s, remaining)))
            if got is not None:
                value = got[1]
                return value.decode() if isinstance(value, bytes) else str(value)
            if self._heard_failure():
                return "error"
            if self.progress:
                self._report_progress()
            if time.monotonic() >= next_check:
                self._check_run()
                next_check = time.monotonic() + LEASE_CHECK_S

    def _heard_failure(self) -> bool:
        """Whether an error record arrived on the `failures` channel (the store refused to keep
        it: `runtime.scripts.report_error`)."""
        while (msg := self._failures.get_message(timeout=0)) is not None:
            if msg.get("type") == "message":
                with contextlib.suppress(ValueError, TypeError):
                    self._heard.append(json.loads(msg["data"]))
        return bool(self._heard)

    def _check_run(self) -> None:
        """The run still exists (else fail: its state is lost), the store still takes writes
        (the client's heartbeat is the canary), and every worker holding a lease renews it
        (else relaunch it: the pool that ran it may be gone)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(self.keys.progress())
        pipe.hgetall(self.keys.leases())
        pipe.llen(self.keys.done())
        exists, leases, signals = pipe.execute()
        clock = server_clock(self.redis, self.keys.leases())
        if not exists and not signals:
            raise RunError(f"run {self.settings.dag_id}: its state vanished from Redis at "
                           f"{redact_url(self.url)} (a restart without persistence, a flush, or "
                           "an eviction); nothing can finish it. Run it again")
        now = server_time(clock)  # leases expire by the Redis server's clock
        if self.entry is not None:
            self._doing = "renewing the run's heartbeat (its workers cannot write either)"
            self.entry = self.registry.heartbeat(self.entry, now)
            self._doing = "waiting for the run"
        expired = {k: v for k, v in leases.items() if parse_lease(v)[1] < now}
        pools, here = self._live_pools() if expired else (set(), set())
        for raw_id, raw in expired.items():
            generation, expires_at = parse_lease(raw)
            pool = lease_pool(raw)
            if pool in here and process_alive(lease_pid(raw)):
                # its process runs on this machine, only starved (a host far past its cores):
                # its pool reaps it if it dies, the run's deadline bounds a stall, and a
                # relaunch would only add load and supersede work that is nearly done
                continue
            if pool in pools and now < expires_at + POOL_ALIVE_GRACE_S:
                continue  # its pool is alive: it reports the death (or the stall ends)
            self._relaunch(raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id),
                           generation)

    def _live_pools(self) -> tuple[set[str], set[str]]:
        """Ids of the pool servers of this run's namespace that are alive, and of those whose
        process runs on this machine."""
        from runtime.pool_client import PoolClient

        pools = PoolClient(self.redis, self.settings.namespace, self.settings.env)
        return set(pools.live_pools()), set(pools.pools_here())

    def _relaunch(self, worker_id: str, generation: int) -> None:
        old = self._current_spec(worker_id, generation)
        death = Death("lease-expired")
        new = relaunch_spec(old, death)
        if new is None:
            planned = {w.worker_id: w.tasks for w in self.plan.workers}
            tasks = ", ".join(planned.get(worker_id, ("elements of a dynamic fan-out",))
                              [:PENDING_NAMED_MAX])
            raise RunError(f"worker '{worker_id}' (tasks {tasks}) stopped renewing its lease "
                           f"{old.deaths_of('') + 1} times; giving up (its pool or machine may "
                           "be gone: see the pool log in <PLANFLOW_HOME>/logs)")
        if int(call_sync(self.redis, relaunch_call(self.keys, old, new, death,
                                                   self.settings.ttl_s,
                                                   self.settings.claim_grace_s))):
            log.warning("worker %s of %s lost its lease; relaunching it (generation %d)",
                        worker_id, self.settings.dag_id, new.attempt)
            self.launcher.start([new])

    def _current_spec(self, worker_id: str, generation: int) -> WorkerSpec:
        """The spec of `worker_id`'s generation `generation`: its latest relaunch's (budgets
        included) when it was relaunched, else its first start's."""
        raw = self.redis.hget(self.keys.relaunched(), worker_id)
        if raw is not None:
            spec = WorkerSpec.from_json(raw)
            if spec.attempt == generation:
                return spec
        w = self.plan.worker(worker_id)
        return WorkerSpec(self.settings.namespace, self.settings.dag_id, worker_id, w.memory_mb,
                          w.cpus, time.time(), generation, sizes=self.settings.sizes)

    def _report_progress(self) -> None:
        assert self.progress is not None
        done, running = self.redis.hmget(self.keys.progress(), ["done", "running"])
        self.progress(RunProgress(int(done or 0), self.settings.tasks_total, int(running or 0)))

    def _collect(self) -> RunResult:
        # not a transaction: a store past its maxmemory refuses every command queued in MULTI,
        # reads and deletes too, while it serves them one by one (and nothing here needs to be
        # atomic: once `progress` is gone no worker writes, and the result is final)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.result())
        pipe.lrange(self.keys.timings(), 0, -1)
        pipe.hlen(self.keys.started())
        pipe.lrange(self.keys.recovered(), 0, -1)
        self._delete_all(pipe)
        raw, timing_rows, started, recovered = pipe.execute()[:4]
        value = ValueCodec.decode(raw)[0] if raw is not None else None  # before its file goes
        shm.remove_run(self.settings.namespace, self.settings.dag_id)
        self.registry.remove(self.settings.dag_id)
        finished = time.time()
        if self.progress:
            total = self.settings.tasks_total
            self.progress(RunProgress(total, total, 0))
        timings = {t: TaskTiming(t, w, s - self.started_at, f - self.started_at, a)
                   for t, w, s, f, a in decode_timings(timing_rows)}
        return RunResult(
            dag_id=self.settings.dag_id, workflow=self.plan.workflow,
            result=value,
            observed_makespan_s=finished - self.started_at, predicted=self.plan.summary,
            strategy=self.plan.strategy, executor=f"redis/{self.launcher.name}", tasks=timings,
            workers_started=int(started),
            recovered=tuple(json.loads(r) for r in recovered))

    def _failure(self) -> BaseException:
        """The error the run's first error record stands for: TaskFailed for a task's own
        failure, StoreError when Redis failed a worker, RunError when a worker itself did."""
        raw = self.redis.hgetall(self.keys.errors())
        records = sorted([*(json.loads(v) for v in raw.values()), *self._heard],
                         key=lambda r: r.get("at", 0.0))
        if not records:
            return RunError(f"run {self.settings.dag_id} signalled an error but recorded none")
        r = records[0]
        path = self._write_error_file(r)
        where = f"; details in {path}" if path else ""
        kind = r.get("kind", "task")
        if kind == "store":
            return StoreError(f"run {self.settings.dag_id} failed: worker "
                              f"{r.get('worker_id', '?')}: {r['message']}{where}",
                              condition=str(r.get("condition", "")))
        if kind == "worker":
            return RunError(f"run {self.settings.dag_id} failed: worker "
                            f"{r.get('worker_id', '?')} broke down around task "
                            f"'{r['task_id']}': {r['exc_type']}: {r['message']}{where}")
        return TaskFailed(r["task_id"], r["function"], r["exc_type"], r["message"],
                          r.get("traceback", ""), worker_id=r.get("worker_id", ""),
                          attempt=int(r.get("attempt", 1)), record=r, record_path=path)

    def _write_error_file(self, record: dict[str, Any]) -> str:
        """Keep the error record (traceback included) in a file, written atomically; its path,
        or "" when it cannot be written."""
        path = log_dir() / f"{self.settings.dag_id}{ERROR_FILE_SUFFIX}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(f"{path}.tmp{os.getpid()}")
            tmp.write_text(json.dumps(record, indent=2))
            os.replace(tmp, path)
        except OSError as err:
            log.warning("cannot keep the error record in %s: %s", path, err)
            return ""
        return str(path)

    def _deadline_message(self, timeout_s: float) -> str:
        try:
            rows = self.redis.lrange(self.keys.timings(), 0, -1)
            done = {row[0] for row in decode_timings(rows)}
        except redis.RedisError:
            done = set()
        graph = self.plan.graph
        pending = [n.id for n in graph.nodes if n.id not in done]
        # the frontier first: pending tasks whose parents all finished (running, or stuck)
        frontier = [t for t in pending if all(p in done for p in graph.upstream(t))]
        named = ", ".join(frontier[:PENDING_NAMED_MAX])
        more = f" (+{len(frontier) - PENDING_NAMED_MAX} more)" \
            if len(frontier) > PENDING_NAMED_MAX else ""
        return (f"run {self.settings.dag_id} of '{self.plan.workflow}' did not finish within "
                f"{timeout_s:g} s; {len(done)} of {len(graph.nodes)} tasks finished, "
                f"{len(pending)} pending; running or ready to run: {named}{more}. Raise the "
                "timeout (--timeout-s) if the plan is expected to take longer")

    def _abort(self) -> None:
        """Stop the run's workers, then delete its keys and its registry entry (a fresh
        connection: an interrupt may have left the old one mid-reply)."""
        try:
            self.launcher.stop(self.settings.dag_id)
        except redis.RedisError as err:  # e.g. a full store refuses the cancel request
            log.warning("could not ask the pools to stop the workers of %s; they stop on "
                        "their own once the run's keys are deleted: %s", self.settings.dag_id,
                        store_error(err, self.url, "cancelling the workers"))
        except Exception:
            log.exception("stopping the workers of %s failed", self.settings.dag_id)
        disconnect(self.redis)
        shm.remove_run(self.settings.namespace, self.settings.dag_id)
        try:
            pipe = self.redis.pipeline(transaction=False)
            self._delete_all(pipe)
            pipe.execute()
            self.registry.remove(self.settings.dag_id)
        except redis.RedisError as err:
            log.warning("cleaning up run %s failed (the next planflow command on this store "
                        "reclaims it; its keys expire in %d s anyway): %s",
                        self.settings.dag_id, self.settings.ttl_s, err)

    def _delete_all(self, pipe: Any) -> None:
        """Queue the deletion of every key of the run, the liveness key (`progress`) first: once
        it is gone no guarded script writes anything of this run (`runtime.scripts`)."""
        made = [k.decode() if isinstance(k, bytes) else str(k)
                for k in self.redis.smembers(self.keys.dynamic())]
        pipe.unlink(self.keys.progress())
        keys = [*self.program.all_keys(), *made]  # with what dynamic fan-outs created
        for i in range(0, len(keys), 1000):  # one slot (the run's hash tag), so one command
            pipe.execute_command("UNLINK", *keys[i:i + 1000])

    def _record(self, result: RunResult | None) -> None:
        """The RunRecord (`result` None: the run failed); after a success, wait for the
        workers' own records too. A success records the observed makespan its RunResult
        reports, so `run --json` and `metrics accuracy --makespan` show the same figure."""
        start = self.started_at or time.time()
        finished = start + result.observed_makespan_s if result is not None else time.time()
        record = RunRecord(
            run_id=self.settings.dag_id, workflow=self.plan.workflow,
            strategy=self.plan.strategy, submitted_at=self.settings.submitted_at,
            finished_at=finished, predicted_makespan_s=self.plan.summary.makespan_s,
            observed_makespan_s=finished - start, predicted_cost_usd=self.plan.summary.cost_usd,
            ok=result is not None)
        try:
            with MetricsStore(self.url, self.settings.namespace) as store:
                store.write_run(record)
                if result is not None:
                    self._await_worker_records(store, result.workers_started)
                    self._record_cost(store, record)
        except Exception as err:
            log.warning("metrics: cannot record run %s: %s", self.settings.dag_id, err)

    def _record_cost(self, store: MetricsStore, record: RunRecord) -> None:
        """Replace the run's record with one that carries its observed cost (from the workers'
        records, at the prices of the plan's platform: `runtime.billing`, `platform_of`)."""
        from planner.plan import platform_of
        from runtime.billing import observed_cost

        workers = store.worker_records(self.settings.dag_id)
        platform = platform_of(self.plan)
        if not workers or platform is None:
            return
        cost = observed_cost(workers, platform)
        store.write_run(replace(record, observed_cost_usd=cost.cost_usd))

    def _await_worker_records(self, store: MetricsStore, expected: int) -> None:
        run_id = self.settings.dag_id
        give_up = time.monotonic() + METRICS_SETTLE_S
        while (have := store.worker_record_count(run_id)) < expected:
            if time.monotonic() >= give_up:
                log.info("metrics: %d of %d workers of %s recorded within %.0f s", have,
                         expected, run_id, METRICS_SETTLE_S)
                return
            time.sleep(METRICS_POLL_S)


_PLAN_DOCUMENTS: dict[int, dict[str, Any]] = {}
"""`Plan.to_json()` of each plan this process has run, by the plan's id; an entry leaves with
its plan (`plan_document`)."""


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan's document as every run records it (`metadata.runplan`), built once per Plan
    object: a plan is immutable, and building the document of an 8,191-task plan takes ~0.3 s
    of the client's CPU, which on a small host is taken from the run's workers (a plan run
    again in one process - a notebook, a service, a benchmark - pays it once). Read-only."""
    key = id(plan)
    doc = _PLAN_DOCUMENTS.get(key)
    if doc is None:
        doc = plan.to_json()
        try:
            weakref.finalize(plan, _PLAN_DOCUMENTS.pop, key, None)
        except TypeError:  # not weakly referable: no cache (an id may be reused)
            return doc
        _PLAN_DOCUMENTS[key] = doc
    return doc


def decode_timings(rows: Iterable[bytes | str]) -> list[tuple[str, str, float, float, int]]:
    """The (task, worker, start, finish, attempt) rows of a run's `timings` list (a row
    carries its attempt only when it is not the first)."""
    out: list[tuple[str, str, float, float, int]] = []
    for raw in rows:
        for row in json.loads(raw):
            task_id, worker_id, start, finish = row[:4]
            attempt = int(row[4]) if len(row) > 4 else 1
            out.append((str(task_id), str(worker_id), float(start), float(finish), attempt))
    return out


OWN_PACKAGES = frozenset({"planflow", "planner", "simulator", "metadata", "runtime"})


def modules_of(functions: Iterable[Any],
               loaded: Iterable[str] | None = None) -> list[str]:
    """Modules a warm pool may import ahead, so that its forked workers inherit them instead of
    each importing them again while it unpickles its tasks (numpy, pandas or dask.array cost a
    fresh process 0.1-0.7 s): by full name, the functions' own modules and those their globals
    refer to, because importing a package does not import its subpackages (`dask` is not
    `dask.array`); and of every package among them, the public subpackages this process has
    loaded (`loaded`, default `sys.modules`: the client built the graph, so it imported what
    the graph's callables need, which wrappers such as Dask's task specs hide)."""
    found: dict[str, None] = {}

    def add(name: object) -> None:
        if isinstance(name, str) and name and name not in ("builtins", "__main__") \
                and not name.startswith(("planflow_user_", "_")):
            found[name] = None

    for fn in functions:
        add(getattr(fn, "__module__", None))
        for value in getattr(fn, "__globals__", {}).values():
            add(value.__name__ if isinstance(value, ModuleType)
                else getattr(value, "__module__", None))
    tops = {name.split(".")[0] for name in found} - OWN_PACKAGES  # planflow's: imported anyway
    for name in list(sys.modules if loaded is None else loaded):
        parts = name.split(".")
        if len(parts) == 2 and parts[0] in tops and not parts[1].startswith("_"):
            add(name)
    return sorted(found)
