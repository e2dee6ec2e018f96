"""Plans with explicit placements, built without the planner: the runtime must run any valid
placement, so tests choose them (one worker, one per task, round robin, by hand)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from planner.graph import TaskGraph
from planner.loader import trace_workflow
from planner.plan import DynamicPlan, Plan, PlanSummary, TaskPlan, WorkerPlan
from planner.trace import Workflow

MB_PER_CPU = 1769
"""AWS Lambda's rule: CPUs are proportional to memory."""


DYNAMIC_WIDTH, DYNAMIC_LOCAL, DYNAMIC_PER_WORKER = 8, 1, 2
"""How hand-placed plans split a dynamic fan-out: one element on the map's worker, then two per
new worker (so both paths of the runtime run)."""


def graph(wf: Workflow, **params: Any) -> TaskGraph:
    return trace_workflow(wf, {k: str(v) for k, v in params.items()})


def placed(g: TaskGraph, where: Mapping[str, str] | Callable[[int, str], str],
           memory_mb: int = MB_PER_CPU) -> Plan:
    """A plan putting task i (topological index) with id t on worker `where(i, t)`."""
    cpus = min(memory_mb / MB_PER_CPU, 6.0)
    owner = {n.id: (where[n.id] if isinstance(where, Mapping) else where(i, n.id))
             for i, n in enumerate(g.nodes)}
    order: dict[str, list[str]] = {}
    for n in g.nodes:
        order.setdefault(owner[n.id], []).append(n.id)
    tasks = {t: TaskPlan(t, memory_mb, cpus, w) for t, w in owner.items()}
    workers = tuple(WorkerPlan(w, memory_mb, cpus, tuple(ts)) for w, ts in order.items())
    summary = PlanSummary(0.0, 0.0, 0.0, len(workers), len(workers))
    dynamic = {n.id: DynamicPlan(n.id, n.function, DYNAMIC_WIDTH, "prior", DYNAMIC_LOCAL,
                                 DYNAMIC_PER_WORKER, memory_mb, cpus)
               for n in g.nodes if n.dynamic is not None}
    return Plan(g, "test", "local", tasks, workers, summary, dynamic=dynamic)


def one_worker(g: TaskGraph, memory_mb: int = MB_PER_CPU) -> Plan:
    return placed(g, lambda i, t: "w0", memory_mb)


def per_task(g: TaskGraph, memory_mb: int = MB_PER_CPU) -> Plan:
    return placed(g, lambda i, t: f"w{i}", memory_mb)


def round_robin(g: TaskGraph, n: int, memory_mb: int = MB_PER_CPU) -> Plan:
    return placed(g, lambda i, t: f"w{i % n}", memory_mb)
