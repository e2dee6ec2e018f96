"""Dynamic fan-out overhead: `planflow.map` vs a static fan-out of the same width.

    python benchmarks/dynamic_width.py [--widths 100,1000,10000] [--repeat 3]

Both workflows square the integers 0..width-1 and sum the squares, tasks that do nothing
measurable, so the wall time is orchestration:

- static:  `total([square(i) for i in range(n)])`, traced, so the planner sees every element;
- dynamic: `total(planflow.map(square, make(n)))`: one node whose width the run discovers.

Each is compiled for the `local` platform with the planner (the dynamic one with its width
hinted, `expected_width=n`, as history would give it after one run) and run on the local
launcher (warm worker processes) with an embedded Redis, once to warm up, then `--repeat` times.
We report the best wall time, the per-element time (best / width), and the dynamic fan-out's
overhead per element over the static one ((dynamic - static) / width). The wall time is
`run_plan`'s, which includes waiting for the run's metric records. Results are printed and
written to benchmarks/results/dynamic_width.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import planflow  # noqa: E402
from planflow import task, workflow  # noqa: E402
from planner.compiler import CompileOptions, compile_graph  # noqa: E402
from planner.loader import trace_workflow  # noqa: E402
from runtime.client import run_plan  # noqa: E402
from runtime.embedded import EmbeddedRedis  # noqa: E402
from runtime.local import LocalLauncher  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "dynamic_width.json"
NAMESPACE = "benchdyn"
RUN_TIMEOUT_S = 900.0


@task
def make(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int) -> int:
    return x * x


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@workflow
def static_fan(n: int = 100):
    return total([square(i) for i in range(n)])


@workflow
def dynamic_fan(n: int = 100):
    return total(planflow.map(square, make(n), expected_width=n))


def measure(wf: Any, width: int, url: str, launcher: LocalLauncher, repeat: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    plan = compile_graph(trace_workflow(wf, {"n": str(width)}), CompileOptions(platform="local"))
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(repeat + 1):  # the first run warms the pool up
        t = time.perf_counter()
        result = run_plan(
            plan, redis_url=url, namespace=NAMESPACE, launcher=launcher, timeout_s=RUN_TIMEOUT_S
        )
        times.append(time.perf_counter() - t)
        assert result.result == sum(i * i for i in range(width)), result.result
    best = min(times[1:])
    return {
        "workflow": wf.name,
        "width": width,
        "compile_s": compile_s,
        "best_s": best,
        "runs_s": times[1:],
        "per_element_ms": best / width * 1e3,
        "workers_started": result.workers_started,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="100,1000,10000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    rows = []
    with (
        tempfile.TemporaryDirectory() as home,
        EmbeddedRedis(data_dir=Path(home), persistent=False) as server,
    ):
        launcher = LocalLauncher(server.url, NAMESPACE, shutdown_on_close=True)
        try:
            for width in widths:
                static = measure(static_fan, width, server.url, launcher, args.repeat)
                dynamic = measure(dynamic_fan, width, server.url, launcher, args.repeat)
                dynamic["overhead_per_element_ms"] = (
                    (dynamic["best_s"] - static["best_s"]) / width * 1e3
                )
                rows += [static, dynamic]
                print(
                    f"width {width:>6}: static {static['best_s']:.3f} s "
                    f"({static['per_element_ms']:.3f} ms/element, compile "
                    f"{static['compile_s']:.2f} s), dynamic {dynamic['best_s']:.3f} s "
                    f"({dynamic['per_element_ms']:.3f} ms/element, compile "
                    f"{dynamic['compile_s']:.2f} s); dynamic overhead "
                    f"{dynamic['overhead_per_element_ms']:+.3f} ms/element",
                    flush=True,
                )
        finally:
            launcher.close()
    doc = {
        "benchmark": "dynamic_width",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
