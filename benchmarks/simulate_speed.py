"""Benchmark: how fast `simulator.simulate` is on WfCommons-like DAGs of 1k, 10k, 100k tasks.

Quality bar (DESIGN.md, issue 12): one simulation of a 10,000-task plan < 0.5 s, of 100,000
< 3 s on a 2-core machine, critical path and slack included, with the host model on. Each shape
and size runs under two models (column `model`):

  links       the `lambda` platform: independent workers, one link each to the store
  host+store  the same with shared host CPUs (`HOST_CPUS`), the store as one serial server and
              the shared-memory path (`STORE_*`, `SHM_BANDWIDTH_BPS`: figures of the order a
              2-core machine's calibration measures)

Shapes:

  montage      stages alternating a wide fan-out and a fan-in (project/diff -> concat -> bg -> add)
  epigenomics  fan-out into many independent 4-task pipelines, fan-in to a merge, per lane
  random       random layered DAG: each task has 1-3 parents in the previous layer

Durations are lognormal (median 2 s), outputs lognormal (median 1 MB); placement continues a
parent's worker with one child, with probability 0.6 (WUKONG-style chains), else starts a new
worker; a quarter of workers pre-load, half the tasks use delayed I/O. The platform is `lambda`
(1,000 concurrent workers); if a random placement deadlocks on that limit, the row is run with
the limit lifted (column `limit`).

    python benchmarks/simulate_speed.py --sizes 1000 10000 100000 \
        --out benchmarks/results/simulate_speed.json

Prints a table and writes JSON: one row per (shape, size, model) with median seconds of
`simulate` (default options; `simulate_cpu_s`: the process's CPU time for it, which other work
on a shared machine inflates less), `simulate(with_slack=False)` and `simulate_samples` per
sample.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform as host
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator import (
    Platform,
    SimInput,
    SimulatorError,
    load_platform,
    simulate,
    simulate_samples,
)

CLUSTER_PROBABILITY = 0.6
PRELOAD_FRACTION = 0.25
DELAYED_IO_FRACTION = 0.5
MEDIAN_DURATION_S = 2.0
MEDIAN_OUTPUT_BYTES = 1e6
SAMPLES = 20
TABLE_WIDTH = 160  # characters, when stdout is not a terminal (rich would assume 80)
HOST_CPUS = 2.0
STORE_THROUGHPUT_BPS = 1e9  # bytes/s the one store serves to all workers together
STORE_OP_S = 5e-5  # store time per request
SHM_BANDWIDTH_BPS = 5e9  # same-host shared-memory path
Edges = list[tuple[int, int]]


def montage_edges(n: int, rng: np.random.Generator) -> Edges:
    width = max(2, (n - 2) // 4)
    edges: Edges = []
    prev_join = 0  # task 0 is the root
    next_id = 1
    while next_id + width + 1 < n - 1:
        fan = list(range(next_id, next_id + width))
        edges += [(prev_join, t) for t in fan]
        join = next_id + width
        edges += [(t, join) for t in fan]
        prev_join, next_id = join, join + 1
    rest = list(range(next_id, n - 1))
    edges += [(prev_join, t) for t in rest] + [(t, n - 1) for t in rest]
    if not rest:
        edges.append((prev_join, n - 1))
    return edges


def epigenomics_edges(n: int, rng: np.random.Generator) -> Edges:
    depth = 4
    pipelines = max(1, (n - 2) // depth)
    edges: Edges = []
    for p in range(pipelines):
        chain = [1 + p * depth + d for d in range(depth)]
        edges.append((0, chain[0]))
        edges += list(itertools.pairwise(chain))
        edges.append((chain[-1], n - 1))
    for t in range(1 + pipelines * depth, n - 1):
        edges += [(0, t), (t, n - 1)]
    return edges


def random_edges(n: int, rng: np.random.Generator) -> Edges:
    layers = max(2, int(np.sqrt(n) / 2))
    cuts = np.sort(rng.choice(np.arange(2, n - 1), size=layers - 1, replace=False))
    bounds = [1, *cuts.tolist(), n - 1]
    edges: Edges = [(0, t) for t in range(bounds[0], bounds[1])]
    for lo, mid, hi in zip(bounds, bounds[1:], bounds[2:], strict=False):
        has_child = np.zeros(mid - lo, bool)
        for t in range(mid, hi):
            parents = rng.choice(np.arange(lo, mid), size=min(mid - lo, rng.integers(1, 4)))
            for p in set(parents.tolist()):
                edges.append((p, t))
                has_child[p - lo] = True
        edges += [(lo + i, int(rng.integers(mid, hi))) for i in np.flatnonzero(~has_child)]
    edges += [(t, n - 1) for t in range(bounds[-2], n - 1)]
    return edges


SHAPES: dict[str, Callable[[int, np.random.Generator], Edges]] = {
    "montage": montage_edges,
    "epigenomics": epigenomics_edges,
    "random": random_edges,
}


def make_input(edges: Edges, n: int, n_configs: int, rng: np.random.Generator) -> SimInput:
    pairs = np.asarray(sorted(set(edges)), np.int64)
    first_parent = np.full(n, -1)
    first_parent[pairs[::-1, 1]] = pairs[::-1, 0]  # the lowest-index parent wins
    worker = np.empty(n, np.int64)
    continued = np.zeros(n, bool)  # a parent hands its worker to at most one child
    count = 0
    cluster = rng.random(n) < CLUSTER_PROBABILITY
    for t in range(n):
        parent = first_parent[t]
        if parent >= 0 and cluster[t] and not continued[parent]:
            worker[t] = worker[parent]
            continued[parent] = True
        else:
            worker[t], count = count, count + 1
    return SimInput.build(
        rng.lognormal(np.log(MEDIAN_DURATION_S), 1.0, n),
        pairs,
        output_bytes=rng.lognormal(np.log(MEDIAN_OUTPUT_BYTES), 1.5, n),
        storage_bytes=np.where(rng.random(n) < 0.1, 5e6, 0.0),
        worker=worker,
        worker_config=rng.integers(0, n_configs, count),
        worker_preload=rng.random(count) < PRELOAD_FRACTION,
        delayed_io=rng.random(n) < DELAYED_IO_FRACTION,
    )


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process) over `repeats` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        began, began_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    return statistics.median(wall), statistics.median(cpu)


def models() -> dict[str, Platform]:
    base: Platform = load_platform("lambda")
    host = base.with_overrides(host_cpus=HOST_CPUS, store_throughput_bps=STORE_THROUGHPUT_BPS,
                               store_op_s=STORE_OP_S, shm_bandwidth_bps=SHM_BANDWIDTH_BPS)
    return {"links": base, "host+store": host}


def run(sizes: list[int], repeats: int, names: list[str]) -> list[dict[str, object]]:
    rows = []
    for shape, make_edges in SHAPES.items():
        for n in sizes:
            for model in names:
                base = models()[model]
                rng = np.random.default_rng(n)
                inp = make_input(make_edges(n, rng), n, len(base.configs), rng)
                rows.append(measure(shape, model, inp, base, repeats))
                row = rows[-1]
                print(f"{shape} {n} {model}: simulate {row['simulate_s']:.3f} s "
                      f"(cpu {row['simulate_cpu_s']:.3f} s, load {os.getloadavg()[0]:.2f})",
                      file=sys.stderr)
    return rows


def measure(shape: str, model: str, inp: SimInput, base: Platform, repeats: int
            ) -> dict[str, object]:
    n = inp.n_tasks
    plat = base
    try:
        result = simulate(inp, plat)
    except SimulatorError:  # deadlock on the concurrency limit
        plat = base.with_overrides(concurrency_limit=n)
        result = simulate(inp, plat)
    reps = repeats if n <= 10_000 else max(1, repeats // 2)
    sample_n = SAMPLES if n <= 10_000 else 2
    # memo=None: every timed call runs the engine (a repeat would be answered from the memo)
    wall, cpu = timed(lambda: simulate(inp, plat, memo=None), reps)
    return {
        "shape": shape,
        "model": model,
        "tasks": n,
        "edges": inp.n_edges,
        "workers": inp.n_workers,
        "limit": plat.concurrency_limit,
        "makespan_s": round(result.makespan_s, 3),
        "critical_tasks": len(result.critical_path),
        "simulate_s": wall,
        "simulate_cpu_s": cpu,
        "no_slack_s": timed(lambda: simulate(inp, plat, with_slack=False, memo=None), reps)[0],
        "per_sample_s": timed(lambda: simulate_samples(inp, plat, 0.3, sample_n, seed=1), 1)[0]
        / sample_n,
    }


COLUMNS = ("shape", "model", "tasks", "edges", "workers", "limit", "makespan_s",
           "critical_tasks", "simulate_s", "simulate_cpu_s", "no_slack_s", "per_sample_s")


def _cells(row: dict[str, object]) -> list[str]:
    return [f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in COLUMNS]


def print_table(rows: list[dict[str, object]]) -> None:
    """A rich table when rich is installed, else plain text."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(" | ".join(f"{c:>12}" for c in COLUMNS))
        for row in rows:
            print(" | ".join(f"{cell:>12}" for cell in _cells(row)))
        return
    table = Table(title="simulate() speed (median seconds)")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("shape", "model") else "right")
    for row in rows:
        table.add_row(*_cells(row))
    Console(width=None if sys.stdout.isatty() else TABLE_WIDTH).print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5, help="median of this many runs")
    parser.add_argument("--models", nargs="+", default=list(models()), choices=list(models()))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/simulate_speed.json"))
    args = parser.parse_args()
    rows = run(args.sizes, args.repeats, args.models)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": host.python_version(), "machine": host.machine(), "cpus": _cpus(),
            "loadavg": os.getloadavg()}
    args.out.write_text(json.dumps({"host": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


def _cpus() -> int | None:
    return os.cpu_count()


if __name__ == "__main__":
    main()
