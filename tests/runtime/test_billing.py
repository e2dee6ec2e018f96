"""Observed cost of a run from its workers' records, billed like the simulator bills a plan."""

from __future__ import annotations

import pytest

from runtime.billing import observed_cost
from simulator.platform import load_platform
from tests.metadata import factories


def test_each_worker_is_billed_from_its_request_to_its_end_rounded_up() -> None:
    platform = load_platform("lambda").with_overrides(billing_granularity_s=0.1)
    workers = [
        factories.worker(worker_id="w-0", memory_mb=1024, requested_at=10.0, ended_at=12.01),
        factories.worker(worker_id="w-1", memory_mb=2048, requested_at=10.0, ended_at=10.5),
    ]
    cost = observed_cost(workers, platform)
    # 2.01 s -> 2.1 s at 1 GB, 0.5 s at 2 GB
    assert cost.gb_s == pytest.approx(2.1 + 1.0)
    assert cost.cost_usd == pytest.approx(
        3.1 * platform.price_per_gb_s + 2 * platform.price_per_invocation
    )
    assert cost.workers == 2


def test_no_workers_cost_nothing_and_a_clock_step_back_bills_zero_seconds() -> None:
    platform = load_platform("lambda")
    assert observed_cost([], platform).cost_usd == 0.0
    stepped = factories.worker(requested_at=10.0, ended_at=9.0)
    assert observed_cost([stepped], platform).gb_s == 0.0
