"""Launchers side by side: planflow's `local` and `ray` launchers and plain Ray tasks, same DAGs.

    python benchmarks/launchers.py [--repeat 3] [--quick] [--cpus 2]

No-op tasks on a chain of 1,000, a fan-out/fan-in of 2,000 and a binary tree of 4,096 leaves
(8,191 tasks), in one process and one run:

- planflow/local: `run_plan` with the local launcher (a warm pool of worker processes);
- planflow/ray: `run_plan` with the ray launcher (each worker in a pooled Ray actor reserving
  1 CPU, warm after the warm-up run: the JSON's `ray_pools` counts actors created and reused)
  on a local Ray instance of `--cpus` CPUs started here;
- ray: the same DAG as plain Ray tasks on that instance, each task taking its parents'
  ObjectRefs (Ray's own per-task cost: one task per node, `num_cpus=1`).

planflow's plans are placed by hand as the planner clusters these shapes (the chain on one
worker, the fan-out's middle and the tree's subtrees split over one worker per CPU); both
launchers run the same plans against one embedded Redis. Each engine runs each DAG once to warm
up, then `--repeat` times; we report the best and the median wall time and the per-task
overhead (best wall time / tasks: the tasks do nothing), and for planflow the Redis commands
per task (the sizing rule of docs/cluster.md builds on it), and each row's 1-minute load
average (the machine may be shared: compare figures of one run only). planflow's wall time
ends when the result reaches the client (its last progress report), as in
`executor_overhead.py`. Results are printed and written to benchmarks/results/launchers.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.executor_overhead import (  # noqa: E402
    chain,
    fanout,
    fanout_lanes,
    one_worker,
    tree,
    tree_subtrees,
)
from planner.graph import TaskGraph  # noqa: E402
from planner.loader import trace_workflow  # noqa: E402
from planner.plan import Plan  # noqa: E402
from runtime.client import RunProgress, run_plan  # noqa: E402
from runtime.embedded import EmbeddedRedis  # noqa: E402
from runtime.launcher import Launcher  # noqa: E402
from runtime.local import LocalLauncher  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "launchers.json"
NAMESPACE = "bench-launchers"
RAY_OBJECT_STORE_BYTES = 256 * 2**20
"""Object store of the benchmark's Ray instance (the tasks pass no data)."""


class Case:
    def __init__(self, name: str, g: TaskGraph, plan: Callable[[TaskGraph, int], Plan]) -> None:
        self.name, self.graph, self.plan_of = name, g, plan


Placement = Callable[[TaskGraph, int], tuple[str, Plan]]


def _plan(placement: Placement) -> Callable[[TaskGraph, int], Plan]:
    """A hand placement of `executor_overhead` (label, plan) as a plan builder."""
    return lambda g, k: placement(g, k)[1]


def build_cases(quick: bool) -> list[Case]:
    n_chain, n_fan, leaves = (100, 200, 256) if quick else (1000, 2000, 4096)
    return [
        Case(f"chain {n_chain}", trace_workflow(chain, {"n": str(n_chain)}), _plan(one_worker)),
        Case(f"fan-out {n_fan}", trace_workflow(fanout, {"n": str(n_fan)}), _plan(fanout_lanes)),
        Case(f"tree {leaves} leaves", trace_workflow(tree, {"leaves": str(leaves)}),
             _plan(tree_subtrees)),
    ]


class Planflow:
    """`run_plan` through one launcher; the time until the result reaches the client."""

    def __init__(self, name: str, url: str, launcher: Launcher, cpus: int) -> None:
        self.name, self.url, self.launcher, self.cpus = name, url, launcher, cpus
        self.redis = redis.Redis.from_url(url)
        self.commands_per_task = 0.0
        """Redis commands of the last run per task (INFO commandstats delta until the result;
        workers' metric records written after it are not counted)."""

    def run(self, case: Case) -> tuple[float, Any]:
        plan = case.plan_of(case.graph, self.cpus)
        result_at: list[float] = []

        def progress(p: RunProgress) -> None:
            if p.tasks_done == p.tasks_total and not result_at:
                result_at.append(time.perf_counter())

        before = command_calls(self.redis)
        t0 = time.perf_counter()
        result = run_plan(
            plan,
            redis_url=self.url,
            namespace=NAMESPACE,
            launcher=self.launcher,
            progress=progress,
            timeout_s=600.0,
        )
        end = result_at[0] if result_at else time.perf_counter()
        calls = command_calls(self.redis) - before - 1  # less this INFO
        self.commands_per_task = calls / len(plan.graph.nodes)
        return end - t0, result.result

    def close(self) -> None:
        self.launcher.close()
        self.redis.close()


class PlainRay:
    """The DAG as Ray tasks, one per node, each taking its parents' ObjectRefs."""

    name = "ray"

    def __init__(self) -> None:
        import ray

        self.ray = ray
        self.noop = ray.remote(num_cpus=1)(_noop)

    def run(self, case: Case) -> tuple[float, Any]:
        g = case.graph
        t0 = time.perf_counter()
        refs: dict[str, Any] = {}
        for n in g.nodes:
            refs[n.id] = self.noop.remote(*[refs[p] for p in n.upstream])
        value = self.ray.get(refs[g.sink])
        return time.perf_counter() - t0, value

    def close(self) -> None:
        return None


def _noop(*xs: object) -> None:
    return None


def command_calls(client: redis.Redis) -> int:
    """Commands the server has run so far (all kinds)."""
    return sum(int(v["calls"]) for v in client.info("commandstats").values())


def measure(engine: Any, case: Case, repeat: int) -> dict[str, Any]:
    engine.run(case)  # warm-up
    walls = [engine.run(case)[0] for _ in range(repeat)]
    tasks = len(case.graph.nodes)
    best = min(walls)
    row = {
        "engine": engine.name,
        "dag": case.name,
        "tasks": tasks,
        "best_s": best,
        "median_s": statistics.median(walls),
        "per_task_ms": best / tasks * 1e3,
        "tasks_per_s": tasks / best,
        "walls_s": walls,
    }
    if isinstance(engine, Planflow):
        row["redis_commands_per_task"] = engine.commands_per_task
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="launchers: no-op DAGs, best of the repeats")
    for col in (
        "dag",
        "tasks",
        "engine",
        "best s",
        "median s",
        "per task ms",
        "tasks/s",
        "Redis cmds/task",
    ):
        table.add_column(col, justify="left" if col in ("dag", "engine") else "right")
    for r in rows:
        table.add_row(
            r["dag"],
            str(r["tasks"]),
            r["engine"],
            f"{r['best_s']:.3f}",
            f"{r['median_s']:.3f}",
            f"{r['per_task_ms']:.3f}",
            f"{r['tasks_per_s']:,.0f}",
            f"{r['redis_commands_per_task']:.2f}" if "redis_commands_per_task" in r else "-",
        )
    Console(width=160).print(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small DAGs (development)")
    parser.add_argument(
        "--cpus",
        type=int,
        default=os.cpu_count() or 2,
        help="CPUs of the Ray instance, and workers per clustered plan",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import ray

    from runtime.ray_launcher import RayLauncher

    cases = build_cases(args.quick)
    rows: list[dict[str, Any]] = []
    load_start = os.getloadavg()[0]
    pools: dict[str, int] = {}
    ray.init(
        num_cpus=args.cpus,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=RAY_OBJECT_STORE_BYTES,
    )
    try:
        with EmbeddedRedis(persistent=False) as server:
            ray_launcher = RayLauncher(server.url, NAMESPACE)
            engines = [
                Planflow(
                    "planflow/local",
                    server.url,
                    LocalLauncher(server.url, NAMESPACE, shutdown_on_close=True),
                    args.cpus,
                ),
                Planflow("planflow/ray", server.url, ray_launcher, args.cpus),
                PlainRay(),
            ]
            try:
                for case in cases:
                    for engine in engines:
                        row = measure(engine, case, args.repeat)
                        row["load_1min"] = os.getloadavg()[0]
                        rows.append(row)
                        print(
                            f"{row['dag']:>20} {row['engine']:>15} best {row['best_s']:.3f} s",
                            file=sys.stderr,
                        )
                pools = {"actors_created": ray_launcher.pools.created,
                         "actors_reused": ray_launcher.pools.reused}
            finally:
                for engine in engines:
                    engine.close()
    finally:
        ray.shutdown()
    print_table(rows)
    doc = {
        "benchmark": "launchers",
        "repeat": args.repeat,
        "quick": args.quick,
        "ray_cpus": args.cpus,
        "ray_version": ray.__version__,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_1min_start": load_start,
        "load_1min": os.getloadavg()[0],
        "ray_pools": pools,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"written {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
