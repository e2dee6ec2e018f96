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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from planner.plan import Plan
from planner.trace import TaskOptions
from runtime.codec import dumps_blob
from runtime.errors import UnrunnablePlan
from runtime.keys import RunKeys


@dataclass(frozen=True, slots=True)
class RemoteChild:
    """A child of a task that runs on another worker, and how many remote parents it waits for."""

    task_id: str
    worker_id: str
    needed: int


@dataclass(frozen=True, slots=True)
class TaskStep:
    """One task as its worker runs it."""

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


@dataclass(frozen=True, slots=True)
class WorkerProgram:
    """What one worker runs. `peers` has the configuration of every worker it may start;
    `cleanup` (sink worker only) lists the intermediate keys to delete on completion."""

    worker_id: str
    memory_mb: int
    cpus: float
    steps: tuple[TaskStep, ...]
    input_uses: Mapping[str, int]
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
    needed = {n.id: sum(owner[p] != owner[n.id] for p in n.upstream) for n in graph.nodes}
    keys = RunKeys(settings.namespace, settings.dag_id)
    stored = [n.id for n in graph.nodes
              if any(owner[c] != owner[n.id] for c in graph.downstream(n.id))]
    intermediate = keys.intermediate(stored, [t for t, k in needed.items() if k],
                                     [w.worker_id for w in plan.workers])
    sink_worker = owner[graph.sink]
    blobs = {}
    for w in plan.workers:
        cleanup = tuple(intermediate) if w.worker_id == sink_worker else ()
        prog = _worker_program(plan, w.worker_id, owner, needed, functions, cleanup)
        blobs[w.worker_id] = dumps_blob(prog)
    shared = dumps_blob(SharedPart(settings, tuple(fn_list)))
    roots = tuple(dict.fromkeys(owner[t] for t in graph.roots()))
    return RunProgram(settings, shared, blobs, roots, tuple(intermediate), owner)


def _worker_program(plan: Plan, worker_id: str, owner: Mapping[str, str],
                    needed: Mapping[str, int], functions: Mapping[int, int],
                    cleanup: tuple[str, ...]) -> WorkerProgram:
    graph = plan.graph
    wplan = plan.worker(worker_id)
    steps = []
    input_uses: dict[str, int] = {}
    peers: dict[str, tuple[int, float]] = {}
    for t in wplan.tasks:
        node = graph.node(t)
        code = graph.code[t]
        remote_parents = tuple(p for p in node.upstream if owner[p] != worker_id)
        for p in remote_parents:
            input_uses[p] = input_uses.get(p, 0) + 1
        children = graph.downstream(t)
        remote = tuple(RemoteChild(c, owner[c], needed[c]) for c in children
                       if owner[c] != worker_id)
        for child in remote:
            peer = plan.worker(child.worker_id)
            peers[child.worker_id] = (peer.memory_mb, peer.cpus)
        tplan = plan.tasks.get(t)
        steps.append(TaskStep(
            t, node.function, node.function_key, functions[id(code.fn)], code.args,
            dict(code.kwargs), node.upstream, remote_parents, remote,
            sum(owner[c] == worker_id for c in children), t == graph.sink,
            tplan.memory_mb if tplan else wplan.memory_mb, tplan.cpus if tplan else wplan.cpus,
            node.options))
    return WorkerProgram(worker_id, wplan.memory_mb, wplan.cpus, tuple(steps), input_uses,
                         peers, cleanup)
