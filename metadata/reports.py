"""What `planflow metrics` shows: per-function summaries, CSV export, and model accuracy.

`accuracy` measures the predictor the way the planner uses it: for every function with records
from at least two runs, each run in turn is held out, the duration and output-size models are
fitted on the other runs only, and the held-out records are predicted (at their own input size
and CPU count, which the training runs may never have used). Errors are absolute percentage
errors |predicted - observed| / observed, reported as their mean (MAPE) and 90th percentile, in
percent. Failed attempts (and records with impossible values) are ignored, as they are for
fitting.

`makespan_accuracy` measures the simulator the same way from the run records: every successful
run's predicted makespan (the plan's, recorded as the run starts) against the observed one,
error = (predicted - observed) / observed in percent; per workflow the median and the worst
absolute error, optionally over each workflow's newest runs only.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

import numpy as np

from metadata.models import DurationModel, OutputModel, fit_duration, fit_output
from metadata.records import RunRecord, TaskRecord
from metadata.store import EXPORT_COLUMNS, READ_BATCH_FUNCTIONS, MetricsStore

MIN_RUNS_FOR_ACCURACY = 2
"""Runs a function needs before leave-one-run-out can say anything."""

P90 = 90.0
"""Percentile reported beside the mean."""


@dataclass(frozen=True)
class FunctionAccuracy:
    """Leave-one-run-out error of one function's models, in percent (None: too few runs)."""

    function_key: str
    function_name: str
    runs: int
    samples: int
    duration_mape_pct: float | None
    duration_p90_ape_pct: float | None
    output_mape_pct: float | None
    output_p90_ape_pct: float | None


@dataclass(frozen=True)
class FunctionSummary:
    """One function's history and fitted models (`planflow metrics show`)."""

    function_key: str
    function_name: str
    records: int
    failed: int
    runs: int
    configurations: dict[float, int]  # CPU count -> successful records
    duration: DurationModel | None
    output: OutputModel | None


@dataclass(frozen=True)
class RunMakespan:
    """One recorded run: predicted beside observed makespan."""

    run_id: str
    workflow: str
    strategy: str
    submitted_at: float
    predicted_makespan_s: float
    observed_makespan_s: float
    error_pct: float


@dataclass(frozen=True)
class WorkflowMakespan:
    """A workflow's makespan prediction error over its runs, in percent."""

    workflow: str
    runs: int
    median_abs_error_pct: float
    worst_abs_error_pct: float
    last_error_pct: float


def makespan_accuracy(runs: Iterable[RunRecord], last: int | None = None
                      ) -> tuple[list[RunMakespan], list[WorkflowMakespan]]:
    """Predicted vs observed makespan of the successful runs (of each workflow's newest `last`
    runs when given), oldest first, and per workflow (by name) their error summary."""
    by_workflow: dict[str, list[RunMakespan]] = {}
    for r in sorted(runs, key=lambda r: (r.submitted_at, r.run_id)):
        if not r.ok or not r.observed_makespan_s > 0 or not r.predicted_makespan_s >= 0:
            continue
        err = 100.0 * (r.predicted_makespan_s - r.observed_makespan_s) / r.observed_makespan_s
        by_workflow.setdefault(r.workflow, []).append(RunMakespan(
            r.run_id, r.workflow, r.strategy, r.submitted_at, r.predicted_makespan_s,
            r.observed_makespan_s, err))
    if last is not None:
        by_workflow = {w: rows[-last:] for w, rows in by_workflow.items()}
    kept = sorted((m for rows in by_workflow.values() for m in rows),
                  key=lambda m: (m.submitted_at, m.run_id))
    summary = [WorkflowMakespan(w, len(rows), float(np.median([abs(m.error_pct) for m in rows])),
                                max(abs(m.error_pct) for m in rows), rows[-1].error_pct)
               for w, rows in sorted(by_workflow.items()) if rows]
    return kept, summary


def accuracy(source: MetricsStore | Iterable[TaskRecord],
             function_keys: Iterable[str] | None = None) -> list[FunctionAccuracy]:
    """Leave-one-run-out accuracy per function, sorted by function name then key."""
    results = [_function_accuracy(key, recs) for key, recs in _histories(source, function_keys)]
    return sorted(results, key=lambda a: (a.function_name, a.function_key))


def summarize(store: MetricsStore, name_or_key: str) -> list[FunctionSummary]:
    """Summaries of the functions matching a key, `module.qualname` or name (may be several)."""
    keys = store.resolve(name_or_key)
    return [_summary(key, recs) for key, recs in store.task_records(keys).items()]


def write_csv(store: MetricsStore, out: TextIO) -> int:
    """Every task record as CSV (header `EXPORT_COLUMNS`); returns the number of rows."""
    writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS))
    writer.writeheader()
    count = 0
    for row in store.export_rows():
        writer.writerow(row)
        count += 1
    return count


def _histories(source: MetricsStore | Iterable[TaskRecord], function_keys: Iterable[str] | None
               ) -> Iterable[tuple[str, list[TaskRecord]]]:
    wanted = None if function_keys is None else set(function_keys)
    if isinstance(source, MetricsStore):
        keys = [i.function_key for i in source.functions()] if wanted is None else sorted(wanted)
        for i in range(0, len(keys), READ_BATCH_FUNCTIONS):
            yield from source.task_records(keys[i:i + READ_BATCH_FUNCTIONS]).items()
        return
    grouped: dict[str, list[TaskRecord]] = {}
    for rec in source:
        if wanted is None or rec.function_key in wanted:
            grouped.setdefault(rec.function_key, []).append(rec)
    yield from grouped.items()


def _function_accuracy(key: str, records: list[TaskRecord]) -> FunctionAccuracy:
    ok = [r for r in records if r.usable]
    name = records[0].function_name if records else key
    run_ids = sorted({r.run_id for r in ok})
    if len(run_ids) < MIN_RUNS_FOR_ACCURACY:
        return FunctionAccuracy(key, name, len(run_ids), len(ok), None, None, None, None)
    runs = np.array([r.run_id for r in ok])
    x = np.array([r.input_bytes for r in ok], dtype=float)
    c = np.array([r.cpus for r in ok], dtype=float)
    t = np.array([r.isolated_s for r in ok], dtype=float)
    o = np.array([r.output_bytes for r in ok], dtype=float)
    dur_err: list[float] = []
    out_err: list[float] = []
    for run_id in run_ids:
        held, train = runs == run_id, runs != run_id
        dur = fit_duration(x[train], c[train], t[train]).predict(x[held], c[held])
        out = fit_output(x[train], o[train]).predict(x[held])
        dur_err.extend(_ape(dur, t[held]))
        out_err.extend(_ape(out, o[held]))
    return FunctionAccuracy(key, name, len(run_ids), len(ok), *_stats(dur_err), *_stats(out_err))


def _ape(predicted: np.ndarray, observed: np.ndarray) -> list[float]:
    floor = np.maximum(np.abs(observed), 1e-9)
    return [float(v) for v in 100.0 * np.abs(predicted - observed) / floor]


def _stats(errors: list[float]) -> tuple[float, float]:
    return float(np.mean(errors)), float(np.percentile(errors, P90))


def _summary(key: str, records: list[TaskRecord]) -> FunctionSummary:
    ok = [r for r in records if r.usable]
    x = [r.input_bytes for r in ok]
    configs: dict[float, int] = {}
    for r in ok:
        configs[r.cpus] = configs.get(r.cpus, 0) + 1
    return FunctionSummary(
        function_key=key, function_name=records[0].function_name if records else key,
        records=len(records), failed=len(records) - len(ok), runs=len({r.run_id for r in ok}),
        configurations=dict(sorted(configs.items())),
        duration=fit_duration(x, [r.cpus for r in ok], [r.isolated_s for r in ok])
        if ok else None,
        output=fit_output(x, [r.output_bytes for r in ok]) if ok else None)
