"""The `planflow` command line: a thin layer that wires options to `planflow.api`.

Every command prints a rich table for people, or with `--json` exactly one JSON object on stdout.
Errors go to stderr with exit code 2 (bad input) or 1 (the workflow failed), with no traceback
unless `--debug`. Heavy modules (numpy, scikit-learn, matplotlib) are imported by the commands
that need them, so `planflow --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from planner.errors import PlanflowError

app = typer.Typer(
    name="planflow",
    help="Compile a Python workflow into a plan, simulate it, and run it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")
_state = {"debug": False}

ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", help="Workflow parameter, name=value (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


def _guard(fn: Callable[[], T]) -> T:
    """Run a command body; turn planflow's errors into a message and an exit code."""
    try:
        return fn()
    except PlanflowError as err:
        _fail(err, err.exit_code)
    except KeyboardInterrupt:
        _fail(None, 130, "interrupted")
    except Exception as err:
        from simulator.errors import SimulatorError

        if isinstance(err, SimulatorError):
            _fail(err, 2)
        _fail(err, 1, f"internal error: {type(err).__name__}: {err} (rerun with --debug for "
                      "the traceback, and please report it)")
    raise AssertionError("unreachable")


def _fail(err: BaseException | None, code: int, message: str | None = None) -> None:
    if _state["debug"] and err is not None:
        import traceback

        traceback.print_exception(err, file=sys.stderr)
    typer.echo(f"error: {message or err}", err=True)
    raise typer.Exit(code)


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=repr, allow_nan=False) + "\n")


def _params(items: list[str] | None) -> dict[str, str]:
    from planner.params import parse_assignments

    return parse_assignments(items)


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
        plan = api.compile(target, _params(param), strategy=strategy, platform=platform)
        path = plan.save(out or _default_plan_path(target, plan.workflow))
        if as_json:
            _print_json({**plan.to_json(), "plan_file": str(path)})
        else:
            render.plan_summary(plan, path)

    _guard(body)


def _default_plan_path(target: str, workflow: str) -> Path:
    from planner.loader import split_target

    path, _ = split_target(target)
    return Path(f"{path.stem if path.suffix == '.json' else workflow}.plan")


@app.command("show")
def show_cmd(plan_file: Annotated[Path, typer.Argument(help="A .plan file.")],
             as_json: JsonOpt = False) -> None:
    """Print a plan: summary, workers and per-task decisions."""
    from planflow import api, render

    def body() -> None:
        doc = api.show(plan_file)
        if as_json:
            _print_json(doc)
        else:
            render.plan_document(doc)

    _guard(body)


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
        result = api.run(target, _params(param), inline=inline, **compile_opts)
        if as_json:
            _print_json(render.run_json(result))
        else:
            render.run_summary(result)

    _guard(body)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
