"""What the pool server does when a worker process dies mid-worker: relaunch it, or fail the run.

The server reaps its children, so it is the first to know of a death and knows why: an OOM kill
at the cgroup memory limit, its own kill of an attempt past the task's `timeout_s`, or any other
signal or exit (`runtime.leases` has the policy and its budgets). For every death it:

1. records the attempt that was cut short as a failed `TaskRecord` in the metrics store (the
   child's status slot says which task, since when, on which input: `runtime.child.Running`),
   so `planflow metrics` shows timeouts and OOM kills like any failure, and a killed attempt
   leaves a trace even though its own process never flushed anything;
2. relaunches the worker (RELAUNCH, a compare-and-set on the lease generation: whoever notices
   first wins) while the budget allows - after an OOM kill on the platform's next larger
   configuration;
3. otherwise writes the worker's error record through the same atomic ERROR call a failing task
   uses, naming the task, how the process died and the limit it hit, so the client never waits
   for a dead worker.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time

import redis

from metadata.records import TaskRecord
from metadata.store import MetricsStore
from runtime.child import Running, stderr_path
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.leases import Death, relaunch_call, relaunch_spec
from runtime.scripts import call_sync, error_call
from runtime.worker import stderr_tail

log = logging.getLogger(__name__)

RECORD_TTL_S = 3600
"""TTL of the error records and relaunch entries the server writes (the client deletes them
earlier)."""


class DeathHandler:
    """The pool server's reaction to the deaths of its children (one per server)."""

    def __init__(self, client: redis.Redis, url: str, pool_id: str) -> None:
        self.redis = client
        self.url = url
        self.pool_id = pool_id
        self._stores: dict[str, MetricsStore] = {}

    def handle(self, spec: WorkerSpec, pid: int, status: int, running: Running, oom: bool,
               timed_out: Death | None) -> WorkerSpec | None:
        """React to the death of process `pid` (wait status `status`) running `spec`; returns
        the spec to start again when this server won the relaunch."""
        death = timed_out or Death("oom" if oom else "crash", running.task_id)
        self._record_attempt(spec, pid, status, running, oom, death)
        keys = RunKeys(spec.namespace, spec.dag_id)
        try:
            new = relaunch_spec(spec, death)
            if new is not None:
                if int(call_sync(self.redis, relaunch_call(keys, spec, new, death,
                                                           RECORD_TTL_S))):
                    log.warning("pool %s: worker %s of %s died (%s); relaunched as generation "
                                "%d at %d MB", self.pool_id, spec.worker_id, spec.dag_id,
                                death.reason, new.attempt, new.memory_mb)
                    return new
                return None  # relaunched by whoever noticed first, or the run is over
            task_id, record = death_record(spec, pid, status, running, oom,
                                           timed_out=timed_out is not None)
            log.error("pool %s: %s (run %s)", self.pool_id, record, spec.dag_id)
            call_sync(self.redis, error_call(keys, task_id, record, RECORD_TTL_S))
        except redis.RedisError as err:
            log.error("pool %s: cannot handle the death of %s: %s", self.pool_id,
                      spec.worker_id, err)
        return None

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()

    def _record_attempt(self, spec: WorkerSpec, pid: int, status: int, running: Running,
                        oom: bool, death: Death) -> None:
        record = killed_attempt(spec, pid, status, running, oom, death, time.time())
        if record is None:
            return
        try:
            store = self._stores.get(spec.namespace)
            if store is None:
                store = self._stores[spec.namespace] = MetricsStore(self.url, spec.namespace)
            store.write([record])
        except Exception as err:  # metrics never stop the handling of a death
            log.warning("pool %s: cannot record the killed attempt of %s: %s", self.pool_id,
                        running.task_id, err)


def killed_attempt(spec: WorkerSpec, pid: int, status: int, running: Running, oom: bool,
                   death: Death, now: float) -> TaskRecord | None:
    """The failed TaskRecord of the attempt a death cut short (None: no task was running, or
    the slot did not say enough to name its function)."""
    if not running.task_id or not running.function_key or running.started_at <= 0:
        return None
    return TaskRecord(
        run_id=spec.dag_id, task_id=running.task_id, function_key=running.function_key,
        function_name=running.function, worker_id=spec.worker_id, memory_mb=spec.memory_mb,
        cpus=spec.cpus, attempt=running.attempt, started_at=running.started_at,
        input_bytes=running.input_bytes, fetch_s=0.0,
        exec_s=max(0.0, now - running.started_at), output_bytes=0, upload_s=0.0, update_s=0.0,
        invoke_s=0.0, ok=False, error=": ".join(_death_message(spec, pid, status, running, oom,
                                                               death.reason == "timeout")))


def death_record(spec: WorkerSpec, pid: int, status: int, running: Running, oom: bool,
                 timed_out: bool = False) -> tuple[str, str]:
    """(task id, error record JSON) for a process that died running `spec` (`status`: its wait
    status; `timed_out`: killed by the server past the task's deadline)."""
    exc_type, message = _death_message(spec, pid, status, running, oom, timed_out)
    died = spec.deaths_of(running.task_id)
    if not timed_out and died:
        message += f" ({died + 1} times running this task; relaunches exhausted)"
    task_id = running.task_id or spec.worker_id
    return task_id, json.dumps({
        "task_id": task_id, "function": running.function or "?", "attempt": running.attempt,
        "exc_type": exc_type, "message": message, "traceback": "",
        "worker_id": spec.worker_id, "generation": spec.attempt,
        "stderr_tail": stderr_tail(stderr_path(pid)), "at": time.time()})


def pool_failure_record(spec: WorkerSpec, pool_id: str, err: BaseException,
                        log_path: str) -> tuple[str, str]:
    """(task id, error record JSON) failing `spec`'s run because its pool server broke down."""
    return spec.worker_id, json.dumps({
        "task_id": spec.worker_id, "function": "?", "attempt": 1, "kind": "worker",
        "exc_type": "PoolFailed",
        "message": f"the local pool server {pool_id} failed ({type(err).__name__}: {err}) and "
                   f"retired its workers; see {log_path}",
        "traceback": "", "worker_id": spec.worker_id, "generation": spec.attempt,
        "stderr_tail": "", "at": time.time()})


def _death_message(spec: WorkerSpec, pid: int, status: int, running: Running, oom: bool,
                   timed_out: bool) -> tuple[str, str]:
    """(exception type name, message) saying how the process died."""
    if timed_out:
        return "TaskTimeout", (f"task {running.task_id} ran past its timeout (attempt "
                               f"{running.attempt} of {running.max_attempts}); worker "
                               f"{spec.worker_id} (pid {pid}) was killed")
    if os.WIFSIGNALED(status):
        how = f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    else:
        how = f"exited with status {os.WEXITSTATUS(status)}"
    message = f"worker {spec.worker_id} (pid {pid}) {how}"
    if oom:
        message += f" after reaching its memory limit of {spec.memory_mb} MB"
    return "WorkerDied", message
