"""Task retry policy: how many attempts, which exceptions, how long to wait between attempts.

A task's policy comes from its `@task(retries=, retry_backoff_s=, retry_on=, timeout_s=)`
options; a task that sets no retries takes the run's default (`run_plan(retries=...)`,
`planflow run --retries`, or `@workflow(retries=...)` which fills the options when tracing).

The wait before attempt n+1 is `retry_backoff_s x 2^(n-1)`, capped at `MAX_BACKOFF_S`, times a
jitter factor in [1 - JITTER, 1 + JITTER) drawn from a generator seeded by (run, task, attempt):
reproducible for one run, spread across runs and tasks, and no global random state touched.
Timeouts count as failed attempts too, but are enforced from outside the worker (the pool kills
the process: `runtime.leases`), so they reach this policy only as an attempt number.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from planner.trace import TaskOptions

MAX_BACKOFF_S = 30.0
"""Longest wait between two attempts of a task, before jitter (seconds)."""

JITTER = 0.5
"""Relative jitter of a backoff: the wait is scaled by a factor in [1 - JITTER, 1 + JITTER)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How one task is retried. `attempts` = 1 + retries."""

    attempts: int
    backoff_s: float
    retry_on: tuple[type[BaseException], ...]
    timeout_s: float | None

    @classmethod
    def of(cls, options: TaskOptions, default_retries: int = 0) -> RetryPolicy:
        retries = options.retries or default_retries
        return cls(1 + retries, options.retry_backoff_s, tuple(options.retry_on),
                   options.timeout_s)

    def should_retry(self, err: BaseException, attempt: int) -> bool:
        """Whether a failed `attempt` (1-based) is followed by another. A task's `sys.exit()`
        (SystemExit) or KeyboardInterrupt counts as an Exception here: inside a task they are
        its failure, not a request to stop the worker."""
        if attempt >= self.attempts:
            return False
        if isinstance(err, SystemExit | KeyboardInterrupt) and Exception in self.retry_on:
            return True
        return isinstance(err, self.retry_on)

    def delay_s(self, dag_id: str, task_id: str, attempt: int) -> float:
        """Seconds to wait after failed `attempt` (1-based), jittered reproducibly."""
        base = min(self.backoff_s * 2.0 ** (attempt - 1), MAX_BACKOFF_S)
        rng = random.Random(f"{dag_id}/{task_id}/{attempt}")
        return base * (1.0 - JITTER + 2.0 * JITTER * rng.random())
