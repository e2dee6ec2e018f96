"""The inline executor: runs a plan in this process, in topological order.

It is the reference every other executor is tested against: same graph, same argument
rebuilding, no Redis, no workers. A failing task raises `TaskFailed` naming it; downstream tasks
never run. A dynamic fan-out (`planflow.map`) runs its elements one after another; a failing
element is named by its element id (`square-0[17]`).
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from planner.args import resolve
from planner.dynamic import apply, element_id, elements
from planner.graph import TaskCode, TaskNode
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
        code = graph.code[node.id]
        try:
            results[node.id] = code.call(results) if node.dynamic is None else \
                _map(node, code, results)
        except _ElementFailed as failed:
            err = failed.cause
            raise TaskFailed(failed.task_id, node.function, type(err).__name__, str(err),
                             failed.tb) from err
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


class _ElementFailed(Exception):
    def __init__(self, task_id: str, cause: Exception, tb: str) -> None:
        self.task_id, self.cause, self.tb = task_id, cause, tb


def _map(node: TaskNode, code: TaskCode, results: dict[str, Any]) -> list[Any]:
    """A dynamic fan-out's value: its function on each element of its input, in order."""
    out = []
    for i, item in enumerate(elements(node.id, node.function, resolve(code.args, results)[0])):
        try:
            out.append(apply(code, item))
        except Exception as err:
            raise _ElementFailed(element_id(node.id, i), err, traceback.format_exc()) from err
    return out
