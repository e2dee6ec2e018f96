"""`planflow calibrate`: measure this machine and cache it as the `local` platform.

    calibration = calibrate(progress=print)      # ~10-25 s; quick=True: a few seconds
    path = write_calibration(calibration)        # $PLANFLOW_HOME/calibration/<machine>.toml

Steps, in order (each reports on `progress` before it starts):

1. **host**: usable CPUs and memory (`simulator.host_platform.host_facts`: affinity, cgroup
   quota and limit, physical memory); the platform derived from them is what `local` assumed.
2. **store**: an embedded Redis started as `planflow run` starts it (`runtime.embedded`,
   append-only file on, Unix socket) in a temporary data directory, so the user's history is
   not touched: one client's round trips by value size (1 KB .. 100 MB; `--quick` stops at
   16 MB), fitted to `storage_latency_s` + bytes / `storage_bandwidth_bps`; then 2 x CPUs
   processes at once, 1 MB values -> `store_throughput_bps` (the bytes/second they got in all;
   `store_server_bps` beside it: bytes per CPU second of Redis's thread, its capacity alone),
   small values -> `store_requests_per_s` and `store_op_s` (CPU time of Redis's one serving
   thread per request, `runtime.host_probes`).
3. **workers**: the local launcher's pool (`runtime.local`) on that Redis runs a small plan
   twice: `PROBE_WORKERS` workers with one no-op task each, then the same again while the
   processes are idle. Their worker records give the cold start (start request to running,
   plus the plan download: `cold_start_s`), the warm start (`warm_start_s`) and the plan
   download alone; the pool's own start-up is reported beside them.
4. **shm**: the same-host shared-memory path (`runtime.shm`) -> `shm_bandwidth_bps`.
5. **fork and quotas**: the cost of one fork, and the CPU share a spinning child gets under a
   quota below one CPU (`runtime.limits`): enforced or not, and how close to the quota.

The result is the derived platform with the measured fields replaced (`Calibration.platform`);
`write_calibration` writes it where `local` is loaded from (`calibration_path()`), and to `-o`
when asked. Writing first checks that the data directory is writable, before anything is
measured (`check_writable`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planner.errors import PlanflowError
from planner.plan import Plan, PlanSummary, TaskPlan, WorkerPlan
from planner.trace import task, workflow
from runtime import host_probes
from simulator.host_platform import (
    HostFacts,
    calibration_path,
    derive_local,
    host_facts,
    machine_identity,
    platform_toml,
)
from simulator.platform import Platform

PROBE_WORKERS = 4
"""Workers of the start-up probe plan (one no-op task each; the first also runs the sink)."""

AGGREGATE_CLIENTS_PER_CPU = 2
"""Store clients per host CPU in the aggregate probes (more clients than cores, as in a run)."""


@dataclass(frozen=True)
class Budget:
    """How much each probe measures: `FULL` (the default) or `QUICK` (`--quick`, tests)."""

    store_sizes: tuple[int, ...]
    per_size_s: float  # time spent on round trips of one value size
    aggregate_s: float  # time each aggregate store probe runs
    shm_bytes: int  # value size of the shared-memory probe
    quota_cpus: tuple[float, ...]  # CPU quotas below one CPU whose behaviour is measured
    quota_work_s: float  # CPU seconds a probe child spins for


FULL = Budget(host_probes.STORE_SIZES, 0.6, 1.0, 64 << 20, (0.25, 0.5), 0.1)
"""About 10 s on an idle 2-core machine."""

QUICK = Budget(host_probes.STORE_SIZES[:-1], 0.2, 0.3, 16 << 20, (0.5,), 0.05)
"""A few seconds: values up to 16 MB, shorter aggregates, one quota."""

WORKER_RECORD_WAIT_S = 10.0
"""How long to wait for the probe workers' records after their run returned."""


class CalibrationError(PlanflowError):
    """Calibration could not run or could not write its result (the message names the fix)."""


@dataclass(frozen=True)
class Calibration:
    """What calibrate measured beside what `local` assumed, and the platform it makes."""

    host: HostFacts
    assumed: Platform
    platform: Platform
    measured: dict[str, float]
    store_sizes: tuple[host_probes.SizeTiming, ...]
    quotas: tuple[host_probes.QuotaBehaviour, ...]
    elapsed_s: float
    machine_key: str
    steps_s: dict[str, float] = field(default_factory=dict)
    written: tuple[str, ...] = ()
    """Where `write_calibration` put the platform file (the cache first)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine_key,
            "host": dataclasses.asdict(self.host),
            "measured": dict(self.measured),
            "store_by_size": [
                {**dataclasses.asdict(t), "get_bps": t.get_bps} for t in self.store_sizes
            ],
            "cpu_quotas": [dataclasses.asdict(q) for q in self.quotas],
            "assumed": self.assumed.to_dict(),
            "platform": self.platform.to_dict(),
            "elapsed_s": self.elapsed_s,
            "steps_s": dict(self.steps_s),
            "written": list(self.written),
        }


Progress = Callable[[str], None]


def calibrate(*, quick: bool = False, progress: Progress | None = None) -> Calibration:
    """Run the probes (module docstring) and return what they measured."""
    from simulator.platform_file import builtin_base

    say = progress or (lambda _message: None)
    budget = QUICK if quick else FULL
    started = time.perf_counter()
    facts = host_facts()
    say(f"host: {facts.describe()}")
    assumed = derive_local(builtin_base("local"), facts)
    steps: dict[str, float] = {}
    clock = time.perf_counter()
    with _store() as url:
        measured, timings = store_figures(url, facts, budget, say)
        steps["store_s"] = _lap(clock)
        clock = time.perf_counter()
        say(f"workers: {PROBE_WORKERS} cold, then {PROBE_WORKERS} warm, on the local pool")
        measured.update(worker_startup(url, assumed))
        steps["workers_s"] = _lap(clock)
    clock = time.perf_counter()
    say("shared memory, fork, CPU quotas")
    measured["shm_bandwidth_bps"] = host_probes.shm_bandwidth(budget.shm_bytes)
    measured["fork_s"] = host_probes.fork_cost()
    quotas = tuple(host_probes.quota_behaviour(c, budget.quota_work_s) for c in budget.quota_cpus)
    steps["host_s"] = _lap(clock)
    platform = calibrated_platform(assumed, measured, facts)
    return Calibration(
        facts,
        assumed,
        platform,
        measured,
        tuple(timings),
        quotas,
        _lap(started),
        machine_identity(facts).key,
        steps,
    )


def store_figures(
    url: str, facts: HostFacts, budget: Budget, say: Progress
) -> tuple[dict[str, float], list[host_probes.SizeTiming]]:
    """One client by value size, then 2 x CPUs clients at once (module docstring, step 2)."""
    sizes = budget.store_sizes
    say(f"store: round trips of {', '.join(_size(n) for n in sizes)} values")
    timings = host_probes.store_by_size(url, sizes, budget.per_size_s)
    latency, bandwidth = host_probes.fit_link(timings)
    clients = max(2, AGGREGATE_CLIENTS_PER_CPU * math.ceil(facts.cpus))
    say(f"store: {clients} clients at once")
    moving = host_probes.store_aggregate(url, clients, budget.aggregate_s, host_probes.MB)
    small = host_probes.store_aggregate(
        url, clients, budget.aggregate_s, host_probes.OP_VALUE_BYTES
    )
    return {
        "storage_latency_s": latency,
        "storage_bandwidth_bps": bandwidth,
        "store_throughput_bps": moving.bytes_per_s,
        "store_server_bps": host_probes.MB / max(moving.server_s_per_request, 1e-9),
        "store_requests_per_s": small.requests_per_s,
        "store_op_s": small.server_s_per_request,
    }, timings


PLATFORM_FIELDS = (
    "cold_start_s",
    "warm_start_s",
    "storage_latency_s",
    "storage_bandwidth_bps",
    "store_throughput_bps",
    "store_op_s",
    "shm_bandwidth_bps",
)
"""Measured figures that replace the assumed ones in the calibrated platform."""


def calibrated_platform(
    assumed: Platform, measured: dict[str, float], facts: HostFacts
) -> Platform:
    """`assumed` with every measured platform field replaced."""
    changes: dict[str, Any] = {k: float(measured[k]) for k in PLATFORM_FIELDS if k in measured}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return dataclasses.replace(
        assumed, **changes, description=f"this machine, calibrated {stamp}: {facts.describe()}"
    )


def worker_startup(url: str, platform: Platform) -> dict[str, float]:
    """Cold and warm start-up and plan download of the local pool's workers (seconds)."""
    from metadata.store import MetricsStore
    from runtime.client import run_plan
    from runtime.local import LocalLauncher

    namespace = f"calibrate{uuid.uuid4().hex[:8]}"
    plan = probe_plan(platform)
    t0 = time.perf_counter()
    launcher = LocalLauncher(url, namespace, keep_warm_s=60.0, shutdown_on_close=True)
    try:
        launcher.ensure_pool()
        pool_s = time.perf_counter() - t0
        runs = [
            run_plan(
                plan, redis_url=url, namespace=namespace, launcher=launcher, timeout_s=120
            ).dag_id
            for _ in range(2)
        ]
        with MetricsStore(url, namespace) as store:
            records = [_records(store, dag_id) for dag_id in runs]
    finally:
        launcher.close()
    cold = [r for r in records[0] if r.cold] or records[0]
    warm = [r for r in records[1] if not r.cold] or records[1]
    return {
        "pool_start_s": pool_s,
        "cold_start_s": statistics.median(r.startup_s + r.plan_download_s for r in cold),
        "warm_start_s": statistics.median(r.startup_s for r in warm),
        "plan_download_s": statistics.median(r.plan_download_s for r in cold),
    }


@task
def probe_noop(i: int) -> int:
    """A task that does nothing: its worker's start-up is all there is to see."""
    return i


@task
def probe_sink(values: list[int]) -> int:
    return len(values)


@workflow(name="calibrate")
def probe_workflow(n: int = PROBE_WORKERS) -> Any:
    return probe_sink([probe_noop(i) for i in range(n)])


def probe_plan(platform: Platform, count: int = PROBE_WORKERS) -> Plan:
    """`count` workers, one no-op task each; the sink on the first (hand-placed: the
    probe must see as many cold starts as it asks for)."""
    from planner.loader import trace_workflow

    graph = trace_workflow(probe_workflow, {"n": str(count)})
    config = platform.configs[
        platform.config_index_at_least(min(1769, platform.configs[-1].memory_mb))
    ]
    owner = {n.id: f"w{i}" if i < count else "w0" for i, n in enumerate(graph.nodes)}
    order: dict[str, list[str]] = {}
    for n in graph.nodes:
        order.setdefault(owner[n.id], []).append(n.id)
    memory, cpus = config.memory_mb, float(config.cpus)
    tasks = {t: TaskPlan(t, memory, cpus, w) for t, w in owner.items()}
    workers = tuple(WorkerPlan(w, memory, cpus, tuple(ts)) for w, ts in order.items())
    return Plan(
        graph,
        "calibrate",
        platform.name,
        tasks,
        workers,
        PlanSummary(0.0, 0.0, 0.0, len(workers), len(workers)),
        platform_spec=platform,
    )


def check_writable(directory: Path) -> None:
    """CalibrationError naming the directory unless files can be written there."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-test-"):
            pass
    except OSError as err:
        raise CalibrationError(
            f"cannot write the calibration to {directory}: {err.strerror or err}; set "
            "PLANFLOW_HOME to a writable directory (or check its permissions)"
        ) from err


def write_calibration(calibration: Calibration, out: Path | None = None) -> list[Path]:
    """Write the calibrated platform to this machine's cache (and to `out`); the paths."""
    text = platform_toml(calibration.platform, header=_header(calibration))
    return write_platform_files(text, calibration_path(machine_identity(calibration.host)), out)


def write_platform_files(text: str, cache: Path, out: Path | None = None) -> list[Path]:
    """Write a platform file's `text` to `cache` (and to `out`), each atomically (a reader
    never sees half a file); the paths."""
    paths = [cache] if out is None else [cache, out]
    for path in paths:
        check_writable(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(text, "utf-8")
            tmp.replace(path)
        except OSError as err:
            raise CalibrationError(f"cannot write {path}: {err.strerror or err}") from err
    return paths


def _header(c: Calibration) -> str:
    m = c.measured
    lines = [
        "planflow calibrate: this machine as the `local` platform "
        "(simulator.host_platform loads it).",
        f"machine {c.machine_key}: {c.host.describe()}; measured in {c.elapsed_s:.1f} s.",
        f"pool start {m.get('pool_start_s', 0.0):.3f} s, plan download "
        f"{m.get('plan_download_s', 0.0) * 1e3:.2f} ms, fork {m.get('fork_s', 0.0) * 1e3:.2f} ms.",
    ]
    lines += [
        f"store, one client, {_size(t.nbytes)}: GET {t.get_s * 1e3:.3f} ms, SET "
        f"{t.set_s * 1e3:.3f} ms"
        for t in c.store_sizes
    ]
    lines += [
        f"CPU quota {q.requested_cpus:g}: got {q.observed_cpus:.2f} CPU ({q.enforcement}), "
        f"an unlimited process {q.unlimited_cpus:.2f}"
        for q in c.quotas
    ]
    return "\n".join(lines)


def _records(store: Any, dag_id: str, workers: int = PROBE_WORKERS) -> list[Any]:
    deadline = time.monotonic() + WORKER_RECORD_WAIT_S
    while True:
        records = store.worker_records(dag_id)
        if len(records) >= workers or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if not records:
        raise CalibrationError(f"the start-up probe run {dag_id} left no worker records")
    return list(records)


class _store:
    """An embedded Redis as `planflow run` starts it, in a temporary data directory."""

    def __enter__(self) -> str:
        from runtime.client import embedded_store

        self._tmp = tempfile.TemporaryDirectory(prefix="planflow-calibrate-")
        self._server = embedded_store(Path(self._tmp.name)).start()
        return self._server.url

    def __exit__(self, *exc: object) -> None:
        try:
            self._server.stop()
        finally:
            self._tmp.cleanup()


def _size(nbytes: int) -> str:
    return f"{nbytes >> 20} MB" if nbytes >= 1 << 20 else f"{nbytes >> 10} KB"


def _lap(since: float) -> float:
    return round(time.perf_counter() - since, 3)
