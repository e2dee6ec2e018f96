"""The task-graph IR: one frozen structure that the planner, simulator builder and executors share.

A `TaskGraph` holds `TaskNode`s in a topological order (the order of `nodes`), exactly one sink,
and per task the code to run (`TaskCode`: function, argument templates). Every reference inside a
task's arguments is an edge; `TaskNode.slots` says which argument slot each reference fills, so
an executor can rebuild the arguments from upstream results.

Graphs are built once, validated, and never changed: passes return new objects.
`build_graph` makes one from a trace; `TaskGraph.create` from explicit nodes (WfFormat files),
checking ids, parents and cycles. Where the program has several outputs, a synthetic collecting
sink (`_outputs-0`) gathers them, so every graph has exactly one sink. Tasks that do not lead to
the output are dropped (and listed in `dropped`), as dask's `cull` does.

A *dynamic* node (`TaskNode.dynamic`, made by `planflow.map`) is one node in this IR: its one
parent's value is a sequence whose elements it maps its function over at run time, and its
value is the list of results. `planner.dynamic` expands it for planning and simulation.
"""

from __future__ import annotations

import hashlib
import heapq
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from planner.args import SlotPath, check_constant, find_refs, resolve, strip_refs
from planner.errors import GraphError, WorkflowDefinitionError
from planner.trace import DynamicSpec, TaskOptions, TaskRef, Trace

if TYPE_CHECKING:
    import networkx as nx

COLLECT_NAME = "_outputs"
"""Function name of the synthetic sink that gathers several workflow outputs."""


def collect_outputs(outputs: Any) -> Any:
    """The synthetic sink's function: returns the workflow's output structure, filled in."""
    return outputs


@dataclass(frozen=True)
class TaskCode:
    """What a worker needs to run one task: the function and its argument templates."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def call(self, results: Mapping[str, Any]) -> Any:
        """Run the function with every reference replaced by its result from `results`."""
        return self.fn(*resolve(self.args, results), **resolve(dict(self.kwargs), results))


@dataclass(frozen=True)
class TaskNode:
    """One task of the graph. `upstream` lists distinct parents in first-use order.

    `slots` has one `(parent id, slot path)` per reference occurrence. `edge_bytes`, when known
    (WfFormat traces), is the bytes each parent hands over, aligned with `upstream`.
    `storage_bytes` are inputs read from storage rather than produced by a task.
    `dynamic` marks a dynamic fan-out (`planflow.map`): its function runs once per element of
    its one parent's value.
    """

    id: str
    function: str
    function_key: str
    options: TaskOptions
    upstream: tuple[str, ...] = ()
    slots: tuple[tuple[str, SlotPath], ...] = ()
    edge_bytes: tuple[float, ...] | None = None
    storage_bytes: float = 0.0
    dynamic: DynamicSpec | None = None


@dataclass(frozen=True)
class TaskGraph:
    """A validated DAG with one sink; `nodes` are in topological order."""

    workflow: str
    nodes: tuple[TaskNode, ...]
    code: Mapping[str, TaskCode]
    params: Mapping[str, Any] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    """Packages the workflow declares (`planner.requirements`), as written."""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _down: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {node.id: i for i, node in enumerate(self.nodes)}
        down: dict[str, list[str]] = {node.id: [] for node in self.nodes}
        for node in self.nodes:
            for parent in node.upstream:
                down[parent].append(node.id)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_down", {k: tuple(v) for k, v in down.items()})

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def create(cls, workflow: str, nodes: Iterable[TaskNode], code: Mapping[str, TaskCode],
               params: Mapping[str, Any] | None = None) -> TaskGraph:
        """Validate explicit nodes (unique ids, known parents, no cycle), order them
        topologically, add a collecting sink when there are several sinks."""
        nodes = list(nodes)
        if not nodes:
            raise GraphError(f"workflow '{workflow}' has no tasks")
        by_id: dict[str, TaskNode] = {}
        for node in nodes:
            if node.id in by_id:
                raise GraphError(f"workflow '{workflow}': duplicate task id '{node.id}'")
            by_id[node.id] = node
        for node in nodes:
            for parent in node.upstream:
                if parent not in by_id:
                    raise GraphError(
                        f"workflow '{workflow}': task '{node.id}' depends on unknown task "
                        f"'{parent}'"
                    )
        ordered = _topological(nodes, workflow)
        sinks = _sinks(ordered)
        code = dict(code)
        if len(sinks) > 1:
            refs = [TaskRef(s.id, 0) for s in sinks]
            sink = collect_node(f"{COLLECT_NAME}-0", [(s.id, ("args", 0, i)) for i, s in
                                                      enumerate(sinks)])
            code[sink.id] = TaskCode(collect_outputs, (refs,))
            ordered.append(sink)
        return cls(workflow, tuple(ordered), code, dict(params or {}))

    # -- lookups --------------------------------------------------------------------------

    @property
    def sink(self) -> str:
        return self.nodes[-1].id

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._index

    def node(self, task_id: str) -> TaskNode:
        try:
            return self.nodes[self._index[task_id]]
        except KeyError:
            raise GraphError(f"workflow '{self.workflow}' has no task '{task_id}'") from None

    def index(self, task_id: str) -> int:
        """Position of the task in the topological order."""
        return self._index[task_id]

    def upstream(self, task_id: str) -> tuple[str, ...]:
        return self.node(task_id).upstream

    def downstream(self, task_id: str) -> tuple[str, ...]:
        return self._down[task_id]

    def roots(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.nodes if not n.upstream)

    def topological_order(self) -> tuple[str, ...]:
        return tuple(n.id for n in self.nodes)

    def edges(self) -> Iterable[tuple[str, str]]:
        for node in self.nodes:
            for parent in node.upstream:
                yield parent, node.id

    def to_networkx(self) -> nx.DiGraph:
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.topological_order())
        g.add_edges_from(self.edges())
        return g

    def fingerprint(self) -> str:
        """A hash of the structure (ids, functions, edges): equal for equal programs."""
        h = hashlib.sha256()
        for node in self.nodes:
            kind = "|map" if node.dynamic else ""
            h.update(f"{node.id}|{node.function_key}|{','.join(node.upstream)}{kind}\n"
                     .encode())
        return h.hexdigest()[:16]


def _sinks(nodes: Sequence[TaskNode]) -> list[TaskNode]:
    has_child = {p for n in nodes for p in n.upstream}
    return [n for n in nodes if n.id not in has_child]


def collect_node(task_id: str, slots: list[tuple[str, SlotPath]]) -> TaskNode:
    upstream = tuple(dict.fromkeys(parent for parent, _ in slots))
    return TaskNode(task_id, COLLECT_NAME, f"planner.graph.{COLLECT_NAME}", TaskOptions(
        name=COLLECT_NAME, expected_s=1e-4), upstream, tuple(slots))


def _topological(nodes: list[TaskNode], workflow: str) -> list[TaskNode]:
    """Kahn's algorithm; ties broken by original position, so a valid order is kept as is."""
    position = {n.id: i for i, n in enumerate(nodes)}
    children: dict[str, list[str]] = {n.id: [] for n in nodes}
    missing = {n.id: len(set(n.upstream)) for n in nodes}
    for n in nodes:
        for parent in set(n.upstream):
            children[parent].append(n.id)
    ready = [position[n.id] for n in nodes if missing[n.id] == 0]
    heapq.heapify(ready)
    out: list[TaskNode] = []
    while ready:
        node = nodes[heapq.heappop(ready)]
        out.append(node)
        for child in children[node.id]:
            missing[child] -= 1
            if missing[child] == 0:
                heapq.heappush(ready, position[child])
    if len(out) != len(nodes):
        stuck = sorted(k for k, v in missing.items() if v > 0)
        raise GraphError(
            f"workflow '{workflow}' has a cycle through tasks {stuck[:5]}"
            + (f" (+{len(stuck) - 5} more)" if len(stuck) > 5 else "")
        )
    return out


# -- from a trace ------------------------------------------------------------------------------

def build_graph(trace: Trace, output: Any, params: Mapping[str, Any] | None = None,
                function_key: Callable[[Callable[..., Any]], str] | None = None) -> TaskGraph:
    """The IR of a traced workflow whose function returned `output`."""
    key_of = function_key or _default_function_key
    keys: dict[int, str] = {}
    nodes: list[TaskNode] = []
    code: dict[str, TaskCode] = {}
    for call in trace.calls:
        if call.dynamic is not None:
            _check_map_constants(call.task_id, call.kwargs)
        slots = _call_slots(trace, call.task_id, call.task.fn, call.args, call.kwargs)
        fn_id = id(call.task.fn)
        if fn_id not in keys:
            keys[fn_id] = key_of(call.task.fn)
        nodes.append(TaskNode(
            call.task_id, call.task.name, keys[fn_id], call.task.options,
            tuple(dict.fromkeys(p for p, _ in slots)), tuple(slots), dynamic=call.dynamic))
        code[call.task_id] = TaskCode(call.task.fn, call.args, call.kwargs)

    out_refs: list[tuple[SlotPath, TaskRef]] = []
    find_refs(output, ("args", 0), out_refs, lambda: f"the output of workflow '{trace.workflow}'")
    if not out_refs:
        raise WorkflowDefinitionError(
            f"workflow '{trace.workflow}' returns no task reference (got {type(output).__name__}); "
            "return the result of a task call, or a list/tuple/dict of them"
        )
    _check_trace(trace, [r for _, r in out_refs], f"the output of workflow '{trace.workflow}'")
    if isinstance(output, TaskRef):
        sink_id = output.task_id
    else:
        sink = collect_node(f"{COLLECT_NAME}-0", [(r.task_id, p) for p, r in out_refs])
        nodes.append(sink)
        code[sink.id] = TaskCode(collect_outputs, (output,))
        sink_id = sink.id
    kept, dropped = _cull(nodes, sink_id)
    return TaskGraph(trace.workflow, tuple(kept), {n.id: code[n.id] for n in kept},
                     dict(params or {}), tuple(dropped))


def _call_slots(trace: Trace, task_id: str, fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: Mapping[str, Any]) -> list[tuple[str, SlotPath]]:
    names = _argument_names(task_id, fn, args, kwargs)
    arguments: list[tuple[SlotPath, str, Any]] = [
        *((("args", i), names[i], v) for i, v in enumerate(args)),
        *((("kwargs", k), k, v) for k, v in kwargs.items()),
    ]
    refs: list[tuple[SlotPath, TaskRef]] = []
    for path, name, value in arguments:
        where = _where(task_id, name)
        found: list[tuple[SlotPath, TaskRef]] = []
        find_refs(value, path, found, where)
        if not isinstance(value, TaskRef):
            check_constant(strip_refs(value) if found else value, where)
        refs.extend(found)
    _check_trace(trace, [r for _, r in refs], f"task '{task_id}'")
    return [(r.task_id, path) for path, r in refs]


def _check_map_constants(task_id: str, kwargs: Mapping[str, Any]) -> None:
    """A dynamic fan-out's keyword arguments are constants, the same for every element."""
    for name, value in kwargs.items():
        found: list[tuple[SlotPath, TaskRef]] = []
        find_refs(value, ("kwargs", name), found, _where(task_id, name))
        if found:
            raise WorkflowDefinitionError(
                f"planflow.map '{task_id}': constant argument '{name}' holds the task reference "
                f"'{found[0][1].task_id}'; map over a task that combines both values instead")


def _where(task_id: str, arg: str) -> Callable[[], str]:
    return lambda: f"task '{task_id}': argument '{arg}'"


def _argument_names(task_id: str, fn: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: Mapping[str, Any]) -> list[str]:
    """Names of the positional arguments; a call that does not fit the signature fails here."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return [f"#{i}" for i in range(len(args))]
    try:
        sig.bind(*args, **kwargs)
    except TypeError as err:
        raise WorkflowDefinitionError(f"task '{task_id}': {err}") from None
    positional = [p.name for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    star = next((p.name for p in sig.parameters.values() if p.kind == p.VAR_POSITIONAL), "args")
    return [positional[i] if i < len(positional) else f"*{star}[{i - len(positional)}]"
            for i in range(len(args))]


def _check_trace(trace: Trace, refs: list[TaskRef], where: str) -> None:
    for ref in refs:
        if ref.trace_id != trace.trace_id:
            raise WorkflowDefinitionError(
                f"{where} uses '{ref.task_id}', a reference from another workflow or from a call "
                f"made outside any workflow; call the task inside workflow '{trace.workflow}'"
            )


def _cull(nodes: list[TaskNode], sink: str) -> tuple[list[TaskNode], list[str]]:
    by_id = {n.id: n for n in nodes}
    needed = {sink}
    stack = [sink]
    while stack:
        for parent in by_id[stack.pop()].upstream:
            if parent not in needed:
                needed.add(parent)
                stack.append(parent)
    kept = [n for n in nodes if n.id in needed]
    # the sink must come last even if it was called before unrelated tasks
    kept.sort(key=lambda n: n.id == sink)
    return kept, [n.id for n in nodes if n.id not in needed]


def _default_function_key(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", "?")
    qualname = getattr(fn, "__qualname__", getattr(fn, "__name__", "?"))
    return f"{module}.{qualname}"
