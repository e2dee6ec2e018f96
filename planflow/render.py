"""Human output (rich tables) and the JSON objects the CLI prints."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.plan import Plan
from runtime.result import RunResult

if TYPE_CHECKING:
    from planner.whatif import WhatIf

def _console() -> Any:
    from rich.console import Console

    return Console()


def _fmt_s(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


TOP_DOWNGRADES = 5
"""Downgrades listed by `planflow compile` (largest savings first; the plan has all of them)."""

CRITICAL_PATH_SHOWN = 12
"""Critical-path tasks printed before the path is cut."""


def plan_summary(plan: Plan, path: Path | None = None) -> None:
    """What `planflow compile` prints: the plan beside the best-everywhere baseline, the
    critical path, the largest downgrades and their reasons, and the notes."""
    from rich.table import Table

    console = _console()
    s, b = plan.summary, plan.baseline
    table = Table(title=f"plan of '{plan.workflow}' ({plan.strategy} on {plan.platform})")
    table.add_column("figure")
    table.add_column("planned", justify="right")
    if b:
        table.add_column("best everywhere", justify="right")
        table.add_column("change", justify="right")
    def usd(x: float) -> str:
        return f"${x:.6f}"

    def three(x: float) -> str:
        return f"{x:.3f}"

    rows = [
        ("tasks", str(len(plan.tasks)), str(len(plan.tasks)), ""),
        ("makespan", _fmt_s(s.makespan_s), *_pair(b.makespan_s if b else None, s.makespan_s,
                                                  _fmt_s)),
        ("cost", usd(s.cost_usd), *_pair(b.cost_usd if b else None, s.cost_usd, usd)),
        ("GB-s", three(s.gb_s), *_pair(b.gb_s if b else None, s.gb_s, three)),
        ("workers", str(s.workers), *_pair(b.workers if b else None, s.workers, str)),
        ("cold starts", str(s.cold_starts), *_pair(b.cold_starts if b else None, s.cold_starts,
                                                   str)),
    ]
    for row in rows:
        table.add_row(*(row if b else row[:2]))
    console.print(table)
    if s.critical_path:
        console.print(f"critical path ({len(s.critical_path)} tasks): "
                      + _path_text(s.critical_path))
    if plan.downgrades:
        console.print(f"largest downgrades ({len(plan.downgrades)} workers in all):")
        for d in plan.downgrades[:TOP_DOWNGRADES]:
            tasks = ", ".join(d.tasks[:3]) + (f" +{len(d.tasks) - 3}" if len(d.tasks) > 3 else "")
            console.print(f"  {d.worker} ({tasks}): {d.reason}")
    for note in plan.notes:
        console.print(f"note: {note}")
    if path is not None:
        console.print(f"wrote {path}")


def _pair(base: float | int | None, value: float | int, fmt: Any) -> tuple[str, str]:
    """(baseline cell, change cell): the change as a relative figure where it makes sense."""
    if base is None:
        return "", ""
    if base == value:
        return fmt(base), "="
    if isinstance(base, float) and base:
        return fmt(base), f"{(value - base) / base:+.1%}"
    return fmt(base), f"{value - base:+}"


def _path_text(path: tuple[str, ...] | list[str]) -> str:
    shown = list(path[:CRITICAL_PATH_SHOWN])
    return " -> ".join(shown) + (" -> ..." if len(path) > CRITICAL_PATH_SHOWN else "")


def what_if(report: WhatIf) -> None:
    """What `planflow simulate` prints: the plan as compiled beside the scenario, and their
    differences (the same numbers `--json` prints)."""
    from rich.table import Table

    console = _console()
    c, s, diff = report.compiled, report.scenario, report.difference()
    table = Table(title=f"what-if for '{report.workflow}' ({report.strategy} plan, "
                        f"simulated on {report.platform})")
    for col in ("figure", "as compiled", "scenario", "difference"):
        table.add_column(col, justify="left" if col == "figure" else "right")
    table.add_row("makespan", _fmt_s(c.makespan_s), _fmt_s(s.makespan_s),
                  f"{diff['makespan_s']:+.3f} s")
    table.add_row("cost", f"${c.cost_usd:.6f}", f"${s.cost_usd:.6f}", f"${diff['cost_usd']:+.6f}")
    table.add_row("GB-s", f"{c.gb_s:.3f}", f"{s.gb_s:.3f}", f"{diff['gb_s']:+.3f}")
    table.add_row("workers", str(c.workers), str(s.workers), f"{int(diff['workers']):+d}")
    table.add_row("cold starts", str(c.cold_starts), str(s.cold_starts),
                  f"{int(diff['cold_starts']):+d}")
    if c.samples and s.samples:
        for q in ("p50", "p90", "p99"):
            cm, sm = c.samples["makespan_s"][q], s.samples["makespan_s"][q]
            table.add_row(f"makespan {q}", _fmt_s(cm), _fmt_s(sm), f"{sm - cm:+.3f} s")
        for q in ("p50", "p90", "p99"):
            cc, sc = c.samples["cost_usd"][q], s.samples["cost_usd"][q]
            table.add_row(f"cost {q}", f"${cc:.6f}", f"${sc:.6f}", f"${sc - cc:+.6f}")
    console.print(table)
    if report.compiled_for is not None:
        console.print(f"what-if: the plan was compiled for '{report.compiled_for}'; both columns "
                      f"are simulated on '{report.platform}'")
    console.print("changes: " + ("; ".join(report.changes) or "none (the plan as compiled)"))
    console.print("critical path as compiled: " + _path_text(c.critical_path))
    if s.critical_path != c.critical_path:
        console.print("critical path in the scenario: " + _path_text(s.critical_path))
    if report.gantt:
        console.print(f"wrote {report.gantt}")


def plan_document(doc: dict[str, Any]) -> None:
    """What `planflow show` prints (`planflow.render_show`: fits the terminal, lists workers)."""
    from planflow.render_show import plan_document as show

    show(doc)


RESULT_REPR_MAX = 10_000
"""Longest repr of a result printed (human output) or put in JSON; longer ones are cut."""

RESULT_INLINE_BYTES = 1024
"""Bytes results up to this size are shown; larger ones only by type and size."""


def result_json(value: Any) -> Any:
    """A run's result as JSON: JSON-encodable values as they are, containers walked, large bytes
    as {"type", "size"}, anything else as its repr, cut at RESULT_REPR_MAX characters (a 200 MB
    bytes result must not print a 1 GB repr)."""
    if isinstance(value, bytes | bytearray | memoryview):
        size = value.nbytes if isinstance(value, memoryview) else len(value)
        if size > RESULT_INLINE_BYTES:
            return {"type": type(value).__name__, "size": size}
        return _cut(repr(bytes(value)))
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: result_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [result_json(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _cut(repr(value))


def result_repr(value: Any) -> str:
    """A run's result for people: its repr, large bytes by size, cut at RESULT_REPR_MAX."""
    if isinstance(value, bytes | bytearray | memoryview):
        size = value.nbytes if isinstance(value, memoryview) else len(value)
        if size > RESULT_INLINE_BYTES:
            return f"<{type(value).__name__} of {size:,} bytes>"
    return _cut(repr(value))


def _cut(text: str) -> str:
    if len(text) <= RESULT_REPR_MAX:
        return text
    return f"{text[:RESULT_REPR_MAX]}... ({len(text):,} characters in all)"


def run_json(result: RunResult) -> dict[str, Any]:
    p = result.predicted
    return {
        "workflow": result.workflow,
        "dag_id": result.dag_id,
        "strategy": result.strategy,
        "executor": result.executor,
        "result": result_json(result.result),
        "observed_makespan_s": result.observed_makespan_s,
        "makespan_s": p.makespan_s,
        "cost_usd": p.cost_usd,
        "gb_s": p.gb_s,
        "critical_path": list(p.critical_path),
        "workers": p.workers,
        "workers_started": result.workers_started,
        "recovered": list(result.recovered),
        "upsized": result.upsized,
        "prepare_s": result.prepare_s,
        "environment": None if result.environment is None else dict(result.environment),
        "replanned": None if result.replanned is None else {
            "makespan_s": result.replanned.makespan_s, "cost_usd": result.replanned.cost_usd,
            "gb_s": result.replanned.gb_s},
        "error": None,
        "tasks": [
            {"id": t.task_id, "worker": t.worker, "start_s": t.start_s, "finish_s": t.finish_s,
             "attempts": t.attempts}
            for t in result.tasks.values()
        ],
    }


def run_summary(result: RunResult) -> None:
    console = _console()
    console.print(f"[bold]{result.workflow}[/bold] run {result.dag_id} ({result.executor})")
    console.print(f"result: {result_repr(result.result)}", markup=False, highlight=False)
    console.print(f"observed makespan {_fmt_s(result.observed_makespan_s)}, "
                  f"predicted {_fmt_s(result.predicted_makespan_s)}")
    if result.environment is not None:
        env = result.environment
        how = "found cached" if env["cached"] else "built"
        console.print(f"workers' environment {env['key']} ({len(env['requirements'])} pinned "
                      f"packages) {how} in {_fmt_s(result.prepare_s)} before the run",
                      markup=False, highlight=False)


@contextlib.contextmanager
def run_progress(enabled: bool) -> Iterator[Callable[[Any], None] | None]:
    """A rich progress bar on stderr (only on a terminal); yields the callback for the run."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("running"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("tasks  {task.fields[workers]} workers"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task_id = bar.add_task("run", total=None, workers=0)

        def update(p: Any) -> None:
            bar.update(task_id, completed=p.tasks_done, total=p.tasks_total,
                       workers=p.workers_running)

        yield update
