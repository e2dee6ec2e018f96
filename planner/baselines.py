"""Configuration choices of the baseline strategies: `uniform`, `wukong` and `octoflows`.

* `uniform`: one configuration for every worker: `--memory-mb`, or else the cheapest
  configuration (by simulated cost) whose makespan stays within the bound. Every configuration
  is simulated once (a handful: the platform's list).
* `wukong`: the largest configuration everywhere (or `--memory-mb`), no planning.
* `octoflows`: the reference system's loop, reimplemented from its description: start from the
  best configuration everywhere and its critical path; for every worker that runs no
  critical-path task, in worker order, try the next lower configuration, re-simulating the whole
  DAG, and keep it only if the predicted critical-path time (the makespan) stays exactly equal
  (float equality, as the reference did); stop at the first lower configuration that changes it.
  Critical-path workers are never touched. O(workers x configurations x simulation).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np

from planner.assignment import Assignment, simulate_assignment, try_simulate
from planner.downgrade import Outcome, bound_horizon, within
from planner.errors import PlanningError
from planner.predict import Predictions

if TYPE_CHECKING:
    from simulator import Platform, SimResult


def worker_need(pred: Predictions, asg: Assignment) -> np.ndarray:
    """float[w]: the least memory each worker needs (the largest need of its tasks)."""
    need = np.zeros(asg.n_workers)
    np.maximum.at(need, asg.worker, pred.min_memory_mb)
    return need


def fixed_config(pred: Predictions, asg: Assignment, memory_mb: int, strategy: str) -> np.ndarray:
    """int[w]: the configuration of `memory_mb` on every worker, checked for feasibility."""
    matches = np.flatnonzero(pred.memory_mb == memory_mb)
    if not matches.size:
        raise PlanningError(f"--memory-mb {memory_mb}: the platform has no such configuration; "
                            f"choose one of {pred.memory_mb.tolist()}")
    need = pred.min_memory_mb.max()
    if need > memory_mb:
        task = pred.task_ids[int(np.argmax(pred.min_memory_mb))]
        raise PlanningError(f"strategy {strategy} with {memory_mb} MB: task '{task}' needs "
                            f"{int(need)} MB; choose a larger --memory-mb")
    return np.full(asg.n_workers, int(matches[0]), np.int64)


def largest_config(pred: Predictions, asg: Assignment) -> np.ndarray:
    """int[w]: the largest configuration on every worker (WUKONG)."""
    return np.full(asg.n_workers, pred.n_configs - 1, np.int64)


def uniform(pred: Predictions, asg: Assignment, platform: Platform, bound_s: float) -> Outcome:
    """The cheapest single configuration within the bound (module docstring)."""
    need = pred.min_memory_mb.max()
    best: Outcome | None = None
    sims = 0
    for c in range(pred.n_configs):
        if pred.memory_mb[c] < need:
            continue
        trial = asg.with_config(np.full(asg.n_workers, c, np.int64))
        # a run past the bound cannot be kept: it may stop there (None) instead of finishing
        res = try_simulate(pred, trial, platform, horizon_s=bound_horizon(bound_s))
        sims += 1
        if res is not None and within(res.makespan_s, bound_s) and (best is None
                                                or res.cost_usd < best.result.cost_usd):
            best = Outcome(trial, res)
    if best is None:
        raise PlanningError("strategy uniform: no single configuration keeps the makespan "
                            f"within {bound_s:.3f} s")
    best.simulations = sims
    return best


def octoflows(pred: Predictions, asg: Assignment, platform: Platform, result: SimResult,
              budget_s: float | None = None) -> Outcome:
    """The reference loop (module docstring). With `budget_s`, stops after that much time and
    records in `Outcome.remaining` how many workers it did not reach (for benchmarks)."""
    target = result.makespan_s
    on_path = set(asg.worker[list(result.critical_path)].tolist())
    need = worker_need(pred, asg)
    out = Outcome(asg, result)
    config = asg.config.copy()
    deadline = math.inf if budget_s is None else time.perf_counter() + budget_s
    for k in range(asg.n_workers):
        if k in on_path:
            continue
        if time.perf_counter() > deadline:
            out.remaining = sum(1 for j in range(k, asg.n_workers) if j not in on_path)
            break
        c = int(config[k]) - 1
        while c >= 0 and pred.memory_mb[c] >= need[k]:
            trial_config = config.copy()
            trial_config[k] = c
            trial = asg.with_config(trial_config)
            res = try_simulate(pred, trial, platform, with_slack=False)
            out.simulations += 1
            if res is None or res.makespan_s != target:
                break
            config, out.result = trial_config, res
            c -= 1
    out.assignment = asg.with_config(config)
    if out.simulations:
        out.result = simulate_assignment(pred, out.assignment, platform)
    return out
