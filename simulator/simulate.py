"""`simulate`: run the engine on one input and assemble the `SimResult`.

The pipeline is visible here: validate against the platform and precompute (`prepare`), run the
event engine (`Engine.run`), build the timeline graph and critical path (`build_timeline`),
optionally compute slack (`task_slack`), then bill the workers (`bill`).

Repeated simulations are answered from a small memo (`EngineMemo`): the engine's run, timeline
and slack depend only on the prepared arrays, durations, pre-warm times, the limit, keep-warm,
which workers share a configuration (warm containers are pooled per configuration) and the
host's demand classes; memory and prices enter only the bill. A planner that tries every
configuration on the same placement (`uniform`), or repeats a simulation whose inputs a pass
left unchanged, gets the same timeline without re-running the engine, then its own bill. The
key is a digest of every one of those inputs, so a hit is exactly the run a miss would make.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from simulator.engine import REQUEST_PREWARM, BeyondHorizon, Engine
from simulator.errors import SimulatorError
from simulator.host import HostCpus
from simulator.model import SimInput
from simulator.platform import Platform
from simulator.prepare import Prepared, prepare
from simulator.result import SimResult, Timeline
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

MEMO_ENTRIES = 4
"""Engine runs the memo keeps (least recently used dropped): about 13 MB each at 100,000 tasks
(1.3 MB at 10,000); a compile's repeats are at most a few runs apart (a 10,000-task tree on
`local`: 4 distinct runs, 18 repeats)."""


@dataclass(frozen=True, eq=False)
class EngineRun:
    """What a finished engine run contributes to a `SimResult`, apart from the bill."""

    ready: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    done: np.ndarray
    request_at: np.ndarray
    request_kind: np.ndarray
    started_at: np.ndarray
    ready_at: np.ndarray
    stopped_at: np.ndarray
    cold: np.ndarray
    timeline: Timeline
    slack: np.ndarray | None
    error: str | None = None
    """The engine's SimulatorError message (a deadlock), re-raised on a hit."""


class EngineMemo:
    """Engine runs by a digest of everything the engine and the timeline read (module
    docstring), at most MEMO_ENTRIES of them."""

    def __init__(self, entries: int = MEMO_ENTRIES) -> None:
        self.entries = entries
        self.runs: OrderedDict[bytes, EngineRun] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> EngineRun | None:
        run = self.runs.get(key)
        if run is None:
            self.misses += 1
            return None
        self.runs.move_to_end(key)
        self.hits += 1
        return run

    def clear(self) -> None:
        """Forget every run (benchmarks: each measurement starts cold)."""
        self.runs.clear()
        self.hits = self.misses = 0

    def put(self, key: bytes, run: EngineRun) -> None:
        self.runs[key] = run
        self.runs.move_to_end(key)
        while len(self.runs) > self.entries:
            self.runs.popitem(last=False)


MEMO = EngineMemo()
"""The process's memo; results are identical with or without it (`simulate(memo=None)`)."""


def simulate(
    inp: SimInput,
    platform: Platform,
    *,
    record_events: bool = False,
    with_slack: bool = True,
    memo: EngineMemo | None = MEMO,
    horizon_s: float = math.inf,
) -> SimResult:
    """Simulate `inp` on `platform` (semantics: the `simulator` package docstring).

    `record_events` fills `SimResult.events` (slower; for tests and debugging). `with_slack=False`
    skips the backward pass and leaves `slack_s` NaN. `memo` answers repeats (module
    docstring); None always runs the engine. With `horizon_s`, a run whose makespan exceeds it
    may stop early and raise `BeyondHorizon` (a SimulatorError); a remembered run is returned
    whole. Before any run, a horizon below a worker's total duration stops it at once
    (`_busy_bound`).
    """
    if horizon_s < math.inf and _busy_bound(inp) > horizon_s:
        raise BeyondHorizon(f"a worker's tasks alone take longer than the horizon {horizon_s!r}")
    prep = prepare(inp, platform)
    host = None if platform.host_cpus is None else _host(inp, platform, platform.host_cpus)
    n = inp.n_tasks
    events: list[tuple[float, str, str]] = []
    key = None if memo is None or record_events else _memo_key(inp, platform, prep, host)
    run = None if key is None or memo is None else memo.get(key)
    if run is None:
        try:
            engine = run_engine(inp, platform, prep, inp.duration_s, record_events, host,
                                horizon_s)
        except BeyondHorizon:
            raise  # an unfinished run: nothing to remember
        except SimulatorError as err:
            if key is not None and memo is not None:
                memo.put(key, _failed_run(str(err)))
            raise
        run = _engine_run(prep, engine, inp.worker, with_slack)
        if record_events:
            events = sorted(engine.events, key=lambda event: event[0])
        if key is not None and memo is not None:
            memo.put(key, run)
    if run.error is not None:
        raise SimulatorError(run.error)
    if with_slack and run.slack is None:
        run = _with_slack(run)
        if key is not None and memo is not None:
            memo.put(key, run)
    slack = run.slack.copy() if with_slack and run.slack is not None else np.full(n, np.nan)
    billed, gb_s, cost = bill(prep, platform, run.started_at, run.stopped_at)
    return SimResult(
        task_ready_s=run.ready.copy(),
        task_start_s=run.start.copy(),
        task_finish_s=run.finish.copy(),
        task_done_s=run.done.copy(),
        task_uploads=prep.uploads,
        worker_request_s=run.request_at.copy(),
        worker_start_s=run.started_at.copy(),
        worker_ready_s=run.ready_at.copy(),
        worker_stop_s=run.stopped_at.copy(),
        worker_cold=run.cold.copy(),
        worker_prewarmed=run.request_kind == REQUEST_PREWARM,
        worker_billed_s=billed,
        makespan_s=float(run.done[n - 1]),
        cost_usd=cost,
        gb_s=gb_s,
        cold_starts=int(run.cold.sum()),
        invocations=inp.n_workers,
        critical_path=tuple(v for v in run.timeline.critical_nodes if v < n),
        slack_s=slack,
        events=tuple(events),
        timeline=run.timeline,
    )


LOWER_BOUND_RTOL = 1e-6
"""`_busy_bound` is shrunk by this much, far more than the rounding of any sum of durations."""


def _busy_bound(inp: SimInput) -> float:
    """A lower bound on the makespan from the input alone: a worker runs its tasks one after
    another, each for at least its duration (host sharing only slows it), and every task is an
    ancestor of the sink; shrunk by LOWER_BOUND_RTOL against float rounding."""
    busy = np.bincount(inp.worker, weights=inp.duration_s, minlength=inp.n_workers)
    return float(busy.max(initial=0.0)) * (1.0 - LOWER_BOUND_RTOL)


def _engine_run(prep: Prepared, engine: Engine, worker: np.ndarray, with_slack: bool
                ) -> EngineRun:
    timeline = build_timeline(prep, engine, worker)
    return EngineRun(
        ready=np.asarray(engine.ready), start=np.asarray(engine.start),
        finish=np.asarray(engine.finish), done=np.asarray(engine.done),
        request_at=np.asarray(engine.request_at), request_kind=np.asarray(engine.request_kind),
        started_at=np.asarray(engine.started_at), ready_at=np.asarray(engine.ready_at),
        stopped_at=np.asarray(engine.stopped_at), cold=np.asarray(engine.cold, bool),
        timeline=timeline, slack=task_slack(timeline) if with_slack else None)


def _with_slack(run: EngineRun) -> EngineRun:
    return dataclasses.replace(run, slack=task_slack(run.timeline))


def _failed_run(message: str) -> EngineRun:
    empty = np.empty(0)
    return EngineRun(empty, empty, empty, empty, empty, empty, empty, empty, empty, empty,
                     None, None, message)  # type: ignore[arg-type]


def _memo_key(inp: SimInput, platform: Platform, prep: Prepared,
              host: tuple[HostCpus, list[int]] | None) -> bytes:
    """A digest of every input of the engine and the timeline (module docstring): not the
    memory or prices (the bill), and of the configurations only which workers share one."""
    digest = hashlib.blake2b(digest_size=32)

    def add(value: object) -> None:
        arr = np.ascontiguousarray(value)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())

    skip = {"memory_gb", "store"}
    for field in dataclasses.fields(prep):
        if field.name not in skip:
            add(getattr(prep, field.name))
    if prep.store is not None:
        for field in dataclasses.fields(prep.store):
            add(getattr(prep.store, field.name))
    add(np.unique(inp.worker_config, return_inverse=True)[1].astype(np.int64))
    add(inp.duration_s)
    add(inp.worker_prewarm_at_s)
    add(np.array([platform.concurrency_limit, platform.keep_warm_s], np.float64))
    if host is not None:
        add(np.array([host[0].capacity, *host[0].demand], np.float64))
        add(np.asarray(host[1], np.int64))
    return digest.digest()


def run_engine(
    inp: SimInput,
    platform: Platform,
    prep: Prepared,
    duration_s: np.ndarray,
    record_events: bool = False,
    host: tuple[HostCpus, list[int]] | bool | None = True,
    horizon_s: float = math.inf,
) -> Engine:
    """Run the event engine with the given durations (the sampler swaps them); `host`: the
    host's sharing from `_host`, None without it, True: derive it here."""
    args = (
        prep,
        duration_s.tolist(),
        inp.worker_prewarm_at_s.tolist(),
        platform.concurrency_limit,
        platform.keep_warm_s,
        inp.worker_config.tolist(),
        record_events,
    )
    shared = host if isinstance(host, tuple) else None
    if host is True and platform.host_cpus is not None:
        shared = _host(inp, platform, platform.host_cpus)
    engine = (Engine(*args, horizon_s) if shared is None and prep.store is None
              else SteppedEngine(*args, shared, horizon_s))
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
