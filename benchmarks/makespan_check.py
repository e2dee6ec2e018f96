"""Record (or check) what the planner and simulator decide, so speed work provably changes none
of it: per workload the compiled plan's makespan, cost, GB-s, chosen placement, simulation count
and every candidate's makespan, plus one `simulate` of a fixed random input per shape.

    python benchmarks/makespan_check.py --out /tmp/before.json     # record
    python benchmarks/makespan_check.py --check /tmp/before.json   # compare; exit 1 if any differs

Workloads: the no-op shapes of `benchmarks/shapes.py` (fan_in, fan_out, tree, chains) at 100,
1,000 and 10,000 tasks, every example that compiles without arguments, and a Dask graph
(`examples/dask_stats.py`), each compiled on `local` (host model on) and `lambda` in a fresh
`$PLANFLOW_HOME` (no history, so predictions are the defaults); and `simulate` of the
`simulate_speed` shapes at 1,000 and 10,000 tasks under both of its models. Floats are compared
exactly (repr): the figures are deterministic for the same inputs on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SHAPES = ("fan_in", "fan_out", "tree", "chains")
SIZES = (100, 1_000, 10_000)
EXAMPLES = ("tree_reduction", "wordcount", "matmul", "image_tiles", "cpu_fanout", "io_fanout",
            "numpy_pipeline", "nested_args", "dask_stats")
PLATFORMS = ("local", "lambda")


def _plan_figures(plan: Any) -> dict[str, Any]:
    p = plan.planning
    return {"makespan_s": repr(plan.summary.makespan_s), "cost_usd": repr(plan.summary.cost_usd),
            "gb_s": repr(plan.summary.gb_s), "workers": len(plan.workers),
            "placement": p.get("placement"), "simulations": p.get("simulations"),
            "rounds": p.get("rounds"),
            "candidates": json.dumps(p.get("candidates"), sort_keys=True, default=repr),
            "configs": sorted({t.memory_mb for t in plan.tasks.values()})}


def compiled(target: str, params: dict[str, Any], platform: str) -> dict[str, Any]:
    from planner.compiler import CompileOptions, compile_graph
    from planner.loader import load_graph

    graph = load_graph(target, params)
    plan = compile_graph(graph, CompileOptions(platform=platform))
    return _plan_figures(plan)


def simulated(shape: str, n: int, model: str) -> dict[str, Any]:
    import numpy as np
    import simulate_speed as ss

    from simulator import simulate

    base = ss.models()[model]
    rng = np.random.default_rng(n)
    inp = ss.make_input(ss.SHAPES[shape](n, rng), n, len(base.configs), rng)
    try:
        res = simulate(inp, base)
    except Exception:  # deadlock on the concurrency limit: as the benchmark, lifted
        res = simulate(inp, base.with_overrides(concurrency_limit=n))
    return {"makespan_s": repr(res.makespan_s), "cost_usd": repr(res.cost_usd),
            "critical_path": len(res.critical_path),
            "slack_sum": repr(float(np.nansum(res.slack_s)))}


def record() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for platform in PLATFORMS:
        for shape in SHAPES:
            for n in SIZES:
                key = f"compile {platform} {shape} {n}"
                out[key] = compiled(f"{ROOT}/benchmarks/shapes.py:{shape}", {"tasks": n},
                                    platform)
                print(key, out[key]["makespan_s"], out[key]["placement"], flush=True)
        for ex in EXAMPLES:
            key = f"compile {platform} example {ex}"
            try:
                out[key] = compiled(f"{ROOT}/examples/{ex}.py", {}, platform)
            except Exception as err:  # an example that needs arguments: recorded as such
                out[key] = {"error": f"{type(err).__name__}: {err}"[:200]}
            print(key, out[key].get("makespan_s"), out[key].get("placement"), flush=True)
    for shape in ("montage", "epigenomics", "random"):
        for n in (1_000, 10_000):
            for model in ("links", "host+store"):
                key = f"simulate {shape} {n} {model}"
                try:
                    out[key] = simulated(shape, n, model)
                except Exception as err:
                    out[key] = {"error": f"{type(err).__name__}: {err}"[:200]}
                print(key, out[key].get("makespan_s"), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--check", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["PLANFLOW_HOME"] = home
        now = record()
    if args.out:
        args.out.write_text(json.dumps(now, indent=1, sort_keys=True))
    if args.check:
        before = json.loads(args.check.read_text())
        diff = [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
        for k in diff:
            print(f"DIFFERS {k}:\n  before {before.get(k)}\n  now    {now.get(k)}")
        print(f"{len(now) - len(diff)} of {len(now)} equal")
        return 1 if diff else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
