"""Argument templates: where references sit inside a call's arguments, and how to fill them in.

A call's arguments are kept as written, with `TaskRef`s inside. A *slot path* locates one
reference: `("args", 0)`, `("kwargs", "tiles", 3, "img")`. References are found in lists,
tuples (named tuples too) and dict values at any depth; anything else is a constant. A
reference inside a set, used as a dict key, or hidden inside another object is an error,
because the executor could not replace it.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Mapping
from typing import Any

import cloudpickle

from planner.errors import WorkflowDefinitionError
from planner.trace import TaskRef

SlotPath = tuple[str | int, ...]


def find_refs(value: Any, path: SlotPath, out: list[tuple[SlotPath, TaskRef]],
              where: Callable[[], str]) -> None:
    """Append `(path, ref)` for every reference inside `value`; reject unreachable ones."""
    if isinstance(value, TaskRef):
        out.append((path, value))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            find_refs(item, (*path, i), out, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, TaskRef):
                raise WorkflowDefinitionError(
                    f"{where()} uses a task reference ('{key.task_id}') as a dict key; "
                    "keys must be constants, use the reference as a value"
                )
            find_refs(item, (*path, key), out, where)
    elif isinstance(value, set | frozenset):
        for item in value:
            if _contains_ref(item):
                raise WorkflowDefinitionError(
                    f"{where()} is a set containing a task reference; use a list"
                )


def _contains_ref(value: Any) -> bool:
    found: list[tuple[SlotPath, TaskRef]] = []
    try:
        find_refs(value, (), found, lambda: "")
    except WorkflowDefinitionError:
        return True
    return bool(found) or isinstance(value, TaskRef)


class _RefDetector(cloudpickle.Pickler):
    """Pickles a constant and fails if a TaskRef hides inside an object we do not walk."""

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, TaskRef):
            raise _HiddenRef(obj)
        return None


class _HiddenRef(Exception):
    def __init__(self, ref: TaskRef) -> None:
        self.ref = ref


def check_constant(value: Any, where: Callable[[], str]) -> None:
    """Fail clearly if `value` (refs already removed) cannot be shipped to a worker."""
    if isinstance(value, int | float | str | bool | bytes | type(None)):
        return
    try:
        _RefDetector(io.BytesIO(), protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    except _HiddenRef as hidden:
        raise WorkflowDefinitionError(
            f"{where()} hides task reference '{hidden.ref.task_id}' inside a "
            f"{type(value).__name__}; pass it directly or inside a list, tuple or dict"
        ) from None
    except Exception as err:
        raise WorkflowDefinitionError(
            f"{where()} cannot be serialized for the workers ({type(err).__name__}: {err}); "
            "pass data that cloudpickle can serialize, or create it inside the task"
        ) from err


class _AllNone(dict[str, Any]):
    def __missing__(self, key: str) -> None:
        return None


def strip_refs(value: Any) -> Any:
    """A copy of `value` with references replaced by None (to pickle-check the constants)."""
    return resolve(value, _AllNone())


def resolve(value: Any, results: Mapping[str, Any]) -> Any:
    """`value` with every reference replaced by its task's result (containers are copied)."""
    if isinstance(value, TaskRef):
        return results[value.task_id]
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    if isinstance(value, tuple):
        items = [resolve(v, results) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        resolved = {k: resolve(v, results) for k, v in value.items()}
        return resolved if type(value) is dict else type(value)(resolved)
    return value
