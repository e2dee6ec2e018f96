"""Executor overhead: planflow's own plans vs Dask threaded, Dask distributed and Ray, one run.

    python benchmarks/executor_overhead.py [--repeat 3] [--quick] [--processes N]

No-op tasks on a chain of 1,000, a fan-out/fan-in of 2,000 and a binary tree of 4,096 leaves,
plus the matrix example (examples/matmul.py, 4x4 blocks) at 1024 and 2048, on:

- `planflow[planner]`: the planner's own plan, `planflow.compile(workflow, params,
  platform="local")` with every other option at its default (what `planflow run MODULE.py`
  compiles, and `planflow compile --platform local` writes), compiled before anything runs on
  a fresh embedded Redis (no recorded history: a first-time user's plan), run by `run_plan`
  with the local launcher (warm pool, limits enforced, same-host shared memory on) on that
  Redis (Unix socket). The pool may hold at most `--processes` processes.
- `planflow[planner, pool of 512]`: the same plan with the pool's own cap (`planflow run`'s),
  for comparison: today's plans ask for a worker per task, which a pool of N processes serves
  one at a time, or not at all when N workers wait for inputs of workers still queued (the
  run then fails at its deadline, `RUN_TIMEOUT_S`).
- `planflow[hand-placed: ...]`: placements written here, not by the planner (chain on one
  worker, the fan-out's middle split over one worker per core, one subtree per core, matmul on
  one worker); they separate the executor's cost from the plan's.
- `planflow-inline`: planflow's in-process reference executor (one process, no Redis): a
  floor, not a peer.
- `dask-threaded`: `dask.threaded.get(..., num_workers=N)`.
- `dask-distributed`: `LocalCluster(processes=True, n_workers=N, threads_per_worker=1)`.
- `ray`: one Ray task per node (`ray.remote`, inputs as object refs) on a new local instance,
  `ray.init(address="local", num_cpus=N)`, when Ray is installed.

N = `--processes` (default: the machine's cores) for every engine. Each engine is started when
its turn comes and closed after it (no engine idles beside another), runs each DAG once to warm
up, then `--repeat` times. A time is the call's wall time to its return (`run_plan` included its
clean-up and metric records). The ratio is a row's best time over the best time of the fastest
peer (dask-threaded, dask-distributed, ray) of that DAG: above 1 a planflow row is slower and
is marked LOSES; a failed planflow row loses too. `same`: the result's repr equals the first
engine's (dask-threaded). For planflow rows also Redis commands per
task (INFO commandstats delta of the last run) and where the time went
(`overhead_breakdown.py`, from the run's metric records).

Prints a markdown table (rich) under a header naming the machine and its load average at the
start, and writes every figure to benchmarks/results/executor_overhead.json.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from overhead_engines import (  # noqa: E402
    DaskDistributed,
    DaskThreaded,
    Planflow,
    PlanflowInline,
    Ray,
    ray_installed,
)

from planflow import task, workflow  # noqa: E402
from planner.graph import TaskGraph  # noqa: E402
from planner.loader import load_graph, trace_workflow  # noqa: E402
from planner.plan import Plan, PlanSummary, TaskPlan, WorkerPlan  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "executor_overhead.json"
NAMESPACE = "bench"
MB_PER_CPU = 1769
RUN_TIMEOUT_S = 120.0
"""Longest planflow run before its row counts as failed (a deadlocked run ends here)."""
QUICK_RUN_TIMEOUT_S = 15.0
"""The same with --quick (whose runs take well under a second)."""
BIG_POOL = 512
"""The local pool's own cap (`runtime.pool.MAX_PROCESSES`, what `planflow run` uses): the
`planflow[planner, pool of 512]` rows run the planner's plan with it, beside the fair rows."""
PEERS = ("dask-threaded", "dask-distributed", "ray")
"""The engines a row's ratio compares against (the issue's peers; inline is a floor)."""


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


# -- hand placements (not the planner's) ------------------------------------------------------

def placed(g: TaskGraph, where: Callable[[int, str], str], strategy: str) -> Plan:
    owner = {n.id: where(i, n.id) for i, n in enumerate(g.nodes)}
    order: dict[str, list[str]] = {}
    for n in g.nodes:
        order.setdefault(owner[n.id], []).append(n.id)
    tasks = {t: TaskPlan(t, MB_PER_CPU, 1.0, w) for t, w in owner.items()}
    workers = tuple(WorkerPlan(w, MB_PER_CPU, 1.0, tuple(ts)) for w, ts in order.items())
    return Plan(g, strategy, "local", tasks, workers,
                PlanSummary(0.0, 0.0, 0.0, len(workers), len(workers)))


def one_worker(g: TaskGraph, k: int) -> tuple[str, Plan]:
    return "hand-placed: 1 worker", placed(g, lambda i, t: "w0", "hand-placed")


def fanout_lanes(g: TaskGraph, k: int) -> tuple[str, Plan]:
    last = len(g.nodes) - 1
    return f"hand-placed: {k} lanes", placed(
        g, lambda i, t: "w0" if i in (0, last) else f"w{(i - 1) * k // (last - 1)}",
        "hand-placed")


def tree_subtrees(g: TaskGraph, k: int) -> tuple[str, Plan]:
    """One subtree per worker: a task goes where the leftmost leaf below it goes."""
    leaves = sum(1 for n in g.nodes if not n.upstream)
    first_leaf: dict[str, int] = {}
    for i, n in enumerate(g.nodes):
        first_leaf[n.id] = i if not n.upstream else first_leaf[n.upstream[0]]
    return f"hand-placed: {k} subtrees", placed(
        g, lambda i, t: f"w{first_leaf[t] * k // leaves}" if t != g.sink else "w0",
        "hand-placed")


# -- the cases --------------------------------------------------------------------------------

class Case:
    """One DAG: its graph, and the plans planflow runs it with (label -> plan)."""

    def __init__(self, name: str, graph: TaskGraph, noop: bool) -> None:
        self.name, self.graph, self.noop = name, graph, noop
        self.plans: dict[str, Plan] = {}
        self.compile_s = 0.0


def build_cases(quick: bool, k: int, url: str) -> list[Case]:
    """The DAGs, each with the planner's plan (compiled on `url`'s empty metrics store, timed)
    and its hand placement."""
    n_chain, n_fan, leaves = (100, 50, 64) if quick else (1000, 2000, 4096)
    shapes = [(f"chain-{n_chain}", trace_workflow(chain, {"n": str(n_chain)}), one_worker),
              (f"fanout-{n_fan}", trace_workflow(fanout, {"n": str(n_fan)}), fanout_lanes),
              (f"tree-{leaves}", trace_workflow(tree, {"leaves": str(leaves)}), tree_subtrees)]
    for size, blocks in ((256, 2),) if quick else ((1024, 4), (2048, 4)):
        g = load_graph(str(ROOT / "examples" / "matmul.py"),
                       {"size": str(size), "blocks": str(blocks)})
        shapes.append((f"matmul-{size}", g, one_worker))
    cases = []
    for name, g, hand in shapes:
        case = Case(name, g, not name.startswith("matmul"))
        case.plans["planner"] = planner_plan(case, url)
        label, plan = hand(g, k)
        case.plans[label] = plan
        cases.append(case)
    return cases


def planner_plan(case: Case, url: str) -> Plan:
    import planflow

    t0 = time.perf_counter()
    plan = planflow.compile(case.graph, platform="local", redis=url, namespace=NAMESPACE)
    case.compile_s = time.perf_counter() - t0
    print(f"  compiled {case.name}: {len(plan.workers)} workers, {plan.strategy}, "
          f"{case.compile_s:.2f} s", file=sys.stderr)
    return plan


# -- the benchmark ----------------------------------------------------------------------------

class Entry:
    """An engine to make and which of a case's plans it runs (label -> row name)."""

    def __init__(self, make: Callable[[], Any], rows: Callable[[Case], dict[str, str]]) -> None:
        self.make, self.rows = make, rows


def entries(url: str, processes: int, timeout_s: float) -> list[Entry]:
    """Peers first, then planflow: inline, the fair pool (all plans), the pool's own cap."""
    makers: list[tuple[Callable[[], Any], str]] = [
        (lambda: DaskThreaded(processes), "dask-threaded"),
        (lambda: DaskDistributed(processes), "dask-distributed")]
    if ray_installed():
        makers.append((lambda: Ray(processes), "ray"))
    else:
        print("ray is not installed: no ray rows", file=sys.stderr)
    out = [Entry(m, lambda c, n=name: {"planner": n}) for m, name in makers]
    out.append(Entry(PlanflowInline, lambda c: {"planner": "planflow-inline"}))
    out.append(Entry(lambda: Planflow(url, NAMESPACE, processes, timeout_s),
                     lambda c: {label: f"planflow[{label}]" for label in c.plans}))
    if processes < BIG_POOL:
        out.append(Entry(lambda: Planflow(url, NAMESPACE, BIG_POOL, timeout_s),
                         lambda c: {"planner": f"planflow[planner, pool of {BIG_POOL}]"}))
    return out


def measure(engine: Any, case: Case, repeat: int, label: str, name: str) -> dict[str, Any]:
    """One engine on one plan of a case; a failure is a row too (`error`), never a crash."""
    plan = case.plans[label]
    row: dict[str, Any] = {"dag": case.name, "tasks": len(case.graph.nodes), "engine": name}
    if name.startswith("planflow"):
        row["plan"] = f"{plan.strategy}, {len(plan.workers)} worker" + (
            "s" if len(plan.workers) > 1 else "")
        row["compile_s"] = case.compile_s if label == "planner" else None
    try:
        first_s, first_result = engine.run(case.graph, plan)
        walls = [engine.run(case.graph, plan)[0] for _ in range(repeat)]
    except Exception as err:
        print(f"  {case.name:<13} {name:<34} FAILED {str(err)[:300]}", file=sys.stderr)
        return {**row, "error": f"{type(err).__name__}: {err}", "best_s": None}
    n, best = len(case.graph.nodes), min(walls)
    row.update({"best_s": best, "median_s": statistics.median(walls), "runs_s": walls,
                "first_run_s": first_s, "tasks_per_s": n / best,
                "ms_per_task": best / n * 1e3 if case.noop else None,
                "result": repr(first_result)[:80], **getattr(engine, "last", {})})
    print(f"  {case.name:<13} {name:<34} {best:.3f} s", file=sys.stderr)
    return row


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """`ratio_to_best_peer` (best time / the fastest other peer's) and `losing` (planflow)."""
    for r in rows:
        peers = [p["best_s"] for p in rows if p["dag"] == r["dag"] and p["engine"] in PEERS
                 and p["engine"] != r["engine"] and p["best_s"] is not None]
        ratio = r["best_s"] / min(peers) if peers and r["best_s"] is not None else None
        r["ratio_to_best_peer"] = ratio
        r["losing"] = r["engine"].startswith("planflow[") and (
            r["best_s"] is None or (ratio is not None and ratio > 1.0))
        ref = next((p for p in rows if p["dag"] == r["dag"] and "result" in p), None)
        r["same_result"] = ref is not None and r.get("result") == ref["result"]


def print_table(rows: list[dict[str, Any]], header: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=box.MARKDOWN, title=None)
    for col in ("DAG", "tasks", "engine", "plan", "best ms", "median ms", "ms/task",
                "cmds/task", "x best peer", "same"):
        table.add_column(col, justify="left" if col in ("DAG", "engine", "plan") else "right")
    for r in rows:
        if r["best_s"] is None:
            table.add_row(r["dag"], str(r["tasks"]), escape(r["engine"]), r.get("plan", ""),
                          "FAILED", "", "", "", "LOSES" if r["losing"] else "", "")
            continue
        ratio = r["ratio_to_best_peer"]
        verdict = "-" if ratio is None else f"{ratio:.2f}x" + (" LOSES" if r["losing"] else "")
        table.add_row(
            r["dag"], str(r["tasks"]), escape(r["engine"]), r.get("plan", ""),
            f"{r['best_s'] * 1e3:.1f}", f"{r['median_s'] * 1e3:.1f}",
            "-" if r["ms_per_task"] is None else f"{r['ms_per_task']:.3f}",
            f"{r['redis_commands_per_task']:.1f}" if "redis_commands_per_task" in r else "-",
            verdict, "yes" if r["same_result"] else "NO")
    console = Console(width=160)
    console.print(header)
    console.print(table)


def machine(processes: int) -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "processes_per_engine": processes,
            "load_avg_start": os.getloadavg(), "python": platform.python_version(),
            "platform": platform.platform()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed runs after the warm-up (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small DAGs, one timed run (a smoke run, under a minute)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2,
                        help="processes (or threads) every engine may use")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.repeat = args.repeat or (1 if args.quick else 3)
    from runtime.embedded import EmbeddedRedis

    info = machine(args.processes)
    timeout_s = QUICK_RUN_TIMEOUT_S if args.quick else RUN_TIMEOUT_S
    rows: list[dict[str, Any]] = []
    with EmbeddedRedis(persistent=False) as server:
        cases = build_cases(args.quick, args.processes, server.url)
        for entry in entries(server.url, args.processes, timeout_s):
            try:
                engine = entry.make()
            except Exception as err:  # a peer that cannot start is a row, not a crash
                print(f"  engine did not start: {type(err).__name__}: {err}", file=sys.stderr)
                rows.extend({"dag": c.name, "tasks": len(c.graph.nodes), "engine": name,
                             "best_s": None, "error": f"did not start: {err}"}
                            for c in cases for name in entry.rows(c).values())
                continue
            try:
                for case in cases:
                    rows.extend(measure(engine, case, args.repeat, label, name)
                                for label, name in entry.rows(case).items())
            finally:
                engine.close()
    order = [c.name for c in cases]
    rows.sort(key=lambda r: order.index(r["dag"]))
    add_ratios(rows)
    info["load_avg_end"] = os.getloadavg()
    header = (f"{info['cpus']} cores, {args.processes} processes per engine, best of "
              f"{args.repeat}; load average at start {info['load_avg_start'][0]:.2f} (1 min), "
              f"at end {info['load_avg_end'][0]:.2f}")
    print_table(rows, header)
    doc = {"machine": info, "repeat": args.repeat, "quick": args.quick,
           "compile_s": {c.name: c.compile_s for c in cases}, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=float))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
