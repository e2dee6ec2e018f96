"""Platform model: resource configurations and the costs the simulator charges.

A `Platform` is an immutable value: the resource configurations a worker can run with (sorted by
memory), prices, start-up times, keep-warm time, transfer latency and bandwidth, the
concurrency limit, and for a platform whose workers share one machine, that machine's CPUs
(`host_cpus`). `load_platform` returns a built-in (`lambda`, a TOML file shipped in
`simulator/platforms/`; `local`, this machine: its cached calibration, else derived from its
CPUs and memory, `simulator.host_platform`) or reads a user TOML file that defines a platform or
extends one (`simulator.platform_file` documents the format).

CPUs follow the AWS Lambda rule unless a configuration overrides them: 1769 MB is one vCPU,
proportional below and above, capped at 6 vCPUs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from simulator.errors import PlatformError

MB_PER_VCPU = 1769
"""Memory (MB) that buys one vCPU on AWS Lambda; CPUs scale linearly with memory."""

MAX_VCPUS = 6.0
"""Most vCPUs a configuration gets from the memory rule (Lambda's 10240 MB limit)."""

MB_PER_GB = 1024
"""Memory billing unit: AWS bills GB-seconds with 1 GB = 1024 MB."""


def lambda_cpus(memory_mb: int) -> float:
    """CPUs a configuration of `memory_mb` gets under the Lambda rule."""
    return min(memory_mb / MB_PER_VCPU, MAX_VCPUS)


@dataclass(frozen=True)
class ResourceConfig:
    """One resource configuration: memory, CPUs, optional start-up times of its own.

    `cpus` left at NaN means "derive from memory" (`lambda_cpus`). `cold_start_s` and
    `warm_start_s` left at None use the platform's values.
    """

    memory_mb: int
    cpus: float = math.nan
    cold_start_s: float | None = None
    warm_start_s: float | None = None

    def __post_init__(self) -> None:
        where = f"configuration {self.memory_mb} MB"
        if isinstance(self.memory_mb, bool) or not isinstance(self.memory_mb, int):
            raise PlatformError(f"{where}: memory_mb must be an integer")
        if self.memory_mb <= 0:
            raise PlatformError(f"{where}: memory_mb must be > 0")
        if math.isnan(self.cpus):
            object.__setattr__(self, "cpus", lambda_cpus(self.memory_mb))
        elif not self.cpus > 0 or math.isinf(self.cpus):
            raise PlatformError(f"{where}: cpus must be a positive number, got {self.cpus}")
        for name in ("cold_start_s", "warm_start_s"):
            value = getattr(self, name)
            if value is not None and not (0 <= value < math.inf):
                raise PlatformError(f"{where}: {name} must be >= 0 seconds, got {value}")

    @property
    def memory_gb(self) -> float:
        return self.memory_mb / MB_PER_GB


_NON_NEGATIVE = (
    "price_per_gb_s",
    "price_per_invocation",
    "cold_start_s",
    "warm_start_s",
    "keep_warm_s",
    "storage_latency_s",
    "billing_granularity_s",
)


@dataclass(frozen=True)
class Platform:
    """Where workers run and what they cost. Times in seconds, bandwidth in bytes/second."""

    name: str
    configs: tuple[ResourceConfig, ...]
    price_per_gb_s: float
    price_per_invocation: float
    cold_start_s: float
    warm_start_s: float
    keep_warm_s: float
    storage_latency_s: float
    storage_bandwidth_bps: float
    concurrency_limit: int
    billing_granularity_s: float = 0.001
    description: str = field(default="", compare=False)
    host_cpus: float | None = None
    """CPUs of the one machine all workers share (`local`); tasks that execute at once share
    them (`simulator.host`). None: every worker has its configuration's CPUs to itself."""
    host_memory_mb: int | None = None
    """Memory of that machine (`local`): what the workers alive at once may hold together."""
    store_throughput_bps: float | None = None
    """Bytes/second the store serves in all, whatever the number of workers moving data at once
    (one Redis thread serves them all). None: every worker's link is independent."""
    store_op_s: float | None = None
    """Store time per request (one Redis command's service time), serialised with the others
    when `store_throughput_bps` is set."""
    shm_bandwidth_bps: float | None = None
    """Bytes/second of the same-host shared-memory path between workers on one machine. None:
    values between workers go through the store."""

    def __post_init__(self) -> None:
        where = f"platform {self.name!r}"
        if not self.configs:
            raise PlatformError(f"{where}: configs is empty; list at least one memory size")
        memories = [c.memory_mb for c in self.configs]
        if len(set(memories)) != len(memories):
            raise PlatformError(f"{where}: configs repeat a memory size: {memories}")
        if memories != sorted(memories):
            object.__setattr__(
                self, "configs", tuple(sorted(self.configs, key=lambda c: c.memory_mb))
            )
        for name in _NON_NEGATIVE:
            value = getattr(self, name)
            if not (0 <= value < math.inf):
                raise PlatformError(f"{where}: {name} must be a number >= 0, got {value}")
        if not (0 < self.storage_bandwidth_bps < math.inf):
            raise PlatformError(
                f"{where}: storage_bandwidth_bps must be > 0 bytes/s, "
                f"got {self.storage_bandwidth_bps}"
            )
        if isinstance(self.concurrency_limit, bool) or not isinstance(self.concurrency_limit, int):
            raise PlatformError(f"{where}: concurrency_limit must be an integer")
        if self.concurrency_limit < 1:
            raise PlatformError(f"{where}: concurrency_limit must be >= 1")
        for name in ("host_cpus", "store_throughput_bps", "shm_bandwidth_bps"):
            value = getattr(self, name)
            if value is not None and not (0 < value < math.inf):
                raise PlatformError(f"{where}: {name} must be a number > 0, got {value}")
        if self.store_op_s is not None and not (0 <= self.store_op_s < math.inf):
            raise PlatformError(f"{where}: store_op_s must be a number >= 0, got {self.store_op_s}")
        if self.host_memory_mb is not None and (
            isinstance(self.host_memory_mb, bool)
            or not isinstance(self.host_memory_mb, int)
            or self.host_memory_mb < 1
        ):
            raise PlatformError(
                f"{where}: host_memory_mb must be an integer >= 1, got {self.host_memory_mb}"
            )

    # -- configurations -------------------------------------------------------------------
    def config_index(self, memory_mb: int) -> int:
        """Index of the configuration with exactly `memory_mb`; PlatformError if none."""
        for i, config in enumerate(self.configs):
            if config.memory_mb == memory_mb:
                return i
        raise PlatformError(
            f"platform {self.name!r} has no {memory_mb} MB configuration; "
            f"choose one of {self.memory_sizes}"
        )

    def config_index_at_least(self, memory_mb: float) -> int:
        """Index of the smallest configuration with at least `memory_mb`; PlatformError if none."""
        for i, config in enumerate(self.configs):
            if config.memory_mb >= memory_mb:
                return i
        raise PlatformError(
            f"platform {self.name!r}: no configuration has {memory_mb} MB "
            f"(largest is {self.configs[-1].memory_mb} MB)"
        )

    @property
    def memory_sizes(self) -> tuple[int, ...]:
        return tuple(c.memory_mb for c in self.configs)

    @cached_property
    def best_config_index(self) -> int:
        """The configuration with the most CPUs; the smallest memory among equals."""
        most = max(c.cpus for c in self.configs)
        return next(i for i, c in enumerate(self.configs) if c.cpus == most)

    # -- start-up and transfer ------------------------------------------------------------
    def cold_start(self, config_index: int) -> float:
        own = self.configs[config_index].cold_start_s
        return self.cold_start_s if own is None else own

    def warm_start(self, config_index: int) -> float:
        own = self.configs[config_index].warm_start_s
        return self.warm_start_s if own is None else own

    def transfer_time(self, nbytes: float) -> float:
        """Seconds to move `nbytes` to or from storage in one request."""
        return self.storage_latency_s + nbytes / self.storage_bandwidth_bps

    @cached_property
    def memory_gb_array(self) -> np.ndarray:
        """Memory of every configuration in GB (billing unit), as float64."""
        return np.array([c.memory_gb for c in self.configs], dtype=np.float64)

    @cached_property
    def cold_start_array(self) -> np.ndarray:
        return np.array([self.cold_start(i) for i in range(len(self.configs))], dtype=np.float64)

    @cached_property
    def warm_start_array(self) -> np.ndarray:
        return np.array([self.warm_start(i) for i in range(len(self.configs))], dtype=np.float64)

    # -- what-if --------------------------------------------------------------------------
    def with_overrides(self, **changes: Any) -> Platform:
        """A copy with some fields changed (validated again), e.g. `cold_start_s=2.0`."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-encodable description (the TOML fields)."""
        data = dataclasses.asdict(self)
        data["configs"] = [dataclasses.asdict(c) for c in self.configs]
        return data


def load_platform(name_or_path: str) -> Platform:
    """A built-in platform by name (`lambda`, `local`) or a platform TOML file by path."""
    from simulator.platform_file import load_platform_source

    return load_platform_source(name_or_path)
