"""The compile pipeline: TaskGraph -> Plan, for one strategy.

Foundation version: only the `wukong` strategy (one configuration everywhere, one worker per
task, no planning). The planner issue replaces this with prediction, simulation and the
critical-path passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from planner.errors import UsageError
from planner.graph import TaskGraph
from planner.plan import Plan, PlanSummary, TaskPlan, WorkerPlan

STRATEGIES = ("wukong",)
DEFAULT_STRATEGY = "wukong"
DEFAULT_MEMORY_MB = 1769
MB_PER_CPU = 1769


@dataclass(frozen=True)
class CompileOptions:
    strategy: str = DEFAULT_STRATEGY
    platform: str = "local"
    memory_mb: int | None = None

    def as_dict(self) -> Mapping[str, Any]:
        return asdict(self)


def compile_graph(graph: TaskGraph, options: CompileOptions | None = None) -> Plan:
    options = options or CompileOptions()
    if options.strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy '{options.strategy}'; choose one of {STRATEGIES}")
    memory = options.memory_mb or DEFAULT_MEMORY_MB
    cpus = min(memory / MB_PER_CPU, 6.0)
    tasks = {}
    workers = []
    for i, node in enumerate(graph.nodes):
        wid = f"w{i}"
        tasks[node.id] = TaskPlan(node.id, memory, cpus, wid)
        workers.append(WorkerPlan(wid, memory, cpus, (node.id,)))
    summary = PlanSummary(0.0, 0.0, 0.0, len(workers), len(workers), ())
    return Plan(graph, options.strategy, options.platform, tasks, tuple(workers), summary,
                options=options.as_dict())
