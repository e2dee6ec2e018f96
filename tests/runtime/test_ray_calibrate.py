"""The ray launcher's warm actor pools, its runtime environments, and `planflow calibrate
--launcher ray`, on a real local Ray cluster of one node with 2 CPUs (shut down after the
module): a second worker of a configuration starts warm on the actor the first one left, an
actor idle past the keep-warm time is gone, a SIGKILLed actor's worker is recovered on a new
actor, workers waiting on every CPU do not deadlock the cluster, a plan's requirements become
the actors' `runtime_env`, and calibrate writes a platform that `--platform ray` then loads."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from metadata.store import MetricsStore
from planflow.cli import app
from runtime.client import make_launcher, run_plan
from runtime.launcher import WorkerSpec
from runtime.ray_launcher import RayLauncher
from runtime.ray_pool import runtime_env_for
from tests.runtime import plans, workflows
from tests.runtime.ray_nodes import NODE_MEMORY_BYTES, WAIT_FOR_S, ray_nodes

NODE_CPUS = 2


@pytest.fixture(scope="module")
def ray_node() -> Iterator[Any]:
    """One node of 2 CPUs; this process is connected to it."""
    with ray_nodes(1, cpus=NODE_CPUS) as cluster:
        yield cluster


def until(condition: Any) -> None:
    """Wait for `condition()` (at most WAIT_FOR_S), then assert it."""
    deadline = time.monotonic() + WAIT_FOR_S
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def records(redis_url: str, namespace: str, dag_id: str, n: int) -> list[Any]:
    with MetricsStore(redis_url, namespace) as store:
        deadline = time.monotonic() + WAIT_FOR_S
        while len(found := store.worker_records(dag_id)) < n and time.monotonic() < deadline:
            time.sleep(0.05)
    return list(found)


@pytest.mark.ray
def test_a_second_worker_of_a_configuration_starts_warm_on_the_pooled_actor(
    ray_node: Any, redis_url: str, namespace: str
) -> None:
    launcher = RayLauncher(redis_url, namespace, keep_warm_s=120.0)
    try:
        plan = plans.one_worker(plans.graph(workflows.chain, n=3))
        first = run_plan(plan, redis_url=redis_url, namespace=namespace, launcher=launcher)
        until(lambda: launcher.pools.idle_count() == 1)  # its call returned: the actor is idle
        second = run_plan(plan, redis_url=redis_url, namespace=namespace, launcher=launcher)
        assert first.result == second.result == 3
        (cold,) = records(redis_url, namespace, first.dag_id, 1)
        (warm,) = records(redis_url, namespace, second.dag_id, 1)
        assert cold.cold and not warm.cold
        assert warm.started_at >= warm.requested_at
        assert (launcher.pools.created, launcher.pools.reused) == (1, 1)
    finally:
        launcher.close()


@pytest.mark.ray
def test_an_actor_idle_past_the_keep_warm_time_is_gone_and_the_next_start_is_cold(
    ray_node: Any, redis_url: str, namespace: str
) -> None:
    launcher = RayLauncher(redis_url, namespace, keep_warm_s=0.2)
    try:
        plan = plans.one_worker(plans.graph(workflows.chain, n=2))
        run_plan(plan, redis_url=redis_url, namespace=namespace, launcher=launcher)
        until(lambda: launcher.pools.expired == 1)  # idle past 0.2 s: killed by the sweep
        assert launcher.pools.idle_count() == 0
        again = run_plan(plan, redis_url=redis_url, namespace=namespace, launcher=launcher)
        (record,) = records(redis_url, namespace, again.dag_id, 1)
        assert record.cold
        assert launcher.pools.created == 2
    finally:
        launcher.close()


@pytest.mark.ray
def test_a_killed_actor_is_replaced_and_its_worker_recovered(
    ray_node: Any, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    pidfile = tmp_path / "sleeper.pid"
    launcher = RayLauncher(redis_url, namespace, keep_warm_s=120.0)
    killed: list[int] = []

    def kill_the_sleeper() -> None:
        deadline = time.monotonic() + WAIT_FOR_S
        while time.monotonic() < deadline and not (pidfile.exists() and pidfile.read_text()):
            time.sleep(0.05)
        killed.append(int(pidfile.read_text()))
        os.kill(killed[0], signal.SIGKILL)

    try:
        plan = plans.per_task(plans.graph(workflows.slow, seconds=2.0, pidfile=pidfile))
        killer = threading.Thread(target=kill_the_sleeper)
        killer.start()
        result = run_plan(plan, redis_url=redis_url, namespace=namespace, launcher=launcher,
                          timeout_s=120.0)
        killer.join()
        assert result.result == 2
        assert [(r["worker_id"], r["reason"]) for r in result.recovered] == [("w1", "crash")]
        # the dead actor is not handed out again: a later run on the pool still completes
        again = run_plan(plans.one_worker(plans.graph(workflows.chain, n=2)),
                         redis_url=redis_url, namespace=namespace, launcher=launcher)
        assert again.result == 2
        assert killed[0] != os.getpid()
    finally:
        launcher.close()


@pytest.mark.ray
def test_an_actor_killed_while_its_worker_waits_gives_its_cpus_back_to_the_count(
    ray_node: Any, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    """The gate counts the CPUs of actors whose worker waits; one that dies waiting never says
    it stopped, so its dispatcher says it: afterwards nothing is counted as waiting."""
    import ray

    first, sleeping = tmp_path / "first.pid", tmp_path / "sleeping.pid"
    launcher = RayLauncher(redis_url, namespace, keep_warm_s=120.0)

    def waiting_cpus() -> float:
        return float(ray.get(launcher.gate.waiting_cpus.remote()))

    def kill_the_waiter() -> None:
        until(lambda: sleeping.exists() and sleeping.read_text() != "" and waiting_cpus() > 0)
        os.kill(int(first.read_text()), signal.SIGKILL)  # w0, waiting for sleeper-1

    try:
        g = plans.graph(workflows.waits_on_a_sleeper, seconds=3.0, first_pidfile=str(first),
                        pidfile=str(sleeping))
        plan = plans.placed(g, {"sleeper-0": "w0", "sleeper-1": "w1", "inc-0": "w0"})
        killer = threading.Thread(target=kill_the_waiter)
        killer.start()
        result = run_plan(plan, redis_url=redis_url, namespace=namespace, launcher=launcher,
                          timeout_s=120.0)
        killer.join()
        assert result.result == 1
        assert [(r["worker_id"], r["reason"]) for r in result.recovered] == [("w0", "crash")]
        deadline = time.monotonic() + WAIT_FOR_S
        while waiting_cpus() > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ray.get(launcher.gate.waiters.remote()) == {}
    finally:
        launcher.close()


@pytest.mark.ray
def test_a_worker_waiting_on_every_cpu_does_not_deadlock_the_cluster(
    ray_node: Any, redis_url: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """w0 (both CPUs) runs inc-0, starts w1 (both CPUs) and waits for inc-1 in its actor, which
    holds the CPUs: w1's actor cannot be placed, so w1 runs on the CPUs w0 waits with.

        inc-0 (w0) -> inc-1 (w1) -> inc-2 (w0)
    """
    launcher = RayLauncher(redis_url, namespace, keep_warm_s=120.0)
    try:
        g = plans.graph(workflows.chain, n=3)
        plan = plans.placed(g, {"inc-0": "w0", "inc-1": "w1", "inc-2": "w0"},
                            memory_mb=NODE_CPUS * plans.MB_PER_CPU)
        with caplog.at_level(logging.INFO, logger="runtime.ray_dispatch"):
            result = run_plan(plan, redis_url=redis_url, namespace=namespace,
                              launcher=launcher, timeout_s=120.0)
        assert result.result == 3
        assert "worker w1 of" in caplog.text and "starting it on their CPUs" in caplog.text
    finally:
        launcher.close()


def test_requirements_map_onto_a_pip_runtime_env() -> None:
    assert runtime_env_for(()) is None
    assert runtime_env_for(["numpy==2.1.0", "attrs==23.2.0"]) == {
        "pip": ["attrs==23.2.0", "numpy==2.1.0"]}


@pytest.mark.ray
def test_a_plans_requirements_reach_ray_as_the_actors_runtime_env(
    ray_node: Any, redis_url: str, namespace: str
) -> None:
    """What the launcher hands Ray for a new actor (nothing is created, nothing installed)."""
    pinned = ("numpy==2.1.0",)
    launcher = make_launcher("ray", redis_url, namespace, keep_warm_s=5.0,
                             requirements=pinned)
    try:
        assert isinstance(launcher, RayLauncher)
        spec = WorkerSpec(namespace, "dag-1700000000000-sink-abcd", "w0", 1769, 1.0, 1.0)
        options = launcher.pools.options(spec)
        assert options["runtime_env"] == {"pip": ["numpy==2.1.0"]}
        assert (options["num_cpus"], options["memory"]) == (1.0, 1769 * 2**20)
        assert launcher.pools.keep_warm_s == 5.0
        plain = make_launcher("ray", redis_url, namespace)
        try:
            assert "runtime_env" not in plain.pools.options(spec)  # type: ignore[attr-defined]
        finally:
            plain.close()
    finally:
        launcher.close()


@pytest.mark.ray
def test_calibrate_on_ray_writes_the_platform_that_ray_then_is(
    ray_node: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from simulator import platform_file
    from simulator.platform_file import load_platform_source, ray_calibration_path

    monkeypatch.setenv("PLANFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(platform_file._ray_builtin, "seen", False)
    assert load_platform_source("ray").description.startswith("Ray cluster: workers")
    assert platform_file.ray_was_builtin()  # not calibrated yet: the shipped file, noted

    out = tmp_path / "cluster.toml"
    got = CliRunner().invoke(
        app, ["calibrate", "--launcher", "ray", "--quick", "--json", "-o", str(out)])
    assert got.exit_code == 0, got.output
    doc = json.loads(got.stdout)
    assert doc["written"] == [str(ray_calibration_path()), str(out)]
    assert [(n["cpus"], n["memory_mb"]) for n in doc["nodes"]] == [
        (2.0, NODE_MEMORY_BYTES >> 20)]
    measured = doc["measured"]
    assert measured["cold_workers"] >= 1 and measured["warm_workers"] >= 1
    assert measured["warm_start_s"] > 0 and measured["cold_start_s"] > 0

    platform = load_platform_source("ray")
    assert platform.name == "ray"
    assert [(c.memory_mb, c.cpus) for c in platform.configs] == [(4096, 1.0), (8192, 2.0)]
    assert platform.concurrency_limit == NODE_CPUS
    assert platform.cold_start_s == pytest.approx(measured["cold_start_s"])
    assert platform.warm_start_s == pytest.approx(measured["warm_start_s"])
    assert platform.storage_latency_s == pytest.approx(measured["storage_latency_s"])
    assert load_platform_source(str(out)).configs == platform.configs
