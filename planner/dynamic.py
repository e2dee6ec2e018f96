"""Dynamic fan-outs (`planflow.map`): their width, their elements, and their planning graph.

A dynamic node of the IR (`TaskNode.dynamic`) applies its function to each element of its one
parent's value; its own value is the list of results, in element order. Its width is known only
when the parent has run. Everything that needs a width before that uses an *expected* width,
from, in order (`expected_width`):

1. `history`: the median width the runs recorded for this node (`MetadataAccess.expected_width`,
   written by the worker that expanded it);
2. `hint`: `planflow.map(..., expected_width=N)`;
3. `prior`: `PRIOR_WIDTH`.

`expand_graph(graph, widths)` is the *planning graph*: each dynamic node replaced by `width`
element tasks (`<map id>[i]`, the map's function, options and parent) and a join task under the
map's own id (function `_join`) that collects them, so the predictor, placement, downgrade and
simulator plan and price the elements like any static fan-out. Its code runs too (an element
picks its item from the parent's value), so an expanded graph executes to the same result.

`layout(width, local, per_worker)` is the one rule every executor and the what-if use to split
a width: the first `local` elements run on the map node's own worker, the rest in groups of
`per_worker` (more when there would be over `MAX_NEW_WORKERS` groups) on new workers
(`planner.dynamic_plan` derives both numbers from the placement the compiler chose for the
planning graph).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from planner.graph import TaskCode, TaskGraph, TaskNode
from planner.trace import TaskOptions, TaskRef

PRIOR_WIDTH = 16
"""Elements assumed for a dynamic fan-out with no history and no `expected_width=` hint: a
fan-out wide enough that clustering and configurations matter, small enough that a wrong guess
costs little planning time."""

MAX_NEW_WORKERS = 512
"""Most workers one dynamic fan-out creates: past it, groups grow instead (the local pool runs
at most 512 processes at once, so more workers would only queue, each paying a start-up), which
keeps a 10,000-wide fan-out to a few hundred keys."""

JOIN_NAME = "_join"
"""Function name of the task that collects a dynamic fan-out's results in the planning graph."""

JOIN_KEY = f"planner.dynamic.{JOIN_NAME}"
"""Its function key: the join's metrics are its own, never the mapped function's."""

JOIN_OPTIONS = TaskOptions(name=JOIN_NAME, expected_s=1e-4, output_bytes=None)
"""The join does no work of its own beyond building the list."""


class NotASequence(TypeError):
    """The value a dynamic fan-out maps over is not a sequence."""


def element_id(map_id: str, index: int) -> str:
    """The id of one element of a dynamic fan-out: `square-0[17]`."""
    return f"{map_id}[{index}]"


def elements(map_id: str, function: str, value: Any) -> Sequence[Any]:
    """The elements `value` holds, or NotASequence naming the map and the type."""
    if isinstance(value, str | bytes | bytearray | Mapping) or not (
        isinstance(value, Sequence) or (hasattr(value, "__len__") and hasattr(value, "__getitem__"))
    ):
        raise NotASequence(
            f"planflow.map '{map_id}': {function} maps over a sequence (list, tuple, range), "
            f"but its input is a {type(value).__name__}"
        )
    return value


def apply(code: TaskCode, element: Any) -> Any:
    """One element's result: the map's function on the element and the constant kwargs."""
    return code.fn(element, **code.kwargs)


def join_results(*results: Any) -> list[Any]:
    """The join's function in the planning graph: the elements' results as one list."""
    return list(results)


@dataclass(frozen=True)
class PickElement:
    """An element's function in the planning graph: item `index` of the parent's value, mapped."""

    fn: Callable[..., Any]
    index: int

    def __call__(self, value: Any, **kwargs: Any) -> Any:
        return self.fn(value[self.index], **kwargs)


@dataclass(frozen=True)
class Split:
    """How a width of elements is run: `local` on the map's worker, then `groups` of element
    indices (start, stop), one new worker each."""

    width: int
    local: int
    groups: tuple[tuple[int, int], ...]


def layout(width: int, local: int, per_worker: int) -> Split:
    """The split rule (module docstring): groups of at least `per_worker`, at most
    `MAX_NEW_WORKERS` of them."""
    here = min(width, max(0, local))
    step = max(1, per_worker, -(-(width - here) // MAX_NEW_WORKERS))
    groups = tuple((i, min(i + step, width)) for i in range(here, width, step))
    return Split(width, here, groups)


def dynamic_nodes(graph: TaskGraph) -> tuple[TaskNode, ...]:
    """The graph's dynamic nodes, in topological order."""
    return tuple(n for n in graph.nodes if n.dynamic is not None)


def expected_width(graph: TaskGraph, node: TaskNode, access: Any) -> tuple[int, str]:
    """(width, source) to plan `node` with (module docstring)."""
    if access is not None and hasattr(access, "expected_width"):
        seen = access.expected_width(graph.workflow, node.id)
        if seen is not None:
            return int(seen), "history"
    assert node.dynamic is not None
    if node.dynamic.expected_width is not None:
        return node.dynamic.expected_width, "hint"
    return PRIOR_WIDTH, "prior"


def expand_graph(graph: TaskGraph, widths: Mapping[str, int]) -> TaskGraph:
    """The planning graph (module docstring): every dynamic node at `widths[id]` elements."""
    nodes: list[TaskNode] = []
    code: dict[str, TaskCode] = {}
    for node in graph.nodes:
        if node.dynamic is None:
            nodes.append(node)
            code[node.id] = graph.code[node.id]
            continue
        (producer,) = node.upstream
        source = graph.code[node.id]
        ids = [element_id(node.id, i) for i in range(widths[node.id])]
        for i, eid in enumerate(ids):
            nodes.append(
                TaskNode(
                    eid,
                    node.function,
                    node.function_key,
                    node.options,
                    (producer,),
                    ((producer, ("args", 0)),),
                )
            )
            code[eid] = TaskCode(
                PickElement(source.fn, i), (TaskRef(producer, 0),), dict(source.kwargs)
            )
        parents = ids or [producer]  # width 0: the join waits for the producer alone
        nodes.append(
            TaskNode(
                node.id,
                JOIN_NAME,
                JOIN_KEY,
                JOIN_OPTIONS,
                tuple(parents),
                tuple((p, ("args", k)) for k, p in enumerate(ids)),
            )
        )
        refs = tuple(TaskRef(p, 0) for p in ids)
        code[node.id] = TaskCode(join_results, refs)
    return TaskGraph(graph.workflow, tuple(nodes), code, dict(graph.params), graph.dropped,
                     graph.requirements)
