"""Dask collections -> planflow's TaskGraph: one planflow task per node of Dask's optimised graph.

The pipeline (`graph_from_dask`), each step a function of the one before:

1. `dask_input.split_output`: the collections of the output, and its structure;
2. `dask_input.optimized_graph`: Dask's own optimised graph with a finalize task per collection;
3. aliases resolved, every node checked (below);
4. `dask_names`: canonical order and readable ids (`add-1,2`, `inc-0`, `finalize-0`);
5. one `TaskNode` + `TaskCode` per node, and the sink: the collection's finalize task, or a
   collecting `_outputs-0` task that rebuilds the output structure.

How a Dask node becomes a task:

- `Task(key, func, *args, **kwargs)` whose arguments are data, references to other keys, inline
  `Alias`es and `DataNode`s, and `List`/`Tuple`/`Dict` containers of those at any depth: the
  task function is `func` itself, with argument templates in which every reference is a planflow
  `TaskRef` to the referenced key's task. That covers most tasks, Dask's fused subgraphs
  included (`_execute_subgraph(inner graph, out key, in keys, *references)`).
- A node whose arguments hold a call (a Task nested in an argument), a `Set` of references, or
  a constant that planflow's argument rebuilding (`planner.args.resolve`) would not hand back
  unchanged (a list/tuple/dict subclass other than a named tuple), and any other kind of node
  (`DataNode`, third-party subclasses): `run_dask_node(DaskCall(node, keys), *references)`,
  which evaluates the node by Dask's own rules.
- `Alias(key -> target)`: no task; a reference to `key` is a reference to `target`'s task.

Function keys, the identity under which metrics accumulate, are
`dask:<prefix>:<hash of the prefix and of the function keys of every callable in the node>`:
the same for the same operation in every run whatever its token, and new when a callable's
code changes (`metadata.fingerprint.function_key`).

The blocks of one layer (one tuple-key name) apply one operation, so the first block's
callables and objects are walked in full and the layer's other blocks reuse its function key.

Refused at compile time (`DaskGraphError`, naming the task and why): references to keys that
are not in the graph (persisted collections, distributed Futures and actors), objects of
`distributed` (locks, queues), tasks of `distributed` (P2P shuffles), async task functions,
functions and arguments that cannot be pickled for the workers (`planner.dask_args`).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Hashable, Iterator, Mapping
from itertools import chain
from typing import Any

import dask._task_spec
from dask._task_spec import Alias, DataNode, Dict, GraphNode, List, NestedContainer, Task, Tuple
from dask._task_spec import TaskRef as DaskRef

from metadata.fingerprint import function_key
from planner.args import SlotPath, check_constant, find_refs, strip_refs
from planner.dask_args import (
    DaskCall,
    Fallback,
    Found,
    check_shippable,
    constant,
    run_dask_node,
    scan,
)
from planner.dask_input import DaskGraph, Slot, check_version, optimized_graph, split_output
from planner.dask_names import canonical_order, prefix_of, task_ids
from planner.errors import DaskGraphError, WorkflowDefinitionError
from planner.graph import COLLECT_NAME, TaskCode, TaskGraph, TaskNode, collect_node, collect_outputs
from planner.trace import TaskOptions, TaskRef

Key = Hashable
Slots = list[tuple[str, SlotPath]]

_SUBGRAPH: Any = getattr(dask._task_spec, "_execute_subgraph", None)
"""Dask's fused-subgraph function: its external references come sorted by hash."""


def graph_from_dask(output: Any, workflow: str | None = None,
                    params: Mapping[str, Any] | None = None) -> TaskGraph:
    """The TaskGraph of a Dask collection, or of a list/tuple/dict structure of them."""
    check_version()
    where = f"workflow '{workflow}'" if workflow else "the Dask output"
    collections, template = split_output(output, where)
    if not collections:
        raise DaskGraphError(f"{where} holds no Dask collection")
    try:
        dask_graph = optimized_graph(collections)
    except DaskGraphError:
        raise
    except Exception as err:
        raise WorkflowDefinitionError(
            f"Dask could not optimise {where}: {type(err).__name__}: {err}") from err
    name = workflow or default_name(collections[0])
    return _Converter(dask_graph, name).graph(template, dict(params or {}))


def default_name(collection: Any) -> str:
    """A workflow name for a bare collection: its key's name prefix (`sum-aggregate`)."""
    for attr in ("key", "_name", "name"):
        value = getattr(collection, attr, None)
        if isinstance(value, str | tuple) and value:
            return prefix_of(value)
    return "dask"


class _Converter:
    """The state of one conversion: aliases, ids, cached dependency lists and function keys."""

    def __init__(self, dask_graph: DaskGraph, workflow: str) -> None:
        self.dsk = dask_graph.dsk
        self.retries = dask_graph.retries
        self.workflow = workflow
        self.aliases = {k: v.target for k, v in self.dsk.items() if type(v) is Alias}
        self._children: dict[Key, list[Key]] = {}
        self._fkeys: dict[int, str] = {}
        self._shippable: dict[int, Any] = {}  # checked objects, kept alive so ids stay theirs
        self._layer_keys: dict[Hashable, str] = {}  # tuple-key name -> its function key
        self._options: dict[tuple[str, int], TaskOptions] = {}
        self.outputs = [self.target(k, "an output of the graph") for k in dask_graph.outputs]
        self.order = canonical_order(self.outputs, self.children, self._hash_ordered)
        self.ids = task_ids(self.order)
        self.position = {k: i for i, k in enumerate(self.order)}

    def target(self, key: Key, user: str) -> Key:
        """The key whose task computes `key` (aliases followed); it must be in the graph."""
        for _ in range(len(self.aliases) + 1):
            if key not in self.aliases:
                break
            key = self.aliases[key]
        if key not in self.dsk:
            raise DaskGraphError(
                f"{user} needs Dask key {key!r}, which is not in the graph: a persisted "
                "collection, a distributed Future or actor, which live in a Dask cluster; "
                "build the collection without persist()/scatter(), or pass the computed data "
                "in")
        return key

    def children(self, key: Key) -> list[Key]:
        """The keys `key` depends on (aliases followed), in argument order."""
        found = self._children.get(key)
        if found is None:
            found = list(dict.fromkeys(self.target(d, f"Dask task {key!r}")
                                       for d in _dependency_keys(self.dsk[key])))
            self._children[key] = found
        return found

    def _hash_ordered(self, key: Key) -> bool:
        node = self.dsk[key]
        return isinstance(node, Task) and _SUBGRAPH is not None and node.func is _SUBGRAPH

    # -- nodes --------------------------------------------------------------------------

    def graph(self, template: Any, params: dict[str, Any]) -> TaskGraph:
        """The TaskGraph: one task per key in canonical order (already topological, ids
        unique by construction), then the collecting sink if the output is a structure."""
        nodes: list[TaskNode] = []
        code: dict[str, TaskCode] = {}
        for key in self.order:
            node, task_code = self.task(key)
            nodes.append(node)
            code[node.id] = task_code
        out = _fill(template, [TaskRef(self.ids[k], 0) for k in self.outputs])
        if not isinstance(out, TaskRef):
            refs: list[tuple[SlotPath, TaskRef]] = []
            find_refs(out, ("args", 0), refs, self._output_where)
            check_constant(strip_refs(out), self._output_where)
            sink = collect_node(f"{COLLECT_NAME}-0", [(r.task_id, p) for p, r in refs])
            nodes.append(sink)
            code[sink.id] = TaskCode(collect_outputs, (out,))
        return TaskGraph(self.workflow, tuple(nodes), code, params)

    def _output_where(self) -> str:
        return f"the output of {self.workflow}"

    def task(self, key: Key) -> tuple[TaskNode, TaskCode]:
        """The planflow task of one Dask key (module docstring: template or DaskCall).

        The blocks of one layer (one tuple-key name) apply one operation: the first block's
        callables and objects are walked in full (function key, async and pickle checks), the
        others reuse its function key and walk only what decides their template."""
        task_id = self.ids[key]
        node = self.dsk[key]
        layer = key[0] if isinstance(key, tuple) and len(key) > 1 else None
        known = self._layer_keys.get(layer) if layer is not None else None
        found = Found(f"Dask task '{task_id}' (key {key!r})", deep=known is None)
        if type(node).__module__.split(".")[0] == "distributed":
            raise DaskGraphError(
                f"{found.where} is a {type(node).__name__}, which only runs inside a Dask "
                "cluster (a P2P shuffle?); use task-based shuffles: "
                "dask.config.set({'dataframe.shuffle.method': 'tasks'})")
        task_code, slots, found = self._code(key, node, found)
        prefix = prefix_of(key)
        if known is None:
            kind = f"data:{type(node.value).__qualname__}" if isinstance(node, DataNode) else ""
            known = self._function_key(prefix, kind, found)
            if layer is not None:
                self._layer_keys[layer] = known
        for obj in found.objects:
            if id(obj) not in self._shippable:
                check_shippable(obj, f"{found.where}: an argument of type "
                                     f"{type(obj).__name__}")
                self._shippable[id(obj)] = obj
        upstream = tuple(dict.fromkeys(parent for parent, _ in slots))
        return TaskNode(task_id, prefix, known, self._task_options(prefix, key), upstream,
                        tuple(slots)), task_code

    def _code(self, key: Key, node: GraphNode, found: Found) -> tuple[TaskCode, Slots, Found]:
        """The node's callable with argument templates, else a DaskCall of it."""
        slots: Slots = []
        try:
            if type(node) is not Task and not isinstance(node, NestedContainer):
                raise Fallback
            args = tuple(self.arg(a, ("args", i), slots, found)
                         for i, a in enumerate(self._canonical_args(key, node)))
            kwargs = {k: self.arg(v, ("kwargs", k), slots, found)
                      for k, v in node.kwargs.items()}
            found.callables.append(node.func)
            return TaskCode(node.func, args, kwargs), slots, found
        except Fallback:
            found, slots = Found(found.where, deep=found.deep), []
            if found.deep:
                scan(node, found)
            keys = _dependency_keys(node)
            refs = [self.ref(k, ("args", i + 1), slots) for i, k in enumerate(keys)]
            return TaskCode(run_dask_node, (DaskCall(node, keys), *refs)), slots, found

    def _canonical_args(self, key: Key, node: Task) -> tuple[Any, ...]:
        """A fused subgraph's arguments, `(inner graph, out key, in keys, *references)`, with
        (in key, reference) pairs in canonical order instead of Dask's hash order, so that the
        same program gives the same task code (and graph fingerprint) in every process."""
        args = node.args
        if not self._hash_ordered(key) or len(args) < 3 or not isinstance(args[2], tuple):
            return args
        inner, out, inkeys, *refs = args
        if len(inkeys) != len(refs) or not all(type(r) in (DaskRef, Alias) for r in refs):
            return args  # (Dask 2025.4 passes the references as Aliases)
        pairs = sorted(zip(inkeys, refs, strict=True), key=lambda p: self.position[self.target(
            p[1].key if type(p[1]) is DaskRef else p[1].target, "")])
        return (inner, out, tuple(k for k, _ in pairs), *(r for _, r in pairs))

    def ref(self, key: Key, path: SlotPath, slots: Slots) -> TaskRef:
        task_id = self.ids[self.target(key, f"argument {path!r}")]
        slots.append((task_id, path))
        return TaskRef(task_id, 0)

    def arg(self, a: Any, path: SlotPath, slots: Slots, found: Found) -> Any:
        """`a` as a planflow argument template (module docstring), or Fallback."""
        t = type(a)
        if t is DaskRef:
            return self.ref(a.key, path, slots)
        if t is Alias:
            return self.ref(a.target, path, slots)
        if t is List or t is Tuple:
            items = [self.arg(x, (*path, i), slots, found) for i, x in enumerate(a.args)]
            return items if t is List else tuple(items)
        if t is Dict:
            keys = a.args[0::2]
            if not all(type(k) in (str, int) for k in keys):
                raise Fallback
            return {k: self.arg(v, (*path, k), slots, found)
                    for k, v in zip(keys, a.args[1::2], strict=True)}
        if t is DataNode:
            return constant(a.value, found)
        if isinstance(a, GraphNode | DaskRef):
            raise Fallback
        return constant(a, found)

    def _function_key(self, prefix: str, kind: str, found: Found) -> str:
        """`dask:<prefix>:<hash>` (module docstring). Each function is checked once (async?
        picklable?); partials, often one per task around one function, by what they wrap,
        and their bound arguments join the task's objects to check."""
        keys = set()
        for fn in found.callables:
            while isinstance(fn, functools.partial):
                scan([fn.args, fn.keywords], found)
                fn = fn.func
            key = self._fkeys.get(id(fn))
            if key is None:
                if inspect.iscoroutinefunction(fn):
                    raise DaskGraphError(
                        f"{found.where} calls async function {fn!r}; planflow runs plain "
                        "functions: call it with asyncio.run inside a plain one")
                check_shippable(fn, f"{found.where}: function {fn!r}")
                key = self._fkeys[id(fn)] = function_key(fn)
                self._shippable[id(fn)] = fn
            keys.add(key)
        digest = hashlib.sha256("\n".join([prefix, kind, *sorted(keys)]).encode())
        return f"dask:{prefix}:{digest.hexdigest()[:12]}"

    def _task_options(self, prefix: str, key: Key) -> TaskOptions:
        retries = self.retries.get(key, 0)
        found = self._options.get((prefix, retries))
        if found is None:
            found = self._options[(prefix, retries)] = TaskOptions(name=prefix, retries=retries)
        return found


def _dependency_keys(node: GraphNode) -> tuple[Key, ...]:
    """The keys `node` depends on, as it names them: argument order first, then any others
    (sorted, never in the hash order of `node.dependencies`)."""
    ordered = list(dict.fromkeys(_references(node)))
    known = set(ordered)
    return (*ordered, *sorted((d for d in node.dependencies if d not in known), key=repr))


def _references(node: GraphNode) -> Iterator[Key]:
    """Keys referenced by `node`'s arguments, in argument order (calls nested at any depth)."""
    if type(node) is Alias:
        yield node.target
        return
    if not isinstance(node, Task):
        return
    for a in chain(node.args, node.kwargs.values()):
        if isinstance(a, DaskRef):
            yield a.key
        elif isinstance(a, GraphNode):
            yield from _references(a)


def _fill(template: Any, refs: list[TaskRef]) -> Any:
    if isinstance(template, Slot):
        return refs[template.index]
    if isinstance(template, list):
        return [_fill(v, refs) for v in template]
    if isinstance(template, tuple):
        items = [_fill(v, refs) for v in template]
        return type(template)(*items) if hasattr(template, "_fields") else tuple(items)
    if isinstance(template, dict):
        return {k: _fill(v, refs) for k, v in template.items()}
    return template
