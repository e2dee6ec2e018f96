"""The planner's working state (`Assignment`) and how it is simulated.

An `Assignment` is the numeric form of a plan's decisions: every task's worker, every worker's
configuration, pre-warm time and pre-load flag, every task's delayed-I/O flag, and the reasons
each pass gave. Passes never mutate one: they return a new one (`dataclasses.replace`). Workers
are numbered densely in the order of their first task, and a worker runs its tasks in ascending
task index (the simulator's plan order), so a worker's task sequence is fixed by `worker`.

`simulate_assignment` turns predictions + assignment into a `simulator.SimInput` (each task's
duration is its row of the duration table at its worker's configuration) and simulates it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from planner.plan import PlanSummary
from planner.predict import Predictions

if TYPE_CHECKING:
    from simulator import Platform, SimInput, SimResult


@dataclass(frozen=True, eq=False)
class Assignment:
    """Decisions of a plan in progress (arrays; see the module docstring)."""

    worker: np.ndarray  # int[n] worker of each task
    config: np.ndarray  # int[w] configuration index of each worker
    prewarm_at_s: np.ndarray  # float[w] NaN = no pre-warm
    preload: np.ndarray  # bool[w]
    delayed_io: np.ndarray  # bool[n]
    reasons: Mapping[int, tuple[str, ...]] = field(default_factory=dict)  # task -> reasons
    optimizations: Mapping[int, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def create(cls, worker: np.ndarray, config: np.ndarray) -> Assignment:
        w = int(config.shape[0])
        return cls(np.asarray(worker, np.int64), np.asarray(config, np.int64),
                   np.full(w, np.nan), np.zeros(w, bool), np.zeros(worker.shape[0], bool))

    @property
    def n_workers(self) -> int:
        return int(self.config.shape[0])

    def task_config(self) -> np.ndarray:
        """int[n]: each task's configuration (its worker's)."""
        return self.config[self.worker]

    def worker_tasks(self) -> list[list[int]]:
        """Tasks of each worker in plan order."""
        out: list[list[int]] = [[] for _ in range(self.n_workers)]
        for i, k in enumerate(self.worker.tolist()):
            out[k].append(i)
        return out

    def with_config(self, config: np.ndarray) -> Assignment:
        return _replace(self, config=np.asarray(config, np.int64))

    def with_reasons(self, extra: Mapping[int, str]) -> Assignment:
        """A copy with one more reason for some tasks."""
        reasons = dict(self.reasons)
        for i, text in extra.items():
            reasons[i] = (*reasons.get(i, ()), text)
        return _replace(self, reasons=reasons)

    def with_optimization(self, tasks: list[int], name: str) -> Assignment:
        optimizations = dict(self.optimizations)
        for i in tasks:
            if name not in optimizations.get(i, ()):
                optimizations[i] = (*optimizations.get(i, ()), name)
        return _replace(self, optimizations=optimizations)


def _replace(a: Assignment, **changes: object) -> Assignment:
    from dataclasses import replace

    return replace(a, **changes)  # type: ignore[arg-type]


def dense_workers(worker: np.ndarray) -> np.ndarray:
    """Renumber workers 0..w-1 in the order of their first task."""
    _, first, inverse = np.unique(worker, return_index=True, return_inverse=True)
    rank = np.empty(first.shape[0], np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.shape[0])
    return np.asarray(rank[inverse], np.int64)


def sim_input(pred: Predictions, asg: Assignment) -> SimInput:
    """The simulator's input for `asg` (durations at each task's worker configuration)."""
    from simulator import SimInput

    n = pred.n_tasks
    config = asg.task_config()
    duration = pred.duration_s[np.arange(n), config]
    return SimInput(duration_s=duration, output_bytes=pred.output_bytes,
                    storage_bytes=pred.storage_bytes, edge_src=pred.edge_src,
                    edge_dst=pred.edge_dst, edge_bytes=pred.edge_bytes, worker=asg.worker,
                    worker_config=asg.config, worker_prewarm_at_s=asg.prewarm_at_s,
                    worker_preload=asg.preload, delayed_io=asg.delayed_io, sink=n - 1,
                    cpu_demand=pred.cpu_demand[np.arange(n), config])


def simulate_assignment(pred: Predictions, asg: Assignment, platform: Platform,
                        *, with_slack: bool = True) -> SimResult:
    """Simulate `asg`; simulator errors become PlanningError naming the cause."""
    from planner.errors import PlanningError
    from simulator import SimulatorError, simulate

    try:
        return simulate(sim_input(pred, asg), platform, with_slack=with_slack)
    except SimulatorError as err:
        raise PlanningError(f"the plan cannot be simulated: {err}") from err


def try_simulate(pred: Predictions, asg: Assignment, platform: Platform,
                 *, with_slack: bool = True, horizon_s: float = math.inf) -> SimResult | None:
    """Simulate a variant of an assignment that simulated before; None if the concurrency
    limit deadlocks it (the only error a valid input can raise: a running worker waits for
    inputs from workers that cannot start), or, with `horizon_s`, maybe if its makespan
    exceeds that (the run stops there)."""
    from simulator import SimulatorError, simulate

    try:
        return simulate(sim_input(pred, asg), platform, with_slack=with_slack,
                        horizon_s=horizon_s)
    except SimulatorError:
        return None


def summarize(result: SimResult, task_ids: tuple[str, ...]) -> PlanSummary:
    """The plan-level figures of one simulation."""
    return PlanSummary(
        makespan_s=float(result.makespan_s), cost_usd=float(result.cost_usd),
        gb_s=float(result.gb_s), workers=int(result.invocations),
        cold_starts=int(result.cold_starts),
        critical_path=tuple(task_ids[i] for i in result.critical_path))
