"""The inline executor: runs a plan in this process, in topological order.

It is the reference every other executor is tested against: same graph, same argument
rebuilding, no Redis, no workers. A failing task raises `TaskFailed` naming it; downstream tasks
never run.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from planner.plan import Plan
from runtime.errors import TaskFailed
from runtime.ids import new_dag_id
from runtime.result import RunResult, TaskTiming


def run_inline(plan: Plan, dag_id: str | None = None) -> RunResult:
    """Execute every task of `plan` here and return the sink's result."""
    graph = plan.graph
    dag_id = dag_id or new_dag_id(graph.node(graph.sink).function)
    remaining = {node.id: len(graph.downstream(node.id)) for node in graph.nodes}
    results: dict[str, Any] = {}
    timings: dict[str, TaskTiming] = {}
    t0 = time.perf_counter()
    for node in graph.nodes:
        start = time.perf_counter() - t0
        try:
            results[node.id] = graph.code[node.id].call(results)
        except Exception as err:
            raise TaskFailed(node.id, node.function, type(err).__name__, str(err),
                             traceback.format_exc()) from err
        timings[node.id] = TaskTiming(node.id, plan.tasks[node.id].worker, start,
                                      time.perf_counter() - t0)
        for parent in node.upstream:  # free intermediate results as soon as nobody needs them
            remaining[parent] -= 1
            if remaining[parent] == 0:
                del results[parent]
    return RunResult(
        dag_id=dag_id,
        workflow=graph.workflow,
        result=results[graph.sink],
        observed_makespan_s=time.perf_counter() - t0,
        predicted=plan.summary,
        strategy=plan.strategy,
        executor="inline",
        tasks=timings,
    )
