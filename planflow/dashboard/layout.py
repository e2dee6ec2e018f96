"""The task graph drawn in layers: topological generations top to bottom, parents above children.

A task's generation is 0 without parents, else one more than its deepest parent's. Within a
generation, nodes sit at the mean position of their parents (the barycenter: a reduction tree
comes out as a tree, a fan-out spreads under its root), sorted by that position, ties by the
plan's topological order, then pushed apart to at least one unit; generation 0 is spread
evenly in topological order. Deterministic: the same plan always gives the same picture.

Large graphs aggregate (`GRAPH_TASKS_MAX`): one node per (generation, function) holding all
its tasks, edges between groups. A browser then draws tens of nodes for a 10,000-task tree
instead of 10,000, and the page stays responsive (Dask's graph page starves past ~100k tasks).
Should even the groups be too many (`GRAPH_NODES_MAX`: thousands of distinct functions), nodes
are whole generations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

GRAPH_TASKS_MAX = 2000
"""Largest graph drawn one node per task; above it nodes are (generation, function) groups."""

GRAPH_NODES_MAX = 2000
"""Largest number of groups drawn; above it a node is a whole generation."""

MIN_GAP = 1.0
"""Smallest horizontal distance between two nodes of one generation (layout units)."""


@dataclass(frozen=True)
class Node:
    """One drawn node: a task, or a group of tasks of one generation (and function)."""

    label: str
    tasks: tuple[str, ...]
    function: str
    generation: int
    x: float
    critical: bool


@dataclass(frozen=True)
class GraphLayout:
    """Nodes with positions (y = -generation), edges as node index pairs, and which node holds
    each task."""

    nodes: tuple[Node, ...]
    edges: tuple[tuple[int, int], ...]
    critical_edges: tuple[tuple[int, int], ...]
    task_node: Mapping[str, int]
    aggregated: bool

    @property
    def tasks_total(self) -> int:
        return sum(len(n.tasks) for n in self.nodes)


def generations(tasks: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Task id -> generation; `tasks` in topological order (as plan.json lists them)."""
    gen: dict[str, int] = {}
    for t in tasks:
        gen[t["id"]] = 1 + max((gen[u] for u in t["upstream"]), default=-1)
    return gen


def layout(doc: Mapping[str, Any]) -> GraphLayout:
    """The layered layout of a plan document's task graph (aggregated when large)."""
    tasks: Sequence[Mapping[str, Any]] = doc["tasks"]
    gen = generations(tasks)
    path = list(doc.get("critical_path", ()))
    on_path = set(path)
    if len(tasks) <= GRAPH_TASKS_MAX:
        groups = {t["id"]: (t["id"],) for t in tasks}
        return _place(tasks, gen, groups, {t["id"]: t["id"] for t in tasks}, path, on_path,
                      aggregated=False)
    key_of = {t["id"]: f"{gen[t['id']]}:{t['function']}" for t in tasks}
    if len(set(key_of.values())) > GRAPH_NODES_MAX:
        key_of = {t["id"]: f"{gen[t['id']]}:*" for t in tasks}
    members: dict[str, list[str]] = {}
    for t in tasks:
        members.setdefault(key_of[t["id"]], []).append(t["id"])
    return _place(tasks, gen, {k: tuple(v) for k, v in members.items()}, key_of, path, on_path,
                  aggregated=True)


def _place(tasks: Sequence[Mapping[str, Any]], gen: Mapping[str, int],
           groups: Mapping[str, tuple[str, ...]], key_of: Mapping[str, str],
           path: Sequence[str], on_path: set[str], *, aggregated: bool) -> GraphLayout:
    function = {t["id"]: t["function"] for t in tasks}
    order = {k: i for i, k in enumerate(groups)}  # first member's topological position
    parents: dict[str, set[str]] = {k: set() for k in groups}
    for t in tasks:
        child = key_of[t["id"]]
        parents[child].update(key_of[u] for u in t["upstream"] if key_of[u] != child)
    by_gen: dict[int, list[str]] = {}
    for k, ids in groups.items():
        by_gen.setdefault(gen[ids[0]], []).append(k)
    x: dict[str, float] = {}
    for g in sorted(by_gen):
        _place_generation(by_gen[g], parents, order, x)
    keys = list(groups)
    index = {k: i for i, k in enumerate(keys)}
    nodes = tuple(Node(_label(k, groups[k], function, aggregated), groups[k],
                       _function_of(groups[k], function), gen[groups[k][0]], x[k],
                       any(t in on_path for t in groups[k])) for k in keys)
    edges = sorted({(index[p], index[k]) for k in keys for p in parents[k]})
    critical = sorted({(index[key_of[a]], index[key_of[b]]) for a, b in pairwise(path)
                       if key_of[a] != key_of[b]})
    return GraphLayout(nodes, tuple(edges), tuple(critical),
                       {t: index[key_of[t]] for t in key_of}, aggregated)


def _place_generation(keys: list[str], parents: Mapping[str, set[str]],
                      order: Mapping[str, int], x: dict[str, float]) -> None:
    """Positions of one generation's nodes: parents' barycenter, then at least MIN_GAP apart,
    re-centred on the barycenters' mean."""
    def wanted(k: str) -> float:
        placed = [x[p] for p in parents[k] if p in x]
        return sum(placed) / len(placed) if placed else float("nan")

    desired = {k: wanted(k) for k in keys}
    if all(d != d for d in desired.values()):  # no placed parents (roots): evenly, in order
        ranked = sorted(keys, key=lambda k: order[k])
        for i, k in enumerate(ranked):
            x[k] = (i - (len(ranked) - 1) / 2) * MIN_GAP
        return
    fallback = sum(d for d in desired.values() if d == d) / sum(1 for d in desired.values()
                                                                if d == d)
    desired = {k: (d if d == d else fallback) for k, d in desired.items()}
    ranked = sorted(keys, key=lambda k: (desired[k], order[k]))
    placed: list[float] = []
    for k in ranked:
        placed.append(desired[k] if not placed else max(desired[k], placed[-1] + MIN_GAP))
    shift = sum(desired[k] for k in ranked) / len(ranked) - sum(placed) / len(placed)
    for k, pos in zip(ranked, placed, strict=True):
        x[k] = pos + shift


def _function_of(ids: tuple[str, ...], function: Mapping[str, str]) -> str:
    names = {function[t] for t in ids}
    return names.pop() if len(names) == 1 else "*"


def _label(key: str, ids: tuple[str, ...], function: Mapping[str, str], aggregated: bool) -> str:
    if not aggregated:
        return key
    return f"{_function_of(ids, function)} \u00d7{len(ids)}"  # multiplication sign
