"""Where a planflow run's wall time goes, from the run's own metric records (`executor_overhead`).

    parts = breakdown(url, namespace, plan, dag_id, t0=..., t1=...)

The records say, per task attempt, how long it fetched inputs, ran, stored its output, updated
downstream readiness and started other workers (`metadata.records.TaskRecord`), and per worker
when it was requested, when it ran and how long its plan download took (`WorkerRecord`). Given
the client's wall-clock start and end of `run_plan` (`t0`, `t1`, `time.time()`), the run splits
into:

- `client_start_ms`: `run_plan` called -> first worker requested (register, upload, prewarm);
- `client_end_ms`: last task finished -> `run_plan` returned (result, clean-up, metrics wait);
- per task (ms/task, summed over every task and divided by the task count; on one lane this is
  wall time, on several lanes busy time): `fetch` (waiting for and reading inputs) and `exec`
  (the function) on the worker's main thread; `upload`, `update` and `invoke` on its data-plane
  thread (`runtime.dataplane`, concurrent with the next tasks);
- per task, the workers' `startup` (request -> running) and `plan_download`;
- `gap_ms_per_task` (one-worker runs only: the chain): the worker's main-thread wall time from
  its first fetch to its last return beyond fetch + exec (encoding, events, metrics records,
  the hand-off to the data plane: the worker loop's own cost).

A task record's `started_at` is taken after its fetch (`runtime.worker`), so a task's main-thread
span is `[started_at - fetch_s, started_at + exec_s]`.
"""

from __future__ import annotations

from typing import Any

from metadata.store import MetricsStore
from planner.plan import Plan

TASK_PARTS = ("fetch_s", "exec_s", "upload_s", "update_s", "invoke_s")
"""TaskRecord fields summed per task."""


def breakdown(url: str, namespace: str, plan: Plan, dag_id: str, *, t0: float,
              t1: float) -> dict[str, Any]:
    """The run's time split (module docstring); empty when it recorded nothing."""
    fkeys = {n.function_key for n in plan.graph.nodes}
    with MetricsStore(url, namespace) as store:
        tasks = [r for recs in store.task_records(fkeys).values() for r in recs
                 if r.run_id == dag_id]
        workers = store.worker_records(dag_id)
    if not tasks or not workers:
        return {}
    n = len(plan.graph.nodes)
    out: dict[str, Any] = {"tasks_recorded": len(tasks), "workers_recorded": len(workers),
                           "wall_ms_per_task": (t1 - t0) / n * 1e3}
    for part in TASK_PARTS:
        out[f"{part[:-2]}_ms_per_task"] = sum(getattr(r, part) for r in tasks) / n * 1e3
    out["startup_ms_per_task"] = sum(w.startup_s for w in workers) / n * 1e3
    out["plan_download_ms_per_task"] = sum(w.plan_download_s for w in workers) / n * 1e3
    out["cold_workers"] = sum(1 for w in workers if w.cold)
    ends = [r.started_at + r.exec_s for r in tasks]
    out["client_start_ms"] = (min(w.requested_at for w in workers) - t0) * 1e3
    out["client_end_ms"] = (t1 - max(ends)) * 1e3
    if len(workers) == 1:
        lane_s = max(ends) - min(r.started_at - r.fetch_s for r in tasks)
        parts_s = sum(r.fetch_s + r.exec_s for r in tasks)
        out["gap_ms_per_task"] = (lane_s - parts_s) / n * 1e3
    return out
