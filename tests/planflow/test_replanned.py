"""After a worker is relaunched on a larger configuration (memory limit exceeded), the run
reports the plan's figures re-simulated with that configuration: what the run really cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from planflow import api

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLANFLOW_REDIS_URL", raising=False)


def test_upsized_workers_raise_the_replanned_cost():
    plan = api.compile(str(EXAMPLES / "tree_reduction.py"), {"n": "8"}, strategy="uniform",
                       memory_mb=256, platform="local")
    worker = plan.workers[0]
    replanned = api._replanned(plan, {worker.worker_id: 3538})
    assert replanned.gb_s > plan.summary.gb_s
    assert replanned.cost_usd > plan.summary.cost_usd
    same = api.simulate(plan, set_memory=[(worker.tasks[0], 3538)]).scenario
    assert (replanned.cost_usd, replanned.makespan_s) == (same.cost_usd, same.makespan_s)
