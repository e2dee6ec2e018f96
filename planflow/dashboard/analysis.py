"""Figures of one run computed from its data: where time went, per-function statistics, the
planned and observed timelines, and one task's details. Pure functions of `RunData`.

Where time went (the pie) adds up, over every task attempt and every worker of the run:
execution (`exec_s`), input download (`fetch_s`), output upload (`upload_s`), dependency
updates (`update_s`), invoking workers (`invoke_s`), worker start-up from request to running,
cold and warm apart (`WorkerRecord.startup_s`), and plan (DAG) download
(`WorkerRecord.plan_download_s`). They are sums of seconds spent, not wall time: ten workers
starting at once count ten start-ups.

The per-function prediction error compares the mean observed execution time with the mean
duration the plan predicted for the same tasks: (observed - predicted) / predicted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from metadata.records import TaskRecord
from planflow.dashboard.rundata import RunData
from planflow.dashboard.states import live_states, recorded_states

COMPONENTS: tuple[str, ...] = (
    "execution", "input download", "output upload", "dependency updates", "start-up (cold)",
    "start-up (warm)", "plan download", "invoking workers")
"""The slices of the time pie, in drawing order."""


@dataclass(frozen=True)
class Span:
    """One bar of a timeline, in seconds from the run's start."""

    task_id: str
    worker: str
    start_s: float
    finish_s: float
    critical: bool = False
    ok: bool = True
    attempt: int = 1
    kind: str = "task"
    """`task`, `fetch` (inputs arriving before the task) or `startup` (a worker starting)."""


def task_ids(data: RunData) -> list[str]:
    doc = data.doc
    if doc is not None:
        return [t["id"] for t in doc["tasks"]]
    return list(dict.fromkeys(r.task_id for r in data.tasks))


def states(data: RunData) -> dict[str, str]:
    """Task id -> state (`planflow.dashboard.states`)."""
    doc, live = data.doc, data.live
    if live is not None and doc is not None:
        return live_states(doc, {r[0] for r in live.timings}, live.errors.keys(), live.started)
    if live is not None:
        return {r[0]: "finished" for r in live.timings}
    return recorded_states(task_ids(data), data.tasks,
                           data.record.ok if data.record else None)


def time_components(data: RunData) -> dict[str, float]:
    """Seconds spent in each component of `COMPONENTS` (module docstring)."""
    out = dict.fromkeys(COMPONENTS, 0.0)
    for r in data.tasks:
        out["execution"] += r.exec_s
        out["input download"] += r.fetch_s
        out["output upload"] += r.upload_s
        out["dependency updates"] += r.update_s
        out["invoking workers"] += r.invoke_s
    for w in data.workers:
        out["start-up (cold)" if w.cold else "start-up (warm)"] += w.startup_s
        out["plan download"] += w.plan_download_s
    return out


def _p90(values: list[float]) -> float:
    return float(np.percentile(values, 90)) if values else 0.0


def function_rows(data: RunData) -> list[dict[str, Any]]:
    """Per function: tasks, attempts, failed attempts, mean and p90 execution, bytes in and
    out (totals), the mean predicted duration and the prediction error."""
    by_fn: dict[str, list[TaskRecord]] = {}
    for r in data.tasks:
        by_fn.setdefault(r.function_name, []).append(r)
    predicted: dict[str, list[float]] = {}
    fn_of: dict[str, str] = {}
    for t in (data.doc or {}).get("tasks", ()):
        predicted.setdefault(t["function"], []).append(float(t.get("pred_duration_s", 0.0)))
        fn_of[t["id"]] = t["function"]
    rows = []
    for name in sorted(set(by_fn) | set(predicted)):
        recs = by_fn.get(name, [])
        ok = [r.exec_s for r in recs if r.ok]
        pred = predicted.get(name, [])
        mean = float(np.mean(ok)) if ok else None
        pmean = float(np.mean(pred)) if pred else None
        rows.append({
            "function": name,
            "tasks": len({r.task_id for r in recs}) if recs else len(pred),
            "attempts": len(recs), "failed": sum(1 for r in recs if not r.ok),
            "mean_s": mean, "p90_s": _p90(ok) if ok else None,
            "bytes_in": sum(r.input_bytes for r in recs),
            "bytes_out": sum(r.output_bytes for r in recs),
            "predicted_s": pmean,
            "error": (mean - pmean) / pmean if mean is not None and pmean else None,
        })
    return rows


def planned_spans(doc: Mapping[str, Any]) -> list[Span]:
    """The plan's predicted timeline: one span per task on its worker, and each worker's
    start (from its predicted start to its first task's: start-up, then any wait for inputs;
    the plan does not tell them apart)."""
    spans = [Span(t["id"], t["worker"], float(t["pred_start_s"]), float(t["pred_finish_s"]),
                  bool(t.get("critical"))) for t in doc["tasks"]]
    first: dict[str, float] = {}
    for s in spans:
        first[s.worker] = min(first.get(s.worker, s.start_s), s.start_s)
    for w in doc.get("workers", ()):
        begin = float(w.get("pred_start_s", 0.0))
        end = first.get(w["worker_id"], begin)
        if end > begin:
            spans.append(Span("", w["worker_id"], begin, end, kind="startup"))
    return spans


def observed_spans(data: RunData) -> list[Span]:
    """What happened: worker start-ups, input fetches and task attempts (from the records, or
    from the live `timings` while the run goes)."""
    t0 = data.t0
    critical = {t["id"] for t in (data.doc or {}).get("tasks", ()) if t.get("critical")}
    spans: list[Span] = []
    for w in data.workers:
        if w.startup_s > 0:
            spans.append(Span("", w.worker_id, w.requested_at - t0, w.started_at - t0,
                              kind="startup"))
    if data.live is not None and not data.tasks:
        for task, worker, start, finish, attempt in data.live.timings:
            spans.append(Span(task, worker, start - t0, finish - t0, task in critical,
                              attempt=attempt))
        return spans
    for r in data.tasks:
        start = r.started_at - t0
        if r.fetch_s > 0:
            spans.append(Span(r.task_id, r.worker_id, start - r.fetch_s, start, kind="fetch"))
        spans.append(Span(r.task_id, r.worker_id, start, start + r.exec_s,
                          r.task_id in critical, r.ok, r.attempt))
    return spans


def summary(data: RunData) -> dict[str, Any]:
    """The run page's header: identity, status and the headline figures."""
    doc, rec, live = data.doc or {}, data.record, data.live
    total = len(doc.get("tasks", ())) or (live.progress.get("total", 0) if live else 0)
    return {
        "run_id": data.run_id, "workflow": data.workflow, "strategy": data.strategy,
        "platform": doc.get("platform"), "status": data.status, "tasks": total,
        "workers_planned": len(doc.get("workers", ())),
        "workers_started": len(live.started) if live else len(data.workers),
        "predicted_makespan_s": rec.predicted_makespan_s if rec else doc.get("makespan_s"),
        "observed_makespan_s": rec.observed_makespan_s if rec else None,
        "predicted_cost_usd": rec.predicted_cost_usd if rec else doc.get("cost_usd"),
        "observed_cost_usd": rec.observed_cost_usd if rec else None,
        "gb_s": doc.get("gb_s"), "observed_gb_s": observed_gb_s(data.workers),
        "submitted_at": rec.submitted_at if rec else data.t0,
        "done": live.progress.get("done", 0) if live else None,
        "critical_path": list(doc.get("critical_path", ())),
        "has_plan": data.plan is not None, "plan_error": data.plan_error,
        "recorded_tasks": len({r.task_id for r in data.tasks}),
    }


def observed_gb_s(workers: Iterable[Any]) -> float:
    """Memory-seconds the workers held: memory GB x (end - start), summed."""
    return float(sum(w.memory_mb / 1024 * max(0.0, w.ended_at - w.started_at) for w in workers))


def task_detail(data: RunData, task_id: str) -> dict[str, Any] | None:
    """Everything known of one task: plan decisions, state, attempts, timings, sizes, error;
    None when the run has no such task."""
    return task_details(data, [task_id]).get(task_id)


def task_details(data: RunData, wanted: Iterable[str] | None = None) -> dict[str, Any]:
    """`task_detail` of many tasks (default: all), sharing the work: states, children and
    attempts are computed once for the run, not once per task."""
    doc = data.doc
    planned = {t["id"]: t for t in doc["tasks"]} if doc else {}
    ids = list(wanted) if wanted is not None else task_ids(data)
    attempts: dict[str, list[TaskRecord]] = {}
    for r in data.tasks:
        attempts.setdefault(r.task_id, []).append(r)
    rows: dict[str, list[tuple[str, str, float, float, int]]] = {}
    for row in data.live.timings if data.live else ():
        rows.setdefault(row[0], []).append(row)
    downstream: dict[str, list[str]] = {}
    for t in planned.values():
        for u in t["upstream"]:
            downstream.setdefault(u, []).append(t["id"])
    state = states(data)
    out = {}
    for task_id in ids:
        if task_id not in planned and task_id not in attempts and task_id not in rows:
            continue
        out[task_id] = _detail(data, task_id, planned.get(task_id),
                               sorted(attempts.get(task_id, []), key=lambda r: r.attempt),
                               rows.get(task_id, []), downstream.get(task_id, []),
                               state.get(task_id, "?"))
    return out


def _detail(data: RunData, task_id: str, planned: Mapping[str, Any] | None,
            attempts: list[TaskRecord], rows: list[tuple[str, str, float, float, int]],
            downstream: list[str], state: str) -> dict[str, Any]:
    t0 = data.t0
    error = data.live.errors.get(task_id) if data.live else None
    if error is None:
        error = next(({"message": r.error} for r in reversed(attempts) if r.error), None)
    function = planned["function"] if planned else attempts[0].function_name if attempts \
        else "?"
    return {
        "id": task_id, "state": state, "function": function,
        "planned": None if planned is None else {
            k: planned.get(k) for k in ("worker", "memory_mb", "cpus", "pred_start_s",
                                        "pred_finish_s", "pred_duration_s", "critical",
                                        "slack_s", "optimizations", "reasons",
                                        "prediction_source")},
        "upstream": list(planned["upstream"]) if planned else [], "downstream": downstream,
        "attempts": [_attempt(r, t0) for r in attempts],
        "observed": [{"worker": w, "start_s": s - t0, "finish_s": f - t0, "attempt": a}
                     for _, w, s, f, a in rows],
        "error": error,
    }


def _attempt(r: TaskRecord, t0: float) -> dict[str, Any]:
    return {"attempt": r.attempt, "ok": r.ok, "worker": r.worker_id, "memory_mb": r.memory_mb,
            "cpus": r.cpus, "start_s": r.started_at - t0, "fetch_s": r.fetch_s,
            "exec_s": r.exec_s, "upload_s": r.upload_s, "update_s": r.update_s,
            "invoke_s": r.invoke_s, "input_bytes": r.input_bytes,
            "output_bytes": r.output_bytes, "peak_memory_mb": r.peak_memory_mb,
            "contention_s": r.contention_s, "error": r.error}
