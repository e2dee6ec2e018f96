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

On a platform whose workers share one machine's CPUs (`host_cpus`, e.g. `local`), workers
beyond what the CPUs can run at once only take turns on them, each paying its start-up, so the
candidates are placements that ask for no more workers than can help:

* one worker for everything (no transfer, no start-up but one);
* one *lane* per CPU: list scheduling onto ceil(host_cpus) workers (`placement.lanes`);
* the planned clustering (and WUKONG's rule) packed onto at most `worker_cap` workers
  (`placement.capped`): the host's CPUs over the tasks' mean CPU demand (weighted by duration),
  so CPU-bound tasks get one worker per CPU and sleeping or I/O-bound ones more; never more
  than the concurrency limit, so no worker queues for a slot.

Every candidate is simulated with the host's sharing; the fastest is kept, makespans within
`NEAR_TIE` of each other tying, and ties going to the cheaper, then to the one with fewer
workers, then to the first. The plan lists every
candidate's simulated makespan (`planning.candidates`, `planflow show`).

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
from planner.predict import MIN_CPU_DEMAND, Predictions

if TYPE_CHECKING:
    from planner.compiler import Stage
    from simulator import SimResult

NEAR_TIE = 0.01
"""Relative makespan difference within which two candidates tie (then the cheaper, then the
one with fewer workers wins): a simulated 0.1 % is not worth a second worker's start-up."""

CAP_SLACK = 1e-9
"""Rounding allowance of `worker_cap` (2 CPUs over a mean demand of exactly 1 is 2 workers)."""

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
    candidates: tuple[Tried, ...] = ()
    """Every candidate in the order tried, with its simulated figures."""


@dataclass(frozen=True)
class Tried:
    """One candidate placement as simulated at the best configurations (figures None: it
    deadlocks under the concurrency limit)."""

    name: str
    workers: int
    makespan_s: float | None
    cost_usd: float | None

    def as_dict(self, picked: str) -> dict[str, object]:
        return {"name": self.name, "workers": self.workers, "makespan_s": self.makespan_s,
                "cost_usd": self.cost_usd, "picked": self.name == picked}


def best_everywhere(stage: Stage) -> Target:
    """Passes 2-4 (module docstring)."""
    candidates = _candidates(stage)
    best: Target | None = None
    tried: list[Tried] = []
    seen: dict[tuple[bytes, bool], tuple[Assignment, SimResult] | None] = {}
    for cand in candidates:
        same = (cand.worker.tobytes(), cand.prewarm)  # e.g. packed WUKONG = lanes: one run
        found = seen[same] if same in seen else _evaluate(stage, cand)
        seen[same] = found
        tried.append(Tried(cand.name, int(cand.worker.max()) + 1,
                           float(found[1].makespan_s) if found else None,
                           float(found[1].cost_usd) if found else None))
        if found and (best is None or _better(found, best)):
            best = Target(cand.name, *found, ())
        if cand is candidates[0] and found and found[0].n_workers <= _limit(stage) \
                and stage.platform.host_cpus is None:
            break
    if best is None:
        raise PlanningError(f"every placement deadlocks under the concurrency limit of "
                            f"{_limit(stage)} workers of platform '{stage.platform.name}'")
    return replace(best, tried=tuple(t.name if t.makespan_s is not None
                                     else f"{t.name} (deadlocks)" for t in tried),
                   makespans={t.name: t.makespan_s for t in tried if t.makespan_s is not None},
                   candidates=tuple(tried))


def _better(found: tuple[Assignment, SimResult], best: Target) -> bool:
    """Faster by more than NEAR_TIE, or as fast within it and cheaper, then fewer workers."""
    (asg, res), old = found, best.result
    if res.makespan_s < old.makespan_s * (1.0 - NEAR_TIE):
        return True
    if res.makespan_s > old.makespan_s * (1.0 + NEAR_TIE):
        return False
    return (res.cost_usd, asg.n_workers, res.makespan_s) < \
        (old.cost_usd, best.assignment.n_workers, old.makespan_s)


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
    if plat.host_cpus is not None and opts.strategy != "wukong":
        return _host_candidates(stage, best, lag, main)
    placements = [main]
    if opts.strategy != "wukong":
        placements.append(Candidate("WUKONG rule", placement.wukong(pred, best, lag), False))
    no_prewarm = [replace(main, name=f"{main.name}, no pre-warm", prewarm=False)] \
        if main.prewarm else []
    wait_free = [Candidate("wait-free " + c.name, placement.wait_free(pred, c.worker), False)
                 for c in placements]
    return [main, *no_prewarm, *placements[1:], *wait_free]


def _host_candidates(stage: Stage, best: np.ndarray, lag: np.ndarray, main: Candidate
                     ) -> list[Candidate]:
    """On a platform whose workers share one host's CPUs (module docstring)."""
    pred, host = stage.pred, stage.platform.host_cpus
    assert host is not None
    cap = worker_cap(pred, best, host, _limit(stage))
    out = [Candidate("one worker", np.zeros(pred.n_tasks, np.int64), False)]
    k = math.ceil(host)
    if k > 1 and pred.n_tasks > 1:
        out.append(Candidate(f"{k} lanes (one per host CPU)",
                             placement.lanes(pred, best, lag, k), main.prewarm))
    for cand in (main, Candidate("WUKONG rule", placement.wukong(pred, best, lag), False)):
        worker = placement.capped(pred, best, lag, cand.worker, cap)
        name = cand.name if worker is cand.worker else f"{cand.name}, at most {cap} workers"
        out.append(Candidate(name, worker, main.prewarm))
    return out


def worker_cap(pred: Predictions, config: np.ndarray, host_cpus: float, limit: int) -> int:
    """Workers that can help on a host of `host_cpus` CPUs (module docstring): host CPUs over
    the tasks' duration-weighted mean CPU demand at `config`, within [1, `limit`]."""
    rows = np.arange(pred.n_tasks)
    dur = pred.duration_s[rows, config]
    demand = np.minimum(pred.cpu_demand[rows, config], host_cpus)
    total = float(dur.sum())
    mean = float((dur * demand).sum()) / total if total > 0 else 1.0
    return max(1, min(limit, math.ceil(host_cpus / max(mean, MIN_CPU_DEMAND) - CAP_SLACK)))


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
