"""`planflow compile` and `planflow simulate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planflow.cli import JsonOpt, ParamOpt, app, guard, params_of, print_json


@app.command("compile")
def compile_cmd(
    target: Annotated[str, typer.Argument(help="MODULE.py[:WORKFLOW] or a WfFormat .json file")],
    param: ParamOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Plan file to write.")] = None,
    strategy: Annotated[str, typer.Option(help="Planning strategy.")] = "wukong",
    platform: Annotated[str, typer.Option(help="Platform name or TOML file.")] = "local",
    as_json: JsonOpt = False,
) -> None:
    """Compile a workflow into a plan file."""
    from planflow import api, render

    def body() -> None:
        plan = api.compile(target, params_of(param), strategy=strategy, platform=platform)
        path = plan.save(out or _default_plan_path(target, plan.workflow))
        if as_json:
            print_json({**plan.to_json(), "plan_file": str(path)})
        else:
            render.plan_summary(plan, path)

    guard(body)


def _default_plan_path(target: str, workflow: str) -> Path:
    from planner.loader import split_target

    path, _ = split_target(target)
    return Path(f"{path.stem if path.suffix == '.json' else workflow}.plan")
