"""A worker: runs its tasks of one run in plan order, then ends. Also `python -m runtime.worker`.

    PLANFLOW_REDIS_URL=... python -m runtime.worker --namespace NS --dag DAG --worker W \\
        --memory-mb 1769 --cpus 1.0

(the Redis URL only ever comes from the environment: argv is visible to every local user).

For each task, in order: if it has remote parents, wait until its id appears on the worker's
`notify` list (BLPOP: blocking, no polling), take the inputs that were prefetched when it became
ready (or fetch them now), run it, pickle the output only if a consumer runs elsewhere, and queue
it for the data plane (`runtime.dataplane.Uploader`), which stores outputs, updates downstream
readiness and starts the workers that became ready. Values that later local tasks read stay in
memory and are freed after their last local reader, as the inline executor does.

A task that raises is tried again while its retry policy allows (`runtime.retry`: retries,
`retry_on`, exponential backoff with seeded jitter), each attempt a TaskFinished event (so a
metrics record with its attempt number). When none is left, the worker ends: its error record
(task, attempt, exception type, message, traceback, the tail of the worker's stderr, worker and
generation) is written atomically with the `error` signal, so the client fails the run at once;
nothing downstream of it is ever started.

A relaunched worker (`WorkerSpec.attempt` > 1, see `runtime.leases`) runs its program again from
the start; it cannot trust its `notify` list (the dead process may have drained it), so it also
polls for its remote inputs in the producers' output hashes. A lost connection to Redis is ridden
out by the reconnect policy of `metadata.connect`; what outlasts it, and any refusal of the
server, fails the worker with a `StoreError` (reported as the store's failure, not the task's).

A task's own failures are everything its code raises, `SystemExit` (a `sys.exit()` in the task)
and `KeyboardInterrupt` included: they are retried per its policy and reported under its name. A
value too large for the store (`ValueTooLarge`) fails its task at once, before any upload.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import redis

from metadata.store_errors import is_store_error
from metadata.writer import MetricsWriter
from planner.graph import TaskCode
from runtime.codec import dumps_value, estimate_size, loads_value
from runtime.context import Download, PlanLoadError, WorkerContext
from runtime.cpuclock import CpuClock
from runtime.dataplane import BatchSent, Completion, Uploader
from runtime.defaults import REDIS_URL_ENV
from runtime.errors import StoreError, ValueTooLarge, store_error
from runtime.events import Event, Listener, TaskFinished, TaskSettled, TaskStarted, WorkerFinished
from runtime.ids import DAG_ID_PATTERN
from runtime.keys import RunKeys
from runtime.launcher import Launcher, WorkerSpec
from runtime.program import TaskStep, WorkerProgram
from runtime.recorder import MetricsRecorder
from runtime.retry import RetryPolicy
from runtime.scripts import call_sync, error_call

log = logging.getLogger(__name__)

WAIT_CHECK_S = 1.0
"""A worker blocked on its notify list checks, this often, that its run still exists."""

NOTIFY_DRAIN_MAX = 1000
"""Ready-task ids taken from the notify list per round trip."""

WORKER_SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval of worker processes (CPython's default is 5 ms): the data-plane thread
needs the GIL a few times per batch, and must not wait 5 ms each time while the main thread
runs pure-Python tasks."""

STOP_SENTINEL = "\x00stop"
"""Pushed on a worker's notify list to wake it and make it stop (cancellation)."""

LOAD_ERROR_TTL_S = 3600
"""TTL of the error record of a worker that could not load its plan (its run's TTL is in the
plan it could not read; the client deletes the record anyway)."""


STDERR_TAIL_BYTES = 4096
"""How much of the end of the worker's stderr (when it is a file) goes into an error record."""

BACKOFF_SLICE_S = 0.5
"""A retry backoff sleeps in slices this long, checking for cancellation between them."""


class Stop(Exception):
    """The worker must stop without an error of its own (`outcome` says why)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class Worker:
    """One worker of one run. `run()` returns the outcome: ok, failed, gone or cancelled."""

    def __init__(self, ctx: WorkerContext, spec: WorkerSpec, *, launcher: Launcher | None = None,
                 listeners: Sequence[Listener] = (), cold: bool = True,
                 cancelled: Callable[[], bool] = lambda: False) -> None:
        self.ctx = ctx
        self.spec = spec
        if not DAG_ID_PATTERN.match(spec.dag_id):
            raise ValueError(f"not a dag id: {spec.dag_id!r}")
        self.keys = RunKeys(spec.namespace, spec.dag_id)
        self._launcher = launcher
        self._listeners = list(listeners)
        self._cold = cold
        self._cancelled = cancelled
        self._clock: CpuClock
        """Opened by `run` on the thread that runs the tasks."""
        self._values: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}
        """Serialized size of each value in `_values` (inputs are measured one way, local or
        remote, so the predictor sees the same input bytes wherever a parent ran)."""
        self._remaining: dict[str, int] = {}
        self._ready: set[str] = set()
        self._inflight: dict[str, tuple[Future[list[bytes | None]], int]] = {}
        self._steps: dict[str, TaskStep] = {}
        self._input_owner: Mapping[str, str] = {}
        self._deadline = float("inf")
        self._default_retries = 0
        self._sizes_of_platform: tuple[tuple[int, float], ...] = ()
        self.tasks_run = 0

    def run(self) -> str:
        started_at = time.time()
        try:
            download = self.ctx.download(self.keys, self.spec.worker_id)
        except PlanLoadError as err:
            log.error("worker %s of %s: %s", self.spec.worker_id, self.spec.dag_id, err)
            task_id = err.step.task_id if err.step else f"<worker {self.spec.worker_id}>"
            record = error_record(task_id, err.step.function if err.step else "?", err.cause,
                                  self.spec.worker_id)
            call_sync(self.ctx.redis, error_call(self.keys, task_id, record, LOAD_ERROR_TTL_S))
            return "failed"
        if download is None:
            log.info("worker %s of %s: the run is gone", self.spec.worker_id, self.spec.dag_id)
            return "gone"
        settings = download.shared.settings
        if (settings.namespace, settings.dag_id) != (self.spec.namespace, self.spec.dag_id):
            return refuse_foreign(self.spec, settings.namespace, settings.dag_id)
        recorder = MetricsRecorder(MetricsWriter(self.ctx.metrics_store(settings.namespace),
                                                 settings.metrics_upload))
        self._listeners.append(recorder)
        outcome = "failed"
        self._clock = CpuClock()
        try:
            outcome = self._run(download)
        finally:
            self._clock.close()
            prog = download.program
            self._emit(WorkerFinished(
                self.spec.dag_id, prog.worker_id, prog.memory_mb, prog.cpus,
                self.spec.requested_at, started_at, self._cold, download.seconds,
                download.nbytes, self.tasks_run, time.time(), outcome))
            recorder.close()
        return outcome

    def _run(self, download: Download) -> str:
        prog, settings = download.program, download.shared.settings
        self._deadline = settings.deadline_at
        self._default_retries = settings.retries
        self._sizes_of_platform = settings.sizes
        self._steps = {s.task_id: s for s in prog.steps}
        self._remaining = dict(prog.input_uses)
        self._input_owner = prog.input_owner
        fns = download.shared.functions
        uploader = Uploader(self.ctx.io, self.keys, prog.worker_id, settings.ttl_s, prog.cleanup,
                            lambda ids: self._start(prog, settings.launcher, ids),
                            self._settled, generation=self.spec.attempt,
                            claim_grace_s=settings.claim_grace_s)
        step: TaskStep | None = None
        try:
            for i, step in enumerate(prog.steps):
                self._check(uploader)
                if not self._run_step(step, TaskCode(fns[step.fn_index], step.args, step.kwargs),
                                      uploader, last=i == len(prog.steps) - 1):
                    return "failed"
            uploader.drain()
            return "gone" if uploader.gone else "ok"
        except Stop as stop:
            return stop.outcome
        except Exception as err:  # the worker loop is one of the two places that catch broadly
            log.exception("worker %s of %s failed", prog.worker_id, self.spec.dag_id)
            if is_store_error(err) and not isinstance(err, StoreError):
                err = store_error(err, self.ctx.url, f"running worker {prog.worker_id}")
            kind = "store" if isinstance(err, StoreError) else "worker"
            self._report(step or prog.steps[0], err, settings.ttl_s, uploader, kind=kind)
            return "failed"
        finally:
            uploader.close()

    def _check(self, uploader: Uploader) -> None:
        if self._cancelled():
            raise Stop("cancelled")
        if uploader.error is not None:
            raise uploader.error
        if uploader.gone:
            raise Stop("gone")
        if uploader.superseded:
            raise Stop("superseded")

    def _run_step(self, step: TaskStep, code: TaskCode, uploader: Uploader, last: bool) -> bool:
        """Run one task, retrying as its policy says; False when it failed for good (its error
        is reported)."""
        t0 = time.perf_counter()
        self._inputs(step)
        fetch_s = time.perf_counter() - t0
        input_bytes = sum(self._sizes.get(p, 0) for p in step.parents)
        policy = RetryPolicy.of(step.options, self._default_retries)
        attempt = self.spec.used_attempts(step.task_id)
        while True:
            attempt += 1
            started_at = time.time()
            deadline = started_at + policy.timeout_s if policy.timeout_s else 0.0
            self._emit(TaskStarted(self.spec.dag_id, step.task_id, self.spec.worker_id,
                                   step.function, started_at, attempt, policy.attempts, deadline,
                                   step.function_key, input_bytes))
            before = self._clock.read()
            t1 = time.perf_counter()
            try:
                value = code.call(self._values)
                break
            except (Exception, SystemExit, KeyboardInterrupt) as err:  # all the task's own
                exec_s = time.perf_counter() - t1
                usage = self._clock.between(before, self._clock.read())
                self._finished(step, attempt, started_at, fetch_s, exec_s, usage, input_bytes, 0,
                               err)
                if not policy.should_retry(err, attempt):
                    self._report(step, err, uploader.ttl_s, uploader, attempt)
                    return False
                log.warning("task %s attempt %d/%d failed (%s: %s); retrying", step.task_id,
                            attempt, policy.attempts, type(err).__name__, err)
                self._sleep(policy.delay_s(self.spec.dag_id, step.task_id, attempt), uploader)
                fetch_s = 0.0
        exec_s = time.perf_counter() - t1
        usage = self._clock.between(before, self._clock.read())
        payload = dumps_value(value) if step.remote_children or step.is_sink else None
        out_bytes = len(payload) if payload is not None else estimate_size(value)
        if payload is not None and len(payload) > self.ctx.io.limits.value_bytes:
            too_large = ValueTooLarge(step.task_id, len(payload), self.ctx.io.limits.value_bytes)
            self._finished(step, attempt, started_at, fetch_s, exec_s, usage, input_bytes,
                           out_bytes, too_large)
            self._report(step, too_large, uploader.ttl_s, uploader, attempt)
            return False
        if step.local_uses:
            self._values[step.task_id] = value
            self._sizes[step.task_id] = out_bytes
            self._remaining[step.task_id] = step.local_uses
        self._release(step)
        uploader.put(Completion(step, payload, started_at, time.time(), last, attempt),
                     urgent=bool(step.remote_children) or step.is_sink or last)
        self.tasks_run += 1
        self._finished(step, attempt, started_at, fetch_s, exec_s, usage, input_bytes,
                       out_bytes, None)
        return True

    def _sleep(self, seconds: float, uploader: Uploader) -> None:
        """A retry backoff, in slices: cancellation, the run's end and the deadline cut it."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(left, BACKOFF_SLICE_S))
            self._check(uploader)
            if time.time() > self._deadline:
                raise Stop("gone")

    def _release(self, step: TaskStep) -> None:
        for parent in step.parents:
            left = self._remaining.get(parent, 0) - 1
            if left <= 0:
                self._remaining.pop(parent, None)
                self._values.pop(parent, None)
                self._sizes.pop(parent, None)
            else:
                self._remaining[parent] = left

    # -- inputs -------------------------------------------------------------------------------

    def _inputs(self, step: TaskStep) -> None:
        """Make the step's remote inputs local (their sizes go to `_sizes`)."""
        missing = [p for p in step.remote_parents if p not in self._values]
        if not missing:
            return
        if self.spec.attempt > 1:
            self._await_recovered(step, missing)
        while step.task_id not in self._ready and not self._all_inflight(missing):
            self._wait_notify()
        todo = [p for p in missing if p not in self._inflight]
        if todo:
            self._prefetch(todo)
        for parent in missing:
            future, index = self._inflight.pop(parent)
            try:
                raw = future.result()[index]
            except redis.RedisError as err:
                raise store_error(err, self.ctx.url, f"fetching the inputs of task "
                                  f"'{step.task_id}'") from err
            if raw is None:
                raise RuntimeError(f"the output of task '{parent}' is missing from the store "
                                   "(deleted or expired)")
            self._values[parent] = loads_value(raw)
            self._sizes[parent] = len(raw)

    def _await_recovered(self, step: TaskStep, missing: list[str]) -> None:
        """A relaunched worker's wait: the dead process may have drained the notify list, so
        poll the producers' output hashes too (an output is stored before its producer makes
        anyone ready, so a present output means a finished parent)."""
        while step.task_id not in self._ready:
            todo = [p for p in missing if p not in self._inflight]
            if todo:
                self._prefetch(todo)
            if all(self._inflight[p][0].result()[self._inflight[p][1]] is not None
                   for p in missing):
                return
            for parent in missing:
                self._inflight.pop(parent, None)
            self._wait_notify()

    def _all_inflight(self, parents: list[str]) -> bool:
        """Whether every parent's fetch is under way and (recovery mode) known to be present."""
        return self.spec.attempt > 1 and all(p in self._inflight for p in parents)

    def _prefetch(self, parents: list[str]) -> None:
        owner = self._input_owner
        future = self.ctx.io.fetch([(self.keys.outputs(owner[p]), p) for p in parents])
        for i, parent in enumerate(parents):
            self._inflight[parent] = (future, i)

    def _wait_notify(self) -> None:
        """Take ready-task ids from the notify list, blocking until there is one. (A lost
        connection is ridden out by the client's reconnect policy, `metadata.connect`.)"""
        key, r = self.keys.notify(self.spec.worker_id), self.ctx.redis
        items = r.lpop(key, NOTIFY_DRAIN_MAX)
        if not items:
            got = r.blpop([key], timeout=WAIT_CHECK_S)
            if got is None:
                self._check_alive()
                return
            items = [got[1]]
        wanted: list[str] = []
        for raw in items:
            task_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if task_id == STOP_SENTINEL:
                raise Stop("cancelled")
            self._ready.add(task_id)
            step = self._steps.get(task_id)
            for p in step.remote_parents if step else ():
                if p not in self._values and p not in self._inflight and p not in wanted:
                    wanted.append(p)
        if wanted:  # inputs of every task that just became ready travel while we work
            self._prefetch(wanted)

    def _check_alive(self) -> None:
        if self._cancelled():
            raise Stop("cancelled")
        if time.time() > self._deadline or not self.ctx.redis.exists(self.keys.progress()):
            raise Stop("gone")

    # -- reporting ----------------------------------------------------------------------------

    def _start(self, prog: WorkerProgram, launcher_name: str, worker_ids: Sequence[str]) -> None:
        now = time.time()
        specs = [WorkerSpec(self.spec.namespace, self.spec.dag_id, w, *prog.peers[w], now,
                            sizes=self._sizes_of_platform) for w in worker_ids]
        launcher = self._launcher or self.ctx.launcher(launcher_name, self.spec.namespace)
        launcher.start(specs)

    def _settled(self, batch: BatchSent) -> None:
        share = batch.round_trip_s / len(batch.items)
        invoke = batch.invoke_s / len(batch.items)
        for c in batch.items:
            remote_io = c.payload is not None, bool(c.step.remote_children)
            parts = sum(remote_io) or 1
            self._emit(TaskSettled(self.spec.dag_id, c.step.task_id,
                                   share * remote_io[0] / parts, share * remote_io[1] / parts,
                                   invoke if c.step.remote_children else 0.0))

    def _finished(self, step: TaskStep, attempt: int, started_at: float, fetch_s: float,
                  exec_s: float, usage: tuple[float, float | None], input_bytes: int,
                  output_bytes: int, err: BaseException | None) -> None:
        """Emit TaskFinished; `usage` is (contention_s, cpu_s) from the worker's CpuClock."""
        memory_mb, cpus = step.memory_mb, step.cpus
        if self.spec.memory_mb > memory_mb:  # relaunched larger after an OOM kill
            memory_mb, cpus = self.spec.memory_mb, self.spec.cpus
        self._emit(TaskFinished(
            self.spec.dag_id, step.task_id, self.spec.worker_id, step.function,
            step.function_key, memory_mb, cpus, attempt, started_at, fetch_s, exec_s,
            input_bytes, output_bytes, err is None,
            None if err is None else f"{type(err).__name__}: {err}",
            cpu_s=usage[1], contention_s=usage[0]))

    def _report(self, step: TaskStep, err: BaseException, ttl_s: int,
                uploader: Uploader, attempt: int = 1, kind: str = "task") -> None:
        """Write the error record (`kind`: the task failed, or the store, or the worker itself)
        and the `error` signal, atomically (one script)."""
        record = error_record(step.task_id, step.function, err, self.spec.worker_id, attempt,
                              self.spec.attempt, kind)
        try:
            uploader.drain()
        except Exception:  # already failing: the error below is what matters
            log.debug("drain before error report failed", exc_info=True)
        try:
            call_sync(self.ctx.redis, error_call(self.keys, step.task_id, record, ttl_s))
        except Exception:
            log.exception("worker %s: cannot record the failure of task %s",
                          self.spec.worker_id, step.task_id)

    def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("listener %r failed on %s", listener, type(event).__name__)


def error_record(task_id: str, function: str, err: BaseException, worker_id: str,
                 attempt: int = 1, generation: int = 1, kind: str = "task") -> str:
    """The JSON error record of a failed task attempt. `kind`: `task` (the task's own code
    raised), `store` (Redis failed the worker: `condition` names how) or `worker` (the worker
    machinery failed around the task)."""
    record: dict[str, object] = {
        "task_id": task_id, "function": function, "attempt": attempt, "kind": kind,
        "exc_type": type(err).__name__, "message": str(err),
        "traceback": "".join(traceback.format_exception(err)), "worker_id": worker_id,
        "generation": generation, "stderr_tail": stderr_tail(), "at": time.time()}
    if isinstance(err, StoreError) and err.condition:
        record["condition"] = err.condition
    return json.dumps(record)


def stderr_tail(path: str | None = None, limit: int = STDERR_TAIL_BYTES) -> str:
    """The last `limit` bytes of a stderr file: `path`, else this process's fd 2 when it is a
    regular file (pool children write to one each); "" for a terminal or a pipe."""
    try:
        path = path or os.readlink("/proc/self/fd/2")
        if not os.path.isfile(path):
            return ""
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def refuse_foreign(spec: WorkerSpec, namespace: str, dag_id: str) -> str:
    """Log and name the refusal of a plan whose settings belong to another namespace or run
    than the keys it was read from (a copied or forged plan): the worker touches no key."""
    log.error("worker %s: refusing a plan of %s/%s found under %s/%s", spec.worker_id,
              namespace, dag_id, spec.namespace, spec.dag_id)
    return "refused"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one worker in this process (the Redis URL comes from PLANFLOW_REDIS_URL)."""
    parser = argparse.ArgumentParser(prog="python -m runtime.worker")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--dag", required=True)
    parser.add_argument("--worker", required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--cpus", type=float, required=True)
    parser.add_argument("--requested-at", type=float, default=None)
    args = parser.parse_args(argv)
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        print(f"runtime.worker: set {REDIS_URL_ENV}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s worker %(message)s")
    sys.setswitchinterval(WORKER_SWITCH_INTERVAL_S)
    spec = WorkerSpec(args.namespace, args.dag, args.worker, args.memory_mb, args.cpus,
                      args.requested_at or time.time())
    ctx = WorkerContext(url)
    try:
        outcome = Worker(ctx, spec).run()
    finally:
        ctx.close()
    return 0 if outcome in ("ok", "gone") else 1


if __name__ == "__main__":
    sys.exit(main())
