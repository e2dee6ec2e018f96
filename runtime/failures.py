"""Error records: what a failed task attempt (or a refused plan) leaves for the run's client.

A record is one JSON object written with the run's `error` signal (`runtime.scripts.ERROR`):
the task and its function, the attempt and the worker's generation, what failed (`kind`: the
task's own code, the store, or the worker around it), the exception's type, message and
traceback, and the tail of the worker's stderr. The client turns it into the run's error
(`runtime.session.RunSession._failure`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback

from runtime.errors import StoreError
from runtime.launcher import WorkerSpec

log = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 4096
"""How much of the end of the worker's stderr (when it is a file) goes into an error record."""

LOAD_ERROR_TTL_S = 3600
"""TTL of the error record of a worker that could not load its plan (its run's TTL is in the
plan it could not read; the client deletes the record anyway)."""


def error_record(task_id: str, function: str, err: BaseException, worker_id: str,
                 attempt: int = 1, generation: int = 1, kind: str = "task") -> str:
    """The JSON error record of a failed task attempt. `kind`: `task` (the task's own code
    raised), `store` (Redis failed the worker: `condition` names how) or `worker` (the worker
    machinery failed around the task)."""
    record: dict[str, object] = {
        "task_id": task_id, "function": function, "attempt": attempt, "kind": kind,
        "exc_type": type(err).__name__, "message": str(err),
        "traceback": "".join(traceback.format_exception(err)), "worker_id": worker_id,
        "generation": generation, "stderr_tail": stderr_tail(), "at": time.time()}
    if isinstance(err, StoreError) and err.condition:
        record["condition"] = err.condition
    return json.dumps(record)


def stderr_tail(path: str | None = None, limit: int = STDERR_TAIL_BYTES) -> str:
    """The last `limit` bytes of a stderr file: `path`, else this process's fd 2 when it is a
    regular file (pool children write to one each); "" for a terminal or a pipe."""
    try:
        path = path or os.readlink("/proc/self/fd/2")
        if not os.path.isfile(path):
            return ""
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - limit))
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def refuse_foreign(spec: WorkerSpec, namespace: str, dag_id: str) -> str:
    """Log and name the refusal of a plan whose settings belong to another namespace or run
    than the keys it was read from (a copied or forged plan): the worker touches no key."""
    log.error("worker %s: refusing a plan of %s/%s found under %s/%s", spec.worker_id,
              namespace, dag_id, spec.namespace, spec.dag_id)
    return "refused"
