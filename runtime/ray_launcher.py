"""The ray launcher: each worker in a pooled Ray actor reserving its configuration's resources.

    planflow run flow.py --launcher ray                          # a local Ray instance
    planflow run flow.py --launcher ray --ray-address HOST:6379 --redis redis://HOST:6380/0

Ray places each worker's actor on whichever node has room for `num_cpus=<plan CPUs>` and
`memory=<plan MB> x 2^20` bytes; the call's arguments are the run's Redis URL and the worker's
spec, and the actor runs an ordinary `runtime.worker.Worker` against that Redis. Nothing else of
the protocol changes: values between workers go through the store (Ray's nodes are other hosts,
so the same-host shared-memory plane is off), and the dependency state, leases and relaunches
are the Redis ones.

**Who submits.** The run's client owns every Ray actor and task of the run: it submits the root
workers, and a dispatcher thread per run (`runtime.ray_dispatch`) pops the `launch` list on
which workers ask for the workers they made ready (`runtime.ray_requests` says why workers do
not submit tasks themselves). The dispatcher also

- holds (`runtime.leases.hold_call`) the claim leases of submitted workers that Ray has not
  started yet (waiting for a free CPU is not dying), and
- relaunches at once a worker whose actor or task died (its process was killed, its node lost, Ray's
  memory monitor killed it: `Death("oom")` then moves it to the platform's next larger
  configuration) through the same compare-and-set RELAUNCH as the pool server; the client's
  lease check stays the backstop (a dispatcher cannot see a stuck worker), and the crash budgets
  are those of `runtime.leases`. Ray's own restarts and retries are off (`max_restarts=0`,
  `max_task_retries=0`, `max_retries=0`): a rerun of the same generation would race the
  relaunched one.

**Warm pools.** Each worker runs in a pooled actor of its configuration
(`runtime.ray_pool`): the most recently idle actor of its (CPUs, memory, runtime environment)
key when there is one (a warm start), else a new actor (a cold start); an actor is killed once
idle for the platform's `keep_warm_s`. The worker's metrics record says warm or cold beside its
request-to-start time - what the planner learns the cluster's start-up costs from. A dead actor
(SIGKILLed process, lost node, Ray's memory monitor) is forgotten, and its worker relaunched on
a new one.

**Waiting workers must not deadlock the cluster.** An actor holds its CPUs while its worker
waits for a task's remote inputs (Ray lends CPUs back only for blocked tasks), so with every CPU
held by waiting workers whose inputs come from a worker Ray cannot place, a run would wait
forever. The launcher's `Gate` (one async actor, no CPU) counts the CPUs of actors whose worker
waits; a new actor still unplaced after `PLACEMENT_WAIT_S` first makes room by evicting an idle
actor of another key and, when there is none and workers are waiting, is withdrawn and its worker
started as a plain Ray task reserving its memory and *no* CPUs: it borrows the waiting workers'
(the `Lender` below then lends nothing back, having nothing reserved). Memory stays reserved:
a waiting worker keeps its values.

**Requirements.** A plan's pinned requirements become the actors' and borrowed tasks'
`runtime_env={"pip": [...]}` (`runtime.ray_pool.runtime_env_for`): Ray builds the environment on
each node once per set.

**Which Ray.** An explicit address (`--ray-address`, else `RAY_ADDRESS`) joins that cluster;
none starts a local instance for the run, shut down when the launcher closes. A process already
connected to Ray (a test, a benchmark, a notebook) is used as it is and left connected. With an
explicit address a `unix://` Redis is refused: the other nodes cannot reach a socket file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from metadata.errors import redact_url
from planner.errors import UsageError
from runtime.context import WorkerContext
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.ray_dispatch import _RunDispatcher
from runtime.ray_pool import SWEEP_SLICE_S, ActorPools, runtime_env_for
from runtime.worker import WORKER_SWITCH_INTERVAL_S, Worker

log = logging.getLogger(__name__)

RAY_INSTALL_HINT = "pip install 'planflow[ray]'"
"""What to install when Ray is missing."""

RAY_ADDRESS_ENV = "RAY_ADDRESS"
"""Ray's own variable naming the cluster to join."""

LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
"""Object store of a local Ray instance started for a run: planflow moves values through Redis,
so Ray's store only carries task arguments and outcomes (Ray's default takes 30% of RAM)."""

RESOURCE_DIGITS = 4
"""Ray accepts resource quantities to 1/10,000 of a unit."""

KEEP_WARM_S = 60.0
"""Keep-warm time of pooled actors when the launcher is not given the platform's."""

LEND_SLICE_S = 1.0
"""One pause of the Gate while a worker waits for inputs (cancelled when the wait ends); also
how long the main thread sleeps between checks while the worker runs."""

_CONTEXTS: dict[str, WorkerContext] = {}
"""Per Ray worker process: the WorkerContext of each Redis URL (warm starts reuse it)."""

_CONTEXTS_LOCK = threading.Lock()


def import_ray() -> Any:
    """The `ray` module, or a UsageError naming the extra to install."""
    try:
        import ray
    except ImportError as err:
        raise UsageError(
            f"the ray launcher needs Ray, which is not installed ({err}); {RAY_INSTALL_HINT}"
        ) from None
    return ray


class Gate:
    """An async actor (no CPU): a borrowed task's waiting worker blocks on its `pause`, so that
    Ray sees the task blocked; pooled actors whose worker waits count their CPUs in and out
    (`enter`, `leave`, by `ray_pool.waiter_key`), which the dispatchers read (`waiting_cpus`)
    before borrowing them.

    Ray does not keep the order of an async actor's calls, so each carries its waiter's
    sequence number and only the newest counts (a `leave` overtaken by its `enter` still wins).
    An actor that dies while its worker waits never leaves: its dispatcher `forget`s the
    worker's generation, after which nothing of that generation counts."""

    def __init__(self) -> None:
        self._waiting: dict[str, float] = {}
        self._newest: dict[str, int] = {}

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def enter(self, key: str, cpus: float, seq: int) -> None:
        if self._newer(key, seq):
            self._waiting[key] = cpus

    async def leave(self, key: str, seq: int) -> None:
        if self._newer(key, seq):
            self._waiting.pop(key, None)

    async def forget(self, key: str) -> None:
        self._newer(key, sys.maxsize)
        self._waiting.pop(key, None)

    async def waiting_cpus(self) -> float:
        return sum(self._waiting.values())

    async def waiters(self) -> dict[str, float]:
        """CPUs of every waiting worker generation, by key (for tests and debugging)."""
        return dict(self._waiting)

    def _newer(self, key: str, seq: int) -> bool:
        if seq <= self._newest.get(key, 0):
            return False
        self._newest[key] = seq
        return True


class Lender:
    """Lends a worker task's CPUs back to Ray while its worker waits for inputs.

    Ray releases a task's CPUs only while the task's *main* thread is blocked in `ray.get` (a
    helper thread's get does not count), so the worker runs on a helper thread and the main
    thread blocks on the gate's pauses whenever the worker is `waiting`."""

    def __init__(self, gate: Any) -> None:
        self.gate = gate
        self._lock = threading.Lock()
        self._waiting = False
        self._pause: Any = None
        self._changed = threading.Event()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        with self._lock:
            self._waiting = True
        self._changed.set()
        try:
            yield
        finally:
            with self._lock:
                self._waiting = False
                pause, self._pause = self._pause, None
            if pause is not None:  # wake the main thread: the worker needs its CPUs back
                with contextlib.suppress(Exception):
                    import ray

                    ray.cancel(pause)

    def wake(self) -> None:
        """Wake the main thread's loop (the worker ended)."""
        self._changed.set()

    def serve(self, worker: threading.Thread) -> None:
        """The main thread's loop until `worker` ends."""
        import ray

        gate_lost = False
        while worker.is_alive():
            self._changed.clear()  # before reading the state: a change after it wakes the wait
            with self._lock:
                lend = self._waiting and not gate_lost
                pause = self._pause = self.gate.pause.remote(LEND_SLICE_S) if lend else None
            if pause is None:
                self._changed.wait(LEND_SLICE_S)
                continue
            try:
                ray.get(pause, timeout=LEND_SLICE_S * 2)
            except ray.exceptions.RayActorError:
                gate_lost = True  # its launcher closed: the worker keeps its CPUs from now on
            except ray.exceptions.RayError:
                continue  # cancelled (the wait ended) or timed out


def run_worker(url: str, spec_json: str, gate: Any) -> str:
    """The body of a worker's Ray task: run the worker (on a helper thread, see `Lender`),
    return its outcome."""
    with _CONTEXTS_LOCK:
        ctx = _CONTEXTS.get(url)
        cold = ctx is None
        if ctx is None:
            sys.setswitchinterval(WORKER_SWITCH_INTERVAL_S)
            ctx = _CONTEXTS[url] = WorkerContext(url)
    lender = Lender(gate)
    ctx.waiting = lender.waiting
    outcome: list[str] = []
    spec = WorkerSpec.from_json(spec_json)

    def work() -> None:
        try:
            outcome.append(Worker(ctx, spec, cold=cold).run())
        finally:
            lender.wake()  # the task returns (and frees its CPUs) at once

    thread = threading.Thread(target=work, name=f"planflow-{spec.worker_id}")
    thread.start()
    lender.serve(thread)
    thread.join()
    if not outcome:
        raise RuntimeError(f"worker {spec.worker_id} of {spec.dag_id} crashed (see its log)")
    return outcome[0]


class RayLauncher:
    """Starts runs' workers in pooled Ray actors; owns them, its pools, and the local Ray
    instance if any."""

    name = "ray"

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        keep_warm_s: float = KEEP_WARM_S,
        requirements: Sequence[str] = (),
    ) -> None:
        self.ray = import_ray()
        remote = address or os.environ.get(RAY_ADDRESS_ENV)
        if remote and url.startswith("unix"):
            raise UsageError(
                f"the run's Redis {redact_url(url)} is a Unix socket, which the "
                f"nodes of the Ray cluster at {remote} cannot reach; start Redis "
                "where every node reaches it and pass --redis redis://HOST:PORT"
            )
        self.url = url
        self.namespace = namespace
        self.owns_ray = False
        if not self.ray.is_initialized():
            if remote:
                self.ray.init(address=remote, log_to_driver=False)
            else:
                self.ray.init(
                    num_cpus=num_cpus or os.cpu_count() or 1,
                    include_dashboard=False,
                    log_to_driver=False,
                    object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                )
                self.owns_ray = True
        self._task = self.ray.remote(run_worker)
        self.gate = self.ray.remote(num_cpus=0)(Gate).remote()
        self.runtime_env = runtime_env_for(requirements)
        self.pools = ActorPools(self.ray, keep_warm_s, self.runtime_env)
        self._lock = threading.Lock()
        self._runs: dict[str, _RunDispatcher] = {}
        self._closed = threading.Event()
        self._janitor = threading.Thread(target=self._sweep, daemon=True, name="planflow-ray-pools")
        self._janitor.start()

    def _sweep(self) -> None:
        """Kill pooled actors idle past the keep-warm time, until the launcher closes."""
        while not self._closed.wait(SWEEP_SLICE_S):
            try:
                self.pools.sweep()
            except Exception:  # a lost cluster: close() will say so
                log.debug("sweeping the ray actor pools failed", exc_info=True)

    def prewarm(self, configs: Mapping[tuple[int, float], int], modules: Sequence[str]) -> None:
        """Refuse a plan whose configurations fit no node (its tasks would wait forever)."""
        nodes = [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]
        for memory_mb, cpus in sorted(configs):
            if not any(
                r.get("CPU", 0) >= round(cpus, RESOURCE_DIGITS)
                and r.get("memory", 0) >= memory_mb * 2**20
                for r in nodes
            ):
                largest = max(
                    ((r.get("CPU", 0), r.get("memory", 0) // 2**20) for r in nodes), default=(0, 0)
                )
                raise UsageError(
                    f"no node of the Ray cluster fits a worker of {memory_mb} MB and {cpus:g} "
                    f"CPUs (the largest has {largest[0]:g} CPUs, {largest[1]:.0f} MB); compile "
                    "for a platform whose configurations fit (e.g. simulator/platforms/ray.toml)"
                )

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        for spec in specs:
            self._dispatcher(spec.namespace, spec.dag_id).submit(spec)

    def stop(self, dag_id: str) -> None:
        with self._lock:
            run = self._runs.pop(dag_id, None)
        if run is not None:
            run.cancel()

    def close(self) -> None:
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            run.finish()
        self._closed.set()
        self.pools.close()
        with contextlib.suppress(Exception):  # a lost cluster has no gate left to stop
            self.ray.kill(self.gate)
        if self.owns_ray:
            self.ray.shutdown()
            self.owns_ray = False

    def _dispatcher(self, namespace: str, dag_id: str) -> _RunDispatcher:
        with self._lock:
            run = self._runs.get(dag_id)
            if run is None or not run.is_alive():
                run = self._runs[dag_id] = _RunDispatcher(self, RunKeys(namespace, dag_id))
                run.start()
            return run
