"""Enforcing a worker's configuration on a local process: CPU quota and memory limit.

Where the machine allows, each worker process gets its own cgroup (v1) per controller, named
`<tag>-<pid>` under a `planflow` group inside this process's own cgroup of that controller (read
from /proc/self/cgroup):

- CPU: `cpu.cfs_quota_us = cpus x cpu.cfs_period_us` (10 ms period), so a 0.5-vCPU worker gets
  5 ms of CPU time per 10 ms, however many cores the machine has (the AWS Lambda model). The
  period is short so that tasks of tens of milliseconds are held to their share too (with the
  kernel's 100 ms default, such a task often finishes inside one period unthrottled, and its
  measured time says little about its configuration);
- memory: `memory.limit_in_bytes = memory_mb MiB`; the kernel's OOM killer ends a worker that
  exceeds it (the pool then reports the worker as failed, naming the limit).

Fallbacks, each logged once per limiter: no writable memory cgroup -> `RLIMIT_AS` of the process
raised by `memory_mb` above its current address-space size (allocations beyond fail with
MemoryError: an approximation, since address space is not resident memory); no writable CPU
cgroup -> CPU is not limited. cgroup v2 has no cpu/memory controller on the machines this was
built on; it is not used.

Groups are removed when their process has exited (`release`).
"""

from __future__ import annotations

import contextlib
import logging
import resource
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_V1_ROOT = Path("/sys/fs/cgroup")
"""Mount point of the cgroup v1 hierarchies (one directory per controller)."""

GROUP_PARENT = "planflow"
"""Directory under the process's own cgroup that holds planflow's per-worker groups."""

CPU_PERIOD_US = 10_000
"""CFS period of worker CPU groups (microseconds)."""

MIN_CPU_QUOTA_US = 1_000
"""Smallest CFS quota the kernel accepts (microseconds): with the 10 ms period, the least CPU
share a worker gets is 0.1 CPU (Lambda's 128 MB, 0.07 vCPU, runs at 0.1 here)."""

MIB = 1 << 20


@dataclass(frozen=True)
class Enforcement:
    """How a configuration was enforced: cpu `cgroup`|`none`, memory `cgroup`|`rlimit`|`none`."""

    cpu: str
    memory: str


def own_cgroup(controller: str, proc_cgroup: str = "/proc/self/cgroup") -> str | None:
    """This process's cgroup v1 path for `controller` ("/" at the root), None if not mounted."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3 and controller in parts[1].split(","):
            return parts[2] or "/"
    return None


class ResourceLimiter:
    """Creates, fills and removes per-process cgroups; falls back as the module says."""

    def __init__(self, tag: str, root: Path = CGROUP_V1_ROOT) -> None:
        self.tag = tag
        self._bases = {c: self._base(root, c) for c in ("cpu", "memory")}
        self._warned: set[str] = set()
        self._groups: dict[int, list[Path]] = {}

    @staticmethod
    def _base(root: Path, controller: str) -> Path | None:
        own = own_cgroup(controller)
        mount = root / controller
        if own is None or not (mount / "cgroup.procs").exists():
            return None
        return mount / own.lstrip("/") / GROUP_PARENT

    @property
    def cpu_available(self) -> bool:
        return self._bases["cpu"] is not None

    def apply(self, pid: int, memory_mb: int, cpus: float) -> Enforcement:
        """Put process `pid` under the limits of (memory_mb, cpus)."""
        quota = max(MIN_CPU_QUOTA_US, int(cpus * CPU_PERIOD_US))
        cpu = "cgroup" if self._group(pid, "cpu", {"cpu.cfs_period_us": CPU_PERIOD_US,
                                                     "cpu.cfs_quota_us": quota}) else "none"
        if cpu == "none":
            self._warn("cpu", "CPU quotas are not enforced (no writable cgroup v1 cpu "
                              "controller); workers may use more CPU than their configuration")
        limit = memory_mb * MIB
        if self._group(pid, "memory", {"memory.limit_in_bytes": limit}):
            with contextlib.suppress(OSError):  # only where swap accounting exists
                self._write(self._groups[pid][-1] / "memory.memsw.limit_in_bytes", limit)
            return Enforcement(cpu, "cgroup")
        if _rlimit_as(pid, limit):
            self._warn("memory", "memory limits use RLIMIT_AS (no writable cgroup v1 memory "
                                 "controller): address space, not resident memory, is capped")
            return Enforcement(cpu, "rlimit")
        self._warn("memory-none", "memory limits are not enforced (no cgroup, no RLIMIT_AS)")
        return Enforcement(cpu, "none")

    def oom_kills(self, pid: int) -> int:
        """How many processes of `pid`'s memory group the OOM killer ended (0 if unknown)."""
        for group in self._groups.get(pid, []):
            path = group / "memory.oom_control"
            if path.exists():
                with contextlib.suppress(OSError, ValueError):
                    for line in path.read_text().splitlines():
                        name, _, value = line.partition(" ")
                        if name == "oom_kill":
                            return int(value)
        return 0

    def release(self, pid: int) -> None:
        """Remove the groups of an exited process (a group with live processes stays)."""
        for group in self._groups.pop(pid, []):
            with contextlib.suppress(OSError):
                group.rmdir()

    def close(self) -> None:
        for pid in list(self._groups):
            self.release(pid)

    def _group(self, pid: int, controller: str, settings: dict[str, int]) -> bool:
        base = self._bases[controller]
        if base is None:
            return False
        group = base / f"{self.tag}-{pid}"
        try:
            group.mkdir(parents=True, exist_ok=True)
            self._groups.setdefault(pid, []).append(group)
            for name, value in settings.items():
                self._write(group / name, value)
            self._write(group / "cgroup.procs", pid)
        except OSError as err:
            log.debug("cgroup %s for pid %d: %s", controller, pid, err)
            with contextlib.suppress(OSError):
                group.rmdir()
            self._bases[controller] = None  # do not retry on every process
            return False
        return True

    @staticmethod
    def _write(path: Path, value: int) -> None:
        with open(path, "w") as f:
            f.write(str(value))

    def _warn(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning(message)


def _rlimit_as(pid: int, limit_bytes: int) -> bool:
    """Cap `pid`'s address space at its current size plus `limit_bytes`."""
    try:
        import psutil

        vms = int(psutil.Process(pid).memory_info().vms)
        resource.prlimit(pid, resource.RLIMIT_AS, (vms + limit_bytes, vms + limit_bytes))
    except Exception as err:  # psutil errors, OSError, ValueError: fall through to "none"
        log.debug("RLIMIT_AS for pid %d: %s", pid, err)
        return False
    return True

