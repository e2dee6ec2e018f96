"""Dask collections in: the output structure, and the graph Dask itself would run.

`split_output(value)` finds the collections of a workflow's output: the value itself, or
collections inside lists, tuples (named tuples too) and dict values at any depth, beside
constants. It returns them with a *template*, the structure with each collection replaced by a
`Slot(i)`. A collection anywhere else (a set, a dataclass) is an error, as is a distributed
`Future` (planflow runs graphs without a Dask cluster).

`optimized_graph(collections)` returns the low-level graph after Dask's own optimisation, as
`dask.compute` builds it (Dask >= 2025.4: `collections_to_expr`, `FinalizeCompute`,
`Expr.optimize`): culled, blockwise- and linearly fused, and with each collection's finalize
task (`__dask_postcompute__`: concatenating blocks into a numpy array, partitions into a
pandas object, a bag's partitions into a list). It also returns one output key per collection
and the graph's annotations.

Collections are optimised together *per kind*: expression-backed ones (dask.dataframe) in one
group, graph-backed ones (array, bag, delayed) in one group per optimiser. That is what
`dask.compute` does internally, except that its result order is wrong when kinds are mixed
(`dask.compute(x.sum(), delayed_value, x.mean())` returns the delayed value last in Dask
2026.8); grouping ourselves keeps each collection's key beside it. Graphs of different groups
are merged by key: a Dask key names one value, so a key two groups share is computed once.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, is_dataclass
from typing import Any

import dask
from dask._task_spec import GraphNode, TaskRef, convert_legacy_graph
from dask.base import is_dask_collection, unpack_collections
from dask.core import flatten

from planner.errors import DaskGraphError, UsageError
from planner.trace import TaskRef as PlanflowRef

MIN_DASK = (2025, 4)
"""Oldest Dask whose compute path (`collections_to_expr` + `FinalizeCompute`) we build on."""


@dataclass(frozen=True)
class Slot:
    """Where collection number `index` sits in an output template."""

    index: int


def check_version() -> None:
    """Fail clearly on a Dask older than `MIN_DASK`."""
    parts = str(dask.__version__).split(".")
    try:
        found = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError):
        return  # a development build: assume it is recent
    if found < MIN_DASK:
        raise UsageError(
            f"planflow needs dask >= {MIN_DASK[0]}.{MIN_DASK[1]} to read Dask collections, "
            f"found {dask.__version__}; pip install 'planflow[dask]'")


def is_collection(value: Any) -> bool:
    return bool(is_dask_collection(value))


def holds_collections(value: Any) -> bool:
    """Whether `value` is a Dask collection or a list/tuple/dict holding one at any depth."""
    if is_dask_collection(value):
        return True
    if isinstance(value, list | tuple):
        return any(holds_collections(v) for v in value)
    if isinstance(value, dict):
        return any(holds_collections(v) for v in value.values())
    return False


def split_output(value: Any, where: str) -> tuple[list[Any], Any]:
    """The collections inside `value` (each once, in first-seen order) and the template."""
    collections: list[Any] = []
    seen: dict[int, int] = {}

    def walk(v: Any) -> Any:
        if is_dask_collection(v):
            if id(v) not in seen:
                seen[id(v)] = len(collections)
                collections.append(v)
            return Slot(seen[id(v)])
        if _is_future(v):
            raise DaskGraphError(
                f"{where} holds a distributed Future ({v!r}); planflow runs Dask graphs "
                "without a Dask cluster: return the collection itself, not client.compute/"
                "persist/submit results, or pass future.result() in as data")
        if isinstance(v, PlanflowRef):
            raise DaskGraphError(
                f"{where} returns both planflow task references ('{v.task_id}') and Dask "
                "collections; return one kind (wrap the Dask work in a @task, or the task "
                "in dask.delayed)")
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, tuple):
            items = [walk(x) for x in v]
            return type(v)(*items) if hasattr(v, "_fields") else tuple(items)
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        return v

    template = walk(value)
    found, _ = unpack_collections(value)
    if len(found) > len(collections) or (not collections and found):
        hidden = _hidden_container(value)
        raise DaskGraphError(
            f"{where} holds a Dask collection inside a {hidden}; planflow returns results in "
            "lists, tuples and dicts: put the collection in one of those")
    return collections, template


def _hidden_container(value: Any) -> str:
    """The kind of the first object outside lists, tuples and dicts holding a collection."""
    if isinstance(value, list | tuple | dict):
        for item in (value.values() if isinstance(value, dict) else value):
            if not is_dask_collection(item) and unpack_collections(item)[0]:
                return _hidden_container(item)
        return type(value).__name__
    if isinstance(value, set | frozenset):
        return "set"
    if is_dataclass(value):
        return f"dataclass {type(value).__name__}"
    return type(value).__name__


def _is_future(value: Any) -> bool:
    return isinstance(value, TaskRef) or bool(getattr(value, "__dask_future__", False))


@dataclass(frozen=True)
class DaskGraph:
    """The optimised low-level graph of some collections, one output key per collection."""

    dsk: Mapping[Hashable, GraphNode]
    outputs: tuple[Hashable, ...]
    retries: Mapping[Hashable, int]


def optimized_graph(collections: list[Any]) -> DaskGraph:
    """Optimise `collections` as `dask.compute` does (module docstring), grouped per kind."""
    from dask._expr import Expr, FinalizeCompute
    from dask.base import collections_to_expr

    groups: dict[Any, list[int]] = {}
    for i, coll in enumerate(collections):
        kind = "expr" if isinstance(getattr(coll, "expr", None), Expr) else \
            getattr(type(coll), "__dask_optimize__", None)
        groups.setdefault(kind, []).append(i)
    dsk: dict[Hashable, Any] = {}
    outputs: list[Hashable] = [None] * len(collections)
    retries: dict[Hashable, int] = {}
    for members in groups.values():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            expr = FinalizeCompute(collections_to_expr([collections[i] for i in members]))
            expr = expr.optimize()  # type: ignore[assignment]
            keys = list(flatten(expr.__dask_keys__()))
            graph = expr.__dask_graph__()
        if len(keys) != len(members):
            raise DaskGraphError(
                f"Dask gave {len(keys)} output keys for {len(members)} collections; "
                "return each collection separately")
        for i, key in zip(members, keys, strict=True):
            outputs[i] = key
        for key, node in graph.items():
            dsk.setdefault(key, node)
        retries.update(_retries(expr))
    if not all(isinstance(node, GraphNode) for node in dsk.values()):
        dsk = convert_legacy_graph(dsk)  # a collection still building tuple tasks
    return DaskGraph(dsk, tuple(outputs), retries)


def _retries(expr: Any) -> dict[Hashable, int]:
    """Key -> retries from `dask.annotate(retries=N)` (other annotations are scheduling hints
    for a Dask cluster and are not used)."""
    try:
        found = expr.__dask_annotations__().get("retries", {})
    except (AttributeError, NotImplementedError):
        return {}
    return {k: int(v) for k, v in found.items() if isinstance(v, int) and v > 0}
