"""`simulate`: run the engine on one input and assemble the `SimResult`.

The pipeline is visible here: validate against the platform and precompute (`prepare`), run the
event engine (`Engine.run`), build the timeline graph and critical path (`build_timeline`),
optionally compute slack (`task_slack`), then bill the workers (`bill`).
"""

from __future__ import annotations

import math

import numpy as np

from simulator.engine import REQUEST_PREWARM, Engine
from simulator.host import HostCpus
from simulator.model import SimInput
from simulator.platform import Platform
from simulator.prepare import Prepared, prepare
from simulator.result import SimResult
from simulator.stepped import SteppedEngine
from simulator.timeline import build_timeline, task_slack

DEMAND_DECIMALS = 2
"""CPU demands are grouped into classes to this many decimals (0.01 CPU): the host's cost per
event grows with the number of classes, and learned demands vary continuously."""

START_UP_CPUS = 1.0
"""CPUs a worker's start-up keeps busy on a shared host (a process start, imports, the plan
download: one thread), at most its configuration's."""

BILLING_EPSILON = 1e-9
"""Relative slack when rounding billed time up, so 0.3000000000004 s bills as 0.300 s."""


def simulate(
    inp: SimInput,
    platform: Platform,
    *,
    record_events: bool = False,
    with_slack: bool = True,
) -> SimResult:
    """Simulate `inp` on `platform` (semantics: the `simulator` package docstring).

    `record_events` fills `SimResult.events` (slower; for tests and debugging). `with_slack=False`
    skips the backward pass and leaves `slack_s` NaN.
    """
    prep = prepare(inp, platform)
    engine = run_engine(inp, platform, prep, inp.duration_s, record_events)
    timeline = build_timeline(prep, engine, inp.worker)
    n = inp.n_tasks
    slack = task_slack(timeline) if with_slack else np.full(n, np.nan)
    started, stopped = np.asarray(engine.started_at), np.asarray(engine.stopped_at)
    billed, gb_s, cost = bill(prep, platform, started, stopped)
    cold = np.asarray(engine.cold, bool)
    events = sorted(engine.events, key=lambda event: event[0]) if record_events else []
    return SimResult(
        task_ready_s=np.asarray(engine.ready),
        task_start_s=np.asarray(engine.start),
        task_finish_s=np.asarray(engine.finish),
        task_done_s=np.asarray(engine.done),
        task_uploads=prep.uploads,
        worker_request_s=np.asarray(engine.request_at),
        worker_start_s=started,
        worker_ready_s=np.asarray(engine.ready_at),
        worker_stop_s=stopped,
        worker_cold=cold,
        worker_prewarmed=np.asarray(engine.request_kind) == REQUEST_PREWARM,
        worker_billed_s=billed,
        makespan_s=float(engine.done[n - 1]),
        cost_usd=cost,
        gb_s=gb_s,
        cold_starts=int(cold.sum()),
        invocations=inp.n_workers,
        critical_path=tuple(v for v in timeline.critical_nodes if v < n),
        slack_s=slack,
        events=tuple(events),
        timeline=timeline,
    )


def run_engine(
    inp: SimInput,
    platform: Platform,
    prep: Prepared,
    duration_s: np.ndarray,
    record_events: bool = False,
) -> Engine:
    """Run the event engine with the given durations (the sampler swaps them)."""
    args = (
        prep,
        duration_s.tolist(),
        inp.worker_prewarm_at_s.tolist(),
        platform.concurrency_limit,
        platform.keep_warm_s,
        inp.worker_config.tolist(),
        record_events,
    )
    host = None if platform.host_cpus is None else _host(inp, platform, platform.host_cpus)
    engine = Engine(*args) if host is None and prep.store is None else SteppedEngine(*args, host)
    engine.run()
    return engine


def bill(
    prep: Prepared, platform: Platform, started: np.ndarray, stopped: np.ndarray
) -> tuple[np.ndarray, float, float]:
    """(billed seconds per worker, GB-seconds, cost USD): one invocation per worker."""
    billed = stopped - started
    granularity = platform.billing_granularity_s
    if granularity > 0:
        billed = np.ceil(billed / granularity * (1 - BILLING_EPSILON)) * granularity
    gb_s = float(np.dot(prep.memory_gb, billed))
    cost = gb_s * platform.price_per_gb_s + prep.w * platform.price_per_invocation
    return billed, gb_s, cost if math.isfinite(cost) else math.inf


def _host(inp: SimInput, platform: Platform, capacity: float) -> tuple[HostCpus, list[int]]:
    """The host's CPU sharing and the demand class of each task, then of each worker's start-up
    (jobs n..n+w-1); jobs of equal demand share a class, demands rounded to DEMAND_DECIMALS."""
    cpus = np.array([c.cpus for c in platform.configs], np.float64)
    by_config = cpus[inp.worker_config[inp.worker]]
    demand = by_config if inp.cpu_demand is None else inp.cpu_demand
    start_up = np.minimum(cpus[inp.worker_config], START_UP_CPUS)
    rounded = np.maximum(np.round(np.concatenate((demand, start_up)), DEMAND_DECIMALS),
                         10.0**-DEMAND_DECIMALS)
    classes, job_class = np.unique(rounded, return_inverse=True)
    return HostCpus(capacity, classes.tolist()), job_class.tolist()
