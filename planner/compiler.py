"""The compile pipeline: TaskGraph -> Plan. The passes, in order:

1. predict    durations of every task at every configuration, feasibility, output and edge
              bytes (`planner.predict`, through metadata's MetadataAccess).
2. place      workers: planned clustering (`placement.cluster`), one worker per task with
              `--no-clustering`, or WUKONG's rule for `wukong` (`planner.placement`); under a
              binding concurrency limit also variants that cannot deadlock; on a host-bound
              platform (`host_cpus`) one worker, one lane per CPU and the clustering packed
              onto as many workers as the CPUs keep busy (`planner.target`).
3. optimize   delayed I/O and pre-load flags (`planner.optimize`; `--no-delayed-io`,
              `--no-preload`).
4. baseline   the best feasible configuration on every worker, pre-warm timed from its own
              timeline (`--no-prewarm`), simulated; the fastest placement is kept and its
              makespan is the target; the bound is target x (1 + `--slowdown`), or
              `--deadline-s`.
5. configure  per strategy: `critical-path` takes the critical path and slack of the baseline
              simulation and runs the downgrade loop (`planner.downgrade`), from the baseline
              and from the cheapest one-configuration plan within the bound, keeping the
              cheaper result; `uniform`, `wukong` and `octoflows` are `planner.baselines`.
6. pre-warm   re-timed from the configured timeline (later requests, less idle billing); kept
              only if the plan stays within the bound and gets no costlier.
7. simulate   the final plan, and explain it (`planner.explain`): per task its configuration,
              worker, predicted times, critical flag, slack, optimizations and reasons.

Graphs with dynamic fan-outs (`planflow.map`) are compiled through their planning graph, with
these passes, by `planner.dynamic_plan`. A workflow's requirements are pinned before the first
pass (`planner.requirements`): a missing package fails the compile, naming it.

Configuration and placement: a worker has one configuration, and the downgrade loop chooses it
per worker. Placement therefore comes first: every simulation, the target's included, needs
workers, and choosing per task then clustering afterwards would either split chains where
configurations differ (an extra start-up and transfer each time, which can break the verified
makespan) or run a chain at the largest of its tasks' configurations (slack spent on tasks that
are not cheaper after all). A worker's tasks are downgraded together, and a worker with a
critical-path task moves only to configurations where that task does not get slower (or within
`--slowdown`/`--deadline-s`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from planner import baselines, optimize
from planner.assignment import Assignment, simulate_assignment, try_simulate
from planner.downgrade import Outcome, downgrade, within
from planner.errors import PlanningError, UsageError
from planner.graph import TaskGraph
from planner.options import (
    DEFAULT_PLATFORM,
    DEFAULT_ROUNDS,
    DEFAULT_STRATEGY,
    STRATEGIES,
    CompileOptions,
)
from planner.plan import Plan
from planner.predict import Predictions, learned_platform, predict
from planner.target import best_everywhere, cold_starts

if TYPE_CHECKING:
    from simulator import Platform, SimResult

__all__ = ["DEFAULT_PLATFORM", "DEFAULT_ROUNDS", "DEFAULT_STRATEGY", "STRATEGIES",
           "CompileOptions", "compile_graph"]

@dataclass(frozen=True)
class Stage:
    """The figures one compile carries between passes."""

    graph: TaskGraph
    pred: Predictions
    platform: Platform
    options: CompileOptions
    time_budget_s: float | None = None


def compile_graph(graph: TaskGraph, options: CompileOptions | None = None, *,
                  access: Any = None, platform: Platform | None = None,
                  time_budget_s: float | None = None) -> Plan:
    """Compile `graph` (the passes in the module docstring). `access` is a metadata
    `MetadataAccess` with history; `platform` overrides `options.platform`;
    `time_budget_s` stops the octoflows baseline early (benchmarks: it is that slow)."""
    from planner import explain

    options = options or CompileOptions()
    if graph.requirements:  # pinned first: a missing package fails before any planning
        from planner.requirements import pin

        pinned = pin(graph.requirements, graph.workflow)
        plan = compile_graph(dataclasses.replace(graph, requirements=()), options,
                             access=access, platform=platform, time_budget_s=time_budget_s)
        return dataclasses.replace(plan, graph=dataclasses.replace(
            plan.graph, requirements=graph.requirements), requirements=pinned)
    clock = Clock()
    platform = platform or load(options.platform)
    if platform.host_cpus is not None:
        # workers on this machine: plan with the start-ups its runs measured, not the file's
        platform = learned_platform(platform, access, graph.workflow)
    if any(node.dynamic for node in graph.nodes):  # planflow.map: via the planning graph
        from planner.dynamic_plan import compile_dynamic

        return compile_dynamic(graph, lambda g: compile_graph(
            g, options, access=access, platform=platform, time_budget_s=time_budget_s),
            platform, access, options.quantile)
    stage = Stage(graph, predict(graph, platform, quantile=options.quantile, access=access),
                  platform, options, time_budget_s)
    clock.lap("predict_s")
    target = best_everywhere(stage)
    bound = bound_of(stage, target.result)
    clock.lap("baseline_s")
    outcome = configure(stage, target.assignment, target.result, bound)
    clock.lap("configure_s")
    final = retime_prewarm(stage, outcome, bound)
    clock.lap("final_s")
    return explain.build_plan(stage, target, final, bound, clock.laps)


class Clock:
    """Wall-clock seconds per pass, for the plan's `planning` figures."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = self._start = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 6)
        self.laps["compile_s"] = round(now - self._start, 6)
        self._last = now


def load(name_or_file: str) -> Platform:
    """A platform by name or TOML file; its errors become UsageError."""
    from simulator import PlatformError, load_platform

    try:
        return load_platform(name_or_file)
    except PlatformError as err:
        raise UsageError(f"--platform {name_or_file}: {err}") from err


def bound_of(stage: Stage, baseline: SimResult) -> float:
    """The makespan the plan must not exceed."""
    opts = stage.options
    if opts.deadline_s is None:
        return float(baseline.makespan_s * (1.0 + opts.slowdown))
    if not within(baseline.makespan_s, opts.deadline_s):
        raise PlanningError(
            f"--deadline-s {opts.deadline_s:g}: the fastest predicted makespan (best "
            f"configuration everywhere) is {baseline.makespan_s:.3f} s; allow at least that")
    return float(opts.deadline_s)


def configure(stage: Stage, asg: Assignment, result: SimResult, bound: float) -> Outcome:
    """Pass 5: the strategy's configurations."""
    pred, opts, plat = stage.pred, stage.options, stage.platform
    if opts.strategy == "critical-path":
        return critical_path(stage, asg, result, bound)
    if opts.strategy == "octoflows":
        return baselines.octoflows(pred, asg, plat, result, stage.time_budget_s)
    if opts.strategy == "uniform":
        if opts.memory_mb is None:
            return baselines.uniform(pred, asg, plat, bound)
        fixed = asg.with_config(baselines.fixed_config(pred, asg, opts.memory_mb, "uniform"))
        return Outcome(fixed, simulate_assignment(pred, fixed, plat), simulations=1)
    return Outcome(asg, result)


def critical_path(stage: Stage, asg: Assignment, result: SimResult, bound: float) -> Outcome:
    """The downgrade loop from two starts, the cheaper result wins (ties: the first):
    the best-everywhere plan, and the cheapest one-configuration plan within the bound.

    The second start matters where warm containers do: workers of one configuration reuse each
    other's containers, so moving workers one batch at a time can cost warm starts that a
    coordinated move to one configuration keeps."""
    pred, plat, rounds = stage.pred, stage.platform, stage.options.rounds
    # pre-warm repairs only where the kept placement pre-warms (not on wait-free variants)
    may_prewarm = stage.options.prewarm and bool((~np.isnan(asg.prewarm_at_s)).any())
    first = downgrade(pred, asg, plat, result, bound, rounds, prewarm=may_prewarm)
    if rounds == 0:
        return first
    same = baselines.uniform(pred, asg, plat, bound)
    spent = first.simulations + same.simulations
    if np.array_equal(same.assignment.config, asg.config):
        first.simulations = spent
        return first
    second = downgrade(pred, same.assignment, plat, same.result, bound, rounds,
                       prewarm=may_prewarm)
    best = second if second.result.cost_usd < first.result.cost_usd else first
    best.simulations = spent + second.simulations
    best.rounds = first.rounds + second.rounds
    return best


def retime_prewarm(stage: Stage, outcome: Outcome, bound: float) -> Outcome:
    """Pass 6: pre-warm re-timed from the configured timeline, if that is no worse."""
    asg = outcome.assignment
    if not stage.options.prewarm or stage.options.strategy == "wukong":
        return outcome
    trial = optimize.prewarm(stage.pred, asg, outcome.result, cold_starts(stage, asg))
    res = try_simulate(stage.pred, trial, stage.platform)
    outcome.simulations += 1
    limit = max(bound, outcome.result.makespan_s)
    if res and within(res.makespan_s, limit) and res.cost_usd <= outcome.result.cost_usd:
        outcome.assignment, outcome.result = trial, res
    return outcome
