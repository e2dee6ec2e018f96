"""How fast a small pool hands its process slots over: many one-task workers through a pool of 2.

    python benchmarks/overhead_handover.py [--width 40] [--processes 2] [--repeat 5]

A no-op fan-out (`executor_overhead.fanout`) placed one task per worker: the source's worker
makes `--width` workers ready at once, and a pool of `--processes` processes runs them a few at
a time, so each one waits for a slot to come free. The time per worker beyond the tasks' own
cost is the pool's hand-over latency (it was bounded by the server's 50 ms tick; now by the
child's `done` line, `runtime.pool_events`). Prints best and median wall time of `run_plan`
after one warm-up, ms per worker, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from executor_overhead import NAMESPACE, fanout, placed  # noqa: E402

from planner.loader import trace_workflow  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=40)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from runtime.client import run_plan
    from runtime.embedded import EmbeddedRedis
    from runtime.local import LocalLauncher

    graph = trace_workflow(fanout, {"n": str(args.width)})
    plan = placed(graph, lambda i, t: f"w{i}", "one task per worker")
    times = []
    with EmbeddedRedis(persistent=False) as server:
        launcher = LocalLauncher(server.url, NAMESPACE, shutdown_on_close=True,
                                 max_processes=args.processes)
        try:
            for i in range(args.repeat + 1):
                t0 = time.perf_counter()
                run_plan(plan, redis_url=server.url, namespace=NAMESPACE, launcher=launcher,
                         timeout_s=120.0)
                if i:
                    times.append(time.perf_counter() - t0)
        finally:
            launcher.close()
    best, median = min(times), statistics.median(times)
    print(f"{len(plan.workers)} one-task workers through a pool of {args.processes}: best "
          f"{best * 1e3:.1f} ms, median {median * 1e3:.1f} ms "
          f"({best / len(plan.workers) * 1e3:.2f} ms per worker, best); load average "
          f"{os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
