"""`planflow run` and `planflow show`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planflow.cli import JsonOpt, ParamOpt, app, guard, params_of, print_json


@app.command("show")
def show_cmd(plan_file: Annotated[Path, typer.Argument(help="A .plan file.")],
             as_json: JsonOpt = False) -> None:
    """Print a plan: summary, workers and per-task decisions."""
    from planflow import api, render

    def body() -> None:
        doc = api.show(plan_file)
        if as_json:
            print_json(doc)
        else:
            render.plan_document(doc)

    guard(body, as_json=as_json)


@app.command("run")
def run_cmd(
    target: Annotated[str, typer.Argument(help="A .plan file, MODULE.py[:WORKFLOW] or .json")],
    param: ParamOpt = None,
    redis: Annotated[str | None, typer.Option(
        help="Redis URL (redis://, rediss://, unix://; may carry a password). Default: "
             "PLANFLOW_REDIS_URL, else an embedded server for the run.")] = None,
    namespace: Annotated[str, typer.Option(help="Key namespace of the run and metrics.")]
    = "planflow",
    launcher: Annotated[str, typer.Option(
        help="local (worker processes, enforced resources) | thread | ray (Ray tasks, "
             "planflow[ray]) | inline.")] = "local",
    ray_address: Annotated[str | None, typer.Option(
        help="Ray cluster to run the workers on (--launcher ray). Default: RAY_ADDRESS, else a "
             "local Ray instance for the run.")] = None,
    inline: Annotated[bool, typer.Option(
        "--inline", help="Run in this process (the reference executor, no Redis).")] = False,
    timeout_s: Annotated[float, typer.Option(
        "--timeout-s", help="Give up (and clean up) after this many seconds.")] = 3600.0,
    retries: Annotated[int, typer.Option(
        help="Retries of tasks whose @task options set none.")] = 0,
    metrics_upload: Annotated[str, typer.Option(
        help="When workers write metrics: on-exit | per-task | periodic | batched.")]
    = "on-exit",
    strategy: Annotated[str | None, typer.Option(
        help="Strategy when compiling a module first.")] = None,
    platform: Annotated[str, typer.Option(
        help="Platform when compiling a module first.")] = "local",
    dashboard: Annotated[bool, typer.Option(
        "--dashboard", help="Watch the run in the browser (planflow[dashboard]).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a plan (a module or WfFormat file is compiled first)."""
    from planflow import api, render
    from planflow.cli_dashboard import dashboard_for_run

    def body() -> None:
        compile_opts: dict[str, object] = {}
        if not target.endswith(".plan"):
            compile_opts["platform"] = platform
            if strategy:
                compile_opts["strategy"] = strategy
        with dashboard_for_run(dashboard, redis, namespace, inline) as url, \
                render.run_progress(enabled=not as_json and not inline) as progress:
            result = api.run(target, params_of(param), inline=inline, redis=url,
                             namespace=namespace, launcher=launcher, timeout_s=timeout_s,
                             metrics_upload=metrics_upload, progress=progress,
                             retries=retries, ray_address=ray_address, **compile_opts)
        if as_json:
            print_json(render.run_json(result))
        else:
            render.run_summary(result)

    guard(body, as_json=as_json, json_context={"target": target, "result": None})
