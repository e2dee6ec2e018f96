"""Human output (rich tables) and the JSON objects the CLI prints."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from planner.plan import Plan
from runtime.result import RunResult

MAX_ROWS = 40
"""Rows of a task table printed before it is cut (the JSON always has all of them)."""


def _console() -> Any:
    from rich.console import Console

    return Console()


def jsonable(value: Any) -> Any:
    """`value` if JSON can encode it (finite numbers), else its repr."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _fmt_s(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def plan_summary(plan: Plan, path: Path | None = None) -> None:
    from rich.table import Table

    console = _console()
    s = plan.summary
    table = Table(title=f"plan of '{plan.workflow}' ({plan.strategy} on {plan.platform})")
    table.add_column("figure")
    table.add_column("predicted", justify="right")
    if plan.baseline:
        table.add_column("best everywhere", justify="right")
    b = plan.baseline
    rows = [
        ("tasks", str(len(plan.tasks)), str(len(plan.tasks))),
        ("makespan", _fmt_s(s.makespan_s), _fmt_s(b.makespan_s) if b else ""),
        ("cost", f"${s.cost_usd:.6f}", f"${b.cost_usd:.6f}" if b else ""),
        ("GB-s", f"{s.gb_s:.3f}", f"{b.gb_s:.3f}" if b else ""),
        ("workers", str(s.workers), str(b.workers) if b else ""),
        ("cold starts", str(s.cold_starts), str(b.cold_starts) if b else ""),
    ]
    for row in rows:
        table.add_row(*(row if b else row[:2]))
    console.print(table)
    if s.critical_path:
        path_txt = " -> ".join(s.critical_path[:12]) + (" -> ..." if len(s.critical_path) > 12
                                                        else "")
        console.print(f"critical path: {path_txt}")
    for note in plan.notes:
        console.print(f"note: {note}")
    if path is not None:
        console.print(f"wrote {path}")


def plan_document(doc: dict[str, Any]) -> None:
    from rich.table import Table

    console = _console()
    console.print(
        f"[bold]{doc['workflow']}[/bold]  strategy={doc['strategy']}  platform={doc['platform']}"
        f"  makespan={_fmt_s(doc['makespan_s'])}  cost=${doc['cost_usd']:.6f}"
        f"  GB-s={doc['gb_s']:.3f}  workers={len(doc['workers'])}  tasks={len(doc['tasks'])}"
    )
    table = Table()
    for col in ("task", "function", "memory MB", "worker", "start", "finish", "critical",
                "optimizations"):
        table.add_column(col)
    for t in doc["tasks"][:MAX_ROWS]:
        table.add_row(t["id"], t["function"], str(t["memory_mb"]), t["worker"],
                      _fmt_s(t["pred_start_s"]), _fmt_s(t["pred_finish_s"]),
                      "yes" if t["critical"] else "", ", ".join(t["optimizations"]))
    console.print(table)
    if len(doc["tasks"]) > MAX_ROWS:
        console.print(f"... {len(doc['tasks']) - MAX_ROWS} more tasks (--json shows all)")


def run_json(result: RunResult) -> dict[str, Any]:
    p = result.predicted
    return {
        "workflow": result.workflow,
        "dag_id": result.dag_id,
        "strategy": result.strategy,
        "executor": result.executor,
        "result": jsonable(result.result),
        "observed_makespan_s": result.observed_makespan_s,
        "makespan_s": p.makespan_s,
        "cost_usd": p.cost_usd,
        "gb_s": p.gb_s,
        "critical_path": list(p.critical_path),
        "workers": p.workers,
        "workers_started": result.workers_started,
        "tasks": [
            {"id": t.task_id, "worker": t.worker, "start_s": t.start_s, "finish_s": t.finish_s,
             "attempts": t.attempts}
            for t in result.tasks.values()
        ],
    }


def run_summary(result: RunResult) -> None:
    console = _console()
    console.print(f"[bold]{result.workflow}[/bold] run {result.dag_id} ({result.executor})")
    console.print(f"result: {result.result!r}")
    console.print(f"observed makespan {_fmt_s(result.observed_makespan_s)}, "
                  f"predicted {_fmt_s(result.predicted_makespan_s)}")
