"""From a Plan to what the workers download: one shared part and one program per worker.

The reference system shipped the whole DAG, code included, to every worker. Here the client
splits the plan once:

- the **shared part**: the run's settings and every distinct task function, pickled once (a
  function used by 2,000 tasks is pickled once, not 2,000 times);
- one **worker program** per worker: its tasks in plan order, each with its argument templates,
  which parents are remote (fetched from Redis) or local (in this worker's memory), which
  children run on other workers (to update), and whether the output must be stored.

A worker downloads the shared part (cached per run in a warm process) and its own program: one
round trip, only what it runs. Both are zlib-compressed cloudpickles.

Placement facts used throughout: a parent is *remote* for a task when the plan puts them on
different workers; a task's readiness counts only its remote parents (local ones have run
before it, because a worker runs its tasks in plan order, which must respect dependencies:
checked here).

A dynamic fan-out (`planflow.map`) is one step of its worker's program, carrying the plan's
decisions for it (`MapStep`); `runtime.fanout` expands it when its input arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

from planner.dynamic import join_results
from planner.plan import Plan
from planner.trace import TaskOptions, TaskRef
from runtime.codec import dumps_blob, is_plain, loads_blob
from runtime.defaults import CLAIM_GRACE_S
from runtime.errors import UnrunnablePlan
from runtime.keys import RunKeys


class RemoteChild(NamedTuple):
    """A child of a task that runs on another worker, and how many remote parents it waits for."""

    task_id: str
    worker_id: str
    needed: int


class MapStep(NamedTuple):
    """The plan's decisions for a dynamic fan-out (`planner.plan.DynamicPlan`), as its step
    carries them: the layout rule's `local` and `per_worker`, the new workers' configuration,
    and where the join function sits in the shared functions."""

    local: int
    per_worker: int
    memory_mb: int
    cpus: float
    join_index: int


class TaskStep(NamedTuple):
    """One task as its worker runs it. (Wire records are NamedTuples: they pickle as plain
    tuples, several times faster than slotted dataclasses, for plans of thousands of tasks.)"""

    task_id: str
    function: str
    function_key: str
    fn_index: int
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    parents: tuple[str, ...]
    remote_parents: tuple[str, ...]
    remote_children: tuple[RemoteChild, ...]
    local_uses: int
    """Later tasks of this worker that read this task's output (it is freed after the last)."""
    is_sink: bool
    memory_mb: int
    cpus: float
    options: TaskOptions
    dynamic: MapStep | None = None
    """Set on a dynamic fan-out's step (`runtime.fanout`)."""


class WorkerProgram(NamedTuple):
    """What one worker runs. `peers` has the configuration of every worker it may start;
    `cleanup` (sink worker only) lists the intermediate keys to delete on completion."""

    worker_id: str
    memory_mb: int
    cpus: float
    steps: tuple[TaskStep, ...]
    input_uses: Mapping[str, int]
    """Remote parent -> how many of this worker's tasks read it (freed after the last)."""
    input_owner: Mapping[str, str]
    """Remote parent -> the worker that stores its output."""
    peers: Mapping[str, tuple[int, float]]
    cleanup: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RunSettings:
    """Run-wide facts every worker needs."""

    namespace: str
    dag_id: str
    workflow: str
    sink: str
    tasks_total: int
    ttl_s: int
    deadline_at: float
    launcher: str
    metrics_upload: str
    submitted_at: float
    retries: int = 0
    """Retries of tasks that set none (`runtime.retry`)."""
    sizes: tuple[tuple[int, float], ...] = ()
    """The platform's (memory MB, CPUs) configurations: where an OOM-killed worker grows."""
    claim_grace_s: float = CLAIM_GRACE_S
    """How long a claimed worker may take to start before it is presumed lost."""
    same_host: bool = False
    """Whether every worker runs on the client's host (local and thread launchers): then large
    values travel through shared memory (`runtime.shm`)."""
    shm_max_bytes: int = 0
    """The most bytes of values the run may hold in shared memory (0: none)."""
    env: str = ""
    """The worker environment's key (`runtime.environments`; "": the client's interpreter):
    workers start the workers they claim through that environment's pools."""


@dataclass(frozen=True, slots=True)
class SharedPart:
    settings: RunSettings
    functions: tuple[Callable[..., Any], ...]


@dataclass(frozen=True)
class RunProgram:
    """The client's view: blobs to upload, root workers to start, keys to delete."""

    settings: RunSettings
    shared_blob: bytes
    worker_blobs: Mapping[str, bytes]
    root_workers: tuple[str, ...]
    intermediate_keys: tuple[str, ...]
    owner: Mapping[str, str]

    @property
    def upload_bytes(self) -> int:
        return len(self.shared_blob) + sum(len(b) for b in self.worker_blobs.values())

    def all_keys(self) -> list[str]:
        keys = RunKeys(self.settings.namespace, self.settings.dag_id)
        return [*self.intermediate_keys, *keys.final()]


def encode_program(prog: WorkerProgram) -> bytes:
    """A worker program as a blob. Steps whose arguments and options are plain data (the usual
    case) go through the standard pickler; the others' code is cloudpickled apart, so objects of
    a workflow module (pickled by value) still reach the worker."""
    steps = list(prog.steps)
    rich: dict[int, tuple[tuple[Any, ...], Mapping[str, Any], TaskOptions]] = {}
    plain_options: dict[int, bool] = {}  # options objects are shared by a function's tasks
    for i, step in enumerate(steps):
        opts = step.options
        if id(opts) not in plain_options:
            plain_options[id(opts)] = _plain_options(opts)
        if not (plain_options[id(opts)] and is_plain(step.args, _REF)
                and is_plain(step.kwargs, _REF)):
            rich[i] = (step.args, step.kwargs, step.options)
            steps[i] = step._replace(args=(), kwargs={}, options=_NO_OPTIONS)
    rich_blob = dumps_blob(rich) if rich else b""
    # plain tuples on the wire: a NamedTuple costs a Python-level call per object to pickle
    wire = [(*s[:8], tuple(map(tuple, s.remote_children)), *s[9:]) for s in steps]
    return dumps_blob((tuple(prog._replace(steps=())), wire, rich_blob), plain=True)


def decode_program(blob: bytes) -> WorkerProgram:
    head, wire, rich_blob = loads_blob(blob)
    steps = [TaskStep._make((*s[:8], tuple(RemoteChild._make(c) for c in s[8]), *s[9:]))
             for s in wire]
    if rich_blob:
        for i, (args, kwargs, options) in loads_blob(rich_blob).items():
            steps[i] = steps[i]._replace(args=args, kwargs=kwargs, options=options)
    return WorkerProgram._make(head)._replace(steps=tuple(steps))


_REF = (TaskRef,)
_NO_OPTIONS = TaskOptions()


def _plain_options(options: TaskOptions) -> bool:
    values = [getattr(options, f.name) for f in fields(options) if f.name != "retry_on"]
    return type(options) is TaskOptions and is_plain(values) and \
        all(getattr(e, "__module__", "") == "builtins" for e in options.retry_on)


def owners(plan: Plan) -> dict[str, str]:
    """Task id -> worker id, checked: every task on exactly one worker, as its TaskPlan says."""
    graph = plan.graph
    owner: dict[str, str] = {}
    for w in plan.workers:
        for t in w.tasks:
            if t in owner:
                raise UnrunnablePlan(f"task '{t}' is on workers '{owner[t]}' and '{w.worker_id}'; "
                                     "recompile the plan")
            if t not in graph:
                raise UnrunnablePlan(f"worker '{w.worker_id}' lists unknown task '{t}'")
            owner[t] = w.worker_id
    for node in graph.nodes:
        if node.id not in owner:
            raise UnrunnablePlan(f"task '{node.id}' is on no worker; recompile the plan")
        planned = plan.tasks[node.id].worker if node.id in plan.tasks else owner[node.id]
        if planned != owner[node.id]:
            raise UnrunnablePlan(f"task '{node.id}' is planned on worker '{planned}' but listed "
                                 f"by worker '{owner[node.id]}'; recompile the plan")
    return owner


def _check_order(plan: Plan, owner: Mapping[str, str]) -> None:
    graph = plan.graph
    for w in plan.workers:
        seen: set[str] = set()
        for t in w.tasks:
            for p in graph.upstream(t):
                if owner[p] == w.worker_id and p not in seen:
                    raise UnrunnablePlan(
                        f"worker '{w.worker_id}' runs '{t}' before its parent '{p}'; a worker's "
                        "task order must follow the dependencies (recompile the plan)")
            seen.add(t)


def build_program(plan: Plan, settings: RunSettings) -> RunProgram:
    """Split `plan` into the shared part and per-worker programs, compressed."""
    graph = plan.graph
    owner = owners(plan)
    _check_order(plan, owner)
    functions: dict[int, int] = {}
    fn_list: list[Callable[..., Any]] = []
    for node in graph.nodes:
        fn = graph.code[node.id].fn
        if id(fn) not in functions:
            functions[id(fn)] = len(fn_list)
            fn_list.append(fn)
    if plan.dynamic:  # the function that joins a dynamic fan-out's groups
        functions[id(join_results)] = len(fn_list)
        fn_list.append(join_results)
    needed = {n.id: sum(owner[p] != owner[n.id] for p in n.upstream) for n in graph.nodes}
    keys = RunKeys(settings.namespace, settings.dag_id)
    storing = dict.fromkeys(owner[n.id] for n in graph.nodes
                            if any(owner[c] != owner[n.id] for c in graph.downstream(n.id)))
    intermediate = keys.intermediate(storing, [t for t, k in needed.items() if k],
                                     [w.worker_id for w in plan.workers])
    sink_worker = owner[graph.sink]
    configs = {w.worker_id: (w.memory_mb, w.cpus) for w in plan.workers}
    blobs = {}
    for w in plan.workers:
        cleanup = tuple(intermediate) if w.worker_id == sink_worker else ()
        prog = _worker_program(plan, w.worker_id, owner, needed, functions, configs, cleanup)
        blobs[w.worker_id] = encode_program(prog)
    shared = dumps_blob(SharedPart(settings, tuple(fn_list)))
    roots = tuple(dict.fromkeys(owner[t] for t in graph.roots()))
    return RunProgram(settings, shared, blobs, roots, tuple(intermediate), owner)


def _worker_program(plan: Plan, worker_id: str, owner: Mapping[str, str],
                    needed: Mapping[str, int], functions: Mapping[int, int],
                    configs: Mapping[str, tuple[int, float]],
                    cleanup: tuple[str, ...]) -> WorkerProgram:
    graph = plan.graph
    wplan = plan.worker(worker_id)
    steps = []
    input_uses: dict[str, int] = {}
    input_owner: dict[str, str] = {}
    peers: dict[str, tuple[int, float]] = {}
    for t in wplan.tasks:
        node = graph.node(t)
        code = graph.code[t]
        remote_parents = tuple(p for p in node.upstream if owner[p] != worker_id)
        for p in remote_parents:
            input_uses[p] = input_uses.get(p, 0) + 1
            input_owner[p] = owner[p]
        children = graph.downstream(t)
        remote = tuple(RemoteChild(c, owner[c], needed[c]) for c in children
                       if owner[c] != worker_id)
        for child in remote:
            peers[child.worker_id] = configs[child.worker_id]
        tplan = plan.tasks.get(t)
        dyn = plan.dynamic.get(t) if node.dynamic is not None else None
        if node.dynamic is not None and dyn is None:
            raise UnrunnablePlan(f"dynamic fan-out '{t}' has no plan for its elements; "
                                 "recompile the plan")
        steps.append(TaskStep(
            t, node.function, node.function_key, functions[id(code.fn)], code.args,
            dict(code.kwargs), node.upstream, remote_parents, remote,
            len(children) - len(remote), t == graph.sink,
            tplan.memory_mb if tplan else wplan.memory_mb, tplan.cpus if tplan else wplan.cpus,
            node.options, None if dyn is None else MapStep(
                dyn.local, dyn.per_worker, dyn.memory_mb, dyn.cpus,
                functions[id(join_results)])))
    return WorkerProgram(worker_id, wplan.memory_mb, wplan.cpus, tuple(steps), input_uses,
                         input_owner, peers, cleanup)
