"""Planning dynamic fan-outs: compile through the planning graph, then fold it back.

`compile_dynamic` (the compiler's hook for graphs with `planflow.map` nodes):

1. widths    every dynamic node's expected width and its source (`planner.dynamic`);
2. expand    the planning graph: elements and a join per dynamic node;
3. compile   it with the ordinary passes (predictions per element from the mapped function's
             history, placement, downgrade, pre-warm), as a static fan-out of that width (at
             most `MAX_PLANNED_ELEMENTS` elements);
4. derive    per dynamic node a `DynamicPlan` from that placement: how many elements ran on the
             join's worker (`local`), the most elements any other worker got (`per_worker`), and
             the configuration most of those workers got; predicted seconds per element;
5. fold      the plan of the original graph: static tasks as compiled, a dynamic node planned
             where its join was (start: its first element's; finish: the join's), workers
             without the elements (workers left empty are the new workers the runtime creates);
6. verify    the plan's figures and predicted times are the simulation of exactly what the
             runtime does with the assumed widths (`expand_plan` with the
             `planner.dynamic.layout` rule), which may differ from step 3 where the placement
             mixed elements with other tasks, or the width was larger than planned there.

`expand_plan(plan, widths)` is the plan of the planning graph at any widths, by the layout
rule: the what-if (`--width NAME=N`) and step 6 simulate it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from planner.dynamic import (
    dynamic_nodes,
    element_id,
    expand_graph,
    expected_width,
    layout,
)
from planner.errors import UsageError
from planner.plan import DynamicPlan, Plan, PlanSummary, TaskPlan, WorkerPlan

if TYPE_CHECKING:
    from planner.graph import TaskGraph
    from simulator import Platform

Compile = Callable[["TaskGraph"], Plan]

MAX_PLANNED_ELEMENTS = 500
"""Most elements of one dynamic fan-out the planning graph is compiled with: its split (local
elements, elements per new worker, configuration) is applied to the whole expected width, whose
simulation gives the plan's figures. A 10,000-wide expectation then compiles like 500 (the
downgrade loop re-simulates the planning graph many times)."""


def compile_dynamic(
    graph: TaskGraph,
    compile_static: Compile,
    platform: Platform,
    access: Any,
    quantile: float | None,
) -> Plan:
    """The plan of a graph with dynamic nodes (module docstring)."""
    assumed = {n.id: expected_width(graph, n, access) for n in dynamic_nodes(graph)}
    widths = {k: w for k, (w, _) in assumed.items()}
    planned = {k: min(w, MAX_PLANNED_ELEMENTS) for k, w in widths.items()}
    expanded = compile_static(expand_graph(graph, planned))
    dyn = {k: _derive(expanded, graph, k, planned[k], source) for k, (_, source) in assumed.items()}
    folded = _fold(expanded, graph, dyn)
    dyn = {k: dataclasses.replace(d, width=widths[k]) for k, d in dyn.items()}
    summary, times = simulate_plan(
        expand_plan(dataclasses.replace(folded, dynamic=dyn)), platform, access, quantile
    )
    folded = dataclasses.replace(
        folded,
        dynamic=dyn,
        tasks={
            t: dataclasses.replace(
                p,
                pred_start_s=times[t][0],
                pred_finish_s=times[t][1],
                pred_duration_s=times[t][1] - times[t][0],
            )
            for t, p in folded.tasks.items()
        },
    )
    notes = tuple(
        f"dynamic fan-out {d.task_id}: planned for {d.width} elements ({d.source}); "
        f"{d.local} on its own worker, then {d.per_worker} per new worker at "
        f"{d.memory_mb} MB"
        for d in dyn.values()
    )
    return dataclasses.replace(
        folded, summary=_fold_summary(summary), notes=(*folded.notes, *notes)
    )


def _derive(plan: Plan, graph: TaskGraph, map_id: str, width: int, source: str) -> DynamicPlan:
    home = plan.tasks[map_id].worker
    at = [plan.tasks[element_id(map_id, i)] for i in range(width)]
    elsewhere = Counter(t.worker for t in at if t.worker != home)
    by_id = {w.worker_id: w for w in plan.workers}
    memory = Counter((by_id[w].memory_mb, by_id[w].cpus) for w in elsewhere)
    home_plan = plan.worker(home)
    memory_mb, cpus = (
        memory.most_common(1)[0][0] if memory else (home_plan.memory_mb, home_plan.cpus)
    )
    element_s = sum(t.pred_duration_s for t in at) / width if width else 0.0
    sources = Counter(t.prediction_source for t in at)
    return DynamicPlan(
        map_id,
        graph.node(map_id).function,
        width,
        source,
        local=sum(t.worker == home for t in at),
        per_worker=max(elsewhere.values(), default=1),
        memory_mb=memory_mb,
        cpus=cpus,
        pred_element_s=element_s,
        element_source=sources.most_common(1)[0][0] if sources else "prior",
    )


def _fold(plan: Plan, graph: TaskGraph, dyn: Mapping[str, DynamicPlan]) -> Plan:
    tasks: dict[str, TaskPlan] = {}
    for node in graph.nodes:
        t = plan.tasks[node.id]
        if node.id in dyn:
            at = [plan.tasks[element_id(node.id, i)] for i in range(dyn[node.id].width)]
            start = min((e.pred_start_s for e in at), default=t.pred_start_s)
            t = dataclasses.replace(
                t,
                pred_start_s=start,
                pred_duration_s=t.pred_finish_s - start,
                critical=t.critical or any(e.critical for e in at),
                memory_mb=plan.worker(t.worker).memory_mb,
                cpus=plan.worker(t.worker).cpus,
            )
        tasks[node.id] = t
    workers = tuple(
        dataclasses.replace(w, tasks=kept)
        for w in plan.workers
        if (kept := tuple(t for t in w.tasks if t in tasks))
    )
    alive = {w.worker_id for w in workers}
    return dataclasses.replace(
        plan,
        graph=graph,
        tasks=tasks,
        workers=workers,
        dynamic=dict(dyn),
        downgrades=tuple(d for d in plan.downgrades if d.worker in alive),
    )


def _fold_summary(summary: PlanSummary) -> PlanSummary:
    """The critical path with each dynamic fan-out's elements named by their map node."""
    path: list[str] = []
    for t in summary.critical_path:
        name = t.split("[", 1)[0]
        if not path or path[-1] != name:
            path.append(name)
    return dataclasses.replace(summary, critical_path=tuple(path))


def expand_plan(plan: Plan, widths: Mapping[str, int] | None = None) -> Plan:
    """The plan of the planning graph at `widths` (default: the widths assumed), elements split
    by the layout rule: the first `local` on the map node's worker, before it; the rest in
    groups of `per_worker` on new workers `<map id>.g<j>` at the planned configuration."""
    widths = {k: d.width for k, d in plan.dynamic.items()} | dict(widths or {})
    unknown = sorted(set(widths) - set(plan.dynamic))
    if unknown:
        known = ", ".join(sorted(plan.dynamic)) or "none"
        raise UsageError(
            f"--width {unknown[0]}: not a dynamic fan-out of this plan (dynamic fan-outs: {known})"
        )
    graph = expand_graph(plan.graph, widths)
    tasks = dict(plan.tasks)
    lists = {w.worker_id: list(w.tasks) for w in plan.workers}
    extra: list[WorkerPlan] = []
    for map_id, d in plan.dynamic.items():
        split = layout(widths[map_id], d.local, d.per_worker)
        home = plan.tasks[map_id].worker
        home_plan = plan.worker(home)
        local = [element_id(map_id, i) for i in range(split.local)]
        for eid in local:
            tasks[eid] = TaskPlan(
                eid, home_plan.memory_mb, home_plan.cpus, home, prediction_source=d.element_source
            )
        at = lists[home].index(map_id)
        lists[home][at:at] = local
        for j, (lo, hi) in enumerate(split.groups):
            wid = f"{map_id}.g{j}"
            ids = tuple(element_id(map_id, i) for i in range(lo, hi))
            for eid in ids:
                tasks[eid] = TaskPlan(
                    eid, d.memory_mb, d.cpus, wid, prediction_source=d.element_source
                )
            extra.append(WorkerPlan(wid, d.memory_mb, d.cpus, ids))
    workers = [dataclasses.replace(w, tasks=tuple(lists[w.worker_id])) for w in plan.workers]
    order = {t: i for i, t in enumerate(graph.topological_order())}
    ordered = sorted([*workers, *extra], key=lambda w: order[w.tasks[0]])
    return dataclasses.replace(
        plan, graph=graph, tasks={t: tasks[t] for t in order}, workers=tuple(ordered), dynamic={}
    )


def simulate_plan(
    plan: Plan, platform: Platform, access: Any, quantile: float | None
) -> tuple[PlanSummary, dict[str, tuple[float, float]]]:
    """The simulated figures of a plan of a planning graph, as its workers and configurations
    stand, and per task of the original graph its predicted (start, finish): a dynamic
    fan-out from its first element's start to its join's finish."""
    from planner.assignment import simulate_assignment, summarize
    from planner.predict import predict
    from planner.whatif import assignment_of

    pred = predict(plan.graph, platform, quantile=quantile, access=access)
    asg = assignment_of(plan, pred, [], platform.name)
    res = simulate_assignment(pred, asg, platform)
    times: dict[str, tuple[float, float]] = {}
    for i, t in enumerate(pred.task_ids):
        name = t.split("[", 1)[0]
        start, finish = float(res.task_start_s[i]), float(res.task_finish_s[i])
        if name in times:
            start, finish = min(start, times[name][0]), max(finish, times[name][1])
        times[name] = (start, finish)
    return summarize(res, pred.task_ids), times
