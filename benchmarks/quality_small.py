"""Small random DAGs against the exact optimum (part 1 of `plan_quality.py`).

A DAG has 3-8 tasks with random hints (duration 0.5-10 s, parallelism 0.3-3, outputs 1 KB -
100 MB); the platform is Lambda with 3 or 4 of its sizes. The exact optimum enumerates every
worker's configuration (c^w simulations, each with the baseline's pre-warm and with pre-warm
re-timed to the combination) under the plan's own placement and optimizations, and keeps the
cheapest within the best-everywhere makespan.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any

import numpy as np

from planner import optimize
from planner.assignment import try_simulate
from planner.compiler import CompileOptions, Stage, compile_graph
from planner.downgrade import within
from planner.graph import TaskCode, TaskGraph, TaskNode
from planner.predict import predict
from planner.target import best_everywhere
from planner.trace import TaskOptions
from simulator import Platform, ResourceConfig, load_platform

SIZES_MB = (512, 1024, 1769, 2048, 3538, 5307, 7076, 10240)
"""Configurations a small platform draws 3 or 4 of."""

WITHIN = 0.05
"""The target: cost within 5% of the optimum."""


def _noop(*args: object) -> None:
    return None


def random_graph(rng: np.random.Generator, n: int) -> TaskGraph:
    nodes = []
    for i in range(n):
        parents = sorted(set(rng.integers(0, i, size=rng.integers(1, min(3, i) + 1)).tolist())) \
            if i else []
        opts = TaskOptions(name="f", expected_s=float(rng.uniform(0.5, 10)),
                           parallelism=float(rng.choice([0.3, 1.0, 1.5, 2.0, 3.0])),
                           output_bytes=float(10 ** rng.uniform(3, 8)))
        nodes.append(TaskNode(f"f-{i}", "f", "bench.f", opts, tuple(f"f-{p}" for p in parents)))
    used = {p for node in nodes for p in node.upstream}
    leaves = [node.id for node in nodes[:-1] if node.id not in used]
    nodes[-1] = replace(nodes[-1], upstream=tuple(dict.fromkeys((*nodes[-1].upstream, *leaves))))
    return TaskGraph.create("small", nodes, {node.id: TaskCode(_noop) for node in nodes})


def random_platform(rng: np.random.Generator) -> Platform:
    k = int(rng.integers(3, 5))
    sizes = sorted(int(m) for m in rng.choice(SIZES_MB, size=k, replace=False))
    return load_platform("lambda").with_overrides(
        name="small", configs=tuple(ResourceConfig(m) for m in sizes))


def optimum(graph: TaskGraph, platform: Platform, options: CompileOptions
            ) -> tuple[float, int, int]:
    """(least cost within the best-everywhere makespan, workers, combinations tried)."""
    stage = Stage(graph, predict(graph, platform), platform, options)
    target = best_everywhere(stage)
    base, bound = target.assignment, target.result.makespan_s
    best = target.result.cost_usd
    cold = platform.cold_start_array
    tried = 0
    for combo in itertools.product(range(len(platform.configs)), repeat=base.n_workers):
        config = np.array(combo, np.int64)
        if (stage.pred.memory_mb[config][base.worker] < stage.pred.min_memory_mb).any():
            continue
        asg = base.with_config(config)
        res = try_simulate(stage.pred, asg, platform, with_slack=False)
        tried += 1
        if res is None:
            continue
        if within(res.makespan_s, bound):
            best = min(best, res.cost_usd)
        retimed = try_simulate(stage.pred, optimize.prewarm(stage.pred, asg, res, cold[config]),
                               platform, with_slack=False)
        if retimed is not None and within(retimed.makespan_s, bound):
            best = min(best, retimed.cost_usd)
    return best, base.n_workers, tried


def small_dags(count: int, seed: int) -> dict[str, Any]:
    """Gap of each strategy to the optimum on `count` random small DAGs, with the default
    clustering and with one worker per task (a configuration per task: the harder search)."""
    out: dict[str, Any] = {}
    for label, clustering in (("clustered", True), ("one worker per task", False)):
        out[label] = _gaps(count, seed, clustering, label)
    return out


def _gaps(count: int, seed: int, clustering: bool, label: str) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    strategies = ("critical-path", "uniform", "octoflows")
    gaps: dict[str, list[float]] = {s: [] for s in strategies}
    workers: list[int] = []
    started = time.perf_counter()
    for _ in range(count):
        graph = random_graph(rng, int(rng.integers(3, 9)))
        platform = random_platform(rng)
        best, w, _ = optimum(graph, platform, CompileOptions(clustering=clustering))
        workers.append(w)
        for s in strategies:
            plan = compile_graph(graph, CompileOptions(strategy=s, clustering=clustering),
                                 platform=platform)
            gaps[s].append(plan.summary.cost_usd / best - 1.0)
    out: dict[str, Any] = {"dags": count, "seed": seed, "workers_mean": float(np.mean(workers)),
                           "seconds": time.perf_counter() - started}
    print(f"\nsmall DAGs, {label}: {count} DAGs (3-8 tasks, 3-4 configurations, "
          f"{np.mean(workers):.1f} workers on average); cost gap to the exact optimum:")
    print(f"{'strategy':<14} {'optimal':>8} {'<=5%':>7} {'p50':>8} {'p90':>8} {'p99':>8} "
          f"{'max':>8}")
    for s in strategies:
        g = np.array(gaps[s])
        stats = {"optimal": float(np.mean(g <= 1e-9)), "within_5pct": float(np.mean(g <= WITHIN)),
                 "p50": float(np.quantile(g, 0.5)), "p90": float(np.quantile(g, 0.9)),
                 "p99": float(np.quantile(g, 0.99)), "max": float(g.max()),
                 "below_optimum": int((g < -1e-9).sum())}
        out[s] = stats
        print(f"{s:<14} {stats['optimal']:>8.1%} {stats['within_5pct']:>7.1%} "
              f"{stats['p50']:>8.2%} {stats['p90']:>8.2%} {stats['p99']:>8.2%} "
              f"{stats['max']:>8.2%}")
    return out
