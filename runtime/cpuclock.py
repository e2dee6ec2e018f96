"""How much of a task's wall time the host took away: CPU contention, measured per task.

On `local`, workers share the machine's cores. A task that waited for a core while other
workers ran took longer than its configuration alone explains, and a predictor trained on that
wall time would expect the crowd on every future run (matmul's `multiply`: 0.05 s alone, 0.6 s
recorded with 27 running at once on 2 cores). So each attempt also records

- `cpu_s`: time the task's thread spent on a CPU (`/proc/thread-self/schedstat`, field 1; the
  process's CPU time where that file is missing) - the thread's own, not the data-plane
  thread's, which may be uploading earlier outputs meanwhile;
- `contention_s`: time the task's thread was runnable but not running because another process
  had the core - the thread's run delay (`/proc/thread-self/schedstat`, field 2) minus the time
  its CPU quota throttled it (`throttled_time` of the worker's cgroup `cpu.stat`), since the
  kernel counts quota throttling as run delay too, and that part belongs to the configuration.

`TaskRecord.isolated_s` turns them into the duration the attempt would have had with the host to
itself. Where the files are missing (not Linux, no cgroup) the figures are None / 0 and the wall
time is taken as it is. The files stay open and are re-read with `pread`; a read builds a plain
tuple and calls nothing it does not need: ~1.2 us here (it was ~2.6 us; best of 5 x 20,000
reads), and a task reads twice.
"""

from __future__ import annotations

import contextlib
import os
import time

from runtime.limits import CGROUP_V1_ROOT, own_cgroup

SCHEDSTAT = "/proc/thread-self/schedstat"
"""Per-thread scheduler statistics: `<on-cpu ns> <run delay ns> <timeslices>`."""


Reading = tuple[float, float, float]
"""Cumulative counters at one instant, in seconds: (on-CPU, run delay, cgroup throttled).
A plain tuple: one is built twice per task."""


class CpuClock:
    """Reads the counters of the calling thread and its process's CPU cgroup. Open it on the
    thread that runs tasks (the schedstat file names the thread that opened it)."""

    def __init__(self) -> None:
        self._sched = _open(SCHEDSTAT)
        group = own_cgroup("cpu")
        self._cpu_stat = _open(str(CGROUP_V1_ROOT / "cpu" / group.lstrip("/") / "cpu.stat")) \
            if group not in (None, "/") and self._sched is not None else None

    def read(self) -> Reading:
        if self._sched is None:
            return time.process_time(), 0.0, 0.0
        try:
            fields = os.pread(self._sched, 64, 0).split()
            cpu, delay = int(fields[0]) / 1e9, int(fields[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return time.process_time(), 0.0, 0.0
        return cpu, delay, self._throttled() if self._cpu_stat is not None else 0.0

    def _throttled(self) -> float:
        """`throttled_time` of the cgroup's cpu.stat, in seconds (0 when unreadable)."""
        try:
            raw = os.pread(self._cpu_stat, 1024, 0)  # type: ignore[arg-type]
            at = raw.index(b"throttled_time ") + len(b"throttled_time ")
            return int(raw[at:raw.index(b"\n", at)]) / 1e9
        except (OSError, ValueError):
            return 0.0

    @property
    def measures_contention(self) -> bool:
        return self._sched is not None

    def between(self, start: Reading, end: Reading) -> tuple[float, float | None]:
        """(contention_s, cpu_s) of the interval; contention 0 where it cannot be measured."""
        contention = (end[1] - start[1]) - (end[2] - start[2])
        return (max(contention, 0.0) if self.measures_contention else 0.0,
                max(end[0] - start[0], 0.0))

    def close(self) -> None:
        for fd in (self._sched, self._cpu_stat):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._sched = self._cpu_stat = None


def _open(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None
