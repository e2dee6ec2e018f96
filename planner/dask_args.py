"""What is inside a Dask node's arguments: constants, callables, and what cannot be shipped.

`planner.dask_graph` turns a node's arguments into planflow argument templates. Everything in
them that is not a reference is a *constant*, handed to the task function as it is after
`planner.args.resolve` rebuilds the lists, tuples and dicts around references. `constant()`
accepts a value only if that rebuilding gives back an equal value (plain lists, tuples, named
tuples and dicts at any depth, anything else as a leaf); otherwise it raises `Fallback` and the
node is evaluated by Dask's own rules instead (`DaskCall`, `run_dask_node`).

While walking, `Found` collects what identifies and endangers a task: every callable of the
Dask nodes inside (their function keys make the task's metrics identity) and every unusual
leaf object (not a number, string, numpy or pandas value, or Dask node), which `check_shippable`
pickles once each at compile time so that a lock or an open file is refused before any worker
starts. Objects of the `distributed` package (actors, locks, queues, futures) live in a Dask
cluster and are refused outright.
"""

from __future__ import annotations

import pickle
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle
from dask._task_spec import DataNode, GraphNode, NestedContainer, Task

from planner.errors import DaskGraphError

LEAVES = (int, float, complex, str, bytes, bool, type(None), slice, range)
"""Types that are constants as they are (nothing inside to rebuild or to check)."""

_TRUSTED_MODULES = ("numpy", "pandas", "dask", "builtins", "functools", "operator", "toolz",
                    "tlz")
"""Leaf objects from these packages always pickle: skipped by the compile-time check."""


class Fallback(Exception):
    """These arguments cannot be a planflow template; evaluate the node with Dask's rules."""


@dataclass(frozen=True)
class DaskCall:
    """A Dask node run by Dask's rules, given the values of `keys` (its dependencies)."""

    node: GraphNode
    keys: tuple[Hashable, ...]


def run_dask_node(call: DaskCall, *values: Any) -> Any:
    """The task function of nodes that are not plain calls: `node({key: value, ...})`."""
    return call.node(dict(zip(call.keys, values, strict=True)))


@dataclass
class Found:
    """Callables and unusual objects met in one task's arguments (module docstring)."""

    where: str
    deep: bool = True
    """Walk leaf objects too (callables, objects to check); False: only what decides whether
    the arguments can be a template (another block of the same layer was walked)."""
    callables: list[Any] = field(default_factory=list)
    objects: list[Any] = field(default_factory=list)


def constant(value: Any, found: Found) -> Any:
    """`value` unchanged if `resolve` hands it back equal, else `Fallback`."""
    t = type(value)
    if t in LEAVES:
        return value
    if t is list or t is tuple or t is dict or (isinstance(value, tuple) and hasattr(t, "_fields")):
        for item in (value.values() if t is dict else value):
            constant(item, found)
    elif isinstance(value, list | tuple | dict):
        raise Fallback
    elif found.deep:
        scan(value, found)
    return value


def scan(value: Any, found: Found) -> None:
    """Walk `value` (Dask nodes and containers at any depth) filling `found`."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t in LEAVES:
            continue
        if isinstance(v, Task):
            if not isinstance(v, NestedContainer):
                found.callables.append(v.func)
            stack.extend(v.args)
            stack.extend(v.kwargs.values())
        elif isinstance(v, DataNode):
            stack.append(v.value)
        elif isinstance(v, GraphNode):
            continue  # an Alias: a reference, nothing to run or ship
        elif isinstance(v, list | tuple | set | frozenset):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        else:
            _leaf(v, found)


def _leaf(v: Any, found: Found) -> None:
    module = str(getattr(type(v), "__module__", "") or "").split(".")[0]
    if module == "distributed":
        raise DaskGraphError(
            f"{found.where} holds a distributed {type(v).__name__}, which lives in a Dask "
            "cluster (an actor, lock, queue or future); planflow runs graphs without one")
    if callable(v) and not isinstance(v, type):
        found.callables.append(v)  # a function passed as data (`apply(fn, ...)`)
    elif module not in _TRUSTED_MODULES:
        found.objects.append(v)


def check_shippable(obj: Any, what: str) -> None:
    """Pickle `obj` (its numpy/pandas data skipped) or fail naming `what`."""
    try:
        _Probe().dump(obj)
    except Exception as err:
        raise DaskGraphError(
            f"{what} cannot be serialized for the workers ({type(err).__name__}: {err}); "
            "create such objects inside the task") from err


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)


class _Probe(cloudpickle.Pickler):
    """A pickler that writes nowhere and skips the bulk data of numpy and pandas objects."""

    def __init__(self) -> None:
        super().__init__(_Sink(), protocol=pickle.HIGHEST_PROTOCOL)

    def persistent_id(self, obj: Any) -> Any:
        module = type(obj).__module__
        return 1 if module.startswith(("numpy", "pandas")) and not callable(obj) else None
