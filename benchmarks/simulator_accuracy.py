"""Simulator accuracy: a recorded workflow's predicted makespan against the observed one, locally.

For every example workflow (sized so that its tasks take tens to hundreds of milliseconds, except
tree_reduction, whose adds are microseconds and measure the runtime's overheads):

1. record: runs through the real runtime (local launcher, cgroup-enforced configurations, a
   private embedded Redis and namespace), metrics recorded. `--history isolated` (default): the
   workflow on one worker, once at each of ISOLATED_MB, so every task is measured alone on the
   host, which is what a duration means to the simulator (its time at its configuration; the
   simulator adds the sharing of the host's CPUs). `--history compiled`: `--record` runs of
   the workflow compiled for `local` from what the store has learned so far (the first from
   priors): tasks of those runs share the 2 cores, so their recorded durations include that
   sharing, and a plan compiled from them counts it twice (see the report in the JSON);
2. evaluate: compile once more from the learned history and run that plan `--repeat` times;
   compare the plan's predicted makespan with the observed ones (median, min-max). The error is
   (predicted - median observed) / median observed;
3. plan quality: the same tasks on one worker (largest configuration, topological order), run
   `--repeat` times interleaved with step 2, predicted by simulating that placement with the
   same history (`planner.whatif`), so the simulator is also checked on a plan it did not pick.

    python benchmarks/simulator_accuracy.py [--history isolated|compiled] [--record 3]
        [--repeat 5] [--only matmul,wordcount]

Prints a table and writes `benchmarks/results/simulator_accuracy.json`. Quality bar (DESIGN.md):
predicted makespan within 10 % of the observed one for recorded workflows. The machine's load
average is printed beside the figures: other processes on the 2 cores inflate observed times.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

# One BLAS thread per worker process (inherited by the pool the runtime starts), as
# benchmarks/predict_accuracy.py does: a worker's CPU quota then bounds what its task uses.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import planflow  # noqa: E402
from metadata.access import MetadataAccess  # noqa: E402
from metadata.store import MetricsStore  # noqa: E402
from planflow.api import learned_predictions  # noqa: E402
from planner.plan import Plan, WorkerPlan  # noqa: E402
from planner.whatif import what_if  # noqa: E402
from runtime.embedded import EmbeddedRedis  # noqa: E402
from runtime.local import shutdown_pools  # noqa: E402
from simulator import load_platform  # noqa: E402

NAMESPACE = "simbench"
PLATFORM = "local"
TARGET_ERROR_PCT = 10.0
ISOLATED_MB = (512, 1769, 3538)
"""Configurations of the `--history isolated` recording runs (a quarter, one and two CPUs)."""

# (example module, parameters)
WORKLOADS: tuple[tuple[str, dict[str, int]], ...] = (
    ("matmul", {"size": 3072, "blocks": 3}),
    ("tree_reduction", {"n": 64}),
    ("wordcount", {"words": 3_000_000, "chunks": 6, "top": 5}),
    ("image_tiles", {"size": 6144, "tiles": 3}),
)


@dataclass(frozen=True)
class Row:
    workflow: str
    plan: str  # "compiled" (the critical-path plan) or "one worker"
    tasks: int
    workers: int
    predicted_s: float
    observed_median_s: float
    observed_min_s: float
    observed_max_s: float
    error_pct: float
    recorded_errors_pct: tuple[float, ...] = ()
    """Prediction error of each recording run (its plan was compiled on less history)."""


def one_worker(plan: Plan, memory_mb: int | None = None) -> Plan:
    """Every task on one worker, in topological order, at `memory_mb` (default: the platform's
    configuration with the most CPUs)."""
    platform = load_platform(PLATFORM)
    config = platform.configs[platform.best_config_index if memory_mb is None
                              else platform.config_index(memory_mb)]
    tasks = {tid: replace(tp, worker="w0", memory_mb=config.memory_mb, cpus=config.cpus)
             for tid, tp in plan.tasks.items()}
    worker = WorkerPlan("w0", config.memory_mb, config.cpus, plan.graph.topological_order())
    return replace(plan, tasks=tasks, workers=(worker,))


def predicted_of(plan: Plan, url: str) -> float:
    """Makespan of `plan` as placed, simulated with the history learned so far."""
    with learned_predictions(None, url, NAMESPACE, PLATFORM) as history:
        return what_if(plan, load_platform(PLATFORM), access=history).compiled.makespan_s


def compile_local(path: str, params: dict[str, int], url: str) -> Plan:
    return planflow.compile(path, {k: str(v) for k, v in params.items()}, platform=PLATFORM,
                            redis=url, namespace=NAMESPACE)


def run(plan: Plan, url: str) -> float:
    result = planflow.run(plan, redis=url, namespace=NAMESPACE, metrics_upload="on-exit")
    return float(result.observed_makespan_s)


def row(workflow: str, name: str, plan: Plan, predicted: float, observed: list[float],
        recorded: tuple[float, ...] = ()) -> Row:
    median = statistics.median(observed)
    return Row(workflow, name, len(plan.tasks), len(plan.workers), predicted, median,
               min(observed), max(observed), (predicted - median) / median * 100.0, recorded)


def record(url: str, path: str, params: dict[str, int], history: str, records: int
           ) -> tuple[float, ...]:
    """The recording runs; returns each one's prediction error (%)."""
    errors = []
    runs = ISOLATED_MB if history == "isolated" else (None,) * records
    for i, memory_mb in enumerate(runs):
        plan = compile_local(path, params, url)
        if memory_mb is not None:
            plan = one_worker(plan, memory_mb)
        observed = run(plan, url)
        predicted = plan.summary.makespan_s if memory_mb is None else math.nan
        errors.append((predicted - observed) / observed * 100.0)
        print(f"  record {i}: {len(plan.workers)} workers, {plan.workers[0].memory_mb} MB "
              f"first, observed {observed:.3f} s")
    return tuple(errors)


def measure(url: str, workflow: str, params: dict[str, int], history: str, records: int,
            repeat: int) -> list[Row]:
    path = str(ROOT / "examples" / f"{workflow}.py")
    recorded = record(url, path, params, history, records)
    plan = compile_local(path, params, url)
    single = one_worker(plan)
    single_predicted = predicted_of(single, url)
    compiled, alone = [], []
    for _ in range(repeat):  # interleaved, so drifting background load hits both alike
        compiled.append(run(plan, url))
        alone.append(run(single, url))
    print(f"  compiled: predicted {plan.summary.makespan_s:.3f} s, observed "
          f"{' '.join(f'{x:.3f}' for x in compiled)}")
    print(f"  one worker: predicted {single_predicted:.3f} s, observed "
          f"{' '.join(f'{x:.3f}' for x in alone)}")
    return [row(workflow, "compiled", plan, plan.summary.makespan_s, compiled, tuple(recorded)),
            row(workflow, "one worker", single, single_predicted, alone)]


def figure_sources(url: str) -> dict[str, str]:
    platform = load_platform(PLATFORM)
    with MetricsStore(url, NAMESPACE) as store:
        access = MetadataAccess(store, transfer_latency_s=platform.storage_latency_s,
                                transfer_bandwidth_bps=platform.storage_bandwidth_bps,
                                cold_start_s=platform.cold_start_s,
                                warm_start_s=platform.warm_start_s)
        access.load([])
        figures: dict[str, Any] = dict(access.figure_sources())
        best = platform.configs[platform.best_config_index].memory_mb
        figures["cold_start_s"] = round(access.startup_time(best, True), 4)
        figures["warm_start_s"] = round(access.startup_time(best, False), 4)
        return figures


def print_table(rows: list[Row]) -> None:
    print(f"\n{'workflow':15} {'plan':11} {'tasks':>5} {'workers':>7} {'predicted':>10} "
          f"{'observed':>9} {'min-max':>13} {'error %':>8}")
    for r in rows:
        spread = f"{r.observed_min_s:.3f}-{r.observed_max_s:.3f}"
        print(f"{r.workflow:15} {r.plan:11} {r.tasks:5d} {r.workers:7d} {r.predicted_s:10.3f} "
              f"{r.observed_median_s:9.3f} {spread:>13} {r.error_pct:+8.1f}")
    print(f"\n{'workflow':15} {'compiled / one worker (observed median)':>40}")
    for compiled, alone in zip(rows[0::2], rows[1::2], strict=True):
        ratio = compiled.observed_median_s / alone.observed_median_s
        print(f"{compiled.workflow:15} {ratio:40.2f}")


def main() -> None:
    global PLATFORM  # the platform every step uses (set once, from --platform)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default=PLATFORM,
                        help="platform name or TOML file, e.g. one that extends local with "
                             "host_cpus = 2")
    parser.add_argument("--history", choices=("isolated", "compiled"), default="isolated",
                        help="how the recording runs are planned (module docstring)")
    parser.add_argument("--record", type=int, default=3,
                        help="recording runs per workflow with --history compiled")
    parser.add_argument("--repeat", type=int, default=5, help="evaluation runs per plan")
    parser.add_argument("--only", default="", help="comma-separated workflow names")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/simulator_accuracy.json")
    args = parser.parse_args()
    PLATFORM = args.platform
    only = {w for w in args.only.split(",") if w}
    rows: list[Row] = []
    sources: dict[str, Any] = {}
    t0 = time.perf_counter()
    with EmbeddedRedis(persistent=False) as server:
        try:
            for workflow, params in WORKLOADS:
                if only and workflow not in only:
                    continue
                print(f"{workflow} {params} (load average {os.getloadavg()[0]:.1f})")
                rows.extend(measure(server.url, workflow, params, args.history, args.record,
                                    args.repeat))
            sources = figure_sources(server.url)
        finally:
            shutdown_pools(server.url, NAMESPACE)  # runs used a URL: their pool outlives them
    print_table(rows)
    compiled = [r for r in rows if r.plan == "compiled"]
    within = sum(abs(r.error_pct) <= TARGET_ERROR_PCT for r in compiled)
    print(f"\ncompiled plans within {TARGET_ERROR_PCT:.0f} %: {within}/{len(compiled)}; "
          f"platform figures: {sources}; load average {os.getloadavg()[0]:.1f}; "
          f"{time.perf_counter() - t0:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "platform": PLATFORM, "history": args.history, "record_runs": args.record,
        "repeat": args.repeat, "target_error_pct": TARGET_ERROR_PCT, "figure_sources": sources,
        "load_average": os.getloadavg()[0], "rows": [r.__dict__ for r in rows]}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
