"""Dask programs on the decentralized executor: worker processes of the local launcher and a
real Redis give what Dask computes, for the planner's own plan and for a placement that sends
most edges through Redis; metrics accumulate under function keys that survive new tokens, so
the next compile predicts from history; a failing Dask task is named; the CLI runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pytest
from typer.testing import CliRunner

import planflow
from metadata.store import MetricsStore
from planflow.cli import app
from planner.dask_graph import graph_from_dask
from planner.plan import Plan
from runtime.client import run_plan
from runtime.errors import TaskFailed
from runtime.local import LocalLauncher
from tests.planner import dask_programs as programs
from tests.runtime import plans
from tests.runtime.conftest import run_keys

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def planned(output: Any, redis_url: str, launcher: LocalLauncher) -> Plan:
    """The planner's own plan for this machine, predicted from the metrics of earlier runs."""
    return planflow.compile(output, platform="local", redis=redis_url,
                            namespace=launcher.keys.namespace)


def run(plan: Plan, redis_url: str, launcher: LocalLauncher) -> Any:
    return run_plan(plan, redis_url=redis_url, namespace=launcher.keys.namespace,
                    launcher=launcher, timeout_s=180.0)


@pytest.mark.parametrize("placement", ["planned", "round-robin-3"])
@pytest.mark.parametrize("name", sorted(programs.PROGRAMS))
def test_every_program_gives_what_dask_computes(name: str, placement: str, redis_url: str,
                                                local_launcher: LocalLauncher) -> None:
    output = programs.PROGRAMS[name]()
    plan = planned(output, redis_url, local_launcher) if placement == "planned" else \
        plans.round_robin(graph_from_dask(output), 3)
    result = run(plan, redis_url, local_launcher)
    programs.assert_same(result.result, programs.expected(output))
    assert set(result.tasks) == {n.id for n in plan.graph.nodes}


def test_metrics_accumulate_across_runs_with_new_tokens(redis_url: str,
                                                       local_launcher: LocalLauncher) -> None:
    """Each run builds its collection anew (new data, so new tokens in every key): its tasks
    record under the same function keys, and the third compile predicts from them."""
    def program(seed: int) -> Any:
        x = da.random.default_rng(seed).random((400, 40), chunks=(100, 40))
        return (x.T @ x).sum(split_every=2)

    first = run(planned(program(1), redis_url, local_launcher), redis_url, local_launcher)
    second_plan = planned(program(2), redis_url, local_launcher)
    second = run(second_plan, redis_url, local_launcher)
    keys = {n.function_key for n in second_plan.graph.nodes}
    with MetricsStore(redis_url, local_launcher.keys.namespace) as store:
        records = [r for rs in store.task_records(keys).values() for r in rs]
    runs_per_key: dict[str, set[str]] = {}
    for r in records:
        runs_per_key.setdefault(r.function_key, set()).add(r.run_id)
    assert all(runs_per_key[k] >= {first.dag_id, second.dag_id} for k in keys)
    third = planned(program(3), redis_url, local_launcher)
    assert third.prediction_sources.get("history", 0) == len(third.graph)


def explode(v: int) -> int:
    raise ValueError(f"cannot take {v}")


def test_a_failing_dask_task_is_named(redis_url: str, local_launcher: LocalLauncher,
                                      client: Any) -> None:
    fail = dask.delayed(explode)(dask.delayed(abs)(-3))
    plan = plans.round_robin(graph_from_dask(fail), 2)
    with pytest.raises(TaskFailed) as info:
        run(plan, redis_url, local_launcher)
    assert (info.value.task_id, info.value.function, info.value.exc_type) == \
        ("explode-0", "explode", "ValueError")
    assert info.value.message == "cannot take 3"
    assert run_keys(client, local_launcher.keys.namespace) == []


def test_the_python_api_runs_a_collection_on_workers(redis_url: str,
                                                     local_launcher: LocalLauncher) -> None:
    x = da.arange(1_000, chunks=100)
    result = planflow.run({"total": x.sum(), "squares": x[:5] ** 2}, redis=redis_url,
                          namespace=local_launcher.keys.namespace, launcher=local_launcher)
    assert result.result["total"] == sum(range(1_000))
    np.testing.assert_array_equal(result.result["squares"], np.arange(5) ** 2)
    assert result.executor != "inline" and result.workflow == "sum-aggregate"


def test_the_cli_compiles_shows_and_runs_the_dask_example(tmp_path: Path) -> None:
    runner = CliRunner()
    target = str(EXAMPLES / "dask_stats.py")
    params = ["-p", "rows=2000", "-p", "chunk=500", "-p", "cols=4"]
    plan_file = tmp_path / "stats.plan"
    res = runner.invoke(app, ["compile", target, *params, "--platform", "local", "-o",
                              str(plan_file), "--json"])
    assert res.exit_code == 0, res.stderr
    compiled = json.loads(res.stdout)
    assert compiled["workflow"] == "column_stats"
    ids = {t["id"] for t in compiled["tasks"]}
    assert {"standard_normal-0,0", "standard_normal-3,0", "_outputs-0"} <= ids
    res = runner.invoke(app, ["run", str(plan_file), "--inline", "--json"])
    assert res.exit_code == 0, res.stderr
    ran = json.loads(res.stdout)
    assert set(ran["result"]) == {"mean", "std", "cov"}  # arrays as their repr
    assert ran["result"]["cov"].startswith("array(")
