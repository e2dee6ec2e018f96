"""A worker: runs its tasks of one run in plan order, then ends. Also `python -m runtime.worker`.

    PLANFLOW_REDIS_URL=... python -m runtime.worker --namespace NS --dag DAG --worker W \\
        --memory-mb 1769 --cpus 1.0

(the Redis URL only ever comes from the environment: argv is visible to every local user).

For each task, in order: gather its inputs (`runtime.inbox`: wait until it is ready, take what
was prefetched), run it, encode the output only if a consumer runs elsewhere (`runtime.values`:
through shared memory on one host, else Redis), and queue it for the data plane
(`runtime.dataplane.Uploader`), which stores outputs, updates downstream readiness and starts the
workers that became ready.

A task that raises is tried again while its retry policy allows (`runtime.retry`: retries,
`retry_on`, exponential backoff with seeded jitter), each attempt a TaskFinished event (so a
metrics record with its attempt number). When none is left, the worker ends: its error record
(`runtime.failures`) is written atomically with the `error` signal, so the client fails the run
at once; nothing downstream of it is ever started.

A relaunched worker (`WorkerSpec.attempt` > 1, see `runtime.leases`) runs its program again from
the start (its inbox then also polls the producers' output hashes). A lost connection to Redis is
ridden out by the reconnect policy of `metadata.connect`; what outlasts it, and any refusal of
the server, fails the worker with a `StoreError` (reported as the store's failure, not the
task's).

A task's own failures are everything its code raises, `SystemExit` (a `sys.exit()` in the task)
and `KeyboardInterrupt` included: they are retried per its policy and reported under its name. A
value too large for the store (`ValueTooLarge`) fails its task at once, before any upload.

A dynamic fan-out's step (`planflow.map`) is expanded here when its input arrives
(`runtime.fanout`): some elements run in this worker, the rest on workers it creates.

With `PLANFLOW_PROFILE_DIR` set (in the environment of the pool server, or of a spawned
worker), each worker's main thread runs under cProfile and its stats are written to
`<dir>/<dag>-<worker>-<pid>.prof` when it ends (`benchmarks/overhead_profile.py` sums them).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from metadata.store_errors import is_store_error
from metadata.writer import MetricsWriter
from planner.graph import TaskCode
from runtime import shm
from runtime.codec import estimate_size
from runtime.context import Download, PlanLoadError, WorkerContext
from runtime.cpuclock import CpuClock
from runtime.dataplane import BatchSent, Completion, Uploader
from runtime.defaults import REDIS_URL_ENV
from runtime.errors import StoreError, ValueTooLarge, store_error
from runtime.events import Event, Listener, TaskFinished, TaskSettled, TaskStarted, WorkerFinished
from runtime.failures import LOAD_ERROR_TTL_S, error_record, refuse_foreign
from runtime.fanout import Fanout
from runtime.ids import DAG_ID_PATTERN
from runtime.inbox import STOP_SENTINEL, Inbox, Stop
from runtime.keys import RunKeys
from runtime.launcher import Launcher, WorkerSpec
from runtime.program import RunSettings, TaskStep, WorkerProgram
from runtime.recorder import MetricsRecorder
from runtime.retry import RetryPolicy
from runtime.scripts import call_sync, report_error, reserve_call
from runtime.values import ValueCodec

__all__ = ["STOP_SENTINEL", "Stop", "Worker", "main"]

log = logging.getLogger(__name__)

WORKER_SWITCH_INTERVAL_S = 0.0005
"""GIL switch interval of worker processes (CPython's default is 5 ms): the data-plane thread
needs the GIL a few times per batch, and must not wait 5 ms each time while the main thread
runs pure-Python tasks."""

PROFILE_DIR_ENV = "PLANFLOW_PROFILE_DIR"
"""Where workers write their cProfile stats when set (see the module docstring)."""

RESERVE_CHUNK_BYTES = 64 * 2**20
"""Most shared-memory bytes a worker reserves ahead on its run's bound (`runtime.shm`), so that
a worker writing many values pays one RESERVE round trip per chunk, not per value."""

RESERVE_CHUNK_SHARE = 32
"""A chunk is also at most this fraction of the run's bound: credit held ahead by many workers
must not make values spill that would have fitted."""

BACKOFF_SLICE_S = 0.5
"""A retry backoff sleeps in slices this long, checking for cancellation between them."""


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
        self._inbox: Inbox
        """Set by `_run`: the inputs of this worker's tasks."""
        self._deadline = float("inf")
        self._default_retries = 0
        self._sizes_of_platform: tuple[tuple[int, float], ...] = ()
        self._codec: ValueCodec
        """Set by `_run` from the run's settings."""
        self._shm_credit = 0
        """Shared-memory bytes reserved on the run's bound and not used yet (`_value_codec`)."""
        self._settings: RunSettings
        """Set by `_run`: the run's settings."""
        self.tasks_run = 0

    def run(self) -> str:
        directory = os.environ.get(PROFILE_DIR_ENV)
        if not directory:
            return self._run_worker()
        import cProfile

        profile = cProfile.Profile()
        try:
            return profile.runcall(self._run_worker)
        finally:
            os.makedirs(directory, exist_ok=True)
            profile.dump_stats(os.path.join(directory, f"{self.spec.dag_id}-"
                                            f"{self.spec.worker_id}-{os.getpid()}.prof"))

    def _run_worker(self) -> str:
        started_at = time.time()
        try:
            download = self.ctx.download(self.keys, self.spec.worker_id)
        except PlanLoadError as err:
            log.error("worker %s of %s: %s", self.spec.worker_id, self.spec.dag_id, err)
            task_id = err.step.task_id if err.step else f"<worker {self.spec.worker_id}>"
            record = error_record(task_id, err.step.function if err.step else "?", err.cause,
                                  self.spec.worker_id)
            report_error(self.ctx.redis, self.keys, task_id, record, LOAD_ERROR_TTL_S)
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
            self._return_credit()
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
        self._settings = settings
        self._default_retries = settings.retries
        self._sizes_of_platform = settings.sizes
        fns = download.shared.functions
        self._codec = self._value_codec(settings, prog.worker_id)
        self._inbox = Inbox(self.ctx, self.keys, prog, self._codec,
                            recovering=self.spec.attempt > 1, idle=self._check_alive)
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

    def _value_codec(self, settings: RunSettings, worker_id: str) -> ValueCodec:
        """How this worker's values travel: shared memory on one host, else Redis."""
        directory = shm.run_dir(settings.namespace, settings.dag_id) \
            if settings.same_host and settings.shm_max_bytes > 0 else None

        chunk = min(RESERVE_CHUNK_BYTES, settings.shm_max_bytes // RESERVE_CHUNK_SHARE)

        def reserve(nbytes: int) -> bool:
            """Take `nbytes` from the credit, reserving a chunk ahead when it is short (or
            just what is missing, when the chunk does not fit the bound any more)."""
            if nbytes <= self._shm_credit:
                self._shm_credit -= nbytes
                return True
            need = nbytes - self._shm_credit
            for ask in dict.fromkeys((max(need, chunk), need)):
                call = reserve_call(self.keys, ask, settings.shm_max_bytes, settings.ttl_s)
                if int(call_sync(self.ctx.redis, call)) == 1:
                    self._shm_credit += ask - nbytes
                    return True
            return False

        return ValueCodec(shm_dir=directory, reserve=reserve,
                          value_limit=self.ctx.io.limits.value_bytes)

    def _return_credit(self) -> None:
        """Give the unused shared-memory credit back to the run's bound (a no-op once the run
        is gone: the script checks it still exists)."""
        credit, self._shm_credit = self._shm_credit, 0
        if credit > 0:
            settings = self._settings
            try:
                call_sync(self.ctx.redis, reserve_call(self.keys, -credit,
                                                       settings.shm_max_bytes, settings.ttl_s))
            except Exception:  # the bound is only held longer; never fail the worker for it
                log.debug("returning %d shared-memory bytes failed", credit, exc_info=True)

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
        is reported). A dynamic fan-out's step expands it (`runtime.fanout`)."""
        if step.dynamic is not None:
            return Fanout(self, self._settings, uploader).run(step, code, last)
        t0 = time.perf_counter()
        self._inbox.gather(step)
        fetch_s = time.perf_counter() - t0
        input_bytes = self._inbox.input_bytes(step)
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
                value = code.call(self._inbox.values)
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
        return self.complete(step, value, started_at, fetch_s=fetch_s, exec_s=exec_s,
                             uploader=uploader, last=last, attempt=attempt, usage=usage,
                             input_bytes=input_bytes)

    def complete(self, step: TaskStep, value: Any, started_at: float, *, fetch_s: float,
                 exec_s: float, uploader: Uploader, last: bool, attempt: int = 1,
                 usage: tuple[float, float | None] = (0.0, None),
                 input_bytes: int | None = None) -> bool:
        """A task's value is known: encode it if someone elsewhere reads it, keep it for local
        readers, queue its completion; False when it is too large for the store (reported)."""
        if input_bytes is None:
            input_bytes = self._inbox.input_bytes(step)
        payload: bytes | None = None
        if step.remote_children or step.is_sink:
            try:
                out = self._codec.encode(step.task_id, value)
            except ValueTooLarge as too_large:
                self._finished(step, attempt, started_at, fetch_s, exec_s, usage, input_bytes,
                               too_large.nbytes, too_large)
                self._report(step, too_large, uploader.ttl_s, uploader, attempt)
                return False
            payload, out_bytes = out.payload, out.nbytes
        else:
            out_bytes = estimate_size(value)
        self._inbox.keep(step, value, out_bytes)
        self._inbox.release(step)
        uploader.put(Completion(step, payload, started_at, time.time(), last, attempt),
                     urgent=bool(step.remote_children) or step.is_sink or last)
        self.tasks_run += 1
        self._finished(step, attempt, started_at, fetch_s, exec_s, usage, input_bytes,
                       out_bytes, None)
        return True

    # -- what dynamic fan-outs (`runtime.fanout`) use ------------------------------------------

    @property
    def inbox(self) -> Inbox:
        return self._inbox

    def run_step(self, step: TaskStep, code: TaskCode, uploader: Uploader, last: bool) -> bool:
        """Run one task of this worker (`_run_step`): a dynamic fan-out's local element."""
        return self._run_step(step, code, uploader, last)

    def fail(self, step: TaskStep, err: BaseException, uploader: Uploader) -> None:
        """`step` failed without running its function (its metrics record and error record)."""
        now = time.time()
        self._finished(step, 1, now, 0.0, 0.0, (0.0, None), 0, 0, err)
        self._report(step, err, uploader.ttl_s, uploader)

    def start_new(self, specs: Sequence[WorkerSpec], launcher_name: str) -> None:
        """Start workers this worker created and claimed (a dynamic fan-out's groups)."""
        if specs:
            launcher = self._launcher or self.ctx.launcher(launcher_name, self.spec.namespace,
                                                           self._settings.env)
            launcher.start(specs)

    def _sleep(self, seconds: float, uploader: Uploader) -> None:
        """A retry backoff, in slices: cancellation, the run's end and the deadline cut it."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(left, BACKOFF_SLICE_S))
            self._check(uploader)
            if time.time() > self._deadline:
                raise Stop("gone")

    def _check_alive(self) -> None:
        """Raise Stop when the run is cancelled, past its deadline or gone."""
        if self._cancelled():
            raise Stop("cancelled")
        if time.time() > self._deadline or not self.ctx.redis.exists(self.keys.progress()):
            raise Stop("gone")

    # -- reporting ----------------------------------------------------------------------------

    def _start(self, prog: WorkerProgram, launcher_name: str, worker_ids: Sequence[str]) -> None:
        now = time.time()
        specs = [WorkerSpec(self.spec.namespace, self.spec.dag_id, w, *prog.peers[w], now,
                            sizes=self._sizes_of_platform) for w in worker_ids]
        launcher = self._launcher or self.ctx.launcher(launcher_name, self.spec.namespace,
                                                       self._settings.env)
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
            report_error(self.ctx.redis, self.keys, step.task_id, record, ttl_s)
        except Exception:
            log.exception("worker %s: cannot record the failure of task %s",
                          self.spec.worker_id, step.task_id)

    def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("listener %r failed on %s", listener, type(event).__name__)


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
