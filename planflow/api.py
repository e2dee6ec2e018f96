"""The Python API; the CLI is a thin layer over these functions.

`compile(target, params, **options) -> Plan`, `run(target, params, ...) -> RunResult`,
`show(path) -> dict`, `load(path) -> Plan`. A target is a `Plan`, a `.plan` path, a
`@workflow` object, a `module.py[:workflow]` path or a WfFormat `.json` file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from planner.compiler import CompileOptions, compile_graph
from planner.errors import UsageError
from planner.graph import TaskGraph
from planner.loader import load_graph, trace_workflow
from planner.plan import Plan, load_plan, read_plan_json
from planner.trace import Workflow
from runtime.result import RunResult

Target = Plan | TaskGraph | Workflow | str | Path


def graph_of(target: TaskGraph | Workflow | str | Path,
             params: Mapping[str, Any] | None = None) -> TaskGraph:
    """The task graph of a workflow object, module path or WfFormat file."""
    if isinstance(target, TaskGraph):
        if params:
            raise UsageError("parameters cannot be applied to an already built task graph")
        return target
    if isinstance(target, Workflow):
        return trace_workflow(target, params)
    return load_graph(str(target), params)


def compile(target: TaskGraph | Workflow | str | Path, params: Mapping[str, Any] | None = None,
            *, out: str | Path | None = None, **options: Any) -> Plan:
    """Compile a workflow into a Plan (and write it to `out` when given)."""
    try:
        opts = CompileOptions(**options)
    except TypeError as err:
        raise UsageError(f"compile: {err}") from None
    plan = compile_graph(graph_of(target, params), opts)
    if out is not None:
        plan.save(out)
    return plan


def load(path: str | Path) -> Plan:
    """Load a `.plan` file (plans are code: load only plans you trust)."""
    return load_plan(path)


def show(path: str | Path) -> dict[str, Any]:
    """The readable part of a plan file."""
    return read_plan_json(path)


def as_plan(target: Target, params: Mapping[str, Any] | None = None, **options: Any) -> Plan:
    """A plan for any target: loaded when it is one, compiled otherwise."""
    if isinstance(target, Plan):
        return target
    if isinstance(target, str | Path) and str(target).endswith(".plan"):
        if params:
            raise UsageError("parameters are fixed when a plan is compiled; "
                             "pass -p to `planflow compile` instead")
        return load_plan(target)
    return compile(target, params, **options)


def run(target: Target, params: Mapping[str, Any] | None = None, *, inline: bool = False,
        **options: Any) -> RunResult:
    """Execute a plan (compiling the target first when it is not one)."""
    plan = as_plan(target, params, **options)
    if inline:
        from runtime.inline import run_inline

        return run_inline(plan)
    raise UsageError("only the inline executor exists yet: pass inline=True (CLI: --inline)")


def simulate(target: Target, params: Mapping[str, Any] | None = None, **options: Any) -> Any:
    raise UsageError("simulate is not available yet")
