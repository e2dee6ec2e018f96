"""Errors of execution: a task that failed, a run that could not finish, the data store."""

from __future__ import annotations

from planner.errors import PlanflowError


class StoreError(PlanflowError):
    """Redis cannot be reached or used (the message names the URL without its password)."""


class RunError(PlanflowError):
    """A run did not finish: a task failed, the deadline passed, or it was cancelled."""

    exit_code = 1


class TaskFailed(RunError):
    """A task raised (after its retries). Carries the task id, function and the exception text."""

    def __init__(self, task_id: str, function: str, exc_type: str, message: str,
                 traceback: str = "", *, worker_id: str = "", attempt: int = 1) -> None:
        super().__init__(f"task '{task_id}' ({function}) failed: {exc_type}: {message}")
        self.task_id = task_id
        self.function = function
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback
        self.worker_id = worker_id
        self.attempt = attempt


class UnrunnablePlan(RunError):
    """The plan cannot be executed as written (a task without a worker, a worker whose task order
    breaks a dependency). The message names the task and worker; recompile the plan."""

    exit_code = 2


class RunCancelled(RunError):
    """The run was cancelled (Ctrl-C or `stop`) before it finished."""
