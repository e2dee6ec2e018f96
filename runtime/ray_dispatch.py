"""The dispatcher of one `ray` run (`runtime.ray_launcher`): it owns the run's Ray work.

It submits the run's workers to pooled actors (`runtime.ray_pool`), pops the run's `launch`
list (`runtime.ray_requests`), holds the claim leases of workers Ray has not started yet,
relaunches at once a worker whose actor or task died (through the same compare-and-set RELAUNCH
as the pool server; `Death("oom")` moves it to the platform's next larger configuration), and
makes room for a worker whose new actor Ray cannot place: an actor of its key released meanwhile
takes it; after `PLACEMENT_WAIT_S` an idle actor of another key is evicted; with none and
workers waiting on their actors' CPUs (the launcher's `Gate` counts them), the worker runs as a
task reserving its memory and no CPUs, on the CPUs the waiting workers hold (the deadlock
breaker). It ends when the run's keys are gone.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metadata.connect import blocking_socket_timeout, sync_client
from runtime.defaults import CLAIM_GRACE_S
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.leases import LEASE_RENEW_S, Death, hold_call, relaunch_call, relaunch_spec
from runtime.ray_pool import Lease, waiter_key
from runtime.ray_requests import decode_requests
from runtime.scripts import call_sync

if TYPE_CHECKING:
    from runtime.ray_launcher import RayLauncher

log = logging.getLogger(__name__)

DISPATCH_SLICE_S = 0.2
"""Longest BLPOP of a run's dispatcher on its `launch` list; between slices it checks the run's
Ray tasks (finished, died) and the run's existence."""

STOP_WAIT_S = 30.0
"""How long `stop` waits for a run's cancelled Ray tasks to end."""

PLACING_SLICE_S = 0.02
"""The dispatcher's BLPOP slice while a worker waits for Ray to place its new actor: an actor of
its configuration released meanwhile is handed to it within this time."""

CREATE_GRACE_S = 0.05
"""How long a worker waits for a busy actor of its configuration to become idle before a new
actor is created for it (a worker that made it ready usually ends within milliseconds)."""

REAP_SLICE_S = 0.2
"""Longest `ray.wait` of the reaper on the run's calls (it returns as soon as one returns)."""

DRAIN_WAIT_S = 10.0
"""After the run ended, how long the reaper waits for calls still out (then kills their actors)."""

GATE_TIMEOUT_S = 2.0
"""Longest the dispatcher waits for the gate's count of waiting CPUs."""

PLACEMENT_WAIT_S = 2.0
"""How long a new actor may stay unplaced before its dispatcher makes room (evicts an idle actor
of another configuration) or, with workers waiting, starts its worker on borrowed CPUs."""


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
        self._wanting: list[tuple[WorkerSpec, float]] = []
        """Workers waiting (at most CREATE_GRACE_S) for a busy actor of their key to be idle."""
        self._done = threading.Event()
        self._ended = threading.Event()
        self._submitted = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, daemon=True,
                                        name=f"planflow-ray-reap-{keys.dag_id}")

    def submit(self, spec: WorkerSpec) -> None:
        key = self.pools.key_of(spec)
        lease = self.pools.take_idle(key)
        if lease is None and self.pools.busy(key) > 0:
            with self._lock:
                self._wanting.append((spec, time.monotonic()))
            return
        self._submit_on(spec, lease or self.pools.create(spec))

    def _serve_wanting(self) -> None:
        """Hand the waiting workers an actor released meanwhile, else (grace over, or no actor
        of their key busy any more) a new one."""
        with self._lock:
            wanting, self._wanting = self._wanting, []
        now = time.monotonic()
        for spec, since in wanting:
            key = self.pools.key_of(spec)
            lease = self.pools.take_idle(key)
            if lease is None and (now - since >= CREATE_GRACE_S or self.pools.busy(key) == 0):
                lease = self.pools.create(spec)
            if lease is None:
                with self._lock:
                    self._wanting.append((spec, since))
            else:
                self._submit_on(spec, lease)

    def _submit_on(self, spec: WorkerSpec, lease: Lease) -> None:
        ref = lease.actor.run.remote(self.launcher.url, spec.to_json(), self.launcher.gate)
        with self._lock:
            self._tasks[ref] = _Submitted(spec, lease)
        self._submitted.set()

    def _borrow(self, spec: WorkerSpec) -> None:
        ref = self.launcher._task.options(
            **borrowed_options(spec, self.launcher.runtime_env)
        ).remote(self.launcher.url, spec.to_json(), self.launcher.gate)
        with self._lock:
            self._tasks[ref] = _Submitted(spec, None)
        self._submitted.set()

    def run(self) -> None:
        next_hold = time.monotonic() + LEASE_RENEW_S
        self._reaper.start()
        try:
            while not self._done.is_set():
                slice_s = PLACING_SLICE_S if self._placing() else DISPATCH_SLICE_S
                got = self.redis.blpop([self.keys.launch()], timeout=slice_s)
                if got is not None:
                    for spec in decode_requests(got[1]):
                        self.submit(spec)
                self._serve_wanting()
                self._place()
                if time.monotonic() >= next_hold:
                    next_hold = time.monotonic() + LEASE_RENEW_S
                    if not self.redis.exists(self.keys.progress()):
                        return  # the run is over
                    self._hold()
        except Exception:  # the dispatcher's loop logs and ends; the lease check is the backstop
            log.exception("ray dispatcher of %s failed", self.keys.dag_id)
        finally:
            self._ended.set()
            self._submitted.set()
            self._reaper.join(DRAIN_WAIT_S + REAP_SLICE_S * 2)
            self.redis.close()

    def _reap_loop(self) -> None:
        """Reap each call the moment it returns (its actor is idle for the next worker at once);
        once the dispatcher ended, drain the calls still out for `DRAIN_WAIT_S`, then kill the
        actors of those that did not return (nothing of the run can use them)."""
        drain_until = None
        try:
            while True:
                with self._lock:
                    refs = list(self._tasks)
                if self._ended.is_set():
                    drain_until = drain_until or time.monotonic() + DRAIN_WAIT_S
                    if not refs or time.monotonic() > drain_until:
                        break
                if not refs:
                    self._submitted.wait(REAP_SLICE_S)
                    self._submitted.clear()
                    continue
                ready, _ = self.ray.wait(refs, num_returns=1, timeout=REAP_SLICE_S)
                if ready:
                    self._reap()
        except Exception:  # after the launcher closed (Ray shut down) this is expected
            (log.debug if self._done.is_set() else log.exception)(
                "ray reaper of %s failed", self.keys.dag_id, exc_info=True)
        with self._lock:
            left, self._tasks = list(self._tasks.values()), {}
        for done in left:
            if done.lease is not None:
                self.pools.discard(done.lease)

    def _reap(self) -> None:
        """Forget finished workers (their actor back to its pool); relaunch those that died."""
        with self._lock:
            refs = list(self._tasks)
        if not refs:
            return
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            with self._lock:
                done = self._tasks.pop(ref, None)
                withdrawn = ref in self._withdrawn
                if done is None:
                    continue
                self._withdrawn.discard(ref)
            try:
                self.ray.get(ref)
            except self.ray.exceptions.RayError as err:
                if withdrawn:
                    continue
                actor_died = isinstance(err, self.ray.exceptions.RayActorError)
                if actor_died:  # it may have died waiting: its CPUs are not idle any more
                    self.launcher.gate.forget.remote(waiter_key(done.spec))
                if done.lease is not None:
                    (self.pools.discard if actor_died else self.pools.release)(done.lease)
                death = death_of(err, self.ray)
                if death is not None and not self._done.is_set() and not self._ended.is_set():
                    self._relaunch(done.spec, death, err)
            else:
                if done.lease is not None and not withdrawn:
                    self.pools.release(done.lease)

    def _placing(self) -> bool:
        """Whether a worker waits for an actor: an idle one (`_wanting`), or its new one to be
        placed (an actor released meanwhile takes it)."""
        with self._lock:
            return bool(self._wanting) or any(
                d.lease is not None and d.lease.placing for d in self._tasks.values())

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
            if self._waiting_cpus() <= 0:
                continue  # the cluster is busy, not deadlocked: wait for Ray
            log.info("worker %s of %s: no room for its actor while workers wait; starting it "
                     "on their CPUs", done.spec.worker_id, self.keys.dag_id)
            self._withdraw(ref, done)
            self._borrow(done.spec)

    def _waiting_cpus(self) -> float:
        """CPUs held by actors whose worker waits (the gate's count; 0 when it cannot say)."""
        try:
            return float(self.ray.get(self.launcher.gate.waiting_cpus.remote(),
                                      timeout=GATE_TIMEOUT_S))
        except self.ray.exceptions.RayError:
            return 0.0

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
            waiting += [spec for spec, _ in self._wanting]
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
            self._wanting = []
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
