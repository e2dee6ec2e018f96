"""The critical-path downgrade loop: cheaper configurations where the timeline has room.

The unit of configuration is a worker (all tasks of a worker share its configuration; see
`planner.compiler`). One round:

1. From the last simulation, every task's *budget* is its slack plus the room the bound leaves
   (`bound - makespan`). Critical-path tasks have slack 0, so only a budget from `--slowdown` or
   `--deadline-s`, or a configuration at which their duration does not grow, lets them move.
2. For every worker, every cheaper feasible configuration is checked at once (numpy over the
   n x c table): a worker's tasks run one after another, so the delay at its i-th task is the
   sum of the duration increases of its tasks up to i; the configuration fits when that prefix
   sum stays within every task's budget. Among fitting configurations the worker takes the one
   with the lowest estimated cost (memory x (billed time + increase)); no move if none is
   cheaper than now.
3. All candidate moves are applied together and verified by one simulation: accepted when the
   makespan stays within the bound (float-safe) and the cost falls. On a violation:
   a. workers that lost a warm start are pre-warmed early enough to be ready from a cold start
      when they were ready before (a warm container is luck that any change of configuration
      elsewhere can take away), and the same batch is retried;
   b. else moved workers that lost a warm start leave the batch (no warm container of their
      new configuration serves them);
   c. else the batch is halved, keeping the safest half (moves that do not grow first, then by
      the largest fraction of budget they use, ascending).
   A single move that still fails is excluded, with every configuration below it, for the
   rest of the loop.

Rounds repeat until no candidate is left, a round saves nothing, or `rounds` pass. Budgets
interact (two moves on one path share its slack); the verification catches that and the next
round sees the new slack. Deterministic: every ordering has an explicit key ending in the
worker index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from planner.assignment import Assignment, try_simulate
from planner.options import DEFAULT_ROUNDS
from planner.predict import Predictions

if TYPE_CHECKING:
    from simulator import Platform, SimResult

BOUND_RTOL = 1e-9
"""Float-safe comparison: a makespan within BOUND_RTOL x max(1 s, bound) of the bound fits."""

GROWTH_RTOL = 1e-9
"""A duration increase within GROWTH_RTOL x max(1 s, bound) counts as no growth."""

MAX_SIMULATIONS_PER_ROUND = 24
"""Verification simulations one round may spend backing off before it gives up."""

MIN_ROUND_SAVING = 1e-6
"""A round that saves less than this fraction of the cost ends the loop."""

CHEAPER_RTOL = 1e-12
"""A move must lower a worker's estimated cost by more than this fraction to be a candidate."""

PREWARM_TOL_S = 1e-6
"""Pre-warm requests closer than this are the same request."""

MB_PER_GB = 1024
"""Billing unit: GB-seconds with 1 GB = 1024 MB."""


@dataclass(frozen=True)
class Move:
    """One worker moved to a cheaper configuration, and why it was allowed."""

    worker: int
    old: int
    new: int
    kind: str  # "no-growth" (no task got slower) or "slack" (the increase fits the budget)
    budget_s: float  # least budget among the worker's tasks when the move was made
    growth_s: float  # total duration increase of the worker's tasks
    tightness: float  # largest fraction of a task's budget the move uses


@dataclass
class Outcome:
    """What a configuration loop produced."""

    assignment: Assignment
    result: SimResult
    moves: list[Move] = field(default_factory=list)
    rounds: int = 0
    simulations: int = 0
    remaining: int = 0  # workers a time-limited loop did not reach (octoflows in benchmarks)


def within(makespan_s: float, bound_s: float) -> bool:
    """makespan <= bound, with float tolerance."""
    return makespan_s <= bound_s + BOUND_RTOL * max(1.0, bound_s)


def bound_horizon(bound_s: float) -> float:
    """The latest makespan `within` accepts: a simulation that passes it may stop there."""
    return bound_s + BOUND_RTOL * max(1.0, bound_s)


def downgrade(pred: Predictions, asg: Assignment, platform: Platform, result: SimResult,
              bound_s: float, rounds: int = DEFAULT_ROUNDS, *, prewarm: bool = True) -> Outcome:
    """Run the loop from `asg` (simulated as `result`, with slack); `prewarm=False` (the
    `--no-prewarm` option) forbids the robust pre-warm of step 3a."""
    out = Outcome(asg, result)
    floor = np.zeros(asg.n_workers, np.int64)
    for _ in range(rounds):
        moves = candidates(pred, out.assignment, out.result, bound_s, floor)
        if not moves:
            break
        out.rounds += 1
        before = out.result.cost_usd
        accepted = _verify(pred, platform, out, moves, bound_s, floor, prewarm)
        if not accepted or before - out.result.cost_usd <= MIN_ROUND_SAVING * before:
            break
    return out


def candidates(pred: Predictions, asg: Assignment, result: SimResult, bound_s: float,
               floor: np.ndarray) -> list[Move]:
    """The best fitting cheaper configuration of every worker, safest moves first."""
    n = pred.n_tasks
    order = np.lexsort((np.arange(n), asg.worker))
    starts = np.flatnonzero(np.r_[True, asg.worker[order][1:] != asg.worker[order][:-1]])
    sizes = np.diff(np.r_[starts, n])
    cur = pred.duration_s[order, asg.task_config()[order]]
    delta = pred.duration_s[order] - cur[:, None]
    cs = np.cumsum(delta, axis=0)
    prefix = cs - np.repeat(cs[starts] - delta[starts], sizes, axis=0)
    tol = GROWTH_RTOL * max(1.0, bound_s)
    budget = np.nan_to_num(result.slack_s[order]) + max(0.0, bound_s - result.makespan_s)
    fits = ~np.logical_or.reduceat(prefix > budget[:, None] + tol, starts, axis=0)
    growth = np.add.reduceat(delta, starts, axis=0)
    no_growth = np.maximum.reduceat(delta, starts, axis=0) <= tol
    need = np.maximum.reduceat(pred.min_memory_mb[order], starts)
    memory = pred.memory_mb
    columns = np.arange(memory.shape[0])[None, :]
    allowed = ((memory[None, :] >= need[:, None]) & (columns < asg.config[:, None])
               & (columns >= floor[:, None]) & (fits | no_growth))
    gb = memory / MB_PER_GB
    billed = np.asarray(result.worker_billed_s, np.float64)
    est = gb[None, :] * (billed[:, None] + np.maximum(growth, 0.0))
    now = gb[asg.config] * billed
    est = np.where(allowed & (est < now[:, None] * (1 - CHEAPER_RTOL)), est, math.inf)
    choice = np.argmin(est, axis=1)
    movers = np.flatnonzero(np.isfinite(est[np.arange(est.shape[0]), choice]))
    ratio = prefix / np.maximum(budget, tol)[:, None]
    tight = np.maximum.reduceat(np.where(prefix > tol, ratio, 0.0), starts, axis=0)
    least = np.minimum.reduceat(budget, starts)
    moves = [Move(int(k), int(asg.config[k]), int(choice[k]),
                  "no-growth" if no_growth[k, choice[k]] else "slack", float(least[k]),
                  float(growth[k, choice[k]]), float(tight[k, choice[k]]))
             for k in movers.tolist()]
    saving = now - est[np.arange(est.shape[0]), choice]
    moves.sort(key=lambda m: (m.kind != "no-growth", m.tightness, -saving[m.worker], m.worker))
    return moves


def _verify(pred: Predictions, platform: Platform, out: Outcome, moves: list[Move],
            bound_s: float, floor: np.ndarray, may_prewarm: bool) -> bool:
    """Apply the largest safe prefix of `moves` that one simulation accepts (see module doc)."""
    pending = list(moves)
    spent = 0
    prewarm = out.assignment.prewarm_at_s.copy()
    while pending and spent < MAX_SIMULATIONS_PER_ROUND:
        batch = pending
        while spent < MAX_SIMULATIONS_PER_ROUND:
            config = out.assignment.config.copy()
            for m in batch:
                config[m.worker] = m.new
            trial = replace(out.assignment.with_config(config), prewarm_at_s=prewarm.copy())
            res = try_simulate(pred, trial, platform)
            spent += 1
            if res is None:  # deadlocked under the concurrency limit
                res = out.result
            elif within(res.makespan_s, bound_s) and res.cost_usd < out.result.cost_usd:
                out.assignment, out.result = trial, res
                out.moves.extend(batch)
                out.simulations += spent
                return True
            newly_cold = res.worker_cold & ~out.result.worker_cold
            if may_prewarm and _robust_prewarm(prewarm, newly_cold, out.result,
                                               platform.cold_start_array[config]):
                continue
            if len(batch) == 1:
                floor[batch[0].worker] = max(floor[batch[0].worker], batch[0].new + 1)
                pending = pending[1:]
                break
            batch = _back_off(batch, newly_cold)
    out.simulations += spent
    return False


def _robust_prewarm(prewarm: np.ndarray, newly_cold: np.ndarray, current: SimResult,
                    cold_start_s: np.ndarray) -> bool:
    """Request workers that lost their warm start early enough to be ready, cold, when they
    were ready before (in place); True if any request moved."""
    target = np.maximum(current.worker_ready_s - cold_start_s, 0.0)
    earlier = newly_cold & (np.isnan(prewarm) | (target < prewarm - PREWARM_TOL_S)) \
        & (current.worker_ready_s - cold_start_s > 0)
    prewarm[earlier] = target[earlier]
    return bool(earlier.any())


def _back_off(batch: list[Move], newly_cold: np.ndarray) -> list[Move]:
    """The next, smaller batch after a failed one: without the moved workers that lost a warm
    start (a container of their old configuration no longer fits them), else its safest half."""
    kept = [m for m in batch if not newly_cold[m.worker]]
    if kept and len(kept) < len(batch):
        return kept
    return batch[: len(batch) // 2]
