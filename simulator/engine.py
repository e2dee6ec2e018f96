"""The discrete-event engine: worker cursors plus one heap for the events that interact.

Constant state (from `simulator.prepare.Prepared`): placement, remote edges, fetch and upload
times, each worker's task sequence.

Changing state:
  * per task: remote inputs not yet available (`unavail`), pre-load downloads not yet done
    (`undownloaded`), the latest availability / download end seen so far, and once computed its
    ready, start, finish and done times;
  * per worker: NEW -> REQUESTED (maybe queued for a slot) -> STARTING -> STARTED (ready) ->
    STOPPED, a cursor (next task in plan order), ready time, the end of its download link's
    last transfer;
  * global: workers alive, the FIFO queue of requests waiting for a slot, idle warm containers
    per configuration (oldest first), the heap.

A worker's cursor computes its tasks' times as soon as their inputs' times are known: those
depend only on values that are already final, so they can run ahead of the heap's clock. Only
three kinds of event need the clock: worker stops (priority 0; they free a slot and a
container), worker requests (1; they take a slot and maybe a warm container) and pre-load link
requests (2; a worker's link serves them FIFO). With shared host CPUs (`simulator.host`) or the
serial store (`simulator.store`) a task's times depend on what else happens at once, so
`simulator.stepped.SteppedEngine` moves each task through its phases with events (execution
starts, priority 3; store requests, 4). Heap entries are `(time, priority, key1, key2)`, all
distinct (see the package docstring). Every computed node (task, worker, download) is appended
to `order`, a topological order of the timeline graph, and every constraint that is not
derivable from the input alone is appended to the dynamic timeline edges.
"""

from __future__ import annotations

import heapq
from collections import deque

import numpy as np

from simulator.errors import SimulatorError
from simulator.host import HostCpus
from simulator.prepare import Prepared
from simulator.store import StoreServer

PRIO_STOP = 0
PRIO_REQUEST = 1
PRIO_LINK = 2
PRIO_EXEC = 3
"""Only with shared host CPUs: a task begins executing (joins the host's CPU sharing)."""
PRIO_STORE = 4
"""Only with the serial store: a task's fetch batch or upload is requested from the store."""

REQUEST_DATA = 0
"""Request key2: the first task's inputs became available (or it is a root)."""
REQUEST_PREWARM = 1
"""Request key2: the pre-warm time came first."""

NEW, REQUESTED, STARTING, STARTED, STOPPED = 0, 1, 2, 3, 4
"""Worker states; STARTING: started (a container taken), start-up under way."""

STORAGE = -1
"""Link request key2 for a pre-loading worker's storage read of a task."""

Event = tuple[float, str, str]


class BeyondHorizon(SimulatorError):
    """The run was stopped at `Engine.horizon`: the sink is not done by then, so the makespan
    exceeds it. Every time an event computes is no earlier than the event itself, so once the
    clock passes the horizon with the sink not computed, its done time will be later still."""


class Engine:
    """One simulation run. `run()` fills the public lists; the caller assembles the result."""

    def __init__(
        self,
        prep: Prepared,
        duration_s: list[float],
        prewarm_at_s: list[float],
        concurrency_limit: int,
        keep_warm_s: float,
        worker_config: list[int],
        record_events: bool,
        horizon_s: float = float("inf"),
    ) -> None:
        self._load_constants(prep, duration_s, worker_config)
        self.horizon = horizon_s
        """Stop (BeyondHorizon) once an event later than this is due and the sink is not done:
        a caller that only wants makespans within it gives up early."""
        self.host: HostCpus | None = None
        """Shared host CPUs (`simulator.stepped.SteppedEngine` sets them)."""
        self.store: StoreServer | None = StoreServer() if prep.store is not None else None
        """The serial store, when the platform has one."""
        self.fetch_eff = self.fetch
        """Each task's fetch time as it happened (stretched by host sharing, queued at the
        store); the stepped engine keeps its own copy."""
        self.limit = concurrency_limit
        self.keep_warm = keep_warm_s
        self.record = record_events
        self._init_tasks(prep)
        self._init_workers(prep.w)
        self.running = 0
        self.queue: deque[int] = deque()
        self.pools: dict[int, deque[float]] = {}
        self.work: deque[int] = deque()
        self.order: list[int] = []
        self.link_time: list[float] = []
        self.link_task: list[int] = []
        self.link_producer: list[int] = []
        self.dyn_src: list[int] = []
        self.dyn_dst: list[int] = []
        self.dyn_w: list[float] = []
        self.events: list[Event] = []
        self.heap: list[tuple[float, int, int, int]] = []
        for k in range(self.w):
            if self.unavail[self.wtasks[self.wptr[k]]] == 0:
                self.heap.append((0.0, PRIO_REQUEST, k, REQUEST_DATA))
            if prewarm_at_s[k] == prewarm_at_s[k]:  # not NaN
                self.heap.append((prewarm_at_s[k], PRIO_REQUEST, k, REQUEST_PREWARM))
        heapq.heapify(self.heap)

    def _load_constants(
        self, prep: Prepared, duration_s: list[float], worker_config: list[int]
    ) -> None:
        """Constant state as plain lists (the scalar loop indexes lists faster than arrays)."""
        self.n, self.w = prep.n, prep.w
        self.latency = prep.latency_s
        self.duration = duration_s
        self.config = worker_config
        self.rin_ptr = prep.rin_ptr.tolist()
        self.rin_src = prep.rin_src.tolist()
        self.rin_xfer = prep.rin_xfer_s.tolist()
        self.rin_shm = prep.rin_shm_s.tolist()
        times = prep.store
        self.rin_store = times.rin_store_s.tolist() if times is not None else []
        self.storage_store = times.storage_store_s.tolist() if times is not None else []
        self.rout_ptr = prep.rout_ptr.tolist()
        self.rout_dst = prep.rout_dst.tolist()
        self.rout_pos = prep.rout_pos.tolist()
        self.fetch = prep.fetch_s.tolist()
        self.storage_xfer = prep.storage_xfer_s.tolist()
        self.upload = prep.upload_s.tolist()
        self.length = prep.length_s.tolist()
        self.uploads = prep.uploads.tolist()
        self.wtasks = prep.wtasks.tolist()
        self.wptr = prep.wptr.tolist()
        self.prev_task = prep.prev_task.tolist()
        self.worker_of = prep.worker.tolist()
        self.worker_preload = prep.worker_preload.tolist()
        self.cold_s = prep.cold_s.tolist()
        self.warm_s = prep.warm_s.tolist()

    def _init_tasks(self, prep: Prepared) -> None:
        n = prep.n
        remote_in = np.diff(prep.rin_ptr)
        self.unavail = remote_in.tolist()
        self.undownloaded = remote_in.tolist()
        self.avail_max = [0.0] * n
        self.download_max = [0.0] * n
        needs_read = prep.task_preload & (prep.storage_xfer_s > 0)
        self.storage_state = needs_read.astype(np.int64).tolist()  # 1 = read not yet requested
        self.ready = [0.0] * n
        self.start = [0.0] * n
        self.finish = [0.0] * n
        self.done = [0.0] * n

    def _init_workers(self, w: int) -> None:
        self.state = [NEW] * w
        self.cursor = self.wptr[:w]
        self.request_at = [0.0] * w
        self.request_kind = [REQUEST_DATA] * w
        self.started_at = [0.0] * w
        self.ready_at = [0.0] * w
        self.stopped_at = [0.0] * w
        self.cold = [True] * w
        self.link_free = [0.0] * w
        self.last_link = [-1] * w
        self.slot_from = [-1] * w
        """The last task of the worker whose stop freed k's concurrency slot, or -1."""
        self.pending: list[list[tuple[float, int, int]]] = [[] for _ in range(w)]

    # -- main loop ------------------------------------------------------------------------
    def run(self) -> None:
        heap, work, advance, horizon = self.heap, self.work, self._advance, self.horizon
        while heap:
            t, prio, a, b = heapq.heappop(heap)
            if t > horizon:
                self._beyond(t)
                horizon = self.horizon
            if prio == PRIO_STOP:
                self._on_stop(t, a)
            elif prio == PRIO_REQUEST:
                self._on_request(t, a, b)
            else:
                self._on_link(t, a, b)
            while work:
                advance(work.popleft())
        self._check_finished()

    def _beyond(self, t: float) -> None:
        """Raise BeyondHorizon unless the sink (task n - 1) is already computed."""
        sink = self.n - 1
        k = self.worker_of[sink]
        if self.cursor[k] <= self.wtasks.index(sink, self.wptr[k], self.wptr[k + 1]):
            raise BeyondHorizon(f"the sink is not done at {t!r} s, after the horizon "
                                f"{self.horizon!r} s")
        self.horizon = float("inf")  # done: the rest of the run is bookkeeping

    def _check_finished(self) -> None:
        blocked = [k for k in range(self.w) if self.state[k] != STOPPED]
        if not blocked:
            return
        k = blocked[0]
        u = self.wtasks[self.cursor[k]]
        queued = [q for q in blocked if self.state[q] == REQUESTED]
        raise SimulatorError(
            f"the concurrency limit ({self.limit}) deadlocks the plan: worker {k} waits at task "
            f"{u} for inputs from workers that cannot start ({len(queued)} queued, e.g. worker "
            f"{queued[0] if queued else '?'}); raise the limit or merge workers"
        )

    # -- workers --------------------------------------------------------------------------
    def _on_request(self, t: float, k: int, kind: int) -> None:
        if self.state[k] != NEW:
            return
        self.state[k] = REQUESTED
        self.request_at[k] = t
        self.request_kind[k] = kind
        if self.record:
            what = "prewarm" if kind == REQUEST_PREWARM else "request"
            self.events.append((t, f"worker {k}", what))
        if self.running < self.limit:
            self._start(t, k)
        else:
            self.queue.append(k)

    def _start(self, t: float, k: int) -> None:
        self._ready(k, t + self._take_container(t, k))

    def _take_container(self, t: float, k: int) -> float:
        """Worker k starts at t (STARTING): a warm container if one is kept, else a cold one;
        returns its start-up seconds."""
        self.running += 1
        pool = self.pools.setdefault(self.config[k], deque())
        while pool and t - pool[0] > self.keep_warm:
            pool.popleft()
        warm = bool(pool)
        if warm:
            pool.popleft()
        self.cold[k] = not warm
        self.started_at[k] = t
        self.state[k] = STARTING
        if self.record:
            self.events.append((t, f"worker {k}", "warm start" if warm else "cold start"))
        return self.warm_s[k] if warm else self.cold_s[k]

    def _ready(self, k: int, ready: float) -> None:
        """Worker k is ready (STARTED): its pre-load requests go out, its cursor runs."""
        self.ready_at[k] = ready
        self.state[k] = STARTED
        self.order.append(self.n + k)
        if self.record:
            self.events.append((ready, f"worker {k}", "ready"))
        last = self.slot_from[k]
        if last >= 0:  # it waited for the slot of the worker whose last task was `last`
            self._edge(last, self.n + k, self.length[last] + ready - self.started_at[k])
        for avail, u, pos in self.pending[k]:
            heapq.heappush(self.heap, (max(avail, ready), PRIO_LINK, u, pos))
        self.pending[k] = []
        self.work.append(k)

    def _on_stop(self, t: float, k: int) -> None:
        self.state[k] = STOPPED
        self.stopped_at[k] = t
        self.running -= 1
        self.pools.setdefault(self.config[k], deque()).append(t)
        if self.record:
            self.events.append((t, f"worker {k}", "stop"))
        if self.queue and self.running < self.limit:
            q = self.queue.popleft()
            self.slot_from[q] = self.wtasks[self.wptr[k + 1] - 1]
            self._start(t, q)

    def _edge(self, src: int, dst: int, weight: float) -> None:
        self.dyn_src.append(src)
        self.dyn_dst.append(dst)
        self.dyn_w.append(weight)

    # -- tasks ----------------------------------------------------------------------------
    def _advance(self, k: int) -> None:
        """Compute k's tasks in plan order until one waits for an input; stop k after its last."""
        if self.worker_preload[k]:
            self._advance_preload(k)
            return
        i, end = self.cursor[k], self.wptr[k + 1]
        if i == end:  # already done: queued twice
            return
        wtasks, unavail, avail_max, fetch = self.wtasks, self.unavail, self.avail_max, self.fetch
        duration, upload, done = self.duration, self.upload, self.done
        prev = self.ready_at[k] if i == self.wptr[k] else done[wtasks[i - 1]]
        while i < end:
            u = wtasks[i]
            if unavail[u]:
                break
            ready = avail_max[u] if avail_max[u] > prev else prev
            start = ready + fetch[u]
            finish = start + duration[u]
            prev = finish + upload[u]
            self._computed(u, ready, start, finish, prev)
            i += 1
        self.cursor[k] = i
        if i == end:
            heapq.heappush(self.heap, (prev, PRIO_STOP, k, 0))

    def _advance_preload(self, k: int) -> None:
        i, end = self.cursor[k], self.wptr[k + 1]
        if i == end:
            return
        wtasks, storage_state = self.wtasks, self.storage_state
        prev = self.ready_at[k] if i == self.wptr[k] else self.done[wtasks[i - 1]]
        while i < end:
            u = wtasks[i]
            if storage_state[u] == 1:
                heapq.heappush(self.heap, (prev, PRIO_LINK, u, STORAGE))
                storage_state[u] = 2
            if storage_state[u] == 2 or self.undownloaded[u]:
                break
            ready = max(prev, self.avail_max[u])
            start = max(prev, self.download_max[u])
            finish = start + self.duration[u]
            prev = finish + self.upload[u]
            self._computed(u, ready, start, finish, prev)
            i += 1
        self.cursor[k] = i
        if i == end:
            heapq.heappush(self.heap, (prev, PRIO_STOP, k, 0))

    def _computed(self, u: int, ready: float, start: float, finish: float, done: float) -> None:
        self.ready[u] = ready
        self.start[u] = start
        self.finish[u] = finish
        self.done[u] = done
        self.order.append(u)
        if self.record:
            name = f"task {u}"
            self.events += [(ready, name, "ready"), (start, name, "start")]
            self.events.append((finish, name, "finish"))
            if self.uploads[u]:
                self.events.append((done, name, "uploaded"))
        if self.rout_ptr[u] != self.rout_ptr[u + 1]:
            self._notify(u, done)

    def _notify(self, u: int, avail: float) -> None:
        """u's output is available at `avail`: tell its consumers on other workers."""
        unavail, avail_max, state = self.unavail, self.avail_max, self.state
        worker_of = self.worker_of
        for j in range(self.rout_ptr[u], self.rout_ptr[u + 1]):
            c = self.rout_dst[j]
            if avail > avail_max[c]:
                avail_max[c] = avail
            unavail[c] -= 1
            k = worker_of[c]
            if self.worker_preload[k]:
                if state[k] >= STARTED:
                    item = (max(avail, self.ready_at[k]), PRIO_LINK, c, self.rout_pos[j])
                    heapq.heappush(self.heap, item)
                else:
                    self.pending[k].append((avail, c, self.rout_pos[j]))
            if unavail[c]:
                continue
            if state[k] == NEW and c == self.wtasks[self.wptr[k]]:
                heapq.heappush(self.heap, (avail_max[c], PRIO_REQUEST, k, REQUEST_DATA))
            elif state[k] == STARTED and c == self.wtasks[self.cursor[k]]:
                self.work.append(k)

    # -- pre-load link --------------------------------------------------------------------
    def _on_link(self, t: float, u: int, pos: int) -> None:
        """A download request of worker(u) at t: FIFO over the worker's link (see docstring)."""
        k = self.worker_of[u]
        storage = pos == STORAGE
        xfer = self.storage_xfer[u] if storage else self.rin_xfer[pos]
        begin = t + self.latency
        if self.link_free[k] > begin:
            begin = self.link_free[k]
        end = begin + xfer
        queued = 0.0  # how much later the store makes it than the link alone
        if self.store is not None:
            shm = 0.0 if storage else self.rin_shm[pos]
            service = self.storage_store[u] if storage else self.rin_store[pos]
            served = self.store.serve(begin, service)
            if served + shm > end:
                queued, end = served + shm - end, served + shm
        self.link_free[k] = end
        node = self.n + self.w + len(self.link_time)
        self.link_time.append(end)
        self.link_task.append(u)
        self.link_producer.append(-1 if storage else self.rin_src[pos])
        self.order.append(node)
        if storage:
            prev = self.prev_task[u]
            src, base = (self.n + k, 0.0) if prev < 0 else (prev, self.length[prev])
            self._edge(src, node, base + self.latency + xfer + queued)
            self.storage_state[u] = 3
        else:
            producer = self.rin_src[pos]
            self._edge(producer, node, self.length[producer] + self.latency + xfer + queued)
            self._edge(self.n + k, node, self.latency + xfer + queued)
            self.undownloaded[u] -= 1
        if self.last_link[k] >= 0:
            self._edge(self.last_link[k], node, xfer + queued)
        self.last_link[k] = node
        self._edge(node, u, 0.0)
        if end > self.download_max[u]:
            self.download_max[u] = end
        if self.record:
            what = "storage" if storage else f"task {self.rin_src[pos]}"
            self.events += [(t, f"task {u}", f"fetch {what}"), (end, f"task {u}", f"got {what}")]
        if self.state[k] == STARTED and self.wtasks[self.cursor[k]] == u:
            self.work.append(k)
