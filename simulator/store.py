"""The store as one serial server, and the path each value takes (store or shared memory).

One Redis thread serves every worker of a run. With `Platform.store_throughput_bps` set, the
store is a single server: a transfer (a fetch batch, an upload, a pre-load download) that reaches
it at time a begins at max(a, end of the store's previous job) and occupies it for
`store_op_s` x requests + store-path bytes / store_throughput_bps. Jobs are served in the order
the engine pops their requests from its heap: by request time, ties by the heap key.

Paths (`value_paths`): on a platform with `shm_bandwidth_bps` (workers on one host), a task's
output of at least `SHM_MIN_BYTES` goes through shared memory as the runtime sends it
(`runtime.values.ValueCodec.encode`): the producer writes the file (bytes / shm_bandwidth_bps)
and stores a reference (one store request, no bytes); a consumer fetches the reference (one
request) and reads the file (bytes / shm_bandwidth_bps). Smaller values, storage reads, and every
value on platforms without `shm_bandwidth_bps`, go through the store with their bytes. The run's
bound on shared memory (`run_plan(shm_max_bytes=...)`, past which values spill to Redis) is not
modelled: the model assumes it is not reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.platform import Platform

SHM_MIN_BYTES = 256 * 1024
"""Values at least this large (pickled) go through shared memory between workers of one host:
the runtime's rule (`runtime.shm.SHM_MIN_BYTES`; tests/simulator/test_store.py checks they
agree)."""


@dataclass(frozen=True, eq=False)
class ValuePaths:
    """Per task: whether its output goes through shared memory; per edge, its bytes by path."""

    shm_out: np.ndarray  # bool[n] the output is written to shared memory (a reference to Redis)
    store_bytes: np.ndarray  # float[m] bytes an edge moves through the store (0 on shm edges)
    shm_bytes: np.ndarray  # float[m] bytes an edge moves through shared memory


def value_paths(
    output_bytes: np.ndarray, edge_src: np.ndarray, edge_bytes: np.ndarray, platform: Platform
) -> ValuePaths:
    """Which path every output and edge takes on `platform` (module docstring)."""
    if platform.shm_bandwidth_bps is None:
        shm_out = np.zeros(output_bytes.shape[0], bool)
    else:
        shm_out = output_bytes >= SHM_MIN_BYTES
    on_shm = shm_out[edge_src]
    return ValuePaths(
        shm_out=shm_out,
        store_bytes=np.where(on_shm, 0.0, edge_bytes),
        shm_bytes=np.where(on_shm, edge_bytes, 0.0),
    )


class StoreServer:
    """The one store: jobs served one at a time in the order they are offered."""

    __slots__ = ("free",)

    def __init__(self) -> None:
        self.free = 0.0
        """When the store's last job ends."""

    def serve(self, arrive: float, service_s: float) -> float:
        """A job reaching the store at `arrive` needing `service_s`: its end."""
        begin = arrive if arrive > self.free else self.free
        self.free = begin + service_s
        return self.free
