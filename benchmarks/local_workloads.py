"""The workflows the local benchmarks run (`simulator_accuracy.py`, `plan_vs_naive.py`), and
how they run them: through the `planflow` commands a user types, in a private $PLANFLOW_HOME
(so its own embedded Redis and metrics history), on one platform.

Sizes keep each run to about a second on 2 cores; tree_reduction's adds take microseconds and
measure the runtime's overheads. dask_stats is included when Dask is installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS: tuple[tuple[str, dict[str, str]], ...] = (
    ("tree_reduction", {"n": "64"}),
    ("wordcount", {"words": "1000000", "chunks": "6", "top": "5"}),
    ("matmul", {"size": "1536", "blocks": "3"}),
    ("image_tiles", {"size": "3072", "tiles": "3"}),
    ("nested_args", {}),
    ("dask_stats", {}),
    ("numpy_pipeline", {"chunks": "48", "side": "512"}),
    ("cpu_fanout", {"width": "8", "steps": "2000000"}),
    ("io_fanout", {"width": "16", "delay_s": "0.25"}),
)
"""(example module, parameters): the examples, then three workflows shaped like user code."""

class CommandFailed(RuntimeError):
    """A `planflow` command exited non-zero or timed out."""


RUN_TIMEOUT_S = 600.0
"""Seconds one `planflow` command may take (the machine may be loaded)."""


def selected(only: str) -> list[tuple[str, dict[str, str]]]:
    """The workloads named in `only` (comma-separated; empty: all), without dask_stats when
    Dask is not installed."""
    names = {w for w in only.split(",") if w}
    have_dask = importlib.util.find_spec("dask") is not None
    return [(w, p) for w, p in WORKLOADS if (not names or w in names)
            and (w != "dask_stats" or have_dask)]


def module(workflow: str) -> str:
    return str(ROOT / "examples" / f"{workflow}.py")


def env(home: Path) -> dict[str, str]:
    """The commands' environment: this checkout first on the path, a private history, one BLAS
    thread per process (a worker's CPU quota then bounds what its task uses)."""
    out = dict(os.environ)
    out.update(PLANFLOW_HOME=str(home), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get(
                   "PYTHONPATH")])]))
    out.pop("PLANFLOW_REDIS_URL", None)
    return out


def planflow(home: Path, *args: str) -> dict[str, Any]:
    """Run `planflow ARGS --json`; its JSON object (a failure raises, with its stderr)."""
    cmd = [sys.executable, "-m", "planflow", *args, "--json"]
    try:
        done = subprocess.run(cmd, env=env(home), capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        raise CommandFailed(f"{' '.join(args)}: no answer in {RUN_TIMEOUT_S:g} s") from err
    if done.returncode != 0:
        raise CommandFailed(f"{' '.join(args)}: exit {done.returncode}: "
                            f"{done.stderr.strip().splitlines()[-1:]}")
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def params(values: dict[str, str]) -> list[str]:
    return [a for k, v in values.items() for a in ("-p", f"{k}={v}")]


def record(home: Path, workflow: str, values: dict[str, str], platform: str, runs: int
           ) -> list[dict[str, Any]]:
    """`runs` times `planflow run MODULE` (each compiled for `platform` from the history the
    earlier ones recorded); their JSON documents."""
    return [planflow(home, "run", module(workflow), *params(values), "--platform", platform)
            for _ in range(runs)]


def compile_to(home: Path, workflow: str, values: dict[str, str], platform: str, out: Path
               ) -> dict[str, Any]:
    """`planflow compile MODULE -o OUT`; its JSON document."""
    return planflow(home, "compile", module(workflow), *params(values), "--platform", platform,
                    "-o", str(out))


def one_worker_plan(plan_file: Path, out: Path) -> Path:
    """The plan of `plan_file` with every task on one worker, in topological order, at the
    configuration of its worker with the most CPUs (then memory): the naive plan to beat,
    with no less per worker than the plan gives. (The platform's largest configuration would
    start a worker the run's pool was not warmed for, and handicap the naive plan.)"""
    from planner.plan import WorkerPlan, load_plan

    plan = load_plan(plan_file)
    best = max(plan.workers, key=lambda w: (w.cpus, w.memory_mb))
    tasks = {tid: replace(tp, worker="w0", memory_mb=best.memory_mb, cpus=best.cpus)
             for tid, tp in plan.tasks.items()}
    worker = WorkerPlan("w0", best.memory_mb, best.cpus, plan.graph.topological_order())
    replace(plan, tasks=tasks, workers=(worker,)).save(out)
    return out


def simulated(home: Path, plan_file: Path) -> float:
    """`planflow simulate PLAN`: the plan as placed, re-simulated on today's history."""
    return float(planflow(home, "simulate", str(plan_file))["scenario"]["makespan_s"])


def measure_each(only: str, prefix: str, measure: Callable[[Path, str, dict[str, str]], Any],
                 keep: Path | None = None, calibrate: bool = False
                 ) -> tuple[list[Any], dict[str, str]]:
    """`measure(home_dir, workflow, values)` for each selected workload in one temporary
    directory (`keep`: in that directory, kept afterwards, so its history and plans can be
    examined; `calibrate`: after `planflow calibrate` there, so `local` is this machine as
    measured, not as derived): the rows, and the workloads whose command failed (reported,
    counted against the bars, not hidden) with their errors."""
    rows: list[Any] = []
    failed: dict[str, str] = {}
    with contextlib.nullcontext(str(keep)) if keep else tempfile.TemporaryDirectory(
            prefix=prefix) as tmp:
        if keep:
            keep.mkdir(parents=True, exist_ok=True)
        if calibrate:
            print(f"planflow calibrate (load average {os.getloadavg()[0]:.1f})", flush=True)
            planflow(Path(tmp), "calibrate")
        for workflow, values in selected(only):
            print(f"{workflow} {values} (load average {os.getloadavg()[0]:.1f})", flush=True)
            try:
                rows.append(measure(Path(tmp), workflow, values))
            except CommandFailed as err:
                print(f"  FAILED: {err}", flush=True)
                failed[workflow] = str(err)
    return rows, failed
