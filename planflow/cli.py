"""The `planflow` command line: a thin layer that wires options to `planflow.api`.

This module holds the app, the error handling and the shared options; the commands live in
`cli_plan` (compile, simulate), `cli_run` (run, show), `cli_metrics` (metrics) and
`cli_dashboard` (dashboard, report).

Every command prints a rich table for people, or with `--json` exactly one JSON object on stdout.
Errors go to stderr with exit code 2 (bad input) or 1 (the workflow failed), with no traceback
unless `--debug`. Heavy modules (numpy, scikit-learn, matplotlib) are imported by the commands
that need them, so `planflow --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

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


def _flags_take_no_value() -> None:
    """typer prints a type beside every option in --help, flags included (`--json <bool>`),
    which reads as if the flag took a value; here flags print none, as click's plain help
    does. Applied once, and only where typer has the method (other versions: untouched)."""
    from typer import core

    option = getattr(core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if option is None or shown is None or getattr(shown, "planflow_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        return cast(str | None, shown(self, ctx))

    display_type_rich.planflow_flags = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich


_flags_take_no_value()

ParamOpt = Annotated[list[str] | None, typer.Option(
    "--param", "-p", metavar="NAME=VALUE", help="Workflow parameter (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


def guard(fn: Callable[[], T]) -> T:
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


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=repr, allow_nan=False) + "\n")


def params_of(items: list[str] | None) -> dict[str, str]:
    from planner.params import parse_assignments

    return parse_assignments(items)


# The commands register themselves on `app`; imported here because they import from above.
from planflow import cli_dashboard, cli_metrics, cli_plan, cli_run  # noqa: E402, F401


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
