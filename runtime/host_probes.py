"""Short measurements of this machine that `planflow calibrate` (runtime.calibrate) combines.

Each probe returns plain figures (seconds, bytes/second) and takes well under a few seconds:

* `store_by_size(url, sizes)`: one client's SET and GET round trips per value size on the
  store at `url`; `fit_link` turns them into a per-request latency and a bandwidth
  (least squares of time = latency + bytes / bandwidth over the GETs);
* `store_aggregate(url, clients, ...)`: `clients` processes (forked) moving values at once for
  a fixed time: the bytes/second the one Redis thread serves them in all, the requests/second,
  and the CPU time of Redis's main thread per request (INFO cpu): with small values, that is
  the service time of one request (`store_op_s`) however busy the clients keep themselves;
* `shm_bandwidth(nbytes)`: write then read one value through `runtime.shm` (tmpfs), as a worker
  hands a value to another on the same host;
* `fork_cost()`: `os.fork` + `_exit` + `waitpid` of this process;
* `quota_behaviour(cpus)`: a child spinning under a cgroup CPU quota of `cpus` (runtime.limits)
  for a while: the share of one CPU it got, whether the quota was enforced at all, and the
  share an unlimited child got just before (so that other load is not taken for the quota).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metadata.connect import sync_client
from runtime.errors import StoreError

KB = 1 << 10
MB = 1 << 20

STORE_SIZES = (KB, 64 * KB, MB, 16 * MB, 100 * MB)
"""Value sizes of the store probe (1 KB .. 100 MB)."""

STORE_BUDGET_S = 0.6
"""Time the store probe spends on one value size (at least one round trip, at most
`STORE_MAX_REPEATS`)."""

STORE_MAX_REPEATS = 200
"""Most round trips per value size."""

AGGREGATE_VALUE_BYTES = MB
"""Value size each client moves in the aggregate bandwidth probe."""

OP_VALUE_BYTES = 16
"""Value size of the per-request probe (small: the request, not the bytes, costs)."""

QUOTA_WORK_S = 0.1
"""CPU seconds a child spins for in `quota_behaviour` (its wall time is what is measured)."""

QUOTA_WALL_CAP_S = 5.0
"""A spinning child stops after this wall time whatever CPU it got (a starved machine)."""


CLIENT_WAIT_S = 30.0
"""How long the aggregate probe waits for its clients to start, and beyond its duration for
them to report."""

QUOTA_MEMORY_MB = 256
"""Memory limit of the spinning child (it allocates nothing; the limit only has to be valid)."""


@dataclass(frozen=True)
class SizeTiming:
    """Median SET and GET round trip of one value size, one client."""

    nbytes: int
    set_s: float
    get_s: float
    repeats: int

    @property
    def get_bps(self) -> float:
        return self.nbytes / self.get_s if self.get_s > 0 else float("inf")


@dataclass(frozen=True)
class Aggregate:
    """What `clients` processes got from the store at once, and what it cost the server: the
    CPU seconds of Redis's main thread (the one that serves every request) per request."""

    clients: int
    bytes_per_s: float
    requests_per_s: float
    server_s_per_request: float


@dataclass(frozen=True)
class QuotaBehaviour:
    """A CPU-bound child under a quota of `requested_cpus`: the CPU share it got, and the share
    an unlimited child got just before (below 1 when other load holds the cores)."""

    requested_cpus: float
    observed_cpus: float
    unlimited_cpus: float
    enforcement: str  # "cgroup" or "none" (runtime.limits)


def store_by_size(
    url: str, sizes: tuple[int, ...] = STORE_SIZES, budget_s: float = STORE_BUDGET_S
) -> list[SizeTiming]:
    """SET and GET round trips of one value per size (module docstring)."""
    client = sync_client(url)
    key = f"planflow:calibrate:{uuid.uuid4().hex}"
    out = []
    try:
        for nbytes in sizes:
            value = os.urandom(KB) * (nbytes // KB) + os.urandom(nbytes % KB)
            sets: list[float] = []
            gets: list[float] = []
            deadline = time.perf_counter() + budget_s
            while len(gets) < STORE_MAX_REPEATS and (not gets or time.perf_counter() < deadline):
                t0 = time.perf_counter()
                client.set(key, value)
                t1 = time.perf_counter()
                got = client.get(key)
                t2 = time.perf_counter()
                assert got is not None and len(got) == nbytes
                sets.append(t1 - t0)
                gets.append(t2 - t1)
            out.append(
                SizeTiming(nbytes, statistics.median(sets), statistics.median(gets), len(gets))
            )
    finally:
        client.delete(key)
        client.close()
    return out


def fit_link(timings: list[SizeTiming]) -> tuple[float, float]:
    """(latency s, bandwidth bytes/s) of time = latency + bytes / bandwidth, least squares over
    the GETs; the latency is at least 0 and the bandwidth that of the largest value at worst."""
    xs = [float(t.nbytes) for t in timings]
    ys = [t.get_s for t in timings]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = (
        sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
        if sxx > 0
        else 0.0
    )
    largest = max(timings, key=lambda t: t.nbytes)
    bandwidth = 1.0 / slope if slope > 0 else largest.get_bps
    smallest = min(timings, key=lambda t: t.nbytes)
    latency = max(0.0, min(smallest.get_s, mean_y - slope * mean_x))
    return latency or smallest.get_s, bandwidth


def store_aggregate(url: str, clients: int, duration_s: float, value_bytes: int) -> Aggregate:
    """`clients` forked processes SET and GET `value_bytes` values for `duration_s` at once."""
    ctx = multiprocessing.get_context("fork")
    start = ctx.Barrier(clients + 1)
    results: Any = ctx.Queue()
    procs = [
        ctx.Process(target=_mover, args=(url, value_bytes, duration_s, start, results), daemon=True)
        for _ in range(clients)
    ]
    for p in procs:
        p.start()
    server = sync_client(url)
    try:
        start.wait(timeout=CLIENT_WAIT_S)
        t0, cpu0 = time.perf_counter(), _server_cpu_s(server)
        outcomes = [results.get(timeout=duration_s + CLIENT_WAIT_S) for _ in procs]
        elapsed, cpu = time.perf_counter() - t0, _server_cpu_s(server) - cpu0
    except (queue.Empty, threading.BrokenBarrierError) as err:
        raise StoreError(
            f"the store probe's {clients} clients did not start or report within "
            f"{CLIENT_WAIT_S:.0f} s (is the machine overloaded?)"
        ) from err
    finally:
        server.close()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    failed = [what for ok, what in outcomes if not ok]
    if failed:
        raise StoreError(f"a store probe client failed: {failed[0]}")
    requests = max(1, sum(int(done) for _, done in outcomes))
    return Aggregate(clients, requests * value_bytes / elapsed, requests / elapsed, cpu / requests)


def _server_cpu_s(client: Any) -> float:
    """CPU seconds Redis's main thread has used (INFO cpu; the whole server before 6.0)."""
    info = client.info("cpu")
    if "used_cpu_user_main_thread" in info:
        return float(info["used_cpu_user_main_thread"] + info["used_cpu_sys_main_thread"])
    return float(info["used_cpu_user"] + info["used_cpu_sys"])


def _mover(url: str, value_bytes: int, duration_s: float, start: Any, results: Any) -> None:
    client = sync_client(url)
    key = f"planflow:calibrate:{uuid.uuid4().hex}"
    value = os.urandom(value_bytes)
    done = 0
    try:
        start.wait(timeout=CLIENT_WAIT_S)
        deadline = time.perf_counter() + duration_s
        while time.perf_counter() < deadline:
            client.set(key, value)
            client.get(key)
            done += 2
        client.delete(key)
        results.put((True, done))
    except Exception as err:  # reported to the parent, which raises it
        results.put((False, f"{type(err).__name__}: {err}"))
    finally:
        client.close()


def shm_bandwidth(nbytes: int, repeats: int = 3) -> float:
    """Bytes/second of writing a value to shared memory and reading it back (runtime.shm)."""
    import numpy as np

    from runtime import shm

    value = np.ones(nbytes // 8)
    best = float("inf")
    base = shm.root()
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="calibrate-", dir=base) as tmp:
        for i in range(repeats):
            t0 = time.perf_counter()
            ref = shm.write(Path(tmp), f"probe-{i}", shm.pickle_shared(value))
            back = shm.read(ref)
            total = float(back.sum())  # touch every page, as a task using the value does
            best = min(best, time.perf_counter() - t0)
            assert total == nbytes // 8
            del back
    return value.nbytes / best


def fork_cost(repeats: int = 20) -> float:
    """Median seconds of fork + child exit + wait."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def quota_behaviour(cpus: float, work_s: float = QUOTA_WORK_S) -> QuotaBehaviour:
    """The CPU share a spinning child gets under a quota of `cpus` (runtime.limits), beside
    the share an unlimited one gets just before (what other load on the machine leaves)."""
    from runtime.limits import ResourceLimiter

    limiter = ResourceLimiter(f"calibrate{os.getpid()}")
    try:
        unlimited, _ = _spin(work_s, None)
        observed, enforcement = _spin(
            work_s, lambda pid: limiter.apply(pid, QUOTA_MEMORY_MB, cpus).cpu
        )
    finally:
        limiter.close()
    return QuotaBehaviour(cpus, observed, unlimited, enforcement)


def _spin(work_s: float, limit: Callable[[int], str] | None) -> tuple[float, str]:
    """CPU seconds per wall second of a child spinning until it has used `work_s` of CPU,
    started once `limit` (given its pid) has put it under its limits; and what `limit`
    returned."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child waits until its limits are in place, then spins
        os.close(write_fd)
        os.read(read_fd, 1)
        cap = time.monotonic() + QUOTA_WALL_CAP_S
        while time.process_time() < work_s and time.monotonic() < cap:
            pass
        os._exit(0)
    os.close(read_fd)
    try:
        enforcement = limit(pid) if limit is not None else "none"
        os.write(write_fd, b"x")
        t0 = time.monotonic()
        _, _, usage = os.wait4(pid, 0)
        wall = time.monotonic() - t0
    finally:
        os.close(write_fd)
    used = usage.ru_utime + usage.ru_stime
    return (used / wall if wall > 0 else 0.0), enforcement
