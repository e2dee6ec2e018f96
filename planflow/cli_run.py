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

    guard(body)


@app.command("run")
def run_cmd(
    target: Annotated[str, typer.Argument(help="A .plan file, MODULE.py[:WORKFLOW] or .json")],
    param: ParamOpt = None,
    inline: Annotated[bool, typer.Option(help="Run in this process (reference executor).")] = False,
    strategy: Annotated[str, typer.Option(help="Strategy when compiling a module.")] = "wukong",
    as_json: JsonOpt = False,
) -> None:
    """Run a plan (a module or WfFormat file is compiled first)."""
    from planflow import api, render

    def body() -> None:
        compile_opts = {} if target.endswith(".plan") else {"strategy": strategy}
        result = api.run(target, params_of(param), inline=inline, **compile_opts)
        if as_json:
            print_json(render.run_json(result))
        else:
            render.run_summary(result)

    guard(body)
