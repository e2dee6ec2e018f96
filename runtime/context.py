"""What a worker process keeps between the workers it runs (a warm process reuses all of it):
Redis connections, the data-plane loop, the shared part of recent runs' plans, metrics stores,
and the launcher clients workers use to start each other.

The shared part of a run is downloaded once per process and cached, so a warm process that runs
a second worker of the same run fetches only that worker's program.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from metadata.connect import SYNC_MAX_CONNECTIONS, sync_client
from metadata.store import MetricsStore
from runtime.codec import loads_blob
from runtime.dataplane import IoLoop
from runtime.keys import RunKeys
from runtime.launcher import Launcher
from runtime.program import SharedPart, TaskStep, WorkerProgram, decode_program
from runtime.scripts import BatchUpdate, batch_call, call_sync, is_noscript, queue_call

log = logging.getLogger(__name__)

SHARED_CACHE_RUNS = 4
"""Runs whose shared plan part a process keeps decoded (least recently used dropped)."""

SOCKET_TIMEOUT_S = 60.0
"""Longest one command on the worker's sync connection may take (blocking waits are shorter)."""


class PlanLoadError(Exception):
    """A worker's plan could not be decoded here (a module its code needs is missing, another
    Python version...). `step` is the worker's first task when its program was readable."""

    def __init__(self, step: TaskStep | None, cause: BaseException) -> None:
        super().__init__(f"cannot load the plan's code: {type(cause).__name__}: {cause}")
        self.step = step
        self.cause = cause


@dataclass(frozen=True, slots=True)
class Download:
    """A worker's plan: the run's shared part and its own program, and what fetching cost."""

    shared: SharedPart
    program: WorkerProgram
    seconds: float
    nbytes: int
    cached: bool


class WorkerContext:
    """Per-process (or per thread launcher) resources of workers. Thread-safe."""

    def __init__(self, url: str, *, max_connections: int = SYNC_MAX_CONNECTIONS) -> None:
        self.url = url
        self.redis = sync_client(url, socket_timeout=SOCKET_TIMEOUT_S,
                                 max_connections=max_connections)
        self._io: IoLoop | None = None
        self._lock = threading.Lock()
        self._shared: OrderedDict[str, SharedPart] = OrderedDict()
        self._stores: dict[str, MetricsStore] = {}
        self._launchers: dict[tuple[str, str, str], Launcher] = {}
        self.waiting: Callable[[], contextlib.AbstractContextManager[None]] = \
            contextlib.nullcontext
        """Entered while a worker waits for a task's remote inputs: a Ray worker lends its CPU
        reservation back to Ray meanwhile (`runtime.ray_launcher`), so workers waiting for
        each other cannot hold every CPU of the cluster."""

    @property
    def io(self) -> IoLoop:
        with self._lock:
            if self._io is None:
                self._io = IoLoop(self.url)
            return self._io

    def download(self, keys: RunKeys, worker_id: str) -> Download | None:
        """The worker's plan, or None when the run no longer exists (finished or cancelled).
        The same round trip counts the worker as running (BATCH with running +1)."""
        t0 = time.perf_counter()
        with self._lock:
            shared = self._shared.get(keys.dag_id)
        names = [keys.worker_program(worker_id)] + ([keys.shared()] if shared is None else [])
        announce = batch_call(keys, BatchUpdate(running=1), 1)
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("MGET", *names)  # one slot; cluster pipelines refuse .mget
        queue_call(pipe, announce)
        found, reply = pipe.execute(raise_on_error=False)
        if is_noscript(reply):
            call_sync(self.redis, announce)
        elif isinstance(reply, Exception):
            raise reply
        raws = [r for r in found if isinstance(r, bytes)]
        if len(raws) != len(found):
            return None
        try:
            program = decode_program(raws[0])
        except Exception as err:
            raise PlanLoadError(None, err) from err
        if shared is None:
            try:
                shared = loads_blob(raws[1])
            except Exception as err:  # typically a module the functions need is missing here
                raise PlanLoadError(program.steps[0], err) from err
            with self._lock:
                self._shared[keys.dag_id] = shared
                while len(self._shared) > SHARED_CACHE_RUNS:
                    self._shared.popitem(last=False)
        nbytes = sum(len(r) for r in raws)
        return Download(shared, program, time.perf_counter() - t0, nbytes, len(raws) == 1)

    def metrics_store(self, namespace: str) -> MetricsStore:
        with self._lock:
            store = self._stores.get(namespace)
            if store is None:
                store = self._stores[namespace] = MetricsStore(self.url, namespace)
            return store

    def launcher(self, name: str, namespace: str, env: str = "") -> Launcher:
        """The launcher client a worker of a `name` run uses to start other workers (through
        the pools of worker environment `env`)."""
        with self._lock:
            found = self._launchers.get((name, namespace, env))
            if found is None:
                if name == "local":
                    from runtime.pool_client import PoolClient

                    found = PoolClient(self.redis, namespace, env)
                elif name == "ray":
                    from runtime.ray_requests import RayRequests

                    found = RayRequests(self.redis, namespace)
                else:
                    raise ValueError(f"launcher '{name}' cannot be used from a worker process")
                self._launchers[(name, namespace, env)] = found
            return found

    def close(self) -> None:
        with self._lock:
            io, self._io = self._io, None
            stores, self._stores = list(self._stores.values()), {}
        if io is not None:
            io.close()
        for store in stores:
            store.close()
        self.redis.close()
