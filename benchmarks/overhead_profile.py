"""Where a warm local run's worker CPU goes: cProfile in every worker, stats summed.

    python benchmarks/overhead_profile.py [--dag tree|matmul|chain] [--leaves 4096]
        [--size 2048] [--processes 2] [--top 30]

Runs the DAG of `executor_overhead.py` (a no-op tree of `--leaves` leaves, a chain, or
examples/matmul.py at `--size` in 4x4 blocks) with the planner's plan on the local launcher,
with `PLANFLOW_PROFILE_DIR` set (`runtime.worker`: each worker's main thread under cProfile),
once to warm the pool, then once more, profiled. Prints the summed stats of that run's
workers, by own time, with call counts (counts do not depend on the machine's load; times do),
the Redis commands per task and the load average.
"""

from __future__ import annotations

import argparse
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from executor_overhead import NAMESPACE, chain, tree  # noqa: E402
from overhead_engines import Planflow  # noqa: E402

from planner.loader import load_graph, trace_workflow  # noqa: E402
from runtime.worker import PROFILE_DIR_ENV  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dag", choices=("tree", "matmul", "chain"), default="tree")
    parser.add_argument("--leaves", type=int, default=4096)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    import planflow
    from runtime.embedded import EmbeddedRedis

    if args.dag == "tree":
        graph = trace_workflow(tree, {"leaves": str(args.leaves)})
    elif args.dag == "chain":
        graph = trace_workflow(chain, {"n": str(args.leaves)})
    else:
        graph = load_graph(str(ROOT / "examples" / "matmul.py"),
                           {"size": str(args.size), "blocks": "4"})
    directory = Path(tempfile.mkdtemp(prefix="planflow-profile-"))
    os.environ[PROFILE_DIR_ENV] = str(directory)  # the pool inherits it
    with EmbeddedRedis(persistent=False) as server:
        plan = planflow.compile(graph, platform="local", redis=server.url, namespace=NAMESPACE)
        engine = Planflow(server.url, NAMESPACE, args.processes, 120.0)
        try:
            engine.run(graph, plan)  # warm-up: the pool and its processes start
            for old in directory.glob("*.prof"):
                old.unlink()
            load = os.getloadavg()
            t0 = time.perf_counter()
            engine.run(graph, plan)
            seconds = time.perf_counter() - t0
            per_task = engine.last["redis_commands_per_task"]
        finally:
            engine.close()
    files = sorted(str(p) for p in directory.glob("*.prof"))
    print(f"{args.dag}: {len(graph.nodes)} tasks, {len(plan.workers)} workers, "
          f"{seconds * 1e3:.1f} ms, {per_task:.2f} Redis commands/task, load average "
          f"{load[0]:.2f}; {len(files)} worker profiles in {directory}")
    if files:
        stats = pstats.Stats(*files)
        print(f"workers' main-thread CPU total: {stats.total_tt * 1e3:.1f} ms "  # type: ignore[attr-defined]
              f"({stats.total_tt / len(graph.nodes) * 1e6:.1f} us/task)")  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
