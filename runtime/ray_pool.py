"""Warm Ray actors per resource configuration: the ray launcher's pools (`runtime.ray_launcher`).

A worker of a `ray` run runs in a `WorkerHost` actor that reserves its configuration's CPUs
(`num_cpus`) and memory (`memory=`, bytes) for as long as the actor lives. Actors are pooled
per `PoolKey` (CPUs, memory, runtime environment):

- **acquire**: a worker takes the most recently idle actor of its key (a *warm* start: the
  actor process keeps its `WorkerContext` - connections, data-plane loop, the decoded shared
  part of recent runs); with none idle a new actor is created (a *cold* start: a Ray worker
  process, planflow's imports, new connections). While another actor of its key is busy, the
  dispatcher first waits `CREATE_GRACE_S` for it (`runtime.ray_dispatch`): a worker that made
  the next one ready usually ends a moment later, and its actor is then the next one's. The
  worker's metrics record says which (`WorkerFinished.cold`, the same field the local pool
  sets), beside its request-to-start time, so the planner learns the cluster's start-up costs;
- **release**: when a worker's call returns, its actor goes back idle, stamped with the time;
- **sweep**: an actor idle for longer than the platform's `keep_warm_s` is killed (its
  reservation goes back to Ray), by the launcher's janitor thread every `SWEEP_SLICE_S`;
- **evict**: an idle actor of another key is killed early when a new actor cannot be placed
  (an idle reservation must not keep a ready worker waiting);
- **discard**: a dead actor (its process was SIGKILLed, its node lost, Ray's memory monitor
  killed it) is forgotten; the dispatcher relaunches its worker, which gets a new actor.

Actors keep their CPUs while their worker waits for inputs (Ray releases CPUs only for blocked
*tasks*, not actors), so the launcher's `Gate` counts the CPUs of waiting actors, and a worker
whose actor Ray cannot place while others wait is started as a plain task that borrows those
CPUs (`runtime.ray_launcher`, "deadlock breaker").

Requirements: a plan's pinned requirements (`planner.requirements`) become the actors'
`runtime_env={"pip": [...]}` (`runtime_env_for`), so Ray prepares each node's environment
once per set and the pool key keeps actors of different sets apart.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from runtime.launcher import WorkerSpec

SWEEP_SLICE_S = 1.0
"""How often the janitor kills actors idle past the keep-warm time."""

RESOURCE_DIGITS = 4
"""Ray accepts resource quantities to 1/10,000 of a unit."""


def runtime_env_for(requirements: Sequence[str]) -> dict[str, Any] | None:
    """The Ray runtime environment of a pinned requirement set; None without requirements.

    Ray's `pip` environments are built on each node in a virtualenv that inherits the node's
    installed packages (planflow itself among them), once per set, cached by Ray."""
    if not requirements:
        return None
    return {"pip": sorted(requirements)}


@dataclass(frozen=True, slots=True)
class PoolKey:
    """What makes actors interchangeable: their reservation and their environment."""

    cpus: float
    memory_mb: int
    env: str = ""  # the runtime environment's JSON ("" for none)

    @classmethod
    def of(cls, spec: WorkerSpec, runtime_env: dict[str, Any] | None) -> PoolKey:
        env = json.dumps(runtime_env, sort_keys=True) if runtime_env else ""
        return cls(round(spec.cpus, RESOURCE_DIGITS), spec.memory_mb, env)


class WorkerHost:
    """The actor a pooled worker runs in (one worker at a time); `run` returns the outcome and
    whether the start was cold. Its WorkerContexts outlive the workers (warm starts)."""

    def __init__(self) -> None:
        self._contexts: dict[str, Any] = {}

    def run(self, url: str, spec_json: str, gate: Any) -> tuple[str, bool]:
        import sys

        from runtime.context import WorkerContext
        from runtime.worker import WORKER_SWITCH_INTERVAL_S, Worker

        ctx = self._contexts.get(url)
        cold = ctx is None
        if ctx is None:
            sys.setswitchinterval(WORKER_SWITCH_INTERVAL_S)
            ctx = self._contexts[url] = WorkerContext(url)
        spec = WorkerSpec.from_json(spec_json)
        calls = itertools.count(1)
        ctx.waiting = lambda: _counted_wait(gate, waiter_key(spec), spec.cpus, calls)
        return Worker(ctx, spec, cold=cold).run(), cold

    def pid(self) -> int:
        import os

        return os.getpid()


def waiter_key(spec: WorkerSpec) -> str:
    """The gate's key of one worker generation's waits (`ray_launcher.Gate`)."""
    return f"{spec.namespace}/{spec.dag_id}/{spec.worker_id}/{spec.attempt}"


@contextlib.contextmanager
def _counted_wait(gate: Any, key: str, cpus: float, calls: Iterator[int]) -> Iterator[None]:
    """Tell the gate (fire and forget) that an actor's CPUs are idle while its worker waits;
    `calls` numbers them (the gate may receive them out of order)."""
    gate.enter.remote(key, cpus, next(calls))
    try:
        yield
    finally:
        gate.leave.remote(key, next(calls))


@dataclass
class Lease:
    """An actor handed to one worker: `placing` while an actor created for it (a cold start)
    has not been placed by Ray yet; `ready` resolves once it is."""

    key: PoolKey
    actor: Any
    placing: bool
    ready: Any  # ObjectRef of the actor's readiness (placed and constructed); None: reused
    since: float


class ActorPools:
    """The launcher's actors, per key. Thread-safe."""

    def __init__(self, ray: Any, keep_warm_s: float, runtime_env: dict[str, Any] | None) -> None:
        self.ray = ray
        self.keep_warm_s = float(keep_warm_s)
        self.runtime_env = runtime_env
        self._host = ray.remote(WorkerHost)
        self._lock = threading.Lock()
        self._idle: dict[PoolKey, list[tuple[Any, float]]] = {}
        self._busy: dict[PoolKey, int] = {}
        """Leased actors per key (created or handed out, not yet released or discarded)."""
        self.created = 0
        self.reused = 0
        self.expired = 0
        """Counts: actors created (cold starts), handed out again (warm), killed when idle."""

    def options(self, spec: WorkerSpec) -> dict[str, Any]:
        """The Ray options of a new actor for `spec`: its reservation, no Ray restarts (the
        dispatcher relaunches), and the runtime environment of the plan's requirements."""
        options: dict[str, Any] = {
            "num_cpus": round(spec.cpus, RESOURCE_DIGITS),
            "memory": spec.memory_mb * 2**20,
            "max_restarts": 0,
            "max_task_retries": 0,
        }
        if self.runtime_env is not None:
            options["runtime_env"] = self.runtime_env
        return options

    def key_of(self, spec: WorkerSpec) -> PoolKey:
        return PoolKey.of(spec, self.runtime_env)

    def acquire(self, spec: WorkerSpec) -> Lease:
        """An idle actor of the spec's key (warm), else a new one (cold, placed by Ray)."""
        return self.take_idle(self.key_of(spec)) or self.create(spec)

    def create(self, spec: WorkerSpec) -> Lease:
        """A new actor for `spec` (a cold start)."""
        key = self.key_of(spec)
        with self._lock:
            self.created += 1
            self._busy[key] = self._busy.get(key, 0) + 1
        actor = self._host.options(**self.options(spec)).remote()
        return Lease(key, actor, True, actor.pid.remote(), time.monotonic())

    def take_idle(self, key: PoolKey) -> Lease | None:
        """The most recently idle actor of `key`, None when there is none."""
        with self._lock:
            idle = self._idle.get(key)
            if not idle:
                return None
            actor, _ = idle.pop()
            self.reused += 1
            self._busy[key] = self._busy.get(key, 0) + 1
        return Lease(key, actor, False, None, time.monotonic())

    def busy(self, key: PoolKey) -> int:
        """Actors of `key` leased now (one of them may be released in a moment)."""
        with self._lock:
            return self._busy.get(key, 0)

    def release(self, lease: Lease) -> None:
        with self._lock:
            self._busy[lease.key] = max(0, self._busy.get(lease.key, 0) - 1)
            self._idle.setdefault(lease.key, []).append((lease.actor, time.monotonic()))

    def discard(self, lease: Lease) -> None:
        """Kill (if alive) and forget a leased actor."""
        with self._lock:
            self._busy[lease.key] = max(0, self._busy.get(lease.key, 0) - 1)
        with contextlib.suppress(Exception):
            self.ray.kill(lease.actor, no_restart=True)

    def sweep(self) -> int:
        """Kill the actors idle past the keep-warm time; how many."""
        cutoff = time.monotonic() - self.keep_warm_s
        with self._lock:
            expired = [a for idle in self._idle.values() for a, t in idle if t <= cutoff]
            for key, idle in list(self._idle.items()):
                self._idle[key] = [(a, t) for a, t in idle if t > cutoff]
        for actor in expired:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
        with self._lock:
            self.expired += len(expired)
        return len(expired)

    def evict_other(self, key: PoolKey) -> bool:
        """Kill the longest-idle actor of another key (to make room); whether there was one."""
        with self._lock:
            others = [(t, k, i) for k, idle in self._idle.items() if k != key
                      for i, (_, t) in enumerate(idle)]
            if not others:
                return False
            _, k, i = min(others, key=lambda o: o[0])
            actor, _ = self._idle[k].pop(i)
        with contextlib.suppress(Exception):
            self.ray.kill(actor, no_restart=True)
        return True

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        with self._lock:
            actors = [a for idle in self._idle.values() for a, _ in idle]
            self._idle = {}
        for actor in actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor, no_restart=True)
