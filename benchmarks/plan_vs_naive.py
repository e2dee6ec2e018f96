"""The compiled plan against the naive ones, observed on this machine: per workload, the plan
`planflow compile` makes (after `--record` recorded runs) against the same tasks on one worker,
and for the CPU-bound fan-out also against one process (`planflow run --inline`).

For every workload of `benchmarks/local_workloads.py`, in a private $PLANFLOW_HOME:

1. record: `planflow run MODULE --platform P` `--record` times, so the plan is compiled from
   measured durations, as a user's would be after a few runs;
2. `planflow compile MODULE -o W.plan`; its `planning.candidates` are every placement the
   planner simulated (one worker, lanes, packed clustering, ...) with its simulated makespan;
3. the one-worker plan: W.plan's tasks on one worker at the configuration of its worker with
   the most CPUs (`planflow simulate` gives its predicted makespan on the same history);
4. `planflow run` of both plans, `--repeat` times interleaved (so drifting background load hits
   both alike); the ratio is compiled / one worker of the median observed makespans.

Bars (issue 12): every workload's compiled plan <= 1.1x its one-worker plan; the CPU-bound
fan-out of 8 <= 0.6x its one-process (inline) time on 2 cores.

    python benchmarks/plan_vs_naive.py [--platform local] [--record 3] [--repeat 3]
        [--only cpu_fanout,matmul]

Prints a table and writes `benchmarks/results/plan_vs_naive.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_workloads import (
    ROOT,
    compile_to,
    measure_each,
    module,
    one_worker_plan,
    params,
    planflow,
    record,
    simulated,
)

ONE_WORKER_BAR = 1.1
"""Compiled / one-worker observed makespan, at most."""

ONE_PROCESS_BAR = 0.6
"""CPU-bound fan-out: compiled / one-process (inline) time, at most."""

ONE_PROCESS_WORKLOADS = ("cpu_fanout",)
"""Workloads also timed in one process (`run --inline`)."""


@dataclass(frozen=True)
class Row:
    workflow: str
    tasks: int
    workers: int
    placement: str
    predicted_s: float
    one_worker_predicted_s: float
    observed_s: tuple[float, ...]
    one_worker_observed_s: tuple[float, ...]
    one_process_s: tuple[float, ...] = ()
    candidates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(self.observed_s) / statistics.median(self.one_worker_observed_s)

    @property
    def process_ratio(self) -> float | None:
        if not self.one_process_s:
            return None
        return statistics.median(self.observed_s) / statistics.median(self.one_process_s)


def observed(doc: dict[str, Any]) -> float:
    return float(doc["observed_makespan_s"])


def measure(home: Path, workflow: str, values: dict[str, str], platform: str, records: int,
            repeat: int) -> Row:
    record(home, workflow, values, platform, records)
    plan_file = home / f"{workflow}.plan"
    compiled = compile_to(home, workflow, values, platform, plan_file)
    single = one_worker_plan(plan_file, home / f"{workflow}-one.plan")
    inline = workflow in ONE_PROCESS_WORKLOADS
    mine, alone, process = [], [], []
    for _ in range(repeat):
        mine.append(observed(planflow(home, "run", str(plan_file))))
        alone.append(observed(planflow(home, "run", str(single))))
        if inline:
            process.append(observed(planflow(home, "run", module(workflow), *params(values),
                                             "--inline")))
    row = Row(workflow, len(compiled["tasks"]), len(compiled["workers"]),
              str(compiled["planning"]["placement"]), float(compiled["makespan_s"]),
              simulated(home, single), tuple(mine), tuple(alone), tuple(process),
              list(compiled["planning"].get("candidates", [])))
    print(f"  compiled ({row.placement}): {' '.join(f'{x:.3f}' for x in mine)}; one worker: "
          f"{' '.join(f'{x:.3f}' for x in alone)}"
          + (f"; one process: {' '.join(f'{x:.3f}' for x in process)}" if process else ""),
          flush=True)
    return row


def print_table(rows: list[Row]) -> None:
    print(f"\n{'workflow':15} {'tasks':>5} {'workers':>7} {'compiled':>9} {'one worker':>10} "
          f"{'ratio':>6} {'one process':>11} {'ratio':>6}  predicted (compiled / one worker)")
    for r in rows:
        proc = (f"{statistics.median(r.one_process_s):11.3f} {r.process_ratio:6.2f}"
                if r.one_process_s else f"{'-':>11} {'-':>6}")
        print(f"{r.workflow:15} {r.tasks:5d} {r.workers:7d} "
              f"{statistics.median(r.observed_s):9.3f} "
              f"{statistics.median(r.one_worker_observed_s):10.3f} {r.ratio:6.2f} {proc}  "
              f"{r.predicted_s:.3f} / {r.one_worker_predicted_s:.3f}")
    print("\ncandidates simulated by the planner (makespan s, * picked):")
    for r in rows:
        print(f"  {r.workflow:15} " + ", ".join(
            f"{'*' if c['picked'] else ''}{c['name']} "
            + ("deadlocks" if c["makespan_s"] is None else f"{c['makespan_s']:.3f}")
            for c in r.candidates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="local", help="platform name or TOML file")
    parser.add_argument("--record", type=int, default=3, help="recording runs per workflow")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each plan")
    parser.add_argument("--only", default="", help="comma-separated workflow names")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/plan_vs_naive.json")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this $PLANFLOW_HOME and keep it (history, plans)")
    parser.add_argument("--calibrate", action="store_true",
                        help="run `planflow calibrate` in that home first (else `local` is "
                             "derived from the host, as for a user who never calibrated)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows, failed = measure_each(
        args.only, "planflow-naive-",
        lambda home, workflow, values: measure(home, workflow, values, args.platform,
                                               args.record, args.repeat),
        keep=args.keep, calibrate=args.calibrate)
    print_table(rows)
    if failed:
        print(f"\nFAILED (no figures): {', '.join(failed)}")
    if not rows:
        raise SystemExit("no workload ran")
    over = [r.workflow for r in rows if r.ratio > ONE_WORKER_BAR]
    procs = [(r.workflow, r.process_ratio) for r in rows if r.process_ratio is not None]
    print(f"\ncompiled <= {ONE_WORKER_BAR:g}x one worker: "
          f"{len(rows) - len(over)}/{len(rows)} (over: {', '.join(over) or 'none'}); "
          + "; ".join(f"{w} / one process {p:.2f} (bar {ONE_PROCESS_BAR:g}: "
                      f"{'met' if p <= ONE_PROCESS_BAR else 'MISSED'})" for w, p in procs)
          + f"; platform {args.platform}{' (calibrated)' if args.calibrate else ''}; "
          f"load average {os.getloadavg()[0]:.1f}; "
          f"{time.perf_counter() - t0:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "platform": args.platform, "calibrated": args.calibrate, "record_runs": args.record,
        "repeat": args.repeat,
        "bars": {"one_worker": ONE_WORKER_BAR, "one_process": ONE_PROCESS_BAR},
        "load_average": os.getloadavg()[0], "failed": failed,
        "rows": [{**asdict(r), "ratio": r.ratio, "process_ratio": r.process_ratio}
                 for r in rows]}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
