"""A worker's inputs: values of its own tasks kept for later local readers, remote inputs
fetched from the producers' output hashes, and the ready-task ids of its notify list.

A task with remote parents waits until its id appears on the worker's `notify` list (BLPOP:
blocking, no polling), then takes the inputs that were prefetched when it became ready (or
fetches them now). Values that later local tasks read stay in memory and are freed after their
last local reader, as the inline executor does. Sizes are measured one way, local or remote,
so the predictor sees the same input bytes wherever a parent ran.

A relaunched worker cannot trust its `notify` list (the dead process may have drained it), so it
also polls for its remote inputs in the producers' output hashes (an output is stored before
its producer makes anyone ready, so a present output means a finished parent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

import redis

from runtime.context import WorkerContext
from runtime.errors import store_error
from runtime.keys import RunKeys
from runtime.program import TaskStep, WorkerProgram
from runtime.values import ValueCodec

WAIT_CHECK_S = 1.0
"""A worker blocked on its notify list checks, this often, that its run still exists."""

NOTIFY_DRAIN_MAX = 1000
"""Ready-task ids taken from the notify list per round trip."""

STOP_SENTINEL = "\x00stop"
"""Pushed on a worker's notify list to wake it and make it stop (cancellation)."""


class Stop(Exception):
    """The worker must stop without an error of its own (`outcome` says why)."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class Inbox:
    """The inputs of one worker's tasks. `idle()` is called when a wait for readiness times out
    (it raises Stop when the run is over or cancelled)."""

    def __init__(self, ctx: WorkerContext, keys: RunKeys, prog: WorkerProgram, codec: ValueCodec,
                 *, recovering: bool, idle: Callable[[], None]) -> None:
        self.ctx = ctx
        self.keys = keys
        self.worker_id = prog.worker_id
        self._codec = codec
        self._recovering = recovering
        self._idle = idle
        self._values: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}
        """Serialized size of each value in `_values`."""
        self._remaining: dict[str, int] = dict(prog.input_uses)
        self._ready: set[str] = set()
        self._inflight: dict[str, tuple[Future[list[bytes | None]], int]] = {}
        self._steps: dict[str, TaskStep] = {s.task_id: s for s in prog.steps}
        self._owner: Mapping[str, str] = prog.input_owner

    @property
    def values(self) -> Mapping[str, Any]:
        """Task id -> value, for every input a task of this worker still needs."""
        return self._values

    def input_bytes(self, step: TaskStep) -> int:
        return sum(self._sizes.get(p, 0) for p in step.parents)

    def keep(self, step: TaskStep, value: Any, nbytes: int) -> None:
        """Keep a finished task's value for its later local readers (if it has any)."""
        if step.local_uses:
            self._values[step.task_id] = value
            self._sizes[step.task_id] = nbytes
            self._remaining[step.task_id] = step.local_uses

    def release(self, step: TaskStep) -> None:
        """Free the inputs `step` was the last local reader of."""
        for parent in step.parents:
            left = self._remaining.get(parent, 0) - 1
            if left <= 0:
                self._remaining.pop(parent, None)
                self._values.pop(parent, None)
                self._sizes.pop(parent, None)
            else:
                self._remaining[parent] = left

    def expect(self, step: TaskStep, owners: Mapping[str, str]) -> None:
        """Also wait for `step`, a step made at run time (a dynamic fan-out's join), whose
        remote parents are stored by `owners` (parent -> worker); each parent is read once."""
        self._steps[step.task_id] = step
        self._owner = {**self._owner, **owners}
        for parent in step.remote_parents:
            self._remaining[parent] = 1

    def gather(self, step: TaskStep) -> None:
        """Make the step's remote inputs local (waiting until it is ready; their sizes go to
        `_sizes`)."""
        missing = [p for p in step.remote_parents if p not in self._values]
        if not missing:
            return
        if self._recovering or step.task_id not in self._ready:
            with self.ctx.waiting():  # e.g. a Ray worker lends its CPUs meanwhile
                if self._recovering:
                    self._await_recovered(step, missing)
                while step.task_id not in self._ready and not self._all_inflight(missing):
                    self._wait_notify()
        todo = [p for p in missing if p not in self._inflight]
        if todo:
            self._prefetch(todo)
        for parent in missing:
            future, index = self._inflight.pop(parent)
            try:
                raw = future.result()[index]
            except redis.RedisError as err:
                raise store_error(err, self.ctx.url, f"fetching the inputs of task "
                                  f"'{step.task_id}'") from err
            if raw is None:
                raise RuntimeError(f"the output of task '{parent}' is missing from the store "
                                   "(deleted or expired)")
            self._values[parent], self._sizes[parent] = self._codec.decode(raw)

    def _await_recovered(self, step: TaskStep, missing: list[str]) -> None:
        """A relaunched worker's wait: the dead process may have drained the notify list, so
        poll the producers' output hashes too (an output is stored before its producer makes
        anyone ready, so a present output means a finished parent)."""
        while step.task_id not in self._ready:
            todo = [p for p in missing if p not in self._inflight]
            if todo:
                self._prefetch(todo)
            if all(self._inflight[p][0].result()[self._inflight[p][1]] is not None
                   for p in missing):
                return
            for parent in missing:
                self._inflight.pop(parent, None)
            self._wait_notify()

    def _all_inflight(self, parents: list[str]) -> bool:
        """Whether every parent's fetch is under way and (recovery mode) known to be present."""
        return self._recovering and all(p in self._inflight for p in parents)

    def _prefetch(self, parents: list[str]) -> None:
        owner = self._owner
        future = self.ctx.io.fetch([(self.keys.outputs(owner[p]), p) for p in parents])
        for i, parent in enumerate(parents):
            self._inflight[parent] = (future, i)

    def _wait_notify(self) -> None:
        """Take ready-task ids from the notify list, blocking until there is one. (A lost
        connection is ridden out by the client's reconnect policy, `metadata.connect`.)"""
        key, r = self.keys.notify(self.worker_id), self.ctx.redis
        items = r.lpop(key, NOTIFY_DRAIN_MAX)
        if not items:
            got = r.blpop([key], timeout=WAIT_CHECK_S)
            if got is None:
                self._idle()
                return
            items = [got[1]]
        wanted: list[str] = []
        for raw in items:
            task_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            if task_id == STOP_SENTINEL:
                raise Stop("cancelled")
            self._ready.add(task_id)
            step = self._steps.get(task_id)
            for p in step.remote_parents if step else ():
                if p not in self._values and p not in self._inflight and p not in wanted:
                    wanted.append(p)
        if wanted:  # inputs of every task that just became ready travel while we work
            self._prefetch(wanted)
