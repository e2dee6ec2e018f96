"""`planflow metrics`: what the metrics store knows, exported, pruned, and how accurate the
predictions learned from it are."""

from __future__ import annotations

import statistics
import sys
from dataclasses import asdict
from typing import Annotated, Any

import typer

from planflow.cli import JsonOpt, app, guard, print_json
from planner.plan import jsonable

metrics_app = typer.Typer(help="Inspect the metrics recorded by runs.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")

RedisOpt = Annotated[str | None, typer.Option(
    "--redis", help="Redis URL (else PLANFLOW_REDIS_URL, else the embedded store).")]
NamespaceOpt = Annotated[str, typer.Option(help="Key namespace.")]


def _with_store(redis: str | None, namespace: str, action: Any) -> Any:
    from planflow.stores import metrics_store

    with metrics_store(redis, namespace) as store:
        return action(store)


@metrics_app.command("list")
def list_cmd(redis: RedisOpt = None, namespace: NamespaceOpt = "planflow",
             as_json: JsonOpt = False) -> None:
    """Functions with recorded task metrics, and runs."""

    def body() -> None:
        def act(store: Any) -> dict[str, Any]:
            if store is None:
                return {"functions": [], "runs": []}
            return {"functions": [asdict(f) for f in store.functions()],
                    "runs": [r.to_dict() for r in store.runs()]}

        doc = _with_store(redis, namespace, act)
        if as_json:
            print_json(doc)
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{len(doc['functions'])} functions, {len(doc['runs'])} runs")
        for col in ("function", "key", "records"):
            table.add_column(col)
        for f in doc["functions"]:
            table.add_row(f["function_name"], f["function_key"], str(f["records"]))
        Console().print(table)

    guard(body, as_json=as_json)


@metrics_app.command("show")
def show_cmd(function: Annotated[str, typer.Argument(help="Function name or key.")],
             redis: RedisOpt = None, namespace: NamespaceOpt = "planflow",
             as_json: JsonOpt = False) -> None:
    """Records and fitted models of one function."""
    from planner.errors import UsageError

    def body() -> None:
        from metadata.reports import summarize

        def act(store: Any) -> list[Any]:
            return summarize(store, function) if store is not None else []

        summaries = _with_store(redis, namespace, act)
        if not summaries:
            raise UsageError(f"no metrics recorded for function '{function}'")
        doc = {"functions": [_jsonable(asdict(s)) for s in summaries]}
        if as_json:
            print_json(doc)
            return
        from rich.console import Console

        console = Console()
        for s in summaries:
            console.print(f"[bold]{s.function_name}[/bold] {s.function_key}: {s.records} "
                          f"records ({s.failed} failed) from {s.runs} runs")
            console.print("  records per CPU count: "
                          f"{ {round(c, 3): k for c, k in sorted(s.configurations.items())} }")
            console.print(f"  duration: {s.duration.describe() if s.duration else 'no model'}")
            console.print(f"  output:   {s.output.describe() if s.output else 'no model'}")

    guard(body, as_json=as_json)


@metrics_app.command("export")
def export_cmd(csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = True,
               redis: RedisOpt = None, namespace: NamespaceOpt = "planflow") -> None:
    """Every task record as CSV on stdout."""

    def body() -> None:
        from metadata.reports import write_csv

        def act(store: Any) -> int:
            return write_csv(store, sys.stdout) if store is not None else 0

        _with_store(redis, namespace, act)

    guard(body)


@metrics_app.command("prune")
def prune_cmd(
    keep_last: Annotated[int | None, typer.Option(help="Keep the newest N records per function.")]
    = None,
    function: Annotated[list[str] | None, typer.Option(help="Drop this function's history.")]
    = None,
    keep_runs: Annotated[int | None, typer.Option(
        help="Keep the run and worker records of the newest N runs (runs keep the newest "
             "1000 by default).")] = None,
    redis: RedisOpt = None, namespace: NamespaceOpt = "planflow", as_json: JsonOpt = False,
) -> None:
    """Remove old records (or whole functions) from the store."""

    def body() -> None:
        def act(store: Any) -> dict[str, int]:
            if store is None:
                return {"records_removed": 0, "functions_removed": 0, "runs_removed": 0}
            keys = [k for name in (function or []) for k in store.resolve(name)]
            return asdict(store.prune(keep_last=keep_last, functions=keys, keep_runs=keep_runs))

        doc = _with_store(redis, namespace, act)
        if as_json:
            print_json(doc)
        else:
            typer.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in doc.items()))

    guard(body, as_json=as_json)


@metrics_app.command("accuracy")
def accuracy_cmd(
    makespan: Annotated[bool, typer.Option(
        "--makespan", help="Predicted vs observed makespan of recorded runs, per workflow.")]
    = False,
    last: Annotated[int | None, typer.Option(
        min=1, help="With --makespan: only each workflow's newest N runs.")] = None,
    redis: RedisOpt = None, namespace: NamespaceOpt = "planflow", as_json: JsonOpt = False,
) -> None:
    """Leave-one-run-out error of the duration and output-size models per function, or with
    --makespan the simulator's: predicted vs observed makespan per run and workflow."""
    if makespan:
        guard(lambda: _makespan_accuracy(redis, namespace, last, as_json), as_json=as_json)
        return

    def body() -> None:
        from metadata.reports import accuracy

        def act(store: Any) -> list[Any]:
            return accuracy(store) if store is not None else []

        rows = [asdict(a) for a in _with_store(redis, namespace, act)]
        if as_json:
            print_json({"functions": rows})
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title="prediction error (leave one run out)")
        for col in ("function", "runs", "samples", "duration MAPE %", "duration p90 %",
                    "output MAPE %", "output p90 %"):
            table.add_column(col, justify="right" if col != "function" else "left")
        for r in rows:
            table.add_row(r["function_name"], str(r["runs"]), str(r["samples"]),
                          *(_pct(r[k]) for k in ("duration_mape_pct", "duration_p90_ape_pct",
                                                 "output_mape_pct", "output_p90_ape_pct")))
        Console().print(table)

    guard(body, as_json=as_json)


def _makespan_accuracy(redis: str | None, namespace: str, last: int | None,
                       as_json: bool) -> None:
    """`metrics accuracy --makespan`: per run and per workflow, and over all runs the median
    and worst absolute error (None without runs)."""
    from metadata.reports import makespan_accuracy

    runs, workflows = _with_store(redis, namespace, lambda store: makespan_accuracy(
        store.runs() if store is not None else [], last))
    errors = [abs(r.error_pct) for r in runs]
    doc = {"runs": [asdict(r) for r in runs], "workflows": [asdict(w) for w in workflows],
           "median_abs_error_pct": float(statistics.median(errors)) if errors else None,
           "worst_abs_error_pct": max(errors) if errors else None}
    if as_json:
        print_json(doc)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="makespan: predicted vs observed (error = (predicted - observed) / "
                        "observed)")
    for col in ("run", "workflow", "strategy", "predicted s", "observed s", "error %"):
        table.add_column(col, justify="left" if col in ("run", "workflow", "strategy")
                         else "right")
    for r in runs:
        table.add_row(r.run_id, r.workflow, r.strategy, f"{r.predicted_makespan_s:.3f}",
                      f"{r.observed_makespan_s:.3f}", f"{r.error_pct:+.1f}")
    console = Console()
    console.print(table)
    for w in workflows:
        console.print(f"{w.workflow}: {w.runs} runs, median |error| "
                      f"{w.median_abs_error_pct:.1f} %, worst {w.worst_abs_error_pct:.1f} %, "
                      f"last {w.last_error_pct:+.1f} %")
    if errors:
        console.print(f"all runs: median |error| {doc['median_abs_error_pct']:.1f} %, worst "
                      f"{doc['worst_abs_error_pct']:.1f} %")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _jsonable(value: Any) -> Any:
    """Containers walked with keys as strings (CPU counts are float keys); leaves as
    `planner.plan.jsonable` gives them."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return jsonable(value)
