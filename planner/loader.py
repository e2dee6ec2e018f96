"""Loading a workflow program: `MODULE.py[:WORKFLOW]` or a WfFormat `trace.json` -> TaskGraph.

A module is imported from its path under a private module name and registered with cloudpickle
to be pickled *by value*, so a plan carries the module's functions and runs where the module is
absent. Import errors name the file and keep the original exception as the cause.

A workflow function returns task references (traced into the graph by `planner.graph`) or Dask
collections (converted by `planner.dask_graph`; Dask is imported only by programs that use it,
so only then is the output checked for collections).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from planner.errors import UsageError, WorkflowDefinitionError
from planner.graph import TaskGraph, build_graph
from planner.params import convert_params
from planner.trace import Workflow


def split_target(target: str) -> tuple[Path, str | None]:
    """`"examples/tree.py:tree_reduction"` -> `(Path("examples/tree.py"), "tree_reduction")`."""
    path, sep, name = target.rpartition(":")
    if sep and path and not name.endswith((".py", ".json")) and "/" not in name:
        return Path(path), name or None
    return Path(target), None


def load_module(path: Path) -> ModuleType:
    """Import the Python file at `path` (once per resolved path and content)."""
    if not path.exists():
        raise UsageError(f"no such file: {path}")
    if path.suffix != ".py":
        raise UsageError(f"{path} is not a Python module (.py) nor a WfFormat file (.json)")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    mod_name = f"planflow_user_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, resolved)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        sys.modules.pop(mod_name, None)
        raise UsageError(f"importing {path} failed: {type(err).__name__}: {err}") from err
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module


def find_workflow(module: ModuleType, path: Path, name: str | None) -> Workflow:
    """The `@workflow` of `module` named `name`, or its only one."""
    found = {obj.name: obj for obj in vars(module).values() if isinstance(obj, Workflow)}
    if name is not None:
        if name in found:
            return found[name]
        obj = getattr(module, name, None)
        if obj is not None and not isinstance(obj, Workflow):
            raise UsageError(f"{path}:{name} is not a @workflow")
        raise UsageError(f"{path} has no workflow '{name}' (it has: {', '.join(found) or 'none'})")
    if not found:
        raise UsageError(f"{path} defines no @workflow; decorate the entry function with @workflow")
    if len(found) > 1:
        names = ", ".join(sorted(found))
        raise UsageError(f"{path} defines several workflows ({names}); pick one: {path}:NAME")
    return next(iter(found.values()))


def trace_workflow(wf: Workflow, params: Mapping[str, Any] | None = None) -> TaskGraph:
    """Trace `wf` with converted parameters and build its IR."""
    values = convert_params(wf.name, wf.fn, params or {})
    try:
        trace, output = wf.trace(values)
    except WorkflowDefinitionError:
        raise  # already names the task and argument
    except Exception as err:
        raise WorkflowDefinitionError(
            f"workflow '{wf.name}' raised while it was traced: {type(err).__name__}: {err}"
        ) from err
    if holds_dask(output):
        from planner.dask_graph import graph_from_dask

        graph = graph_from_dask(output, wf.name, values)
        return dataclasses.replace(graph, dropped=tuple(c.task_id for c in trace.calls),
                                   requirements=_requirements_of(wf))
    from metadata.records import function_key

    graph = build_graph(trace, output, values, function_key=function_key)
    return dataclasses.replace(graph, requirements=_requirements_of(wf))


def _requirements_of(wf: Workflow) -> tuple[str, ...]:
    """The workflow's requirements: its decorator's, then a requirements.txt beside it."""
    from planner.requirements import declared

    try:
        module_file = inspect.getsourcefile(wf.fn)
    except TypeError:
        module_file = None
    return declared(module_file, wf.requirements)


def holds_dask(value: Any) -> bool:
    """Whether `value` is a Dask collection or a list/tuple/dict holding one (never imports
    Dask: a program that did not import it returns no collection)."""
    if "dask" not in sys.modules:
        return False
    from planner.dask_input import holds_collections

    return holds_collections(value)


def load_graph(target: str, params: Mapping[str, Any] | None = None) -> TaskGraph:
    """A module target (`file.py[:name]`) or a WfFormat file, as a TaskGraph."""
    path, name = split_target(target)
    if path.suffix == ".json":
        from planner.wfformat import load_wfformat

        return load_wfformat(path)
    module = load_module(path)
    return trace_workflow(find_workflow(module, path, name), params)
