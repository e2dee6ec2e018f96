"""The engine when what runs at once interacts: shared host CPUs and/or the serial store.

`Engine` computes a worker's tasks ahead of the clock because their times depend only on values
already final. With shared host CPUs (`simulator.host`) a task's finish depends on what else
executes meanwhile, and with the serial store (`simulator.store`) a transfer's end depends on
the transfers requested before it; so here every task moves through phases driven by events:

    WAITING --(inputs known)--> FETCHING --(store job served)--> EXECUTING --> UPLOADING --> done
              (no fetch, or pre-loaded: straight to EXECUTING;   (host CPU     (store job;
               without the store, the fetch is host work)        sharing)      none: done)

* FETCHING (store only): a store request at the ready time (priority 4, key2 FETCH), served at
  max(ready + L, store free) for `fetch_store_s`; the fetch ends at the later of that and the
  link's own bound ready + `fetch_link_s`, plus the shared-memory reads (`fetch_shm_s`).
* EXECUTING: with host CPUs an execution-start event (priority 3) adds the task's work to the
  host's sharing and its completion comes from `HostCpus`; without them it takes `duration_s`.
  A worker's start-up is host work as well (an execution start of host job n + k when the
  worker starts; it is ready at that job's completion).
  The work is the execution only when the store is modelled (moving data is the store's work),
  else fetch (unless pre-loaded) + execution + upload, as without the store.
* UPLOADING (store only, tasks that upload): the shared-memory write (`upload_shm_s`), then a
  store request (key2 UPLOAD) served for `upload_store_s`, bounded below by the link
  (`upload_link_s`).

Each task's fetch and length (start to done) as they happened go to `fetch_eff` and `length`,
so the timeline holds the sharing and the store's queueing fixed.
"""

from __future__ import annotations

import heapq
from enum import IntEnum

from simulator.engine import (
    PRIO_EXEC,
    PRIO_LINK,
    PRIO_REQUEST,
    PRIO_STOP,
    PRIO_STORE,
    STORAGE,
    Engine,
)
from simulator.host import NOTHING, HostCpus
from simulator.prepare import Prepared


class Phase(IntEnum):
    """Where a task is in its life (module docstring)."""

    WAITING = 0
    FETCHING = 1
    EXECUTING = 2
    UPLOADING = 3


FETCH = 0
"""Store request key2: a task's fetch batch."""
UPLOAD = 1
"""Store request key2: a task's upload."""


class SteppedEngine(Engine):
    """`Engine` with tasks moved by events through their phases (module docstring)."""

    def __init__(
        self,
        prep: Prepared,
        duration_s: list[float],
        prewarm_at_s: list[float],
        concurrency_limit: int,
        keep_warm_s: float,
        worker_config: list[int],
        record_events: bool,
        host: tuple[HostCpus, list[int]] | None,
        horizon_s: float = float("inf"),
    ) -> None:
        super().__init__(
            prep,
            duration_s,
            prewarm_at_s,
            concurrency_limit,
            keep_warm_s,
            worker_config,
            record_events,
            horizon_s,
        )
        self.host = host[0] if host is not None else None
        self.host_class: list[int] = host[1] if host is not None else []
        self.host_work = [0.0] * (prep.n + prep.w)
        """Seconds of host CPU work of each task (module docstring, EXECUTING), then of each
        worker's start-up (host job n + k)."""
        self.fetch_eff = list(self.fetch)
        self.phase = [Phase.WAITING] * prep.n
        self.clock = 0.0
        """Time of the event being processed."""
        times = prep.store
        if times is not None:
            self.fetches = times.fetches.tolist()
            self.fetch_store = times.fetch_store_s.tolist()
            self.fetch_link = times.fetch_link_s.tolist()
            self.fetch_shm = times.fetch_shm_s.tolist()
            self.upload_store = times.upload_store_s.tolist()
            self.upload_link = times.upload_link_s.tolist()
            self.upload_shm = times.upload_shm_s.tolist()

    def run(self) -> None:
        """Host completions come first among events at the same time (they free CPU share
        before anything else happens then)."""
        heap, work, step, host = self.heap, self.work, self._step, self.host
        while True:
            # the host caches its next completion until a start or completion changes it
            t_done, u, config = NOTHING if host is None else host.next or host.next_completion()
            if heap and heap[0][0] < t_done:
                t, prio, a, b = heapq.heappop(heap)
                if t > self.horizon:
                    self._beyond(t)
                self.clock = t
                if prio == PRIO_STORE:
                    self._on_store(t, a, b)
                elif prio == PRIO_EXEC:
                    assert host is not None
                    host.start(t, a, self.host_class[a], self.host_work[a])
                elif prio == PRIO_STOP:
                    self._on_stop(t, a)
                elif prio == PRIO_REQUEST:
                    self._on_request(t, a, b)
                else:
                    self._on_link(t, a, b)
            elif u >= 0:
                assert host is not None
                if t_done > self.horizon:
                    self._beyond(t_done)
                self.clock = t_done
                host.complete(t_done, config)
                if u < self.n:
                    self._executed(u, t_done)
                else:
                    self._ready(u - self.n, t_done)
            else:
                break
            while work:
                step(work.popleft())
        self._check_finished()

    def _start(self, t: float, k: int) -> None:
        """With host CPUs a worker's start-up is host work (job n + k); it is ready when done."""
        if self.host is None:
            super()._start(t, k)
            return
        job = self.n + k
        self.host_work[job] = self._take_container(t, k)
        self._begin_host_job(t, job)

    def _begin_host_job(self, t: float, job: int) -> None:
        """`job` joins the host's sharing at t: an execution-start event, or at once when t is
        the time being processed and no host completion is due then (the heap would pop the
        event next among what touches the host; starts at one time commute)."""
        host = self.host
        assert host is not None
        if t == self.clock and (host.next or host.next_completion())[0] > t:
            host.start(t, job, self.host_class[job], self.host_work[job])
        else:
            heapq.heappush(self.heap, (t, PRIO_EXEC, job, 0))

    def _step(self, k: int) -> None:
        """Worker k's next task leaves WAITING once its inputs (or pre-loads) are in."""
        i, end = self.cursor[k], self.wptr[k + 1]
        if i == end:
            return
        u = self.wtasks[i]
        if self.phase[u] != Phase.WAITING:
            return
        prev = self.ready_at[k] if i == self.wptr[k] else self.done[self.wtasks[i - 1]]
        store = self.store is not None
        if self.worker_preload[k]:
            if self.storage_state[u] == 1:
                heapq.heappush(self.heap, (prev, PRIO_LINK, u, STORAGE))
                self.storage_state[u] = 2
            if self.storage_state[u] == 2 or self.undownloaded[u]:
                return
            self.ready[u] = max(prev, self.avail_max[u])
            upload = 0.0 if store else self.upload[u]
            self._execute(u, max(prev, self.download_max[u]), self.duration[u] + upload)
            return
        if self.unavail[u]:
            return
        ready = self.ready[u] = max(prev, self.avail_max[u])
        if not store:  # the fetch, shared like the rest, is host work; start known at the end
            self._execute(u, ready, self.fetch[u] + self.duration[u] + self.upload[u])
        elif self.fetches[u]:
            self.phase[u] = Phase.FETCHING
            heapq.heappush(self.heap, (ready, PRIO_STORE, u, FETCH))
        else:
            self._execute(u, ready, self.duration[u])

    def _execute(self, u: int, begin: float, work: float) -> None:
        """Task u's host work begins at `begin` (its start, or its ready time when the fetch is
        part of it)."""
        self.start[u] = begin
        self.phase[u] = Phase.EXECUTING
        if self.host is not None:
            self.host_work[u] = work
            self._begin_host_job(begin, u)
        else:
            self._executed(u, begin + work)

    def _executed(self, u: int, t: float) -> None:
        """Task u's host work is done at t."""
        if self.store is None:
            self._stretched(u, t)
            return
        self.finish[u] = t
        if self.uploads[u]:
            self.phase[u] = Phase.UPLOADING
            heapq.heappush(self.heap, (t + self.upload_shm[u], PRIO_STORE, u, UPLOAD))
        else:
            self._task_done(u, t)

    def _stretched(self, u: int, done: float) -> None:
        """Without the store: u's host work (fetch unless pre-loaded, execution, upload) is done
        at `done`; each part took its share of the stretched time."""
        preload = self.worker_preload[self.worker_of[u]]
        began = self.start[u]  # the ready time, unless pre-loaded (then the start)
        work = self.host_work[u]
        stretch = (done - began) / work if work > 0 else 1.0
        if not preload:
            self.fetch_eff[u] = self.fetch[u] * stretch
        start = self.start[u] = began + (0.0 if preload else self.fetch_eff[u])
        self.finish[u] = min(start + self.duration[u] * stretch, done)
        self._task_done(u, done)

    def _on_store(self, t: float, u: int, kind: int) -> None:
        """A store request of task u at t (its fetch batch at its ready time, or its upload)."""
        assert self.store is not None
        if kind == FETCH:
            end = self.store.serve(t + self.latency, self.fetch_store[u])
            bound = t + self.fetch_link[u]
            start = (end if end > bound else bound) + self.fetch_shm[u]
            self.fetch_eff[u] = start - self.ready[u]
            self._execute(u, start, self.duration[u])
        else:
            end = self.store.serve(t + self.latency, self.upload_store[u])
            bound = t + self.upload_link[u]
            self._task_done(u, end if end > bound else bound)

    def _task_done(self, u: int, done: float) -> None:
        k = self.worker_of[u]
        start = self.start[u]
        self.length[u] = done - start  # the timeline's weight: as it happened
        self._computed(u, self.ready[u], start, self.finish[u], done)
        self.cursor[k] += 1
        if self.cursor[k] == self.wptr[k + 1]:
            heapq.heappush(self.heap, (done, PRIO_STOP, k, 0))
        else:
            self.work.append(k)
