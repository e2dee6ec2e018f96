"""planflow: write a workflow as Python functions, compile it into a plan, simulate, run.

    from planflow import task, workflow

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @workflow
    def pairs(n: int = 8):
        level = list(range(n))
        while len(level) > 1:
            level = [add(a, b) for a, b in zip(level[0::2], level[1::2])]
        return level[0]

    plan = planflow.compile(pairs, {"n": 16})
    print(planflow.run(plan, inline=True).result)

`planflow.map(task, ref, **constant_kwargs)` maps a task over a sequence known only at run time
(a dynamic fan-out); its result is a reference to the list of results.

The Python API mirrors the CLI: `compile`, `simulate`, `run`, `show`, `calibrate`. The first
three also take Dask collections (`planflow.run(x.sum())`); `from_dask(collections, name)`
names their graph. Heavy modules load on first use, so `import planflow` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from planner.trace import Task, TaskRef, Workflow, task, workflow

if TYPE_CHECKING:
    from planflow.api import calibrate, compile, from_dask, load, map, run, show, simulate

__all__ = ["Task", "TaskRef", "Workflow", "calibrate", "compile", "from_dask", "load", "map",
           "run", "show", "simulate", "task", "workflow"]
__version__ = "0.1.0"

_API = {"calibrate", "compile", "from_dask", "load", "map", "run", "show", "simulate"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from planflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'planflow' has no attribute {name!r}")
