"""What-if simulation of a compiled plan: the plan as compiled beside a changed scenario.

`what_if(plan, ...)` rebuilds the plan's numeric form (predictions on the chosen platform, the
plan's workers, configurations, pre-warm, pre-load and delayed-I/O decisions), simulates it as
compiled and as changed, and returns a `WhatIf` with both sets of figures and their difference.

The plan is simulated on the platform it carries (`Plan.platform_spec`), unless told otherwise.
Changes, applied in this order:

* `platform`: simulate on another platform: a what-if, and the report says so (`other_platform`,
  JSON `what_if`). A worker keeps its memory when the platform offers it, else takes the
  smallest configuration with at least that much (noted in `changes`). A platform equal to the
  plan's (every field but the description) is no what-if.
* `all_memory_mb`: every worker on that configuration.
* `set_memory`: `(pattern, memory_mb)` pairs, a glob on task id or function name; a worker has
  one configuration, so a match moves the whole worker of the matched task (later pairs win).

* `widths`: `{dynamic fan-out id: width}`, a what-if on the width of `planflow.map` nodes. A plan
  with dynamic fan-outs is simulated through its planning graph (`planner.dynamic_plan`): as
  compiled at the widths it assumed, the scenario at these widths, its elements split by the
  plan's rule (the same the runtime uses).

Placement and optimizations stay as compiled (pre-warm times included, so a slower scenario
shows the start-ups it would now wait for). A configuration below a task's least memory is an
error naming the task. With `samples`, durations are drawn from the predictions' lognormal
spread around their medians (whatever quantile the plan was compiled on; seeded), and
p50/p90/p99 of makespan and cost are reported for both.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from planner.assignment import Assignment, sim_input, simulate_assignment
from planner.errors import UsageError
from planner.plan import Plan, platform_of
from planner.predict import Predictions, predict

if TYPE_CHECKING:
    from simulator import Platform, SimResult

FIGURES = ("makespan_s", "cost_usd", "gb_s", "workers", "cold_starts")
"""The figures compared between the plan as compiled and the scenario."""


@dataclass(frozen=True)
class Figures:
    """One simulated variant of the plan."""

    makespan_s: float
    cost_usd: float
    gb_s: float
    workers: int
    cold_starts: int
    critical_path: tuple[str, ...]
    samples: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["critical_path"] = list(self.critical_path)
        return d


@dataclass(frozen=True)
class WhatIf:
    """The plan as compiled, the scenario, and what changed."""

    workflow: str
    strategy: str
    platform: str
    changes: tuple[str, ...]
    compiled: Figures
    scenario: Figures
    tasks: tuple[dict[str, Any], ...]
    workers: tuple[dict[str, Any], ...]
    gantt: str | None = None
    compiled_for: str | None = None
    """The platform the plan was compiled for, when it is simulated on another one (what-if);
    None when it is simulated on its own."""

    @property
    def other_platform(self) -> bool:
        return self.compiled_for is not None

    def difference(self) -> dict[str, float]:
        return {k: getattr(self.scenario, k) - getattr(self.compiled, k) for k in FIGURES}

    def to_json(self) -> dict[str, Any]:
        s = self.scenario
        return {"workflow": self.workflow, "strategy": self.strategy, "platform": self.platform,
                "changes": list(self.changes), "makespan_s": s.makespan_s,
                "cost_usd": s.cost_usd, "gb_s": s.gb_s, "cold_starts": s.cold_starts,
                "critical_path": list(s.critical_path), "compiled": self.compiled.to_json(),
                "scenario": s.to_json(), "difference": self.difference(),
                "gantt": self.gantt, "workers": list(self.workers), "tasks": list(self.tasks),
                "what_if": {"platform": self.platform, "compiled_for": self.compiled_for}
                if self.compiled_for is not None else None}


def what_if(plan: Plan, platform: Platform | None = None, *, all_memory_mb: int | None = None,
            set_memory: Sequence[tuple[str, int]] = (), samples: int = 0, seed: int = 0,
            gantt: str | None = None, access: Any = None,
            widths: Mapping[str, int] | None = None) -> WhatIf:
    """Simulate `plan` as compiled and with the changes (module docstring), on `platform`
    (None: the plan's own). `access` is a metadata MetadataAccess with history (None: hints
    and priors, as `compile` without one)."""
    if plan.dynamic or widths:
        return _dynamic_what_if(plan, platform, dict(widths or {}), all_memory_mb=all_memory_mb,
                                set_memory=set_memory, samples=samples, seed=seed, gantt=gantt,
                                access=access)
    if samples < 0:
        raise UsageError(f"--samples must be >= 0, got {samples}")
    own = platform_of(plan)
    if platform is None:
        if own is None:
            raise UsageError(f"the plan of '{plan.workflow}' carries no platform (built by "
                             "hand); name one to simulate it on")
        platform = own
    compiled_for = None if own == platform else plan.platform
    quantile = plan.options.get("quantile")
    pred = predict(plan.graph, platform, quantile=quantile, access=access)
    changes: list[str] = []
    compiled = assignment_of(plan, pred, changes, platform.name)
    config = compiled.config.copy()
    if all_memory_mb is not None:
        config[:] = _config_index(pred, all_memory_mb, "--all")
        changes.append(f"every worker on {all_memory_mb} MB")
    for pattern, memory in set_memory:
        config = _apply_set(plan, compiled, config, pred, pattern, memory, changes)
    scenario = compiled.with_config(config)
    _check_feasible(pred, scenario)
    res_c = simulate_assignment(pred, compiled, platform)
    res_s = simulate_assignment(pred, scenario, platform)
    median = pred if quantile is None or not samples else predict(
        plan.graph, platform, access=access)
    fig_c = _figures(pred, compiled, res_c, platform, (median, samples, seed))
    fig_s = _figures(pred, scenario, res_s, platform, (median, samples, seed))
    if gantt is not None:
        from simulator import draw_gantt

        draw_gantt(res_s, sim_input(pred, scenario), gantt, task_labels=list(pred.task_ids),
                   worker_labels=[f"w{k}" for k in range(scenario.n_workers)],
                   title=f"{plan.workflow} · {plan.strategy} plan on {platform.name} · "
                         f"scenario: {'; '.join(changes) or 'as compiled'}")
    return WhatIf(plan.workflow, plan.strategy, platform.name, tuple(changes), fig_c, fig_s,
                  _task_rows(pred, scenario, res_s), _worker_rows(pred, scenario, res_s), gantt,
                  compiled_for)


def _dynamic_what_if(plan: Plan, platform: Platform | None, widths: dict[str, int],
                     **options: Any) -> WhatIf:
    """`what_if` of a plan with dynamic fan-outs: through its planning graph (module docstring)."""
    from planner.dynamic_plan import expand_plan

    if not plan.dynamic:
        raise UsageError(f"--width {next(iter(widths))}: the plan has no dynamic fan-out "
                         "(planflow.map)")
    for name, width in widths.items():
        if width < 0:
            raise UsageError(f"--width {name}={width}: a width is >= 0")
    scenario = what_if(expand_plan(plan, widths), platform, **options)
    if not widths:
        return scenario
    compiled = what_if(expand_plan(plan), platform, samples=options["samples"],
                       seed=options["seed"], access=options["access"]).compiled
    changes = tuple(f"{name}: {w} elements (planned for {plan.dynamic[name].width})"
                    for name, w in widths.items())
    return replace(scenario, compiled=compiled, changes=(*changes, *scenario.changes))


def parse_width(item: str) -> tuple[str, int]:
    """`"count-0=200"` -> `("count-0", 200)`; UsageError naming the item otherwise."""
    name, sep, width = item.rpartition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name, int(width)
    except ValueError:
        raise UsageError(f"--width '{item}': expected NAME=N (a dynamic fan-out's task id and a "
                         "width), e.g. 'count-0=200'") from None


def assignment_of(plan: Plan, pred: Predictions, changes: list[str], platform: str
                  ) -> Assignment:
    """The plan's decisions as an Assignment on the predictions' platform."""
    wid = {w.worker_id: k for k, w in enumerate(plan.workers)}
    worker = np.array([wid[plan.tasks[t].worker] for t in pred.task_ids], np.int64)
    config = np.empty(len(plan.workers), np.int64)
    moved: dict[int, int] = {}
    for k, w in enumerate(plan.workers):
        config[k] = _nearest(pred, w.memory_mb)
        if int(pred.memory_mb[config[k]]) != w.memory_mb:
            moved[w.memory_mb] = int(pred.memory_mb[config[k]])
    for old, new in sorted(moved.items()):
        changes.append(f"{platform} has no {old} MB configuration: {new} MB instead")
    asg = Assignment.create(worker, config)
    prewarm = np.array([math.nan if w.prewarm_at_s is None else w.prewarm_at_s
                        for w in plan.workers], np.float64)
    delayed = np.array(["delayed-io" in plan.tasks[t].optimizations for t in pred.task_ids])
    return replace(asg, prewarm_at_s=prewarm, preload=np.array([w.preload for w in plan.workers],
                                                                bool), delayed_io=delayed)


def _nearest(pred: Predictions, memory_mb: int) -> int:
    at_least = np.flatnonzero(pred.memory_mb >= memory_mb)
    return int(at_least[0]) if at_least.size else pred.n_configs - 1


def _config_index(pred: Predictions, memory_mb: int, option: str) -> int:
    match = np.flatnonzero(pred.memory_mb == memory_mb)
    if not match.size:
        raise UsageError(f"{option} {memory_mb}: the platform has no such configuration; "
                         f"choose one of {pred.memory_mb.tolist()}")
    return int(match[0])


def _apply_set(plan: Plan, asg: Assignment, config: np.ndarray, pred: Predictions,
               pattern: str, memory: int, changes: list[str]) -> np.ndarray:
    index = _config_index(pred, memory, "--set")
    hits = [i for i, t in enumerate(pred.task_ids)
            if fnmatch.fnmatchcase(t, pattern)
            or fnmatch.fnmatchcase(plan.graph.nodes[i].function, pattern)]
    if not hits:
        raise UsageError(f"--set '{pattern}={memory}': no task id or function name matches "
                         f"'{pattern}'")
    workers = sorted(set(asg.worker[hits].tolist()))
    config = config.copy()
    config[workers] = index
    changes.append(f"{pattern} -> {memory} MB ({len(hits)} tasks, {len(workers)} workers)")
    return config


def _check_feasible(pred: Predictions, asg: Assignment) -> None:
    short = np.flatnonzero(pred.memory_mb[asg.task_config()] < pred.min_memory_mb)
    if short.size:
        i = int(short[0])
        raise UsageError(f"task '{pred.task_ids[i]}' needs {int(pred.min_memory_mb[i])} MB "
                         f"but the scenario gives it {int(pred.memory_mb[asg.task_config()[i]])}"
                         " MB; choose a larger configuration")


def _figures(pred: Predictions, asg: Assignment, res: SimResult, platform: Platform,
             sampling: tuple[Predictions, int, int]) -> Figures:
    median, samples, seed = sampling
    sampled = None
    if samples > 0:
        from simulator import simulate_samples

        rows = np.arange(pred.n_tasks), asg.task_config()
        spread = median.spread[rows]
        # predictions are medians; the sampler wants means: a lognormal's mean is
        # median x sqrt(1 + cv^2)
        inp = sim_input(median, asg)
        inp = replace(inp, duration_s=inp.duration_s * np.sqrt(1.0 + spread ** 2))
        summary = simulate_samples(inp, platform, spread, samples, seed)
        sampled = {"samples": samples, "seed": seed,
                   "makespan_s": asdict(summary.makespan_s), "cost_usd": asdict(summary.cost_usd)}
    return Figures(float(res.makespan_s), float(res.cost_usd), float(res.gb_s),
                   int(res.invocations), int(res.cold_starts),
                   tuple(pred.task_ids[i] for i in res.critical_path), sampled)


def _task_rows(pred: Predictions, asg: Assignment, res: SimResult) -> tuple[dict[str, Any], ...]:
    cfg, critical = asg.task_config(), res.critical_mask
    return tuple({"id": t, "memory_mb": int(pred.memory_mb[cfg[i]]),
                  "worker": f"w{int(asg.worker[i])}", "start_s": float(res.task_start_s[i]),
                  "finish_s": float(res.task_finish_s[i]), "critical": bool(critical[i])}
                 for i, t in enumerate(pred.task_ids))


def _worker_rows(pred: Predictions, asg: Assignment, res: SimResult
                 ) -> tuple[dict[str, Any], ...]:
    return tuple({"id": f"w{k}", "memory_mb": int(pred.memory_mb[c]),
                  "start_s": float(res.worker_start_s[k]), "stop_s": float(res.worker_stop_s[k]),
                  "cold": bool(res.worker_cold[k])}
                 for k, c in enumerate(asg.config.tolist()))
