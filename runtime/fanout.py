"""Dynamic fan-outs at run time: the worker that owns a `planflow.map` node expands it.

When the map's step runs its input has arrived, so its width is known. The worker:

1. checks that the input is a sequence (else the map task fails, naming the type it got) and
   records the width in the metrics store (what the next compile plans with);
2. splits it by the plan's rule (`planner.dynamic.layout`): the first `local` elements here,
   the rest in groups of `per_worker`;
3. creates one new worker per group (`<map id>.g<j>`): its program holds its elements' values,
   one step per element (`<map id>[i]`: the map's function, options and retry policy) and a
   collecting step (`<map id>[lo:hi]`) whose one remote child is the map's *join*
   (`<map id>[*]`, a step of this worker that waits for every group). EXPAND scripts store the
   programs `EXPAND_BATCH` workers at a time and claim their starts; the launcher starts them;
4. runs the local elements as ordinary steps here (retries, metrics, timings, and an error
   record naming the element);
5. waits for the join like any task with remote parents (`runtime.inbox`: BLPOP on this
   worker's notify list): each group's BATCH adds one member to the join's dependency set, and
   the last makes it ready; the groups' result lists are fetched (one HMGET per group worker's
   output hash), and the map's value is the local results, then the groups', in element order.

Keys per group: its program, its output hash, its notify list; per fan-out: the join's
dependency set; no key per element. All are listed in the run's `dynamic` set and deleted with
the run (FINISH, or the client). Width 0 gives `[]` at once. The map step's own metrics record
(function `_join`) times only the joining; the elements have their own records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from planner.args import resolve
from planner.dynamic import (
    JOIN_KEY,
    JOIN_NAME,
    JOIN_OPTIONS,
    NotASequence,
    Split,
    element_id,
    elements,
    layout,
)
from planner.graph import TaskCode
from planner.trace import TaskRef
from runtime.keys import RunKeys
from runtime.launcher import WorkerSpec
from runtime.program import (
    MapStep,
    RemoteChild,
    RunSettings,
    TaskStep,
    WorkerProgram,
    encode_program,
)
from runtime.scripts import NewWorker, call_sync, expand_call, started_workers

if TYPE_CHECKING:
    from runtime.dataplane import Uploader
    from runtime.worker import Worker

log = logging.getLogger(__name__)

EXPAND_BATCH = 256
"""New workers stored and claimed per EXPAND call: bounds one script's arguments (programs
carry their elements' values) while a 10,000-wide fan-out stays a handful of round trips."""


def join_id(map_id: str) -> str:
    """The id of the step that waits for a dynamic fan-out's groups."""
    return f"{map_id}[*]"


def group_worker(map_id: str, group: int) -> str:
    """The id of the new worker running one group of a dynamic fan-out's elements."""
    return f"{map_id}.g{group}"


def collect_id(map_id: str, lo: int, hi: int) -> str:
    """The id of the step that collects the results of elements `lo`..`hi - 1`."""
    return f"{map_id}[{lo}:{hi}]"


def element_step(
    step: TaskStep, index: int, item: Any, memory_mb: int, cpus: float, local_uses: int
) -> TaskStep:
    """Element `index` of the map `step`: its function on `item` (a constant of the step)."""
    return TaskStep(
        element_id(step.task_id, index),
        step.function,
        step.function_key,
        step.fn_index,
        (item,),
        dict(step.kwargs),
        (),
        (),
        (),
        local_uses,
        False,
        memory_mb,
        cpus,
        step.options,
    )


def group_program(
    step: TaskStep,
    home: str,
    home_config: tuple[int, float],
    items: Sequence[Any],
    split: Split,
    group: int,
) -> WorkerProgram:
    """The program of one group's new worker (module docstring, step 3)."""
    d: MapStep = step.dynamic  # type: ignore[assignment]
    lo, hi = split.groups[group]
    steps = [element_step(step, i, items[i], d.memory_mb, d.cpus, 1) for i in range(lo, hi)]
    ids = tuple(s.task_id for s in steps)
    collect = TaskStep(
        collect_id(step.task_id, lo, hi),
        JOIN_NAME,
        JOIN_KEY,
        d.join_index,
        tuple(TaskRef(t, 0) for t in ids),
        {},
        ids,
        (),
        (RemoteChild(join_id(step.task_id), home, len(split.groups)),),
        0,
        False,
        d.memory_mb,
        d.cpus,
        JOIN_OPTIONS,
    )
    return WorkerProgram(
        group_worker(step.task_id, group),
        d.memory_mb,
        d.cpus,
        (*steps, collect),
        {},
        {},
        {home: home_config},
    )


def join_step(step: TaskStep, split: Split) -> TaskStep:
    """The step that waits for every element: local ones as local parents, groups remote."""
    local = tuple(element_id(step.task_id, i) for i in range(split.local))
    groups = tuple(collect_id(step.task_id, lo, hi) for lo, hi in split.groups)
    return step._replace(
        task_id=join_id(step.task_id),
        parents=(*local, *groups),
        remote_parents=groups,
        remote_children=(),
        local_uses=0,
        is_sink=False,
        dynamic=None,
    )


def group_keys(keys: RunKeys, map_id: str, n_groups: int) -> list[str]:
    """Every key a fan-out of `n_groups` groups may create (the join's first: its marker)."""
    made = [keys.deps(join_id(map_id))]
    for j in range(n_groups):
        w = group_worker(map_id, j)
        made += [keys.worker_program(w), keys.outputs(w), keys.notify(w)]
    return made


class Fanout:
    """The expansion of one map step by `worker` (module docstring)."""

    def __init__(self, worker: Worker, settings: RunSettings, uploader: Uploader) -> None:
        self.worker = worker
        self.settings = settings
        self.uploader = uploader

    def run(self, step: TaskStep, code: TaskCode, last: bool) -> bool:
        """Expand and run the map `step`; False when it (or an element) failed for good."""
        w, d = self.worker, step.dynamic
        assert d is not None
        started_at, t0 = time.time(), time.perf_counter()
        w.inbox.gather(step)  # the input, from its producer's worker when that is another
        try:
            items = elements(step.task_id, step.function, resolve(code.args, w.inbox.values)[0])
        except NotASequence as err:
            w.fail(step, err, self.uploader)
            return False
        split = layout(len(items), d.local, d.per_worker)
        self._record_width(step.task_id, split.width)
        join = join_step(step, split)
        w.inbox.expect(
            join,
            {
                collect_id(step.task_id, lo, hi): group_worker(step.task_id, j)
                for j, (lo, hi) in enumerate(split.groups)
            },
        )
        if split.groups:
            self._create(step, items, split)
        home = w.spec.memory_mb, w.spec.cpus
        for i in range(split.local):
            el = element_step(step, i, items[i], *home, local_uses=1)
            if not w.run_step(el, TaskCode(code.fn, el.args, el.kwargs), self.uploader, last=False):
                return False
        w.inbox.gather(join)
        values = w.inbox.values
        t1 = time.perf_counter()
        value = [values[element_id(step.task_id, i)] for i in range(split.local)]
        for parent in join.remote_parents:
            value.extend(values[parent])
        w.inbox.release(join)
        exec_s = time.perf_counter() - t1
        return w.complete(
            step._replace(function=JOIN_NAME, function_key=JOIN_KEY),
            value,
            started_at,
            fetch_s=t1 - t0,
            exec_s=exec_s,
            uploader=self.uploader,
            last=last,
        )

    def _record_width(self, map_id: str, width: int) -> None:
        try:
            store = self.worker.ctx.metrics_store(self.settings.namespace)
            store.record_width(self.settings.workflow, map_id, width)
        except Exception as err:  # metrics must never fail the run
            log.warning("metrics: cannot record the width of %s: %s", map_id, err)

    def _create(self, step: TaskStep, items: Sequence[Any], split: Split) -> None:
        """Store, claim and start the groups' workers, `EXPAND_BATCH` at a time."""
        w, s = self.worker, self.settings
        keys, home = w.keys, w.spec.worker_id
        claimer = f"{home} {w.spec.attempt}"
        n = len(split.groups)
        tasks = split.width - split.local + n  # elements and collecting steps
        made = group_keys(keys, step.task_id, n)
        for first in range(0, n, EXPAND_BATCH):
            batch = range(first, min(first + EXPAND_BATCH, n))
            now = time.time()
            new = []
            for j in batch:
                prog = group_program(step, home, (w.spec.memory_mb, w.spec.cpus), items, split, j)
                spec = WorkerSpec(
                    s.namespace,
                    s.dag_id,
                    prog.worker_id,
                    prog.memory_mb,
                    prog.cpus,
                    now,
                    sizes=s.sizes,
                )
                new.append(NewWorker(prog.worker_id, encode_program(prog), spec.to_json()))
            call = expand_call(
                keys,
                new,
                made[1 + 3 * first : 1 + 3 * batch.stop],
                s.ttl_s,
                claimer,
                s.claim_grace_s,
                made[0] if first == 0 else "",
                tasks if first == 0 else 0,
            )
            alive, claimed = started_workers(call_sync(w.ctx.redis, call))
            if not alive:
                return  # the run is over; the worker's next check stops it
            # a worker claimed by an earlier generation of this one whose start request was
            # lost with it holds its claim lease until it expires; the client relaunches it
            mine = set(claimed)
            w.start_new(
                [WorkerSpec.from_json(x.spec_json) for x in new if x.worker_id in mine],
                s.launcher,
            )
