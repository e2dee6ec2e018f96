"""Explanation: the final assignment and simulations become a `Plan` that says why.

Per task: configuration, worker, predicted start/finish/duration, critical flag, slack, the
optimizations that apply to it and the reasons the passes gave (clustering, delayed I/O,
pre-load, pre-warm, downgrade). Per worker: configuration, task order, pre-warm time, pre-load,
predicted start/stop, cold or warm start. Per downgraded worker a `Downgrade` with the slack that
allowed it and the GB-s it saves against the best-everywhere plan ("slack 3.2 s; 2048 -> 1024 MB
saves 0.8 GB-s"). The summary is the final simulation's; the baseline is the best-everywhere one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from planner import optimize
from planner.assignment import Assignment, summarize
from planner.downgrade import MB_PER_GB, Outcome, within
from planner.plan import Downgrade, Plan, TaskPlan, WorkerPlan

if TYPE_CHECKING:
    from planner.compiler import Stage
    from planner.target import Target
    from simulator import SimResult


def build_plan(stage: Stage, target: Target, final: Outcome, bound: float,
               timings: dict[str, float]) -> Plan:
    """The Plan of `final`, compared with the best-everywhere `target`."""
    pred, res = stage.pred, final.result
    # pre-warm reasons from the final request times (the downgrade loop may have moved some)
    asg = optimize.prewarm_reasons(final.assignment)
    base_asg, base_res = target.assignment, target.result
    downgrades = _downgrades(stage, base_asg, base_res, final)
    why = {t: d.reason for d in downgrades for t in d.tasks}
    ids = pred.task_ids
    cfg = asg.task_config()
    critical = res.critical_mask
    tasks = {}
    for i, tid in enumerate(ids):
        reasons = asg.reasons.get(i, ())
        optimizations = asg.optimizations.get(i, ())
        if tid in why:
            reasons = (f"downgrade: {why[tid]}", *reasons)
            optimizations = ("downgrade", *optimizations)
        tasks[tid] = TaskPlan(
            tid, int(pred.memory_mb[cfg[i]]), float(pred.cpus[cfg[i]]), f"w{int(asg.worker[i])}",
            float(res.task_start_s[i]), float(res.task_finish_s[i]),
            float(res.task_finish_s[i] - res.task_start_s[i]), bool(critical[i]),
            _finite(res.slack_s[i]), optimizations, reasons, str(pred.source[i]))
    workers = tuple(
        WorkerPlan(f"w{k}", int(pred.memory_mb[c]), float(pred.cpus[c]),
                   tuple(ids[i] for i in members),
                   None if math.isnan(asg.prewarm_at_s[k]) else float(asg.prewarm_at_s[k]),
                   bool(asg.preload[k]), float(res.worker_start_s[k]),
                   float(res.worker_stop_s[k]), bool(res.worker_cold[k]))
        for k, (c, members) in enumerate(zip(asg.config.tolist(), asg.worker_tasks(),
                                             strict=True)))
    summary, baseline = summarize(res, ids), summarize(base_res, ids)
    planning = {**timings, "target_makespan_s": float(base_res.makespan_s), "bound_s": bound,
                "placement": target.name, "placements_tried": target.tried,
                "placement_makespans_s": target.makespans,
                "candidates": [t.as_dict(target.name) for t in target.candidates],
                "rounds": final.rounds, "simulations": final.simulations,
                "unfinished_workers": final.remaining}
    return Plan(stage.graph, stage.options.strategy, stage.platform.name, tasks, workers,
                summary, baseline, stage.options.as_dict(),
                _notes(stage, target, summary.cost_usd, baseline.cost_usd, bound, downgrades,
                       final),
                downgrades=downgrades, prediction_sources=pred.source_counts(),
                planning=planning, platform_spec=stage.platform)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _makespan(x: float | None) -> str:
    return "deadlocks" if x is None else f"{x:.3f} s"


def _finite(x: float) -> float:
    return float(x) if math.isfinite(x) else 0.0


def _downgrades(stage: Stage, base_asg: Assignment, base_res: SimResult, final: Outcome
                ) -> tuple[Downgrade, ...]:
    """One record per worker whose configuration is smaller than in the baseline."""
    pred, asg, res = stage.pred, final.assignment, final.result
    gb = pred.memory_mb / MB_PER_GB
    base_gb_s = gb[base_asg.config] * base_res.worker_billed_s
    final_gb_s = gb[asg.config] * res.worker_billed_s
    budgets: dict[int, float] = {}
    for m in final.moves:
        if m.kind == "slack":
            budgets[m.worker] = min(budgets.get(m.worker, math.inf), m.budget_s)
    members = asg.worker_tasks()
    out = []
    for k in np.flatnonzero(asg.config < base_asg.config).tolist():
        old, new = int(pred.memory_mb[base_asg.config[k]]), int(pred.memory_mb[asg.config[k]])
        saved = float(base_gb_s[k] - final_gb_s[k])
        slack = budgets.get(k)
        if stage.options.strategy == "critical-path":
            head = (f"slack {slack:.3g} s" if slack is not None
                    else f"no task gets slower at {new} MB")
        elif stage.options.strategy == "octoflows":
            head = "critical-path time unchanged (octoflows)"
        else:
            head = f"one configuration for all workers ({stage.options.strategy})"
        out.append(Downgrade(f"w{k}", tuple(pred.task_ids[i] for i in members[k]), old, new,
                             slack, saved,
                             f"{head}; {old} -> {new} MB saves {saved:.3g} GB-s"))
    out.sort(key=lambda d: (-d.saved_gb_s, int(d.worker[1:])))
    return tuple(out)


def _notes(stage: Stage, target: Target, cost: float, base_cost: float, bound: float,
           downgrades: tuple[Downgrade, ...], final: Outcome) -> tuple[str, ...]:
    opts = stage.options
    makespan = final.result.makespan_s
    notes = []
    if len(target.candidates) > 1:
        others = ", ".join(f"{t.name} {_makespan(t.makespan_s)}" for t in target.candidates
                           if t.name != target.name)
        notes.append(f"placement: {target.name} (simulated {target.result.makespan_s:.3f} s), "
                     f"picked by simulated makespan; the others: {others}")
    if downgrades:
        share = cost / base_cost if base_cost > 0 else 1.0
        notes.append(
            f"{len(downgrades)} of {final.assignment.n_workers} workers on cheaper "
            f"configurations; cost {share:.1%} of the best-everywhere plan ("
            + (f"{_count(final.rounds, 'downgrade round')}, " if final.rounds else "")
            + f"{_count(final.simulations, 'simulation')})")
    if not within(makespan, bound):
        notes.append(f"predicted makespan {makespan:.3f} s exceeds the bound {bound:.3f} s "
                     f"(strategy {opts.strategy}"
                     + (f", {opts.memory_mb} MB everywhere)" if opts.memory_mb else ")"))
    if opts.deadline_s is not None:
        notes.append(f"cheapest plan found within the deadline of {opts.deadline_s:g} s")
    if opts.quantile is not None:
        notes.append(f"planned on the {opts.quantile:g}-quantile of predicted durations")
    counts = stage.pred.source_counts()
    notes.append("durations predicted from " + ", ".join(
        f"{name} for {count}" for name, count in counts.items() if count))
    return tuple(notes)
