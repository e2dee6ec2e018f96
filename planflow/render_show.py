"""What `planflow show` prints: the plan's figures, its workers, its tasks, in the terminal's
width.

Fitting the terminal is deliberate, never a cut cell: times are short (`350ms`, `1.01s`), the
function column is dropped when every task id already names its function (`<function>-<n>`, the
id contract), optimizations wrap inside their column instead of ending in `…`, and below
`NARROW_COLUMNS` the slack column goes too (below `TINY_COLUMNS`, the finish). Tables list up
to `TASKS_SHOWN` tasks and `WORKERS_SHOWN` workers and then say how many more there are;
`--json` always has all of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

TASKS_SHOWN = 100
"""Task rows printed before the table is cut (a 63-task plan is printed whole)."""

WORKERS_SHOWN = 40
"""Worker rows printed before the table is cut."""

NARROW_COLUMNS = 72
"""Below this terminal width the tasks table drops its slack column."""

TINY_COLUMNS = 66
"""Below this terminal width the tasks table also drops the finish column."""

TASKS_LISTED = 3
"""Task ids a worker row names (first ones, then the count of the rest)."""

DOWNGRADES_SHOWN = 5
"""Downgrades listed under the tables (largest savings first)."""


def short_s(x: float) -> str:
    """A duration in at most 6 characters: `350ms`, `1.01s`, `123s`."""
    if not math.isfinite(x):
        return str(x)
    if x < 1:
        return f"{x * 1000:.0f}ms"
    return f"{x:.2f}s" if x < 100 else f"{x:.0f}s"


def plan_document(doc: Mapping[str, Any]) -> None:
    """Print a plan document (`planflow show`)."""
    from rich.console import Console

    console = Console()
    tasks, workers = doc["tasks"], doc["workers"]
    console.print(
        f"[bold]{doc['workflow']}[/bold]  strategy={doc['strategy']}  platform={doc['platform']}"
        f"  makespan={short_s(doc['makespan_s'])}  cost=${doc['cost_usd']:.6f}"
        f"  GB-s={doc['gb_s']:.3f}  workers={len(workers)}  tasks={len(tasks)}")
    console.print(workers_table(workers))
    if len(workers) > WORKERS_SHOWN:
        console.print(f"... {len(workers) - WORKERS_SHOWN} more workers (--json shows all)")
    console.print(tasks_table(tasks, console.width))
    if len(tasks) > TASKS_SHOWN:
        console.print(f"... {len(tasks) - TASKS_SHOWN} more tasks (--json shows all)")
    for d in doc.get("downgrades", [])[:DOWNGRADES_SHOWN]:
        console.print(f"downgrade {d['worker']}: {d['reason']}")
    candidates = doc.get("planning", {}).get("candidates", [])
    if len(candidates) > 1:
        console.print("placements simulated: " + ", ".join(
            f"{'*' if c['picked'] else ''}{c['name']} ({c['workers']} workers) "
            + ("deadlocks" if c["makespan_s"] is None else short_s(c["makespan_s"]))
            for c in candidates) + "  (* picked)")
    if doc.get("requirements"):
        console.print(f"requirements (pinned at compile): {', '.join(doc['requirements'])}",
                      markup=False, highlight=False)
    for m in doc.get("dynamic", {}).values():
        console.print(
            f"dynamic fan-out {m['task_id']} ({m['function']}): planned for {m['width']} "
            f"elements ({m['source']}), {short_s(m['pred_element_s'])} each "
            f"({m['element_source']}); {m['local']} on its own worker, then {m['per_worker']} "
            f"per new worker at {m['memory_mb']} MB")


def workers_table(workers: Sequence[Mapping[str, Any]]) -> Any:
    """Per worker: configuration, its tasks in order, predicted start and stop, start-up."""
    from rich import box
    from rich.table import Table

    table = Table(title=f"{len(workers)} workers", box=box.SIMPLE_HEAD, title_justify="left")
    for col, right in (("worker", False), ("MB", True), ("CPUs", True), ("tasks", False),
                       ("start", True), ("stop", True), ("start-up", False)):
        table.add_column(col, justify="right" if right else "left",
                         overflow="fold", no_wrap=col != "tasks")
    for w in workers[:WORKERS_SHOWN]:
        ids = list(w["tasks"])
        named = ", ".join(ids[:TASKS_LISTED]) + (f" +{len(ids) - TASKS_LISTED}"
                                                 if len(ids) > TASKS_LISTED else "")
        startup = "cold" if w.get("cold", True) else "warm"
        if w.get("prewarm_at_s") is not None:
            startup += f", pre-warm {short_s(w['prewarm_at_s'])}"
        if w.get("preload"):
            startup += ", pre-load"
        table.add_row(w["worker_id"], str(w["memory_mb"]), f"{w['cpus']:.2f}", named,
                      short_s(w.get("pred_start_s", 0.0)), short_s(w.get("pred_stop_s", 0.0)),
                      startup)
    return table


def tasks_table(tasks: Sequence[Mapping[str, Any]], width: int) -> Any:
    """Per task: configuration, worker, predicted times, critical flag, optimizations."""
    from rich import box
    from rich.table import Table

    named = all(t["id"].rpartition("-")[0] == t["function"] for t in tasks)
    columns = ["task", *([] if named else ["function"]), "MB", "worker", "start", "finish",
               "slack", "crit", "optimizations"]
    if width < NARROW_COLUMNS:
        columns.remove("slack")
    if width < TINY_COLUMNS:
        columns.remove("finish")
    title = f"{len(tasks)} tasks" + (" (ids name their function)" if named else "")
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    longest = max((len(o) for t in tasks for o in t["optimizations"]), default=5)
    for col in columns:
        right = col in ("MB", "start", "finish", "slack")
        table.add_column(col, justify="right" if right else "left", overflow="fold",
                         no_wrap=col != "optimizations",
                         min_width=longest if col == "optimizations" else None)
    for t in tasks[:TASKS_SHOWN]:
        cells = {"task": t["id"], "function": t["function"], "MB": str(t["memory_mb"]),
                 "worker": t["worker"], "start": short_s(t["pred_start_s"]),
                 "finish": short_s(t["pred_finish_s"]), "slack": short_s(t.get("slack_s", 0.0)),
                 "crit": "yes" if t["critical"] else "",
                 "optimizations": ", ".join(t["optimizations"])}
        table.add_row(*(cells[c] for c in columns))
    return table
