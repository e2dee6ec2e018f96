"""Vectorized preparation: everything about a `SimInput` that does not depend on time.

Given the placement, whether an edge is remote, how long each fetch batch and upload takes, and
each worker's task sequence are fixed before the simulation starts. `prepare` computes them with
numpy (O(n + m log m)) and hands the engine plain Python lists, which its scalar loop indexes
faster than numpy arrays.

Remote in-edges are kept in CSR form sorted by (consumer, producer): `rin_ptr[u]..rin_ptr[u+1]`
are task u's remote inputs. Their position in that order is the edge's identity inside the
engine (a pre-load link request's tie-break) and in the timeline graph.

Transfer times follow each value's path (`simulator.store.value_paths`): store-path bytes at
the storage bandwidth, shared-memory bytes at `shm_bandwidth_bps`. With the serial store
(`store_throughput_bps`), `StoreTimes` holds what each transfer needs of the store and of the
worker's link, separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import SimulatorError
from simulator.model import SimInput
from simulator.platform import Platform
from simulator.store import value_paths


@dataclass(frozen=True, eq=False)
class StoreTimes:
    """What each transfer needs with the serial store: service time at the store, the link's
    own bound (latency + store-path bytes / bandwidth) and the shared-memory part after it."""

    fetches: np.ndarray  # bool[n] the task fetches a batch (remote inputs or storage bytes)
    fetch_store_s: np.ndarray  # float[n] op x requests + store-path bytes / throughput
    fetch_link_s: np.ndarray  # float[n] L + store-path bytes / BW
    fetch_shm_s: np.ndarray  # float[n] shared-memory bytes / shm bandwidth
    upload_store_s: np.ndarray  # float[n] op + store-path output bytes / throughput
    upload_link_s: np.ndarray  # float[n] L + store-path output bytes / BW
    upload_shm_s: np.ndarray  # float[n] output bytes / shm bandwidth when it goes through shm
    rin_store_s: np.ndarray  # float[r] op + store-path bytes / throughput of each remote in-edge
    storage_store_s: np.ndarray  # float[n] op + storage bytes / throughput


@dataclass(frozen=True, eq=False)
class Prepared:
    """Time-independent facts of one (input, platform) pair; arrays are numpy, lists are lists."""

    n: int
    w: int
    latency_s: float
    rin_ptr: np.ndarray  # int[n+1] remote in-edges per consumer
    rin_src: np.ndarray  # int[r] producer of each remote in-edge
    rin_xfer_s: np.ndarray  # float[r] transfer of each remote in-edge (store or shm path)
    rin_shm_s: np.ndarray  # float[r] the shared-memory part of it
    rout_ptr: np.ndarray  # int[n+1] remote out-edges per producer
    rout_dst: np.ndarray  # int[r] consumer
    rout_pos: np.ndarray  # int[r] position of that edge in the rin arrays
    fetch_s: np.ndarray  # float[n] fetch batch without pre-load: L + bytes by path, or 0
    storage_xfer_s: np.ndarray  # float[n] storage_bytes / bandwidth
    uploads: np.ndarray  # bool[n] the output is uploaded
    upload_s: np.ndarray  # float[n] L + output by path if uploaded, else 0
    length_s: np.ndarray  # float[n] duration + upload: time from start to done
    task_preload: np.ndarray  # bool[n] the task's worker pre-loads
    worker: np.ndarray  # int[n] worker of each task
    worker_preload: np.ndarray  # bool[w] the worker pre-loads
    wptr: np.ndarray  # int[w+1] worker k runs wtasks[wptr[k]:wptr[k+1]]
    wtasks: np.ndarray  # int[n] tasks grouped by worker, plan order inside a worker
    prev_task: np.ndarray  # int[n] previous task on the same worker, -1 for a first task
    cold_s: np.ndarray  # float[w] cold start of each worker's configuration
    warm_s: np.ndarray  # float[w] warm start of each worker's configuration
    memory_gb: np.ndarray  # float[w] memory of each worker's configuration
    store: StoreTimes | None  # the serial store's figures; None: independent links


def prepare(inp: SimInput, platform: Platform) -> Prepared:
    """Check the input against the platform and precompute the time-independent arrays."""
    n, w = inp.n_tasks, inp.n_workers
    n_configs = len(platform.configs)
    if w and int(inp.worker_config.max()) >= n_configs:
        k = int(np.argmax(inp.worker_config >= n_configs))
        raise SimulatorError(
            f"SimInput.worker_config[{k}] = {inp.worker_config[k]}, but platform "
            f"{platform.name!r} has {n_configs} configurations (0..{n_configs - 1})"
        )
    latency, bandwidth = platform.storage_latency_s, platform.storage_bandwidth_bps
    shm_bw = platform.shm_bandwidth_bps or bandwidth
    paths = value_paths(inp.output_bytes, inp.edge_src, inp.edge_bytes, platform)
    remote = inp.worker[inp.edge_src] != inp.worker[inp.edge_dst]
    src, dst = inp.edge_src[remote], inp.edge_dst[remote]
    store_b, shm_b = paths.store_bytes[remote], paths.shm_bytes[remote]
    by_dst = np.lexsort((src, dst))
    src, dst, store_b, shm_b = src[by_dst], dst[by_dst], store_b[by_dst], shm_b[by_dst]
    rin_ptr = _ptr(dst, n)
    by_src = np.lexsort((dst, src))
    remote_in = np.diff(rin_ptr)
    fetch_store = inp.storage_bytes + np.bincount(dst, weights=store_b, minlength=n)
    fetch_shm = np.bincount(dst, weights=shm_b, minlength=n)
    fetches = (remote_in > 0) | (inp.storage_bytes > 0)
    uploads = np.bincount(src, minlength=n) > 0
    uploads |= ~inp.delayed_io
    uploads[inp.sink] = True
    out_store = np.where(paths.shm_out, 0.0, inp.output_bytes)
    out_shm = np.where(paths.shm_out, inp.output_bytes, 0.0)
    upload_s = np.where(uploads, latency + out_store / bandwidth + out_shm / shm_bw, 0.0)
    wtasks = np.argsort(inp.worker, kind="stable")
    wptr = _ptr(inp.worker[wtasks], w)
    prev_task = np.empty(n, np.int64)
    prev_task[wtasks] = np.concatenate(([-1], wtasks[:-1]))
    prev_task[wtasks[wptr[:-1]]] = -1
    config = inp.worker_config
    return Prepared(
        n=n,
        w=w,
        latency_s=latency,
        rin_ptr=rin_ptr,
        rin_src=src,
        rin_xfer_s=store_b / bandwidth + shm_b / shm_bw,
        rin_shm_s=shm_b / shm_bw,
        rout_ptr=_ptr(src[by_src], n),
        rout_dst=dst[by_src],
        rout_pos=by_src,
        fetch_s=np.where(fetches, latency + fetch_store / bandwidth + fetch_shm / shm_bw, 0.0),
        storage_xfer_s=inp.storage_bytes / bandwidth,
        uploads=uploads,
        upload_s=upload_s,
        length_s=inp.duration_s + upload_s,
        task_preload=inp.worker_preload[inp.worker],
        worker=inp.worker,
        worker_preload=inp.worker_preload,
        wptr=wptr,
        wtasks=wtasks,
        prev_task=prev_task,
        cold_s=platform.cold_start_array[config],
        warm_s=platform.warm_start_array[config],
        memory_gb=platform.memory_gb_array[config],
        store=None
        if platform.store_throughput_bps is None
        else _store_times(
            platform,
            inp,
            fetches,
            uploads,
            remote_in,
            fetch_store,
            fetch_shm,
            out_store,
            out_shm,
            store_b,
        ),
    )


def _store_times(
    platform: Platform,
    inp: SimInput,
    fetches: np.ndarray,
    uploads: np.ndarray,
    remote_in: np.ndarray,
    fetch_store: np.ndarray,
    fetch_shm: np.ndarray,
    out_store: np.ndarray,
    out_shm: np.ndarray,
    rin_store_bytes: np.ndarray,
) -> StoreTimes:
    """The serial store's figures (`StoreTimes`), from the bytes each transfer moves by path."""
    assert platform.store_throughput_bps is not None
    latency, bandwidth = platform.storage_latency_s, platform.storage_bandwidth_bps
    shm_bw = platform.shm_bandwidth_bps or bandwidth
    op, throughput = platform.store_op_s or 0.0, platform.store_throughput_bps
    requests = remote_in + (inp.storage_bytes > 0)
    return StoreTimes(
        fetches=fetches,
        fetch_store_s=np.where(fetches, requests * op + fetch_store / throughput, 0.0),
        fetch_link_s=np.where(fetches, latency + fetch_store / bandwidth, 0.0),
        fetch_shm_s=fetch_shm / shm_bw,
        upload_store_s=np.where(uploads, op + out_store / throughput, 0.0),
        upload_link_s=np.where(uploads, latency + out_store / bandwidth, 0.0),
        upload_shm_s=np.where(uploads, out_shm / shm_bw, 0.0),
        rin_store_s=op + rin_store_bytes / throughput,
        storage_store_s=op + inp.storage_bytes / throughput,
    )


def _ptr(sorted_keys: np.ndarray, size: int) -> np.ndarray:
    """CSR row pointers of keys already sorted ascending, for rows 0..size-1."""
    ptr = np.zeros(size + 1, np.int64)
    np.cumsum(np.bincount(sorted_keys, minlength=size), out=ptr[1:])
    return ptr
