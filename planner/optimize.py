"""Optimization passes on a placed assignment: delayed I/O, pre-load, pre-warm.

Each pass returns a new `Assignment` with its flags set and a reason on every task it affects.

* delayed I/O: a task whose consumers all run on its own worker keeps its output in the
  worker's memory instead of uploading it (the sink always uploads: it is the result).
* pre-load: a worker that receives inputs from other workers fetches each one as soon as it is
  available, while earlier tasks still run, instead of when it reaches the consuming task.
* pre-warm: a worker whose first task waits for inputs from other workers is requested early,
  by the cold start of its configuration before those inputs arrive in the last simulation, so
  it is ready in time whether it gets a warm container or a cold one. (Leading by the start-up
  it happened to pay would make the plan depend on which warm container is free when, which
  any change of configuration elsewhere can flip.) The arrival times come from a simulation, so
  the pass is re-run after configurations change.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from planner.assignment import Assignment
from planner.predict import Predictions

if TYPE_CHECKING:
    from simulator import SimResult

MB = 1e6
"""Bytes per MB in reasons (decimal, as file sizes are usually shown)."""


def delayed_io(pred: Predictions, asg: Assignment) -> Assignment:
    """Set delayed I/O on every task whose consumers all run on its worker."""
    n = pred.n_tasks
    remote = asg.worker[pred.edge_src] != asg.worker[pred.edge_dst]
    has_remote = np.bincount(pred.edge_src[remote], minlength=n) > 0
    flags = ~has_remote
    flags[n - 1] = False
    tasks = np.flatnonzero(flags).tolist()
    reasons = {i: f"delayed I/O: output ({pred.output_bytes[i] / MB:.3g} MB) stays on worker "
                  f"w{int(asg.worker[i])}, where all its consumers run" for i in tasks}
    out = _with(asg, delayed_io=flags).with_reasons(reasons)
    return out.with_optimization(tasks, "delayed-io")


def preload(pred: Predictions, asg: Assignment) -> Assignment:
    """Pre-load on every worker that receives an input from another worker."""
    remote = asg.worker[pred.edge_src] != asg.worker[pred.edge_dst]
    consumers = np.unique(pred.edge_dst[remote])
    flags = np.zeros(asg.n_workers, bool)
    flags[asg.worker[consumers]] = True
    tasks = consumers.tolist()
    reasons = {i: "pre-load: remote inputs are fetched as soon as they exist" for i in tasks}
    out = _with(asg, preload=flags).with_reasons(reasons)
    return out.with_optimization(tasks, "pre-load")


def prewarm_times(pred: Predictions, asg: Assignment, result: SimResult,
                  cold_start_s: np.ndarray) -> np.ndarray:
    """float[w]: when to request each worker so that it is ready as its first inputs arrive
    even from a cold start (`cold_start_s[w]`); NaN for workers whose first task has no input
    from another worker (they start when the run does)."""
    first = _first_tasks(asg)
    avail = np.zeros(pred.n_tasks)
    np.maximum.at(avail, pred.edge_dst, result.task_done_s[pred.edge_src])
    has_inputs = np.bincount(pred.edge_dst, minlength=pred.n_tasks)[first] > 0
    useful = has_inputs & (avail[first] > 0) & (cold_start_s > 0)
    return np.where(useful, np.maximum(avail[first] - cold_start_s, 0.0), math.nan)


def prewarm(pred: Predictions, asg: Assignment, result: SimResult,
            cold_start_s: np.ndarray) -> Assignment:
    """Pre-warm workers from the timeline of `result` (a simulation of `asg`)."""
    return prewarm_reasons(_with(asg, prewarm_at_s=prewarm_times(pred, asg, result,
                                                                   cold_start_s)))


def prewarm_reasons(asg: Assignment) -> Assignment:
    """`asg` with the pre-warm reason and label on exactly the first task of every worker
    that has a request time (earlier pre-warm reasons and labels are replaced)."""
    at = asg.prewarm_at_s
    first = _first_tasks(asg)
    tasks = [int(first[k]) for k in np.flatnonzero(~np.isnan(at)).tolist()]
    reasons = {i: f"pre-warm: worker w{int(asg.worker[i])} is requested at "
                  f"{at[asg.worker[i]]:.3f} s, ready when its first inputs arrive"
               for i in tasks}
    cleared = {i: tuple(r for r in rs if not r.startswith("pre-warm"))
               for i, rs in asg.reasons.items()}
    labels = {i: tuple(o for o in os if o != "pre-warm") for i, os in asg.optimizations.items()}
    base = _with(asg, reasons=cleared, optimizations=labels)
    return base.with_reasons(reasons).with_optimization(tasks, "pre-warm")


def _first_tasks(asg: Assignment) -> np.ndarray:
    """int[w]: each worker's first task."""
    first = np.full(asg.n_workers, asg.worker.shape[0], np.int64)
    np.minimum.at(first, asg.worker, np.arange(asg.worker.shape[0]))
    return first


def clustering_reasons(pred: Predictions, asg: Assignment) -> Assignment:
    """A reason on every task that continues its parent's worker."""
    local = asg.worker[pred.edge_src] == asg.worker[pred.edge_dst]
    reasons: dict[int, str] = {}
    for s, d, b in zip(pred.edge_src[local].tolist(), pred.edge_dst[local].tolist(),
                       pred.edge_bytes[local].tolist(), strict=True):
        if d not in reasons:
            reasons[d] = (f"clustering: runs on worker w{int(asg.worker[d])} after "
                          f"'{pred.task_ids[s]}' (no transfer of {b / MB:.3g} MB, no start-up)")
    return asg.with_reasons(reasons).with_optimization(sorted(reasons), "clustering")


def _with(asg: Assignment, **changes: object) -> Assignment:
    from dataclasses import replace

    return replace(asg, **changes)  # type: ignore[arg-type]
