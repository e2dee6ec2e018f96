"""Errors of execution: a task that failed, a run that could not finish, the data store."""

from __future__ import annotations

from typing import Any

from metadata.errors import redact_url
from metadata.store_errors import condition_of
from planner.errors import PlanflowError


class StoreError(PlanflowError):
    """Redis cannot be reached or used (the message names the URL without its password).
    `condition` names what the server said (`metadata.store_errors`: OOM, READONLY, NOAUTH,
    MISCONF, CONNECTION, ...), "" when it is not a server condition."""

    def __init__(self, message: str, *, condition: str = "") -> None:
        super().__init__(message)
        self.condition = condition


def store_error(err: BaseException, url: str, doing: str) -> StoreError:
    """A StoreError for a Redis error met while `doing` something, naming the condition and
    the fix (`raise store_error(err, url, "...") from err`)."""
    condition = condition_of(err)
    return StoreError(f"{condition.describe(redact_url(url), doing)} (server said: {err})",
                      condition=condition.name)


class RunError(PlanflowError):
    """A run did not finish: a task failed, the deadline passed, or it was cancelled."""

    exit_code = 1


class TaskFailed(RunError):
    """A task raised (after its retries). Carries the task id, function and the exception text."""

    def __init__(self, task_id: str, function: str, exc_type: str, message: str,
                 traceback: str = "", *, worker_id: str = "", attempt: int = 1,
                 record: dict[str, Any] | None = None, record_path: str = "") -> None:
        where = f"; full traceback in {record_path}" if record_path else ""
        tries = f" (attempt {attempt})" if attempt > 1 else ""
        super().__init__(f"task '{task_id}' ({function}) failed{tries}: {exc_type}: {message}"
                         f"{where} (or run with --json: error.traceback)")
        self.record = dict(record or {})
        """The run's error record (JSON fields: task_id, attempt, exc_type, message, traceback,
        stderr_tail, worker_id, generation)."""
        self.record_path = record_path
        self.task_id = task_id
        self.function = function
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback
        self.worker_id = worker_id
        self.attempt = attempt


def error_json(err: BaseException) -> dict[str, Any]:
    """The `error` object of `planflow run --json`: the task's error record for TaskFailed,
    else the error's type, message and exit code."""
    if isinstance(err, TaskFailed):
        return {"task_id": err.task_id, "function": err.function, "exc_type": err.exc_type,
                "message": err.message, "attempt": err.attempt, "worker_id": err.worker_id,
                "traceback": err.traceback, "stderr_tail": err.record.get("stderr_tail", ""),
                "record_path": err.record_path, "exit_code": err.exit_code}
    out = {"exc_type": type(err).__name__, "message": str(err),
           "exit_code": getattr(err, "exit_code", 1)}
    if isinstance(err, StoreError) and err.condition:
        out["condition"] = err.condition
    return out


class ValueTooLarge(RunError):
    """A task's value is larger than the store accepts; refused before any upload."""

    def __init__(self, task_id: str, nbytes: int, limit: int) -> None:
        super().__init__(
            f"task '{task_id}' returned {nbytes / 2**20:.1f} MiB (pickled), more than the "
            f"store accepts per value ({limit / 2**20:.0f} MiB, Redis's proto-max-bulk-len); "
            "return a path to the data on shared storage, or split it into smaller values")
        self.task_id = task_id
        self.nbytes = nbytes
        self.limit = limit


class UnrunnablePlan(RunError):
    """The plan cannot be executed as written (a task without a worker, a worker whose task order
    breaks a dependency). The message names the task and worker; recompile the plan."""

    exit_code = 2


class RunCancelled(RunError):
    """The run was cancelled (Ctrl-C or `stop`) before it finished."""
