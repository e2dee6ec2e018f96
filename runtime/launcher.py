"""The launcher seam: how a worker gets started, whoever asks (the client for root workers, a
worker for the workers its updates made ready).

A launcher is a small Protocol. Implementations:

- `local` (`runtime.local.LocalLauncher`, the default): worker processes on this machine, run by
  a pool server that enforces each configuration's CPU and memory limits and keeps warm processes;
- `thread` (`runtime.threads.ThreadLauncher`): workers as threads of the calling process, for
  fast tests and debugging (no isolation, no enforcement);
- `ray` (`runtime.ray_launcher.RayLauncher`, extra `planflow[ray]`): each worker in a pooled Ray
  actor reserving its configuration's CPUs and memory on a Ray cluster (or a local Ray instance);
  workers ask the run's client to start the others (`runtime.ray_requests`);
- `inline` is not a launcher: `runtime.inline.run_inline` is the in-process reference executor.

Requests are batched (`start` takes several specs) because one update can make many workers
ready at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Which worker of which run to start, at which configuration, requested when.

    Recovery fields (defaults for a first start): `attempt` is the worker's lease generation
    (1, then +1 per relaunch; a relaunched worker cannot rely on its `notify` list, which the
    dead one may have drained); `deaths` holds (task, times a process of this worker died
    while running it), "" for deaths between tasks and lost leases, so a crash budget is per
    task, not per worker; `task_attempts` holds (task, attempts already used) for a task whose
    attempt was ended from outside (timeout kill); `sizes` lists the platform's (memory MB, CPUs)
    configurations, from which a worker killed at its memory limit gets the next larger one.
    """

    namespace: str
    dag_id: str
    worker_id: str
    memory_mb: int
    cpus: float
    requested_at: float
    attempt: int = 1
    deaths: tuple[tuple[str, int], ...] = ()
    task_attempts: tuple[tuple[str, int], ...] = ()
    sizes: tuple[tuple[int, float], ...] = ()

    @property
    def config(self) -> tuple[int, float]:
        return (self.memory_mb, self.cpus)

    def deaths_of(self, task_id: str) -> int:
        """How often a process of this worker died while running `task_id`."""
        return dict(self.deaths).get(task_id, 0)

    def used_attempts(self, task_id: str) -> int:
        """Attempts of `task_id` already used by earlier processes of this worker."""
        return dict(self.task_attempts).get(task_id, 0)

    def larger(self) -> tuple[int, float] | None:
        """The platform's next configuration with more memory, None at the largest."""
        bigger = sorted(s for s in self.sizes if s[0] > self.memory_mb)
        return bigger[0] if bigger else None

    def to_json(self) -> str:
        d = asdict(self)
        for name, default in _RECOVERY_DEFAULTS.items():
            if d[name] in (default, list(default) if isinstance(default, tuple) else default):
                del d[name]  # first starts stay as small as before
        return json.dumps(d, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerSpec:
        d = json.loads(text)
        return cls(str(d["namespace"]), str(d["dag_id"]), str(d["worker_id"]),
                   int(d["memory_mb"]), float(d["cpus"]), float(d["requested_at"]),
                   int(d.get("attempt", 1)),
                   tuple((str(t), int(n)) for t, n in d.get("deaths", ())),
                   tuple((str(t), int(n)) for t, n in d.get("task_attempts", ())),
                   tuple((int(m), float(c)) for m, c in d.get("sizes", ())))


_RECOVERY_DEFAULTS: dict[str, object] = {"attempt": 1, "deaths": (), "task_attempts": (),
                                              "sizes": ()}


class Launcher(Protocol):
    """Starts and stops workers. Every method may be called from any thread."""

    name: str

    def prewarm(self, configs: Mapping[tuple[int, float], int], modules: Sequence[str]) -> None:
        """Hint: `configs` (memory MB, CPUs) -> workers a run will want; `modules` to import in
        advance. Launchers without a pool ignore it."""
        ...

    def start(self, specs: Sequence[WorkerSpec]) -> None:
        """Start these workers (returns once requested, not once running)."""
        ...

    def stop(self, dag_id: str) -> None:
        """Stop every worker of the run; returns once none of them can write any more."""
        ...

    def close(self) -> None:
        """Release what this launcher object holds (a pool it owns is shut down)."""
        ...
