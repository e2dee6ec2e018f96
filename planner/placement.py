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
  this is not a set of paths: a lane takes any tasks, and runs them in plan order. Among lanes
  where a task would finish equally early it stays on the lane of its largest input.
* `capped`: another placement's workers packed onto at most k workers, for a shared host where
  more workers than can run at once only take turns. Each original worker (a chain) goes, in
  order of its estimated start, to the packed worker that is free first (its tasks' total
  duration keeps it busy); like `lanes`, a packed worker runs its tasks in plan order.

Workers are numbered densely in the order of their first task.
"""

from __future__ import annotations

import heapq

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
    parents: list[list[tuple[int, float, float]]] = [[] for _ in range(n)]
    for s, d, lg, b in zip(pred.edge_src.tolist(), pred.edge_dst.tolist(), lag.tolist(),
                           pred.edge_bytes.tolist(), strict=True):
        parents[d].append((s, lg, b))
    free = [0.0] * k
    finish = [0.0] * n
    lane = [0] * n
    for i in sorted(range(n), key=lambda t: (-tail[t], t)):
        here, remote, home = _arrivals(parents[i], lane, finish)
        # the largest input's lane first: the strict `<` below keeps it on ties
        order = [home, *(j for j in range(k) if j != home)] if home >= 0 else range(k)
        best, best_end = 0, float("inf")
        for j in order:
            other = remote[1][1] if remote[0][0] == j else remote[0][1]
            end = max(free[j], here.get(j, 0.0), other) + dur[i]
            if end < best_end:
                best, best_end = j, end
        lane[i], finish[i] = best, best_end
        free[best] = best_end
    return dense_workers(np.asarray(lane, np.int64))


def _arrivals(parents: list[tuple[int, float, float]], lane: list[int], finish: list[float]
              ) -> tuple[dict[int, float], list[tuple[int, float]], int]:
    """For one task: per lane the latest finish of its parents there (inputs on the lane
    itself arrive without lag); the two lanes whose parents arrive latest elsewhere, as (lane,
    arrival with lag), padded with (-1, 0); and the lane of its largest input (-1: none)."""
    here: dict[int, float] = {}
    away: dict[int, float] = {}
    home, most = -1, -1.0
    for p, lg, b in parents:
        j = lane[p]
        here[j] = max(here.get(j, 0.0), finish[p])
        away[j] = max(away.get(j, 0.0), finish[p] + lg)
        if b > most:
            home, most = j, b
    top = sorted(away.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
    top += [(-1, 0.0)] * (2 - len(top))
    return here, top, home


def capped(pred: Predictions, config: np.ndarray, lag: np.ndarray, worker: np.ndarray,
           k: int) -> np.ndarray:
    """`worker` packed onto at most `k` workers (module docstring)."""
    n = pred.n_tasks
    count = int(worker.max()) + 1 if n else 0
    if count <= k:
        return worker
    finish, _ = static_times(pred, config, lag)
    dur = pred.duration_s[np.arange(n), config]
    busy = np.bincount(worker, weights=dur, minlength=count)
    first = np.full(count, n, np.int64)
    np.minimum.at(first, worker, np.arange(n))
    start = np.asarray(finish)[first] - dur[first]
    free = [(0.0, j) for j in range(k)]
    packed = np.empty(count, np.int64)
    for w in sorted(range(count), key=lambda c: (start[c], c)):
        at, j = heapq.heappop(free)
        packed[w] = j
        heapq.heappush(free, (max(at, float(start[w])) + float(busy[w]), j))
    return dense_workers(packed[worker])


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
