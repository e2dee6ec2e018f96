"""Requirements at run time: the local launcher prepares one environment per pinned set before
the run, its workers run inside it, a second run finds it cached, and a set that cannot be
installed here is a pre-run error naming the package (no network is ever used)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import redis

from planner.compiler import CompileOptions, compile_graph
from planner.loader import load_graph
from runtime.client import run_plan
from runtime.environments import EnvironmentPreparationError, environment_key, prepare
from runtime.local import shutdown_pools
from tests.runtime.conftest import run_keys

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "numpy_requirements.py"


@pytest.mark.slow
def test_the_environment_is_prepared_once_and_workers_run_inside_it(
    redis_url: str, namespace: str, planflow_home: Path, client: redis.Redis
) -> None:
    plan = compile_graph(load_graph(str(EXAMPLE), {"n": "500"}), CompileOptions(platform="local"))
    assert [r.split("==")[0] for r in plan.requirements] == ["numpy"]
    key = environment_key(plan.requirements)
    try:
        first = run_plan(
            plan, redis_url=redis_url, namespace=namespace, launcher="local", timeout_s=300.0
        )
        second = run_plan(
            plan, redis_url=redis_url, namespace=namespace, launcher="local", timeout_s=300.0
        )
    finally:
        shutdown_pools(redis_url, namespace, env=key)
    env_dir = str(planflow_home / "envs" / key)
    assert first.environment is not None and second.environment is not None
    assert (first.environment["cached"], second.environment["cached"]) == (False, True)
    assert first.prepare_s > second.prepare_s
    assert first.result["prefix"] == second.result["prefix"] == env_dir
    assert first.result["moments"] == second.result["moments"]
    assert run_keys(client, namespace) == []


def test_a_set_that_cannot_be_installed_fails_before_the_run_naming_it(
    tmp_path: Path, redis_url: str, namespace: str, client: redis.Redis
) -> None:
    with pytest.raises(EnvironmentPreparationError, match=r"'numpy==0\.0\.1' cannot be installed"):
        prepare(["numpy==0.0.1"], tmp_path)
    assert not any((tmp_path / "envs").glob("*/planflow-env.json"))  # nothing half-built kept
    plan = compile_graph(load_graph(str(EXAMPLE), {"n": "5"}), CompileOptions(platform="local"))
    broken = dataclasses.replace(plan, requirements=("numpy==0.0.1",))
    with pytest.raises(EnvironmentPreparationError, match=r"numpy==0\.0\.1"):
        run_plan(broken, redis_url=redis_url, namespace=namespace, launcher="local")
    assert run_keys(client, namespace) == []
