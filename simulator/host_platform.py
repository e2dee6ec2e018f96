"""`local` is this machine: its platform from the cached calibration, else derived from the host.

Loading the built-in `local` (`load_platform("local")`) goes through `local_platform()`:

1. **Calibrated.** `planflow calibrate` (runtime.calibrate) measured this machine and wrote a
   platform file at `calibration_path()`: `$PLANFLOW_HOME/calibration/<machine key>.toml`
   (default home `~/.planflow`, the same data directory as `runtime.defaults`). The machine key
   (`MachineIdentity.key`) hashes the hostname, `/etc/machine-id` when present, the usable CPUs
   and the usable memory, so a cache copied to another machine, or a container given other
   limits, is not used. When the file exists, it *is* `local`.
2. **Derived.** Otherwise the fixed figures of `simulator/platforms/local.toml` (prices,
   start-ups, keep-warm, latency and bandwidth, store defaults, candidate memory sizes) are
   completed from the host (`derive_local`):
   - `host_cpus`: the CPUs this process may use: the CPU affinity mask
     (`os.sched_getaffinity`, else `os.cpu_count()`), capped by a cgroup CPU quota (v2
     `cpu.max`, v1 `cpu.cfs_quota_us / cpu.cfs_period_us`, the tightest along this process's
     cgroup path). A quota of 1.5 CPUs gives 1.5: the host model shares fractions too;
   - `host_memory_mb`: the cgroup memory limit (v2 `memory.max`, v1 `memory.limit_in_bytes`),
     else the physical memory (`sysconf`);
   - `configs`: the candidate sizes up to `host_memory_mb`, CPUs by the Lambda rule capped at
     `host_cpus` (a worker cannot use more CPUs than the host has);
   - `concurrency_limit`: `WORKERS_PER_CPU` per (rounded up) CPU, at least `MIN_CONCURRENCY`,
     and no more workers of the smallest configuration than the memory holds.
   `was_derived()` then says so, for the CLI's one-line note suggesting `planflow calibrate`
   (the library itself prints nothing).

Nothing here imports the runtime: the runtime writes the calibration file (`runtime.calibrate`
through `calibration_path()` and `write_platform_toml`), this module only reads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.platform import Platform, ResourceConfig, lambda_cpus

DATA_DIR_ENV = "PLANFLOW_HOME"
"""planflow's data directory (the same variable and default as `runtime.defaults`)."""

DEFAULT_DATA_DIR_NAME = ".planflow"
"""The data directory under the home directory when PLANFLOW_HOME is unset."""

CALIBRATION_DIR_NAME = "calibration"
"""Calibrated platform files live in `<data dir>/calibration/`, one per machine key."""

WORKERS_PER_CPU = 4
"""Derived concurrency limit per host CPU: enough workers alive to overlap start-ups and I/O
with computation, few enough that they do not crowd the cores (2 CPUs: 8, as before)."""

MIN_CONCURRENCY = 4
"""Derived concurrency limit on the smallest hosts (a quota below one CPU still overlaps I/O)."""

MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))
"""Where a stable machine identity may be found (the first readable one is used)."""

CGROUP_ROOT = Path("/sys/fs/cgroup")
"""Mount point of the cgroup hierarchies (v2 unified, or v1 one directory per controller)."""

UNLIMITED_BYTES = 1 << 60
"""A cgroup v1 memory limit at least this large means "no limit" (the kernel writes ~2^63)."""

_derived = {"seen": False}


@dataclass(frozen=True)
class HostFacts:
    """What this process may use of the machine, and where each figure came from."""

    cpus: float
    memory_mb: int
    affinity_cpus: int
    quota_cpus: float | None
    memory_source: str  # "cgroup" or "physical"

    def describe(self) -> str:
        quota = f", cgroup quota {self.quota_cpus:g}" if self.quota_cpus is not None else ""
        return (
            f"{self.cpus:g} CPUs (affinity {self.affinity_cpus}{quota}), "
            f"{self.memory_mb} MB ({self.memory_source})"
        )


@dataclass(frozen=True)
class MachineIdentity:
    """What identifies this machine for the calibration cache."""

    hostname: str
    machine_id: str
    cpus: float
    memory_mb: int

    @property
    def key(self) -> str:
        """`<hostname>-<12 hex>`: readable, and distinct when any part differs."""
        text = f"{self.hostname}\n{self.machine_id}\n{self.cpus:g}\n{self.memory_mb}"
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.hostname)
        return f"{safe or 'host'}-{digest}"


# -- the host ------------------------------------------------------------------------------


def affinity_cpus() -> int:
    """CPUs this process may be scheduled on."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is not None:
        try:
            return max(1, len(getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def cgroup_cpu_quota(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> float | None:
    """The tightest CPU quota (in CPUs) on this process's cgroup path; None when unlimited."""
    quotas = [q for d in _cgroup_dirs(root, proc_cgroup, "cpu") if (q := _quota_of(d))]
    return min(quotas) if quotas else None


def cgroup_memory_mb(
    root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")
) -> int | None:
    """The tightest memory limit (MB) on this process's cgroup path; None when unlimited."""
    limits = []
    for directory in _cgroup_dirs(root, proc_cgroup, "memory"):
        for name in ("memory.max", "memory.limit_in_bytes"):
            text = _read(directory / name)
            if text and text != "max" and text.isdigit() and int(text) < UNLIMITED_BYTES:
                limits.append(int(text) >> 20)
    return max(1, min(limits)) if limits else None


def physical_memory_mb() -> int:
    """The machine's physical memory in MB (sysconf; 1024 when the system does not say)."""
    try:
        return max(1, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20)
    except (ValueError, OSError, AttributeError):
        return 1024


def host_facts() -> HostFacts:
    """CPUs and memory this process may use (module docstring)."""
    affinity = affinity_cpus()
    quota = cgroup_cpu_quota()
    cgroup_memory = cgroup_memory_mb()
    physical = physical_memory_mb()
    cpus = float(affinity) if quota is None else min(float(affinity), quota)
    if cgroup_memory is not None and cgroup_memory < physical:
        return HostFacts(cpus, cgroup_memory, affinity, quota, "cgroup")
    return HostFacts(cpus, physical, affinity, quota, "physical")


def machine_identity(facts: HostFacts | None = None) -> MachineIdentity:
    facts = facts or host_facts()
    machine_id = next((text for path in MACHINE_ID_FILES if (text := _read(path))), "")
    return MachineIdentity(socket.gethostname(), machine_id, facts.cpus, facts.memory_mb)


# -- the platform --------------------------------------------------------------------------


def data_dir() -> Path:
    """`$PLANFLOW_HOME`, else `~/.planflow`."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / DEFAULT_DATA_DIR_NAME


def calibration_path(identity: MachineIdentity | None = None) -> Path:
    """Where this machine's calibrated `local` platform is cached."""
    identity = identity or machine_identity()
    return data_dir() / CALIBRATION_DIR_NAME / f"{identity.key}.toml"


def derive_local(base: Platform, facts: HostFacts) -> Platform:
    """`base` (local.toml's fixed figures) sized to a host with `facts` (module docstring)."""
    memories = [c.memory_mb for c in base.configs if c.memory_mb <= facts.memory_mb]
    if not memories:
        memories = [facts.memory_mb]
    configs = tuple(ResourceConfig(m, min(lambda_cpus(m), facts.cpus)) for m in memories)
    by_memory = facts.memory_mb // memories[0]
    concurrency = max(MIN_CONCURRENCY, WORKERS_PER_CPU * math.ceil(facts.cpus))
    return dataclasses.replace(
        base,
        configs=configs,
        host_cpus=facts.cpus,
        host_memory_mb=facts.memory_mb,
        concurrency_limit=max(1, min(concurrency, by_memory)),
        description=f"this machine, derived (not calibrated): {facts.describe()}",
    )


def local_platform(base: Platform) -> Platform:
    """This machine: the calibration cached for it, else `derive_local(base, host_facts())`."""
    from simulator.platform_file import load_cached_calibration

    facts = host_facts()
    cached = load_cached_calibration(calibration_path(machine_identity(facts)), "local",
                                     "this machine's calibration", "planflow calibrate")
    if cached is not None:
        return cached
    _derived["seen"] = True
    return derive_local(base, facts)


def was_derived() -> bool:
    """Whether this process loaded `local` without a calibration (for the CLI's note)."""
    return _derived["seen"]


def platform_toml(platform: Platform, header: str = "") -> str:
    """A platform file (simulator.platform_file's format) holding every field of `platform`."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    data = platform.to_dict()
    configs = data.pop("configs")
    for key, value in data.items():
        if value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    items = []
    for c in configs:
        fields = {k: v for k, v in c.items() if v is not None}
        items.append("{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in fields.items()) + " }")
    lines.append("configs = [\n  " + ",\n  ".join(items) + ",\n]")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _cgroup_dirs(root: Path, proc_cgroup: Path, controller: str) -> list[Path]:
    """This process's cgroup directory for `controller` and its ancestors (v2 and v1)."""
    text = _read(proc_cgroup)
    dirs: list[Path] = []
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            mount = root if (root / "cgroup.controllers").exists() else root / "unified"
        elif controller in parts[1].split(","):
            mount = root / parts[1]
        else:
            continue
        path = Path(parts[2].lstrip("/"))
        for ancestor in (path, *path.parents):
            dirs.append(mount / ancestor)
    return [d for d in dirs if d.is_dir()]


def _quota_of(directory: Path) -> float | None:
    text = _read(directory / "cpu.max")
    if text:
        quota, _, period = text.partition(" ")
        if quota != "max" and quota.isdigit() and period.isdigit() and int(period) > 0:
            return int(quota) / int(period)
        return None
    quota_us, period_us = (
        _read(directory / "cpu.cfs_quota_us"),
        _read(directory / "cpu.cfs_period_us"),
    )
    if quota_us and period_us and quota_us.isdigit() and period_us.isdigit() and int(period_us) > 0:
        return int(quota_us) / int(period_us)
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
