"""Building the timeline graph, and the two linear-time passes over it.

Static edges (known from the input, built with numpy): remote data edges into tasks of workers
that do not pre-load, plan-order edges (previous task or worker start -> task), and data edges
into a worker whose request came from its first task's inputs. Dynamic edges (concurrency slots,
pre-load downloads) come from the engine. Edges are grouped by destination in that priority, so
when two constraints bind equally the critical path follows a data edge first.

* Critical path: every node's value is the max over its in-edges (or its base), so some in-edge
  is tight; walking tight in-edges back from the sink gives a longest path. O(N + E).
* Slack: latest value lat[v] = min over out-edges (lat[dst] - weight), with lat[sink] =
  value[sink], in reverse topological order. Task slack = lat - start. O(N + E), a Python loop
  over plain lists (about 0.2 us per edge).
"""

from __future__ import annotations

import math

import numpy as np

from simulator.engine import REQUEST_DATA, Engine
from simulator.errors import SimulatorError
from simulator.prepare import Prepared
from simulator.result import Timeline

TIGHT_RTOL = 1e-9
"""An edge binds when it is within TIGHT_RTOL x max(1 s, makespan) of its destination's value."""


def build_timeline(prep: Prepared, engine: Engine, worker: np.ndarray) -> Timeline:
    """The timeline graph of a finished engine run, with its critical path."""
    n, w = prep.n, prep.w
    start = np.asarray(engine.start)
    ready_at, started_at = np.asarray(engine.ready_at), np.asarray(engine.started_at)
    node_time = np.concatenate((start, ready_at, np.asarray(engine.link_time, np.float64)))
    src, dst, weight = _static_edges(prep, engine, worker, ready_at - started_at)
    src = np.concatenate((src, np.asarray(engine.dyn_src, np.int64)))
    dst = np.concatenate((dst, np.asarray(engine.dyn_dst, np.int64)))
    weight = np.concatenate((weight, np.asarray(engine.dyn_w, np.float64)))
    node_base = np.full(node_time.shape[0], -math.inf)
    first = prep.wtasks[prep.wptr[:-1]]
    from_constant = (np.asarray(engine.request_kind) != REQUEST_DATA) | (
        np.diff(prep.rin_ptr)[first] == 0
    )
    node_base[n : n + w] = np.where(
        from_constant, np.asarray(engine.request_at) + ready_at - started_at, -math.inf
    )
    length = np.asarray(engine.length, np.float64)  # durations as executed (host sharing)
    makespan = float(start[n - 1] + length[n - 1])
    critical = _critical_nodes(node_time, node_base, src, dst, weight, n - 1, makespan)
    return Timeline(
        n_tasks=n,
        n_workers=w,
        node_time=node_time,
        node_base=node_base,
        edge_src=src,
        edge_dst=dst,
        edge_weight=weight,
        order=np.asarray(engine.order, np.int64),
        download_task=np.asarray(engine.link_task, np.int64),
        download_producer=np.asarray(engine.link_producer, np.int64),
        sink_length_s=float(length[n - 1]),
        critical_nodes=critical,
    )


def _static_edges(
    prep: Prepared, engine: Engine, worker: np.ndarray, start_up: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = prep.n
    length, preload = np.asarray(engine.length, np.float64), prep.task_preload
    fetch = np.where(preload, 0.0, engine.fetch_eff)  # as it happened (host, store)
    rin_dst = np.repeat(np.arange(n), np.diff(prep.rin_ptr))
    data = ~preload[rin_dst]
    data_src, data_dst = prep.rin_src[data], rin_dst[data]
    first = prep.wtasks[prep.wptr[:-1]]
    k_of = worker[rin_dst]
    by_data = np.asarray(engine.request_kind)[k_of] == REQUEST_DATA
    into_worker = (rin_dst == first[k_of]) & by_data
    wsrc, wk = prep.rin_src[into_worker], k_of[into_worker]
    prev = prep.prev_task
    has_prev = prev >= 0
    order_src = np.where(has_prev, prev, n + worker)
    order_w = np.where(has_prev, length[np.maximum(prev, 0)], 0.0) + fetch
    src = np.concatenate((data_src, wsrc, order_src))
    dst = np.concatenate((data_dst, n + wk, np.arange(n)))
    weight = np.concatenate(
        (length[data_src] + fetch[data_dst], length[wsrc] + start_up[wk], order_w)
    )
    return src, dst, weight


def _in_csr(dst: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(perm, ptr): edges perm[ptr[v]:ptr[v+1]] end at v, in their original relative order."""
    perm = np.argsort(dst, kind="stable")
    ptr = np.zeros(n_nodes + 1, np.int64)
    np.cumsum(np.bincount(dst, minlength=n_nodes), out=ptr[1:])
    return perm, ptr


def _critical_nodes(
    time: np.ndarray,
    base: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    sink: int,
    makespan: float,
) -> tuple[int, ...]:
    tol = TIGHT_RTOL * max(1.0, makespan)
    tight = np.flatnonzero(time[src] + weight >= time[dst] - tol)
    tight = tight[np.argsort(dst[tight], kind="stable")]
    tight_dst = dst[tight]
    first = np.ones(tight.shape[0], bool)
    first[1:] = tight_dst[1:] != tight_dst[:-1]
    pred = np.full(time.shape[0], -1, np.int64)
    pred[tight_dst[first]] = src[tight[first]]
    pred_list = pred.tolist()
    nodes = [sink]
    v = pred_list[sink]
    while v >= 0:
        nodes.append(v)
        v = pred_list[v]
    nodes.reverse()
    if base[nodes[0]] < time[nodes[0]] - tol:
        raise SimulatorError(f"internal: timeline node {nodes[0]} has no binding constraint")
    return tuple(nodes)


def task_slack(timeline: Timeline) -> np.ndarray:
    """float[n]: how much later each task could start (or longer run) without a later sink."""
    time, n = timeline.node_time, timeline.n_tasks
    perm, ptr = _in_csr(timeline.edge_dst, time.shape[0])
    src = timeline.edge_src[perm].tolist()
    weight = timeline.edge_weight[perm].tolist()
    ptr_list = ptr.tolist()
    latest = [math.inf] * time.shape[0]
    latest[n - 1] = float(time[n - 1])
    for v in reversed(timeline.order.tolist()):
        lv = latest[v]
        for j in range(ptr_list[v], ptr_list[v + 1]):
            s = src[j]
            x = lv - weight[j]
            if x < latest[s]:
                latest[s] = x
    slack = np.asarray(latest[:n]) - time[:n]
    tol = TIGHT_RTOL * max(1.0, float(time[n - 1]) + timeline.sink_length_s)
    return np.where(slack > tol, slack, 0.0)
