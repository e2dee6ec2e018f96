"""Fixtures for simulator tests: a toy platform with round numbers, and an event-log helper.

The toy platform makes timelines easy to compute by hand: cold start 1 s, warm start 0.25 s,
keep-warm 10 s, storage latency 0.5 s, bandwidth 100 bytes/s (100 bytes = 1 s), configurations
of 1 GB and 2 GB, $1 per GB-second and $0.25 per invocation. All values are binary fractions,
so simulated times are exact floats.
"""

from __future__ import annotations

import pytest

from simulator import Platform, ResourceConfig, SimResult


def toy_platform(**changes: object) -> Platform:
    platform = Platform(
        name="toy",
        configs=(ResourceConfig(1024), ResourceConfig(2048)),
        price_per_gb_s=1.0,
        price_per_invocation=0.25,
        cold_start_s=1.0,
        warm_start_s=0.25,
        keep_warm_s=10.0,
        storage_latency_s=0.5,
        storage_bandwidth_bps=100.0,
        concurrency_limit=100,
        billing_granularity_s=0.001,
    )
    return platform.with_overrides(**changes) if changes else platform


@pytest.fixture()
def toy() -> Platform:
    return toy_platform()


def log(text: str) -> list[tuple[float, str, str]]:
    """Parse an event log written one event a line: `time  who index  what...`."""
    events = []
    for line in text.strip().splitlines():
        time, who, index, *what = line.split()
        events.append((float(time), f"{who} {index}", " ".join(what)))
    return events


def assert_log(result: SimResult, expected: str) -> None:
    got = [(round(t, 9), who, what) for t, who, what in result.events]
    want = [(round(t, 9), who, what) for t, who, what in log(expected)]
    if got != want:
        lines = [f"{t:>8g}  {who:<10} {what}" for t, who, what in got]
        raise AssertionError("event log differs; got:\n" + "\n".join(lines))
