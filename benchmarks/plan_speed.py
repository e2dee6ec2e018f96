"""Compile speed: every strategy on 1k / 10k / 100k-task DAGs (prediction + planning + final
simulation), on `local` (the default platform of `planflow compile`: this machine, host model
on, so the host-bound candidates, one worker, lanes and packed placements, are each simulated
with the host's sharing) and on `lambda`. `local-host` is `local` with `host_cpus` set to this
machine's CPU count explicitly.

    python benchmarks/plan_speed.py                       # 1k, 10k, 100k; local and lambda
    python benchmarks/plan_speed.py --sizes 1000,10000 --octoflows-budget 30
    python benchmarks/plan_speed.py --platforms local --strategies critical-path \
        --shapes fan_in,tree,chains

The DAGs are `benchmarks.dags.layered` (`--shapes layered`, the default: WfCommons-like stages
of fan-outs, pipelines and fan-ins; deterministic per size) or the no-op workflows of
`benchmarks/shapes.py` (`fan_in`, `fan_out`, `tree`, `chains`), traced first (not timed). Each
row starts with an empty simulation memo (`simulator.simulate.MEMO`), so no row reuses another's
runs; `compile_cpu_s` is this process's CPU time for the compile, which other work on a shared
machine inflates less than the wall time, printed beside the load average.

The octoflows baseline re-simulates the whole DAG per worker and configuration tried, so it gets
a time budget: when it runs out, its total time is estimated from the share of off-path workers
it reached (marked `~`). Prints a table and writes `benchmarks/results/plan_speed.json`. Targets
(DESIGN.md): 1,000 tasks < 1 s, 10,000 < 3 s, 100,000 < 30 s (critical-path, on either
platform).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dags import layered

from planner.compiler import STRATEGIES, CompileOptions, compile_graph
from planner.graph import TaskGraph
from planner.loader import load_graph
from planner.plan import Plan
from simulator import Platform, load_platform
from simulator.simulate import MEMO

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
OCTOFLOWS_BUDGET_S = 60.0
"""Seconds the octoflows baseline may run per DAG before its total is extrapolated."""

TARGETS_S = {1_000: 1.0, 10_000: 3.0, 100_000: 30.0}
"""DESIGN.md's compile-time targets (critical-path)."""

PLATFORMS = ("local", "lambda")
"""The default platforms; `local-host` (local with host_cpus = this machine's CPU count) too."""
SHAPES = ("layered",)
"""The default DAG shapes; also those of benchmarks/shapes.py."""


def platform_of(name: str) -> Platform:
    if name == "local-host":
        return load_platform("local").with_overrides(host_cpus=float(os.cpu_count() or 1))
    return load_platform(name)


def graph_of(shape: str, n: int) -> TaskGraph:
    if shape == "layered":
        return layered(n)
    return load_graph(f"{Path(__file__).resolve().parent / 'shapes.py'}:{shape}", {"tasks": n})


def measure(n: int, strategy: str, budget_s: float, platform: str, shape: str = "layered"
            ) -> dict[str, Any]:
    graph = graph_of(shape, n)
    plat = platform_of(platform)
    MEMO.clear()
    started, started_cpu = time.perf_counter(), time.process_time()
    plan = compile_graph(graph, CompileOptions(strategy=strategy), platform=plat,
                         time_budget_s=budget_s)
    wall = time.perf_counter() - started
    row = {"tasks": n, "shape": shape, "platform": platform, "strategy": strategy,
           "compile_s": wall, "compile_cpu_s": time.process_time() - started_cpu,
           "loadavg_1m": os.getloadavg()[0],
           "placement": plan.planning.get("placement"), **_figures(plan)}
    if plan.planning.get("unfinished_workers"):
        row["estimated_s"] = _extrapolate(plan, wall)
    return row


def _figures(plan: Plan) -> dict[str, Any]:
    keep = ("predict_s", "baseline_s", "configure_s", "final_s", "simulations", "rounds",
            "unfinished_workers")
    base = plan.baseline
    return {**{k: plan.planning.get(k) for k in keep}, "workers": len(plan.workers),
            "makespan_s": plan.summary.makespan_s, "gb_s": plan.summary.gb_s,
            "baseline_gb_s": base.gb_s if base else None}


def _extrapolate(plan: Plan, wall: float) -> float:
    """Total time octoflows would take: its loop time scaled to every off-path worker."""
    base = plan.baseline
    on_path = {plan.tasks[t].worker for t in (base.critical_path if base else ())}
    off_path = len(plan.workers) - len(on_path)
    left = int(plan.planning["unfinished_workers"])
    loop = float(plan.planning["configure_s"])
    return wall - loop + loop * off_path / max(off_path - left, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--octoflows-budget", type=float, default=OCTOFLOWS_BUDGET_S)
    parser.add_argument("--platforms", default=",".join(PLATFORMS),
                        help="comma-separated: local, lambda, local-host")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help="comma-separated: layered, fan_in, fan_out, tree, chains")
    parser.add_argument("--out", type=Path, default=RESULTS / "plan_speed.json")
    args = parser.parse_args()
    rows = []
    print(f"{'tasks':>7} {'shape':<8} {'platform':<10} {'strategy':<14} {'compile':>10} "
          f"{'cpu':>7} {'load':>5} {'predict':>8} "
          f"{'baseline':>9} {'configure':>10} {'final':>7} {'sims':>5} {'workers':>8} "
          f"{'GB-s':>11}  placement")
    for n in (int(x) for x in args.sizes.split(",")):
        for shape in args.shapes.split(","):
            for platform in args.platforms.split(","):
                for strategy in args.strategies.split(","):
                    row = measure(n, strategy, args.octoflows_budget, platform, shape)
                    rows.append(row)
                    _print_row(row)
    for n, target in TARGETS_S.items():
        for r in rows:
            if r["tasks"] == n and r["strategy"] == "critical-path":
                verdict = "met" if r["compile_s"] < target else "MISSED"
                print(f"target: critical-path compile of {n} tasks ({r['shape']}) on "
                      f"{r['platform']} < {target:g} s: {verdict} ({r['compile_s']:.2f} s, "
                      f"cpu {r['compile_cpu_s']:.2f} s, load {r['loadavg_1m']:.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"host": host.node(), "python": host.python_version(),
                                    "octoflows_budget_s": args.octoflows_budget, "rows": rows},
                                   indent=1))
    print(f"wrote {args.out}")


def _print_row(row: dict[str, Any]) -> None:
    total = (f"~{row['estimated_s']:.1f} s" if "estimated_s" in row
             else f"{row['compile_s']:.2f} s")
    print(f"{row['tasks']:>7} {row['shape']:<8} {row['platform']:<10} {row['strategy']:<14} "
          f"{total:>10} {row['compile_cpu_s']:>7.2f} {row['loadavg_1m']:>5.2f} "
          f"{row['predict_s']:>8.2f} {row['baseline_s']:>9.2f} "
          f"{row['configure_s']:>10.2f} {row['final_s']:>7.2f} "
          f"{row['simulations']:>5} {row['workers']:>8} {row['gb_s']:>11.0f}  "
          f"{row['placement']}", flush=True)


if __name__ == "__main__":
    main()
