"""Facts every part of the runtime shares: where Redis and the data directory are, where logs go.

Kept apart from the heavy modules (worker, pool, embedded server) so that any of them can read
these without importing the others.
"""

from __future__ import annotations

import os
from pathlib import Path

REDIS_URL_ENV = "PLANFLOW_REDIS_URL"
"""Environment variable holding the Redis URL of `planflow` commands, workers and pools."""

DATA_DIR_ENV = "PLANFLOW_HOME"
"""Environment variable naming planflow's data directory (embedded store, logs, caches)."""

DEFAULT_DATA_DIR = Path.home() / ".planflow"
"""The data directory when PLANFLOW_HOME is unset."""

LOG_DIR_NAME = "logs"
"""Pool logs, workers' stderr files and error records live in `<data dir>/logs/`."""


def default_data_dir() -> Path:
    """planflow's data directory (`$PLANFLOW_HOME`, else `~/.planflow`)."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else DEFAULT_DATA_DIR


def log_dir() -> Path:
    """`<data dir>/logs` (not created here)."""
    return default_data_dir() / LOG_DIR_NAME

CLAIM_GRACE_S = 30.0
"""A claimed or relaunched worker's lease (written by whoever claimed or relaunched it) lasts
this long unless renewed, covering the time until its process takes it (`runtime.leases`; a
request waiting for a free process is renewed by its pool meanwhile). A run may set another
(`RunSettings.claim_grace_s`)."""
