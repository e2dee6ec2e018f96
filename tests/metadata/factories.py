"""Small builders of metric records for the metadata tests (plain functions, no Redis)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from metadata.records import RunRecord, TaskRecord, WorkerRecord

MB_PER_CPU = 1769
"""AWS Lambda's rule, used to give synthetic records a plausible memory size."""


def task(function_key: str = "wf.f:abc", **overrides: Any) -> TaskRecord:
    """A successful task record; any field can be overridden."""
    cpus = float(overrides.get("cpus", 1.0))
    base = TaskRecord(
        run_id="dag-1", task_id="f-0", function_key=function_key,
        function_name=function_key.split(":")[0].rpartition(".")[2], worker_id="w-0",
        memory_mb=round(cpus * MB_PER_CPU), cpus=cpus, attempt=0, started_at=1_700_000_000.0,
        input_bytes=1000, fetch_s=0.01, exec_s=0.5, output_bytes=100, upload_s=0.01,
        update_s=0.001, invoke_s=0.0, ok=True)
    return replace(base, **overrides)


def worker(run_id: str = "dag-1", **overrides: Any) -> WorkerRecord:
    base = WorkerRecord(
        run_id=run_id, worker_id="w-0", memory_mb=1769, cpus=1.0, requested_at=100.0,
        started_at=100.5, cold=True, plan_download_s=0.02, plan_bytes=20_000, tasks_run=3,
        ended_at=110.0)
    return replace(base, **overrides)


def run(run_id: str = "dag-1", **overrides: Any) -> RunRecord:
    base = RunRecord(
        run_id=run_id, workflow="tree", strategy="planflow", submitted_at=100.0,
        finished_at=112.0, predicted_makespan_s=11.0, observed_makespan_s=12.0,
        predicted_cost_usd=0.002, ok=True)
    return replace(base, **overrides)


PLATFORM: dict[str, Any] = {"transfer_latency_s": 0.005, "transfer_bandwidth_bps": 50e6,
            "cold_start_s": 1.5, "warm_start_s": 0.05}
"""Platform figures passed to MetadataAccess in tests (any plausible numbers)."""


def history(function_key: str, truth: Any, *, cpus: list[float], inputs: list[float],
            runs: int = 3, noise: float = 0.0, seed: int = 0,
            output: Any = None) -> list[TaskRecord]:
    """Task records of `runs` runs at every (cpus, input) pair: exec_s = truth(x, c) with
    multiplicative log-normal noise, output_bytes = output(x) (default 100)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    records = []
    for r in range(runs):
        for c in cpus:
            for i, x in enumerate(inputs):
                seconds = float(truth(x, c)) * float(rng.lognormal(0.0, noise)) if noise else \
                    float(truth(x, c))
                records.append(task(
                    function_key, run_id=f"dag-{r}", task_id=f"t-{i}", cpus=c,
                    input_bytes=int(x), exec_s=seconds,
                    output_bytes=int(output(x)) if output else 100))
    return records
