"""What a finished run returns, whichever executor ran it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from planner.plan import PlanSummary


@dataclass(frozen=True)
class TaskTiming:
    """Observed timing of one task, seconds relative to the run's submission."""

    task_id: str
    worker: str
    start_s: float
    finish_s: float
    attempts: int = 1


@dataclass(frozen=True)
class RunResult:
    """The workflow's result (same structure as its output) and what the run looked like."""

    dag_id: str
    workflow: str
    result: Any
    observed_makespan_s: float
    predicted: PlanSummary
    strategy: str
    executor: str
    tasks: Mapping[str, TaskTiming] = field(default_factory=dict)
    workers_started: int = 0
    replanned: PlanSummary | None = None
    """The plan's figures re-simulated with the up-sized workers' larger configurations (set
    by `planflow.api.run` when a worker was relaunched larger; None otherwise)."""
    recovered: tuple[Mapping[str, Any], ...] = ()
    """Worker relaunches (`runtime.leases`): worker_id, generation, reason (crash, oom,
    timeout, lease-expired), task_id, from_memory_mb, memory_mb."""
    prepare_s: float = 0.0
    """Seconds spent preparing the workers' environment before the run (0: no requirements,
    or a cached environment found at once)."""
    environment: Mapping[str, Any] | None = None
    """The prepared worker environment (`runtime.environments.Prepared.to_json`: key, path,
    requirements, prepare_s, cached), None when the plan has no requirements."""

    @property
    def upsized(self) -> dict[str, int]:
        """Worker id -> memory MB it finished on, for workers relaunched on a larger
        configuration after being killed at their memory limit."""
        return {r["worker_id"]: int(r["memory_mb"]) for r in self.recovered
                if int(r["memory_mb"]) > int(r["from_memory_mb"])}

    @property
    def predicted_makespan_s(self) -> float:
        return self.predicted.makespan_s
