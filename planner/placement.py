"""Placement: which worker runs which task.

A worker runs a *path* of the DAG: after a task it continues with at most one of that task's
children, and a task continues the worker of at most one of its parents. Every placement here
picks a set of such continuation edges; the chains they form are the workers.

* `singletons`: one worker per task (clustering off).
* `cluster` (planned placement): continuation edges are chosen greedily, most critical first.
  An edge's criticality is the length of the longest path through it in a placement-free
  estimate at the best configurations, where every edge pays an upload and a download of its
  bytes. So a 1->1 chain stays on one worker; at a fan-out the parent's worker continues with
  the child on the longest path; at a fan-in the consumer runs where its most critical input is,
  which is where the largest input is when transfers dominate. Ties: larger edge bytes, then
  lower consumer index, then lower producer index.
* `wait_free`: a placement without its continuations into tasks that have several parents,
  so no worker waits for another one while it holds a concurrency slot.
* `wukong`: WUKONG's rule. A task becomes ready on the worker of its last-finishing parent
  (earliest-finish estimate; ties: higher parent index); that worker continues with the first
  (lowest index) child it made ready and starts new workers for the others.
* `lanes`: at most k workers for the whole run, for one machine whose k CPUs all workers
  share (a platform with `host_cpus`). More workers than CPUs only take turns on them, each
  paying its start-up; k lanes keep every CPU busy with one worker each. List scheduling: tasks
  by decreasing upward rank (the `tail` of `static_times`, which puts parents first), each to
  the lane where it would finish first, an edge between lanes paying its lag. Unlike the others
  this is not a set of paths: a lane takes any tasks, and runs them in plan order.

Workers are numbered densely in the order of their first task.
"""

from __future__ import annotations

import numpy as np

from planner.assignment import dense_workers
from planner.predict import Predictions


def singletons(n_tasks: int) -> np.ndarray:
    """One worker per task."""
    return np.arange(n_tasks, dtype=np.int64)


def static_times(pred: Predictions, config: np.ndarray, lag: np.ndarray
                 ) -> tuple[list[float], list[float]]:
    """(earliest finish, tail) of every task with each task at `config[i]` and every edge
    costing `lag[e]`: tail[i] = the longest path from i's start to the sink's end."""
    n = pred.n_tasks
    dur = pred.duration_s[np.arange(n), config].tolist()
    src, dst, lags = pred.edge_src.tolist(), pred.edge_dst.tolist(), lag.tolist()
    ready = [0.0] * n
    finish = [0.0] * n
    by_dst = sorted(range(len(src)), key=dst.__getitem__)
    e = 0
    for i in range(n):
        while e < len(by_dst) and dst[by_dst[e]] == i:
            k = by_dst[e]
            ready[i] = max(ready[i], finish[src[k]] + lags[k])
            e += 1
        finish[i] = ready[i] + dur[i]
    tail = list(dur)
    after = [0.0] * n
    for k in sorted(range(len(src)), key=src.__getitem__, reverse=True):
        after[src[k]] = max(after[src[k]], lags[k] + tail[dst[k]])
        tail[src[k]] = dur[src[k]] + after[src[k]]
    return finish, tail


def edge_lag(pred: Predictions, latency_s: float, bandwidth_bps: float) -> np.ndarray:
    """Upload plus download of every edge's bytes, as if producer and consumer were apart."""
    return np.asarray(2.0 * (latency_s + pred.edge_bytes / bandwidth_bps), np.float64)


def cluster(pred: Predictions, config: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """Planned placement (module docstring): critical continuation edges first."""
    finish, tail = static_times(pred, config, lag)
    src, dst = pred.edge_src.tolist(), pred.edge_dst.tolist()
    through = [finish[s] + lg + tail[d] for s, d, lg in zip(src, dst, lag.tolist(), strict=True)]
    nbytes = pred.edge_bytes.tolist()
    order = sorted(range(len(src)), key=lambda k: (-through[k], -nbytes[k], dst[k], src[k]))
    return _chains(pred.n_tasks, [(src[k], dst[k]) for k in order])


def wukong(pred: Predictions, config: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """WUKONG placement (module docstring)."""
    finish, _ = static_times(pred, config, lag)
    releaser: dict[int, int] = {}
    for s, d in zip(pred.edge_src.tolist(), pred.edge_dst.tolist(), strict=True):
        r = releaser.get(d)
        if r is None or (finish[s], s) > (finish[r], r):
            releaser[d] = s
    edges = sorted((p, c) for c, p in releaser.items())  # lowest child first per parent
    return _chains(pred.n_tasks, edges)


def lanes(pred: Predictions, config: np.ndarray, lag: np.ndarray, k: int) -> np.ndarray:
    """At most `k` workers by list scheduling (module docstring)."""
    n = pred.n_tasks
    dur = pred.duration_s[np.arange(n), config].tolist()
    _, tail = static_times(pred, config, lag)
    parents: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for s, d, lg in zip(pred.edge_src.tolist(), pred.edge_dst.tolist(), lag.tolist(),
                        strict=True):
        parents[d].append((s, lg))
    free = [0.0] * k
    finish = [0.0] * n
    lane = [0] * n
    for i in sorted(range(n), key=lambda t: (-tail[t], t)):
        best, best_end = 0, float("inf")
        for j in range(k):
            start = max([free[j], *(finish[p] + (lg if lane[p] != j else 0.0)
                                    for p, lg in parents[i])])
            if start + dur[i] < best_end:
                best, best_end = j, start + dur[i]
        lane[i], finish[i] = best, best_end
        free[best] = best_end
    return dense_workers(np.asarray(lane, np.int64))


def wait_free(pred: Predictions, worker: np.ndarray) -> np.ndarray:
    """`worker` without continuations into tasks with several parents (module docstring)."""
    n = pred.n_tasks
    parents = np.bincount(pred.edge_dst, minlength=n)
    local = worker[pred.edge_src] == worker[pred.edge_dst]
    keep = local & (parents[pred.edge_dst] == 1)
    return _chains(n, list(zip(pred.edge_src[keep].tolist(), pred.edge_dst[keep].tolist(),
                               strict=True)))


def _chains(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    """Accept continuation edges in the given order while each task keeps at most one
    continuation parent and one continuation child; the resulting paths are the workers."""
    nxt = [-1] * n
    has_prev = [False] * n
    for p, c in edges:
        if nxt[p] < 0 and not has_prev[c]:
            nxt[p] = c
            has_prev[c] = True
    worker = [-1] * n
    count = 0
    for i in range(n):
        if has_prev[i]:
            continue
        j = i
        while j >= 0:
            worker[j] = count
            j = nxt[j]
        count += 1
    return dense_workers(np.asarray(worker, np.int64))
