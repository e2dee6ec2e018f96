"""What a prediction looks like, and what is assumed where no history exists.

`TaskPrior` carries what is known about a task before any run (`@task` hints, a WfFormat trace);
`hint_duration` is the documented hint formula, the same Amdahl family as the history model
(`metadata.models`): `duration(c) = e*max(0, 1-p) + e*p/min(c, max(p, 1))`, with e the duration
at >= p CPUs and p the parallelism (default 1). Without a hint the global prior uses the same
formula with e = DEFAULT_DURATION_S. `DurationPrediction` is what `MetadataAccess` returns: n
tasks x c configurations of point estimates with a log-normal spread, and each task's source.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from metadata.models import F64, amdahl

SOURCES = ("history", "history-other-config", "hint", "prior")
"""Where a prediction came from, best first."""

DEFAULT_DURATION_S = 0.1
"""Global prior: seconds of a task nobody measured or described, at >= 1 CPU."""

DEFAULT_OUTPUT_BYTES = 1024.0
"""Global prior: bytes a task returns when nothing better is known."""

DEFAULT_PARALLELISM = 1.0
"""CPUs a task can use unless a hint says otherwise (Python code is mostly single-threaded)."""

HINT_SIGMA = 0.3
"""Log-space spread of a hinted duration (about 30 % CV): users' guesses are rough."""

PRIOR_SIGMA = 1.0
"""Log-space spread of the global prior (a factor of e either way at one sigma)."""

@dataclass(frozen=True)
class TaskPrior:
    """What is known about a task before any run: `@task` hints or a WfFormat trace. All optional.

    `expected_s` is the duration with at least `parallelism` CPUs; `memory_mb` is the least
    memory the task needs (used by the planner for feasibility, not for predictions here).
    """

    expected_s: float | None = None
    parallelism: float | None = None
    output_bytes: float | None = None
    memory_mb: int | None = None


NO_PRIOR = TaskPrior()


@dataclass(frozen=True, eq=False)
class DurationPrediction:
    """Predicted durations of n tasks at c configurations.

    `mean_s[n, c]` point estimate (the median of the log-normal spread), `sigma[n, c]` its
    log-space standard deviation, `observed[n, c]` whether history exists at exactly that CPU
    count, `source[n]` one of SOURCES (`history` if any requested configuration was observed).
    """

    mean_s: F64
    sigma: F64
    observed: NDArray[np.bool_]
    source: NDArray[np.str_]

    def quantile(self, q: float) -> F64:
        """The q-quantile of every task's duration at every configuration, [n, c]."""
        if not 0.0 < q < 1.0:
            raise ValueError(f"quantile q must be in (0, 1), got {q}")
        return np.asarray(self.mean_s * np.exp(self.sigma * NormalDist().inv_cdf(q)))

    @property
    def cv(self) -> F64:
        """Coefficient of variation of the log-normal, [n, c]."""
        return np.asarray(np.sqrt(np.expm1(self.sigma**2)))

    def source_counts(self) -> dict[str, int]:
        return source_counts(self.source)


def source_counts(sources: ArrayLike) -> dict[str, int]:
    """How many tasks each source predicted (every source listed, zeros included)."""
    arr = np.asarray(sources)
    return {s: int(np.count_nonzero(arr == s)) for s in SOURCES}


def hint_duration(expected_s: ArrayLike, parallelism: ArrayLike, cpus: ArrayLike) -> F64:
    """`e*max(0, 1-p) + e*p/min(c, max(p, 1))`: a hinted duration at c CPUs (broadcasting)."""
    p = np.asarray(parallelism, dtype=float)
    cap = np.maximum(p, 1.0)
    serial = np.maximum(0.0, 1.0 - p)
    return np.asarray(np.asarray(expected_s, dtype=float) * cap * amdahl(cpus, serial, cap))
