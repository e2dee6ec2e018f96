"""Passes 2-4: placement candidates, their optimizations, and the best-everywhere target.

A placement is tried at the best configuration on every worker, with pre-load and delayed I/O
as enabled, and with pre-warm re-timed from its own simulation. The default candidate is the
planned clustering (or WUKONG's rule for `wukong`, one worker per task with `--no-clustering`).
When the platform's concurrency limit is below the number of workers, workers queue for slots,
and a worker that waits for inputs while holding a slot (a pre-warmed one, or one continuing
at a fan-in) can slow the run or deadlock it. Then these candidates are tried too, and the
fastest (then cheapest, then first) is kept:

* the same placement without pre-warm;
* for `critical-path`/`uniform`/`octoflows`, WUKONG's rule (fan-ins continue on the last parent
  to finish, which rarely waits);
* wait-free versions of those placements: no worker continues at a fan-in, so a running worker
  never waits for another worker, and no pre-warm. Workers are requested only when their
  inputs exist, so a plan of this kind cannot deadlock.

On a platform whose workers share one machine's CPUs (`host_cpus`, e.g. `local`), every
candidate is tried, and with them 1 to ceil(host_cpus) *lanes* (`placement.lanes`): with the
host's sharing simulated, more workers than CPUs take turns and pay start-ups, and the
simulation says which is faster.

The kept candidate's makespan is the target that the strategy's plan must not exceed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from planner import baselines, optimize, placement
from planner.assignment import Assignment, try_simulate
from planner.errors import PlanningError
from planner.predict import Predictions

if TYPE_CHECKING:
    from planner.compiler import Stage
    from simulator import SimResult

PREWARM_PASSES = 2
"""Times a candidate's pre-warm is re-timed from its own simulation (requests move earlier as
earlier workers are pre-warmed too)."""


@dataclass(frozen=True)
class Candidate:
    """One placement to try at the best configurations."""

    name: str
    worker: np.ndarray
    prewarm: bool


@dataclass(frozen=True)
class Target:
    """The kept candidate: its assignment at the best configurations, simulated."""

    name: str
    assignment: Assignment
    result: SimResult
    tried: tuple[str, ...]
    makespans: dict[str, float] = field(default_factory=dict)
    """Simulated makespan of every candidate that did not deadlock, by name."""


def best_everywhere(stage: Stage) -> Target:
    """Passes 2-4 (module docstring)."""
    candidates = _candidates(stage)
    best: Target | None = None
    tried = []
    makespans: dict[str, float] = {}
    for cand in candidates:
        found = _evaluate(stage, cand)
        tried.append(cand.name if found else f"{cand.name} (deadlocks)")
        if found:
            makespans[cand.name] = float(found[1].makespan_s)
        if found and (best is None or _key(found) < _key(best)):
            best = Target(cand.name, *found, ())
        if cand is candidates[0] and found and found[0].n_workers <= _limit(stage) \
                and stage.platform.host_cpus is None:
            break
    if best is None:
        raise PlanningError(f"every placement deadlocks under the concurrency limit of "
                            f"{_limit(stage)} workers of platform '{stage.platform.name}'")
    return replace(best, tried=tuple(tried), makespans=makespans)


def _key(found: tuple[Assignment, SimResult] | Target) -> tuple[float, float]:
    res = found.result if isinstance(found, Target) else found[1]
    return (res.makespan_s, res.cost_usd)


def _limit(stage: Stage) -> int:
    return int(stage.platform.concurrency_limit)


def _candidates(stage: Stage) -> list[Candidate]:
    pred, opts, plat = stage.pred, stage.options, stage.platform
    best = best_task_configs(pred)
    lag = placement.edge_lag(pred, plat.storage_latency_s, plat.storage_bandwidth_bps)
    prewarm = opts.prewarm and opts.strategy != "wukong"
    if opts.strategy == "wukong":
        main = Candidate("WUKONG rule", placement.wukong(pred, best, lag), False)
    elif opts.clustering:
        main = Candidate("clustered", placement.cluster(pred, best, lag), prewarm)
    else:
        return [Candidate("one worker per task", placement.singletons(pred.n_tasks), prewarm),
                Candidate("one worker per task, no pre-warm",
                          placement.singletons(pred.n_tasks), False)]
    placements = [main]
    if opts.strategy != "wukong":
        placements.append(Candidate("WUKONG rule", placement.wukong(pred, best, lag), False))
    no_prewarm = [replace(main, name=f"{main.name}, no pre-warm", prewarm=False)] \
        if main.prewarm else []
    wait_free = [Candidate("wait-free " + c.name, placement.wait_free(pred, c.worker), False)
                 for c in placements]
    return [main, *no_prewarm, *placements[1:], *wait_free, *_host_lanes(stage, best, lag)]


def _host_lanes(stage: Stage, best: np.ndarray, lag: np.ndarray) -> list[Candidate]:
    """On a platform whose workers share one host's CPUs: 1..ceil(host CPUs) lanes."""
    host = stage.platform.host_cpus
    if host is None or stage.options.strategy == "wukong" or not stage.options.clustering:
        return []
    return [Candidate(f"{k} lane{'s' if k > 1 else ''} (host CPUs)",
                      placement.lanes(stage.pred, best, lag, k), False)
            for k in range(1, math.ceil(host) + 1)]


def _evaluate(stage: Stage, cand: Candidate) -> tuple[Assignment, SimResult] | None:
    pred, opts = stage.pred, stage.options
    asg = Assignment.create(cand.worker, np.zeros(int(cand.worker.max()) + 1, np.int64))
    asg = optimize.clustering_reasons(pred, asg)
    if opts.delayed_io:
        asg = optimize.delayed_io(pred, asg)
    if opts.preload and opts.strategy != "wukong":
        asg = optimize.preload(pred, asg)
    asg = asg.with_config(_configs(stage, asg))
    result = try_simulate(pred, asg, stage.platform)
    if result is None or not cand.prewarm:
        return None if result is None else (asg, result)
    for _ in range(PREWARM_PASSES):
        trial = optimize.prewarm(pred, asg, result, cold_starts(stage, asg))
        res = try_simulate(pred, trial, stage.platform)
        # kept unless slower: a worker ready before its inputs arrive has slack to downgrade
        if res is None or res.makespan_s > result.makespan_s:
            break
        asg, result = trial, res
    return asg, result


def _configs(stage: Stage, asg: Assignment) -> np.ndarray:
    """The baseline configurations (wukong: the largest, or --memory-mb)."""
    pred, opts = stage.pred, stage.options
    if opts.strategy == "wukong":
        return (baselines.fixed_config(pred, asg, opts.memory_mb, "wukong") if opts.memory_mb
                else baselines.largest_config(pred, asg))
    return best_worker_configs(pred, asg)


def cold_starts(stage: Stage, asg: Assignment) -> np.ndarray:
    """float[w]: the cold start of every worker's configuration."""
    return np.asarray(stage.platform.cold_start_array[asg.config])


def best_task_configs(pred: Predictions) -> np.ndarray:
    """int[n]: per task the feasible configuration with the most CPUs (least memory among
    equals)."""
    cpus = np.where(pred.feasible, pred.cpus[None, :], -np.inf)
    most = cpus.max(axis=1, keepdims=True)
    return np.asarray(np.argmax(cpus >= most, axis=1), np.int64)


def best_worker_configs(pred: Predictions, asg: Assignment) -> np.ndarray:
    """int[w]: per worker the configuration with the most CPUs among those all its tasks fit."""
    need = baselines.worker_need(pred, asg)
    cpus = np.where(pred.memory_mb[None, :] >= need[:, None], pred.cpus[None, :], -np.inf)
    most = cpus.max(axis=1, keepdims=True)
    return np.asarray(np.argmax(cpus >= most, axis=1), np.int64)
