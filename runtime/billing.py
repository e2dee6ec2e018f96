"""What a finished run cost, billed from its workers' records the way the simulator bills a plan.

A worker is billed from its start request (start-up included, as Lambda bills its init phase and
as the simulator does) to its end, rounded up to the platform's billing granularity, at its
configuration's memory; every worker is one invocation. Waiting in a full pool's backlog is
inside that span on the local platform (the request is already made), so the observed figure is
an upper bound there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from metadata.records import WorkerRecord
from simulator.platform import MB_PER_GB, Platform


@dataclass(frozen=True)
class ObservedCost:
    cost_usd: float
    gb_s: float
    workers: int


def observed_cost(workers: Sequence[WorkerRecord], platform: Platform) -> ObservedCost:
    """Cost and GB-seconds of the workers that ran, at `platform`'s prices."""
    granularity = platform.billing_granularity_s
    gb_s = 0.0
    for w in workers:
        billed = max(0.0, w.ended_at - w.requested_at)
        if granularity > 0:
            billed = math.ceil(billed / granularity - 1e-9) * granularity
        gb_s += w.memory_mb / MB_PER_GB * billed
    cost = gb_s * platform.price_per_gb_s + len(workers) * platform.price_per_invocation
    return ObservedCost(cost_usd=cost, gb_s=gb_s, workers=len(workers))
