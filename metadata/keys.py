"""Every Redis key of the metrics store, built here and nowhere else.

Metrics live under `<namespace>:metrics:...`, apart from run data (`<namespace>:{<dag id>}:...`,
deleted after each run), so they outlive runs and one `prune` manages them:

| key                                       | type   | holds                                      |
|-------------------------------------------|--------|--------------------------------------------|
| `<ns>:metrics:functions`                  | hash   | function key -> function name (known keys) |
| `<ns>:metrics:fn:<function key>`          | list   | TaskRecord JSON, oldest first, capped      |
| `<ns>:metrics:runs`                       | hash   | run id -> RunRecord JSON                   |
| `<ns>:metrics:run:<run id>:workers`       | list   | WorkerRecord JSON of that run              |
| `<ns>:metrics:worker-runs`                | zset   | run id -> first worker request time        |
| `<ns>:metrics:run:<run id>:plan`          | hash   | the run's plan.json (zlib) and its summary |
| `<ns>:metrics:plan-runs`                  | zset   | run id -> when its plan was recorded       |
| `<ns>:metrics:width:<workflow>:<task id>` | list   | widths a dynamic fan-out had, capped       |

One list per function makes reads incremental: a planner fetches exactly the functions in its
graph (one LRANGE each, pipelined), never the whole history. The keys of different functions do
not share a hash tag, so on Redis Cluster the store pipelines without MULTI (it never needs a
multi-key transaction: each record is appended by one command).

A run's plan document (`plan.json` of the plan it ran, written once by the client as the run
starts) lets a dashboard draw the run's graph while it goes and compare planned with observed
timelines afterwards; its small `summary` field is read alone when only the figures are needed.
"""

from __future__ import annotations

from metadata.errors import MetadataError

DEFAULT_NAMESPACE = "planflow"
"""Namespace of all planflow keys unless the user names another one."""


def check_namespace(namespace: str) -> str:
    """`namespace` if it can prefix keys (non-empty, no whitespace, no braces), else an error."""
    if not namespace or any(ch.isspace() or ch in "{}" for ch in namespace):
        raise MetadataError(
            f"bad metrics namespace {namespace!r}: use a non-empty name without spaces or braces")
    return namespace


def _root(namespace: str) -> str:
    return f"{namespace}:metrics"


def functions_key(namespace: str) -> str:
    """Hash of known function keys -> function name."""
    return f"{_root(namespace)}:functions"


def task_records_key(namespace: str, function_key: str) -> str:
    """List of one function's TaskRecord JSON, oldest first."""
    return f"{_root(namespace)}:fn:{function_key}"


def runs_key(namespace: str) -> str:
    """Hash of run id -> RunRecord JSON."""
    return f"{_root(namespace)}:runs"


def worker_records_key(namespace: str, run_id: str) -> str:
    """List of one run's WorkerRecord JSON."""
    return f"{_root(namespace)}:run:{run_id}:workers"


def worker_runs_key(namespace: str) -> str:
    """Sorted set of run ids that have worker records, scored by first request time."""
    return f"{_root(namespace)}:worker-runs"


def run_plan_key(namespace: str, run_id: str) -> str:
    """Hash of one run's plan: `doc` (zlib-compressed plan.json), `summary` (JSON figures),
    `recorded_at` (unix seconds)."""
    return f"{_root(namespace)}:run:{run_id}:plan"


def plan_runs_key(namespace: str) -> str:
    """Sorted set of run ids that have a recorded plan, scored by when it was recorded."""
    return f"{_root(namespace)}:plan-runs"


def width_key(namespace: str, workflow: str, task_id: str) -> str:
    """List of the widths one dynamic fan-out (`planflow.map` node) had in recent runs."""
    return f"{_root(namespace)}:width:{workflow}:{task_id}"
