"""Run identifiers: `dag-<unix ms>-<sink function name>-<4 hex>`, new for every run."""

from __future__ import annotations

import re
import secrets
import time

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def new_dag_id(sink_function: str, now_s: float | None = None) -> str:
    """A fresh DAG (execution) id. The function name is reduced to characters safe in keys."""
    millis = int((time.time() if now_s is None else now_s) * 1000)
    name = _UNSAFE.sub("_", sink_function) or "task"
    return f"dag-{millis}-{name}-{secrets.token_hex(2)}"


DAG_ID_PATTERN = re.compile(r"^dag-\d{13,}-[A-Za-z0-9_.-]+-[0-9a-f]{4}$")
"""What every DAG id matches; workers refuse ids that do not (they go into key names)."""
