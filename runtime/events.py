"""Typed events a worker emits while it runs; listeners (the metrics recorder, the pool's crash
reporter, tests) subscribe to them. Listeners are called on the worker's threads and must be quick
and thread-safe: `TaskSettled` comes from the data-plane thread, the others from the main one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """A task's inputs are in place and its function is about to run."""

    dag_id: str
    task_id: str
    worker_id: str
    function_name: str
    started_at: float
    attempt: int = 1
    max_attempts: int = 1
    deadline_at: float = 0.0
    """When the attempt must have finished (unix s; 0: no timeout). The pool enforces it."""
    function_key: str = ""
    input_bytes: int = 0


@dataclass(frozen=True, slots=True)
class TaskFinished:
    """A task's function returned (`ok`) or raised. Times in seconds, sizes in bytes."""

    dag_id: str
    task_id: str
    worker_id: str
    function_name: str
    function_key: str
    memory_mb: int
    cpus: float
    attempt: int
    started_at: float
    fetch_s: float
    exec_s: float
    input_bytes: int
    output_bytes: int
    ok: bool
    error: str | None = None
    settles: bool = True
    """A TaskSettled event follows once the task's batch has reached Redis."""
    cpu_s: float | None = None
    contention_s: float = 0.0
    """CPU time of the attempt, and the part of its wall time other processes had the core
    (`runtime.cpuclock`)."""


@dataclass(frozen=True, slots=True)
class TaskSettled:
    """The batch holding a finished task reached Redis: its share of the batch's costs."""

    dag_id: str
    task_id: str
    upload_s: float
    update_s: float
    invoke_s: float


@dataclass(frozen=True, slots=True)
class WorkerFinished:
    """A worker ended (whatever the outcome: `ok`, `failed`, `gone`, `cancelled`)."""

    dag_id: str
    worker_id: str
    memory_mb: int
    cpus: float
    requested_at: float
    started_at: float
    cold: bool
    plan_download_s: float
    plan_bytes: int
    tasks_run: int
    ended_at: float
    outcome: str


Event = TaskStarted | TaskFinished | TaskSettled | WorkerFinished
Listener = Callable[[Event], None]
