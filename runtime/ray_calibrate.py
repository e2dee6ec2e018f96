"""`planflow calibrate --launcher ray`: measure a Ray cluster and cache it as the `ray` platform.

    calibration = calibrate_ray(address=None, quick=True, progress=print)   # a local instance
    paths = write_ray_calibration(calibration)   # $PLANFLOW_HOME/calibration/ray.toml (+ -o)

Steps, in order (each reports on `progress` before it starts):

1. **cluster**: the alive nodes' CPUs and memory (`ray.nodes()`, the resources Ray schedules
   by). The configurations are 1, 2, .. up to the most CPUs of any node, each with memory in
   proportion: `cpus x` the least memory per CPU of any node (in MB), so a configuration fits
   every node with that many CPUs. `concurrency_limit` is the cluster's CPUs.
2. **store**: one Ray task on a node (no CPU reserved) times round trips to the run's Redis by
   value size (`runtime.host_probes.store_by_size`: 1 KB .. 16 MB, `--quick` to 1 MB), fitted to
   `storage_latency_s` + bytes / `storage_bandwidth_bps`: the node's link, not the client's.
3. **workers**: the ray launcher (`runtime.ray_launcher`, its actor pools kept warm between the
   two runs) runs the probe plan of `runtime.calibrate` twice: `PROBE_WORKERS` workers (no more
   than the cluster's CPUs, so none queues for a CPU) of one no-op task each at the smallest
   configuration of at least one vCPU. Their worker records
   give the cold start (request to running, plus the plan download: `cold_start_s`, the
   records marked cold: a new actor), the warm start (`warm_start_s`, records on a reused
   actor) and the plan download alone.

Without an address (`--ray-address`, else `RAY_ADDRESS`) a local Ray instance is started for the
calibration, as `planflow run --launcher ray` does, and the store is an embedded Redis in a
temporary directory; with one, `redis_url` must name a Redis every node reaches. Everything else
of the platform (prices, keep-warm time) is `simulator/platforms/ray.toml`'s, the assumed figures
the table shows beside the measured ones. `--platform ray` then loads the cached file
(`simulator.platform_file.ray_platform`).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime import host_probes
from runtime.calibrate import (
    FULL,
    PROBE_WORKERS,
    QUICK,
    CalibrationError,
    _records,
    _store,
    probe_plan,
    write_platform_files,
)
from simulator.platform import Platform, ResourceConfig

PROBE_RUNS = 2
"""Runs of the probe plan: the first mostly cold (new actors), the second warm."""

PROBE_TIMEOUT_S = 120.0
"""Deadline of one probe run."""

IDLE_WAIT_S = 10.0
"""Longest wait between probe runs for the first run's actors to be idle again."""

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RayNode:
    """One alive node as Ray schedules it."""

    node_id: str
    address: str
    cpus: float
    memory_mb: int


@dataclass(frozen=True)
class RayCalibration:
    """What calibrate measured on the cluster beside what `ray.toml` assumed."""

    address: str
    nodes: tuple[RayNode, ...]
    assumed: Platform
    platform: Platform
    measured: dict[str, float]
    store_sizes: tuple[host_probes.SizeTiming, ...]
    elapsed_s: float
    steps_s: dict[str, float] = field(default_factory=dict)
    written: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "launcher": "ray",
            "address": self.address,
            "nodes": [dataclasses.asdict(n) for n in self.nodes],
            "measured": dict(self.measured),
            "store_by_size": [
                {**dataclasses.asdict(t), "get_bps": t.get_bps} for t in self.store_sizes
            ],
            "assumed": self.assumed.to_dict(),
            "platform": self.platform.to_dict(),
            "elapsed_s": self.elapsed_s,
            "steps_s": dict(self.steps_s),
            "written": list(self.written),
        }


def calibrate_ray(
    *,
    address: str | None = None,
    redis_url: str | None = None,
    quick: bool = False,
    progress: Progress | None = None,
) -> RayCalibration:
    """Run the probes (module docstring) and return what they measured."""
    say = progress or (lambda _message: None)
    remote = address or os.environ.get("RAY_ADDRESS") or None
    if remote and not redis_url:
        raise CalibrationError(
            f"calibrating the Ray cluster at {remote} needs a Redis every node reaches: pass "
            "--redis redis://HOST:PORT (or set PLANFLOW_REDIS_URL)"
        )
    started = time.perf_counter()
    if redis_url:
        return _calibrate_on(redis_url, remote, quick, say, started)
    with _store() as url:
        return _calibrate_on(url, remote, quick, say, started)


def _calibrate_on(
    url: str, address: str | None, quick: bool, say: Progress, started: float
) -> RayCalibration:
    from runtime.ray_launcher import RayLauncher
    from simulator.platform_file import builtin_base

    assumed = builtin_base("ray")
    say(f"cluster: connecting to {address or 'a local Ray instance'}")
    launcher = RayLauncher(url, f"calibrate{uuid.uuid4().hex[:8]}", address=address,
                           keep_warm_s=assumed.keep_warm_s)
    steps: dict[str, float] = {}
    try:
        nodes = cluster_nodes(launcher.ray)
        say("cluster: " + "; ".join(f"{n.address} {n.cpus:g} CPUs {n.memory_mb} MB"
                                    for n in nodes))
        platform = cluster_platform(assumed, nodes)
        clock = time.perf_counter()
        budget = QUICK if quick else FULL
        sizes = budget.store_sizes[:3] if quick else budget.store_sizes[:4]  # to 1 / 16 MB
        say(f"store: round trips from a node, {len(sizes)} value sizes")
        probe = launcher.ray.remote(num_cpus=0)(host_probes.store_by_size)
        timings = list(launcher.ray.get(probe.remote(url, sizes, budget.per_size_s)))
        latency, bandwidth = host_probes.fit_link(timings)
        measured: dict[str, float] = {
            "storage_latency_s": latency, "storage_bandwidth_bps": bandwidth}
        steps["store_s"] = _lap(clock)
        clock = time.perf_counter()
        say(f"workers: the probe plan ({probe_workers(platform)} workers) twice on pooled actors")
        measured.update(ray_startups(url, launcher, platform))
        steps["workers_s"] = _lap(clock)
        address_text = address or "local instance"
    finally:
        launcher.close()
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    final = dataclasses.replace(
        platform,
        cold_start_s=measured["cold_start_s"],
        warm_start_s=measured["warm_start_s"],
        storage_latency_s=measured["storage_latency_s"],
        storage_bandwidth_bps=measured["storage_bandwidth_bps"],
        description=f"Ray cluster ({address_text}), calibrated {stamp}: {len(nodes)} nodes, "
        f"{platform.concurrency_limit} CPUs",
    )
    return RayCalibration(address_text, tuple(nodes), assumed, final, measured, tuple(timings),
                          _lap(started), steps)


def cluster_nodes(ray: Any) -> list[RayNode]:
    """The alive nodes with at least one CPU, as Ray schedules them."""
    nodes = []
    for n in ray.nodes():
        resources = n.get("Resources", {})
        if n.get("Alive") and resources.get("CPU", 0) >= 1:
            nodes.append(RayNode(str(n.get("NodeID", "")), str(n.get("NodeManagerAddress", "")),
                                 float(resources["CPU"]), int(resources.get("memory", 0)) >> 20))
    if not nodes:
        raise CalibrationError("the Ray cluster has no alive node with a CPU to calibrate")
    return nodes


def cluster_platform(base: Platform, nodes: list[RayNode]) -> Platform:
    """`base` with the configurations the nodes offer (module docstring, step 1)."""
    per_cpu_mb = min(n.memory_mb / n.cpus for n in nodes)
    most = int(max(n.cpus for n in nodes))
    configs = tuple(ResourceConfig(max(1, int(c * per_cpu_mb)), float(c))
                    for c in range(1, most + 1))
    return dataclasses.replace(
        base, configs=configs, concurrency_limit=max(1, int(sum(n.cpus for n in nodes))))


def ray_startups(url: str, launcher: Any, platform: Platform) -> dict[str, float]:
    """Cold and warm start-up and plan download of pooled-actor workers (seconds)."""
    from metadata.store import MetricsStore
    from runtime.client import run_plan

    workers = probe_workers(platform)
    plan = probe_plan(platform, workers)
    runs = []
    for _ in range(PROBE_RUNS):
        runs.append(run_plan(plan, redis_url=url, namespace=launcher.namespace,
                             launcher=launcher, timeout_s=PROBE_TIMEOUT_S).dag_id)
        _until_idle(launcher, workers)  # the next run's workers find their actors idle
    with MetricsStore(url, launcher.namespace) as store:
        records = [r for dag_id in runs for r in _records(store, dag_id, workers)]
    cold = [r for r in records if r.cold]
    warm = [r for r in records if not r.cold]
    if not cold or not warm:
        raise CalibrationError(
            f"the probe runs recorded {len(cold)} cold and {len(warm)} warm starts; both are "
            "needed (was every actor killed between the runs?)")
    return {
        "cold_start_s": statistics.median(r.startup_s + r.plan_download_s for r in cold),
        "warm_start_s": statistics.median(r.startup_s for r in warm),
        "plan_download_s": statistics.median(r.plan_download_s for r in records),
        "cold_workers": float(len(cold)),
        "warm_workers": float(len(warm)),
    }


def _until_idle(launcher: Any, actors: int) -> None:
    """Wait (at most `IDLE_WAIT_S`) until `actors` actors are back in the launcher's pools (a
    run returns when its result is published, a moment before its workers' calls do)."""
    deadline = time.monotonic() + IDLE_WAIT_S
    while launcher.pools.idle_count() < actors and time.monotonic() < deadline:
        time.sleep(0.01)


def probe_workers(platform: Platform) -> int:
    """Workers of the probe plan: `PROBE_WORKERS`, but no more than the cluster runs at once
    (a worker queued for a CPU would count its wait as start-up)."""
    return max(1, min(PROBE_WORKERS, platform.concurrency_limit))


def write_ray_calibration(calibration: RayCalibration, out: Path | None = None) -> list[Path]:
    """Write the calibrated platform where `ray` is loaded from (and to `out`); the paths."""
    from simulator.host_platform import platform_toml
    from simulator.platform_file import ray_calibration_path

    m = calibration.measured
    header = "\n".join([
        "planflow calibrate --launcher ray: this Ray cluster as the `ray` platform "
        "(simulator.platform_file loads it).",
        f"cluster {calibration.address}: " + "; ".join(
            f"{n.address} {n.cpus:g} CPUs {n.memory_mb} MB" for n in calibration.nodes),
        f"measured in {calibration.elapsed_s:.1f} s: plan download "
        f"{m.get('plan_download_s', 0.0) * 1e3:.2f} ms, {m.get('cold_workers', 0):.0f} cold and "
        f"{m.get('warm_workers', 0):.0f} warm probe workers.",
    ])
    return write_platform_files(platform_toml(calibration.platform, header=header),
                                ray_calibration_path(), out)


def _lap(since: float) -> float:
    return round(time.perf_counter() - since, 3)
