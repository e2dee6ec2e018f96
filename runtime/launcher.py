"""The launcher seam: how a worker gets started, whoever asks (the client for root workers, a
worker for the workers its updates made ready).

A launcher is a small Protocol. Implementations:

- `local` (`runtime.local.LocalLauncher`, the default): worker processes on this machine, run by
  a pool server that enforces each configuration's CPU and memory limits and keeps warm processes;
- `thread` (`runtime.threads.ThreadLauncher`): workers as threads of the calling process, for
  fast tests and debugging (no isolation, no enforcement);
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
    """Which worker of which run to start, at which configuration, requested when."""

    namespace: str
    dag_id: str
    worker_id: str
    memory_mb: int
    cpus: float
    requested_at: float

    @property
    def config(self) -> tuple[int, float]:
        return (self.memory_mb, self.cpus)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerSpec:
        d = json.loads(text)
        return cls(str(d["namespace"]), str(d["dag_id"]), str(d["worker_id"]),
                   int(d["memory_mb"]), float(d["cpus"]), float(d["requested_at"]))


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
