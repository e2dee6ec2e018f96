"""The thread launcher: workers as threads of this process. For fast tests and debugging.

Every worker shares one `WorkerContext` (connections, data-plane loop, plan cache). Nothing is
isolated or enforced, and a task that never returns cannot be stopped: `stop` wakes workers that
wait for inputs and makes the others stop between tasks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence

from runtime.context import WorkerContext
from runtime.events import Listener
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.scripts import call_sync, push_call
from runtime.worker import STOP_SENTINEL, Worker

log = logging.getLogger(__name__)

STOP_JOIN_TIMEOUT_S = 30.0
"""How long `stop` waits for a run's worker threads to end."""

STOP_SENTINEL_TTL_S = 60
"""TTL of the stop sentinels pushed onto notify lists (the run is being deleted anyway)."""

THREAD_CONNECTIONS = 4096
"""Sync connections the workers' shared context may open: each worker thread blocked on its
notify list holds one (a process-per-worker launcher has one per process instead)."""


class ThreadLauncher:
    """Runs each started worker on a new daemon thread of this process."""

    name = "thread"

    def __init__(self, url: str, listeners: Sequence[Listener] = ()) -> None:
        self.ctx = WorkerContext(url, max_connections=THREAD_CONNECTIONS)
        self.listeners = list(listeners)
        self._lock = threading.Lock()
        self._threads: dict[str, list[tuple[WorkerSpec, threading.Thread]]] = {}
        self._stopped: set[str] = set()
        self.outcomes: dict[tuple[str, str], str] = {}
        """(dag id, worker id) -> outcome of every worker that ended."""

    def prewarm(self, configs: Mapping[tuple[int, float], int], modules: Sequence[str]) -> None:
        return None

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        for spec in specs:
            thread = threading.Thread(target=self._run, args=(spec,), daemon=True,
                                      name=f"planflow-{spec.worker_id}")
            with self._lock:
                if spec.dag_id in self._stopped:
                    continue
                self._threads.setdefault(spec.dag_id, []).append((spec, thread))
            thread.start()

    def _run(self, spec: WorkerSpec) -> None:
        worker = Worker(self.ctx, spec, launcher=self, listeners=self.listeners,
                        cancelled=lambda: spec.dag_id in self._stopped)
        try:
            outcome = worker.run()
        except Exception:
            log.exception("worker thread %s crashed", spec.worker_id)
            outcome = "crashed"
        with self._lock:
            self.outcomes[(spec.dag_id, spec.worker_id)] = outcome

    def join(self, dag_id: str, timeout_s: float = STOP_JOIN_TIMEOUT_S) -> None:
        """Wait for the run's worker threads to end (including ones started meanwhile)."""
        seen = 0
        while True:
            with self._lock:
                threads = list(self._threads.get(dag_id, []))
            if len(threads) == seen:
                return
            for _, thread in threads[seen:]:
                thread.join(timeout_s)
            seen = len(threads)

    def stop(self, dag_id: str) -> None:
        with self._lock:
            self._stopped.add(dag_id)
            threads = list(self._threads.get(dag_id, []))
        if threads:  # wake the waiting ones (guarded: writes nothing once the run is gone)
            keys = RunKeys(threads[0][0].namespace, dag_id)
            call_sync(self.ctx.redis, push_call(
                keys, [keys.notify(spec.worker_id) for spec, _ in threads], STOP_SENTINEL,
                STOP_SENTINEL_TTL_S))
        self.join(dag_id)
        with self._lock:
            self._threads.pop(dag_id, None)

    def close(self) -> None:
        with self._lock:
            dags = list(self._threads)
        for dag_id in dags:
            self.join(dag_id)
        self.ctx.close()
