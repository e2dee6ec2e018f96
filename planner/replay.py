"""Replaying a recorded task (from a WfFormat trace) as an ordinary planflow task.

The task burns CPU for the part of its recorded runtime that was CPU-bound (`min(p, 1)` of it,
p = avgCPU / 100), sleeps for the rest, and returns bytes of its recorded output size. Both are
scaled by `time_scale` and `data_scale`, so a large trace can be executed quickly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

BUSY_SLICE_S = 0.001
"""How often the busy loop checks the clock."""


@dataclass(frozen=True)
class RecordedTask:
    """What the trace recorded about one task, plus the replay scales."""

    name: str
    runtime_s: float
    parallelism: float
    output_bytes: int
    time_scale: float = 1.0
    data_scale: float = 1.0


def replay(spec: RecordedTask, *inputs: Any) -> bytes:
    """Take the recorded time (scaled) and return an output of the recorded size (scaled)."""
    total = spec.runtime_s * spec.time_scale
    busy = total * min(max(spec.parallelism, 0.0), 1.0)
    end = time.perf_counter() + busy
    x = 0
    while time.perf_counter() < end:
        for i in range(1000):
            x += i * i
    if total > busy:
        time.sleep(total - busy)
    return bytes(int(spec.output_bytes * spec.data_scale))
