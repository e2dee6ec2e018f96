"""The `planflow` command line: a thin layer that wires options to `planflow.api`.

This module holds the app, the error handling and the shared options; the commands live in
`cli_plan` (compile, simulate), `cli_run` (run, show), `cli_metrics` (metrics),
`cli_dashboard` (dashboard, report) and `cli_calibrate` (calibrate).

Every command prints a rich table for people, or with `--json` exactly one JSON object on stdout,
on success and on failure alike (then with `error`: type, message, exit code, and for a failed
task its record). Errors go to stderr with exit code 2 (bad input, an unusable store) or 1 (the
workflow failed), 130/143/129 when interrupted by Ctrl-C/SIGTERM/SIGHUP (after cleaning up),
with no traceback unless `--debug`; a closed stdout (`| head`) ends the command quietly.
Heavy modules (numpy, scikit-learn, matplotlib) are imported by the commands
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
_state = {"debug": False, "noted": False}


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


def guard(fn: Callable[[], T], *, as_json: bool = False,
          json_context: dict[str, Any] | None = None) -> T:
    """Run a command body; turn planflow's errors into a message and an exit code. With
    `as_json` (the command's --json) the failure is also one JSON object on stdout
    (`json_context` plus `error`)."""
    context = dict(json_context or {}) if as_json else None
    from runtime.interrupts import exit_code_of

    try:
        out = fn()
        sys.stdout.flush()  # here, where a closed pipe is handled, not at interpreter exit
        note_uncalibrated()
        return out
    except PlanflowError as err:
        _fail(err, err.exit_code, context)
    except KeyboardInterrupt as err:
        code = exit_code_of(err)
        _fail(err, code, context, "interrupted" if code == 130 else
              f"stopped by {err}, after cleaning up")
    except BrokenPipeError:
        _quiet_stdout()
        raise typer.Exit(BROKEN_PIPE_EXIT) from None
    except Exception as err:
        from metadata.store_errors import is_store_error
        from simulator.errors import SimulatorError

        if isinstance(err, SimulatorError):
            _fail(err, 2, context)
        if is_store_error(err):
            from runtime.errors import store_error

            _fail(store_error(err, "the configured store", "running the command"), 2,
                  context)
        _fail(err, 1, context, f"internal error: {type(err).__name__}: {err} (rerun "
                                    "with --debug for the traceback, and please report it)")
    raise AssertionError("unreachable")


UNCALIBRATED_NOTE = ("note: platform 'local' is derived from this machine's CPUs and memory; "
                     "run `planflow calibrate` once to measure start-ups and the store")
"""Printed on stderr once per process when a command used `local` without a calibration."""


def note_uncalibrated() -> None:
    """The one-line note when this process loaded an uncalibrated `local` or `ray` (once)."""
    module = sys.modules.get("simulator.host_platform")  # not imported: `local` was not loaded
    if module is not None and module.was_derived() and not _state["noted"]:
        _state["noted"] = True
        typer.echo(UNCALIBRATED_NOTE, err=True)
    files = sys.modules.get("simulator.platform_file")
    if files is not None and files.ray_was_builtin() and not _state.get("noted_ray"):
        _state["noted_ray"] = True
        typer.echo(RAY_UNCALIBRATED_NOTE, err=True)


RAY_UNCALIBRATED_NOTE = ("note: platform 'ray' is the hand-written simulator/platforms/ray.toml; "
                         "run `planflow calibrate --launcher ray` to measure your cluster")


BROKEN_PIPE_EXIT = 141
"""Exit status when stdout's reader went away (`planflow ... | head`): 128 + SIGPIPE, quietly."""


def _fail(err: BaseException | None, code: int, json_context: dict[str, Any] | None,
          message: str | None = None) -> None:
    """Report and exit; `json_context` None: not in JSON mode."""
    if _state["debug"] and err is not None:
        import traceback

        traceback.print_exception(err, file=sys.stderr)
    text = message or str(err)
    typer.echo(f"error: {text}", err=True)
    if json_context is not None:  # still exactly one JSON object on stdout
        from runtime.errors import error_json

        error = error_json(err) if err is not None else {}
        error.update({"message": text, "exit_code": code})
        if isinstance(err, KeyboardInterrupt):
            error["exc_type"] = "Interrupted"
        try:
            print_json({**json_context, "error": error})
        except BrokenPipeError:
            _quiet_stdout()
    raise typer.Exit(code)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone, and flushing at exit must not fail."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=repr, allow_nan=False) + "\n")
    sys.stdout.flush()


def params_of(items: list[str] | None) -> dict[str, str]:
    from planner.params import parse_assignments

    return parse_assignments(items)


# The commands register themselves on `app`; imported here because they import from above.
from planflow import cli_calibrate, cli_dashboard, cli_metrics, cli_plan, cli_run  # noqa: E402, F401


def main() -> None:
    """Console-script entry point: SIGTERM and SIGHUP interrupt a command like Ctrl-C does
    (`runtime.interrupts`), so it cleans up the same way."""
    from runtime.interrupts import install_handlers

    install_handlers()
    app()


if __name__ == "__main__":
    main()
