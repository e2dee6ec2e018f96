"""Tracing: `@task`, `@workflow`, and the lazy references that calling a task returns.

Calling a `@task` function never runs it. Inside a workflow being traced, the call records a
`TaskCall` in the active `Trace` and returns a `TaskRef`; references may appear anywhere inside
the arguments of later calls (nested lists, tuples, dict values), which makes them dependencies.
`planner.graph.build_graph` turns a finished trace into the frozen task-graph IR.

Task ids are `<function name>-<n>`, n counting the calls of that function name in call order
within one trace, so tracing the same program twice gives the same ids.

`map_task(task, ref, **constant_kwargs)` (`planflow.map`) records a *dynamic fan-out*: one call
whose `DynamicSpec` says that the task applies to each element of `ref`'s value, a width known
only at run time. It returns one reference, to the list of the results (`planner.dynamic`).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Generic, ParamSpec, TypeVar, overload

from planner.errors import WorkflowDefinitionError

P = ParamSpec("P")
R = TypeVar("R")

_trace_ids = itertools.count(1)
_ACTIVE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "planflow_trace", default=None)


@dataclass(frozen=True)
class TaskOptions:
    """What `@task(...)` says about a task. All optional; the planner and runtime read them.

    `memory_mb` is the least memory the task needs: smaller configurations are infeasible.
    `expected_s` (duration with enough CPUs), `parallelism` (CPUs the task can use) and
    `output_bytes` are prediction hints used until metrics of real runs exist.
    """

    name: str | None = None
    retries: int = 0
    retry_backoff_s: float = 1.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    timeout_s: float | None = None
    memory_mb: int | None = None
    expected_s: float | None = None
    parallelism: float | None = None
    output_bytes: float | None = None

    def __post_init__(self) -> None:
        label = self.name or "task"
        if self.retries < 0:
            raise WorkflowDefinitionError(
                f"@task {label}: retries must be >= 0, got {self.retries}")
        for attr in ("timeout_s", "memory_mb", "expected_s", "parallelism", "output_bytes"):
            value = getattr(self, attr)
            if value is not None and value <= 0 and attr != "output_bytes":
                raise WorkflowDefinitionError(f"@task {label}: {attr} must be > 0, got {value}")


OPTION_NAMES = frozenset(f.name for f in fields(TaskOptions))


class TaskRef:
    """A lazy reference to the result of one task call inside one trace."""

    __slots__ = ("task_id", "trace_id")

    def __init__(self, task_id: str, trace_id: int) -> None:
        self.task_id = task_id
        self.trace_id = trace_id

    def __repr__(self) -> str:
        return f"TaskRef({self.task_id!r})"

    def __bool__(self) -> bool:
        raise WorkflowDefinitionError(
            f"the result of '{self.task_id}' is not known while the workflow is traced, so it "
            "cannot be used in `if`/`while`; branch inside a task instead"
        )

    def __iter__(self) -> Any:
        raise WorkflowDefinitionError(
            f"the result of '{self.task_id}' is not known while the workflow is traced, so it "
            "cannot be iterated or unpacked; return the parts from separate tasks instead"
        )


@dataclass(frozen=True)
class DynamicSpec:
    """What makes a call a dynamic fan-out: `fn(element, **kwargs)` for each element of the
    value of its one argument, a reference. `expected_width` is the user's hint for planning
    (None: history, else the prior of `planner.dynamic`)."""

    expected_width: int | None = None


@dataclass
class TaskCall:
    """One recorded call: which task, with which (still unresolved) arguments; `dynamic` when
    it is a dynamic fan-out (`map_task`)."""

    task_id: str
    task: Task[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    dynamic: DynamicSpec | None = None


WORKFLOW_TASK_DEFAULTS = frozenset({"retries", "retry_backoff_s", "timeout_s"})
"""Task options `@workflow(...)` may give a default for (applied to tasks that leave them
unset: retries 0, timeout None, backoff at its default)."""


@dataclass
class Trace:
    """The calls recorded while one workflow function runs."""

    workflow: str
    trace_id: int = field(default_factory=lambda: next(_trace_ids))
    calls: list[TaskCall] = field(default_factory=list)
    _counters: dict[str, int] = field(default_factory=dict)
    task_defaults: dict[str, Any] = field(default_factory=dict)
    """Workflow-wide task option defaults (`@workflow(retries=2)`)."""
    _defaulted: dict[int, Task[..., Any]] = field(default_factory=dict)

    def _with_defaults(self, task: Task[..., Any]) -> Task[..., Any]:
        found = self._defaulted.get(id(task))
        if found is None:
            base = TaskOptions()
            unset = {k: v for k, v in self.task_defaults.items()
                     if getattr(task.options, k) == getattr(base, k)}
            found = Task(task.fn, replace(task.options, **unset)) if unset else task
            self._defaulted[id(task)] = found
        return found

    def record(self, task: Task[..., Any], args: tuple[Any, ...],
               kwargs: dict[str, Any], dynamic: DynamicSpec | None = None) -> TaskRef:
        if self.task_defaults:
            task = self._with_defaults(task)
        n = self._counters.get(task.name, 0)
        self._counters[task.name] = n + 1
        task_id = f"{task.name}-{n}"
        self.calls.append(TaskCall(task_id, task, args, kwargs, dynamic))
        return TaskRef(task_id, self.trace_id)


_DETACHED = Trace(workflow="<no workflow>")
"""Calls made outside any workflow land here; using their references in a workflow is an error."""


class Task(Generic[P, R]):
    """A function marked with `@task`. Calling it records a call and returns a `TaskRef`."""

    def __init__(self, fn: Callable[P, R], options: TaskOptions) -> None:
        if not callable(fn) or inspect.isclass(fn):
            raise WorkflowDefinitionError(f"@task must decorate a function, got {fn!r}")
        self.fn = fn
        self.name = options.name or fn.__name__
        self.options = replace(options, name=self.name)
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        trace = _ACTIVE.get() or _DETACHED
        return trace.record(self, args, dict(kwargs))  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<task {self.name}>"


def map_task(task: Any, ref: Any, /, *, expected_width: int | None = None,
             **constant_kwargs: Any) -> TaskRef:
    """A dynamic fan-out: `task` applied to each element of the value `ref` produces at run
    time, `task.fn(element, **constant_kwargs)`; returns a reference to the list of results."""
    if not isinstance(task, Task):
        raise WorkflowDefinitionError(
            f"planflow.map: the first argument must be a @task, got {task!r}; decorate the "
            "function with @task")
    if not isinstance(ref, TaskRef):
        raise WorkflowDefinitionError(
            f"planflow.map({task.name}, ...): the second argument must be the result of a task "
            f"call (a reference), got a {type(ref).__name__}; for values known while tracing, "
            f"call {task.name}(...) once per element (a static fan-out)")
    if expected_width is not None and (isinstance(expected_width, bool) or
                                       not isinstance(expected_width, int) or
                                       expected_width < 0):
        raise WorkflowDefinitionError(
            f"planflow.map({task.name}, ...): expected_width must be an int >= 0, got "
            f"{expected_width!r}")
    trace = _ACTIVE.get() or _DETACHED
    return trace.record(task, (ref,), dict(constant_kwargs), DynamicSpec(expected_width))


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(*, name: str | None = None, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Mark a function as a task: `@task` or `@task(retries=3, timeout_s=60, memory_mb=2048)`."""
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise WorkflowDefinitionError(
            f"@task got unknown option(s) {sorted(unknown)}; known: {sorted(OPTION_NAMES)}"
        )
    if "retry_on" in options and isinstance(options["retry_on"], type):
        options["retry_on"] = (options["retry_on"],)
    opts = TaskOptions(**options)
    if fn is not None:
        return Task(fn, opts)
    return lambda f: Task(f, opts)


class Workflow:
    """A function marked with `@workflow`: traced (not run) to build a task graph."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None,
                 task_defaults: dict[str, Any] | None = None,
                 requirements: Sequence[str] = ()) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.task_defaults = dict(task_defaults or {})
        if isinstance(requirements, str) or not all(isinstance(r, str) for r in requirements):
            raise WorkflowDefinitionError(
                f"@workflow {self.name}: requirements must be a list of strings such as "
                f"['numpy>=1.26'], got {requirements!r}")
        self.requirements = tuple(requirements)
        """Packages the tasks need (`planner.requirements`), besides a requirements.txt."""
        unknown = set(self.task_defaults) - WORKFLOW_TASK_DEFAULTS
        if unknown:
            raise WorkflowDefinitionError(
                f"@workflow {self.name}: unknown task default(s) {sorted(unknown)}; known: "
                f"{sorted(WORKFLOW_TASK_DEFAULTS)}")
        TaskOptions(name=self.name, **self.task_defaults)  # validates the values
        self.signature = inspect.signature(fn)
        functools.update_wrapper(self, fn)

    def trace(self, params: dict[str, Any] | None = None) -> tuple[Trace, Any]:
        """Run the workflow function with tracing on; returns the trace and its return value."""
        trace = Trace(workflow=self.name, task_defaults=self.task_defaults)
        token = _ACTIVE.set(trace)
        try:
            output = self.fn(**(params or {}))
        finally:
            _ACTIVE.reset(token)
        return trace, output

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Calling a workflow inside another workflow inlines its tasks into the outer trace.
        if _ACTIVE.get() is None:
            raise WorkflowDefinitionError(
                f"workflow '{self.name}' is not called directly; use planflow.run({self.name}) "
                f"or `planflow run MODULE.py:{self.name}`"
            )
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<workflow {self.name}>"


def workflow(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
             requirements: Sequence[str] = (), **task_defaults: Any) -> Any:
    """Mark a function as a workflow: `@workflow`, `@workflow(name="etl")`, with the packages
    its tasks need: `@workflow(requirements=["numpy>=1.26"])` (`planner.requirements`), or with
    defaults for its tasks' options: `@workflow(retries=2, retry_backoff_s=0.5, timeout_s=600)`."""
    if fn is not None:
        return Workflow(fn, name, task_defaults, requirements)
    return lambda f: Workflow(f, name, task_defaults, requirements)
