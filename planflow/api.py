"""The Python API; the CLI is a thin layer over these functions.

`compile(target, params, **options) -> Plan`, `simulate(target, ...) -> WhatIf`,
`run(target, params, ...) -> RunResult`, `show(path) -> dict`, `load(path) -> Plan`,
`calibrate(launcher="local"|"ray", ...) -> Calibration | RayCalibration` (this machine as
`local`, a Ray cluster as `ray`). A target
is a `Plan`, a `.plan` path, a `@workflow` object, a `module.py[:workflow]` path, a WfFormat
`.json` file, or Dask collections: a collection (dask.array, dask.dataframe, dask.bag,
dask.delayed) or a list/tuple/dict holding some, compiled and run like a workflow (`run`
returns what `dask.compute` would, in the same structure). `from_dask(collections, name)`
converts them into a TaskGraph under a name of your choice. Inside a workflow,
`map(task, ref, **constant_kwargs)` is a dynamic fan-out over a value known only at run time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planflow.stores import configured_url, metrics_store
from planner.compiler import DEFAULT_PLATFORM, CompileOptions, compile_graph
from planner.errors import UsageError
from planner.graph import TaskGraph
from planner.loader import holds_dask, load_graph, trace_workflow
from planner.plan import Plan, PlanSummary, load_plan, read_plan_json
from planner.trace import TaskRef, Workflow, map_task
from runtime.result import RunResult

if TYPE_CHECKING:
    from planner.whatif import WhatIf
    from runtime.calibrate import Calibration
    from runtime.ray_calibrate import RayCalibration
    from runtime.session import RunProgress
    from simulator.platform import Platform

Target = Plan | TaskGraph | Workflow | str | Path | Any
"""Anything `compile`, `simulate` and `run` accept (the module docstring lists them)."""


def map(task: Any, ref: TaskRef, /, *, expected_width: int | None = None,
        **constant_kwargs: Any) -> TaskRef:
    """A dynamic fan-out: `task` applied to each element of the sequence `ref` produces at run
    time (`task.fn(element, **constant_kwargs)`). Returns a reference to the list of results,
    in element order, usable by further tasks and maps. `expected_width` is a planning hint,
    used until runs have recorded the width (`planner.dynamic`)."""
    return map_task(task, ref, expected_width=expected_width, **constant_kwargs)


def from_dask(collections: Any, name: str | None = None) -> TaskGraph:
    """The task graph of Dask collections (a collection, or a list/tuple/dict of them), named
    `name` (default: the first collection's key prefix, e.g. `sum-aggregate`)."""
    from planner.dask_graph import graph_from_dask

    return graph_from_dask(collections, name)


def graph_of(target: Target, params: Mapping[str, Any] | None = None) -> TaskGraph:
    """The task graph of a workflow object, module path, WfFormat file or Dask collections."""
    if isinstance(target, TaskGraph) or holds_dask(target):
        if params:
            raise UsageError("parameters cannot be applied to an already built task graph "
                             "or to Dask collections; build them with the values instead")
        return target if isinstance(target, TaskGraph) else from_dask(target)
    if isinstance(target, Workflow):
        return trace_workflow(target, params)
    if not isinstance(target, str | Path):
        raise UsageError(f"cannot compile a {type(target).__name__}: pass a @workflow, a "
                         "MODULE.py[:WORKFLOW] path, a plan, a task graph or Dask collections")
    return load_graph(str(target), params)


def compile(target: Target, params: Mapping[str, Any] | None = None,
            *, out: str | Path | None = None, access: Any = None, redis: str | None = None,
            namespace: str = "planflow", **options: Any) -> Plan:
    """Compile a workflow into a Plan (and write it to `out` when given).

    `options` are `planner.compiler.CompileOptions` fields (strategy, platform, memory_mb,
    slowdown, rounds, deadline_s, quantile, clustering, delayed_io, prewarm, preload);
    `access` a `metadata.MetadataAccess` whose history predicts durations. Without it, the
    metrics recorded by earlier runs are read from `redis` (else `PLANFLOW_REDIS_URL`, else the
    embedded store), only for the functions of this graph.
    """
    try:
        opts = CompileOptions(**options)
    except TypeError as err:
        raise UsageError(f"compile: {err}") from None
    graph = graph_of(target, params)
    with learned_predictions(access, redis, namespace, opts.platform) as history:
        plan = compile_graph(graph, opts, access=history)
    if out is not None:
        plan.save(out)
    return plan


@contextlib.contextmanager
def learned_predictions(access: Any, redis: str | None, namespace: str,
                        platform: str | Platform | None) -> Iterator[Any]:
    """`access` if given, else a MetadataAccess over the metrics store (None: no store yet),
    with the transfer and start-up priors of `platform` (a name, file or Platform)."""
    if access is not None:
        yield access
        return
    from metadata.access import MetadataAccess
    from planner.compiler import load as load_platform  # errors name the --platform option
    from simulator.platform import Platform

    with metrics_store(redis, namespace) as store:
        if store is None:
            yield None
            return
        p = platform if isinstance(platform, Platform) else load_platform(
            platform or DEFAULT_PLATFORM)
        yield MetadataAccess(store, transfer_latency_s=p.storage_latency_s,
                             transfer_bandwidth_bps=p.storage_bandwidth_bps,
                             cold_start_s=p.cold_start_s, warm_start_s=p.warm_start_s)


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
    path = _plan_path(target)
    if path is not None:
        if params:
            raise UsageError("parameters are fixed when a plan is compiled; "
                             "pass -p to `planflow compile` instead")
        return load_plan(path)
    return compile(target, params, **options)


def _plan_path(target: Target) -> str | Path | None:
    """The target as a `.plan` path, None when it is something else."""
    if isinstance(target, str | Path) and str(target).endswith(".plan"):
        return target
    return None


RUN_PLATFORM = "local"
"""Platform a module is compiled for when `run` compiles it: configurations this machine runs."""


def run(target: Target, params: Mapping[str, Any] | None = None, *, inline: bool = False,
        redis: str | None = None, namespace: str = "planflow", launcher: str = "local",
        timeout_s: float = 3600.0, metrics_upload: str = "on-exit",
        progress: Callable[[RunProgress], None] | None = None, retries: int = 0,
        ray_address: str | None = None, **options: Any) -> RunResult:
    """Execute a plan (compiling the target for the `local` platform first when it is not one).

    `retries`: attempts after the first for tasks whose options set none.
    `launcher="ray"` starts each worker in a pooled Ray actor (`ray_address`, else
    `$RAY_ADDRESS`, else a local Ray instance for the run; needs `planflow[ray]`).

    `inline=True` runs in this process (the reference executor, no Redis); otherwise the
    decentralized executor runs it on `redis` (else `PLANFLOW_REDIS_URL`, else an embedded
    server whose data persists in `$PLANFLOW_HOME`).
    """
    if holds_dask(target):
        target = graph_of(target, params)  # compiled below like a workflow
        options.setdefault("platform", RUN_PLATFORM)
        options.update(redis=redis, namespace=namespace)
    elif not isinstance(target, Plan | TaskGraph) and not str(target).endswith(".plan"):
        options.setdefault("platform", RUN_PLATFORM)
        options.update(redis=redis, namespace=namespace)
    plan = as_plan(target, params, **options)
    if inline or launcher == "inline":
        from runtime.inline import run_inline

        return run_inline(plan)
    from runtime.client import run_plan

    result = run_plan(plan, redis_url=configured_url(redis), namespace=namespace,
                      launcher=launcher, timeout_s=timeout_s, metrics_upload=metrics_upload,
                      progress=progress, retries=retries, ray_address=ray_address)
    if result.upsized:
        result = dataclasses.replace(result, replanned=_replanned(plan, result.upsized))
    return result


def _replanned(plan: Plan, upsized: Mapping[str, int]) -> PlanSummary:
    """The plan's predicted figures with the workers that were relaunched larger (memory
    limit exceeded) on the configurations they finished on: what the run really cost."""
    from planner.whatif import what_if

    planned = {w.worker_id for w in plan.workers}  # not the workers dynamic fan-outs made
    changes = [(plan.worker(w).tasks[0], mb) for w, mb in sorted(upsized.items())
               if w in planned]
    s = what_if(plan, set_memory=changes).scenario
    return PlanSummary(s.makespan_s, s.cost_usd, s.gb_s, s.workers, s.cold_starts,
                       s.critical_path)


def simulate(target: Target, params: Mapping[str, Any] | None = None, *,
             platform: str | None = None, all_memory_mb: int | None = None,
             set_memory: Sequence[str | tuple[str, int]] = (), samples: int = 0, seed: int = 0,
             gantt: str | Path | None = None, access: Any = None, redis: str | None = None,
             namespace: str = "planflow", widths: Sequence[str | tuple[str, int]] = (),
             **options: Any) -> WhatIf:
    """What-if simulation of a plan (a module or WfFormat target is compiled first, with
    `options`): the plan as compiled beside the scenario the what-if options describe.

    `platform` simulates on another platform (name or TOML file; default: the one the plan
    carries), a what-if the report names (`WhatIf.compiled_for`, JSON `what_if`);
    `all_memory_mb` puts every worker on one configuration; `set_memory` holds
    `"PATTERN=MEMORY_MB"` strings or `(pattern, memory_mb)` pairs (glob on task id or function
    name); `samples`/`seed` add makespan and cost quantiles; `gantt` writes a PNG timeline;
    `widths` holds `"NAME=N"` strings or `(name, n)` pairs: dynamic fan-out NAME at width N.
    """
    from planner.compiler import load as load_platform
    from planner.whatif import parse_width, what_if

    other = None if platform is None else load_platform(platform)
    path = _plan_path(target)
    own = target if isinstance(target, Plan) else \
        load_plan(path) if path is not None and not params else None
    priors = other or (own.platform_spec if own is not None else None) \
        or str(options.get("platform") or DEFAULT_PLATFORM)
    with learned_predictions(access, redis, namespace, priors) as history:
        plan = own or as_plan(target, params, access=history, **options)
        return what_if(plan, other, all_memory_mb=all_memory_mb,
                       set_memory=[parse_set(item) for item in set_memory], samples=samples,
                       seed=seed, gantt=None if gantt is None else str(gantt), access=history,
                       widths=dict(w if isinstance(w, tuple) else parse_width(w)
                                   for w in widths))


def parse_set(item: str | tuple[str, int]) -> tuple[str, int]:
    """`"resize*=512"` -> `("resize*", 512)`; UsageError naming the item otherwise."""
    if isinstance(item, tuple):
        return item
    pattern, sep, memory = item.rpartition("=")
    try:
        if not sep or not pattern:
            raise ValueError
        return pattern, int(memory)
    except ValueError:
        raise UsageError(f"--set '{item}': expected PATTERN=MEMORY_MB, e.g. 'resize*=512'"
                         ) from None


def calibrate(*, launcher: str = "local", quick: bool = False, out: str | Path | None = None,
              ray_address: str | None = None, redis_url: str | None = None,
              progress: Callable[[str], None] | None = None) -> Calibration | RayCalibration:
    """Measure this machine (`launcher="local"`, `runtime.calibrate`) or a Ray cluster
    (`launcher="ray"`, `runtime.ray_calibrate`: `ray_address` or $RAY_ADDRESS, else a local
    instance; a remote cluster needs `redis_url` or $PLANFLOW_REDIS_URL, a Redis every node
    reaches), cache the result as the `local` or `ray` platform in `$PLANFLOW_HOME` and write a
    copy to `out` when given; `.written` lists the files. Checks that they can be written before
    measuring anything."""
    from runtime.calibrate import check_writable

    target = None if out is None else Path(out)
    if target is not None:
        check_writable(target.resolve().parent)
    if launcher == "ray":
        from runtime.ray_calibrate import calibrate_ray, write_ray_calibration
        from simulator.platform_file import ray_calibration_path

        check_writable(ray_calibration_path().parent)
        url = redis_url or os.environ.get("PLANFLOW_REDIS_URL") or None
        ray_result = calibrate_ray(address=ray_address, redis_url=url, quick=quick,
                                   progress=progress)
        paths = write_ray_calibration(ray_result, target)
        return dataclasses.replace(ray_result, written=tuple(str(p) for p in paths))
    if launcher != "local":
        raise UsageError(f"launcher '{launcher}': calibrate measures the workers of local or ray")
    if ray_address or redis_url:
        raise UsageError("ray_address and redis_url go with launcher='ray'")
    from runtime.calibrate import calibrate as measure
    from runtime.calibrate import write_calibration
    from simulator.host_platform import calibration_path

    check_writable(calibration_path().parent)
    result = measure(quick=quick, progress=progress)
    paths = write_calibration(result, target)
    return dataclasses.replace(result, written=tuple(str(p) for p in paths))
