"""Executor overhead: planflow's decentralized executor vs Dask, side by side, same DAGs.

    python benchmarks/executor_overhead.py [--repeat 5] [--quick]

No-op tasks on a chain of 1,000, a fan-out/fan-in of 2,000 and a binary tree of 4,096 leaves,
plus the matrix example (examples/matmul.py) at two sizes, on:

- planflow: `run_plan` with the local launcher (worker processes from a warm pool, limits
  enforced), an embedded Redis on a Unix socket. Plans are built here with clustered
  placements, as the planner clusters chains, fan-outs and subtrees: the chain on one worker,
  the fan-out's middle split over one worker per core, the tree as one subtree per core. The
  matrix example runs twice: with the planner's own plan (`planflow.api.compile`) and with
  everything on one worker, which separates the executor's cost from the plan's.
- dask-distributed: `LocalCluster(processes=True, n_workers=2, threads_per_worker=1)`.
- dask-threaded: the threaded scheduler (`dask.threaded.get`).

Each engine runs each DAG once to warm up, then `--repeat` times; we report the best and the
median wall time, tasks/s (best), and per-task overhead = best wall time / tasks (the tasks do
nothing, so all of it is orchestration). planflow's wall time ends when the result reaches the
client (its final progress report); `run_plan` returns after the run's metric records are also
stored, which the JSON reports apart (`metrics_wait_s`, last run). For planflow also Redis
commands per task (INFO commandstats delta, counted after the run's workers have ended, metric
records included) and the first, cold run (pool server start and process forks included).
Results are printed and written to benchmarks/results/executor_overhead.json.
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

os.environ.setdefault("OMP_NUM_THREADS", "1")  # same BLAS threading in every engine's workers
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from planflow import task, workflow  # noqa: E402
from planner.graph import TaskGraph  # noqa: E402
from planner.loader import load_graph, trace_workflow  # noqa: E402
from planner.plan import Plan, PlanSummary, TaskPlan, WorkerPlan  # noqa: E402
from runtime.client import RunProgress, run_plan  # noqa: E402
from runtime.embedded import EmbeddedRedis  # noqa: E402
from runtime.local import LocalLauncher  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "executor_overhead.json"
NAMESPACE = "bench"
MB_PER_CPU = 1769
WORKER_SETTLE_TIMEOUT_S = 60.0
"""Longest wait for a run's workers to end (and write metrics) before reading command counts."""


# -- the DAGs ---------------------------------------------------------------------------------

@task
def noop(*xs: object) -> None:
    return None


@workflow
def chain(n: int = 1000):
    x = noop()
    for _ in range(n - 1):
        x = noop(x)
    return x


@workflow
def fanout(n: int = 2000):
    source = noop()
    return noop(*[noop(source) for _ in range(n)])


@workflow
def tree(leaves: int = 4096):
    level = [noop() for _ in range(leaves)]
    while len(level) > 1:
        level = [noop(a, b) for a, b in zip(level[0::2], level[1::2], strict=True)]
    return level[0]


# -- plans without the planner ----------------------------------------------------------------

def placed(g: TaskGraph, where: Callable[[int, str], str], strategy: str) -> Plan:
    owner = {n.id: where(i, n.id) for i, n in enumerate(g.nodes)}
    order: dict[str, list[str]] = {}
    for n in g.nodes:
        order.setdefault(owner[n.id], []).append(n.id)
    tasks = {t: TaskPlan(t, MB_PER_CPU, 1.0, w) for t, w in owner.items()}
    workers = tuple(WorkerPlan(w, MB_PER_CPU, 1.0, tuple(ts)) for w, ts in order.items())
    return Plan(g, strategy, "local", tasks, workers,
                PlanSummary(0.0, 0.0, 0.0, len(workers), len(workers)))


def chain_plan(g: TaskGraph, k: int) -> Plan:
    return placed(g, lambda i, t: "w0", "one worker")


def fanout_plan(g: TaskGraph, k: int) -> Plan:
    last = len(g.nodes) - 1
    return placed(g, lambda i, t: "w0" if i in (0, last) else f"w{(i - 1) * k // (last - 1)}",
                  f"{k} workers")


def tree_plan(g: TaskGraph, k: int) -> Plan:
    """One subtree per worker: a task goes where the leftmost leaf below it goes."""
    leaves = sum(1 for n in g.nodes if not n.upstream)
    first_leaf: dict[str, int] = {}
    for i, n in enumerate(g.nodes):
        first_leaf[n.id] = i if not n.upstream else first_leaf[n.upstream[0]]
    return placed(g, lambda i, t: f"w{first_leaf[t] * k // leaves}" if t != g.sink else "w0",
                  f"{k} subtrees")


# -- engines ----------------------------------------------------------------------------------

class _Call:
    """A dask task: rebuild the planflow task's arguments from its parents' values."""

    def __init__(self, g: TaskGraph, task_id: str) -> None:
        self.code = g.code[task_id]
        self.parents = g.node(task_id).upstream

    def __call__(self, *values: object) -> object:
        return self.code.call(dict(zip(self.parents, values, strict=True)))


def to_dask(g: TaskGraph) -> dict[str, tuple[Any, ...]]:
    return {n.id: (_Call(g, n.id), *n.upstream) for n in g.nodes}


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


class Planflow:
    name = "planflow"

    def __init__(self, url: str) -> None:
        self.url = url
        self.redis = redis.Redis.from_url(url)
        self.launcher = LocalLauncher(url, NAMESPACE, shutdown_on_close=True)
        self.commands: dict[str, float] = {}
        self.metrics_wait_s = 0.0

    def run(self, plan: Plan) -> tuple[float, Any]:
        before = command_calls(self.redis)
        result_at: list[float] = []

        def progress(p: RunProgress) -> None:
            if p.tasks_done == p.tasks_total and not result_at:
                result_at.append(time.perf_counter())

        t0 = time.perf_counter()
        result = run_plan(plan, redis_url=self.url, namespace=NAMESPACE, launcher=self.launcher,
                          progress=progress)
        returned = time.perf_counter()
        # the result is in the client's hands when the last progress report comes; run_plan
        # then waits for the workers' metric records to be stored (not orchestration)
        wall = (result_at[0] if result_at else returned) - t0
        self.metrics_wait_s = returned - t0 - wall
        self._settle(result.dag_id, len(plan.workers))
        after = command_calls(self.redis)
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        delta["info"] = delta.get("info", 0) - 1
        self.commands = {k: v / len(plan.graph.nodes) for k, v in delta.items() if v > 0}
        return wall, result.result

    def _settle(self, dag_id: str, workers: int) -> None:
        """Wait until every worker of the run has written its worker record (it has ended)."""
        from metadata.store import MetricsStore

        deadline = time.monotonic() + WORKER_SETTLE_TIMEOUT_S
        with MetricsStore(self.url, NAMESPACE) as store:
            while len(store.worker_records(dag_id)) < workers and time.monotonic() < deadline:
                time.sleep(0.01)

    def close(self) -> None:
        self.launcher.close()
        self.redis.close()


class DaskDistributed:
    name = "dask-distributed"

    def __init__(self) -> None:
        from distributed import Client, LocalCluster

        self.cluster = LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                    dashboard_address=None)
        self.client = Client(self.cluster)

    def run(self, g: TaskGraph) -> tuple[float, Any]:
        dsk = to_dask(g)
        t0 = time.perf_counter()
        result = self.client.get(dsk, g.sink)
        return time.perf_counter() - t0, result

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


class DaskThreaded:
    name = "dask-threaded"

    def run(self, g: TaskGraph) -> tuple[float, Any]:
        import dask.threaded

        dsk = to_dask(g)
        t0 = time.perf_counter()
        result = dask.threaded.get(dsk, g.sink)
        return time.perf_counter() - t0, result

    def close(self) -> None:
        return None


# -- the benchmark ----------------------------------------------------------------------------

class Case:
    """One DAG: its graph, and the plans planflow runs it with (label -> plan)."""

    def __init__(self, name: str, graph: TaskGraph, plans: dict[str, Plan], noop: bool) -> None:
        self.name, self.graph, self.plans, self.noop = name, graph, plans, noop


def build_cases(quick: bool) -> list[Case]:
    k = os.cpu_count() or 2
    n_chain, n_fan, leaves = (100, 200, 256) if quick else (1000, 2000, 4096)
    g_chain = trace_workflow(chain, {"n": str(n_chain)})
    g_fan = trace_workflow(fanout, {"n": str(n_fan)})
    g_tree = trace_workflow(tree, {"leaves": str(leaves)})
    cases = [Case(f"chain-{n_chain}", g_chain, {"": chain_plan(g_chain, k)}, True),
             Case(f"fanout-{n_fan}", g_fan, {"": fanout_plan(g_fan, k)}, True),
             Case(f"tree-{leaves}", g_tree, {"": tree_plan(g_tree, k)}, True)]
    for size, blocks in ((256, 4), (512, 4)) if quick else ((1024, 4), (2048, 4)):
        g = load_graph(str(ROOT / "examples" / "matmul.py"),
                       {"size": str(size), "blocks": str(blocks)})
        one = placed(g, lambda i, t: "w0", "one worker")
        cases.append(Case(f"matmul-{size}", g, {"planner": planner_plan(g), "1 worker": one},
                          False))
    return cases


def planner_plan(g: TaskGraph) -> Plan:
    """The planner's plan for `g` (the real `planflow run` path); one worker per task if the
    planner fails."""
    from planflow import api

    try:
        return api.compile(g)
    except Exception as err:  # the planner is another package's: fall back, and say so
        print(f"planner failed ({err}); using one worker per task", file=sys.stderr)
        from planner.compiler import compile_graph

        return compile_graph(g)


def measure(engine: Any, case: Case, repeat: int, label: str = "") -> dict[str, Any]:
    plan = case.plans[label] if isinstance(engine, Planflow) else None
    target: Any = plan or case.graph
    first_s, first_result = engine.run(target)
    walls = []
    for _ in range(repeat):
        wall, _ = engine.run(target)
        walls.append(wall)
    n = len(case.graph.nodes)
    best = min(walls)
    row: dict[str, Any] = {
        "dag": case.name, "tasks": n, "engine": f"{engine.name}[{label}]" if label else engine.name,
        "best_s": best, "median_s": statistics.median(walls), "first_run_s": first_s,
        "tasks_per_s": n / best, "overhead_us_per_task": best / n * 1e6 if case.noop else None,
        "result": repr(first_result)[:80],
    }
    if plan is not None:
        row["plan"] = f"{plan.strategy}, {len(plan.workers)} workers"
        row["redis_commands_per_task"] = sum(engine.commands.values())
        row["metrics_wait_s"] = getattr(engine, "metrics_wait_s", None)
        row["redis_commands_by_type"] = dict(sorted(engine.commands.items(),
                                                    key=lambda kv: -kv[1]))
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    dist = {r["dag"]: r["tasks_per_s"] for r in rows if r["engine"] == "dask-distributed"}
    head = (f"{'DAG':<13} {'tasks':>6} {'engine':<20} {'best ms':>9} {'median ms':>10} "
            f"{'tasks/s':>9} {'us/task':>8} {'cmds/task':>9} {'x dask-dist':>11}")
    print(head)
    print("-" * len(head))
    for r in rows:
        per = f"{r['overhead_us_per_task']:.1f}" if r["overhead_us_per_task"] is not None else "-"
        cmds = f"{r['redis_commands_per_task']:.2f}" if "redis_commands_per_task" in r else "-"
        ratio = r["tasks_per_s"] / dist[r["dag"]] if r["dag"] in dist else float("nan")
        print(f"{r['dag']:<13} {r['tasks']:>6} {r['engine']:<20} {r['best_s'] * 1e3:>9.1f} "
              f"{r['median_s'] * 1e3:>10.1f} {r['tasks_per_s']:>9.0f} {per:>8} {cmds:>9} "
              f"{ratio:>10.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small DAGs (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    cases = build_cases(args.quick)
    rows: list[dict[str, Any]] = []
    with EmbeddedRedis(persistent=False) as server:
        engines: list[Any] = [Planflow(server.url), DaskDistributed(), DaskThreaded()]
        try:
            for case in cases:
                for engine in engines:
                    for label in case.plans if isinstance(engine, Planflow) else [""]:
                        rows.append(measure(engine, case, args.repeat, label))
                        print(f"  {case.name:<13} {rows[-1]['engine']:<20} "
                              f"{rows[-1]['best_s']:.3f} s", file=sys.stderr)
        finally:
            for engine in engines:
                engine.close()
    print_table(rows)
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "platform": platform.platform()},
           "repeat": args.repeat, "quick": args.quick, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
