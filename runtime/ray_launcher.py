"""The ray launcher: each worker a Ray task reserving its configuration's CPUs and memory.

    planflow run flow.py --launcher ray                          # a local Ray instance
    planflow run flow.py --launcher ray --ray-address HOST:6379 --redis redis://HOST:6380/0

Ray places each worker on whichever node has room for `num_cpus=<plan CPUs>` and
`memory=<plan MB> x 2^20` bytes; the task's arguments are the run's Redis URL and the worker's
spec, and the task runs an ordinary `runtime.worker.Worker` against that Redis. Nothing else of
the protocol changes: values between workers go through the store (Ray's nodes are other hosts,
so the same-host shared-memory plane is off), and the dependency state, leases and relaunches
are the Redis ones.

**Who submits.** The run's client owns every Ray task of the run: it submits the root workers,
and a dispatcher thread per run pops the `launch` list on which workers ask for the workers
they made ready (`runtime.ray_requests` says why workers do not submit tasks themselves). The
dispatcher also

- holds (`runtime.leases.hold_call`) the claim leases of submitted workers that Ray has not
  started yet (waiting for a free CPU is not dying), and
- relaunches at once a worker whose task died (its process was killed, its node lost, Ray's
  memory monitor killed it: `Death("oom")` then moves it to the platform's next larger
  configuration) through the same compare-and-set RELAUNCH as the pool server; the client's
  lease check stays the backstop (a dispatcher cannot see a stuck worker), and the crash budgets
  are those of `runtime.leases`. Ray's own task retries are off (`max_retries=0`): a rerun of the
  same generation would race the relaunched one.

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
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from metadata.connect import blocking_socket_timeout, sync_client
from metadata.errors import redact_url
from planner.errors import UsageError
from runtime.context import WorkerContext
from runtime.defaults import CLAIM_GRACE_S
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.leases import LEASE_RENEW_S, Death, hold_call, relaunch_call, relaunch_spec
from runtime.ray_pool import SWEEP_SLICE_S, ActorPools, Lease, runtime_env_for
from runtime.ray_requests import decode_requests
from runtime.scripts import call_sync
from runtime.worker import WORKER_SWITCH_INTERVAL_S, Worker

log = logging.getLogger(__name__)

RAY_INSTALL_HINT = "pip install 'planflow[ray]'"
"""What to install when Ray is missing."""

RAY_ADDRESS_ENV = "RAY_ADDRESS"
"""Ray's own variable naming the cluster to join."""

DISPATCH_SLICE_S = 0.2
"""Longest BLPOP of a run's dispatcher on its `launch` list; between slices it checks the run's
Ray tasks (finished, died) and the run's existence."""

STOP_WAIT_S = 30.0
"""How long `stop` waits for a run's cancelled Ray tasks to end."""

LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
"""Object store of a local Ray instance started for a run: planflow moves values through Redis,
so Ray's store only carries task arguments and outcomes (Ray's default takes 30% of RAM)."""

RESOURCE_DIGITS = 4
"""Ray accepts resource quantities to 1/10,000 of a unit."""

KEEP_WARM_S = 60.0
"""Keep-warm time of pooled actors when the launcher is not given the platform's."""

PLACING_SLICE_S = 0.02
"""The dispatcher's BLPOP slice while a worker waits for Ray to place its new actor: an actor of
its configuration released meanwhile is handed to it within this time."""

PLACEMENT_WAIT_S = 2.0
"""How long a new actor may stay unplaced before its dispatcher makes room (evicts an idle actor
of another configuration) or, with workers waiting, starts its worker on borrowed CPUs."""

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
    (`enter`, `leave`), which the dispatchers read (`waiting_cpus`) before borrowing them."""

    def __init__(self) -> None:
        self._waiting = 0.0

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def enter(self, cpus: float) -> None:
        self._waiting += cpus

    async def leave(self, cpus: float) -> None:
        self._waiting = max(0.0, self._waiting - cpus)

    async def waiting_cpus(self) -> float:
        return self._waiting


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


def borrowed_options(spec: WorkerSpec, runtime_env: dict[str, Any] | None) -> dict[str, Any]:
    """A borrowed worker's Ray task (module docstring): its memory, no CPUs of its own."""
    options: dict[str, Any] = {
        "num_cpus": 0,
        "memory": spec.memory_mb * 2**20,
        "name": f"planflow:{spec.worker_id}",
        "max_retries": 0,
    }
    if runtime_env is not None:
        options["runtime_env"] = runtime_env
    return options


def death_of(err: BaseException, ray: Any) -> Death | None:
    """Why a worker's task or actor ended without an outcome; None for a cancellation."""
    if isinstance(err, ray.exceptions.TaskCancelledError):
        return None
    if isinstance(err, ray.exceptions.OutOfMemoryError) or "OutOfMemory" in str(err):
        return Death("oom")
    return Death("crash")


class RayLauncher:
    """Starts a run's workers as Ray tasks; owns them, and the local Ray instance if any."""

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


@dataclass
class _Submitted:
    """One submitted worker: its spec, and its pooled actor (None: a borrowed task)."""

    spec: WorkerSpec
    lease: Lease | None


class _RunDispatcher(threading.Thread):
    """One run's Ray work: submits its workers to pooled actors, pops the run's `launch` list,
    holds the claim leases of workers not yet started, relaunches workers that died, makes room
    for actors Ray cannot place. Ends when the run's keys are gone."""

    def __init__(self, launcher: RayLauncher, keys: RunKeys) -> None:
        super().__init__(daemon=True, name=f"planflow-ray-{keys.dag_id}")
        self.launcher = launcher
        self.ray = launcher.ray
        self.pools = launcher.pools
        self.keys = keys
        self.redis = sync_client(
            launcher.url, socket_timeout=blocking_socket_timeout(DISPATCH_SLICE_S)
        )
        self._lock = threading.Lock()
        self._tasks: dict[Any, _Submitted] = {}
        """Submitted workers not known to have ended (ObjectRef of their call -> what)."""
        self._withdrawn: set[Any] = set()
        """Calls of actors killed before they were placed (their worker went to a borrowed task)."""
        self._done = threading.Event()

    def submit(self, spec: WorkerSpec) -> None:
        self._submit_on(spec, self.pools.acquire(spec))

    def _submit_on(self, spec: WorkerSpec, lease: Lease) -> None:
        ref = lease.actor.run.remote(self.launcher.url, spec.to_json(), self.launcher.gate)
        with self._lock:
            self._tasks[ref] = _Submitted(spec, lease)

    def _borrow(self, spec: WorkerSpec) -> None:
        ref = self.launcher._task.options(
            **borrowed_options(spec, self.launcher.runtime_env)
        ).remote(self.launcher.url, spec.to_json(), self.launcher.gate)
        with self._lock:
            self._tasks[ref] = _Submitted(spec, None)

    def run(self) -> None:
        next_hold = time.monotonic() + LEASE_RENEW_S
        try:
            while not self._done.is_set():
                slice_s = PLACING_SLICE_S if self._placing() else DISPATCH_SLICE_S
                got = self.redis.blpop([self.keys.launch()], timeout=slice_s)
                if got is not None:
                    for spec in decode_requests(got[1]):
                        self.submit(spec)
                self._reap()
                self._place()
                if time.monotonic() >= next_hold:
                    next_hold = time.monotonic() + LEASE_RENEW_S
                    if not self.redis.exists(self.keys.progress()):
                        return  # the run is over
                    self._hold()
        except Exception:  # the dispatcher's loop logs and ends; the lease check is the backstop
            log.exception("ray dispatcher of %s failed", self.keys.dag_id)
        finally:
            self.redis.close()

    def _reap(self) -> None:
        """Forget finished workers (their actor back to its pool); relaunch those that died."""
        with self._lock:
            refs = list(self._tasks)
        if not refs:
            return
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            with self._lock:
                done = self._tasks.pop(ref)
                withdrawn = ref in self._withdrawn
                self._withdrawn.discard(ref)
            try:
                self.ray.get(ref)
            except self.ray.exceptions.RayError as err:
                if withdrawn:
                    continue
                actor_died = isinstance(err, self.ray.exceptions.RayActorError)
                if done.lease is not None:
                    (self.pools.discard if actor_died else self.pools.release)(done.lease)
                death = death_of(err, self.ray)
                if death is not None and not self._done.is_set():
                    self._relaunch(done.spec, death, err)
            else:
                if done.lease is not None and not withdrawn:
                    self.pools.release(done.lease)

    def _placing(self) -> bool:
        """Whether a worker waits for its new actor (an actor released meanwhile takes it)."""
        with self._lock:
            return any(d.lease is not None and d.lease.placing for d in self._tasks.values())

    def _place(self) -> None:
        """Workers whose new actor Ray has not placed yet: move to an idle actor of their key
        when one was released meanwhile; after `PLACEMENT_WAIT_S`, evict an idle actor of
        another configuration, else (workers waiting on their CPUs) borrow those CPUs."""
        now = time.monotonic()
        with self._lock:
            placing = [(ref, d) for ref, d in self._tasks.items()
                       if d.lease is not None and d.lease.placing and ref not in self._withdrawn]
        for ref, done in placing:
            lease = done.lease
            assert lease is not None
            placed, _ = self.ray.wait([lease.ready], timeout=0)
            if placed:
                lease.placing = False
                continue
            idle = self.pools.take_idle(lease.key)
            if idle is not None:
                self._withdraw(ref, done)
                self._submit_on(done.spec, idle)
                continue
            if now - lease.since < PLACEMENT_WAIT_S:
                continue
            lease.since = now
            if self.pools.evict_other(lease.key):
                continue
            if self.ray.get(self.launcher.gate.waiting_cpus.remote()) <= 0:
                continue  # the cluster is busy, not deadlocked: wait for Ray
            log.info("worker %s of %s: no room for its actor while workers wait; starting it "
                     "on their CPUs", done.spec.worker_id, self.keys.dag_id)
            self._withdraw(ref, done)
            self._borrow(done.spec)

    def _withdraw(self, ref: Any, done: _Submitted) -> None:
        """Kill a worker's unplaced actor; its call is reaped (and ignored) once the kill lands."""
        with self._lock:
            self._withdrawn.add(ref)
        assert done.lease is not None
        self.pools.discard(done.lease)

    def _relaunch(self, spec: WorkerSpec, death: Death, err: BaseException) -> None:
        new = relaunch_spec(spec, death)
        if new is None:
            return  # budget spent: its lease expires and the client fails the run, naming it
        if int(
            call_sync(
                self.redis, relaunch_call(self.keys, spec, new, death, self.ttl_s(), CLAIM_GRACE_S)
            )
        ):
            log.warning(
                "worker %s of %s died on Ray (%s: %s); relaunching it (generation %d)",
                spec.worker_id,
                self.keys.dag_id,
                type(err).__name__,
                str(err).splitlines()[0] if str(err) else "",
                new.attempt,
            )
            self.submit(new)

    def _hold(self) -> None:
        """Renew the claim leases of submitted workers still waiting for Ray to run them (HOLD
        leaves the leases of running workers, which renew their own, untouched)."""
        with self._lock:
            waiting = [d.spec for ref, d in self._tasks.items() if ref not in self._withdrawn]
        if waiting:
            call_sync(self.redis, hold_call(self.keys, waiting, self.ttl_s()))

    def ttl_s(self) -> int:
        """TTL of keys the dispatcher's scripts may refresh: the run's own keys' (read once)."""
        ttl = int(self.redis.ttl(self.keys.progress()))
        return max(ttl, 1)

    def cancel(self) -> None:
        """Stop dispatching, stop every worker of the run (kill its actor, cancel its borrowed
        task), wait until they ended."""
        self.finish()
        with self._lock:
            items = list(self._tasks.items())
        for ref, done in items:
            if done.lease is not None:
                self.pools.discard(done.lease)
            else:
                self.ray.cancel(ref, force=True)
        refs = [ref for ref, _ in items]
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=STOP_WAIT_S)

    def finish(self) -> None:
        """Stop dispatching (the workers already submitted go on)."""
        self._done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(DISPATCH_SLICE_S * 10)
