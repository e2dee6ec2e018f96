"""Simulator accuracy: predicted against observed makespan of recorded workflows on this
machine, each through the `planflow` commands a user types.

For every workload of `benchmarks/local_workloads.py` (the examples and three workflows shaped
like user code: a numpy pipeline, a pure-Python CPU-bound fan-out, an I/O-bound fan-out), in a
private $PLANFLOW_HOME:

1. record: `planflow run MODULE --platform P` `--record` times (3): each run compiles for P
   from what the history holds so far (the first from priors) and records its metrics;
2. evaluate: `planflow compile MODULE --platform P -o W.plan` from the recorded history, then
   `planflow run W.plan` `--repeat` times. Error = |predicted - observed| / observed per run,
   where predicted is the plan's `makespan_s` and observed the run's `observed_makespan_s`
   (both from `run --json`); a workload's error is the median over its evaluation runs;
3. the loop: the evaluation plan's observed makespan (median) beside the first recording run's
   (compiled from priors): recompiling after runs should be no slower, observed.

Bar (DESIGN.md / issue 12): median over workloads <= 15 %, worst <= 30 %.

    python benchmarks/simulator_accuracy.py [--platform local] [--record 3] [--repeat 3]
        [--only matmul,cpu_fanout] [--keep DIR]

`--keep DIR` runs in DIR as $PLANFLOW_HOME and keeps it: the history (`planflow metrics`, the
worker and task records) and every evaluation plan (`DIR/<workflow>.plan`), to put the simulated
timeline beside the observed one.

Prints a table and writes `benchmarks/results/simulator_accuracy.json`. The load average is
printed beside the figures: other processes on the machine inflate observed times, and nothing
here can tell that apart from a bad prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from local_workloads import ROOT, compile_to, measure_each, planflow, record

MEDIAN_BAR_PCT = 15.0
WORST_BAR_PCT = 30.0


@dataclass(frozen=True)
class Row:
    workflow: str
    tasks: int
    workers: int
    placement: str
    predicted_s: float
    observed_s: tuple[float, ...]
    error_pct: float
    """Median over the evaluation runs of |predicted - observed| / observed, in percent."""
    recording_errors_pct: tuple[float, ...]
    """Signed error of each recording run (its plan had less history)."""
    first_observed_s: float
    """Observed makespan of the first recording run (a plan compiled from priors)."""

    @property
    def loop_ratio(self) -> float:
        return statistics.median(self.observed_s) / self.first_observed_s


def signed_error(doc: dict[str, object]) -> float:
    predicted, observed = float(doc["makespan_s"]), float(doc["observed_makespan_s"])
    return 100.0 * (predicted - observed) / observed


def measure(home: Path, workflow: str, values: dict[str, str], platform: str, records: int,
            repeat: int) -> Row:
    recorded = record(home, workflow, values, platform, records)
    plan_file = home / f"{workflow}.plan"
    compiled = compile_to(home, workflow, values, platform, plan_file)
    runs = [planflow(home, "run", str(plan_file)) for _ in range(repeat)]
    predicted = float(compiled["makespan_s"])
    assert all(abs(float(r["makespan_s"]) - predicted) < 1e-9 for r in runs)
    observed = tuple(float(r["observed_makespan_s"]) for r in runs)
    row = Row(workflow, len(compiled["tasks"]), len(compiled["workers"]),
              str(compiled["planning"]["placement"]), predicted, observed,
              statistics.median(abs(signed_error(r)) for r in runs),
              tuple(signed_error(r) for r in recorded),
              float(recorded[0]["observed_makespan_s"]))
    print(f"  recorded: {' '.join(f'{e:+.0f}%' for e in row.recording_errors_pct)}; plan "
          f"{row.workers} workers ({row.placement}), predicted {predicted:.3f} s, observed "
          f"{' '.join(f'{x:.3f}' for x in observed)}", flush=True)
    return row


def print_table(rows: list[Row]) -> None:
    print(f"\n{'workflow':15} {'tasks':>5} {'workers':>7} {'predicted':>10} {'observed':>9} "
          f"{'|error| %':>9} {'first run':>10} {'now/first':>9}")
    for r in rows:
        print(f"{r.workflow:15} {r.tasks:5d} {r.workers:7d} {r.predicted_s:10.3f} "
              f"{statistics.median(r.observed_s):9.3f} {r.error_pct:9.1f} "
              f"{r.first_observed_s:10.3f} {r.loop_ratio:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", default="local", help="platform name or TOML file")
    parser.add_argument("--record", type=int, default=3, help="recording runs per workflow")
    parser.add_argument("--repeat", type=int, default=3, help="evaluation runs per workflow")
    parser.add_argument("--only", default="", help="comma-separated workflow names")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks/results/simulator_accuracy.json")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this $PLANFLOW_HOME and keep it (history, plans)")
    parser.add_argument("--calibrate", action="store_true",
                        help="run `planflow calibrate` in that home first (else `local` is "
                             "derived from the host, as for a user who never calibrated)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows, failed = measure_each(
        args.only, "planflow-simacc-",
        lambda home, workflow, values: measure(home, workflow, values, args.platform,
                                               args.record, args.repeat),
        keep=args.keep, calibrate=args.calibrate)
    print_table(rows)
    if failed:
        print(f"\nFAILED (no figures): {', '.join(failed)}")
    if not rows:
        raise SystemExit("no workload ran")
    errors = [r.error_pct for r in rows]
    median, worst = statistics.median(errors), max(errors)
    slower = [r.workflow for r in rows if r.loop_ratio > 1.0]
    print(f"\nmedian |error| {median:.1f} % (bar {MEDIAN_BAR_PCT:g} %: "
          f"{'met' if median <= MEDIAN_BAR_PCT else 'MISSED'}), worst {worst:.1f} % (bar "
          f"{WORST_BAR_PCT:g} %: {'met' if worst <= WORST_BAR_PCT else 'MISSED'}); "
          f"recompiled plans slower than the first run: {', '.join(slower) or 'none'}; "
          f"platform {args.platform}{' (calibrated)' if args.calibrate else ''}; "
          f"load average {os.getloadavg()[0]:.1f}; "
          f"{time.perf_counter() - t0:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "platform": args.platform, "calibrated": args.calibrate, "record_runs": args.record,
        "repeat": args.repeat,
        "median_abs_error_pct": median, "worst_abs_error_pct": worst,
        "bars_pct": {"median": MEDIAN_BAR_PCT, "worst": WORST_BAR_PCT},
        "load_average": os.getloadavg()[0], "failed": failed,
        "rows": [{**asdict(r), "loop_ratio": r.loop_ratio} for r in rows]}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
