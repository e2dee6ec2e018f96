"""What the dashboard knows about one run, read once: its plan, records, and live keys.

Sources (every key name comes from `runtime.keys` or `metadata.keys`, never formatted here):

- the metrics store (`metadata.store.MetricsStore`, outlives runs): the RunRecord (written when
  the run ends), the WorkerRecords (start-up, plan download), the TaskRecords of the run's
  functions filtered to this run (each attempt's fetch/exec/upload/update/invoke seconds and
  sizes), and the plan document the client recorded as the run started;
- the run's own keys while it goes (`runtime.keys.RunKeys`, deleted when it ends): `progress`,
  `timings`, `errors`, `started`, `leases`.

Times shown are seconds from the run's start (`RunData.t0`): when its plan was recorded (just
after the root workers were asked to start), else the first worker request, else submission.
Planned times in plan.json count from the same moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from metadata.records import RunRecord, TaskRecord, WorkerRecord
from metadata.runplan import RunPlan


@dataclass(frozen=True)
class LiveRun:
    """The keys of a run that is going, as read at one moment."""

    progress: Mapping[str, int]
    timings: tuple[tuple[str, str, float, float, int], ...]
    """(task, worker, start, finish, attempt) rows, unix seconds, in list order."""
    errors: Mapping[str, Mapping[str, Any]]
    started: frozenset[str]
    leases: frozenset[str]
    rows_read: int = 0
    """Items of list `timings` consumed (each item is one batch of rows)."""


@dataclass(frozen=True)
class RunData:
    """One run's plan, records and (while it goes) live keys."""

    run_id: str
    plan: RunPlan | None
    record: RunRecord | None
    workers: tuple[WorkerRecord, ...] = ()
    tasks: tuple[TaskRecord, ...] = ()
    live: LiveRun | None = None
    plan_error: str | None = None
    """Why the recorded plan could not be read (None: read, or none was recorded)."""
    notes: tuple[str, ...] = field(default=())

    @property
    def doc(self) -> dict[str, Any] | None:
        return self.plan.doc if self.plan else None

    @property
    def status(self) -> str:
        """`running`, `ok`, `failed`, or `unknown` (no record and no live keys: the client
        stopped before recording the run, or it is just starting)."""
        if self.live is not None:
            return "running"
        if self.record is not None:
            return "ok" if self.record.ok else "failed"
        return "unknown"

    @property
    def t0(self) -> float:
        """The moment run-relative times count from (module docstring)."""
        if self.plan is not None and self.plan.recorded_at > 0:
            return self.plan.recorded_at
        if self.workers:
            return min(w.requested_at for w in self.workers)
        if self.record is not None:
            return self.record.submitted_at
        rows = self.live.timings if self.live else ()
        return min((r[2] for r in rows), default=0.0)

    @property
    def workflow(self) -> str:
        if self.record is not None:
            return self.record.workflow
        doc = self.doc
        return str(doc["workflow"]) if doc else "?"

    @property
    def strategy(self) -> str:
        if self.record is not None:
            return self.record.strategy
        doc = self.doc
        return str(doc.get("strategy", "?")) if doc else "?"

