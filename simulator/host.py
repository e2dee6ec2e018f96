"""Shared host CPUs: tasks that execute at once share `Platform.host_cpus` (processor sharing).

A platform whose workers are processes on one machine (`local`) has more CPU quota on offer
than cores: every worker gets its configuration's CPUs as a cgroup quota, but the quotas of the
workers running at once can add up to more than the host has. The kernel then shares the cores
among the runnable processes, each capped by its quota (CFS: equal weights, so a max-min fair
share). This module models that for the host work of tasks (the engine gives each task's work:
its fetch, execution and upload, since moving data on one machine is CPU work too):

* an executing task demands d = min(its CPU demand, host_cpus): the CPUs it keeps busy, given
  per task (`SimInput.cpu_demand`: a single-threaded task on a 2-CPU worker keeps one busy),
  else its worker's configuration CPUs;
* when the demands of the executing tasks add up to at most host_cpus, each runs at full speed;
* otherwise the host's CPUs are water-filled: in increasing order of demand, a task gets its
  demand if that is at most an equal share of what is left, else every remaining task gets the
  equal share. A task that gets s CPUs of its demand d progresses at rate s / d: its
  `duration_s` (the time it takes alone at its configuration) is work done at rate 1.

Tasks of one demand always progress at one rate, so tasks are grouped into demand *classes* (the
engine numbers the distinct demands); each class keeps a *virtual clock* (its progress since the
start) and a heap of its tasks' virtual finish times (virtual clock at start + duration). The
next completion is the earliest heap top over classes, converted to real time by that class's
rate. Rates (and so the next completion, cached until then) change only when a task starts or
completes. Cost per start or completion: O(log n + c) for c classes; while the demands fit the
host, O(log n + active classes).

Ties are explicit: among completions at the same real time, the lowest job index first (within
a class, the heap's (virtual finish, job index) order). The engine numbers tasks 0..n-1 and
worker start-ups n..n+w-1 (a start-up is host work too).
"""

from __future__ import annotations

import heapq
import math

NOTHING = (math.inf, -1, -1)
"""`next_completion` when no task executes: (time, task, class)."""

TOTAL_RTOL = 1e-12
"""The running sum of demands is compared with the capacity within this relative tolerance
(it is kept incrementally, so it may carry rounding of the order of 1e-16 per event)."""


class HostCpus:
    """Processor sharing of `capacity` CPUs among executing tasks, grouped by demand class
    (`demand[c]`: the CPUs each task of class c keeps busy)."""

    def __init__(self, capacity: float, demand: list[float]) -> None:
        self.capacity = capacity
        self.demand = [min(d, capacity) for d in demand]  # per class
        c = len(demand)
        self.count = [0] * c
        self.vclock = [0.0] * c
        self.rate = [1.0] * c
        self.heaps: list[list[tuple[float, int]]] = [[] for _ in range(c)]
        self.now = 0.0
        self.by_demand = sorted(range(c), key=lambda i: (self.demand[i], i))
        self.active: set[int] = set()
        """Classes with executing tasks."""
        self.tasks = 0
        """Executing tasks."""
        self.total = 0.0
        """Sum of the executing tasks' demands (kept incrementally; exact 0 when idle)."""
        self.full_speed = True
        """Every rate is 1 (demands fit the capacity)."""
        self.next: tuple[float, int, int] | None = NOTHING
        """The next completion until a start or completion changes it; None: recompute."""

    def start(self, t: float, task: int, config: int, work_s: float) -> None:
        """Task `task` of demand class `config` begins `work_s` seconds of work at `t`."""
        self._advance(t)
        heapq.heappush(self.heaps[config], (self.vclock[config] + work_s, task))
        self.count[config] += 1
        self.tasks += 1
        self.active.add(config)
        self.total += self.demand[config]
        self._rates()

    def next_completion(self) -> tuple[float, int, int]:
        """(real time, task, configuration) of the next completion; NOTHING when idle."""
        best = self.next
        if best is not None:
            return best
        now, vclock, rate, heaps = self.now, self.vclock, self.rate, self.heaps
        best_t, best_task, best_c = math.inf, -1, -1
        for c in self.active:
            vfinish, task = heaps[c][0]
            left = vfinish - vclock[c]
            t = now + left / rate[c] if left > 0 else now
            if t < best_t or (t == best_t and task < best_task):
                best_t, best_task, best_c = t, task, c
        best = self.next = (best_t, best_task, best_c)
        return best

    def complete(self, t: float, config: int) -> None:
        """The task at the top of `config`'s heap completes at `t` (from `next_completion`)."""
        self._advance(t)
        heapq.heappop(self.heaps[config])
        self.count[config] -= 1
        self.tasks -= 1
        if not self.count[config]:
            self.active.discard(config)
        self.total = self.total - self.demand[config] if self.active else 0.0
        self._rates()

    def _advance(self, t: float) -> None:
        dt = t - self.now
        if dt > 0:
            vclock, rate = self.vclock, self.rate
            for c in self.active:
                vclock[c] += rate[c] * dt
            self.now = t

    def _rates(self) -> None:
        """Water-fill the capacity over the configurations' demands (module docstring), and
        find the next completion in the same pass over the classes (as `next_completion`)."""
        count, demand, rate = self.count, self.demand, self.rate
        now, vclock, heaps = self.now, self.vclock, self.heaps
        best_t, best_task, best_c = math.inf, -1, -1
        if self.total <= self.capacity * (1.0 + TOTAL_RTOL):
            if not self.full_speed:
                for c in range(len(rate)):
                    rate[c] = 1.0
                self.full_speed = True
            for c in self.active:
                vfinish, task = heaps[c][0]
                left = vfinish - vclock[c]
                t = now + left if left > 0 else now  # rate 1: left / 1.0 is left
                if t < best_t or (t == best_t and task < best_task):
                    best_t, best_task, best_c = t, task, c
            self.next = (best_t, best_task, best_c)
            return
        self.full_speed = False
        left_cpus, tasks = self.capacity, self.tasks
        share = 0.0  # once a class exceeds the equal share, every later one gets that share
        for c in self.by_demand:
            n = count[c]
            if not n:
                continue
            if share:
                r = rate[c] = share / demand[c]
            else:
                equal = left_cpus / tasks
                if demand[c] <= equal:
                    r = rate[c] = 1.0
                    left_cpus -= n * demand[c]
                    tasks -= n
                else:
                    share = equal
                    r = rate[c] = share / demand[c]
            vfinish, task = heaps[c][0]
            left = vfinish - vclock[c]
            t = now + left / r if left > 0 else now
            if t < best_t or (t == best_t and task < best_task):
                best_t, best_task, best_c = t, task, c
        self.next = (best_t, best_task, best_c)
