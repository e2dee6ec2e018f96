"""Task states as the dashboard shows them, live from a run's keys or after it from its records.

The runtime keeps no per-task "running" flag (`runtime/__init__.py`: a task is running in its
worker's memory), so while a run goes the states are derived from what Redis does hold:

| state    | live: derived from                                            | after the run         |
|----------|---------------------------------------------------------------|-----------------------|
| planned  | its worker is not claimed yet (absent from hash `started`)    | -                     |
| waiting  | its worker started; some parent has not finished              | -                     |
| ready    | its worker started, every parent finished, an earlier task of | -                     |
|          | the same worker has not                                       |                       |
| running  | the first unfinished task of a started worker, parents done   | -                     |
| finished | a row in list `timings`                                       | an ok TaskRecord (or  |
|          |                                                               | the run succeeded)    |
| failed   | an entry in hash `errors`                                     | only failed records   |
| not-run  | -                                                             | the run failed first  |

Timings are group-committed per batch, so a task shows `running` until its batch lands (a few
milliseconds late, never early).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from metadata.records import TaskRecord

STATES: tuple[str, ...] = (
    "planned", "waiting", "ready", "running", "finished", "failed", "not-run")
"""Every state, in the order a legend lists them."""

STATE_COLORS: dict[str, str] = {
    "planned": "#d9d9d9", "waiting": "#fdd0a2", "ready": "#fd8d3c", "running": "#3182bd",
    "finished": "#31a354", "failed": "#de2d26", "not-run": "#f7f7f7"}
"""Fill colour of a task (node) in each state; the browser shares this table."""


def live_states(doc: Mapping[str, Any], finished: Collection[str], failed: Collection[str],
                started_workers: Collection[str]) -> dict[str, str]:
    """Task id -> state of a running run (table above)."""
    upstream = {t["id"]: t["upstream"] for t in doc["tasks"]}
    states: dict[str, str] = {}
    for w in doc["workers"]:
        started = w["worker_id"] in started_workers
        first = True
        for t in w["tasks"]:
            if t in failed:
                states[t] = "failed"
            elif t in finished:
                states[t] = "finished"
            elif not started:
                states[t] = "planned"
            else:
                inputs = all(u in finished for u in upstream.get(t, ()))
                states[t] = ("running" if first else "ready") if inputs else "waiting"
                first = False
    for t in upstream:  # a task no worker lists (never in a valid plan): say so, do not guess
        states.setdefault(t, "finished" if t in finished else "planned")
    return states


def recorded_states(task_ids: Iterable[str], records: Iterable[TaskRecord],
                    run_ok: bool | None) -> dict[str, str]:
    """Task id -> state after the run: from its attempts' records; a task without records
    finished if the run succeeded (records can be trimmed), else it did not run."""
    outcome: dict[str, bool] = {}
    for r in records:
        outcome[r.task_id] = outcome.get(r.task_id, False) or r.ok
    fallback = "finished" if run_ok else "not-run"
    return {t: ("finished" if outcome[t] else "failed") if t in outcome else fallback
            for t in task_ids}


def counts(states: Mapping[str, str]) -> dict[str, int]:
    """How many tasks are in each state (every state listed, in legend order)."""
    out = dict.fromkeys(STATES, 0)
    for s in states.values():
        out[s] += 1
    return out
