"""MetadataAccess: the planner's only source of predictions (durations, sizes, transfers, starts).

For each task the planner asks, MetadataAccess answers from the best source it has, in order:

1. `history`: this function's task records, at a CPU count the function was observed at;
   `history-other-config`: the same history carried to CPU counts never observed through the
   fitted model (see `metadata.models` for the form and why it extrapolates sanely);
2. `hint`: the `@task(expected_s=..., parallelism=...)` hint (or a WfFormat trace's runtime):
   `duration(c) = e*max(0, 1-p) + e*p/min(c, max(p, 1))`, p defaulting to 1 -- the same Amdahl
   family as the history model, with e the duration at >= p CPUs;
3. `prior`: the same formula with e = `DEFAULT_DURATION_S` (0.1 s) and output `DEFAULT_OUTPUT_BYTES`
   (1 KiB), for a function nobody has measured or described.

Durations are learned from `TaskRecord.isolated_s`: the recorded time less what other
processes on the same host took from it (measured per attempt, `runtime.cpuclock`), so a run
with many workers crowding a small machine does not teach the predictor that the function is
slow; contention is the simulator's business, not the function's.

CPU demand (`predict_cpu_demand`: the CPUs a task keeps busy, what it takes of a host that many
workers share) is learned per function from the same records' `cpu_s` (`metadata.models`,
CPU demand); without measured CPU time the prior is the caller's (the planner derives one from
the duration model) or min(parallelism hint, configuration CPUs), parallelism 1 by default: a
single-threaded task keeps one CPU busy.

Every prediction carries its source per task, so `compile` can say how much of a plan rests on
measurements. Spread is log-space (a log-normal around the point estimate, so
`quantile(0.5) == mean_s`): from residuals for history (plus `EXTRAPOLATION_SIGMA` at unobserved
CPU counts), else `HINT_SIGMA` / `PRIOR_SIGMA`.

State: `_durations`/`_outputs` map each loaded function key to its fitted model, or None when
it has no successful record. `load` fetches only keys not seen before (one pipelined read), so a
planner may call it, or any predict method, as often as it likes. Platform figures (transfer
latency and bandwidth, cold and warm start) come in as plain floats; measured ones replace them
once enough samples exist: uploads in task records for transfers, worker records of recent runs
for start-up and plan download.

`predict_durations` is vectorised: tasks are grouped by function with numpy, per-function
parameters gathered onto tasks (`metadata.tables`), and the n x c matrix computed in a handful
of array operations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from metadata.models import (
    F64,
    MIN_CPU_DEMAND,
    MIN_DURATION_S,
    CpuDemandModel,
    DurationModel,
    OutputModel,
    TransferModel,
    amdahl,
    fit_cpu_demand,
    fit_duration,
    fit_output,
    fit_transfer,
)
from metadata.priors import (
    DEFAULT_DURATION_S,
    DEFAULT_OUTPUT_BYTES,
    HINT_SIGMA,
    PRIOR_SIGMA,
    SOURCES,
    DurationPrediction,
    TaskPrior,
    hint_duration,
    source_counts,
)
from metadata.records import TaskRecord, WorkerRecord
from metadata.reports import FunctionAccuracy, accuracy
from metadata.store import MetricsStore
from metadata.tables import FittedTable, group_tasks, prior_arrays, task_priors, task_vector

__all__ = ["SOURCES", "DurationPrediction", "FunctionAccuracy", "MetadataAccess", "TaskPrior",
           "accuracy", "source_counts"]

EXTRAPOLATION_SIGMA = 0.1
"""Extra log-space spread (in quadrature) at CPU counts the function was never observed at."""

MIN_STARTUP_SAMPLES = 3
"""Worker records of one kind (cold/warm) needed before the measured start-up replaces the
platform's figure."""

DEFAULT_HISTORY_LIMIT = 1000
"""Newest task records per function that `load` fetches: plenty to fit four parameters, and it
bounds load time however long the store's history grows."""

WORKER_HISTORY_RUNS = 20
"""Recent runs whose worker records feed start-up and plan-download figures."""


class MetadataAccess:
    """Predictions for the planner from a MetricsStore (or plain records), hints and priors."""

    def __init__(self, store: MetricsStore | None, *, transfer_latency_s: float,
                 transfer_bandwidth_bps: float, cold_start_s: float, warm_start_s: float,
                 history_limit: int | None = DEFAULT_HISTORY_LIMIT) -> None:
        if transfer_bandwidth_bps <= 0:
            raise ValueError("transfer_bandwidth_bps must be > 0")
        self._store = store
        self._history_limit = history_limit
        self._platform = {"transfer_latency_s": transfer_latency_s,
                          "transfer_bandwidth_bps": transfer_bandwidth_bps,
                          "cold_start_s": cold_start_s, "warm_start_s": warm_start_s}
        self._records: dict[str, list[TaskRecord]] = {}
        self._durations: dict[str, DurationModel | None] = {}
        self._outputs: dict[str, OutputModel | None] = {}
        self._demands: dict[str, CpuDemandModel | None] = {}
        self._transfer: TransferModel | None = None
        self._workers: list[WorkerRecord] | None = None
        self._run_workflows: dict[str, str] = {}
        """run id -> workflow, for the runs of `_workers` that have a run record."""
        self._plan_download: TransferModel | None = None
        self._widths: dict[tuple[str, str], int | None] = {}

    @classmethod
    def from_records(cls, records: Iterable[TaskRecord], *,
                     worker_records: Iterable[WorkerRecord] = (), transfer_latency_s: float,
                     transfer_bandwidth_bps: float, cold_start_s: float, warm_start_s: float,
                     widths: Mapping[tuple[str, str], int] | None = None,
                     run_workflows: Mapping[str, str] | None = None) -> MetadataAccess:
        """An instance over in-memory records (tests, benchmarks), no Redis involved;
        `widths`: (workflow, dynamic fan-out id) -> the width to expect; `run_workflows`:
        run id -> the workflow it ran (what the run records would say)."""
        access = cls(None, transfer_latency_s=transfer_latency_s,
                     transfer_bandwidth_bps=transfer_bandwidth_bps, cold_start_s=cold_start_s,
                     warm_start_s=warm_start_s)
        grouped: dict[str, list[TaskRecord]] = {}
        for rec in records:
            grouped.setdefault(rec.function_key, []).append(rec)
        access._ingest(grouped)
        access._set_workers(list(worker_records))
        access._run_workflows.update(run_workflows or {})
        access._widths.update(widths or {})
        return access

    # -- loading --------------------------------------------------------------------------------

    @property
    def loaded(self) -> frozenset[str]:
        """Function keys fetched so far (with or without history)."""
        return frozenset(self._records)

    def load(self, function_keys: Iterable[str]) -> None:
        """Fetch and fit the functions not loaded yet (only those); cached afterwards."""
        missing = [k for k in dict.fromkeys(function_keys) if k not in self._records]
        if self._store is None:
            self._ingest({k: [] for k in missing})
            return
        if missing:
            self._ingest(self._store.task_records(missing, last=self._history_limit))
        self._load_workers()

    def _load_workers(self) -> None:
        """Fetch the worker records of recent runs once (start-up and plan-download figures)."""
        if self._workers is None and self._store is not None:
            workers = self._store.recent_worker_records(WORKER_HISTORY_RUNS)
            self._run_workflows = self._store.run_workflows(
                list(dict.fromkeys(w.run_id for w in workers)))
            self._set_workers(workers)

    def expected_width(self, workflow: str, task_id: str) -> int | None:
        """The median width dynamic fan-out `task_id` of `workflow` had in the recorded runs
        (upper median), None without a record (`planner.dynamic` then uses its hint or prior)."""
        key = (workflow, task_id)
        if key not in self._widths:
            found = self._store.widths(workflow, [task_id]) if self._store is not None else {}
            seen = sorted(found.get(task_id, ()))
            self._widths[key] = seen[len(seen) // 2] if seen else None
        return self._widths[key]

    def records(self, function_key: str) -> list[TaskRecord]:
        """The loaded task records of one function (after `load`)."""
        return list(self._records.get(function_key, ()))

    def duration_model(self, function_key: str) -> DurationModel | None:
        self.load([function_key])
        return self._durations.get(function_key)

    def output_model(self, function_key: str) -> OutputModel | None:
        self.load([function_key])
        return self._outputs.get(function_key)

    def cpu_demand_model(self, function_key: str) -> CpuDemandModel | None:
        self.load([function_key])
        return self._demands.get(function_key)

    def _ingest(self, by_key: dict[str, list[TaskRecord]]) -> None:
        new_uploads = False
        for key, recs in by_key.items():
            self._records[key] = recs
            ok = [r for r in recs if r.usable]
            self._durations[key] = fit_duration(
                [r.input_bytes for r in ok], [r.cpus for r in ok], [r.isolated_s for r in ok]
            ) if ok else None
            self._outputs[key] = fit_output(
                [r.input_bytes for r in ok], [r.output_bytes for r in ok]) if ok else None
            measured = [(r.cpus, r.cpu_s, r.isolated_s) for r in ok if r.cpu_s is not None]
            self._demands[key] = fit_cpu_demand(*zip(*measured, strict=True)) \
                if measured else None
            new_uploads = new_uploads or any(r.upload_s > 0 for r in ok)
        if new_uploads:  # refit transfer figures on the uploads of every loaded function
            samples = [(r.output_bytes, r.upload_s) for recs in self._records.values()
                       for r in recs if r.usable and r.upload_s > 0]
            nbytes, seconds = zip(*samples, strict=True)
            self._transfer = fit_transfer(nbytes, seconds)

    def _set_workers(self, workers: list[WorkerRecord]) -> None:
        self._workers = workers
        if workers:
            self._plan_download = fit_transfer([w.plan_bytes for w in workers],
                                               [w.plan_download_s for w in workers])

    # -- predictions ----------------------------------------------------------------------------

    def predict_durations(self, function_keys: Sequence[str], input_bytes: ArrayLike,
                          cpus: ArrayLike, priors: Sequence[TaskPrior] | None = None
                          ) -> DurationPrediction:
        """Durations of n tasks (function key, input bytes, prior each) at c CPU counts."""
        n = len(function_keys)
        x = task_vector(input_bytes, n, "input_bytes")
        cfg = np.asarray(cpus, dtype=float)
        if cfg.ndim != 1 or not np.all(cfg > 0):
            raise ValueError("cpus must be a 1-D array of positive CPU counts (one per config)")
        uniq, inv = group_tasks(function_keys)
        self.load(uniq)
        expected, par = prior_arrays(priors, n)
        hint_serial, hint_cap = np.maximum(0.0, 1.0 - par), np.maximum(par, 1.0)
        has_hint = ~np.isnan(expected)
        mean = hint_duration(np.where(has_hint, expected, DEFAULT_DURATION_S)[:, None],
                             par[:, None], cfg[None, :])
        sigma = np.repeat(np.where(has_hint, HINT_SIGMA, PRIOR_SIGMA)[:, None], len(cfg), 1)
        code = np.where(has_hint, SOURCES.index("hint"), SOURCES.index("prior"))
        observed = np.zeros((n, len(cfg)), dtype=bool)

        fitted = FittedTable.build([self._durations.get(k) for k in uniq], cfg)
        hist = fitted.has[inv]
        if hist.any():
            rows, u = np.flatnonzero(hist), inv[hist]
            learned = fitted.learned[u]
            s = np.where(learned, fitted.serial[u], hint_serial[rows])[:, None]
            p = np.where(learned, fitted.cap[u], hint_cap[rows])[:, None]
            work = (fitted.fixed[u] + fitted.per_byte[u] * x[rows])[:, None]
            ref = amdahl(fitted.ref[u][:, None], s, p)
            mean[rows] = np.maximum(work * amdahl(cfg[None, :], s, p) / ref, MIN_DURATION_S)
            observed[rows] = fitted.observed[u]
            sigma[rows] = np.where(fitted.observed[u], fitted.sigma[u][:, None],
                                   np.hypot(fitted.sigma[u], EXTRAPOLATION_SIGMA)[:, None])
            code[rows] = np.where(fitted.observed[u].any(axis=1), 0, 1)
        return DurationPrediction(mean, sigma, observed, np.asarray(SOURCES)[code])

    def predict_output_bytes(self, function_keys: Sequence[str], input_bytes: ArrayLike,
                             priors: Sequence[TaskPrior] | None = None
                             ) -> tuple[F64, NDArray[np.str_]]:
        """(bytes[n], source[n]): expected output size of each task."""
        n = len(function_keys)
        x = task_vector(input_bytes, n, "input_bytes")
        uniq, inv = group_tasks(function_keys)
        self.load(uniq)
        hinted = np.array([math.nan if p.output_bytes is None else float(p.output_bytes)
                           for p in task_priors(priors, n)], dtype=float)
        has_hint = ~np.isnan(hinted)
        out = np.where(has_hint, hinted, DEFAULT_OUTPUT_BYTES)
        code = np.where(has_hint, SOURCES.index("hint"), SOURCES.index("prior"))
        models = [self._outputs.get(k) for k in uniq]
        has = np.array([m is not None for m in models], dtype=bool)[inv]
        fixed = np.array([m.fixed_bytes if m else 0.0 for m in models], dtype=float)
        per_byte = np.array([m.per_byte if m else 0.0 for m in models], dtype=float)
        out = np.where(has, fixed[inv] + per_byte[inv] * x, out)
        code = np.where(has, SOURCES.index("history"), code)
        return np.maximum(out, 0.0), np.asarray(SOURCES)[code]

    def predict_cpu_demand(self, function_keys: Sequence[str], cpus: ArrayLike,
                           priors: Sequence[TaskPrior] | None = None,
                           prior_demand: ArrayLike | None = None
                           ) -> tuple[F64, NDArray[np.str_]]:
        """(demand[n, c], source[n]): CPUs each task keeps busy at each of c CPU counts, from
        its function's measured CPU time (`history`), else `prior_demand` [n, c] when given,
        else min(parallelism hint, CPUs) (`hint` when hinted, `prior`)."""
        n = len(function_keys)
        cfg = np.asarray(cpus, dtype=float)
        if cfg.ndim != 1 or not np.all(cfg > 0):
            raise ValueError("cpus must be a 1-D array of positive CPU counts (one per config)")
        uniq, inv = group_tasks(function_keys)
        self.load(uniq)
        if prior_demand is None:
            _, par = prior_arrays(priors, n)
            prior = np.minimum(par[:, None], cfg[None, :])
        else:
            prior = np.asarray(prior_demand, dtype=float)
            if prior.shape != (n, len(cfg)):
                raise ValueError(f"prior_demand must have shape {(n, len(cfg))}, got "
                                 f"{prior.shape}")
        demand = np.clip(prior, MIN_CPU_DEMAND, cfg[None, :])
        hinted = np.array([p.parallelism is not None for p in task_priors(priors, n)], dtype=bool)
        code = np.where(hinted, SOURCES.index("hint"), SOURCES.index("prior"))
        models = [self._demands.get(k) for k in uniq]
        has = np.array([m is not None for m in models], dtype=bool)[inv]
        own = np.array([m.demand if m else 1.0 for m in models], dtype=float)[inv][:, None]
        bound = np.array([bool(m and m.bound_only) for m in models], dtype=bool)[inv][:, None]
        learned = np.clip(np.where(bound, np.maximum(own, prior), own), MIN_CPU_DEMAND,
                          cfg[None, :])
        demand = np.where(has[:, None], learned, demand)
        code = np.where(has, SOURCES.index("history"), code)
        return demand, np.asarray(SOURCES)[code]

    def transfer_time(self, nbytes: ArrayLike) -> Any:
        """Seconds to move nbytes through the store (scalar or array like nbytes)."""
        latency, bandwidth = self.transfer_figures()
        result = latency + np.asarray(nbytes, dtype=float) / bandwidth
        return float(result) if np.ndim(result) == 0 else result

    def transfer_figures(self) -> tuple[float, float]:
        """(latency_s, bandwidth_bps): measured where possible, else the platform's."""
        latency = self._platform["transfer_latency_s"]
        bandwidth = self._platform["transfer_bandwidth_bps"]
        if self._transfer is not None:
            latency = self._transfer.latency_s
            bandwidth = self._transfer.bandwidth_bps or bandwidth
        return latency, bandwidth

    def startup_time(self, memory_mb: int, cold: bool) -> float:
        """Seconds from asking for a worker of `memory_mb` to it running (cold or warm)."""
        samples = [w for w in self._workers or () if w.cold == cold]
        same = [w.startup_s for w in samples if w.memory_mb == memory_mb]
        if len(same) >= MIN_STARTUP_SAMPLES:
            return float(np.median(same))
        if len(samples) >= MIN_STARTUP_SAMPLES:
            return float(np.median([w.startup_s for w in samples]))
        return self._platform["cold_start_s" if cold else "warm_start_s"]

    def start_up_figures(self, workflow: str | None = None, host_cpus: float | None = None
                         ) -> dict[str, float]:
        """The platform's `cold_start_s` / `warm_start_s` as recent workers measured them:
        start-up plus plan download (the simulator's start-up covers both), the median over
        runs of each run's median, for each kind with at least `MIN_STARTUP_SAMPLES` records
        (a kind without enough is absent). Each run counts once, so one run's crowd does not
        outvote the others.

        A worker's start-up is mostly what it imports: the pool imports the workflow's modules
        before it forks, and unpickling the plan's functions imports the rest (numpy, pandas,
        dask: 0.1-0.5 s; a pure-Python workflow: a few ms). So with `workflow`, only the runs
        of that workflow count, when they hold enough records of the kind; otherwise every
        recent run does (a new workflow starts from what this machine's workers take).

        With `host_cpus` (workers share one host), each start-up is first taken back to what it
        would have been alone (`isolated_start_ups`): the simulator's host model charges the
        crowd of workers starting at once itself, and a figure measured in that crowd would be
        charged it twice."""
        self._load_workers()
        figures: dict[str, float] = {}
        workers = self._workers or []
        own = [w for w in workers if workflow is not None
               and self._run_workflows.get(w.run_id) == workflow]
        for name, cold in (("cold_start_s", True), ("warm_start_s", False)):
            kind = [w for w in own if w.cold == cold]
            if len(kind) < MIN_STARTUP_SAMPLES:
                kind = [w for w in workers if w.cold == cold]
            if len(kind) < MIN_STARTUP_SAMPLES:
                continue
            by_run: dict[str, list[WorkerRecord]] = {}
            for w in kind:
                by_run.setdefault(w.run_id, []).append(w)
            medians = [float(np.median(isolated_start_ups(
                group, [w for w in workers if w.run_id == run_id], host_cpus)))
                for run_id, group in by_run.items()]
            figures[name] = float(np.median(medians))
        return figures

    def plan_download_time(self, plan_bytes: int) -> float:
        """Seconds for a worker to fetch a serialized plan of `plan_bytes`."""
        model = self._plan_download
        if model is None:
            return float(self.transfer_time(plan_bytes))
        bandwidth = model.bandwidth_bps or self.transfer_figures()[1]
        return model.latency_s + plan_bytes / bandwidth

    def figure_sources(self) -> dict[str, str]:
        """Which platform figures are measured (`history`) and which are the platform's."""
        workers = self._workers or ()
        def kind(measured: bool) -> str:
            return "history" if measured else "platform"
        return {
            "transfer": kind(self._transfer is not None),
            "cold_start": kind(sum(w.cold for w in workers) >= MIN_STARTUP_SAMPLES),
            "warm_start": kind(sum(not w.cold for w in workers) >= MIN_STARTUP_SAMPLES),
            "plan_download": kind(self._plan_download is not None),
        }

    @staticmethod
    def source_counts(sources: DurationPrediction | ArrayLike) -> dict[str, int]:
        """How many tasks each source predicted (all four sources, zeros included)."""
        if isinstance(sources, DurationPrediction):
            return sources.source_counts()
        return source_counts(sources)


def isolated_start_ups(workers: Sequence[WorkerRecord], run_workers: Sequence[WorkerRecord],
                       host_cpus: float | None) -> list[float]:
    """Each of `workers`' start-up plus plan download, as if it had the host to itself: its
    measured span divided by its crowd's stretch, max(1, c / host_cpus), where c is the CPU
    demand (min(1, cpus) each, as the host model charges a start-up) of the start-ups of its
    run (`run_workers`, itself included) under way at once, on average over its span - the
    inverse of the host model, which shares host_cpus among them. Without `host_cpus`, the
    spans as measured."""
    spans = [(w.requested_at, w.requested_at + w.startup_s + w.plan_download_s,
              min(1.0, w.cpus)) for w in run_workers]
    out = []
    for w in workers:
        lo, hi = w.requested_at, w.requested_at + w.startup_s + w.plan_download_s
        length = hi - lo
        if host_cpus is None or length <= 0:
            out.append(max(length, 0.0))
            continue
        crowd = sum(d * max(0.0, min(hi, b) - max(lo, a)) for a, b, d in spans) / length
        out.append(length / max(1.0, crowd / host_cpus))
    return out
